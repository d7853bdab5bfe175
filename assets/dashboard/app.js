// The dashboard page: sign-in, controls, loading, and putting figures and charts on the page.

import { ApiError, Client, basicAuthorization } from './api.js';
import { dateLabel, dayLabel, drawFlow, drawHeatmap, drawOccupancy, drawPeaks, timeLabel } from './charts.js';
import * as data from './data.js';
import { badge, renderDeviceTable, storeFacts } from './devices.js';
import { fetchOverview, overviewCsv, renderOverview } from './overview.js';

// Credentials live for this tab only (sessionStorage), as the header value the API needs.
const SESSION_KEY = 'footfall.session';
const REFRESH_MS = 60_000;
const MAX_DAYS = 366;
// Ranges longer than this show each day's peak occupancy instead of the minute-by-minute line.
const MINUTE_OCCUPANCY_DAYS = 7;
const SIZE_LABELS = { 1: 'minute', 15: '15 minutes', 60: 'hour', [data.DAY]: 'day', [data.WEEK]: 'week' };
const PERIOD_LABELS = { previous_period: 'Previous period', previous_year: 'Previous year' };
const WEEKDAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat('en-US');

const state = {
  client: null,
  stores: [],
  view: null,
  generation: 0,
  cache: new Map(),
  loadedAt: null,
  tab: 'store',
  overview: null,
  devices: null,
  sort: { key: 'in_metric', direction: -1 },
  live: 0,
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
  state.overview = null;
  state.devices = null;
  state.live += 1;
  $('live').hidden = true;
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
  refreshLive();
  await load();
}

function fillStores() {
  $('store').replaceChildren(
    ...state.stores.map(({ code, name }) => new Option(name && name !== code ? `${code} · ${name}` : code, code)),
  );
  fillCompare();
}

function fillCompare() {
  const current = $('compare').value || 'none';
  const options = [new Option('Nothing', 'none'), new Option('Same days, previous week', 'week')];
  for (const { code, name } of state.stores) {
    if (code !== $('store').value)
      options.push(new Option(`Store ${code}${name && name !== code ? ` · ${name}` : ''}`, `store:${code}`));
  }
  $('compare').replaceChildren(...options);
  $('compare').value = options.some((o) => o.value === current) ? current : 'none';
}

function store(code) {
  return state.stores.find((s) => s.code === code);
}

// The store's offset at any instant (from its time zone), for exact local-day bounds.
function offsetAt(code) {
  const found = store(code);
  found.offsetAt ??= data.offsetFunction(found.timezone, found.offset);
  return found.offsetAt;
}

// The stores with their offset functions, for the overview.
function zonedStores() {
  return state.stores.map((s) => ({ ...s, offsetAt: offsetAt(s.code) }));
}

function bounds(code, from, to) {
  return data.exactBounds(from, to, offsetAt(code));
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
    period: $('period-compare').value,
  };
}

// Offers the bucket sizes that suit a range of `days` days; keeps the chosen one if it suits, else
// takes the range's default.
function fitSize(size, days) {
  for (const radio of document.querySelectorAll('input[name="size"]')) {
    radio.disabled = !data.sizeAllowed(Number(radio.value), days);
  }
  const fitted = data.sizeAllowed(size, days) ? size : data.defaultSize(days);
  document.querySelector(`input[name="size"][value="${fitted}"]`).checked = true;
  return fitted;
}

const TABS = ['store', 'overview', 'devices'];
const HEALTH_DAYS = ['7', '14', '31'];

function setTab(tab) {
  state.tab = TABS.includes(tab) ? tab : 'store';
  $('dashboard-view').dataset.tab = state.tab;
  for (const name of TABS) $(`tab-${name}`).setAttribute('aria-pressed', String(state.tab === name));
}

// What the tab shows: the store view, the overview, or the devices.
function shownFor(tab) {
  return { store: state.view, overview: state.overview, devices: state.devices }[tab];
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
  const size = Number(params.get('per'));
  fitSize(data.SIZES.includes(size) ? size : 0, data.rangeDays($('from').value, $('to').value));
  const compare = params.get('compare');
  if (compare && [...$('compare').options].some((o) => o.value === compare)) $('compare').value = compare;
  const period = params.get('vs');
  if (period && PERIOD_LABELS[period]) $('period-compare').value = period;
  const healthDays = params.get('days');
  if (HEALTH_DAYS.includes(healthDays)) $('health-days').value = healthDays;
  const sort = /^(-?)(\w+)$/.exec(params.get('sort') ?? '');
  if (sort && document.querySelector(`#overview-table th[data-key="${sort[2]}"]`)) {
    state.sort = { key: sort[2], direction: sort[1] ? -1 : 1 };
  }
  setTab(params.get('view'));
}

