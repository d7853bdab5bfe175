//! Reports on top of the minute rows: buckets of a granularity, the per-store summary with its
//! comparison, live occupancy, and CSV exports.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::Reader;
use super::metrics::{Params, link_origin, minute_bounds, page_of, response_format};
use super::render::{Field, Format, Metric, StoreWriters, Table, local_instant, metric_columns, minute_row};
use crate::domain::Minute;
use crate::domain::buckets::{BucketRow, Compare, Granularity, Summary, Totals, change_percent, group, plan};
use crate::domain::catalog::{Catalog, Store};
use crate::domain::pagination::{InvalidPage, Page, PageLinks};
use crate::domain::reads::{RollupRequest, RowSource, RowsQuery};
use crate::domain::scope::Visible;
use crate::domain::time::LOCAL_MINUTE_LEN;
use crate::server::ForwardedScheme;
use crate::storage::Storage;

/// Every bucket row of `query` (its offset and limit aside), in (store order, start) order.
pub(super) async fn bucket_rows(
    storage: &dyn Storage,
    catalog: &Catalog,
    query: &RowsQuery,
    granularity: Granularity,
) -> Result<Vec<BucketRow>, ApiError> {
    if query.first > query.last {
        return Ok(Vec::new());
    }
    match &query.source {
        RowSource::Stores(stores) => {
            let stores: Vec<&Store> =
                stores.iter().map(|&key| catalog.store(key).expect("queried stores are catalogued")).collect();
            let grouped = store_buckets(storage, &stores, granularity, query.first, query.last).await?;
            Ok(stores
                .iter()
                .zip(grouped)
                .flat_map(|(store, buckets)| {
                    buckets.into_iter().map(|(start, totals)| BucketRow { store: store.key, start, totals })
                })
                .collect())
        }
        // A device has no rollups of its own: its minutes are read and grouped.
        RowSource::Device(_) => {
            let all = RowsQuery { offset: 0, limit: u32::MAX, ..query.clone() };
            let minutes = storage.rows(all).await?.rows;
            let Some(store) = minutes.first().map(|row| row.store) else {
                return Ok(Vec::new());
            };
            let timezone = &catalog.store(store).expect("a device's store is catalogued").timezone;
            let parts =
                minutes.iter().map(|row| (row.minute, Totals::of_minute(row.minute, row.entries, row.exits, 0)));
            Ok(group(timezone, granularity, parts)
                .into_iter()
                .map(|(start, totals)| BucketRow { store, start, totals })
                .collect())
        }
    }
}

/// Each store's buckets of `granularity` over `[first, last]`, from one storage call.
async fn store_buckets(
    storage: &dyn Storage,
    stores: &[&Store],
    granularity: Granularity,
    first: Minute,
    last: Minute,
) -> Result<Vec<std::collections::BTreeMap<Minute, Totals>>, ApiError> {
    let mut requests = Vec::new();
    let mut owners = Vec::new();
    for (index, store) in stores.iter().enumerate() {
        for range in plan(&store.calendar(), granularity, first, last) {
            requests.push(RollupRequest { store: store.key, range });
            owners.push(index);
        }
    }
    let found = if requests.is_empty() { Vec::new() } else { storage.rollups(requests).await? };
    let mut parts: Vec<Vec<(Minute, Totals)>> = vec![Vec::new(); stores.len()];
    for (owner, pieces) in owners.into_iter().zip(found) {
        parts[owner].extend(pieces);
    }
    Ok(stores.iter().zip(parts).map(|(store, parts)| group(&store.timezone, granularity, parts)).collect())
}

