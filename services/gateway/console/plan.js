// The capacity plan: the estimate's load divided by what this machine
// measured. The measured figures are the committed runs' (capacity.json,
// written by deploy/render-docs.py): from docs/runs/bench/, the CPU each
// process spends per cached home-timeline page read through the gateway and
// the inserts/s of one fan-out worker, which also sets the Kafka partitions
// (a partition is consumed by one worker at a time); from
// docs/runs/bench-scale/, Redis bytes per timeline entry. The plan is
// arithmetic on them, every assumption an input beside it, and a figure no
// committed run measured is not planned: the row says how to measure it.

import { h, num } from './dom.js';
import { humanBytes } from './estimate.js';

/** The processes of a page read, as the bench names them; the load generator is not one. */
const PROCESSES = [['gateway', 'gateway'], ['timeline', 'timeline service'], ['redis-server', 'Redis'],
  ['java', 'Cassandra (the JVM)'], ['tweet', 'tweet service'], ['postgres', 'Postgres']];

/** Cores (or instances) for `perSec` at `busy` utilisation, given the cost of one. */
export function cores(perSec, microsEach, busy) {
  return Math.ceil((perSec * microsEach) / 1e6 / busy);
}

/**
 * The plan's element, and `update(estimate, inputs)` to recompute it when
 * the estimate changes. `measured` is capacity.json.
 */
export function capacityPlan(measured) {
  if (!measured.cpu_us_per_page) {
    return { element: h('p', { class: 'muted no-run' }, measured.note), update() {} };
  }
  const followers = h('input', { type: 'number', min: 0, step: 'any', name: 'followers', value: 200 });
  const busy = h('input', { type: 'number', min: 0.05, max: 1, step: 0.05, name: 'busy', value: 0.5 });
  const shardGb = h('input', { type: 'number', min: 1, step: 'any', name: 'shard_gb', value: 25 });
  // TIMELINE_CAPACITY's default: a setting, not a measurement, so an input.
  const entries = h('input', { type: 'number', min: 1, step: 1, name: 'entries', value: 800 });
  const perWorker = h('input', { type: 'number', min: 1, step: 1, name: 'partitions_per_worker', value: 1 });
  const bytesPerEntry = measured.redis_bytes_per_entry;
  const body = h('tbody', {});
  let last;
  const update = (estimate, inputs) => {
    last = [estimate, inputs];
    const load = Number(busy.value) || 1;
    const row = (key, what, value, how) => h('tr', { 'data-plan': key }, h('td', {}, what), h('td', { class: 'plan-value' }, value), h('td', { class: 'muted small' }, how));
    const writes = estimate.writes * Number(followers.value);
    const workers = cores(writes, 1e6 / measured.fanout_worker_inserts_per_sec, load);
    const memory = bytesPerEntry ? inputs.dau * Number(entries.value) * bytesPerEntry : null;
    const redisCores = cores(estimate.peakReads, measured.cpu_us_per_page['redis-server'] ?? 0, load);
    const shards = Math.max(memory === null ? 0 : Math.ceil(memory / (Number(shardGb.value) * 1e9)), redisCores);
    const on = measured.fanout_measured_on;
    body.replaceChildren(
      ...PROCESSES.filter(([name]) => measured.cpu_us_per_page[name] !== undefined).map(([name, label]) => {
        const us = measured.cpu_us_per_page[name];
        return row(name, `${label}, cores`, num(cores(estimate.peakReads, us, load), 0),
          `peak reads/s × ${num(us, 1)} µs of CPU per page ÷ ${num(load, 2)}`);
      }),
      row('fanout', 'fan-out workers', num(workers, 0),
        `${num(writes, 0)} timeline writes/s ÷ ${num(measured.fanout_worker_inserts_per_sec, 0)} inserts/s per worker `
        + `(measured${on ? `: ${num(on.events, 0)} tweets to ${num(on.followers, 0)} followers each` : ''}) ÷ ${num(load, 2)}`),
      row('kafka-partitions', 'Kafka partitions (tweet-events)', num(workers * Number(perWorker.value), 0),
        `fan-out workers × ${num(Number(perWorker.value), 0)} partition(s) per worker: a partition is consumed by one worker `
        + 'of the group at a time, so fewer partitions than workers would leave workers idle; more leave room to add workers '
        + 'without repartitioning (which would move authors between partitions, and their events\' order with them)'),
      row('redis-memory', 'Redis memory for timelines', memory === null ? 'not planned' : humanBytes(memory),
        memory === null ? measured.redis_note
          : `${num(inputs.dau, 0)} timelines (a timeline unread for TIMELINE_TTL_SECS expires) × ${num(Number(entries.value), 0)} entries × `
            + `${num(bytesPerEntry, 1)} bytes per entry, measured with its key's overhead: ${measured.redis_note}`),
      row('redis-shards', 'Redis shards', num(shards, 0),
        memory === null ? 'Redis\'s cores only (one thread each): its memory is not planned'
          : `the more of memory ÷ ${num(Number(shardGb.value), 1)} GB per shard and Redis's cores (one thread each)`));
  };
  for (const input of [followers, busy, shardGb, entries, perWorker]) input.addEventListener('input', () => last && update(...last));
  const element = h('div', { class: 'plan' },
    h('h3', {}, 'What this machine measured, turned into a plan'),
    h('div', { class: 'estimate-in' },
      h('label', { class: 'small' }, 'timeline writes per post (followers pushed to, an assumption)', followers),
      h('label', { class: 'small' }, 'busiest a core may run (an assumption)', busy),
      h('label', { class: 'small' }, 'memory per Redis shard, GB (an assumption)', shardGb),
      h('label', { class: 'small' }, 'entries kept per timeline (TIMELINE_CAPACITY)', entries),
      h('label', { class: 'small' }, 'Kafka partitions per fan-out worker (an assumption)', perWorker)),
    h('table', { class: 'table plan-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'for the peak'), h('th', {}, 'needs'), h('th', {}, 'from'))), body),
    h('p', { class: 'muted small' }, measured.note, ' CPU per page is each process\'s CPU time over the cached pages ',
      'it served through the gateway, all on one machine; it assumes a page costs the same at scale, and counts ',
      'reads only (hybrid pushes go to the fan-out workers). Not planned yet: replicas.'));
  return { element, update };
}