function writeHash({ code, from, to, size, compare, period }) {
  const params = new URLSearchParams({ store: code, from, to, per: String(size), compare });
  if (state.tab === 'overview') {
    params.set('view', 'overview');
    params.set('vs', period);
    params.set('sort', `${state.sort.direction < 0 ? '-' : ''}${state.sort.key}`);
  } else if (state.tab === 'devices') {
    params.set('view', 'devices');
    params.set('days', $('health-days').value);
  }
  window.history.replaceState(null, '', `#${params}`);
}

// A promise kept for the session's refresh cycle under `key` (a failed one is forgotten).
function cached(key, make) {
  if (!state.cache.has(key)) {
    if (state.cache.size >= 200) state.cache.clear(); // a long session browsing many ranges
    const promise = make();
    promise.catch(() => state.cache.delete(key));
    state.cache.set(key, promise);
  }
  return state.cache.get(key);
}

// The latest row's offset is the store's current one (daylight saving moves it): for "today".
function noteOffset(code, rows) {
  const last = rows.at(-1);
  if (!last) return;
  const latest = data.parseMinute(last.minute);
  if (latest.instant > (store(code).seen ?? 0))
    Object.assign(store(code), { offset: latest.offset, seen: latest.instant });
}

// Visits rows of one store for local days from..to in buckets of `size` minutes, bucketed by the API
// (`granularity`; a minute needs none).
function fetchVisits(code, from, to, size) {
  return cached(`visits|${code}|${from}|${to}|${size}`, () => {
    const granularity = size === 1 ? {} : { granularity: data.GRANULARITY[size] };
    return state.client.visits({ ...bounds(code, from, to), store_code: code, ...granularity }).then((rows) => {
      noteOffset(code, rows);
      // A week bucket starts on the Monday, which may be before `from`.
      return size === data.WEEK ? rows : data.withinDays(rows, from, to);
    });
  });
}

// Occupancy rows: per minute, or (`daily`) one per local day with its peak.
function fetchOccupancy(code, from, to, daily) {
  return cached(`occupancy|${code}|${from}|${to}|${daily}`, () =>
    state.client
      .occupancy({ ...bounds(code, from, to), store_code: code, ...(daily ? { granularity: 'day' } : {}) })
      .then((rows) => data.withinDays(rows, from, to)),
  );
}

// The summary row of one store over local days from..to (null if the API has none).
function fetchSummary(code, from, to) {
  return cached(`summary|${code}|${from}|${to}`, () =>
    state.client
      .summary({ ...bounds(code, from, to), store_code: code })
      .then((rows) => rows.find((row) => row.store_code === code) ?? null),
  );
}

