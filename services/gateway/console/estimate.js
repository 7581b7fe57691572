// The back-of-the-envelope estimate, interactive: the same arithmetic as
// `loadtest estimate` (load/src/estimate.rs), so the console and the
// command line agree figure for figure. Every assumption is an input.

import { h, num } from './dom.js';

const SECONDS_PER_DAY = 86400;

/** The inputs, with the defaults of `loadtest estimate`. */
const FIELDS = [
  { name: 'dau', label: 'daily active users', value: 200e6 },
  { name: 'posts', label: 'posts per user per day', value: 2 },
  { name: 'ratio', label: 'timeline reads per post (read:write)', value: 100 },
  { name: 'bytes', label: 'bytes stored per tweet', value: 300 },
  { name: 'peak', label: 'peak over average (an assumption)', value: 2 },
];

/** Writes/s, reads/s, peak reads/s and bytes per day and year. */
export function estimate({ dau, posts, ratio, bytes, peak }) {
  const tweetsPerDay = dau * posts;
  const writes = tweetsPerDay / SECONDS_PER_DAY;
  const reads = writes * ratio;
  return { writes, reads, peakReads: reads * peak, perDay: tweetsPerDay * bytes, perYear: tweetsPerDay * bytes * 365 };
}

/** "120.0 GB": decimal units, as `loadtest estimate` prints them. */
export function humanBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The form and its results, recomputed on every keystroke; `onChange(estimate, inputs)` follows them. */
export function estimator(onChange = () => {}) {
  const inputs = FIELDS.map((field) => h('input', { type: 'number', min: 0, step: 'any', name: field.name, value: field.value }));
  const out = h('dl', { class: 'facts estimate-out' });
  const update = () => {
    const values = Object.fromEntries(inputs.map((input) => [input.name, Number(input.value)]));
    const e = estimate(values);
    const fact = (key, label, value) => h('div', {}, h('dt', {}, label), h('dd', { 'data-out': key }, value));
    out.replaceChildren(
      fact('writes', 'writes (tweets) per second', num(e.writes, 0)),
      fact('reads', 'timeline reads per second', num(e.reads, 0)),
      fact('peak', `peak reads per second (×${num(values.peak, 2)})`, num(e.peakReads, 0)),
      fact('day', 'storage per day', humanBytes(e.perDay)),
      fact('year', 'storage per year', humanBytes(e.perYear)));
    onChange(e, values);
  };
  for (const input of inputs) input.addEventListener('input', update);
  update();
  return h('div', { class: 'estimator' },
    h('div', { class: 'estimate-in' }, FIELDS.map((field, i) => h('label', { class: 'small' }, field.label, inputs[i]))),
    out,
    h('p', { class: 'muted small' }, 'The same arithmetic as ', h('code', {}, 'loadtest estimate'),
      ' (load/src/estimate.rs). Reads are home-timeline reads; storage counts the tweets alone, ',
      'not timelines, indexes or replicas.'));
}
