// This system's answer to each interview step, with evidence read from the
// running deployment: the OpenAPI document the gateway serves, the live
// view of every service's /metrics (GET /console/live), the signed-in
// user's own post and timeline read followed through the system (flows.js),
// and the most-followed accounts; beside them the committed runs' measured
// figures the console ships (capacity.json, strategies.json).
// What the console cannot read live (the schema) is stated from the code,
// with the file it is in.

import { api, session } from './api.js';
import { h, num } from './dom.js';
import { estimator } from './estimate.js';
import { explorer } from './explorer.js';
import { flows } from './flows.js';
import { capacityPlan } from './plan.js';

/** Words in a path that would mean a feature chirp leaves out. */
const LEFT_OUT = [['search', 'search'], ['message', 'direct messages'], ['trend', 'trends']];

async function clarify() {
  const { body } = await api.openapi();
  const paths = Object.keys(body.paths);
  return [
    h('p', {}, 'In: sign up, post and delete a tweet (idempotent, with an Idempotency-Key), follow and unfollow, ',
      'read a home timeline and an author\'s tweets, page by cursor. Reads dominate writes; a post is durable when ',
      'the API answers 201; a follower may see it a moment later (eventual consistency of the fan-out).'),
    h('p', {}, 'Out: passwords (sign-up returns a bearer token), media, search, ranking, trends, notifications, direct messages.'),
    h('ul', { class: 'evidence left-out' }, LEFT_OUT.map(([word, feature]) => {
      const found = paths.filter((path) => path.includes(word));
      return h('li', {}, `${feature}: `, found.length ? `served at ${found.join(', ')}`
        : `no path of the live API (${paths.length} paths in /openapi.json) has "${word}" in it`);
    })),
  ];
}

async function estimateStep() {
  const { body } = await api.capacity();
  const plan = capacityPlan(body);
  return [estimator(plan.update), plan.element];
}

async function apiStep() {
  const { body } = await api.openapi();
  const operations = Object.values(body.paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0);
  return [
    h('p', {}, `The live OpenAPI ${body.openapi} document of this gateway (`, h('a', { href: '/openapi.json' }, '/openapi.json'),
      `), ${operations} operations, each with "try it" against this gateway. Pages are by opaque cursors, `,
      'errors are problem documents with a stable code.'),
    explorer(body),
  ];
}

function dataStep() {
  const row = (store, what, key, access, file) => h('tr', {}, h('td', {}, store), h('td', {}, what), h('td', {}, key),
    h('td', {}, access), h('td', { class: 'mono small' }, file));
  return [
    h('p', {}, 'Read from the code (not live): each store holds what it is good at, and the timelines can be rebuilt from the other two.'),
    h('table', { class: 'table data-model' },
      h('thead', {}, h('tr', {}, ['store', 'holds', 'key (partition / shard)', 'read by', 'defined in'].map((c) => h('th', {}, c)))),
      h('tbody', {},
        row('Postgres', 'users, their follower counts and celebrity flag', 'user_id; one primary, not sharded',
          'a profile; the popular list (index on follower_count); the celebrity threshold',
          'services/graph/migrations/0001_users_and_follows.sql, 0006, 0007'),
        row('Postgres', 'follows, one row per edge', '(follower_id, followee_id), indexed by followee',
          'the fan-out: an author\'s followers, page by page, on the primary; a rebuild: whom a reader follows; '
          + 'a profile\'s followers, on the streaming replica when there is one', 'services/graph/migrations/0001_users_and_follows.sql'),
        row('Cassandra', 'tweets by id', 'partition tweet_id', 'hydrating a page of timeline ids', 'CREATE_TABLES in services/tweet/src/store.rs'),
        row('Cassandra', 'an author\'s tweets, newest first, content copied in', 'partition author_id, clustering tweet_id DESC',
          'a profile page; celebrities\' tweets pulled at read time; a rebuild', 'services/tweet/src/store.rs'),
        row('Cassandra', 'which tweet an idempotency key produced (24 h)', 'partition (author_id, idempotency_key)',
          'a retried post, claimed with IF NOT EXISTS', 'services/tweet/src/store.rs'),
        row('Cassandra', 'the outbox of tweet events', 'tweet_outbox tables', 'the relay to Kafka', 'services/tweet/src/outbox.rs'),
        row('Redis', 'a home timeline: a sorted set of 8-byte ids, score 0, with markers', 'tl:{user_id} (hash tag: one slot per user)',
          'a page: ZRANGE … BYLEX REV; a push: ZADD by a script, only into a timeline that exists, trimmed to capacity', 'services/timeline-store/src/layout.rs, scripts.rs'),
        row('Redis', 'the celebrities a timeline pulls at read time', 'tl:{user_id}:pulled', 'each page under hybrid', 'services/timeline-store/src/layout.rs'),
        row('Redis', 'a rebuild in progress', 'tl:{user_id}:rebuild', 'the one rebuild per timeline', 'services/timeline-store/src/layout.rs'),
        row('Kafka', 'tweet events', 'topic tweet-events, keyed by author id', 'the fan-out worker, up to FANOUT_CONCURRENCY events at once (idempotent, so order does not matter)',
          'proto/chirp/events/v1/events.proto'))),
    h('p', { class: 'muted small' }, 'A timeline entry in its listpack is 12 bytes (10 for the member, 2 for the score) by the ',
      'layout\'s own account (layout.rs); Redis bytes per entry as measured are in docs/BENCHMARKS.md ("A million users").'),
  ];
}

