// The devices of one store (`GET /api/devices/health`): its opening hours, capacity and whether it is open
// now, and a table of its counters: the last bin each sent, a SILENT flag, and each day's completeness and
// count balance, with the store's own row (all doors).

const number = new Intl.NumberFormat('en-US');

// 0.917 -> "91.7%", 1 -> "100%" (the API rounds shares to 0.001).
export function formatShare(share) {
  return `${Number((share * 100).toFixed(1))}%`;
}

// Minutes as "47 min", "2 h 05 min", "3 d 4 h".
export function formatDuration(minutes) {
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 1440) return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
  return `${Math.floor(minutes / 1440)} d ${Math.floor((minutes % 1440) / 60)} h`;
}

// A completeness's level: 'ok' from 95%, 'warn' from 80%, else 'bad'.
export function completenessLevel(share) {
  return share >= 0.95 ? 'ok' : share >= 0.8 ? 'warn' : 'bad';
}

// "2026-12-06T21:59:00-05:00" -> "Sun 6 Dec 21:59" (the store's local time, as the API writes it).
export function formatLocalMinute(minute) {
  const date = new Date(`${minute.slice(0, 10)}T00:00:00Z`).toLocaleDateString('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    timeZone: 'UTC',
  });
  return `${date} ${minute.slice(11, 16)}`;
}

function dayHeader(date) {
  return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    timeZone: 'UTC',
  });
}

function element(tag, className = '', text = '') {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

// A flag: coloured, with its words in the text (not colour alone).
function badge(kind, text) {
  return element('span', `badge badge-${kind}`, text);
}

// One day's cell: completeness over the open minutes, then the balance of entries and exits.
function dayCell(day) {
  const td = element('td', 'day');
  td.dataset.date = day.date;
  td.dataset.completeness = day.completeness ?? '';
  td.dataset.balance = day.balance ?? '';
  td.dataset.imbalanced = String(day.imbalanced);
  const completeness =
    day.completeness === null
      ? element('span', 'completeness closed', 'closed')
      : element('span', `completeness level-${completenessLevel(day.completeness)}`, formatShare(day.completeness));
  completeness.title =
    day.completeness === null
      ? 'Closed all day (no open minutes)'
      : `Counts in ${number.format(day.minutes_with_data)} of ${number.format(day.open_minutes)} open minutes`;
  const counts = `${number.format(day.in_metric)} in, ${number.format(day.out_metric)} out`;
  let balance;
  if (day.balance === null) {
    balance = element('span', 'balance none', 'no counts');
  } else if (day.imbalanced) {
    balance = element('span', 'balance imbalanced', `⚠ ±${formatShare(day.balance)}`);
    balance.append(element('span', 'visually-hidden', ' imbalanced'));
  } else {
    balance = element('span', 'balance', `±${formatShare(day.balance)}`);
  }
  balance.title = `${counts}${day.imbalanced ? ': imbalanced' : ''}`;
  td.append(completeness, balance);
  return td;
}

function row({ label, sub, kind, lastBin, status, days, device }) {
  const tr = element('tr', kind);
  if (device !== undefined) tr.dataset.device = device;
  const name = element('th', 'device', label);
  name.scope = 'row';
  if (sub) name.append(element('span', 'name', sub));
  const last = element('td', 'last-bin', lastBin ? formatLocalMinute(lastBin) : 'never');
  last.dataset.value = lastBin ?? '';
  const state = element('td', 'status');
  state.append(...status);
  tr.append(name, last, state, ...days.map(dayCell));
  return tr;
}

function latest(minutes) {
  return minutes.filter(Boolean).sort((a, b) => Date.parse(b) - Date.parse(a))[0] ?? null;
}

// Fills the table with one row per device and the store's row (all doors) at the bottom.
export function renderDeviceTable(table, health) {
  const head = element('tr');
  const cols = [
    ['Device', ''],
    ['Last count', ''],
    ['Status', ''],
  ];
  for (const [text, className] of cols) {
    const th = element('th', className, text);
    th.scope = 'col';
    head.append(th);
  }
  for (const day of health.days) {
    const th = element('th', 'day', dayHeader(day.date));
    th.scope = 'col';
    th.dataset.date = day.date;
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const rows = health.devices.map((device) => {
    const status = device.silent
      ? [
          badge('silent', 'SILENT'),
          element('span', 'name', `no counts for ${formatDuration(device.open_minutes_without_data)} while open`),
        ]
      : [badge('ok', 'OK')];
    const tr = row({
      label: device.device_id,
      kind: device.silent ? 'silent' : '',
      lastBin: device.last_bin,
      status,
      days: device.days,
      device: device.device_id,
    });
    tr.dataset.silent = String(device.silent);
    tr.dataset.silentMinutes = device.silent ? device.open_minutes_without_data : '';
    return tr;
  });
  const count = health.devices.length;
  const silent = health.silent_devices;
  const store = row({
    label: 'All doors',
    sub: `${count} device${count === 1 ? '' : 's'}`,
    kind: 'all-doors',
    lastBin: latest(health.devices.map((d) => d.last_bin)),
    status: silent ? [badge('silent', `${silent} of ${count} SILENT`)] : [badge('ok', count ? 'OK' : 'No devices')],
    days: health.days,
  });
  store.dataset.store = health.store_code;
  table.tBodies[0].replaceChildren(...rows, store);
}

// The store's facts above the table: opening hours (or learned), capacity, open now, devices silent.
export function storeFacts(health, capacity) {
  const hours = health.opening_hours
    ? health.opening_hours
    : health.hours_learned
      ? 'Learned from its counts'
      : 'Not set, and too few counts to learn them';
  return {
    hours,
    capacity: capacity == null ? null : `${number.format(capacity)} people`,
    open: health.open_now,
    silent: health.silent_devices,
    devices: health.devices.length,
  };
}

export { badge };
