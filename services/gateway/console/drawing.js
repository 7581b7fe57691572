// The architecture drawing: where each box sits and which arrows join them,
// shared by the System view (each box with its live numbers) and the
// interview's flows (each box lit in turn with a request's measured time),
// so that both draw the same system.

import { s } from './dom.js';

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

/**
 * The drawing as SVG. `node(name, kind)` says what a box shows, as
 * `{ state, lines }` (`state`: classes added to its kind); `edge(from, to, by)`
 * the classes of an arrow ('' for none).
 */
export function architecture({ label, node, edge }) {
  const center = (n) => [NODES[n].x + W / 2, NODES[n].y + H / 2];
  return s('svg', { viewBox: '0 0 1010 480', class: 'architecture', role: 'img', 'aria-label': label },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))),
    EDGES.map(([from, to, by, bend]) => {
      const [x1, y1] = center(from);
      const [tx, ty] = center(to);
      // The control point: off the middle of the line, perpendicular to it.
      const [cx, cy] = [(x1 + tx) / 2 - (ty - y1) * bend, (y1 + ty) / 2 + (tx - x1) * bend];
      const [x2, y2] = border(to, bend ? [cx, cy] : [x1, y1]);
      const extra = edge(from, to, by);
      return s('path', {
        d: `M ${x1} ${y1} Q ${cx} ${cy} ${x2} ${y2}`, fill: 'none',
        class: `edge${extra ? ` ${extra}` : ''}`, 'marker-end': 'url(#arrow)', 'data-edge': `${from}-${to}`,
      });
    }),
    Object.entries(NODES).map(([name, at]) => {
      const { state = '', lines = [] } = node(name, at.kind);
      return s('g', { class: `node ${at.kind}${state ? ` ${state}` : ''}`, transform: `translate(${at.x},${at.y})`, 'data-node': name },
        s('rect', { width: W, height: H, rx: at.kind === 'store' ? 14 : 6 }),
        s('text', { x: 10, y: 20, class: 'node-name' }, at.label),
        lines.map((line, i) => s('text', { x: 10, y: 38 + i * 15, class: 'node-line' }, line)));
    }));
}

/** Where a line from the point `[x1, y1]` to the middle of `to`'s box meets its border. */
function border(to, [x1, y1]) {
  const [x2, y2] = [NODES[to].x + W / 2, NODES[to].y + H / 2];
  const dx = x2 - x1;
  const dy = y2 - y1;
  const scale = Math.min(Math.abs((W / 2 + 4) / (dx || 1e-9)), Math.abs((H / 2 + 4) / (dy || 1e-9)));
  return [x2 - dx * scale, y2 - dy * scale];
}
