// End-to-end tests of the dashboard: the real `footfall` binary serving demo data, Debian's Chromium driven by
// playwright-core, and the expected figures computed here from the public API.
//
// Run from the repository root after a debug build: `cd e2e && npm ci && npm test`.
// FOOTFALL_BIN overrides the binary (default target/debug/footfall), CHROMIUM the browser (/usr/bin/chromium).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BINARY = process.env.FOOTFALL_BIN ?? path.join(ROOT, 'target/debug/footfall');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'target/screenshots');
const VISITS = '/api/bi/acquisition-metrics/visits/';
const OCCUPANCY = '/api/bi/acquisition-metrics/occupancy/';
const SUMMARY = '/api/bi/acquisition-metrics/summary/';
const LIVE = '/api/bi/acquisition-metrics/occupancy/live/';
const DEVICE_HEALTH = '/api/devices/health';
const STORE = '220310'; // New York: a negative offset, so its local day spans two UTC dates
const OTHER_STORE = '116500';
// Tokyo gets opening hours (all day, every day) and a capacity; the others keep hours learned from their counts.
const HOURS_STORE = '330720';
const HOURS = 'Mo-Su 00:00-24:00';
const CAPACITY = 250;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let server;
let base;
let user;
let password;
let context;
let userDataDir;
let serverDir;
let page;
const pageErrors = [];
const foreignRequests = [];
const apiRequests = [];

// ---- the server ----

// Runs the binary to completion; resolves with its stdout.
function run(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`footfall ${args.join(' ')}: exit ${code}: ${stderr}`)),
    );
  });
}

