// The dashboard page: sign-in, controls, loading, and putting figures and charts on the page.

import { ApiError, Client, basicAuthorization } from './api.js';
import { dayLabel, drawFlow, drawOccupancy, timeLabel } from './charts.js';
import * as data from './data.js';

// Credentials live for this tab only (sessionStorage), as the header value the API needs.
const SESSION_KEY = 'footfall.session';
const REFRESH_MS = 60_000;
const MAX_DAYS = 31;
const SIZE_LABELS = { 1: 'minute', 15: '15 minutes', 60: 'hour' };

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat('en-US');

const state = {
  client: null,
  stores: [],
  view: null,
  generation: 0,
  cache: new Map(),
  loadedAt: null,
};

function show(view) {
  for (const id of ['sign-in-view', 'dashboard-view']) $(id).hidden = id !== view;
  $('session').hidden = view !== 'dashboard-view';
}

function setLoading(on) {
  $('loading').hidden = !on;
}

// ---- sign-in ----

function showSignIn(message = '') {
  state.client = null;
  state.view = null;
  state.cache.clear();
  sessionStorage.removeItem(SESSION_KEY);
  show('sign-in-view');
  setLoading(false);
  const error = $('sign-in-error');
  error.textContent = message;
  error.hidden = !message;
  $('sign-in-button').disabled = false;
  $('sign-in-button').textContent = 'Sign in';
  ($('username').value ? $('password') : $('username')).focus();
}

async function signIn(event) {
  event.preventDefault();
  const username = $('username').value.trim();
  const password = $('password').value;
  const error = $('sign-in-error');
  if (!username || !password) {
    error.textContent = 'Enter your username and password.';
    error.hidden = false;
    return;
  }
  $('sign-in-button').disabled = true;
  $('sign-in-button').textContent = 'Signing in…';
  error.hidden = true;
  const authorization = basicAuthorization(username, password);
  const client = new Client(authorization);
  try {
    await client.signIn();
  } catch (failure) {
    $('sign-in-button').disabled = false;
    $('sign-in-button').textContent = 'Sign in';
    error.textContent = failure instanceof ApiError ? failure.message : `Something went wrong: ${failure}`;
    error.hidden = false;
    $('password').select();
    return;
  }
  $('password').value = '';
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ username, authorization }));
  await enter(username, client);
}

function signOut() {
  $('username').value = '';
  showSignIn();
}

// ---- the dashboard ----

async function enter(username, client) {
  state.client = client;
  $('session-user').textContent = username;
  show('dashboard-view');
  $('content').hidden = true;
  $('empty').hidden = true;
  setBanner('');
  setLoading(true);
  try {
    state.stores = await client.stores();
  } catch (failure) {
    setLoading(false);
    if (failure.kind === 'auth') return showSignIn('Your password is no longer accepted: sign in again.');
    return setBanner(failure.message, () => enter(username, client));
  }
  setLoading(false);
  if (state.stores.length === 0) {
    $('controls').hidden = true;
    showEmpty('You may not see any store yet: ask an administrator to give you access.');
    return;
  }
  $('controls').hidden = false;
  fillStores();
  applyHash();
  await load();
}

function fillStores() {
  $('store').replaceChildren(...state.stores.map(({ code, name }) => new Option(name && name !== code ? `${code} · ${name}` : code, code)));
  fillCompare();
}

function fillCompare() {
  const current = $('compare').value || 'none';
  const options = [new Option('Nothing', 'none'), new Option('Same days, previous week', 'week')];
  for (const { code, name } of state.stores) {
    if (code !== $('store').value) options.push(new Option(`Store ${code}${name && name !== code ? ` · ${name}` : ''}`, `store:${code}`));
  }
  $('compare').replaceChildren(...options);
  $('compare').value = options.some((o) => o.value === current) ? current : 'none';
}

function store(code) {
  return state.stores.find((s) => s.code === code);
}

function today(code) {
  return data.localDate(Date.now(), store(code).offset);
}