async function highLevel() {
  const { body } = await api.live();
  return [
    h('p', {}, 'client → gateway (REST) → tweet, graph and timeline (gRPC); tweet writes Cassandra and an event to Kafka; ',
      'the fan-out worker reads Kafka, asks graph for followers and writes Redis timelines; timeline reads Redis and ',
      'hydrates from tweet. The same drawing with live numbers: ', h('a', { href: '#/system' }, 'the System view'), '.'),
    h('ul', { class: 'evidence services-live' }, body.services.map((service) => h('li', { 'data-service': service.name },
      `${service.name}: `, !service.up ? 'no /metrics answer'
        : `${num(service.requests_per_sec, 1)} req/s, p99 ${num(service.p99_ms, 1)} ms`))),
    body.services.length === 0 && h('p', { class: 'muted small' }, 'This gateway scrapes no service (CONSOLE_METRICS_TARGETS).'),
    h('p', {}, 'The two flows to walk through, sent now as you and timed by the system itself:'),
    flows(),
  ];
}

async function deepDive() {
  const me = session.get();
  const parts = [
    h('p', {}, 'Hybrid: ordinary authors\' tweets are pushed into followers\' Redis timelines when written; ',
      'celebrities\' tweets are pulled at read time and merged by cursor; a missing timeline is rebuilt once, however many ask. ',
      'Push, pull and hybrid measured on the same data: ', h('a', { href: '#/lab' }, 'the Strategy lab'), '.'),
  ];
  if (!me) return [...parts, h('p', { class: 'muted' }, 'Sign up (Home) to see your own timeline explained here.')];
  const { body } = await api.timeline(me.user_id, undefined, true);
  const explain = body.explain;
  return [...parts,
    h('p', {}, 'Your own home timeline, read now with ?explain=true:'),
    explain ? h('dl', { class: 'facts explained' },
      h('div', {}, h('dt', {}, 'strategy'), h('dd', { class: 'strategy' }, explain.strategy || '–')),
      h('div', {}, h('dt', {}, 'cache'), h('dd', { class: 'cache' }, explain.cache || '–')),
      h('div', {}, h('dt', {}, 'celebrities merged'), h('dd', {}, num(explain.pulled_authors.length, 0))),
      h('div', {}, h('dt', {}, 'hops'), h('dd', {}, explain.hops.map((hop) => `${hop.service} ${hop.name}`).join(' → '))))
      : h('p', { class: 'muted' }, 'The timeline service sent no explanation.'),
    h('p', { class: 'muted small' }, 'Every hop\'s time, page by page: Home, "Explain this timeline".')];
}

/** The committed run's figures for push and hybrid (strategies.json), or none. */
function measuredRows(results) {
  const by = Object.fromEntries((results?.strategies || []).map((row) => [row.strategy, row]));
  return by.push && by.hybrid ? by : null;
}

/** What the live view says of the graph's read replicas. */
function replicaLag(graph) {
  if (!graph) return 'the graph service is not scraped';
  if (!graph.replicas.length) return 'no replica configured (DATABASE_READ_URL unset): every read goes to the primary';
  return graph.replicas.map((r) => `replica ${r.replica} ${r.lag_secs === null ? 'not measured (its last measurement failed)'
    : `${num(r.lag_secs, 2)} s behind the primary`}`).join('; ');
}

