// The system, live: the architecture drawing with each hop's numbers,
// refreshed every second from GET /console/live (which the gateway computes
// from the services' own /metrics).

import { api } from './api.js';
import { h, mount, num } from './dom.js';
import { sparkline } from './charts.js';
import { architecture } from './drawing.js';

let timer;
window.addEventListener('chirp:leave', () => clearTimeout(timer));

export function systemView(main) {
  const drawing = h('div', { class: 'drawing card' });
  const notes = h('div', { class: 'live-notes' });
  const history = [];
  mount(main, h('section', { class: 'column wide' },
    h('h1', {}, 'The system, live'),
    h('p', { class: 'muted' }, 'Each service\'s request rate, server-error ratio and p99 over the last second, ',
      'the fan-out worker\'s Kafka lag, delay, retries and dead letters, the tweet outbox\'s depth and age, ',
      'the timeline caches\' hit ratios and the graph\'s replica lag: read by the gateway from every service\'s ',
      '/metrics (CONSOLE_METRICS_TARGETS), no Prometheus needed. Post something in another tab and watch it move.'),
    drawing, notes));
  const tick = async () => {
    try {
      const { body } = await api.live();
      history.push(body.services.find((x) => x.name === 'gateway')?.requests_per_sec ?? 0);
      if (history.length > 60) history.shift();
      mount(drawing, diagram(body));
      mount(notes, summary(body, history));
    } catch (error) {
      mount(notes, h('p', { class: 'error' }, error.message));
    }
    if (drawing.isConnected) timer = setTimeout(tick, 1000);
  };
  tick();
}

function byName(live) {
  return Object.fromEntries(live.services.map((x) => [x.name, x]));
}

function diagram(live) {
  const services = byName(live);
  return architecture({
    label: 'chirp architecture, live',
    node: (name, kind) => box(name, kind, services[name], live),
    edge: (from, to, by) => ((services[by]?.requests_per_sec ?? 0) > 0 ? 'busy' : ''),
  });
}

/** What a box shows: its live numbers, and a state that marks it down or failing. */
function box(name, kind, service, live) {
  const lines = [];
  let state = '';
  if (kind === 'service') {
    if (!service) { lines.push('not scraped'); state += ' unknown'; }
    else if (!service.up) { lines.push('no /metrics answer'); state += ' down'; }
    else {
      lines.push(`${num(service.requests_per_sec, 1)} ${name === 'fanout' ? 'events' : 'req'}/s`);
      lines.push(`err ${service.error_ratio === null || service.error_ratio === undefined ? '–' : `${num(100 * service.error_ratio, 1)} %`}` +
        (name === 'fanout' ? '' : ` · p99 ${num(service.p99_ms, 1)} ms`));
      if ((service.error_ratio ?? 0) > 0.01) state += ' failing';
    }
  }
  if (name === 'fanout' && live.fanout) lines.push(`Kafka lag ${num(live.fanout.consumer_lag, 0)}`);
  if (name === 'tweet' && live.outbox) {
    lines.push(`outbox ${num(live.outbox.pending_events, 0)} · oldest ${num(live.outbox.oldest_pending_secs, 1)} s`);
    if (live.outbox.oldest_pending_secs > 30) state += ' failing';
  }
  if (name === 'timeline' && live.timeline) {
    lines.push(`tweet cache hits ${pct(live.timeline.tweet_cache_hit_ratio)}`);
  }
  if (name === 'redis' && live.fanout) lines.push(`${num(live.fanout.timeline_writes_per_sec, 1)} timeline writes/s`);
  if (name === 'kafka' && live.fanout) lines.push(`lag ${num(live.fanout.consumer_lag, 0)} events`);
  if (name === 'postgres' && live.graph) {
    lines.push(live.graph.replicas.length
      ? `replica lag ${live.graph.replicas.map((r) => (r.lag_secs === null ? '–' : `${num(r.lag_secs, 2)} s`)).join(', ')}`
      : 'no read replica');
  }
  return { state: state.trim(), lines };
}

function pct(ratio) {
  return ratio === null || ratio === undefined ? '–' : `${num(100 * ratio, 0)} %`;
}

function summary(live, history) {
  if (live.services.length === 0) {
    return h('p', { class: 'card warn' }, 'The gateway scrapes no service: set CONSOLE_METRICS_TARGETS ',
      '(deploy/run-local.sh up sets it, and METRICS_ADDR on every service).');
  }
  const t = live.timeline;
  const f = live.fanout;
  const o = live.outbox;
  return h('div', { class: 'live-grid' },
    h('div', { class: 'card' }, h('h3', {}, 'gateway requests/s, last minute'), sparkline(history, { label: 'gateway requests per second' })),
    f && h('div', { class: 'card' }, h('h3', {}, 'fan-out'),
      h('p', {}, `${num(f.events_per_sec, 1)} events/s · ${num(f.timeline_writes_per_sec, 1)} timeline writes/s · `,
        `${num(f.celebrity_skips_per_sec, 1)} celebrity skips/s · lag ${num(f.consumer_lag, 0)}`),
      h('p', {}, `post to push p50 ${num(f.delay_p50_ms, 0)} ms · p99 ${num(f.delay_p99_ms, 0)} ms · `,
        `${num(f.retries_per_sec, 2)} retries/s · ${num(f.dead_lettered, 0)} dead letters`),
      h('p', { class: 'muted small' }, 'A retry is an event tried again after a failure (it holds its partition until it succeeds); ',
        'a dead letter is an event that cannot be decoded, kept aside for fanout replay-dead-letters.')),
    o && h('div', { class: 'card' }, h('h3', {}, 'tweet outbox'),
      h('p', {}, `${num(o.pending_events, 0)} events waiting · the oldest ${num(o.oldest_pending_secs, 1)} s · `,
        `${num(o.read_failures_per_sec, 2)} read failures/s`),
      h('p', { class: 'muted small' }, 'Events written with their tweets and not yet in Kafka. ',
        'A depth or an age that only grows is a relay that stopped.')),
    t && h('div', { class: 'card' }, h('h3', {}, 'timeline read path'),
      h('p', {}, `tweet cache hits ${pct(t.tweet_cache_hit_ratio)} · pulled ids cache hits ${pct(t.pulled_ids_cache_hit_ratio)} · `,
        `${num(t.rebuilds_per_sec, 2)} rebuilds/s`)),
    h('p', { class: 'muted small' }, `rates over the last ${num(live.interval_secs, 2)} s`));
}
