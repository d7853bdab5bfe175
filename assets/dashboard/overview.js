// The overview of all the user's stores: the summary endpoint's figures for local days from..to of each
// store, compared with the previous period or year; a sortable table and the API's own CSV.

import * as data from './data.js';

const number = new Intl.NumberFormat('en-US');

// Stores whose local days from..to have the same UTC bounds share one summary request (the endpoint
// answers for every visible store; each group keeps its own stores' rows). Pure: [{ bounds, codes }].
export function boundGroups(stores, from, to) {
  const groups = new Map();
  for (const store of stores) {
    const bounds = data.exactBounds(from, to, store.offsetAt);
    const key = `${bounds.datetime_gte} ${bounds.datetime_lte}`;
    if (!groups.has(key)) groups.set(key, { bounds, codes: new Set() });
    groups.get(key).codes.add(store.code);
  }
  return [...groups.values()];
}

// One summary row per store, each over its own local days, in store-code order.
export async function fetchOverview(client, stores, from, to, compare) {
  const groups = boundGroups(stores, from, to);
  const answers = await Promise.all(
    groups.map(({ bounds, codes }) =>
      client
        .summary({ ...bounds, compare, ...(codes.size === 1 ? { store_code: [...codes][0] } : {}) })
        .then((rows) => rows.filter((row) => codes.has(row.store_code))),
    ),
  );
  return data.sortRows(answers.flat(), 'store_code');
}

// The same figures as the API's CSV (`format=csv`), one file however many groups.
export async function overviewCsv(client, stores, from, to, compare) {
  const groups = boundGroups(stores, from, to);
  const parts = await Promise.all(
    groups.map(({ bounds, codes }) =>
      client
        .summaryCsv({ ...bounds, compare, ...(codes.size === 1 ? { store_code: [...codes][0] } : {}) })
        .then((text) => ({ text, codes })),
    ),
  );
  return data.mergeCsv(parts);
}

function cell(text, className = '', value = undefined) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  if (value !== undefined) td.dataset.value = value ?? '';
  return td;
}

// Fills the table's body with `rows` sorted by `sort` ({ key, direction }), marking the sorted header.
export function renderOverview(table, rows, sort, { storeName, peakLabel, compareLabel }) {
  for (const th of table.querySelectorAll('th[data-key]')) {
    const sorted = th.dataset.key === sort.key;
    th.setAttribute('aria-sort', sorted ? (sort.direction > 0 ? 'ascending' : 'descending') : 'none');
    if (th.dataset.key === 'compare_in_metric') th.querySelector('button').textContent = compareLabel;
  }
  const body = table.tBodies[0];
  body.replaceChildren(
    ...data.sortRows(rows, sort.key, sort.direction).map((row) => {
      const tr = document.createElement('tr');
      tr.dataset.store = row.store_code;
      const name = storeName(row.store_code);
      const store = cell(row.store_code, 'store', row.store_code);
      if (name && name !== row.store_code) {
        store.append(Object.assign(document.createElement('span'), { className: 'name', textContent: name }));
      }
      const change = row.in_change_percent;
      const peak = cell(
        row.peak_occupancy_minute ? number.format(row.peak_occupancy_metric) : '–',
        'num',
        row.peak_occupancy_metric,
      );
      if (row.peak_occupancy_minute) {
        peak.append(
          Object.assign(document.createElement('span'), {
            className: 'name',
            textContent: peakLabel(row.peak_occupancy_minute),
          }),
        );
      }
      tr.append(
        store,
        cell(number.format(row.in_metric), 'num', row.in_metric),
        cell(number.format(row.out_metric), 'num col-out', row.out_metric),
        cell(row.compare_in_metric == null ? '–' : number.format(row.compare_in_metric), 'num', row.compare_in_metric),
        cell(data.formatChange(change), `num change${change > 0 ? ' up' : change < 0 ? ' down' : ''}`, change),
        peak,
      );
      return tr;
    }),
  );
}
