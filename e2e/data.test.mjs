// Unit tests of the dashboard's data functions (assets/dashboard/data.js), imported as the browser does.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as data from '../assets/dashboard/data.js';

const visit = (minute, entries, exits, store = '116500') => ({
  store_code: store,
  in_metric: entries,
  out_metric: exits,
  diff_metric: entries - exits,
  minute,
});

test('minutes parse into local date, minute of day, offset and instant', () => {
  assert.deepEqual(data.parseMinute('2023-10-26T15:06:00+03:00'), {
    date: '2023-10-26',
    minuteOfDay: 906,
    offset: 180,
    instant: Date.parse('2023-10-26T12:06:00Z'),
  });
  assert.equal(data.parseMinute('2023-10-26T23:59:00-04:00').offset, -240);
  assert.equal(data.parseMinute('2023-10-26T01:00:00+00:00').offset, 0);
  assert.throws(() => data.parseMinute('2023-10-26 15:06'));
  assert.equal(data.formatOffset(-270), '-04:30');
  assert.equal(data.formatOffset(540), '+09:00');
});

test("a local day's UTC bounds cover the day with a margin, and rows are kept by their local date", () => {
  // Athens in summer (+03:00): local 2023-10-26 is 2023-10-25T21:00Z .. 2023-10-26T20:59Z.
  assert.deepEqual(data.utcBounds('2023-10-26', '2023-10-26', 180), {
    datetime_gte: '2023-10-25T18:00:00Z',
    datetime_lte: '2023-10-26T23:59:00Z',
  });
  // The day Athens leaves summer time (29 Oct 2023): rows on both offsets belong to the day.
  const rows = [
    visit('2023-10-28T23:59:00+03:00', 1, 0),
    visit('2023-10-29T03:59:00+03:00', 1, 0),
    visit('2023-10-29T03:00:00+02:00', 1, 0),
    visit('2023-10-29T23:59:00+02:00', 1, 0),
    visit('2023-10-30T00:00:00+02:00', 1, 0),
  ];
  assert.deepEqual(
    data.withinDays(rows, '2023-10-29', '2023-10-29').map((r) => r.minute),
    ['2023-10-29T03:59:00+03:00', '2023-10-29T03:00:00+02:00', '2023-10-29T23:59:00+02:00'],
  );
  const bounds = data.utcBounds('2023-10-29', '2023-10-29', 180);
  for (const row of data.withinDays(rows, '2023-10-29', '2023-10-29')) {
    const instant = Date.parse(row.minute);
    assert.ok(instant >= Date.parse(bounds.datetime_gte) && instant <= Date.parse(bounds.datetime_lte), row.minute);
  }
});

test('local dates: today at an offset, day arithmetic across months', () => {
  const now = Date.parse('2023-10-26T22:30:00Z');
  assert.equal(data.localDate(now, 180), '2023-10-27');
  assert.equal(data.localDate(now, -240), '2023-10-26');
  assert.equal(data.addDays('2023-03-01', -7), '2023-02-22');
  assert.equal(data.daysBetween('2023-02-22', '2023-03-01'), 7);
  assert.deepEqual(data.datesOf('2023-12-31', '2024-01-02'), ['2023-12-31', '2024-01-01', '2024-01-02']);
});

test('buckets sum entries and exits per local 1, 15 or 60 minutes, over several days', () => {
  const rows = [
    visit('2023-10-26T09:00:00+03:00', 2, 0),
    visit('2023-10-26T09:14:00+03:00', 1, 1),
    visit('2023-10-26T09:15:00+03:00', 0, 3),
    visit('2023-10-27T09:00:00+03:00', 5, 0),
  ];
  assert.deepEqual(data.buckets(rows, '2023-10-26', 15), [
    { at: 540, entries: 3, exits: 1 },
    { at: 555, entries: 0, exits: 3 },
    { at: 1440 + 540, entries: 5, exits: 0 },
  ]);
  assert.deepEqual(
    data.buckets(rows, '2023-10-26', 60).map((b) => [b.at, b.entries, b.exits]),
    [
      [540, 3, 4],
      [1980, 5, 0],
    ],
  );
  assert.equal(data.buckets(rows, '2023-10-26', 1).length, 4);
});

