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
use super::page_cache::{self, PageKey};
use super::render::{self, Format, Metric, StoreWriters, Table};
use super::reports;
use crate::domain::Minute;
use crate::domain::buckets::Granularity;
use crate::domain::catalog::UserCredentials;
use crate::domain::pagination::{InvalidPage, Page, PageLinks, PageSize};
use crate::domain::reads::{RowSource, RowsQuery};
use crate::domain::scope::Visible;
use crate::domain::time::parse_instant;
use crate::server::ForwardedScheme;

/// Query parameters as sent, decoded, in order.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn parse(uri: &Uri) -> Params {
        let query = uri.query().unwrap_or("");
        Params(form_urlencoded::parse(query.as_bytes()).map(|(n, v)| (n.into_owned(), v.into_owned())).collect())
    }

    /// The last value of `name`, like Django's `QueryDict.get`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A filter: an empty value means no filter, as in django-filter.
    pub(super) fn filter(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }
}

/// The first and last minute of `datetime_gte` and `datetime_lte`, both required.
pub(super) fn minute_bounds(params: &Params) -> Result<(Minute, Minute), ApiError> {
    let gte = required_datetime(params, "datetime_gte")?;
    let lte = required_datetime(params, "datetime_lte")?;
    if gte > lte {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            "datetime_gte: must not be later than datetime_lte.",
        ));
    }
    Ok((Minute::first_at_or_after(gte), Minute::last_at_or_before(lte)))
}

/// `page` and `page_size`.
pub(super) fn page_of(params: &Params) -> Result<Page, ApiError> {
    let page_size = PageSize::parse(params.get("page_size"))
        .map_err(|detail| ApiError::bad_request(ErrorCode::InvalidPageSize, detail))?;
    Page::parse(params.get("page"), page_size).map_err(|InvalidPage| ApiError::invalid_page())
}

/// The scheme and host the links of a response are built with: the forwarded scheme or the listener's,
/// and the request's `Host` or the configured default.
pub(super) fn link_origin<'a>(
    state: &'a AppState,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: &'a HeaderMap,
) -> (&'static str, &'a str) {
    let scheme = forwarded_scheme.map_or(state.scheme, |Extension(ForwardedScheme(scheme))| scheme);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(&state.default_host);
    (scheme, host)
}

/// JSON unless `format=csv` (DRF's format override) or, without `format`, an `Accept` naming `text/csv`.
pub(super) fn response_format(params: &Params, headers: &HeaderMap) -> Result<Format, ApiError> {
    match params.filter("format") {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => {
            Err(ApiError::bad_request(ErrorCode::InvalidFormat, format!("format: {other:?} is not one of json, csv.")))
        }
        None => {
            let accept = headers.get_all(header::ACCEPT).iter().filter_map(|value| value.to_str().ok());
            let csv = accept
                .flat_map(|value| value.split(','))
                .any(|item| item.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/csv")));
            Ok(if csv { Format::Csv } else { Format::Json })
        }
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
    granularity: Granularity,
    format: Format,
}

/// Parses the query parameters; stores and devices outside the user's scope are not found.
fn parse(uri: &Uri, headers: &HeaderMap, visible: Visible<'_>, metric: Metric) -> Result<ReadRequest, ApiError> {
    let params = Params::parse(uri);
    let (first, last) = minute_bounds(&params)?;
    let page_size = PageSize::parse(params.get("page_size"))
        .map_err(|detail| ApiError::bad_request(ErrorCode::InvalidPageSize, detail))?;
    let granularity = match params.filter("granularity") {
        None => Granularity::Minute,
        Some(value) => Granularity::parse(value).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidGranularity,
                format!("granularity: {value:?} is not one of minute, 15m, hour, day, week, month."),
            )
        })?,
    };
    let format = response_format(&params, headers)?;
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
    let query = RowsQuery { source, first, last, offset: page.offset(), limit: page.limit() };
    Ok(ReadRequest { params, query, page, granularity, format })
}