function selectedSize() {
  return Number(document.querySelector('input[name="size"]:checked').value);
}

function selection() {
  return {
    code: $('store').value,
    from: $('from').value,
    to: $('to').value,
    size: selectedSize(),
    compare: $('compare').value,
  };
}

// Restores store, dates, bucket size and comparison from the address (#store=..&from=..), else today.
function applyHash() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const code = params.get('store');
  if (code && store(code)) $('store').value = code;
  fillCompare();
  const date = /^\d{4}-\d{2}-\d{2}$/;
  const from = params.get('from');
  const to = params.get('to');
  const localToday = today($('store').value);
  $('from').value = from && date.test(from) ? from : localToday;
  $('to').value = to && date.test(to) && to >= $('from').value ? to : $('from').value;
  const size = params.get('per');
  const radio = document.querySelector(`input[name="size"][value="${size}"]`);
  if (radio) radio.checked = true;
  const compare = params.get('compare');
  if (compare && [...$('compare').options].some((o) => o.value === compare)) $('compare').value = compare;
}

function writeHash({ code, from, to, size, compare }) {
  const params = new URLSearchParams({ store: code, from, to, per: String(size), compare });
  window.history.replaceState(null, '', `#${params}`);
}

// Rows of one store for local days from..to: [visits, occupancy], cached for the session's refresh cycle.
function fetchDays(code, from, to) {
  const key = `${code}|${from}|${to}`;
  if (!state.cache.has(key)) {
    if (state.cache.size >= 50) state.cache.clear(); // a long session browsing many days
    const bounds = data.utcBounds(from, to, store(code).offset);
    const query = { ...bounds, store_code: code };
    const promise = Promise.all([state.client.visits(query), state.client.occupancy(query)]).then(
      ([visits, occupancy]) => {
        const rows = [data.withinDays(visits, from, to), data.withinDays(occupancy, from, to)];
        // The latest row's offset is the store's current one (daylight saving moves it).
        const last = visits.at(-1);
        if (last) {
          const latest = data.parseMinute(last.minute);
          if (latest.instant > (store(code).seen ?? 0))
            Object.assign(store(code), { offset: latest.offset, seen: latest.instant });
        }
        return rows;
      },
    );
    promise.catch(() => state.cache.delete(key));
    state.cache.set(key, promise);
  }
  return state.cache.get(key);
}

function comparison({ code, from, to, compare }) {
  if (compare === 'week') {
    const cFrom = data.addDays(from, -7);
    const cTo = data.addDays(to, -7);
    return { code, from: cFrom, to: cTo, label: 'Previous week' };
  }
  if (compare.startsWith('store:')) {
    const other = compare.slice('store:'.length);
    if (store(other)) return { code: other, from, to, label: `Store ${other}` };
  }
  return null;
}

async function load() {
  if (!state.client) return;
  const chosen = selection();
  if (!chosen.from || !chosen.to) return;
  if (chosen.from > chosen.to) [chosen.from, chosen.to] = [chosen.to, chosen.from];
  if (data.daysBetween(chosen.from, chosen.to) >= MAX_DAYS) {
    chosen.to = data.addDays(chosen.from, MAX_DAYS - 1);
    $('to').value = chosen.to;
  }
  $('from').value = chosen.from;
  $('to').value = chosen.to;
  writeHash(chosen);
  const generation = ++state.generation;
  const other = comparison(chosen);
  document.body.classList.add('busy');
  if (!state.view) setLoading(true);
  try {
    const [primary, compare] = await Promise.all([
      fetchDays(chosen.code, chosen.from, chosen.to),
      other ? fetchDays(other.code, other.from, other.to) : null,
    ]);
    if (generation !== state.generation) return;
    state.view = { ...chosen, visits: primary[0], occupancy: primary[1], other, compare };
    state.loadedAt = new Date();
    setBanner('');
    render();
  } catch (failure) {
    if (generation !== state.generation) return;
    if (failure.kind === 'auth') return showSignIn('Your password is no longer accepted: sign in again.');
    const message = failure instanceof ApiError ? failure.message : `Something went wrong: ${failure}`;
    const shown = state.view;
    const loadedAt = state.loadedAt?.toTimeString().slice(0, 5);
    const still = shown
      ? ` Still showing store ${shown.code}, ${formatRange(shown.from, shown.to)}, as loaded at ${loadedAt}.`
      : '';
    setBanner(`${message}${still}`, () => {
      state.cache.clear();
      load();
    });
    if (!state.view) $('content').hidden = true;
  } finally {
    if (generation === state.generation) {
      document.body.classList.remove('busy');
      setLoading(false);
    }
  }
}