/// A CSV download: `Content-Disposition` names it after the endpoint and the query's bounds.
pub(super) fn csv_response(mut headers: HeaderMap, name: &str, params: &Params, body: Body) -> Response {
    let stamp = |key: &str| {
        params
            .get(key)
            .and_then(|value| crate::domain::time::parse_instant(value).ok())
            .map(|instant| instant.strftime("%Y%m%dT%H%M%SZ").to_string())
    };
    let mut filename = name.to_owned();
    for bound in [stamp("datetime_gte"), stamp("datetime_lte")].into_iter().flatten() {
        filename.push('-');
        filename.push_str(&bound);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let disposition = format!("attachment; filename=\"{filename}.csv\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("ASCII name"));
    (headers, body).into_response()
}

/// Minute rows per CSV chunk: one storage page each.
const CSV_PAGE_ROWS: u32 = 10_000;

/// Every minute row of `query` as CSV, read and sent a page at a time: memory stays that of a few pages
/// however long the range. Pages are read by key (each store, or the device, from the minute after the
/// last row sent), so every page costs what the first does. A failure after the first chunk can only
/// cut the body short (the status is sent); it is logged.
pub(super) fn stream_minute_csv(
    storage: Arc<dyn Storage>,
    catalog: Arc<Catalog>,
    metric: Metric,
    query: RowsQuery,
) -> Body {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut table = Table::new(Format::Csv, 0, None, None);
        table.header(metric_columns(metric, false));
        let mut writers = StoreWriters::new(&catalog);
        let sources = match &query.source {
            RowSource::Stores(stores) => stores.iter().map(|&store| RowSource::Stores(vec![store])).collect(),
            RowSource::Device(device) => vec![RowSource::Device(*device)],
        };
        for source in sources {
            let mut first = query.first;
            while first <= query.last {
                let page =
                    RowsQuery { source: source.clone(), first, last: query.last, offset: 0, limit: CSV_PAGE_ROWS };
                let rows = match storage.rows(page).await {
                    Ok(page) => page.rows,
                    Err(error) => {
                        tracing::error!(%error, "CSV export failed");
                        let _ = sender.send(Err(std::io::Error::other(error))).await;
                        return;
                    }
                };
                for row in &rows {
                    minute_row(&mut table, &mut writers, metric, row);
                }
                // A closed channel: the client went away.
                if sender.send(Ok(Bytes::from(table.take()))).await.is_err() {
                    return;
                }
                match rows.last() {
                    Some(last) if rows.len() == CSV_PAGE_ROWS as usize => first = last.minute.plus_minutes(1),
                    _ => break,
                }
            }
        }
        // The header alone, when there were no rows.
        let rest = table.take();
        if !rest.is_empty() {
            let _ = sender.send(Ok(Bytes::from(rest))).await;
        }
    });
    // poll_fn keeps answering None once the channel is done: the compression layer polls again after
    // the end, which `stream::unfold` would not survive.
    Body::from_stream(futures_util::stream::poll_fn(move |context| receiver.poll_recv(context)))
}

/// The stores a report covers: the `store_code` one, or every visible store.
fn report_stores<'a>(params: &Params, visible: Visible<'a>) -> Result<Vec<&'a Store>, ApiError> {
    Ok(match params.filter("store_code") {
        Some(code) => vec![visible.store(code).ok_or_else(ApiError::store_not_found)?],
        None => visible.stores().collect(),
    })
}

/// The stores of a report's response, one per row, and its table: for JSON the page's, for CSV all.
fn store_page<'s, 'a>(
    stores: &'s [&'a Store],
    format: Format,
    page: &Page,
    links: &PageLinks<'_>,
) -> Result<(&'s [&'a Store], Table), ApiError> {
    Ok(match format {
        Format::Csv => (stores, Table::new(Format::Csv, 0, None, None)),
        Format::Json => {
            let navigation =
                page.navigation(stores.len() as u64, links).map_err(|InvalidPage| ApiError::invalid_page())?;
            let from = (page.offset() as usize).min(stores.len());
            let to = from.saturating_add(page.limit() as usize).min(stores.len());
            let (next, previous) = (navigation.next.as_deref(), navigation.previous.as_deref());
            (&stores[from..to], Table::new(Format::Json, stores.len() as u64, next, previous))
        }
    })
}

/// The summary's columns, the comparison's last.
const SUMMARY_COLUMNS: [&str; 11] = [
    "store_code",
    "in_metric",
    "out_metric",
    "peak_occupancy_metric",
    "peak_occupancy_minute",
    "busiest_hour",
    "busiest_hour_in_metric",
    "compare_in_metric",
    "compare_out_metric",
    "compare_peak_occupancy_metric",
    "in_change_percent",
];

