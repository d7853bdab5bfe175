// The dashboard's only way to the server: the public read API with HTTP Basic auth.

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

  // The user's stores, from `GET /api/stores`: [{ code, name, offset }], `offset` being the store's
  // UTC offset now in minutes (rows carry their own offsets, which the view prefers once loaded).
  async stores() {
    const list = await this.getJson('/api/stores');
    return list.results.map((store) => ({
      code: store.store_code,
      name: store.name,
      offset: parseOffset(store.utc_offset),
      seen: 0,
    }));
  }

  // Checks the credentials with the cheapest authenticated request there is.
  async signIn() {
    await this.getJson('/api/stores');
  }
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