test('headline: totals, the first minute of the peak, the earliest of equally busy hours', () => {
  const visits = [
    visit('2023-10-26T09:10:00+03:00', 4, 0),
    visit('2023-10-26T10:05:00+03:00', 3, 2),
    visit('2023-10-26T10:40:00+03:00', 1, 0),
    visit('2023-10-26T11:00:00+03:00', 0, 6),
  ];
  const occupancy = [
    { store_code: '116500', occupancy_metric: 4, minute: '2023-10-26T09:10:00+03:00' },
    { store_code: '116500', occupancy_metric: 5, minute: '2023-10-26T10:05:00+03:00' },
    { store_code: '116500', occupancy_metric: 6, minute: '2023-10-26T10:40:00+03:00' },
    { store_code: '116500', occupancy_metric: 6, minute: '2023-10-26T10:50:00+03:00' },
    { store_code: '116500', occupancy_metric: 0, minute: '2023-10-26T11:00:00+03:00' },
  ];
  assert.deepEqual(data.headline(visits, occupancy), {
    entries: 8,
    exits: 8,
    peak: { value: 6, minute: '2023-10-26T10:40:00+03:00' },
    busiest: { hour: '2023-10-26T09', entries: 4 },
  });
  assert.deepEqual(data.headline([], []), { entries: 0, exits: 0, peak: null, busiest: null });
  // Only exits: no busiest hour.
  assert.equal(data.headline([visit('2023-10-26T09:10:00+03:00', 0, 2)], []).busiest, null);
});

test('CSV joins visits and occupancy per minute, in time order, quoting where needed', () => {
  const csv = data.toCsv(
    [visit('2023-10-29T03:00:00+02:00', 1, 0, 'a,"b"'), visit('2023-10-29T03:59:00+03:00', 2, 1, 'a,"b"')],
    [
      { store_code: 'a,"b"', occupancy_metric: 1, minute: '2023-10-29T03:59:00+03:00' },
      { store_code: 'a,"b"', occupancy_metric: 2, minute: '2023-10-29T03:00:00+02:00' },
    ],
  );
  assert.equal(
    csv,
    'store_code,minute,in_metric,out_metric,diff_metric,occupancy_metric\r\n' +
      '"a,""b""",2023-10-29T03:59:00+03:00,2,1,1,1\r\n' +
      '"a,""b""",2023-10-29T03:00:00+02:00,1,0,1,2\r\n',
  );
});

test("exact bounds of local days follow the zone's offset at each end, daylight saving included", () => {
  const newYork = data.offsetFunction('America/New_York', -300, Date.parse('2026-12-07T12:00:00Z'));
  // 1 Nov 2026: New York leaves summer time, a 25-hour day.
  assert.deepEqual(data.exactBounds('2026-11-01', '2026-11-01', newYork), {
    datetime_gte: '2026-11-01T04:00:00Z',
    datetime_lte: '2026-11-02T04:59:00Z',
  });
  // 8 Mar 2026: summer time starts, a 23-hour day.
  assert.deepEqual(data.exactBounds('2026-03-08', '2026-03-08', newYork), {
    datetime_gte: '2026-03-08T05:00:00Z',
    datetime_lte: '2026-03-09T03:59:00Z',
  });
  // Several days, across the change.
  assert.deepEqual(data.exactBounds('2026-10-30', '2026-11-02', newYork), {
    datetime_gte: '2026-10-30T04:00:00Z',
    datetime_lte: '2026-11-03T04:59:00Z',
  });
  // A zone the browser does not know, or one that disagrees with the server's offset: the fixed offset.
  const fixed = data.offsetFunction('Nowhere/Unknown', 330);
  assert.deepEqual(data.exactBounds('2026-07-01', '2026-07-01', fixed), {
    datetime_gte: '2026-06-30T18:30:00Z',
    datetime_lte: '2026-07-01T18:29:00Z',
  });
  assert.equal(data.offsetFunction('UTC', 120)(Date.parse('2026-07-01T00:00:00Z')), 120);
  assert.equal(data.zoneOffset('Asia/Kolkata', Date.parse('2026-07-01T00:00:00Z')), 330);
  assert.equal(data.zoneOffset('UTC', 0), 0);
});