/// `GET /api/bi/acquisition-metrics/summary/`: per store, totals, peak occupancy and the busiest hour
/// of a range, optionally against an earlier one.
pub async fn summary(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri);
    let (first, last) = minute_bounds(&params)?;
    let page = page_of(&params)?;
    let compare = match params.filter("compare") {
        None => None,
        Some(value) => Some(Compare::parse(value).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidCompare,
                format!("compare: {value:?} is not one of previous_period, previous_year."),
            )
        })?),
    };
    let format = response_format(&params, &headers)?;
    let Reader { user, catalog, .. } = reader;
    let stores = report_stores(&params, Visible::new(&catalog, &user.scope))?;

    let (scheme, host) = link_origin(&state, forwarded_scheme, &headers);
    let links = PageLinks { scheme, host, path: uri.path(), params: &params.0 };
    let (shown, mut table) = store_page(&stores, format, &page, &links)?;
    let columns = if compare.is_some() { &SUMMARY_COLUMNS[..] } else { &SUMMARY_COLUMNS[..7] };
    table.header(columns);

    let current = summaries(state.storage.as_ref(), shown, first, last).await?;
    let compared = match compare {
        Some(compare) => {
            let (first, last) = compare.range(first, last);
            Some(summaries(state.storage.as_ref(), shown, first, last).await?)
        }
        None => None,
    };
    let mut writers = StoreWriters::new(&catalog);
    for (index, (store, summary)) in shown.iter().zip(&current).enumerate() {
        let peak = summary.peak.map(|(_, minute)| writers.code_and_minute(store.key, minute).1);
        let busiest = summary.busiest_hour.map(|(hour, _)| writers.code_and_minute(store.key, hour).1);
        let mut fields = vec![
            ("store_code", Field::Text(store.code.as_str())),
            ("in_metric", Field::Int(summary.entries)),
            ("out_metric", Field::Int(summary.exits)),
            ("peak_occupancy_metric", Field::Int(summary.peak.map_or(0, |(value, _)| value))),
            ("peak_occupancy_minute", optional_time(&peak)),
            ("busiest_hour", optional_time(&busiest)),
            ("busiest_hour_in_metric", summary.busiest_hour.map_or(Field::Null, |(_, entries)| Field::Int(entries))),
        ];
        if let Some(compared) = &compared {
            let before = &compared[index];
            let known = |value: i64| if before.has_counts { Field::Int(value) } else { Field::Null };
            let change = before
                .has_counts
                .then(|| change_percent(before.entries, summary.entries))
                .flatten()
                .map_or(Field::Null, Field::Float);
            fields.extend([
                ("compare_in_metric", known(before.entries)),
                ("compare_out_metric", known(before.exits)),
                ("compare_peak_occupancy_metric", known(before.peak.map_or(0, |(value, _)| value))),
                ("in_change_percent", change),
            ]);
        }
        table.row(&fields);
    }
    let body = table.finish();
    Ok(match format {
        Format::Csv => csv_response(HeaderMap::new(), "summary", &params, Body::from(body)),
        Format::Json => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    })
}

/// A rendered local time, or null.
fn optional_time(text: &Option<[u8; LOCAL_MINUTE_LEN]>) -> Field<'_> {
    text.as_ref().map_or(Field::Null, |text| Field::Time(&text[..]))
}

/// Each store's summary of `[first, last]`, from its hour buckets.
async fn summaries(
    storage: &dyn Storage,
    stores: &[&Store],
    first: Minute,
    last: Minute,
) -> Result<Vec<Summary>, ApiError> {
    if first > last {
        return Ok(vec![Summary::default(); stores.len()]);
    }
    let hours = store_buckets(storage, stores, Granularity::Hour, first, last).await?;
    Ok(hours.iter().map(Summary::of_hours).collect())
}

/// `GET /api/bi/acquisition-metrics/occupancy/live/`: each store's occupancy now, from published and
/// pending counts.
pub async fn live(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri);
    let page = page_of(&params)?;
    let format = response_format(&params, &headers)?;
    let Reader { user, catalog, mark } = reader;
    let stores = report_stores(&params, Visible::new(&catalog, &user.scope))?;
    let (scheme, host) = link_origin(&state, forwarded_scheme, &headers);
    let links = PageLinks { scheme, host, path: uri.path(), params: &params.0 };
    let (shown, mut table) = store_page(&stores, format, &page, &links)?;
    table.header(&["store_code", "occupancy_metric", "minute", "published_until"]);
    let now = Minute::last_at_or_before(jiff::Timestamp::now());
    let periods = shown.iter().map(|store| (store.key, store.calendar().period_of(now))).collect();
    let live = if shown.is_empty() { Vec::new() } else { state.storage.live_occupancy(periods).await? };
    let mut writers = StoreWriters::new(&catalog);
    for (store, found) in shown.iter().zip(live) {
        let minute = found.map(|(minute, _)| writers.code_and_minute(store.key, minute).1);
        let published = mark.published_at.map(|at| local_instant(at, &store.timezone));
        table.row(&[
            ("store_code", Field::Text(store.code.as_str())),
            ("occupancy_metric", Field::Int(found.map_or(0, |(_, occupancy)| occupancy))),
            ("minute", optional_time(&minute)),
            ("published_until", published.as_deref().map_or(Field::Null, |text| Field::Time(text.as_bytes()))),
        ]);
    }
    let body = table.finish();
    let mut response = match format {
        Format::Csv => csv_response(HeaderMap::new(), "occupancy-live", &params, Body::from(body)),
        Format::Json => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    };
    // It changes with every ingest: no cache may keep it.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
