// The system, live: the architecture drawing with each hop's numbers,
// refreshed every second from GET /console/live (which the gateway computes
// from the services' own /metrics).

import { api } from './api.js';
import { h, mount, num, s } from './dom.js';
import { sparkline } from './charts.js';

const W = 150;
const H = 74;

// Where each box sits, and what kind of thing it is.
const NODES = {
  client: { x: 10, y: 200, kind: 'client', label: 'browser / curl' },
  gateway: { x: 190, y: 190, kind: 'service', label: 'gateway' },
  tweet: { x: 420, y: 40, kind: 'service', label: 'tweet' },
  graph: { x: 420, y: 215, kind: 'service', label: 'graph' },
  timeline: { x: 420, y: 390, kind: 'service', label: 'timeline' },
  cassandra: { x: 650, y: 10, kind: 'store', label: 'Cassandra' },
  kafka: { x: 650, y: 110, kind: 'store', label: 'Kafka' },
  postgres: { x: 650, y: 260, kind: 'store', label: 'Postgres' },
  fanout: { x: 850, y: 110, kind: 'service', label: 'fanout' },
  redis: { x: 850, y: 390, kind: 'store', label: 'Redis' },
};

// Each arrow: from, to, the box whose numbers say how busy it is, and how
// far it bends (a fraction of its length, to the right of its direction) to
// pass around the boxes in between.
const EDGES = [
  ['client', 'gateway', 'gateway', 0], ['gateway', 'tweet', 'tweet', 0], ['gateway', 'graph', 'graph', 0],
  ['gateway', 'timeline', 'timeline', 0], ['tweet', 'cassandra', 'tweet', 0], ['tweet', 'kafka', 'tweet', 0],
  ['kafka', 'fanout', 'fanout', 0], ['fanout', 'graph', 'fanout', -0.12], ['fanout', 'redis', 'fanout', 0],
  ['timeline', 'redis', 'timeline', 0], ['timeline', 'tweet', 'timeline', 0.65], ['timeline', 'graph', 'timeline', 0],
  ['graph', 'postgres', 'graph', 0],
];

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
      'and the timeline caches\' hit ratios: read by the gateway from every service\'s ',
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
  const center = (n) => [NODES[n].x + W / 2, NODES[n].y + H / 2];
  const svg = s('svg', { viewBox: '0 0 1010 480', class: 'architecture', role: 'img', 'aria-label': 'chirp architecture, live' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))),
    EDGES.map(([from, to, by, bend]) => {
      const [x1, y1] = center(from);
      const [tx, ty] = center(to);
      // The control point: off the middle of the line, perpendicular to it.
      const [cx, cy] = [(x1 + tx) / 2 - (ty - y1) * bend, (y1 + ty) / 2 + (tx - x1) * bend];
      const [x2, y2] = border(to, bend ? [cx, cy] : [x1, y1]);
      const busy = (services[by]?.requests_per_sec ?? 0) > 0;
      return s('path', {
        d: `M ${x1} ${y1} Q ${cx} ${cy} ${x2} ${y2}`, fill: 'none',
        class: `edge${busy ? ' busy' : ''}`, 'marker-end': 'url(#arrow)',
      });
    }),
    Object.entries(NODES).map(([name, node]) => box(name, node, services[name], live)));
  return svg;
}

/** Where a line from the point `[x1, y1]` to the middle of `to`'s box meets its border. */
function border(to, [x1, y1]) {
  const [x2, y2] = [NODES[to].x + W / 2, NODES[to].y + H / 2];
  const dx = x2 - x1;
  const dy = y2 - y1;
  const scale = Math.min(Math.abs((W / 2 + 4) / (dx || 1e-9)), Math.abs((H / 2 + 4) / (dy || 1e-9)));
  return [x2 - dx * scale, y2 - dy * scale];
}

function box(name, node, service, live) {
  const lines = [];
  let state = node.kind;
  if (node.kind === 'service') {
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
  return s('g', { class: `node ${state}`, transform: `translate(${node.x},${node.y})`, 'data-node': name },
    s('rect', { width: W, height: H, rx: node.kind === 'store' ? 14 : 6 }),
    s('text', { x: 10, y: 20, class: 'node-name' }, node.label),
    lines.map((line, i) => s('text', { x: 10, y: 38 + i * 15, class: 'node-line' }, line)));
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