test('bucket sizes: which suit a range, and the default for its length', () => {
  assert.deepEqual(
    [1, 2, 3, 7, 8, 31, 90, 120, 121, 366].map((days) => data.defaultSize(days)),
    [15, 60, 60, 60, data.DAY, data.DAY, data.DAY, data.DAY, data.WEEK, data.WEEK],
  );
  for (const days of [1, 2, 3, 7, 14, 31, 62, 90, 366]) {
    assert.ok(data.sizeAllowed(data.defaultSize(days), days), `the default of ${days} days is allowed`);
  }
  assert.deepEqual(
    data.SIZES.filter((size) => data.sizeAllowed(size, 1)),
    [1, 15, 60],
  );
  assert.deepEqual(
    data.SIZES.filter((size) => data.sizeAllowed(size, 90)),
    [data.DAY, data.WEEK],
  );
  assert.deepEqual(
    data.SIZES.map((size) => data.GRANULARITY[size]),
    ['minute', '15m', 'hour', 'day', 'week'],
  );
  assert.equal(data.rangeDays('2026-01-01', '2026-03-31'), 90);
});

test('server buckets stay as they are; weeks start on Monday, also before the first day', () => {
  // 2026-09-02 is a Wednesday; the API's week bucket of it starts on Monday 2026-08-31.
  const weeks = [visit('2026-08-31T00:00:00-04:00', 50, 40), visit('2026-09-07T00:00:00-04:00', 70, 71)];
  assert.deepEqual(data.buckets(weeks, '2026-09-02', data.WEEK), [
    { at: -2 * 1440, entries: 50, exits: 40 },
    { at: 5 * 1440, entries: 70, exits: 71 },
  ]);
  // Days, and minutes summed into days or weeks alike.
  const minutes = [
    visit('2026-09-02T10:00:00-04:00', 1, 0),
    visit('2026-09-02T21:59:00-04:00', 2, 1),
    visit('2026-09-06T12:00:00-04:00', 3, 3),
    visit('2026-09-07T12:00:00-04:00', 4, 4),
  ];
  assert.deepEqual(
    data.buckets(minutes, '2026-09-02', data.DAY).map((b) => [b.at / 1440, b.entries]),
    [
      [0, 3],
      [4, 3],
      [5, 4],
    ],
  );
  assert.deepEqual(
    data.buckets(minutes, '2026-09-02', data.WEEK).map((b) => [b.at / 1440, b.entries, b.exits]),
    [
      [-2, 6, 4],
      [5, 4, 4],
    ],
  );
  // Hour buckets of a repeated hour (two offsets) are drawn as one.
  const repeated = [visit('2026-11-01T01:00:00-04:00', 5, 1), visit('2026-11-01T01:00:00-05:00', 6, 2)];
  assert.deepEqual(data.buckets(repeated, '2026-11-01', 60), [{ at: 60, entries: 11, exits: 3 }]);
  assert.equal(data.weekday('2026-09-02'), 2);
  assert.equal(data.weekday('2026-09-06'), 6);
  assert.deepEqual(
    data.peakPoints(
      [{ store_code: 'x', occupancy_metric: 0, max_occupancy_metric: 9, minute: '2026-09-03T00:00:00-04:00' }],
      '2026-09-02',
    ),
    [{ at: 1440, value: 9, minute: '2026-09-03T00:00:00-04:00' }],
  );
});

test("the summary row's figures, and none without a row or counts", () => {
  assert.deepEqual(
    data.summaryHeadline({
      store_code: '116500',
      in_metric: 120,
      out_metric: 118,
      peak_occupancy_metric: 17,
      peak_occupancy_minute: '2026-09-02T18:31:00-04:00',
      busiest_hour: '2026-09-02T18:00:00-04:00',
      busiest_hour_in_metric: 30,
    }),
    {
      entries: 120,
      exits: 118,
      peak: { value: 17, minute: '2026-09-02T18:31:00-04:00' },
      busiest: { hour: '2026-09-02T18', entries: 30 },
    },
  );
  const none = { entries: 0, exits: 0, peak: null, busiest: null };
  assert.deepEqual(data.summaryHeadline(null), none);
  assert.deepEqual(
    data.summaryHeadline({
      store_code: '1',
      in_metric: 0,
      out_metric: 0,
      peak_occupancy_metric: 0,
      peak_occupancy_minute: null,
      busiest_hour: null,
      busiest_hour_in_metric: null,
    }),
    none,
  );
});

