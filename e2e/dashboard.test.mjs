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
const STORE = '220310'; // New York: a negative offset, so its local day spans two UTC dates
const OTHER_STORE = '116500';
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
  await screenshot(phone, 'dashboard-phone.png');
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