// Demo data (`footfall demo`, like `serve --demo` but 15 days, so a day and the same weekday of the
// previous week both have traffic) in a temporary database, served on a free port. Reads the password
// from `demo`'s stdout and the address from `serve`'s.
async function startServer(directory) {
  await access(BINARY).catch(() => {
    throw new Error(`${BINARY} is missing: build it first (cargo build, or cargo test)`);
  });
  const env = { ...process.env, RUST_LOG: 'warn' };
  delete env.FOOTFALL_DATABASE_URL;
  const database = `sqlite://${path.join(directory, 'demo.db')}`;
  const created = await run(['--database', database, 'demo', '--days', '15'], env);
  const credentials = /user (\S+) password (\S+)/.exec(created);
  assert.ok(credentials, created);
  await run(
    ['--database', database, 'store', 'set', HOURS_STORE, '--hours', HOURS, '--capacity', String(CAPACITY)],
    env,
  );
  const child = spawn(BINARY, ['--database', database, 'serve', '--listen', '127.0.0.1:0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const address = await new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`no address after 30 s: ${stdout} ${stderr}`)), 30_000);
    child.on('exit', (code) => reject(new Error(`footfall serve exited with ${code}: ${stderr}`)));
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = / on (http:\/\/[\d.]+:\d+)\//.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return { child, base: address, user: credentials[1], password: credentials[2] };
}

async function stopServer() {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}

// ---- the API, as the expected values' source ----

function authorization(name = user, secret = password) {
  return `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
}

async function apiAll(endpoint, params) {
  let url = `${base}${endpoint}?${new URLSearchParams({ ...params, page_size: '10000' })}`;
  const rows = [];
  while (url) {
    const response = await fetch(url, { headers: { Authorization: authorization() } });
    assert.equal(response.status, 200, `${url}: ${await response.clone().text()}`);
    const body = await response.json();
    rows.push(...body.results);
    url = body.next;
  }
  return rows;
}

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const offsetOf = (minute) => {
  const [, sign, hh, mm] = /([+-])(\d{2}):(\d{2})$/.exec(minute);
  return (sign === '-' ? -1 : 1) * (Number(hh) * 60 + Number(mm));
};

// The visits and occupancy rows of one local day of a store, asked with that day's exact UTC bounds.
async function dayRows(store, date) {
  const midnight = Date.parse(`${date}T00:00:00Z`);
  const around = {
    store_code: store,
    datetime_gte: iso(midnight - 86_400_000),
    datetime_lte: iso(midnight + 2 * 86_400_000),
  };
  const probe = (await apiAll(VISITS, around)).filter((row) => row.minute.startsWith(date));
  if (probe.length === 0) return { visits: [], occupancy: [] };
  const offset = offsetOf(probe[0].minute);
  assert.equal(offsetOf(probe.at(-1).minute), offset, 'the test day has a daylight-saving change: pick another');
  const bounds = {
    store_code: store,
    datetime_gte: iso(midnight - offset * 60_000),
    datetime_lte: iso(midnight - offset * 60_000 + 1439 * 60_000),
  };
  const [visits, occupancy] = await Promise.all([apiAll(VISITS, bounds), apiAll(OCCUPANCY, bounds)]);
  assert.ok(visits.every((row) => row.minute.startsWith(date)));
  assert.deepEqual(visits, probe);
  return { visits, occupancy };
}

// The local date `days` days before today at the store, from the offset of its latest row.
async function localDate(store, days) {
  const now = Date.now();
  const recent = await apiAll(VISITS, {
    store_code: store,
    datetime_gte: iso(now - 86_400_000),
    datetime_lte: iso(now),
  });
  const offset = offsetOf(recent.at(-1).minute);
  return new Date(now + offset * 60_000 - days * 86_400_000).toISOString().slice(0, 10);
}

// Distinct local-clock buckets (local date, and minute of the day in steps of `size`) with any visits row.
function bucketCount(visits, size) {
  return new Set(
    visits.map((row) => {
      const minutes = Number(row.minute.slice(11, 13)) * 60 + Number(row.minute.slice(14, 16));
      return `${row.minute.slice(0, 10)} ${Math.floor(minutes / size)}`;
    }),
  ).size;
}

// A zone's UTC offset in minutes at instant `ms` (Node's own time-zone data).
function zoneOffset(zone, ms) {
  const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
    .formatToParts(new Date(ms))
    .find((part) => part.type === 'timeZoneName').value;
  const match = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name);
  return match[1] ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
}

// The UTC instant of local midnight starting `date` in `zone` (searched minute by minute around the guess).
function midnightUtc(date, zone) {
  const wall = Date.parse(`${date}T00:00:00Z`);
  for (let guess = wall - 15 * 3_600_000; guess <= wall + 15 * 3_600_000; guess += 60_000) {
    if (guess + zoneOffset(zone, guess) * 60_000 >= wall) return guess;
  }
  throw new Error(`no midnight for ${date} in ${zone}`);
}

// Exact UTC bounds of local days from..to of a store.
async function storeBounds(store, from, to) {
  const response = await fetch(`${base}/api/stores`, { headers: { Authorization: authorization() } });
  const { timezone } = (await response.json()).results.find((s) => s.store_code === store);
  return {
    store_code: store,
    datetime_gte: iso(midnightUtc(from, timezone)),
    datetime_lte: iso(midnightUtc(addDays(to, 1), timezone) - 60_000),
  };
}

const addDays = (date, days) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

// The headline figures as the issue defines them, computed independently of the page's code.
function expectedFigures(visits, occupancy) {
  const entries = visits.reduce((sum, row) => sum + row.in_metric, 0);
  const exits = visits.reduce((sum, row) => sum + row.out_metric, 0);
  const peakValue = Math.max(...occupancy.map((row) => row.occupancy_metric));
  const peakMinute = occupancy.find((row) => row.occupancy_metric === peakValue).minute;
  const perHour = {};
  for (const row of visits) perHour[row.minute.slice(0, 13)] = (perHour[row.minute.slice(0, 13)] ?? 0) + row.in_metric;
  const busiestEntries = Math.max(...Object.values(perHour));
  const busiestHour = Object.keys(perHour)
    .sort()
    .find((hour) => perHour[hour] === busiestEntries);
  return { entries, exits, peakValue, peakMinute, busiestHour, busiestEntries };
}

// ---- the browser ----

async function openPage(viewport) {
  const opened = await context.newPage();
  await opened.setViewportSize(viewport);
  opened.on('pageerror', (error) => pageErrors.push(String(error)));
  opened.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith('blob:') && !url.startsWith('data:')) foreignRequests.push(url);
    else if (url.startsWith(`${base}/api/`)) apiRequests.push(new URL(url));
  });
  return opened;
}

async function signIn(target, secret = password) {
  await target.fill('#username', user);
  await target.fill('#password', secret);
  await target.click('#sign-in-button');
}

// Waits until the page shows `store from to size compare` (body[data-shown]) and is not loading.
async function waitShown(target, expected) {
  await target.waitForFunction(
    (want) => document.body.dataset.shown === want && !document.body.classList.contains('busy'),
    expected,
  );
}

async function screenshot(target, name) {
  await target.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });
}

const attribute = (target, selector, name) => target.getAttribute(selector, name);

// Vertices of an SVG step path: one per M (a day's first point) and one per V (each later point).
const vertices = (d) => (d.match(/[MV]/g) ?? []).length;

before(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  serverDir = await mkdtemp(path.join(tmpdir(), 'footfall-e2e-'));
  ({ child: server, base, user, password } = await startServer(serverDir));
  await access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  });
  userDataDir = await mkdtemp(path.join(tmpdir(), 'footfall-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: DESKTOP,
    timezoneId: 'UTC',
    locale: 'en-GB',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.setDefaultTimeout(20_000);
  page = await openPage(DESKTOP);
});

after(async () => {
  await context?.close();
  await stopServer();
  for (const directory of [userDataDir, serverDir])
    if (directory) await rm(directory, { recursive: true, force: true });
});

// ---- the tests, in order: they share one signed-in tab ----

test('the page and its assets are embedded: content types, cache headers, no other origin', async () => {
  const response = await fetch(`${base}/`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(response.headers.get('cache-control'), 'no-cache');
  assert.match(response.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  const html = await response.text();
  const assets = [...html.matchAll(/(?:href|src)="(\/dashboard\/[0-9a-f]+\/[\w.]+)"/g)].map((m) => m[1]);
  assert.ok(assets.some((a) => a.endsWith('/app.js')) && assets.some((a) => a.endsWith('/style.css')), html);
  assert.doesNotMatch(html, /https?:\/\//, 'the page refers to another origin');
  const types = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml' };
  for (const asset of new Set(assets)) {
    const answer = await fetch(`${base}${asset}`);
    assert.equal(answer.status, 200, asset);
    assert.equal(answer.headers.get('content-type'), types[asset.split('.').at(-1)], asset);
    assert.equal(answer.headers.get('cache-control'), 'public, max-age=31536000, immutable', asset);
    assert.doesNotMatch(
      await answer.text(),
      /https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
      `${asset} refers to another origin`,
    );
  }
  const revalidated = await fetch(`${base}/`, { headers: { 'If-None-Match': response.headers.get('etag') } });
  assert.equal(revalidated.status, 304);
});

test('a wrong password shows an error and keeps the dashboard hidden', async () => {
  await page.goto(`${base}/`);
  await signIn(page, `${password}-wrong`);
  await page.waitForSelector('#sign-in-error:not([hidden])');
  assert.match(await page.textContent('#sign-in-error'), /Wrong username or password/);
  assert.equal(await page.isVisible('#dashboard-view'), false);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await screenshot(page, 'signin-wrong-password-desktop.png');
});

test('sign in, pick a store and a day: charts have one point per bucket and row, figures equal the API', async () => {
  const day = await localDate(STORE, 1);
  const expected = await dayRows(STORE, day);
  assert.ok(expected.visits.length > 100, `the demo has traffic on ${day}`);
  const figures = expectedFigures(expected.visits, expected.occupancy);

  await signIn(page);
  await page.waitForSelector('#store option[value="330720"]', { state: 'attached' });
  const stores = await page.$$eval('#store option', (options) => options.map((o) => o.value));
  assert.deepEqual(stores, ['116500', '220310', '330720']);
  // The default is the first store's today.
  assert.equal(await page.inputValue('#from'), await localDate('116500', 0));
  await page.selectOption('#store', STORE);
  await page.fill('#from', day);
  await waitShown(page, `${STORE} ${day} ${day} 15 none`);

  assert.equal(await page.getAttribute('#fig-entries', 'data-value'), String(figures.entries));
  assert.equal(await page.textContent('#fig-entries'), figures.entries.toLocaleString('en-US'));
  assert.equal(await page.getAttribute('#fig-exits', 'data-value'), String(figures.exits));
  assert.equal(await page.getAttribute('#fig-peak', 'data-value'), String(figures.peakValue));
  assert.equal(await page.getAttribute('#fig-peak', 'data-minute'), figures.peakMinute);
  assert.equal(await page.textContent('#fig-peak-at'), `at ${figures.peakMinute.slice(11, 16)}`);
  const hour = figures.busiestHour.slice(11, 13);
  const next = String(Number(hour) + 1).padStart(2, '0');
  assert.equal(await page.textContent('#fig-busiest'), `${hour}:00–${next}:00`);
  assert.equal(await page.getAttribute('#fig-busiest', 'data-hour'), figures.busiestHour);
  assert.equal(await page.getAttribute('#fig-busiest-entries', 'data-value'), String(figures.busiestEntries));
  assert.match(await page.textContent('#footnote'), /UTC-0[45]:00/);

  for (const [size, label] of [
    [15, '15 min'],
    [60, 'hour'],
    [1, 'minute'],
  ]) {
    await page.click(`.segmented label:has-text("${label}")`);
    await waitShown(page, `${STORE} ${day} ${day} ${size} none`);
    const buckets = bucketCount(expected.visits, size);
    assert.equal(await page.locator('#flow-chart g.bucket').count(), buckets, `buckets of ${size} min`);
    assert.equal(await attribute(page, '#flow-chart g.bars', 'data-points'), String(buckets));
    if (size === 1) {
      const drawn = await page.$$eval('#flow-chart g.bucket', (groups) =>
        groups.map((g) => [Number(g.dataset.entries), Number(g.dataset.exits)]),
      );
      assert.deepEqual(
        drawn,
        expected.visits.map((row) => [row.in_metric, row.out_metric]),
      );
    }
  }
  assert.equal(
    await attribute(page, '#occupancy-chart path.occupancy', 'data-points'),
    String(expected.occupancy.length),
  );
  assert.equal(vertices(await attribute(page, '#occupancy-chart path.occupancy', 'd')), expected.occupancy.length);
  assert.equal(await page.locator('#occupancy-chart circle.peak').count(), 1);

  await page.click('.segmented label:has-text("15 min")');
  await waitShown(page, `${STORE} ${day} ${day} 15 none`);
  await page.hover('#flow-chart svg', { position: { x: 640, y: 120 } });
  await page.waitForSelector('#flow-chart .tooltip:not([hidden])');
  await screenshot(page, 'dashboard-desktop.png');
  await page.mouse.move(0, 0);
});

test('overlays: the same weekday of the previous week, and a second store', async () => {
  const day = await page.inputValue('#from');
  const weekBefore = addDays(day, -7);
  const previous = await dayRows(STORE, weekBefore);
  assert.ok(previous.visits.length > 0, `the demo has traffic on ${weekBefore}`);
  await page.selectOption('#compare', 'week');
  await waitShown(page, `${STORE} ${day} ${day} 15 Previous week`);
  assert.equal(
    await attribute(page, '#flow-chart path.compare[data-series="entries"]', 'data-points'),
    String(bucketCount(previous.visits, 15)),
  );
  assert.equal(
    await attribute(page, '#occupancy-chart path.compare', 'data-points'),
    String(previous.occupancy.length),
  );
  assert.equal(vertices(await attribute(page, '#occupancy-chart path.compare', 'd')), previous.occupancy.length);
  const before = expectedFigures(previous.visits, previous.occupancy);
  assert.match(
    await page.textContent('#cmp-entries'),
    new RegExp(`^Previous week: ${before.entries.toLocaleString('en-US')} \\([+-]\\d+%\\)$`),
  );
  await screenshot(page, 'dashboard-compare-week-desktop.png');

  const other = await dayRows(OTHER_STORE, day);
  await page.selectOption('#compare', `store:${OTHER_STORE}`);
  await waitShown(page, `${STORE} ${day} ${day} 15 Store ${OTHER_STORE}`);
  assert.equal(await attribute(page, '#occupancy-chart path.compare', 'data-points'), String(other.occupancy.length));
  assert.equal(
    await attribute(page, '#flow-chart path.compare[data-series="exits"]', 'data-points'),
    String(bucketCount(other.visits, 15)),
  );
  assert.match(
    await page.textContent('#cmp-exits'),
    new RegExp(
      `^Store ${OTHER_STORE}: ${expectedFigures(other.visits, other.occupancy).exits.toLocaleString('en-US')} `,
    ),
  );
  await page.selectOption('#compare', 'none');
  await waitShown(page, `${STORE} ${day} ${day} 15 none`);
});

test('a date range: buckets over several days, summed figures, and a CSV of exactly its API rows', async () => {
  const to = await page.inputValue('#from');
  const from = addDays(to, -2);
  const days = await Promise.all([from, addDays(from, 1), to].map((date) => dayRows(STORE, date)));
  const visits = days.flatMap((d) => d.visits);
  const occupancy = days.flatMap((d) => d.occupancy);
  const figures = expectedFigures(visits, occupancy);
  // Moving "From" of a one-day view moves "To" along: set "To" after it.
  await page.fill('#from', from);
  await page.fill('#to', to);
  await waitShown(page, `${STORE} ${from} ${to} 15 none`);
  await page.click('.segmented label:has-text("hour")');
  await waitShown(page, `${STORE} ${from} ${to} 60 none`);
  assert.equal(await page.locator('#flow-chart g.bucket').count(), bucketCount(visits, 60));
  assert.equal(await attribute(page, '#occupancy-chart path.occupancy', 'data-points'), String(occupancy.length));
  // Each day's line starts afresh: one M per day.
  assert.equal((await attribute(page, '#occupancy-chart path.occupancy', 'd')).split('M').length - 1, 3);
  assert.equal(await page.getAttribute('#fig-entries', 'data-value'), String(figures.entries));
  assert.equal(await page.getAttribute('#fig-exits', 'data-value'), String(figures.exits));
  assert.equal(await page.getAttribute('#fig-peak', 'data-minute'), figures.peakMinute);
  assert.equal(await page.getAttribute('#fig-busiest', 'data-hour'), figures.busiestHour);
  await screenshot(page, 'dashboard-range-desktop.png');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.equal(download.suggestedFilename(), `footfall-${STORE}-${from}_${to}.csv`);
  const text = await readFile(await download.path(), 'utf8');
  const lines = text.split('\r\n');
  assert.equal(lines.pop(), '', 'ends with a line break');
  assert.equal(lines[0], 'store_code,minute,in_metric,out_metric,diff_metric,occupancy_metric');
  const occupancyAt = new Map(occupancy.map((row) => [row.minute, row.occupancy_metric]));
  assert.equal(occupancy.length, visits.length, 'both endpoints have a row for each minute with counts');
  const expected = visits.map((r) =>
    [r.store_code, r.minute, r.in_metric, r.out_metric, r.diff_metric, occupancyAt.get(r.minute)].join(','),
  );
  assert.deepEqual(lines.slice(1), expected);
  await page.click('.segmented label:has-text("15 min")');
});

test('a day without counts says so instead of drawing empty charts', async () => {
  const empty = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
  await page.fill('#from', empty);
  await page.fill('#to', empty);
  await waitShown(page, `${STORE} ${empty} ${empty} 15 none`);
  assert.equal(await page.isVisible('#empty'), true);
  assert.match(await page.textContent('#empty-detail'), new RegExp(`Store ${STORE} has no counts on`));
  assert.equal(await page.isVisible('#content'), false);
  assert.equal(await page.isDisabled('#download'), true);
  await screenshot(page, 'empty-day-desktop.png');
});

test('the live figure is the live API value, with the minute it is at', async () => {
  const [expected] = await apiAll(LIVE, { store_code: STORE });
  assert.equal(expected.store_code, STORE);
  await page.waitForSelector(`#live-value[data-store="${STORE}"]`);
  assert.equal(await page.getAttribute('#live-value', 'data-value'), String(expected.occupancy_metric));
  assert.equal(await page.textContent('#live-value'), expected.occupancy_metric.toLocaleString('en-US'));
  assert.equal(await page.getAttribute('#live-at', 'data-minute'), expected.minute ?? '');
  // Before the store's first count of the day (the demo's New York store opens at 10:00) there is no minute.
  assert.match(
    await page.textContent('#live-at'),
    expected.minute ? new RegExp(`counted up to ${expected.minute.slice(11, 16)} `) : /No counts yet/,
  );
  // Another store's live figure follows the picker.
  const [other] = await apiAll(LIVE, { store_code: OTHER_STORE });
  const day = await page.inputValue('#from');
  await page.selectOption('#store', OTHER_STORE);
  await page.waitForSelector(`#live-value[data-store="${OTHER_STORE}"]`);
  assert.equal(await page.getAttribute('#live-value', 'data-value'), String(other.occupancy_metric));
  assert.equal(await page.getAttribute('#live-at', 'data-minute'), other.minute ?? '');
  assert.match(
    await page.textContent('#live-at'),
    other.minute ? new RegExp(`counted up to ${other.minute.slice(11, 16)} `) : /No counts yet/,
  );
  await page.selectOption('#store', STORE);
  await waitShown(page, `${STORE} ${day} ${day} 15 none`);
});

test('a 90-day range asks the server for days or weeks; figures, bars, daily peaks and heatmap equal the API', async () => {
  const to = await localDate(STORE, 1);
  const from = addDays(to, -89);
  const bounds = await storeBounds(STORE, from, to);
  const [days, weeks, dailyOccupancy, hours, [summary]] = await Promise.all([
    apiAll(VISITS, { ...bounds, granularity: 'day' }),
    apiAll(VISITS, { ...bounds, granularity: 'week' }),
    apiAll(OCCUPANCY, { ...bounds, granularity: 'day' }),
    apiAll(VISITS, { ...bounds, granularity: 'hour' }),
    apiAll(SUMMARY, bounds),
  ]);
  assert.ok(days.length >= 14, `the demo's days in the range: ${days.length}`);
  assert.equal(
    summary.in_metric,
    days.reduce((sum, row) => sum + row.in_metric, 0),
  );

  apiRequests.length = 0;
  await page.fill('#from', from);
  await page.fill('#to', to);
  // The range's default bucket is a day.
  await waitShown(page, `${STORE} ${from} ${to} 1440 none`);
  // The requests of the 90 days, with the exact UTC bounds of their local days (the one-day view on the
  // way there asked its own).
  const asked = apiRequests.filter(
    (url) =>
      (url.pathname === VISITS || url.pathname === OCCUPANCY) &&
      url.searchParams.get('datetime_gte') === bounds.datetime_gte &&
      url.searchParams.get('datetime_lte') === bounds.datetime_lte,
  );
  assert.ok(
    asked.some((url) => url.pathname === VISITS && ['day', 'week'].includes(url.searchParams.get('granularity'))),
    asked.map(String).join('\n'),
  );
  for (const url of asked) {
    assert.notEqual(url.searchParams.get('granularity') ?? 'minute', 'minute', `no minute rows for 90 days: ${url}`);
  }
  assert.equal(await page.isDisabled('input[name="size"][value="1"]'), true, 'no minutes over 90 days');
  assert.equal(await page.isDisabled('input[name="size"][value="15"]'), true);

  // Figures: the summary endpoint's.
  assert.equal(await page.getAttribute('#fig-entries', 'data-value'), String(summary.in_metric));
  assert.equal(await page.getAttribute('#fig-exits', 'data-value'), String(summary.out_metric));
  assert.equal(await page.getAttribute('#fig-peak', 'data-value'), String(summary.peak_occupancy_metric));
  assert.equal(await page.getAttribute('#fig-peak', 'data-minute'), summary.peak_occupancy_minute);
  assert.equal(await page.getAttribute('#fig-busiest', 'data-hour'), summary.busiest_hour.slice(0, 13));
  assert.equal(await page.getAttribute('#fig-busiest-entries', 'data-value'), String(summary.busiest_hour_in_metric));
  // One bar per day row, with its values; the occupancy chart: each day's peak.
  const drawn = await page.$$eval('#flow-chart g.bucket', (groups) =>
    groups.map((g) => [Number(g.dataset.entries), Number(g.dataset.exits)]),
  );
  assert.deepEqual(
    drawn,
    days.map((row) => [row.in_metric, row.out_metric]),
  );
  assert.equal(await page.textContent('#occupancy-title'), 'Peak occupancy per day');
  const peaks = await page.$$eval('#occupancy-chart rect.peak-bar', (bars) => bars.map((b) => Number(b.dataset.value)));
  assert.deepEqual(
    peaks,
    dailyOccupancy.map((row) => row.max_occupancy_metric),
  );

  // Heatmap: the average of each weekday-hour's entries over that weekday's dates in the range.
  const weekdayOf = (date) => (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
  const dates = [];
  for (let date = from; date <= to; date = addDays(date, 1)) dates.push(date);
  const totals = {};
  for (const row of hours) {
    const key = `${weekdayOf(row.minute.slice(0, 10))} ${Number(row.minute.slice(11, 13))}`;
    totals[key] = (totals[key] ?? 0) + row.in_metric;
  }
  const cells = await page.$$eval('#heatmap rect.cell', (rects) =>
    rects.map((r) => [Number(r.dataset.weekday), Number(r.dataset.hour), r.dataset.value]),
  );
  assert.equal(cells.length, 7 * 24);
  for (const [weekday, hour, value] of cells) {
    const count = dates.filter((date) => weekdayOf(date) === weekday).length;
    assert.equal(Number(value), (totals[`${weekday} ${hour}`] ?? 0) / count, `weekday ${weekday} hour ${hour}`);
  }
  const busiest = Object.entries(totals).sort(([, a], [, b]) => b - a)[0][0];
  const [weekday, hour] = busiest.split(' ').map(Number);
  await page.hover(`#heatmap rect.cell[data-weekday="${weekday}"][data-hour="${hour}"]`);
  await page.waitForSelector('#heatmap .tooltip:not([hidden])');
  const count = dates.filter((date) => weekdayOf(date) === weekday).length;
  assert.match(
    await page.textContent('#heatmap .tooltip'),
    new RegExp(`${((totals[busiest] ?? 0) / count).toFixed(1)} entries on average`),
  );
  await screenshot(page, 'dashboard-90-days-desktop.png');
  await page.mouse.move(0, 0);

  // Per week: the API's week rows (the first one starts on the Monday before `from`).
  apiRequests.length = 0;
  await page.click('.segmented label:has-text("week")');
  await waitShown(page, `${STORE} ${from} ${to} 10080 none`);
  assert.ok(apiRequests.some((url) => url.pathname === VISITS && url.searchParams.get('granularity') === 'week'));
  const weekly = await page.$$eval('#flow-chart g.bucket', (groups) => groups.map((g) => Number(g.dataset.entries)));
  assert.deepEqual(
    weekly,
    weeks.map((row) => row.in_metric),
  );
  assert.equal(await page.locator('#flow-chart g.bucket').count(), weeks.length);
  await screenshot(page, 'dashboard-90-days-weeks-desktop.png');

  // Back to one day: a bucket that suits it again.
  await page.fill('#from', to);
  await page.fill('#to', to);
  await waitShown(page, `${STORE} ${to} ${to} 15 none`);
});

test('the overview lists every store with the summary API figures, sorts, and downloads its CSV', async () => {
  const to = await localDate(STORE, 1);
  const from = addDays(to, -6);
  const codes = ['116500', '220310', '330720'];
  const expected = {};
  const csvLines = {};
  let csvHeader;
  for (const code of codes) {
    const bounds = await storeBounds(code, from, to);
    const [row] = await apiAll(SUMMARY, { ...bounds, compare: 'previous_period' });
    assert.equal(row.store_code, code);
    assert.ok(row.in_metric > 0 && row.compare_in_metric > 0, `the demo has both weeks for ${code}`);
    expected[code] = row;
    const csv = await fetch(
      `${base}${SUMMARY}?${new URLSearchParams({ ...bounds, compare: 'previous_period', format: 'csv' })}`,
      { headers: { Authorization: authorization() } },
    );
    assert.equal(csv.status, 200);
    const [header, line] = (await csv.text()).split(/\r?\n/);
    csvHeader = header;
    csvLines[code] = line;
  }

  await page.fill('#from', from);
  await page.fill('#to', to);
  await waitShown(page, `${STORE} ${from} ${to} 15 none`);
  await page.click('#tab-overview');
  await waitShown(page, `overview ${from} ${to} previous_period in_metric -1`);
  const table = async () =>
    page.$$eval('#overview-table tbody tr', (rows) =>
      rows.map((tr) => ({
        store: tr.dataset.store,
        values: [...tr.cells].map((td) => td.dataset.value),
        change: tr.cells[4].textContent,
      })),
    );
  const shown = await table();
  assert.equal(shown.length, codes.length, 'one row per store');
  for (const { store, values, change } of shown) {
    const row = expected[store];
    assert.deepEqual(
      values,
      [
        row.store_code,
        row.in_metric,
        row.out_metric,
        row.compare_in_metric,
        row.in_change_percent,
        row.peak_occupancy_metric,
      ].map((v) => (v === null ? '' : String(v))),
    );
    const sign = row.in_change_percent > 0 ? '+' : row.in_change_percent < 0 ? '−' : '';
    assert.equal(change, `${sign}${Math.abs(row.in_change_percent).toFixed(1)}%`);
  }
  const order = (key, direction) =>
    [...codes].sort((a, b) => (expected[a][key] - expected[b][key]) * direction || (a < b ? -1 : 1));
  assert.deepEqual(
    shown.map((r) => r.store),
    order('in_metric', -1),
    'most entries first',
  );
  assert.equal(await page.getAttribute('#overview-table th[data-key="in_metric"]', 'aria-sort'), 'descending');
  await screenshot(page, 'overview-desktop.png');

  // Sorting by clicking the headers.
  await page.click('#overview-table th[data-key="in_metric"] button');
  await waitShown(page, `overview ${from} ${to} previous_period in_metric 1`);
  assert.deepEqual(
    (await table()).map((r) => r.store),
    order('in_metric', 1),
  );
  await page.click('#overview-table th[data-key="in_change_percent"] button');
  await waitShown(page, `overview ${from} ${to} previous_period in_change_percent -1`);
  assert.deepEqual(
    (await table()).map((r) => r.store),
    order('in_change_percent', -1),
  );
  await page.click('#overview-table th[data-key="peak_occupancy_metric"] button');
  await waitShown(page, `overview ${from} ${to} previous_period peak_occupancy_metric -1`);
  assert.deepEqual(
    (await table()).map((r) => r.store),
    order('peak_occupancy_metric', -1),
  );
  await page.click('#overview-table th[data-key="store_code"] button');
  await waitShown(page, `overview ${from} ${to} previous_period store_code 1`);
  assert.deepEqual(
    (await table()).map((r) => r.store),
    codes,
  );
  assert.match(page.url(), /view=overview/);
  assert.match(page.url(), /sort=store_code/);

  // The CSV: the API's own, each store's line over its own local days.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.equal(download.suggestedFilename(), `footfall-stores-${from}_${to}-previous_period.csv`);
  const lines = (await readFile(await download.path(), 'utf8')).split('\r\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines[0], csvHeader);
  assert.deepEqual(
    lines.slice(1),
    codes.map((code) => csvLines[code]),
  );

  // The previous year: the demo has no counts then, so no comparison and no change.
  await page.selectOption('#period-compare', 'previous_year');
  await waitShown(page, `overview ${from} ${to} previous_year store_code 1`);
  for (const { values, change } of await table()) {
    assert.equal(values[3], '');
    assert.equal(values[4], '');
    assert.equal(change, '–');
  }
  await page.selectOption('#period-compare', 'previous_period');
  await page.click('#tab-store');
  await waitShown(page, `${STORE} ${from} ${to} 15 none`);
  assert.doesNotMatch(page.url(), /view=overview/);
});

// ---- the devices view ----

// What the devices view shows of a device or store row and its days, as the API's health says it.
const shareText = (share) => (share === null ? 'closed' : `${Number((share * 100).toFixed(1))}%`);
const durationText = (minutes) =>
  minutes < 60
    ? `${minutes} min`
    : minutes < 1440
      ? `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`
      : `${Math.floor(minutes / 1440)} d ${Math.floor((minutes % 1440) / 60)} h`;

// The table as shown: per row, its device (or the store's row), flags and days.
async function devicesTable(target) {
  return target.$$eval('#devices-table tbody tr', (rows) =>
    rows.map((tr) => ({
      device: tr.dataset.device ?? null,
      store: tr.dataset.store ?? null,
      silent: tr.dataset.silent ?? null,
      status: tr.querySelector('td.status').textContent,
      lastBin: tr.querySelector('td.last-bin').dataset.value,
      days: [...tr.querySelectorAll('td.day')].map((td) => ({
        date: td.dataset.date,
        completeness: td.dataset.completeness,
        completenessText: td.querySelector('.completeness').textContent,
        balance: td.dataset.balance,
        imbalanced: td.dataset.imbalanced,
        balanceText: td.querySelector('.balance').textContent,
      })),
    })),
  );
}

function assertDays(shown, days, what) {
  assert.deepEqual(
    shown.map((d) => d.date),
    days.map((d) => d.date),
    `${what}: one column per day`,
  );
  days.forEach((day, i) => {
    const cell = shown[i];
    assert.equal(cell.completeness, day.completeness === null ? '' : String(day.completeness), `${what} ${day.date}`);
    assert.equal(cell.completenessText, shareText(day.completeness), `${what} ${day.date}`);
    assert.equal(cell.balance, day.balance === null ? '' : String(day.balance), `${what} ${day.date}`);
    assert.equal(cell.imbalanced, String(day.imbalanced), `${what} ${day.date}`);
    if (day.imbalanced) assert.match(cell.balanceText, /^⚠ ±[\d.]+% imbalanced$/, `${what} ${day.date}`);
    else assert.doesNotMatch(cell.balanceText, /⚠|imbalanced/, `${what} ${day.date}`);
  });
}

// Shows the devices of `code` over 7 days and returns the API's health that the page shows: asked before and
// after the page loaded, equal (the health moves with the clock: open minutes, silence); else asked again.
async function showDevices(target, code) {
  for (let attempt = 1; ; attempt++) {
    const [before] = await apiAll(DEVICE_HEALTH, { store_code: code, days: '7' });
    if (attempt === 1) {
      await target.selectOption('#store', code);
      await target.selectOption('#health-days', '7');
    } else {
      await target.selectOption('#health-days', '14');
      await waitShown(target, `devices ${code} 14`);
      await target.selectOption('#health-days', '7');
    }
    await waitShown(target, `devices ${code} 7`);
    const [after] = await apiAll(DEVICE_HEALTH, { store_code: code, days: '7' });
    if (JSON.stringify(before) === JSON.stringify(after)) return after;
    assert.ok(attempt < 4, 'the health kept changing');
  }
}

async function assertDevicesView(target, health) {
  const code = health.store_code;
  assert.equal(health.days.length, 7);
  // The store's facts: hours as set (or learned), capacity if set, open now.
  const stores = await (await fetch(`${base}/api/stores`, { headers: { Authorization: authorization() } })).json();
  const listed = stores.results.find((s) => s.store_code === code);
  assert.equal(await target.textContent('#devices-hours'), health.opening_hours ?? 'Learned from its counts');
  if (code === HOURS_STORE) {
    // As set, in the canonical form the server writes (`Mo-Su 00:00-24:00` is `24/7`).
    assert.ok(health.opening_hours, 'the hours set are reported');
    assert.equal(listed.opening_hours, health.opening_hours);
    assert.equal(listed.capacity, CAPACITY);
  }
  assert.equal(await target.isVisible('#devices-capacity'), listed.capacity !== null);
  if (listed.capacity !== null) assert.equal(await target.textContent('#devices-capacity'), `${CAPACITY} people`);
  assert.equal(await target.getAttribute('#devices-open', 'data-value'), String(health.open_now));
  assert.equal(await target.textContent('#devices-open'), health.open_now ? 'Open' : 'Closed');
  assert.equal(await target.getAttribute('#devices-silent', 'data-value'), String(health.silent_devices));

  // One column per day, one row per device in the API's order, then the store's row.
  const headers = await target.$$eval('#devices-table thead th', (ths) => ths.map((th) => th.dataset.date ?? null));
  assert.deepEqual(
    headers.slice(3),
    health.days.map((d) => d.date),
  );
  const rows = await devicesTable(target);
  assert.equal(rows.length, health.devices.length + 1);
  assert.deepEqual(
    rows.slice(0, -1).map((r) => r.device),
    health.devices.map((d) => d.device_id),
  );
  health.devices.forEach((device, i) => {
    const row = rows[i];
    assert.equal(row.silent, String(device.silent), device.device_id);
    assert.equal(row.lastBin, device.last_bin ?? '', device.device_id);
    if (device.silent) {
      assert.match(row.status, /SILENT/);
      assert.ok(row.status.includes(`no counts for ${durationText(device.open_minutes_without_data)}`), row.status);
    } else {
      assert.equal(row.status, 'OK');
    }
    assertDays(row.days, device.days, device.device_id);
  });
  const store = rows.at(-1);
  assert.equal(store.store, code);
  assert.equal(store.device, null);
  assert.match(
    store.status,
    health.silent_devices ? new RegExp(`${health.silent_devices} of ${health.devices.length} SILENT`) : /^OK$/,
  );
  assertDays(store.days, health.days, `store ${code}`);
}

test('the devices view shows each device and the store as the health API does', async () => {
  const from = await page.inputValue('#from');
  const to = await page.inputValue('#to');
  await page.click('#tab-devices');
  let health = await showDevices(page, HOURS_STORE);
  await assertDevicesView(page, health);
  assert.match(page.url(), /view=devices/);
  assert.match(page.url(), /days=7/);
  assert.equal(await page.isVisible('#from'), false, 'the devices are of the last days, not the picked dates');
  assert.equal(await page.isVisible('#live'), false);
  await screenshot(page, 'devices-desktop.png');
  // Another store: hours learned from its counts, no capacity.
  health = await showDevices(page, STORE);
  assert.equal(health.opening_hours, null);
  await assertDevicesView(page, health);

  // At phone width, from an address: the table scrolls inside its card, the page does not.
  const phone = await openPage(PHONE);
  await phone.goto(`${base}/#store=${HOURS_STORE}&from=${from}&to=${to}&view=devices&days=7`);
  await signIn(phone);
  await waitShown(phone, `devices ${HOURS_STORE} 7`);
  const [phoneHealth] = await apiAll(DEVICE_HEALTH, { store_code: HOURS_STORE, days: '7' });
  assert.deepEqual(
    (await devicesTable(phone)).slice(0, -1).map((r) => [r.device, r.silent]),
    phoneHealth.devices.map((d) => [d.device_id, String(d.silent)]),
  );
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the devices view is ${overflow}px wider than the phone`);
  // The device column stays in view while the days scroll sideways.
  await phone.$eval('#devices-wrap', (wrap) => (wrap.scrollLeft = wrap.scrollWidth));
  const device = await phone.$eval('#devices-table tbody th.device', (th) => th.getBoundingClientRect().left);
  assert.ok(device >= 0, `the device column scrolled away: ${device}`);
  await screenshot(phone, 'devices-phone.png');
  await phone.close();

  await page.click('#tab-store');
  await waitShown(page, `${STORE} ${from} ${to} 15 none`);
});

test('at phone width everything fits the screen, and a reload keeps the view', async () => {
  const day = await localDate(STORE, 1);
  const phone = await openPage(PHONE);
  // Another tab has its own session: sign in again; the address carries the view.
  await phone.goto(`${base}/#store=${STORE}&from=${day}&to=${day}&per=15&compare=week`);
  await signIn(phone);
  await waitShown(phone, `${STORE} ${day} ${day} 15 Previous week`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  const svgWidth = await phone.$eval('#flow-chart svg', (svg) => svg.getBoundingClientRect().width);
  assert.ok(svgWidth <= PHONE.width - 20 && svgWidth > 300, `chart width ${svgWidth}`);
  const heatmapWidth = await phone.$eval('#heatmap svg', (svg) => svg.getBoundingClientRect().width);
  assert.ok(heatmapWidth <= PHONE.width - 20 && heatmapWidth > 300, `heatmap width ${heatmapWidth}`);
  await screenshot(phone, 'dashboard-phone.png');
  await phone.click('#tab-overview');
  await phone.waitForSelector('#overview-table tbody tr');
  const tableOverflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(tableOverflow <= 0, `the overview is ${tableOverflow}px wider than the phone`);
  await screenshot(phone, 'overview-phone.png');
  await phone.click('#tab-store');
  await waitShown(phone, `${STORE} ${day} ${day} 15 Previous week`);
  await phone.reload();
  await waitShown(phone, `${STORE} ${day} ${day} 15 Previous week`);
  assert.equal(await phone.isVisible('#sign-in-view'), false, 'the tab stays signed in across a reload');
  await phone.click('#sign-out');
  await phone.waitForSelector('#sign-in-view:not([hidden])');
  assert.equal(await phone.evaluate(() => sessionStorage.length), 0);
  await phone.close();
});

test('the page stayed on its own origin and raised no script errors', () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(pageErrors, []);
});

test('an unreachable server is reported, on the dashboard and at sign-in', async () => {
  const shown = await localDate(STORE, 1);
  const day = await localDate(STORE, 2);
  await page.fill('#from', shown);
  await waitShown(page, `${STORE} ${shown} ${shown} 15 none`);
  await stopServer();
  await page.fill('#from', day);
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await page.textContent('#banner'), /server cannot be reached.*Still showing store 220310/);
  assert.equal(await page.isVisible('#content'), true, 'the last data stays on screen');
  await screenshot(page, 'unreachable-desktop.png');
  await page.click('#sign-out');
  await signIn(page);
  await page.waitForSelector('#sign-in-error:not([hidden])');
  assert.match(await page.textContent('#sign-in-error'), /server cannot be reached/);
});
