// A small SVG line chart for the overview: time on x over a fixed window
// ending now, one line (with a faint area) per series. Hand-written so the
// console needs no chart library; it draws a few hundred points at most.
// The rendered <svg> carries its data as attributes (data-samples on the
// chart, data-series and data-last on each line) for tests and tooling.

import { s } from './dom.js';

const WIDTH = 560;
const HEIGHT = 190;
const PAD = { left: 62, right: 12, top: 12, bottom: 24 };

/** The smallest "round" number (1, 2, 2.5, 5 × 10^n) at or above `value`. */
function niceCeil(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

/**
 * Renders `samples` ([{t: ms, values: {series: number}}], oldest first) as
 * an <svg>. `series`: [{key, label, color}]; `format(value)` labels the y axis.
 */
/** Where the time axis is labelled: a round step giving at most five intervals. */
function timeTicks(spanMs) {
  const step = [10000, 15000, 30000, 60000, 120000, 300000].find((candidate) => spanMs / candidate <= 5) || 600000;
  const ticks = [];
  for (let back = 0; back <= spanMs; back += step) ticks.push(back);
  return ticks;
}

function ago(ms) {
  if (ms === 0) return 'now';
  return ms < 60000 ? `−${ms / 1000} s` : `−${ms / 60000} min`;
}

/**
 * Renders `samples` ([{t: ms, values: {series: number}}], oldest first) as
 * an <svg>. `series`: [{key, label, color}]; `format(value)` labels the y
 * axis and `ceil(max, niceCeil)` picks its top. The time axis ends now and spans the samples held, at least a
 * minute and at most `windowMs`, so a fresh page is not a flat sliver.
 */
export function lineChart({ name, series, samples, windowMs, now, format, ceil = niceCeil }) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const oldest = samples.length ? samples[0].t : now;
  const spanMs = Math.min(windowMs, Math.max(60000, now - oldest));
  const start = now - spanMs;
  const visible = samples.filter((sample) => sample.t >= start);
  let max = 0;
  for (const sample of visible) {
    for (const { key } of series) max = Math.max(max, sample.values[key] || 0);
  }
  const top = ceil(max, niceCeil);
  const x = (t) => PAD.left + ((t - start) / spanMs) * plotWidth;
  const y = (value) => PAD.top + plotHeight - (value / top) * plotHeight;

  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'chart',
    role: 'img',
    'aria-label': series.map((line) => line.label).join(' and ') + ' over the last minutes',
    dataset: { chart: name, samples: visible.length, max: top },
  });
  for (let tick = 0; tick <= 4; tick += 1) {
    const value = (top * tick) / 4;
    svg.append(
      s('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: tick === 0 ? 'axis' : 'grid' }),
      s('text', { x: PAD.left - 8, y: y(value) + 4, 'text-anchor': 'end', class: 'tick' }, format(value)),
    );
  }
  for (const back of timeTicks(spanMs)) {
    const px = x(now - back);
    const anchor = back === 0 ? 'end' : px - PAD.left < 30 ? 'start' : 'middle';
    svg.append(s('text', { x: px, y: HEIGHT - 6, 'text-anchor': anchor, class: 'tick' }, ago(back)));
  }
  if (visible.length < 2) {
    svg.append(s('text', { x: PAD.left + plotWidth / 2, y: PAD.top + plotHeight / 2, 'text-anchor': 'middle', class: 'chart-wait' }, 'Collecting samples…'));
  }
  for (const { key, color } of series) {
    const points = visible.map((sample) => [x(sample.t), y(sample.values[key] || 0)]);
    const last = visible.length ? visible[visible.length - 1].values[key] || 0 : 0;
    const line = points.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
    if (points.length >= 2) {
      const base = y(0).toFixed(1);
      svg.append(s('path', { d: `${line} L${points[points.length - 1][0].toFixed(1)},${base} L${points[0][0].toFixed(1)},${base} Z`, fill: color, class: 'area' }));
    }
    svg.append(s('path', { d: line || 'M0,0', stroke: color, class: 'line', dataset: { series: key, last: Number(last.toFixed(3)) } }));
  }
  return svg;
}
