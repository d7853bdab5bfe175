// The two charts, drawn as SVG sized to their container (redrawn on resize by the caller).
// x is a position in minutes of local wall-clock time since midnight of the first shown day.

import { addDays } from './data.js';

const NS = 'http://www.w3.org/2000/svg';
const MARGIN = { top: 14, right: 14, bottom: 26, left: 44 };

function svgElement(name, attributes = {}, parent = null) {
  const element = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (parent) parent.append(element);
  return element;
}

// A step of 1, 2 or 5 times a power of ten, so that about `ticks` steps cover `max`.
function niceStep(max, ticks) {
  const raw = Math.max(max, 1) / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return Math.max(1, step);
}

function hhmm(minuteOfDay) {
  const m = ((minuteOfDay % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

// "Tue 14": the day of a position.
export function dayLabel(from, position) {
  const date = addDays(from, Math.floor(position / 1440));
  return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-GB', {
    weekday: 'short',
    day: 'numeric',
    timeZone: 'UTC',
  });
}

// "Tue 14 Sep": the date of a position, with its month.
export function dateLabel(from, position) {
  const date = addDays(from, Math.floor(position / 1440));
  return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    timeZone: 'UTC',
  });
}

// "14 Sep": an axis label for long ranges.
function shortDate(from, position) {
  const date = addDays(from, Math.floor(position / 1440));
  return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

// A bucket's name in a tooltip: "13:15–13:30", "Tue 14 Sep", "Week of Mon 13 Sep".
function bucketLabel(from, at, size, multiDay) {
  if (size === 1) return timeLabel(from, at, multiDay);
  if (size === 1440) return dateLabel(from, at);
  if (size === 10080) return `Week of ${dateLabel(from, at)}`;
  return `${timeLabel(from, at, multiDay)}–${hhmm(at + size)}`;
}

// "13:15", or "Tue 14 13:15" when the chart spans several days.
export function timeLabel(from, position, multiDay) {
  return multiDay ? `${dayLabel(from, position)} ${hhmm(position)}` : hhmm(position);
}

// The frame shared by both charts: an svg, its plot area, x scale and x axis with hour or day ticks.
function frame(container, { domain, height, label, from }) {
  container.replaceChildren();
  const width = Math.max(280, Math.floor(container.clientWidth));
  const svg = svgElement('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label });
  container.append(svg);
  const plot = {
    left: MARGIN.left,
    right: width - MARGIN.right,
    top: MARGIN.top,
    bottom: height - MARGIN.bottom,
  };
  const [x0, x1] = domain;
  const x = (position) => plot.left + ((position - x0) / (x1 - x0)) * (plot.right - plot.left);
  const multiDay = x1 - x0 > 1440 || Math.floor(x0 / 1440) !== Math.floor((x1 - 1) / 1440);
  const axis = svgElement('g', { class: 'axis x' }, svg);
  const steps = [60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 40320, 80640];
  const step = steps.find((s) => ((x1 - x0) / s) * (multiDay && s < 1440 ? 78 : 52) <= plot.right - plot.left) ?? 80640;
  for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
    const px = x(t);
    svgElement('line', { x1: px, x2: px, y1: plot.top, y2: plot.bottom, class: 'grid' }, axis);
    const text = svgElement('text', { x: px, y: plot.bottom + 17, 'text-anchor': 'middle' }, axis);
    if (step >= 10080) text.textContent = shortDate(from, t);
    else
      text.textContent = t % 1440 === 0 && multiDay ? dayLabel(from, t) : timeLabel(from, t, multiDay && step >= 1440);
  }
  return { svg, plot, x, multiDay };
}

function yAxis(svg, plot, ticks) {
  const axis = svgElement('g', { class: 'axis y' }, svg);
  for (const { y, label, zero } of ticks) {
    svgElement('line', { x1: plot.left, x2: plot.right, y1: y, y2: y, class: zero ? 'zero' : 'grid' }, axis);
    const text = svgElement('text', { x: plot.left - 6, y: y + 4, 'text-anchor': 'end' }, axis);
    text.textContent = label;
  }
}

// A pointer-following guide line and tooltip; `describe(position)` gives the tooltip's lines or null.
function hover(container, svg, plot, x, domain, describe) {
  const guide = svgElement('line', { class: 'guide', y1: plot.top, y2: plot.bottom, visibility: 'hidden' }, svg);
  const tip = document.createElement('div');
  tip.className = 'tooltip';
  tip.hidden = true;
  container.append(tip);
  const hide = () => {
    tip.hidden = true;
    guide.setAttribute('visibility', 'hidden');
  };
  const show = (event) => {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * svg.viewBox.baseVal.width;
    if (px < plot.left || px > plot.right) return hide();
    const position = domain[0] + ((px - plot.left) / (plot.right - plot.left)) * (domain[1] - domain[0]);
    const lines = describe(position);
    if (!lines) return hide();
    tip.replaceChildren(...lines.map((line) => Object.assign(document.createElement('div'), { textContent: line })));
    tip.hidden = false;
    guide.setAttribute('x1', px);
    guide.setAttribute('x2', px);
    guide.setAttribute('visibility', 'visible');
    const left = Math.min(Math.max(event.clientX - box.left + 12, 0), box.width - tip.offsetWidth - 4);
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${plot.top}px`;
  };
  svg.addEventListener('pointermove', show);
  svg.addEventListener('pointerdown', show);
  svg.addEventListener('pointerleave', hide);
}

// Entries (up) and exits (down) per bucket; the comparison as outlines.
// `primary`/`compare`: [{ at, entries, exits }]; `size`: bucket minutes.
export function drawFlow(container, { primary, compare, size, domain, from, height, labels }) {
  const max = Math.max(1, ...[...primary, ...(compare ?? [])].flatMap((b) => [b.entries, b.exits]));
  const step = niceStep(max, 2);
  const top = Math.ceil(max / step) * step;
  const label = `Entries and exits per ${labels.size}: ${primary.length} bucket${primary.length === 1 ? '' : 's'}`;
  const { svg, plot, x, multiDay } = frame(container, { domain, height, label, from });
  const zero = (plot.top + plot.bottom) / 2;
  const half = (plot.bottom - plot.top) / 2;
  const up = (value) => zero - (value / top) * half;
  const down = (value) => zero + (value / top) * half;
  const ticks = [{ y: zero, label: '0', zero: true }];
  for (let v = step; v <= top; v += step) ticks.push({ y: up(v), label: v }, { y: down(v), label: v });
  yAxis(svg, plot, ticks);

  const bars = svgElement('g', { class: 'bars', 'data-points': primary.length }, svg);
  const bucketWidth = x(domain[0] + size) - x(domain[0]);
  const barWidth = bucketWidth > 4 ? bucketWidth - 1 : Math.max(bucketWidth, 0.75);
  for (const bucket of primary) {
    const group = svgElement(
      'g',
      { class: 'bucket', 'data-at': bucket.at, 'data-entries': bucket.entries, 'data-exits': bucket.exits },
      bars,
    );
    const left = x(bucket.at);
    svgElement(
      'rect',
      { class: 'entries', x: left, y: up(bucket.entries), width: barWidth, height: zero - up(bucket.entries) },
      group,
    );
    svgElement('rect', { class: 'exits', x: left, y: zero, width: barWidth, height: down(bucket.exits) - zero }, group);
  }
  if (compare) {
    const outline = (value, y) =>
      compare.map((b) => `M${x(b.at)},${zero}V${y(value(b))}H${x(b.at + size)}V${zero}`).join('');
    const attributes = { class: 'compare', 'data-points': compare.length, fill: 'none' };
    svgElement('path', { ...attributes, d: outline((b) => b.entries, up), 'data-series': 'entries' }, svg);
    svgElement('path', { ...attributes, d: outline((b) => b.exits, down), 'data-series': 'exits' }, svg);
  }

  // Bucket starts are multiples of the size from the first bucket's (weeks start on a Monday).
  const origin = primary.length ? ((primary[0].at % size) + size) % size : 0;
  const find = (series, position) => {
    const at = Math.floor((position - origin) / size) * size + origin;
    return series?.find((b) => b.at === at) ?? { at, entries: 0, exits: 0 };
  };
  hover(container, svg, plot, x, domain, (position) => {
    const bucket = find(primary, position);
    const range = bucketLabel(from, bucket.at, size, multiDay);
    const lines = [range, `${labels.primary}: ${bucket.entries} in, ${bucket.exits} out`];
    if (compare) {
      const other = find(compare, position);
      lines.push(`${labels.compare}: ${other.entries} in, ${other.exits} out`);
    }
    return lines;
  });
}

// A step path through occupancy points (each value holds until the next point), broken between days.
function stepPath(points, x, y) {
  let d = '';
  let day = null;
  for (const point of points) {
    const pointDay = Math.floor(point.at / 1440);
    if (pointDay !== day) {
      d += `M${x(point.at)},${y(point.value)}`;
      day = pointDay;
    } else {
      d += `H${x(point.at)}V${y(point.value)}`;
    }
  }
  return d;
}

// Occupancy over the range as a line; the comparison dashed; the peak marked.
// `primary`/`compare`: [{ at, value }]; `peak`: { at, value } or null.
export function drawOccupancy(container, { primary, compare, peak, domain, from, height, labels }) {
  const max = Math.max(1, ...[...primary, ...(compare ?? [])].map((p) => p.value));
  const step = niceStep(max, 4);
  const top = Math.ceil(max / step) * step;
  const label = `Occupancy: ${primary.length} points${peak ? `, peak ${peak.value}` : ''}`;
  const { svg, plot, x, multiDay } = frame(container, { domain, height, label, from });
  const y = (value) => plot.bottom - (value / top) * (plot.bottom - plot.top);
  const ticks = [];
  for (let v = 0; v <= top; v += step) ticks.push({ y: y(v), label: v, zero: v === 0 });
  yAxis(svg, plot, ticks);

  if (compare) {
    svgElement(
      'path',
      { class: 'compare', d: stepPath(compare, x, y), 'data-points': compare.length, fill: 'none' },
      svg,
    );
  }
  const line = stepPath(primary, x, y);
  // The area under the line: each day's sub-path closed down to zero.
  const area = line
    .split('M')
    .filter(Boolean)
    .map((part) => {
      const [start] = part.split(/[HV]/);
      const [sx] = start.split(',');
      return `M${part}V${y(0)}H${sx}Z`;
    })
    .join('');
  svgElement('path', { class: 'area', d: area }, svg);
  svgElement('path', { class: 'occupancy', d: line, 'data-points': primary.length, fill: 'none' }, svg);
  if (peak) {
    svgElement('circle', { class: 'peak', cx: x(peak.at), cy: y(peak.value), r: 4 }, svg);
  }

  const valueAt = (series, position) => {
    const day = Math.floor(position / 1440);
    let found = null;
    for (const point of series ?? []) {
      if (point.at > position) break;
      if (Math.floor(point.at / 1440) === day) found = point;
    }
    return found;
  };
  hover(container, svg, plot, x, domain, (position) => {
    const point = valueAt(primary, position);
    const lines = [
      timeLabel(from, Math.floor(position), multiDay),
      `${labels.primary}: ${point ? point.value : '–'} inside`,
    ];
    if (compare) {
      const other = valueAt(compare, position);
      lines.push(`${labels.compare}: ${other ? other.value : '–'} inside`);
    }
    return lines;
  });
}

// Occupancy of long ranges: each bucket's (day's) peak as a column, the comparison as outlines, the
// highest marked. `primary`/`compare`: [{ at, value }]; `size`: bucket minutes.
export function drawPeaks(container, { primary, compare, size, domain, from, height, labels }) {
  const max = Math.max(1, ...[...primary, ...(compare ?? [])].map((p) => p.value));
  const step = niceStep(max, 4);
  const top = Math.ceil(max / step) * step;
  const label = `Peak occupancy per day: ${primary.length} days`;
  const { svg, plot, x } = frame(container, { domain, height, label, from });
  const y = (value) => plot.bottom - (value / top) * (plot.bottom - plot.top);
  const ticks = [];
  for (let v = 0; v <= top; v += step) ticks.push({ y: y(v), label: v, zero: v === 0 });
  yAxis(svg, plot, ticks);
  const width = x(domain[0] + size) - x(domain[0]);
  const barWidth = width > 4 ? width - 1 : Math.max(width, 0.75);
  const bars = svgElement('g', { class: 'peaks', 'data-points': primary.length }, svg);
  let highest = null;
  for (const point of primary) {
    svgElement(
      'rect',
      {
        class: 'peak-bar',
        x: x(point.at),
        y: y(point.value),
        width: barWidth,
        height: y(0) - y(point.value),
        'data-at': point.at,
        'data-value': point.value,
      },
      bars,
    );
    if (highest === null || point.value > highest.value) highest = point;
  }
  if (highest)
    svgElement('circle', { class: 'peak', cx: x(highest.at) + barWidth / 2, cy: y(highest.value), r: 4 }, svg);
  if (compare) {
    const d = compare.map((p) => `M${x(p.at)},${y(0)}V${y(p.value)}H${x(p.at + size)}V${y(0)}`).join('');
    svgElement('path', { class: 'compare', d, 'data-points': compare.length, fill: 'none' }, svg);
  }
  const find = (series, position) => series?.find((p) => p.at <= position && position < p.at + size) ?? null;
  hover(container, svg, plot, x, domain, (position) => {
    const at = Math.floor(position / size) * size;
    const point = find(primary, position);
    const lines = [dateLabel(from, at), `${labels.primary}: peak ${point ? point.value : '–'}`];
    if (compare) {
      const other = find(compare, position);
      lines.push(`${labels.compare}: peak ${other ? other.value : '–'}`);
    }
    return lines;
  });
}

// Average entries per weekday (rows, Monday first) and hour (columns), as shaded cells with the value on
// hover. `map`: data.heatmap()'s { cells, max }; `describe(cell)` gives a cell's tooltip lines.
export function drawHeatmap(container, { map, weekdays, describe }) {
  container.replaceChildren();
  const width = Math.max(300, Math.floor(container.clientWidth));
  const left = 36;
  const top = 4;
  const bottom = 20;
  const cellWidth = (width - left - 2) / 24;
  const cellHeight = Math.max(16, Math.min(30, cellWidth * 0.9));
  const height = top + 7 * cellHeight + bottom;
  const svg = svgElement('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': `Average entries by weekday and hour, highest ${map.max.toFixed(1)}`,
  });
  container.append(svg);
  const axis = svgElement('g', { class: 'axis' }, svg);
  weekdays.forEach((name, day) => {
    const text = svgElement('text', { x: left - 6, y: top + (day + 0.5) * cellHeight + 4, 'text-anchor': 'end' }, axis);
    text.textContent = name;
  });
  const every = cellWidth < 22 ? 3 : 1;
  for (let hour = 0; hour < 24; hour += every) {
    const text = svgElement(
      'text',
      { x: left + (hour + 0.5) * cellWidth, y: top + 7 * cellHeight + 14, 'text-anchor': 'middle' },
      axis,
    );
    text.textContent = String(hour).padStart(2, '0');
  }
  const cells = svgElement('g', { class: 'cells', 'data-points': map.cells.length }, svg);
  for (const cell of map.cells) {
    const level = cell.average === null || map.max === 0 ? 0 : cell.average / map.max;
    svgElement(
      'rect',
      {
        class: cell.average === null ? 'cell none' : cell.average === 0 ? 'cell zero' : 'cell',
        x: left + cell.hour * cellWidth + 1,
        y: top + cell.weekday * cellHeight + 1,
        width: Math.max(cellWidth - 2, 1),
        height: cellHeight - 2,
        rx: 2,
        'fill-opacity': cell.average ? (0.08 + 0.92 * level).toFixed(3) : 1,
        'data-weekday': cell.weekday,
        'data-hour': cell.hour,
        'data-value': cell.average ?? '',
      },
      cells,
    );
  }
  const tip = document.createElement('div');
  tip.className = 'tooltip';
  tip.hidden = true;
  container.append(tip);
  const hide = () => {
    tip.hidden = true;
  };
  const show = (event) => {
    const target = event.target;
    if (!(target instanceof SVGElement) || !target.classList.contains('cell')) return hide();
    const cell = map.cells[Number(target.dataset.weekday) * 24 + Number(target.dataset.hour)];
    tip.replaceChildren(
      ...describe(cell).map((line) => Object.assign(document.createElement('div'), { textContent: line })),
    );
    tip.hidden = false;
    const box = svg.getBoundingClientRect();
    const cellBox = target.getBoundingClientRect();
    const leftPx = Math.min(Math.max(cellBox.right - box.left + 6, 0), box.width - tip.offsetWidth - 4);
    tip.style.left = `${Math.max(0, leftPx)}px`;
    tip.style.top = `${Math.max(0, cellBox.bottom - box.top + 4)}px`;
  };
  svg.addEventListener('pointermove', show);
  svg.addEventListener('pointerdown', show);
  svg.addEventListener('pointerleave', hide);
}