test('heatmap: average entries per weekday and hour, divided by that weekday’s dates in the range', () => {
  // 2026-09-01 (Tue) .. 2026-09-09 (Wed): two Tuesdays and two Wednesdays, one of each other weekday.
  const rows = [
    visit('2026-09-01T10:00:00-04:00', 10, 0),
    visit('2026-09-08T10:00:00-04:00', 5, 0),
    visit('2026-09-02T18:00:00-04:00', 7, 0),
    visit('2026-09-06T18:00:00-04:00', 3, 0),
    visit('2026-08-31T10:00:00-04:00', 99, 0), // before the range: ignored
  ];
  const map = data.heatmap(rows, '2026-09-01', '2026-09-09');
  assert.equal(map.cells.length, 7 * 24);
  const at = (weekday, hour) => map.cells[weekday * 24 + hour];
  assert.deepEqual(at(1, 10), { weekday: 1, hour: 10, total: 15, days: 2, average: 7.5 });
  assert.deepEqual(at(2, 18), { weekday: 2, hour: 18, total: 7, days: 2, average: 3.5 });
  assert.equal(at(6, 18).average, 3);
  assert.equal(at(0, 10).average, 0, 'one Monday in the range, without counts');
  assert.equal(map.max, 7.5);
  // A range shorter than a week: weekdays it does not hold have no average.
  const short = data.heatmap(rows, '2026-09-01', '2026-09-01');
  assert.equal(short.cells[1 * 24 + 10].average, 10);
  assert.equal(short.cells[0].average, null);
  assert.equal(short.cells[0].days, 0);
});

test('overview rows sort by any column, missing values last, ties by store code', () => {
  const rows = [
    { store_code: 'b', in_metric: 5, in_change_percent: null },
    { store_code: 'a', in_metric: 9, in_change_percent: -3.5 },
    { store_code: 'c', in_metric: 5, in_change_percent: 12.1 },
  ];
  const codes = (sorted) => sorted.map((row) => row.store_code);
  assert.deepEqual(codes(data.sortRows(rows, 'in_metric', 1)), ['b', 'c', 'a']);
  assert.deepEqual(codes(data.sortRows(rows, 'in_metric', -1)), ['a', 'b', 'c']);
  assert.deepEqual(codes(data.sortRows(rows, 'in_change_percent', 1)), ['a', 'c', 'b']);
  assert.deepEqual(codes(data.sortRows(rows, 'in_change_percent', -1)), ['c', 'a', 'b']);
  assert.deepEqual(codes(data.sortRows(rows, 'store_code', -1)), ['c', 'b', 'a']);
  assert.deepEqual(codes(rows), ['b', 'a', 'c'], 'the input is left as it was');
  assert.equal(data.formatChange(12.3), '+12.3%');
  assert.equal(data.formatChange(-4), '−4.0%');
  assert.equal(data.formatChange(0), '0.0%');
  assert.equal(data.formatChange(null), '–');
});

test("the API's CSV answers merge into one: the header once, each part's own stores, by store code", () => {
  assert.deepEqual(data.parseCsv('a,"b,""c"""\r\n1,\r\n"x\ny",2\r\n'), [
    ['a', 'b,"c"'],
    ['1', ''],
    ['x\ny', '2'],
  ]);
  assert.deepEqual(data.parseCsv('a,b\n1,2'), [
    ['a', 'b'],
    ['1', '2'],
  ]);
  const header = 'store_code,in_metric,compare_in_metric\r\n';
  const merged = data.mergeCsv([
    { text: `${header}116500,10,\r\n220310,20,18\r\n330720,30,29\r\n`, codes: new Set(['330720']) },
    { text: `${header}116500,11,9\r\n220310,21,19\r\n"3,3",1,1\r\n`, codes: new Set(['116500', '3,3']) },
  ]);
  assert.equal(merged, `${header}116500,11,9\r\n"3,3",1,1\r\n330720,30,29\r\n`);
  assert.equal(data.mergeCsv([]), '');
});
