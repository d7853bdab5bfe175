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
