// The dashboard's only way to the server: the public read API with HTTP Basic auth.

export const VISITS = '/api/bi/acquisition-metrics/visits/';
export const OCCUPANCY = '/api/bi/acquisition-metrics/occupancy/';
export const SUMMARY = '/api/bi/acquisition-metrics/summary/';
export const LIVE = '/api/bi/acquisition-metrics/occupancy/live/';
export const DEVICE_HEALTH = '/api/devices/health';
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
    const response = await this.request(url, 'application/json');
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: a proxy's error page, or a connection cut mid-body.
    }
    if (!response.ok || body === null) throw failed(response, body);
    return body;
  }

  // The API's CSV answer to a query (`format=csv`: every row, no paging), as text.
  async getCsv(path, params) {
    const url = `${path}?${new URLSearchParams({ ...params, format: 'csv' })}`;
    const response = await this.request(url, 'text/csv');
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch {
        // Not JSON.
      }
      throw failed(response, body);
    }
    try {
      return await response.text();
    } catch {
      throw unreachable();
    }
  }

  async request(url, accept) {
    let response;
    try {
      // `credentials: 'omit'`: the browser neither adds credentials of its own nor, on a 401 with
      // `WWW-Authenticate: Basic`, opens its own password dialog over the page.
      // `cache: 'no-cache'`: always revalidate (the API sends ETags), never show a page from before the
      // latest publication.
      response = await fetch(url, {
        headers: { Authorization: this.authorization, Accept: accept },
        credentials: 'omit',
        cache: 'no-cache',
      });
    } catch {
      throw unreachable();
    }
    if (response.status === 401) throw new ApiError('auth', 'Wrong username or password.', 401);
    return response;
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

  // One row per visible store (or the one of `store_code`) over the bounds, with `compare` figures
  // when asked (`previous_period` or `previous_year`).
  summary(params) {
    return this.all(SUMMARY, params);
  }

  summaryCsv(params) {
    return this.getCsv(SUMMARY, params);
  }

  // Occupancy now, one row per visible store (or the one of `store_code`).
  live(params) {
    return this.all(LIVE, params);
  }

  // Per store (or the one of `store_code`), its devices' silence, completeness and balance over the last
  // `days` local days.
  deviceHealth(params) {
    return this.all(DEVICE_HEALTH, params);
  }

  // The user's stores, from `GET /api/stores`: [{ code, name, offset, hours, capacity }], `offset` being the store's
  // UTC offset now in minutes (rows carry their own offsets, which the view prefers once loaded).
  async stores() {
    const list = await this.getJson('/api/stores');
    return list.results.map((store) => ({
      code: store.store_code,
      name: store.name,
      timezone: store.timezone,
      offset: parseOffset(store.utc_offset),
      hours: store.opening_hours ?? null,
      capacity: store.capacity ?? null,
      seen: 0,
    }));
  }

  // Checks the credentials with the cheapest authenticated request there is.
  async signIn() {
    await this.getJson('/api/stores');
  }
}

function unreachable() {
  return new ApiError('unreachable', 'The server cannot be reached. Check that footfall is running, then try again.');
}

function failed(response, body) {
  const detail = body?.detail ? `: ${body.detail}` : '';
  const kind = response.status >= 502 && response.status <= 504 ? 'unreachable' : 'http';
  return new ApiError(kind, `The server answered HTTP ${response.status}${detail}`, response.status);
}

// "+05:30" to minutes.
function parseOffset(text) {
  const match = /^([+-])(\d{2}):(\d{2})$/.exec(text);
  if (!match) return 0;
  return (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3]));
}

// A `next` link on this page's origin: the server builds links from its own idea of the scheme, which
// behind a TLS-terminating proxy is http, and a browser refuses http requests from an https page.
function sameOrigin(link) {
  const url = new URL(link, window.location.href);
  return `${url.pathname}${url.search}`;
}