// Everything one store's view needs: visits in buckets, occupancy, the summary, and hourly visits for
// the heatmap (the same request when the buckets are hours).
async function fetchView(code, from, to, size, withHeatmap) {
  const daily = data.rangeDays(from, to) > MINUTE_OCCUPANCY_DAYS;
  const [visits, occupancy, summary, hourly] = await Promise.all([
    fetchVisits(code, from, to, size),
    fetchOccupancy(code, from, to, daily),
    fetchSummary(code, from, to),
    withHeatmap ? fetchVisits(code, from, to, 60) : null,
  ]);
  return { visits, occupancy, summary, hourly, daily };
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

// Reads the controls, fixes what does not fit (dates in order, at most MAX_DAYS, a bucket size that suits
// the range), writes the address and loads the tab's data.
async function load() {
  if (!state.client) return;
  const chosen = selection();
  if (!chosen.from || !chosen.to) return;
  if (chosen.from > chosen.to) [chosen.from, chosen.to] = [chosen.to, chosen.from];
  if (data.daysBetween(chosen.from, chosen.to) >= MAX_DAYS) {
    chosen.to = data.addDays(chosen.from, MAX_DAYS - 1);
  }
  $('from').value = chosen.from;
  $('to').value = chosen.to;
  chosen.size = fitSize(chosen.size, data.rangeDays(chosen.from, chosen.to));
  writeHash(chosen);
  const generation = ++state.generation;
  document.body.classList.add('busy');
  if (!shownFor(state.tab)) setLoading(true);
  try {
    if (state.tab === 'devices') {
      const days = Number($('health-days').value);
      const [health] = await state.client.deviceHealth({ store_code: chosen.code, days: String(days) });
      if (generation !== state.generation) return;
      state.devices = { code: chosen.code, days, health: health ?? null };
      state.loadedAt = new Date();
      setBanner('');
      renderDevicesTab();
    } else if (state.tab === 'overview') {
      const rows = await fetchOverview(state.client, zonedStores(), chosen.from, chosen.to, chosen.period);
      if (generation !== state.generation) return;
      state.overview = { from: chosen.from, to: chosen.to, period: chosen.period, rows };
      state.loadedAt = new Date();
      setBanner('');
      renderOverviewTab();
    } else {
      const other = comparison(chosen);
      const [primary, compare] = await Promise.all([
        fetchView(chosen.code, chosen.from, chosen.to, chosen.size, true),
        other ? fetchView(other.code, other.from, other.to, chosen.size, false) : null,
      ]);
      if (generation !== state.generation) return;
      state.view = { ...chosen, ...primary, other, compare };
      state.loadedAt = new Date();
      setBanner('');
      render();
    }
  } catch (failure) {
    if (generation !== state.generation) return;
    if (failure.kind === 'auth') return showSignIn('Your password is no longer accepted: sign in again.');
    const message = failure instanceof ApiError ? failure.message : `Something went wrong: ${failure}`;
    const shown = shownFor(state.tab);
    const loadedAt = state.loadedAt?.toTimeString().slice(0, 5);
    let still = '';
    if (shown && state.tab === 'devices') {
      still = ` Still showing the devices of store ${shown.code}, as loaded at ${loadedAt}.`;
    } else if (shown) {
      const what = state.tab === 'overview' ? 'all stores' : `store ${shown.code}`;
      still = ` Still showing ${what}, ${formatRange(shown.from, shown.to)}, as loaded at ${loadedAt}.`;
    }
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
  if (!view || state.tab !== 'store') return;
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
  const days = data.rangeDays(from, to);

  const figures = data.summaryHeadline(view.summary);
  const before = view.compare ? data.summaryHeadline(view.compare.summary) : null;
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
  const compareBuckets = view.compare ? data.buckets(view.compare.visits, other.from, size) : null;
  const points = view.daily ? data.peakPoints : data.occupancyPoints;
  const primaryPoints = points(view.occupancy, from);
  const comparePoints = view.compare ? points(view.compare.occupancy, other.from) : null;
  const positions = [...primaryBuckets, ...(compareBuckets ?? [])].map((b) => b.at);
  // Short ranges fit the hours with counts; long ones (and days or weeks) show the whole range.
  const domain =
    view.daily || size >= data.DAY
      ? [Math.min(0, ...positions), Math.max(days * 1440, ...positions.map((at) => at + size))]
      : [Math.floor(Math.min(...positions) / 60) * 60, Math.ceil((Math.max(...positions) + size) / 60) * 60];
  const labels = { size: SIZE_LABELS[size], primary: `Store ${code}`, compare: other?.label };
  $('flow-title').textContent = `Entries and exits per ${SIZE_LABELS[size]}`;
  legend('flow-legend', [['entries', 'Entries'], ['exits', 'Exits'], ...(other ? [['compare', other.label]] : [])]);
  legend('occupancy-legend', [['occupancy', `Store ${code}`], ...(other ? [['compare', other.label]] : [])]);
  $('occupancy-title').textContent = view.daily ? 'Peak occupancy per day' : 'Occupancy';
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
  if (view.daily) {
    drawPeaks($('occupancy-chart'), {
      primary: primaryPoints,
      compare: comparePoints,
      size: data.DAY,
      domain,
      from,
      height: height($('occupancy-chart')),
      labels,
    });
  } else {
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
  renderHeatmap(view);
}

// The weekday × hour heatmap of average entries over the range.
function renderHeatmap(view) {
  const { from, to } = view;
  const map = data.heatmap(view.hourly ?? [], from, to);
  const days = data.rangeDays(from, to);
  $('heatmap-title').textContent =
    `Average entries by weekday and hour, ${days === 1 ? formatDay(from) : `${days} days`}`;
  const scale = $('heatmap-legend');
  const swatches = [0.08, 0.31, 0.54, 0.77, 1].map((level) => {
    const swatch = document.createElement('span');
    swatch.className = `swatch level-${Math.round(level * 100)}`;
    return swatch;
  });
  scale.replaceChildren('0 ', ...swatches, ` ${map.max.toFixed(1)}`);
  scale.dataset.max = map.max;
  drawHeatmap($('heatmap'), {
    map,
    weekdays: data.WEEKDAYS,
    describe: (cell) => {
      const hour = `${String(cell.hour).padStart(2, '0')}:00–${String(cell.hour + 1).padStart(2, '0')}:00`;
      const name = WEEKDAY_NAMES[cell.weekday];
      if (!cell.days) return [`${name} ${hour}`, `No ${name} in the range`];
      return [
        `${name} ${hour}`,
        `${cell.average.toFixed(1)} entries on average`,
        `${number.format(cell.total)} over ${cell.days} ${name}${cell.days === 1 ? '' : 's'}`,
      ];
    },
  });
}

function renderOverviewTab() {
  const overview = state.overview;
  if (!overview || state.tab !== 'overview') return;
  const { from, to, period, rows } = overview;
  document.body.dataset.shown = `overview ${from} ${to} ${period} ${state.sort.key} ${state.sort.direction}`;
  $('overview-title').textContent = `All stores, ${formatRange(from, to)}`;
  $('overview-note').textContent = `Change: entries against the ${PERIOD_LABELS[period].toLowerCase()}.`;
  $('overview-footnote').textContent =
    "Each store's figures cover these dates in its own local time. Peak: the most people inside at once.";
  $('download').disabled = rows.length === 0;
  renderOverview($('overview-table'), rows, state.sort, {
    storeName: (code) => store(code)?.name,
    peakLabel: (minute) => {
      const at = data.position(minute, from);
      return from === to ? `at ${timeLabel(from, at, false)}` : `${dateLabel(from, at)} ${timeLabel(from, at, false)}`;
    },
    compareLabel: PERIOD_LABELS[period],
  });
}

// The devices tab: the store's hours, capacity and whether it is open now, and its devices' table.
function renderDevicesTab() {
  const shown = state.devices;
  if (!shown || state.tab !== 'devices') return;
  const { code, days, health } = shown;
  document.body.dataset.shown = `devices ${code} ${days}`;
  const name = store(code)?.name;
  $('devices-title').textContent = `Devices of store ${code}${name && name !== code ? ` · ${name}` : ''}`;
  $('download').disabled = true;
  if (!health) {
    $('devices-note').textContent = 'The server reported nothing for this store.';
    $('devices-table').tHead.replaceChildren();
    $('devices-table').tBodies[0].replaceChildren();
    return;
  }
  const facts = storeFacts(health, store(code)?.capacity);
  setFigure('devices-hours', facts.hours, { hours: health.opening_hours, learned: health.hours_learned });
  $('devices-capacity-item').hidden = facts.capacity === null;
  setFigure('devices-capacity', facts.capacity ?? '', { value: store(code)?.capacity });
  const open = $('devices-open');
  open.replaceChildren(badge(facts.open ? 'ok' : 'closed', facts.open ? 'Open' : 'Closed'));
  open.dataset.value = String(facts.open);
  const silent = $('devices-silent');
  silent.replaceChildren(
    facts.silent
      ? badge('silent', `${facts.silent} of ${facts.devices} SILENT`)
      : badge('ok', `${facts.devices} counting`),
  );
  silent.dataset.value = String(facts.silent);
  const first = health.days[0]?.date;
  const last = health.days.at(-1)?.date;
  $('devices-note').textContent = first ? `${formatRange(first, last)}, the last ${days} days` : '';
  $('devices-table-title').textContent = `Completeness and balance per day, last ${days} days`;
  renderDeviceTable($('devices-table'), health);
  $('devices-footnote').textContent =
    `Store ${code}. Days and times are the store's local time. SILENT: a device with no counts for more than ` +
    `30 minutes while the store is open. Refreshed every minute. ${
      health.opening_hours
        ? ''
        : 'Learned hours: an hour of the week is open when it had counts on at least 3 of the last 4 same weekdays. '
    }`.trim();
}

function sortBy(key) {
  state.sort =
    state.sort.key === key
      ? { key, direction: -state.sort.direction }
      : { key, direction: key === 'store_code' ? 1 : -1 };
  if (state.view || state.overview) writeHash(selection());
  renderOverviewTab();
}

// ---- the live figure ----

async function refreshLive() {
  const code = $('store').value;
  if (!state.client || !code || state.tab !== 'store' || document.visibilityState !== 'visible') return;
  const ticket = ++state.live;
  let row;
  try {
    [row] = (await state.client.live({ store_code: code })).filter((r) => r.store_code === code);
  } catch (failure) {
    if (ticket !== state.live) return;
    // The live figure is a bonus: a server without it, or unreachable, leaves the rest as it is.
    $('live').hidden = true;
    if (failure.kind === 'auth') showSignIn('Your password is no longer accepted: sign in again.');
    return;
  }
  if (ticket !== state.live || !row) return;
  $('live').hidden = false;
  setFigure('live-value', number.format(row.occupancy_metric), { value: row.occupancy_metric, store: code });
  let at = 'No counts yet in this occupancy period';
  if (row.minute) {
    const when = data.parseMinute(row.minute);
    const time = `${String(Math.floor(when.minuteOfDay / 60)).padStart(2, '0')}:${String(when.minuteOfDay % 60).padStart(2, '0')}`;
    at = `Store ${code}, counted up to ${time} on ${formatDay(when.date)} (store time)`;
  }
  setFigure('live-at', at, { minute: row.minute });
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

function save(text, filename) {
  const blob = new Blob([text], { type: 'text/csv' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// The store view's CSV: one line per minute with counts (fetched per minute whatever the buckets); the
// overview's: the summary endpoint's own CSV, fetched with the Authorization header.
async function download() {
  const button = $('download');
  const range = (from, to) => `${from}${to !== from ? `_${to}` : ''}`;
  button.disabled = true;
  button.textContent = 'Preparing…';
  try {
    if (state.tab === 'overview') {
      const overview = state.overview;
      if (!overview) return;
      const text = await overviewCsv(state.client, zonedStores(), overview.from, overview.to, overview.period);
      save(text, `footfall-stores-${range(overview.from, overview.to)}-${overview.period}.csv`);
    } else {
      const view = state.view;
      if (!view) return;
      const [visits, occupancy] = await Promise.all([
        fetchVisits(view.code, view.from, view.to, 1),
        fetchOccupancy(view.code, view.from, view.to, false),
      ]);
      save(data.toCsv(visits, occupancy), `footfall-${view.code}-${range(view.from, view.to)}.csv`);
    }
  } catch (failure) {
    if (failure.kind === 'auth') return showSignIn('Your password is no longer accepted: sign in again.');
    setBanner(`The download failed. ${failure instanceof ApiError ? failure.message : failure}`);
  } finally {
    button.textContent = 'Download CSV';
    button.disabled = false;
  }
}

function refresh() {
  if (!state.client || document.visibilityState !== 'visible') return;
  refreshLive();
  const shown = shownFor(state.tab);
  // The devices are always of the last days, up to now.
  if (!shown || (state.tab !== 'devices' && shown.to < today($('store').value))) return;
  state.cache.clear();
  load();
}

// The range on screen, for moving "To" along with "From" in a one-day view.
function shownRange() {
  return state.tab === 'devices' ? state.view : shownFor(state.tab);
}

function switchTab(tab) {
  if (tab === state.tab) return;
  setTab(tab);
  if (tab === 'store') refreshLive();
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
    refreshLive();
    load();
  });
  $('from').addEventListener('change', () => {
    const shown = shownRange();
    if ($('to').value < $('from').value || shown?.from === shown?.to) $('to').value = $('from').value;
    load();
  });
  $('to').addEventListener('change', () => load());
  $('compare').addEventListener('change', () => load());
  $('period-compare').addEventListener('change', () => load());
  for (const radio of document.querySelectorAll('input[name="size"]')) radio.addEventListener('change', () => load());
  $('tab-store').addEventListener('click', () => switchTab('store'));
  $('tab-overview').addEventListener('click', () => switchTab('overview'));
  $('tab-devices').addEventListener('click', () => switchTab('devices'));
  $('health-days').addEventListener('change', () => load());
  for (const th of document.querySelectorAll('#overview-table th[data-key]')) {
    th.querySelector('button').addEventListener('click', () => sortBy(th.dataset.key));
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
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    refreshLive();
    // The devices' silence moves with the clock: a tab shown again reloads them at once.
    if (state.tab === 'devices' && state.devices) load();
  });

  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  if (saved?.authorization) enter(saved.username, new Client(saved.authorization));
  else showSignIn();
}

start();
