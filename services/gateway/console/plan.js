// The capacity plan: the estimate's load divided by what this machine
// measured. The measured figures are the committed bench run's
// (capacity.json, written by deploy/render-docs.py from docs/runs/bench/):
// the CPU each process spends per cached home-timeline page read through
// the gateway, and the inserts/s of one fan-out worker. The plan is
// arithmetic on them, every assumption an input beside it.

import { h, num } from './dom.js';

/** The processes of a page read, as the bench names them; the load generator is not one. */
const PROCESSES = [['gateway', 'gateway'], ['timeline', 'timeline service'], ['redis-server', 'Redis'],
  ['java', 'Cassandra (the JVM)'], ['tweet', 'tweet service'], ['postgres', 'Postgres']];

/** Cores (or instances) for `perSec` at `busy` utilisation, given the cost of one. */
export function cores(perSec, microsEach, busy) {
  return Math.ceil((perSec * microsEach) / 1e6 / busy);
}

/**
 * The plan's element, and `update(estimate)` to recompute it when the
 * estimate changes. `measured` is capacity.json.
 */
export function capacityPlan(measured) {
  if (!measured.cpu_us_per_page) {
    return { element: h('p', { class: 'muted no-run' }, measured.note), update() {} };
  }
  const followers = h('input', { type: 'number', min: 0, step: 'any', name: 'followers', value: 200 });
  const busy = h('input', { type: 'number', min: 0.05, max: 1, step: 0.05, name: 'busy', value: 0.5 });
  const body = h('tbody', {});
  let last;
  const update = (estimate) => {
    last = estimate;
    const load = Number(busy.value) || 1;
    const row = (key, what, value, how) => h('tr', { 'data-plan': key }, h('td', {}, what), h('td', { class: 'plan-value' }, value), h('td', { class: 'muted small' }, how));
    const writes = estimate.writes * Number(followers.value);
    body.replaceChildren(
      ...PROCESSES.filter(([name]) => measured.cpu_us_per_page[name] !== undefined).map(([name, label]) => {
        const us = measured.cpu_us_per_page[name];
        return row(name, `${label}, cores`, num(cores(estimate.peakReads, us, load), 0),
          `peak reads/s × ${num(us, 1)} µs of CPU per page ÷ ${num(load, 2)}`);
      }),
      row('fanout', 'fan-out workers', num(cores(writes, 1e6 / measured.fanout_worker_inserts_per_sec, load), 0),
        `${num(writes, 0)} timeline writes/s ÷ ${num(measured.fanout_worker_inserts_per_sec, 0)} inserts/s per worker ÷ ${num(load, 2)}`));
  };
  for (const input of [followers, busy]) input.addEventListener('input', () => last && update(last));
  const element = h('div', { class: 'plan' },
    h('h3', {}, 'What this machine measured, turned into a plan'),
    h('div', { class: 'estimate-in' },
      h('label', { class: 'small' }, 'timeline writes per post (followers pushed to, an assumption)', followers),
      h('label', { class: 'small' }, 'busiest a core may run (an assumption)', busy)),
    h('table', { class: 'table plan-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'for the peak'), h('th', {}, 'needs'), h('th', {}, 'from'))), body),
    h('p', { class: 'muted small' }, measured.note, ' CPU per page is each process\'s CPU time over the cached pages ',
      'it served through the gateway, all on one machine; it assumes a page costs the same at scale, and counts ',
      'reads only (hybrid pushes go to the fan-out workers). Not planned yet: Redis memory and shards, Kafka partitions.'));
  return { element, update };
}
