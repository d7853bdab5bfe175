// The dashboard's only way to the server: the public read API with HTTP Basic auth.

import { isoUtc, parseMinute } from './data.js';

export const VISITS = '/api/bi/acquisition-metrics/visits/';
export const OCCUPANCY = '/api/bi/acquisition-metrics/occupancy/';
const PAGE_SIZE = 10000;

// What went wrong, in words for the person at the screen; `kind` is 'auth', 'unreachable' or 'http'.
export class ApiError extends Error {
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

// The Authorization header for a username and password (UTF-8, as the server decodes it).
export function basicAuthorization(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

export class Client {
  constructor(authorization) {
    this.authorization = authorization;
  }

  async getJson(url) {
    let response;
    try {
      // `credentials: 'omit'`: the browser neither adds credentials of its own nor, on a 401 with
      // `WWW-Authenticate: Basic`, opens its own password dialog over the page.
      // `cache: 'no-cache'`: always revalidate (the API sends ETags), never show a page from before the
      // latest publication.
      response = await fetch(url, {
        headers: { Authorization: this.authorization, Accept: 'application/json' },
        credentials: 'omit',
        cache: 'no-cache',
      });
    } catch {
      throw new ApiError(
        'unreachable',
        'The server cannot be reached. Check that footfall is running, then try again.',
      );
    }
    if (response.status === 401) throw new ApiError('auth', 'Wrong username or password.', 401);
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: a proxy's error page, or a connection cut mid-body.
    }
    if (!response.ok || body === null) {
      const detail = body?.detail ? `: ${body.detail}` : '';
      const kind = response.status >= 502 && response.status <= 504 ? 'unreachable' : 'http';
      throw new ApiError(kind, `The server answered HTTP ${response.status}${detail}`, response.status);
    }
    return body;
  }

  // Every row of a query, following `next` links.
  async all(path, params) {
    let url = `${path}?${new URLSearchParams({ ...params, page_size: String(PAGE_SIZE) })}`;
    const rows = [];
    while (url) {
      const page = await this.getJson(url);
      for (const row of page.results) rows.push(row);
      url = page.next && sameOrigin(page.next);
    }
    return rows;
  }

  visits(params) {
    return this.all(VISITS, params);
  }

  occupancy(params) {
    return this.all(OCCUPANCY, params);
  }

  // Checks the credentials with the cheapest query there is: one minute of all the user's stores.
  async signIn(now = Date.now()) {
    const at = isoUtc(Math.floor(now / 60_000) * 60_000);
    await this.getJson(`${VISITS}?${new URLSearchParams({ datetime_gte: at, datetime_lte: at, page_size: '1' })}`);
  }

  // The user's stores that have counts in the `days` before `now`, each with the UTC offset and instant
  // of its latest row: [{ code, offset, seen }]. The API has no store list, so this walks the all-stores
  // visits query, which is ordered by store: one row per page, and a binary search for where each store's
  // rows end. That is about log2(rows) tiny requests per store, instead of downloading every row.
  async stores(now = Date.now(), days = 35) {
    const params = {
      datetime_gte: isoUtc(Math.floor(now / 60_000) * 60_000 - days * 86_400_000),
      datetime_lte: isoUtc(now),
      page_size: '1',
    };
    const rowAt = async (index) => {
      const page = await this.getJson(`${VISITS}?${new URLSearchParams({ ...params, page: String(index + 1) })}`);
      return { page, row: page.results[0] };
    };
    const first = await rowAt(0);
    const count = first.page.count;
    const lastRow = count > 1 ? (await rowAt(count - 1)).row : first.row;
    const stores = [];
    let start = 0;
    let startRow = first.row;
    while (start < count) {
      const code = startRow.store_code;
      // Invariant: the row at `low` is this store's, the row at `high` (if high < count) is not.
      let low = start;
      let lowRow = startRow;
      let high = count;
      let highRow = null;
      if (lastRow.store_code === code) {
        low = count - 1;
        lowRow = lastRow;
      } else {
        high = count - 1;
        highRow = lastRow;
        while (high - low > 1) {
          const middle = Math.floor((low + high) / 2);
          const { row } = await rowAt(middle);
          if (row.store_code === code) [low, lowRow] = [middle, row];
          else [high, highRow] = [middle, row];
        }
      }
      const latest = parseMinute(lowRow.minute);
      stores.push({ code, offset: latest.offset, seen: latest.instant });
      start = high;
      startRow = highRow;
    }
    return stores;
  }
}

// A `next` link on this page's origin: the server builds links from its own idea of the scheme, which
// behind a TLS-terminating proxy is http, and a browser refuses http requests from an https page.
function sameOrigin(link) {
  const url = new URL(link, window.location.href);
  return `${url.pathname}${url.search}`;
}
