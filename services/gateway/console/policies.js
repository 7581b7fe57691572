// The lab's second half: the home-timeline policies of real networks
// (Twitter 2012, Mastodon, Bluesky's lossy fan-out, DeathStarBench, chirp's
// hybrid), each a configuration of chirp's own services, on one graph under
// one load, as `experiment policies` measured them. The console ships the
// two committed runs of docs/runs/policies/ (deploy/render-docs.py writes
// policies.json from them; without them the file says so and holds no run).
// Plots draw the mean of the runs; the table gives each run's figure.

import { api } from './api.js';
import { h, mount, num } from './dom.js';
import { groupedBars } from './charts.js';

export function policiesSection() {
  const body = h('div', { class: 'policy-plots' }, h('p', { class: 'muted' }, 'loading…'));
  api.policies().then(({ body: results }) => draw(body, results),
    (error) => mount(body, h('p', { class: 'error' }, error.message)));
  return h('section', { class: 'policies' },
    h('h2', {}, 'The policies of real networks, one workload'),
    h('p', {}, 'Each policy is chirp\'s real services started with the settings that make them behave as the network ',
      'is documented to: who gets a push, how long a timeline is and lives, what a returning reader sees. ',
      'Readers miss a tweet when it is among the newest of the people they follow (posted 3 s or more before the read) ',
      'and not on their first page.'),
    body);
}

function draw(body, results) {
  const runs = results.runs || [];
  if (!runs.length) {
    mount(body, h('p', { class: 'muted no-run' }, results.note));
    return;
  }
  const first = runs[0];
  const names = first.policies.map((p) => p.policy);
  // A figure of each run, for policy `name`.
  const each = (name, pick) => runs.map((run) => pick(run.policies.find((p) => p.policy === name)));
  const mean = (name, pick) => {
    const values = each(name, pick);
    return values.reduce((a, b) => a + b, 0) / values.length;
  };
  const groups = (picks) => names.map((name) => ({ label: name, values: picks.map((pick) => mean(name, pick)) }));
  const buckets = first.policies[0].delay.map((d) => d.bucket);
  const both = (name, pick, digits) => each(name, pick).map((v) => num(v, digits)).join(' / ');
  const share = (key) => (p) => p.missed[key].share * 100;
  mount(body,
    h('p', { class: 'muted small' }, `${results.note} ${num(first.users, 0)} users (${first.heavy_followers} following `,
      `${num(first.heavy_following, 0)} accounts or more), celebrity threshold ${num(first.celebrity_threshold, 0)}.`),
    h('div', { class: 'chart-grid' },
      groupedBars({
        title: 'Fan-out delay p99, by the author\'s followers', unit: 'ms', log: true,
        series: buckets,
        groups: groups(buckets.map((_, i) => (p) => p.delay[i].delay.p99_ms)),
      }),
      groupedBars({
        title: 'Home read p99: warm, and a returning user\'s first', unit: 'ms', log: true,
        series: ['warm', 'returning'],
        groups: groups([(p) => p.home_timeline.p99_ms, (p) => p.cold_read.p99_ms]),
      }),
      groupedBars({
        title: 'Cost: timeline writes per post, Redis MB', log: true,
        series: ['writes per post', 'Redis MB'],
        groups: groups([(p) => p.load.per_tweet, (p) => p.redis_bytes / 1e6]),
      }),
      groupedBars({
        title: 'Tweets readers missed', unit: '%',
        series: ['readers', 'heavy followers', 'returning'],
        groups: groups([share('readers'), share('heavy'), share('returning')]),
      })),
    h('table', { class: 'table policies-table' },
      h('thead', {}, h('tr', {}, ['policy', 'Redis MB', 'writes / post', 'home p99 ms', 'returning p99 ms (partial)',
        'missed: readers', 'heavy', 'returning'].map((c) => h('th', {}, c)))),
      h('tbody', {}, names.map((name) => h('tr', {},
        h('td', {}, name),
        h('td', {}, both(name, (p) => p.redis_bytes / 1e6, 1)),
        h('td', {}, both(name, (p) => p.load.per_tweet, 1)),
        h('td', {}, both(name, (p) => p.home_timeline.p99_ms, 1)),
        h('td', {}, `${both(name, (p) => p.cold_read.p99_ms, 0)} (${both(name, (p) => p.partial, 0)})`),
        h('td', {}, `${both(name, share('readers'), 1)} %`),
        h('td', {}, `${both(name, share('heavy'), 1)} %`),
        h('td', {}, `${both(name, share('returning'), 1)} %`))))),
    h('ul', { class: 'small' }, first.policies.map((p) => h('li', {},
      h('b', {}, p.policy), ` (${p.network}): `, h('code', {}, p.settings), `. ${p.source}.`))));
}
