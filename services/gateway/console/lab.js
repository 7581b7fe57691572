// Strategy lab: push, pull and hybrid compared on the same data, as
// `experiment strategies` measured them. The console ships the committed
// run of docs/runs/bench/ (deploy/render-docs.py writes strategies.json from
// it; without one the file says so and holds no strategy); a strategies.json
// of your own run (written to the experiment's --out directory) can be
// opened instead. Below it, the policies of real networks side by side
// (`experiment policies`, policies.js), from their own committed runs.

import { api } from './api.js';
import { h, mount, num } from './dom.js';
import { groupedBars } from './charts.js';
import { policiesSection } from './policies.js';

export function labView(main) {
  const plots = h('div', { class: 'plots' }, h('p', { class: 'muted' }, 'loading…'));
  const file = h('input', { type: 'file', accept: 'application/json,.json' });
  file.addEventListener('change', async () => {
    const [chosen] = file.files;
    if (!chosen) return;
    try {
      draw(plots, JSON.parse(await chosen.text()), chosen.name);
    } catch (error) {
      mount(plots, h('p', { class: 'error' }, `not a strategies.json: ${error.message}`));
    }
  });
  mount(main, h('section', { class: 'column wide' },
    h('h1', {}, 'Strategy lab: push, pull, hybrid'),
    h('p', {}, 'The same graph and the same load under each TIMELINE_STRATEGY. ',
      'Push pays at write time (one Redis write per follower), pull at read time (every followee merged on each read), ',
      'hybrid pushes ordinary authors and pulls celebrities.'),
    h('label', { class: 'muted small' }, 'Open the strategies.json of your own run: ', file),
    plots,
    policiesSection()));
  api.strategies().then(({ body }) => draw(plots, body, 'the committed run'),
    (error) => mount(plots, h('p', { class: 'error' }, error.message)));
}

function draw(plots, results, from) {
  const rows = results.strategies;
  if (!rows.length) {
    mount(plots, h('p', { class: 'muted no-run' }, results.note || `No strategy in ${from}.`));
    return;
  }
  const groups = (pick) => rows.map((row) => ({ label: row.strategy, values: pick(row) }));
  mount(plots,
    h('p', { class: 'muted small' }, `${results.note || `From ${from}.`} ${num(results.users, 0)} users, `,
      `celebrity threshold ${num(results.celebrity_threshold, 0)}.`),
    h('div', { class: 'chart-grid' },
      groupedBars({
        title: 'Redis writes per tweet', unit: 'writes', log: true,
        series: ['ordinary author', 'celebrity'],
        groups: groups((r) => [r.ordinary.writes.per_tweet, r.celebrity.writes.per_tweet]),
      }),
      groupedBars({
        title: 'Home timeline read', unit: 'ms',
        series: ['p50', 'p99'],
        groups: groups((r) => [r.home_timeline.p50_ms, r.home_timeline.p99_ms]),
      }),
      groupedBars({
        title: 'Post to visible, p99', unit: 'ms', log: true,
        series: ['ordinary author', 'celebrity'],
        groups: groups((r) => [r.ordinary.visible.p99_ms, r.celebrity.visible.p99_ms]),
      })),
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['strategy', 'writes / tweet (mixed load)', 'ordinary', 'celebrity',
        'read p50 / p99 ms', 'visible ordinary p99 ms', 'visible celebrity p99 ms'].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {},
        h('td', {}, r.strategy), h('td', {}, num(r.load.per_tweet, 1)),
        h('td', {}, num(r.ordinary.writes.per_tweet, 0)), h('td', {}, num(r.celebrity.writes.per_tweet, 0)),
        h('td', {}, `${num(r.home_timeline.p50_ms, 1)} / ${num(r.home_timeline.p99_ms, 1)}`),
        h('td', {}, num(r.ordinary.visible.p99_ms, 0)), h('td', {}, num(r.celebrity.visible.p99_ms, 0)))))));
}
