// Pure functions over API rows: local days and their UTC bounds, buckets, headline figures, CSV.
// No DOM here, so Node's test runner can import this file as is.
//
// Times are store-local. A row's `minute` ("2023-10-26T15:06:00+03:00") carries the local wall-clock
// time and its UTC offset; its first ten characters are the store's local date, which is what a local
// day is filtered on, so a day is right even when its offset differs from the one we guessed.

const MINUTE_MS = 60_000;
const DAY_MINUTES = 1440;

// Parses a `minute` string: local date, minute of the local day, UTC offset (minutes) and instant (ms).
export function parseMinute(text) {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):\d{2}(?:Z|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!match) throw new Error(`unexpected minute ${JSON.stringify(text)}`);
  const [, date, hh, mm, sign, oh, om] = match;
  const offset = sign ? (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) : 0;
  return { date, minuteOfDay: Number(hh) * 60 + Number(mm), offset, instant: Date.parse(text) };
}

// "+03:00" style text of an offset in minutes.
export function formatOffset(offset) {
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

// The local date (YYYY-MM-DD) at instant `now` (ms) in a zone at `offset` minutes from UTC.
export function localDate(now, offset) {
  return new Date(now + offset * MINUTE_MS).toISOString().slice(0, 10);
}

// `date` plus `days` days (YYYY-MM-DD, calendar arithmetic, no time zone involved).
export function addDays(date, days) {
  const ms = Date.parse(`${date}T00:00:00Z`) + days * DAY_MINUTES * MINUTE_MS;
  return new Date(ms).toISOString().slice(0, 10);
}

// Whole days from `from` to `to` (0 when equal).
export function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / (DAY_MINUTES * MINUTE_MS));
}

// The dates from `from` to `to` inclusive.
export function datesOf(from, to) {
  const dates = [];
  for (let d = from; d <= to; d = addDays(d, 1)) dates.push(d);
  return dates;
}

// UTC as the API expects it: "2023-10-26T12:05:00Z".
export function isoUtc(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// The margin added to each side of a local day's UTC bounds, in case the day's offset differs from the
// one we know (a daylight-saving change since); rows outside the day are filtered out by their date.
export const BOUNDS_MARGIN_MINUTES = 180;

// Query bounds for local days `from`..`to` of a store at `offset`, widened by the margin.
export function utcBounds(from, to, offset) {
  const start = Date.parse(`${from}T00:00:00Z`) - (offset + BOUNDS_MARGIN_MINUTES) * MINUTE_MS;
  const end = Date.parse(`${to}T23:59:00Z`) - (offset - BOUNDS_MARGIN_MINUTES) * MINUTE_MS;
  return { datetime_gte: isoUtc(start), datetime_lte: isoUtc(end) };
}

// The rows whose local date lies in `from`..`to`.
export function withinDays(rows, from, to) {
  return rows.filter((row) => {
    const date = row.minute.slice(0, 10);
    return date >= from && date <= to;
  });
}

// Position of a row on the chart's x axis: minutes of local wall-clock time since local midnight of
// `from`. (At a daylight-saving end the repeated hour is drawn over itself.)
export function position(minute, from) {
  const parsed = parseMinute(minute);
  return daysBetween(from, parsed.date) * DAY_MINUTES + parsed.minuteOfDay;
}

// Entries and exits summed per bucket of `size` minutes (1, 15 or 60), aligned to the local clock.
// Returns [{ at, entries, exits }] sorted by `at` (the bucket's start position); only buckets with rows.
export function buckets(visits, from, size) {
  const sums = new Map();
  for (const row of visits) {
    const at = Math.floor(position(row.minute, from) / size) * size;
    const sum = sums.get(at) ?? { at, entries: 0, exits: 0 };
    sum.entries += row.in_metric;
    sum.exits += row.out_metric;
    sums.set(at, sum);
  }
  return [...sums.values()].sort((a, b) => a.at - b.at);
}

// Occupancy as chart points [{ at, value, minute }], in the API's (instant) order.
export function occupancyPoints(occupancy, from) {
  return occupancy.map((row) => ({ at: position(row.minute, from), value: row.occupancy_metric, minute: row.minute }));
}

// The figures at the top of the page:
// - entries, exits: sums over the rows;
// - peak: the highest occupancy and the first minute it was reached (null without rows);
// - busiest: the local clock hour ("YYYY-MM-DDTHH" of `minute`) with the most entries, the earliest on a
//   tie (null without entries).
export function headline(visits, occupancy) {
  let entries = 0;
  let exits = 0;
  const perHour = new Map();
  for (const row of visits) {
    entries += row.in_metric;
    exits += row.out_metric;
    const hour = row.minute.slice(0, 13);
    perHour.set(hour, (perHour.get(hour) ?? 0) + row.in_metric);
  }
  let peak = null;
  for (const row of occupancy) {
    if (peak === null || row.occupancy_metric > peak.value) peak = { value: row.occupancy_metric, minute: row.minute };
  }
  let busiest = null;
  for (const [hour, count] of [...perHour].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (count > 0 && (busiest === null || count > busiest.entries)) busiest = { hour, entries: count };
  }
  return { entries, exits, peak, busiest };
}

function csvField(value) {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export const CSV_HEADER = ['store_code', 'minute', 'in_metric', 'out_metric', 'diff_metric', 'occupancy_metric'];

// One line per minute with counts: the visits row and the occupancy of the same minute, in time order.
export function toCsv(visits, occupancy) {
  const byMinute = new Map();
  for (const row of visits) byMinute.set(row.minute, { ...row });
  for (const row of occupancy) {
    const line = byMinute.get(row.minute) ?? { store_code: row.store_code, minute: row.minute };
    line.occupancy_metric = row.occupancy_metric;
    byMinute.set(row.minute, line);
  }
  const lines = [...byMinute.values()].sort((a, b) => Date.parse(a.minute) - Date.parse(b.minute));
  const text = [CSV_HEADER, ...lines.map((line) => CSV_HEADER.map((key) => line[key]))]
    .map((fields) => fields.map(csvField).join(','))
    .join('\r\n');
  return `${text}\r\n`;
}
