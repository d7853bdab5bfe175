//! The two read endpoints of the People Counter API: visits and occupancy.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::Reader;
use super::page_cache::PageKey;
use super::render::{self, Metric};
use crate::domain::Minute;
use crate::domain::catalog::UserCredentials;
use crate::domain::pagination::{InvalidPage, Page, PageLinks, PageSize};
use crate::domain::reads::{RowSource, RowsQuery};
use crate::domain::scope::Visible;
use crate::domain::time::parse_instant;
use crate::server::ForwardedScheme;

/// Query parameters as sent, decoded, in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(uri: &Uri) -> Params {
        let query = uri.query().unwrap_or("");
        Params(form_urlencoded::parse(query.as_bytes()).map(|(n, v)| (n.into_owned(), v.into_owned())).collect())
    }

    /// The last value of `name`, like Django's `QueryDict.get`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A filter: an empty value means no filter, as in django-filter.
    fn filter(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }
}

fn required_datetime(params: &Params, name: &'static str) -> Result<jiff::Timestamp, ApiError> {
    let value = params.get(name).ok_or_else(|| {
        ApiError::bad_request(ErrorCode::Required, format!("{name}: this query parameter is required."))
    })?;
    parse_instant(value).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidDatetime,
            format!("{name}: {value:?} is not a valid datetime; use ISO 8601, e.g. 2023-10-26T12:05:00Z."),
        )
    })
}

/// `GET /api/bi/acquisition-metrics/visits/`: in and out per minute, per store or per device.
pub async fn visits(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    respond(&state, reader, forwarded_scheme, &headers, &uri, Metric::Visits).await
}

/// `GET /api/bi/acquisition-metrics/occupancy/`: people inside at the end of each minute, per store.
pub async fn occupancy(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    respond(&state, reader, forwarded_scheme, &headers, &uri, Metric::Occupancy).await
}

/// A read request, parsed and checked against what the user sees.
struct ReadRequest {
    params: Params,
    query: RowsQuery,
    page: Page,
}

/// Parses the query parameters; stores and devices outside the user's scope are not found.
fn parse(uri: &Uri, visible: Visible<'_>, metric: Metric) -> Result<ReadRequest, ApiError> {
    let params = Params::parse(uri);
    let gte = required_datetime(&params, "datetime_gte")?;
    let lte = required_datetime(&params, "datetime_lte")?;
    if gte > lte {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            "datetime_gte: must not be later than datetime_lte.",
        ));
    }
    let page_size = PageSize::parse(params.get("page_size"))
        .map_err(|detail| ApiError::bad_request(ErrorCode::InvalidPageSize, detail))?;
    let store_filter = match params.filter("store_code") {
        Some(code) => Some(visible.store(code).ok_or_else(ApiError::store_not_found)?.key),
        None => None,
    };
    let device = match metric {
        Metric::Visits => match params.filter("device_id") {
            Some(id) => Some(visible.device(id).ok_or_else(ApiError::device_not_found)?),
            None => None,
        },
        Metric::Occupancy => None,
    };
    let page = Page::parse(params.get("page"), page_size).map_err(|InvalidPage| ApiError::invalid_page())?;
    let source = match (device, store_filter) {
        (Some(device), Some(store)) if device.store != store => RowSource::Stores(Vec::new()),
        (Some(device), _) => RowSource::Device(device.key),
        (None, Some(store)) => RowSource::Stores(vec![store]),
        (None, None) => RowSource::Stores(visible.stores().map(|store| store.key).collect()),
    };
    let query = RowsQuery {
        source,
        first: Minute::first_at_or_after(gte),
        last: Minute::last_at_or_before(lte),
        offset: page.offset(),
        limit: page.limit(),
    };
    Ok(ReadRequest { params, query, page })
}

async fn respond(
    state: &AppState,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: &HeaderMap,
    uri: &Uri,
    metric: Metric,
) -> Result<Response, ApiError> {
    let scheme = forwarded_scheme.map_or(state.scheme, |Extension(ForwardedScheme(scheme))| scheme);
    let Reader { user, catalog, mark } = reader;
    let request = parse(uri, Visible::new(&catalog, &user.scope), metric)?;

    // What a response shows changes only with a publication, the catalog, or who asks: the ETag is
    // derived from those and the request, so an unchanged result costs no query.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(&state.default_host);
    let etag = entity_tag(mark.generation, catalog.version, &user, host, uri);
    let mut validators = HeaderMap::new();
    validators.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    if let Some(at) = mark.published_at {
        let http_date = at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        validators.insert(header::LAST_MODIFIED, HeaderValue::from_str(&http_date).expect("ascii"));
    }
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|tags| matches_any(tags, &etag)) {
        return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
    }

    validators.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let cache_key = state.page_cache.enabled().then(|| PageKey {
        generation: mark.generation,
        catalog_version: catalog.version,
        scope: user.scope.clone(),
        scheme,
        host: host.to_owned(),
        path_and_query: uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
    });
    if let Some(body) = cache_key.as_ref().and_then(|key| state.page_cache.get(key)) {
        validators.insert(CACHE_STATUS, HeaderValue::from_static("footfall; hit"));
        return Ok((validators, body).into_response());
    }

    let ReadRequest { params, query, page } = request;
    let rows = if query.first > query.last { Default::default() } else { state.storage.rows(query).await? };
    let links = PageLinks { scheme, host, path: uri.path(), params: &params.0 };
    let navigation = page.navigation(rows.count, &links).map_err(|InvalidPage| ApiError::invalid_page())?;
    let body =
        Bytes::from(render::page(metric, &catalog, &rows, navigation.next.as_deref(), navigation.previous.as_deref()));
    if let Some(key) = cache_key {
        state.page_cache.insert(key, body.clone());
        validators.insert(CACHE_STATUS, HeaderValue::from_static("footfall; fwd=miss; stored"));
    }
    Ok((validators, body).into_response())
}

/// RFC 9211's `Cache-Status`: whether the page came from the response cache.
const CACHE_STATUS: header::HeaderName = header::HeaderName::from_static("cache-status");

fn entity_tag(generation: i64, catalog_version: i64, user: &UserCredentials, host: &str, uri: &Uri) -> String {
    let mut hasher = Sha256::new();
    hasher.update(generation.to_le_bytes());
    hasher.update(catalog_version.to_le_bytes());
    hasher.update(user.key.0.to_le_bytes());
    hasher.update(format!("{:?}", user.scope).as_bytes());
    hasher.update(host.as_bytes());
    hasher.update([0]);
    hasher.update(uri.to_string().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `If-None-Match`: `*` or a list of tags, compared weakly (RFC 9110 13.1.2).
fn matches_any(header_value: &str, etag: &str) -> bool {
    header_value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}