function setBanner(message, retry = null) {
  const banner = $('banner');
  banner.replaceChildren(message);
  if (retry) {
    const button = Object.assign(document.createElement('button'), {
      type: 'button',
      className: 'link',
      textContent: 'Retry',
    });
    button.addEventListener('click', retry);
    banner.append(' ', button);
  }
  banner.hidden = !message;
}

function showEmpty(text) {
  $('content').hidden = true;
  $('empty').hidden = false;
  $('empty-detail').textContent = text;
  $('download').disabled = true;
}

function formatDay(date) {
  return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    timeZone: 'UTC',
  });
}

function formatRange(from, to) {
  return from === to ? formatDay(from) : `${formatDay(from)} – ${formatDay(to)}`;
}

function percentChange(now, before) {
  if (!before) return '';
  const change = ((now - before) / before) * 100;
  return ` (${change >= 0 ? '+' : ''}${change.toFixed(0)}%)`;
}

function setFigure(id, text, attributes = {}) {
  const element = $(id);
  element.textContent = text;
  for (const [key, value] of Object.entries(attributes)) element.dataset[key] = value ?? '';
}

function render() {
  const view = state.view;
  if (!view) return;
  const { code, from, to, size, other } = view;
  // What is on screen, for people's scripts and the browser tests to wait on.
  document.body.dataset.shown = `${code} ${from} ${to} ${size} ${view.compare ? other.label : 'none'}`;
  const offset = view.visits.length ? data.parseMinute(view.visits[0].minute).offset : store(code).offset;
  $('footnote').textContent =
    `Store ${code}, ${formatRange(from, to)}. Times are the store's local time (UTC${data.formatOffset(offset)}).`;
  if (view.visits.length === 0) {
    const when = from === to ? `on ${formatDay(from)}` : `from ${formatDay(from)} to ${formatDay(to)}`;
    showEmpty(`Store ${code} has no counts ${when}. Counts appear once they are published; pick another day.`);
    return;
  }
  $('empty').hidden = true;
  $('content').hidden = false;
  $('download').disabled = false;
  const multiDay = from !== to;

  const figures = data.headline(view.visits, view.occupancy);
  const before = view.compare ? data.headline(view.compare[0], view.compare[1]) : null;
  setFigure('fig-entries', number.format(figures.entries), { value: figures.entries });
  setFigure('fig-exits', number.format(figures.exits), { value: figures.exits });
  setFigure(
    'cmp-entries',
    before ? `${other.label}: ${number.format(before.entries)}${percentChange(figures.entries, before.entries)}` : '',
  );
  setFigure(
    'cmp-exits',
    before ? `${other.label}: ${number.format(before.exits)}${percentChange(figures.exits, before.exits)}` : '',
  );
  const peakAt = figures.peak ? data.position(figures.peak.minute, from) : null;
  setFigure('fig-peak', figures.peak ? number.format(figures.peak.value) : '–', {
    value: figures.peak?.value,
    minute: figures.peak?.minute,
  });
  setFigure(
    'fig-peak-at',
    (figures.peak ? `at ${timeLabel(from, peakAt, multiDay)}` : '') +
      (before?.peak ? ` · ${other.label}: ${before.peak.value}` : ''),
  );
  if (figures.busiest) {
    const start = data.position(`${figures.busiest.hour}:00:00Z`, from);
    setFigure('fig-busiest', `${timeLabel(from, start, false)}–${timeLabel(from, start + 60, false)}`, {
      hour: figures.busiest.hour,
    });
    const entries = `${number.format(figures.busiest.entries)} entries`;
    setFigure('fig-busiest-entries', multiDay ? `${dayLabel(from, start)} · ${entries}` : entries, {
      value: figures.busiest.entries,
    });
  } else {
    setFigure('fig-busiest', '–', { hour: '' });
    setFigure('fig-busiest-entries', 'no entries');
  }

  const primaryBuckets = data.buckets(view.visits, from, size);
  const compareBuckets = view.compare ? data.buckets(view.compare[0], other.from, size) : null;
  const primaryPoints = data.occupancyPoints(view.occupancy, from);
  const comparePoints = view.compare ? data.occupancyPoints(view.compare[1], other.from) : null;
  const positions = [...primaryBuckets, ...(compareBuckets ?? [])].map((b) => b.at);
  const domain = [Math.floor(Math.min(...positions) / 60) * 60, Math.ceil((Math.max(...positions) + size) / 60) * 60];
  const labels = { size: SIZE_LABELS[size], primary: `Store ${code}`, compare: other?.label };
  $('flow-title').textContent = `Entries and exits per ${SIZE_LABELS[size]}`;
  legend('flow-legend', [['entries', 'Entries'], ['exits', 'Exits'], ...(other ? [['compare', other.label]] : [])]);
  legend('occupancy-legend', [['occupancy', `Store ${code}`], ...(other ? [['compare', other.label]] : [])]);
  const height = (element) => (element.clientWidth < 560 ? 220 : 280);
  drawFlow($('flow-chart'), {
    primary: primaryBuckets,
    compare: compareBuckets,
    size,
    domain,
    from,
    height: height($('flow-chart')),
    labels,
  });
  drawOccupancy($('occupancy-chart'), {
    primary: primaryPoints,
    compare: comparePoints,
    peak: figures.peak ? { at: peakAt, value: figures.peak.value } : null,
    domain,
    from,
    height: height($('occupancy-chart')),
    labels,
  });
}

