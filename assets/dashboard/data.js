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

// Entries and exits summed per bucket of `size` minutes (1, 15, 60, a day or a week), aligned to the local
// clock (weeks start on Monday). Rows the API already bucketed at that size stay as they are (save the two
// occurrences of a repeated hour, summed). Returns [{ at, entries, exits }] sorted by `at` (the bucket's
// start position); only buckets with rows.
export function buckets(visits, from, size) {
  const sums = new Map();
  for (const row of visits) {
    const at = bucketStart(row.minute, from, size);
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

// ---- exact local days, server-side buckets, the heatmap, the overview ----

const zoneFormats = new Map();

// A zone's UTC offset (minutes) at instant `ms`, from the browser's time-zone data.
export function zoneOffset(timeZone, ms) {
  let format = zoneFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    zoneFormats.set(timeZone, format);
  }
  const name = format.formatToParts(new Date(ms)).find((part) => part.type === 'timeZoneName').value;
  const match = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name);
  if (!match) throw new Error(`unexpected zone offset ${name}`);
  return match[1] ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
}

// A store's offset at any instant: `(ms) => minutes`. From its IANA zone when the browser knows it and
// agrees with the offset the server reports now (`offsetNow` at `now`); else that offset, fixed.
export function offsetFunction(timeZone, offsetNow, now = Date.now()) {
  try {
    if (timeZone && zoneOffset(timeZone, now) === offsetNow) return (ms) => zoneOffset(timeZone, ms);
  } catch {
    // An unknown zone name: the fixed offset below.
  }
  return () => offsetNow;
}

// The instant (ms) of local midnight starting `date` in a zone given by `offsetAt(ms)`.
export function localMidnight(date, offsetAt) {
  const wall = Date.parse(`${date}T00:00:00Z`);
  let instant = wall - offsetAt(wall) * MINUTE_MS;
  instant = wall - offsetAt(instant) * MINUTE_MS;
  return instant;
}

// Exact query bounds of local days `from`..`to`: from the first day's midnight to the last minute
// before the next day's midnight, each converted with the offset of its own instant.
export function exactBounds(from, to, offsetAt) {
  return {
    datetime_gte: isoUtc(localMidnight(from, offsetAt)),
    datetime_lte: isoUtc(localMidnight(addDays(to, 1), offsetAt) - MINUTE_MS),
  };
}

// Bucket sizes in minutes, the API's granularity for each, and their labels.
export const DAY = DAY_MINUTES;
export const WEEK = 7 * DAY_MINUTES;
export const SIZES = [1, 15, 60, DAY, WEEK];
export const GRANULARITY = { 1: 'minute', 15: '15m', 60: 'hour', [DAY]: 'day', [WEEK]: 'week' };

// Whether bucket `size` suits a range of `days` days: not too many bars, more than one or two.
export function sizeAllowed(size, days) {
  switch (size) {
    case 1:
      return days <= 7;
    case 15:
      return days <= 14;
    case 60:
      return days <= 62;
    case DAY:
      return days >= 3;
    case WEEK:
      return days >= 14;
    default:
      return false;
  }
}

// The bucket size a range of `days` days starts with: 15 minutes for a day, hours up to a week,
// days up to 120 days, weeks beyond.
export function defaultSize(days) {
  if (days <= 1) return 15;
  if (days <= 7) return 60;
  if (days <= 120) return DAY;
  return WEEK;
}

// The number of days `from`..`to` covers (1 when equal).
export function rangeDays(from, to) {
  return daysBetween(from, to) + 1;
}