async fn respond(
    state: &AppState,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: &HeaderMap,
    uri: &Uri,
    metric: Metric,
) -> Result<Response, ApiError> {
    let (scheme, host) = link_origin(state, forwarded_scheme, headers);
    let Reader { user, catalog, mark } = reader;
    let request = parse(uri, headers, Visible::new(&catalog, &user.scope), metric)?;

    // What a response shows changes only with a publication, the catalog, or who asks: the ETag is
    // derived from those and the request, so an unchanged result costs no query.
    let etag = entity_tag(mark.generation, catalog.version, &user, host, uri, request.format);
    let mut validators = HeaderMap::new();
    validators.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    if let Some(at) = mark.published_at {
        let http_date = at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        validators.insert(header::LAST_MODIFIED, HeaderValue::from_str(&http_date).expect("ascii"));
    }
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|tags| matches_any(tags, &etag)) {
        return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
    }

    let ReadRequest { params, query, page, granularity, format } = request;
    if format == Format::Csv {
        let name = format!("{}-{}", metric.name(), granularity.as_str());
        let body = if granularity == Granularity::Minute {
            reports::stream_minute_csv(state.storage.clone(), catalog.clone(), metric, query)
        } else {
            let rows = reports::bucket_rows(state.storage.as_ref(), &catalog, &query, granularity).await?;
            let mut table = Table::new(Format::Csv, 0, None, None);
            table.header(render::metric_columns(metric, true));
            let mut writers = StoreWriters::new(&catalog);
            for row in &rows {
                render::bucket_row(&mut table, &mut writers, metric, row);
            }
            axum::body::Body::from(table.finish())
        };
        return Ok(reports::csv_response(validators, &name, &params, body));
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

    let links = PageLinks { scheme, host, path: uri.path(), params: &params.0 };
    let body = if granularity == Granularity::Minute {
        let rows = if query.first > query.last { Default::default() } else { state.storage.rows(query).await? };
        let navigation = page.navigation(rows.count, &links).map_err(|InvalidPage| ApiError::invalid_page())?;
        render::page(metric, &catalog, &rows, navigation.next.as_deref(), navigation.previous.as_deref())
    } else {
        let rows = reports::bucket_rows(state.storage.as_ref(), &catalog, &query, granularity).await?;
        let navigation = page.navigation(rows.len() as u64, &links).map_err(|InvalidPage| ApiError::invalid_page())?;
        let mut table =
            Table::new(Format::Json, rows.len() as u64, navigation.next.as_deref(), navigation.previous.as_deref());
        let mut writers = StoreWriters::new(&catalog);
        let on_page = rows.iter().skip(query.offset.min(usize::MAX as u64) as usize).take(query.limit as usize);
        for row in on_page {
            render::bucket_row(&mut table, &mut writers, metric, row);
        }
        table.finish()
    };
    let body = if cache_key.is_some() { page_cache::keepable(body) } else { Bytes::from(body) };
    if let Some(key) = cache_key {
        state.page_cache.insert(key, body.clone());
        validators.insert(CACHE_STATUS, HeaderValue::from_static("footfall; fwd=miss; stored"));
    }
    Ok((validators, body).into_response())
}

/// RFC 9211's `Cache-Status`: whether the page came from the response cache.
const CACHE_STATUS: header::HeaderName = header::HeaderName::from_static("cache-status");

fn entity_tag(
    generation: i64,
    catalog_version: i64,
    user: &UserCredentials,
    host: &str,
    uri: &Uri,
    format: Format,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(generation.to_le_bytes());
    hasher.update(catalog_version.to_le_bytes());
    hasher.update(user.key.0.to_le_bytes());
    hasher.update(format!("{:?}", user.scope).as_bytes());
    hasher.update(host.as_bytes());
    hasher.update([0]);
    hasher.update(uri.to_string().as_bytes());
    // The same URI answers CSV for `Accept: text/csv`.
    if format == Format::Csv {
        hasher.update(b"\0csv");
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `If-None-Match`: `*` or a list of tags, compared weakly (RFC 9110 13.1.2).
fn matches_any(header_value: &str, etag: &str) -> bool {
    header_value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}