function legend(id, items) {
  $(id).replaceChildren(
    ...items.map(([kind, text]) => {
      const item = document.createElement('li');
      item.className = `key-${kind}`;
      item.textContent = text;
      return item;
    }),
  );
}

function download() {
  const view = state.view;
  if (!view) return;
  const blob = new Blob([data.toCsv(view.visits, view.occupancy)], { type: 'text/csv' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = `footfall-${view.code}-${view.from}${view.to !== view.from ? `_${view.to}` : ''}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function refresh() {
  const view = state.view;
  if (!view || document.visibilityState !== 'visible') return;
  if (view.to < today(view.code)) return;
  state.cache.clear();
  load();
}

function start() {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('controls').addEventListener('submit', (event) => event.preventDefault());
  $('store').addEventListener('change', () => {
    // A new store's "today" may be another date than the old one's.
    const previous = state.view?.code;
    if (previous && $('from').value === today(previous) && $('to').value === today(previous)) {
      $('from').value = $('to').value = today($('store').value);
    }
    fillCompare();
    load();
  });
  $('from').addEventListener('change', () => {
    if ($('to').value < $('from').value || state.view?.from === state.view?.to) $('to').value = $('from').value;
    load();
  });
  $('to').addEventListener('change', () => load());
  $('compare').addEventListener('change', () => load());
  for (const radio of document.querySelectorAll('input[name="size"]')) {
    radio.addEventListener('change', () => {
      if (!state.view) return;
      state.view.size = selectedSize();
      writeHash(state.view);
      render();
    });
  }
  $('download').addEventListener('click', download);
  let width = 0;
  new ResizeObserver(([entry]) => {
    if (Math.abs(entry.contentRect.width - width) >= 1) {
      width = entry.contentRect.width;
      render();
    }
  }).observe($('flow-chart'));
  setInterval(refresh, REFRESH_MS);

  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  if (saved?.authorization) enter(saved.username, new Client(saved.authorization));
  else showSignIn();
}

start();