async function bottlenecks() {
  const [{ body }, committed, popular] = await Promise.all([api.live(), api.strategies().then((r) => r.body, () => null),
    api.popular().then((r) => r.body.items, () => [])]);
  const m = measuredRows(committed);
  const f = body.fanout;
  const t = body.timeline;
  const top = popular[0];
  const pct = (ratio) => (ratio === null || ratio === undefined ? '–' : `${num(100 * ratio, 0)} %`);
  const item = (key, name, live, mitigation, measured) => h('li', { 'data-bottleneck': key },
    h('strong', {}, name), ': ', h('span', { class: 'live' }, live), h('br'),
    measured && [h('span', { class: 'measured small' }, measured), h('br')],
    h('span', { class: 'muted small' }, mitigation));
  return [
    h('ul', { class: 'evidence bottleneck-list' },
      item('celebrity', 'celebrity fan-out', f
        ? `now ${num(f.timeline_writes_per_sec, 1)} timeline writes/s, ${num(f.celebrity_skips_per_sec, 1)} celebrity skips/s`
        : 'the fan-out worker is not scraped',
      'hybrid: a celebrity\'s tweet is written once and pulled by readers (Strategy::pushes, timeline-store)',
      m && `measured (the committed run): a celebrity's tweet (${num(m.push.celebrity.author_followers, 0)} followers) cost `
        + `${num(m.push.celebrity.writes.per_tweet, 0)} timeline writes under push, ${num(m.hybrid.celebrity.writes.per_tweet, 0)} under hybrid`),
      item('hot-tweet', 'a hot tweet', t ? `tweet cache hits ${pct(t.tweet_cache_hit_ratio)}; `
        + `coalesced waits ${num(t.tweet_coalesced_waits_per_sec, 1)}/s now, ${num(t.tweet_coalesced_waits, 0)} since the timeline service started; `
        + `pulled ids cache hits ${pct(t.pulled_ids_cache_hit_ratio)}`
        : 'the timeline service is not scraped',
      ['a per-process tweet cache: a miss of a tweet another read is already fetching waits for that fetch (a coalesced wait) ',
        'instead of asking the tweet store again (timeline/src/hydrate.rs). To see it at work: ',
        h('code', {}, 'loadtest seed'), ', then ', h('code', { class: 'command' }, 'TOKEN_SECRET=<the gateway\'s> loadtest run hot-tweet --rate 500 --duration 60s'),
        ' (one tweet by the most-followed ordinary author, read by all their followers) while this panel is open.']),
      item('replica-lag', 'the follow graph and replica lag', [
        h('span', { class: 'replica-lag' }, replicaLag(body.graph)), '; ',
        top?.follower_count ? `the largest audience a fan-out faces: @${top.handle}, ${num(top.follower_count, 0)} followers (GET /users/popular)`
          : 'no user has followers yet'],
      'only reads that tolerate staleness (a profile\'s followers) go to the streaming replica (DATABASE_READ_URL), '
        + 'whose lag the graph service measures every second (chirp_graph_replica_lag_seconds); '
        + 'the fan-out\'s follower listing and everything a write depends on read the primary (graph/src/store.rs)'),
      item('consistency', 'eventual consistency', f
        ? `post to push p50 ${num(f.delay_p50_ms, 0)} ms, p99 ${num(f.delay_p99_ms, 0)} ms; Kafka lag ${num(f.consumer_lag, 0)}`
        : 'the fan-out worker is not scraped',
      'the outbox makes a post durable before it is delivered; delivery is at-least-once with idempotent writes',
      m && `measured (the committed run), post to visible under hybrid: an ordinary author's p50 ${num(m.hybrid.ordinary.visible.p50_ms, 0)} ms, `
        + `p99 ${num(m.hybrid.ordinary.visible.p99_ms, 0)} ms; a celebrity's p50 ${num(m.hybrid.celebrity.visible.p50_ms, 0)} ms, `
        + `p99 ${num(m.hybrid.celebrity.visible.p99_ms, 0)} ms (pulled, so as late as a cache TTL)`)),
    h('p', { class: 'muted small' }, `Live: GET /console/live, rates over the last ${num(body.interval_secs, 2)} s; `,
      'the same numbers, drawn: ', h('a', { href: '#/system' }, 'System'), '. ',
      m ? ['Measured: ', committed.note, ' (', h('a', { href: '#/lab' }, 'Strategy lab'), ').'] : 'No committed run of the strategies to quote.'),
  ];
}

/** Each step's answer, by step key: a function returning elements (or a promise of them). */
export const ANSWERS = {
  clarify, estimate: estimateStep, api: apiStep, data: dataStep,
  'high-level': highLevel, 'deep-dive': deepDive, bottlenecks,
};
