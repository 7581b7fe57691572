// Small SVG charts, drawn by hand: a grouped bar chart is forty lines, a
// charting library would be the biggest file of the console.

import { num, s } from './dom.js';

export const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6'];

/**
 * Grouped bars. `groups`: [{label, values: [number, …]}], one value per
 * series; `series`: names. `log` puts the y axis on a log10 scale (values
 * of 0 are drawn as a stub), for values spanning orders of magnitude.
 */
export function groupedBars({ title, unit, groups, series, log = false, width = 440, height = 260 }) {
  const pad = { left: 48, right: 10, top: 30, bottom: 46 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const values = groups.flatMap((g) => g.values).filter((v) => v > 0);
  const max = Math.max(1, ...values);
  const lo = log ? 10 ** Math.floor(Math.log10(Math.min(...values, 1))) : 0;
  const step = niceStep((max * 1.1) / 4);
  const hi = log ? 10 ** Math.ceil(Math.log10(max)) : step * 4;
  const y = (v) => {
    if (log) {
      if (v <= 0) return plotH - 2;
      return plotH - (plotH * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
    }
    return plotH - (plotH * v) / hi;
  };
  const ticks = log
    ? Array.from({ length: Math.log10(hi / lo) + 1 }, (_, i) => lo * 10 ** i)
    : [0, step, 2 * step, 3 * step, 4 * step];
  const groupW = plotW / groups.length;
  const barW = Math.min(34, (groupW * 0.8) / series.length);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title },
    s('text', { x: pad.left, y: 18, class: 'chart-title' }, title, unit ? ` (${unit}${log ? ', log scale' : ''})` : ''),
    s('g', { transform: `translate(${pad.left},${pad.top})` },
      ticks.map((t) => s('g', {},
        s('line', { x1: 0, x2: plotW, y1: y(t), y2: y(t), class: 'grid' }),
        s('text', { x: -6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }, num(t, t < 10 ? 1 : 0)))),
      groups.map((g, gi) => s('g', { transform: `translate(${gi * groupW},0)` },
        g.values.map((v, si) => {
          const x = (groupW - barW * series.length) / 2 + si * barW;
          const top = y(v);
          return s('g', {},
            s('rect', { x, y: top, width: barW - 3, height: Math.max(1, plotH - top), fill: COLORS[si % COLORS.length], rx: 2 },
              s('title', {}, `${g.label}, ${series[si]}: ${num(v, 1)}`)),
            s('text', { x: x + (barW - 3) / 2, y: top - 4, class: 'value', 'text-anchor': 'middle' }, num(v, v < 10 ? 1 : 0)));
        }),
        s('text', { x: groupW / 2, y: plotH + 18, class: 'label', 'text-anchor': 'middle' }, g.label)))),
    s('g', { transform: `translate(${pad.left},${height - 12})` },
      series.map((name, si) => s('g', { transform: `translate(${si * 130},0)` },
        s('rect', { x: 0, y: -9, width: 10, height: 10, fill: COLORS[si % COLORS.length], rx: 2 }),
        s('text', { x: 14, y: 0, class: 'legend' }, name)))));
  return svg;
}

/** A line of the last values, for a rate over time. */
export function sparkline(values, { width = 220, height = 40, label = '' } = {}) {
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 4 - ((height - 8) * v) / max).toFixed(1)}`);
  return s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'spark', role: 'img', 'aria-label': label },
    s('polyline', { points: points.join(' '), fill: 'none', stroke: COLORS[0], 'stroke-width': 2 }),
    s('text', { x: width - 2, y: 11, 'text-anchor': 'end', class: 'tick' }, `max ${num(max, 1)}`));
}

/** The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `raw`. */
function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
}