// Monday 0 .. Sunday 6 of a date.
export function weekday(date) {
  return (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
}

// The start position of the bucket of `size` minutes holding `minute`: local clock multiples for
// minutes and hours, local midnight for days, the Monday before (or of) for weeks.
export function bucketStart(minute, from, size) {
  const parsed = parseMinute(minute);
  const day = daysBetween(from, parsed.date) * DAY_MINUTES;
  if (size === WEEK) return day - weekday(parsed.date) * DAY_MINUTES;
  if (size === DAY) return day;
  return day + Math.floor(parsed.minuteOfDay / size) * size;
}

// Occupancy of buckets (API rows with `max_occupancy_metric`) as chart points [{ at, value, minute }]:
// each bucket's peak at its start.
export function peakPoints(occupancy, from) {
  return occupancy.map((row) => ({
    at: position(row.minute, from),
    value: row.max_occupancy_metric ?? row.occupancy_metric,
    minute: row.minute,
  }));
}

// Headline figures from a summary row of the API (null without a row).
export function summaryHeadline(row) {
  if (!row) return { entries: 0, exits: 0, peak: null, busiest: null };
  return {
    entries: row.in_metric ?? 0,
    exits: row.out_metric ?? 0,
    peak: row.peak_occupancy_minute ? { value: row.peak_occupancy_metric, minute: row.peak_occupancy_minute } : null,
    busiest:
      row.busiest_hour && row.busiest_hour_in_metric
        ? { hour: row.busiest_hour.slice(0, 13), entries: row.busiest_hour_in_metric }
        : null,
  };
}

export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

// Average entries per weekday (Monday first) and local clock hour over local days `from`..`to`, from
// hourly (or finer) visits rows: the entries of all that weekday's hour buckets in the range, divided by
// the number of that weekday's dates in the range (so a Tuesday without counts counts as 0).
// Returns { cells: [{ weekday, hour, total, days, average }] (7 × 24, Monday 00 first), max }.
export function heatmap(visits, from, to) {
  const days = [0, 0, 0, 0, 0, 0, 0];
  for (const date of datesOf(from, to)) days[weekday(date)] += 1;
  const totals = Array.from({ length: 7 * 24 }, () => 0);
  for (const row of visits) {
    const parsed = parseMinute(row.minute);
    if (parsed.date < from || parsed.date > to) continue;
    totals[weekday(parsed.date) * 24 + Math.floor(parsed.minuteOfDay / 60)] += row.in_metric;
  }
  let max = 0;
  const cells = totals.map((total, index) => {
    const day = Math.floor(index / 24);
    const average = days[day] ? total / days[day] : null;
    if (average !== null && average > max) max = average;
    return { weekday: day, hour: index % 24, total, days: days[day], average };
  });
  return { cells, max };
}

// Summary rows sorted by `key`, `direction` 1 (ascending) or -1; missing values last either way, then
// by store code.
export function sortRows(rows, key, direction = 1) {
  const missing = (value) => value === null || value === undefined;
  return [...rows].sort((a, b) => {
    const x = a[key];
    const y = b[key];
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;
    let order = 0;
    if (!missing(x)) {
      order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    }
    if (order !== 0) return order * direction;
    return a.store_code < b.store_code ? -1 : a.store_code > b.store_code ? 1 : 0;
  });
}

// "+12.3%", "-4.0%", "0.0%", or "–" for null.
export function formatChange(percent) {
  if (percent === null || percent === undefined) return '–';
  const text = Math.abs(percent).toFixed(1);
  return `${percent > 0 ? '+' : percent < 0 ? '−' : ''}${text}%`;
}

// CSV text to records of fields (RFC 4180: quoted fields may hold commas, quotes and line breaks).
export function parseCsv(text) {
  const records = [];
  let record = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || record.length) {
    record.push(field);
    records.push(record);
  }
  return records;
}

// One CSV of several of the API's CSV answers (same header): of each part only the records whose
// `store_code` is in its `codes`, all sorted by store code, the header once.
export function mergeCsv(parts) {
  let header = null;
  const records = [];
  for (const { text, codes } of parts) {
    const [head, ...rest] = parseCsv(text);
    if (!head) continue;
    header ??= head;
    const column = head.indexOf('store_code');
    for (const record of rest) if (codes.has(record[column])) records.push(record);
  }
  if (!header) return '';
  const column = header.indexOf('store_code');
  records.sort((a, b) => (a[column] < b[column] ? -1 : a[column] > b[column] ? 1 : 0));
  return [header, ...records].map((fields) => `${fields.map(csvField).join(',')}\r\n`).join('');
}
