//! The OpenAPI 3 document, generated from these declarations, and the embedded Swagger UI.

#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]` documentation

use axum::Router;
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::error::{ErrorBody, ErrorCode};
use super::ingest::{Accepted, CorrectionView, NewCorrection};
use super::status::Status;
use super::stores::{StoreList, StoreView};
use super::vendors::SensorAccepted;

/// One store's visits in one minute, or in one bucket of the `granularity`.
#[derive(Serialize, ToSchema)]
pub struct VisitRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// Entries in the minute (or bucket), summed over the store's devices.
    #[schema(example = 3, minimum = 0)]
    pub in_metric: i64,
    /// Exits in the minute (or bucket).
    #[schema(example = 0, minimum = 0)]
    pub out_metric: i64,
    /// in_metric - out_metric.
    #[schema(example = 3)]
    pub diff_metric: i64,
    /// Start of the minute (or of the bucket) in the store's local time, with its UTC offset.
    #[schema(format = DateTime, example = "2023-10-26T15:06:00+03:00")]
    pub minute: String,
}

/// One store's occupancy at the end of one minute, or over one bucket of the `granularity`.
#[derive(Serialize, ToSchema)]
pub struct OccupancyRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// People inside at the end of the minute; for a bucket, after the bucket's last minute with counts.
    #[schema(example = 7, minimum = 0)]
    pub occupancy_metric: i64,
    /// The bucket's peak: the most people inside at the end of any of its minutes. Present only when
    /// `granularity` is not `minute` (a minute row has no such field).
    #[schema(required = false, example = 12, minimum = 0)]
    pub max_occupancy_metric: i64,
    /// Start of the minute (or of the bucket) in the store's local time, with its UTC offset.
    #[schema(format = DateTime, example = "2021-05-12T12:41:00+03:00")]
    pub minute: String,
}

/// A page of visit rows.
#[derive(Serialize, ToSchema)]
pub struct VisitsPage {
    /// Rows on all pages.
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Option<String>,
    /// The rows of this page, by store then minute.
    pub results: Vec<VisitRow>,
}

/// A page of occupancy rows.
#[derive(Serialize, ToSchema)]
pub struct OccupancyPage {
    /// Rows on all pages.
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Option<String>,
    /// The rows of this page, by store then minute.
    pub results: Vec<OccupancyRow>,
}

/// One store's summary of the queried range (every store the user sees has one, also without counts).
#[derive(Serialize, ToSchema)]
pub struct SummaryRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// Entries in the range.
    #[schema(example = 2973, minimum = 0)]
    pub in_metric: i64,
    /// Exits in the range.
    #[schema(example = 2904, minimum = 0)]
    pub out_metric: i64,
    /// The most people inside at the end of any minute of the range (0 without counts).
    #[schema(example = 166, minimum = 0)]
    pub peak_occupancy_metric: i64,
    /// The first minute reaching that peak, in the store's local time with its UTC offset; null without
    /// counts.
    #[schema(required = true, format = DateTime, example = "2023-10-26T18:48:00+03:00")]
    pub peak_occupancy_minute: Option<String>,
    /// Start of the local clock hour with the most entries (the earliest of equals), with its UTC
    /// offset; null without entries.
    #[schema(required = true, format = DateTime, example = "2023-10-26T18:00:00+03:00")]
    pub busiest_hour: Option<String>,
    /// The entries of `busiest_hour`; null when it is null.
    #[schema(required = true, example = 266, minimum = 0)]
    pub busiest_hour_in_metric: Option<i64>,
    /// With `compare` only: entries in the earlier period; null when it has no counts.
    #[schema(required = false, example = 2710, minimum = 0)]
    pub compare_in_metric: Option<i64>,
    /// With `compare` only: exits in the earlier period; null when it has no counts.
    #[schema(required = false, example = 2688, minimum = 0)]
    pub compare_out_metric: Option<i64>,
    /// With `compare` only: the earlier period's peak occupancy; null when it has no counts.
    #[schema(required = false, example = 151, minimum = 0)]
    pub compare_peak_occupancy_metric: Option<i64>,
    /// With `compare` only: the change of `in_metric` from `compare_in_metric` in percent, rounded to
    /// 0.1; null when the earlier period has no counts or no entries.
    #[schema(required = false, example = 9.7)]
    pub in_change_percent: Option<f64>,
}

/// A page of summary rows, one per store.
#[derive(Serialize, ToSchema)]
pub struct SummaryPage {
    /// Stores on all pages.
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Option<String>,
    /// The rows of this page, by store code.
    pub results: Vec<SummaryRow>,
}

/// One store's occupancy now, in its current occupancy period, from published and pending (not yet
/// published) counts.
#[derive(Serialize, ToSchema)]
pub struct LiveOccupancyRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// People inside now (0 when the current period has no counts yet).
    #[schema(example = 69, minimum = 0)]
    pub occupancy_metric: i64,
    /// The latest minute with counts in the current period, in the store's local time with its UTC
    /// offset; null when there is none yet.
    #[schema(required = true, format = DateTime, example = "2023-10-26T15:06:00+03:00")]
    pub minute: Option<String>,
    /// When data was last published, in the store's local time with its UTC offset; null before the
    /// first publication.
    #[schema(required = true, format = DateTime, example = "2023-10-26T15:05:39+03:00")]
    pub published_until: Option<String>,
}

/// A page of live occupancy rows, one per store.
#[derive(Serialize, ToSchema)]
pub struct LiveOccupancyPage {
    /// Stores on all pages.
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Option<String>,
    /// The rows of this page, by store code.
    pub results: Vec<LiveOccupancyRow>,
}

/// One day of a device's (or a store's) health, in the store's local dates.
#[derive(Serialize, ToSchema)]
pub struct DayHealth {
    /// The local date.
    #[schema(format = Date, example = "2023-10-26")]
    pub date: String,
    /// Minutes the store was open that day (today: up to now), by its opening hours or, without them,
    /// by its learned hours.
    #[schema(example = 720, minimum = 0)]
    pub open_minutes: u32,
    /// Of those, the minutes with a bin. For a store: the minutes with data of its least complete
    /// device.
    #[schema(example = 702, minimum = 0)]
    pub minutes_with_data: u32,
    /// The share of the open minutes with a bin (`minutes_with_data / open_minutes`), rounded to 0.001;
    /// null on a day the store was not open.
    #[schema(required = true, example = 0.975, minimum = 0, maximum = 1)]
    pub completeness: Option<f64>,
    /// Entries of the day (for a store: over all its devices).
    #[schema(example = 2973, minimum = 0)]
    pub in_metric: i64,
    /// Exits of the day (for a store: over all its devices).
    #[schema(example = 2904, minimum = 0)]
    pub out_metric: i64,
    /// `|in - out| / max(in, out)`, rounded to 0.001: 0 when as many left as came in; null without
    /// counts. A store's balance is that of its summed doors (one door counting people in and another
    /// counting them out can each be unbalanced while the store is not).
    #[schema(required = true, example = 0.023, minimum = 0, maximum = 1)]
    pub balance: Option<f64>,
    /// Whether `balance` is above `imbalance_percent`, with enough counts to tell: only when
    /// `max(in, out)` is at least 100.
    #[schema(example = false)]
    pub imbalanced: bool,
}

/// One active device's health over the days asked.
#[derive(Serialize, ToSchema)]
pub struct DeviceHealthRow {
    /// The device.
    #[schema(example = "cnt-1")]
    pub device_id: String,
    /// Its last bin (published or pending) in the days asked, in the store's local time with its UTC
    /// offset; null when there is none.
    #[schema(required = true, format = DateTime, example = "2023-10-26T14:02:00+03:00")]
    pub last_bin: Option<String>,
    /// Whether it is silent: no bin for more than `silence_minutes` of the store's open time (minutes
    /// while the store is closed do not count, so a device of a closed store is never silent).
    #[schema(example = true)]
    pub silent: bool,
    /// The store's open minutes since its last bin (or since the start of the days asked), up to now.
    #[schema(example = 64, minimum = 0)]
    pub open_minutes_without_data: i64,
    /// Its days, oldest first (today last).
    pub days: Vec<DayHealth>,
}

/// One store's device health over the days asked.
#[derive(Serialize, ToSchema)]
pub struct StoreHealthRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// Its opening hours (OpenStreetMap `opening_hours` subset, canonical form); null when none are set.
    #[schema(required = true, example = "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off")]
    pub opening_hours: Option<String>,
    /// Whether its hours are learned: no opening hours are set, so the store counts as open in the
    /// hours of the week that had counts on at least 3 of the last 4 same weekdays.
    #[schema(example = false)]
    pub hours_learned: bool,
    /// Whether it is open now (by its set or learned hours).
    #[schema(example = true)]
    pub open_now: bool,
    /// How many of its devices are `silent`.
    #[schema(example = 1, minimum = 0)]
    pub silent_devices: u64,
    /// Its days over all its devices, oldest first (today last); empty without active devices.
    pub days: Vec<DayHealth>,
    /// Its active devices, by device_id.
    pub devices: Vec<DeviceHealthRow>,
}

/// A page of store health rows, one per store.
#[derive(Serialize, ToSchema)]
pub struct DeviceHealthPage {
    /// Stores on all pages.
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Option<String>,
    /// The rows of this page, by store code.
    pub results: Vec<StoreHealthRow>,
}

/// The size of the rows' time buckets, in each store's local time: `minute` (the default, one row per
/// minute), `15m` and `hour` by the local clock, `day` from local midnight to midnight, `week` from
/// Monday 00:00, `month` from the 1st. A bucket holds only the minutes inside the query's bounds; only
/// buckets with counts have a row. A fall-back's repeated hour is two hour buckets, each with its
/// offset. Any other value is a 400 `invalid_granularity`.
#[derive(Serialize, ToSchema)]
pub enum Granularity {
    /// One row per minute.
    #[serde(rename = "minute")]
    Minute,
    /// Quarter hours.
    #[serde(rename = "15m")]
    QuarterHour,
    /// Clock hours.
    #[serde(rename = "hour")]
    Hour,
    /// Local days.
    #[serde(rename = "day")]
    Day,
    /// Weeks from Monday.
    #[serde(rename = "week")]
    Week,
    /// Calendar months.
    #[serde(rename = "month")]
    Month,
}

/// The answer's format: `json` (the default, a page) or `csv` (every row of the query, no paging, as
/// `text/csv; charset=utf-8` with a header row of the JSON keys and empty fields for nulls). Without
/// it, an `Accept` header naming `text/csv` also asks for CSV. Any other value is a 400
/// `invalid_format`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A JSON page.
    Json,
    /// A CSV download.
    Csv,
}

/// The earlier period a summary is compared with: `previous_period`, the same length just before
/// `datetime_gte`; `previous_year`, both bounds minus 364 days (the same weekdays). Any other value is
/// a 400 `invalid_compare`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// The same length just before.
    PreviousPeriod,
    /// 364 days earlier.
    PreviousYear,
}

/// The query parameters of the visits endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitsParams {
    /// Only this store.
    store_code: Option<String>,
    /// Inclusive lower bound (UTC unless an offset is given), e.g. 2023-10-26T12:05:00Z.
    #[param(format = DateTime, example = "2023-10-26T12:05:00Z")]
    datetime_gte: String,
    /// Inclusive upper bound, e.g. 2023-10-26T12:30:00Z.
    #[param(format = DateTime, example = "2023-10-26T12:30:00Z")]
    datetime_lte: String,
    /// Only this device's counts.
    device_id: Option<String>,
    /// The size of the rows' buckets (default `minute`).
    granularity: Option<Granularity>,
    /// `json` (default) or `csv`: every row, no paging.
    format: Option<Format>,
    /// Rows per page (default 1000; values above 10000 are treated as 10000).
    // u128: an integer without format, so without the int64 bound: any larger value is taken too.
    #[param(minimum = 1)]
    page_size: Option<u128>,
    /// 1-based page number.
    #[param(minimum = 1)]
    page: Option<u64>,
}

/// The query parameters of the occupancy endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OccupancyParams {
    /// Only this store.
    store_code: Option<String>,
    /// Inclusive lower bound (UTC unless an offset is given).
    #[param(format = DateTime, example = "2021-05-12T09:40:00Z")]
    datetime_gte: String,
    /// Inclusive upper bound.
    #[param(format = DateTime, example = "2021-05-12T10:05:00Z")]
    datetime_lte: String,
    /// The size of the rows' buckets (default `minute`); bucket rows also carry `max_occupancy_metric`.
    granularity: Option<Granularity>,
    /// `json` (default) or `csv`: every row, no paging.
    format: Option<Format>,
    /// Rows per page (default 1000; values above 10000 are treated as 10000).
    // u128: an integer without format, so without the int64 bound: any larger value is taken too.
    #[param(minimum = 1)]
    page_size: Option<u128>,
    /// 1-based page number.
    #[param(minimum = 1)]
    page: Option<u64>,
}

/// The query parameters of the summary endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Only this store.
    store_code: Option<String>,
    /// Inclusive lower bound (UTC unless an offset is given).
    #[param(format = DateTime, example = "2023-10-26T00:00:00Z")]
    datetime_gte: String,
    /// Inclusive upper bound.
    #[param(format = DateTime, example = "2023-10-26T23:59:00Z")]
    datetime_lte: String,
    /// Also summarize an earlier period: adds the `compare_*` fields and `in_change_percent`.
    compare: Option<Compare>,
    /// `json` (default) or `csv`: every store, no paging.
    format: Option<Format>,
    /// Stores per page (default 1000; values above 10000 are treated as 10000).
    // u128: an integer without format, so without the int64 bound: any larger value is taken too.
    #[param(minimum = 1)]
    page_size: Option<u128>,
    /// 1-based page number.
    #[param(minimum = 1)]
    page: Option<u64>,
}

/// The query parameters of the live occupancy endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveOccupancyParams {
    /// Only this store.
    store_code: Option<String>,
    /// `json` (default) or `csv`: every store, no paging.
    format: Option<Format>,
    /// Stores per page (default 1000; values above 10000 are treated as 10000).
    // u128: an integer without format, so without the int64 bound: any larger value is taken too.
    #[param(minimum = 1)]
    page_size: Option<u128>,
    /// 1-based page number.
    #[param(minimum = 1)]
    page: Option<u64>,
}

/// The query parameters of the device health endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceHealthParams {
    /// Only this store.
    store_code: Option<String>,
    /// The local days covered, today included (default 7, at most 31).
    #[param(minimum = 1, maximum = 31, default = 7, example = 7)]
    days: Option<u32>,
    /// The store's open minutes without a bin after which a device is `silent` (default 30, at most
    /// 10080, a week).
    #[param(minimum = 1, maximum = 10080, default = 30, example = 30)]
    silence_minutes: Option<u32>,
    /// The `balance` in percent above which a day is `imbalanced` (default 10).
    #[param(minimum = 1, maximum = 100, default = 10, example = 10)]
    imbalance_percent: Option<u32>,
    /// Stores per page (default 1000; values above 10000 are treated as 10000).
    // u128: an integer without format, so without the int64 bound: any larger value is taken too.
    #[param(minimum = 1)]
    page_size: Option<u128>,
    /// 1-based page number.
    #[param(minimum = 1)]
    page: Option<u64>,
}

/// In, out and in - out per store and minute, or per bucket of a coarser `granularity`.
///
/// One row per (store, minute) with any count, summed over the store's devices (or one device's, with
/// device_id), ordered by store_code then minute. With `granularity`, one row per (store, bucket) with
/// any count, `minute` being the bucket's local start. With `format=csv` (or `Accept: text/csv`), every
/// row of the query as CSV.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/visits/", params(VisitsParams), tag = "metrics",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of visits, or with format=csv all of them as CSV", content(
            (VisitsPage = "application/json", example = json!(visits_example())),
            (String = "text/csv", example = json!(visits_csv_example())),
        ), headers(
            ("ETag" = String, description = "Strong tag of this answer; send it as If-None-Match to revalidate"),
            ("Last-Modified" = String, description = "When data was last published (absent before the first publication)"),
            ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"visits-<granularity>-<datetime_gte>-<datetime_lte>.csv\"`"),
        )),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match", headers(
            ("ETag" = String, description = "The current tag"),
            ("Last-Modified" = String, description = "When data was last published"),
        )),
        (status = 400, description = "A missing or invalid parameter (`required`, `invalid_datetime`, `invalid_range`, `invalid_page_size`, `invalid_granularity`, `invalid_format`)",
            body = ErrorBody, example = json!({"detail": "datetime_gte: this query parameter is required.", "code": "required", "error_id": "9f1c2b7a04d3e815"})),
        (status = 404, description = "Unknown store, device or page", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn visits() {}

/// People inside each store at the end of each minute, or per bucket of a coarser `granularity`.
///
/// One row per minute with any count; occupancy restarts from 0 at the store's daily reset time. With
/// `granularity`, one row per bucket with any count: the occupancy after its last minute with counts
/// and its peak (`max_occupancy_metric`), `minute` being the bucket's local start. With `format=csv`
/// (or `Accept: text/csv`), every row of the query as CSV.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/occupancy/", params(OccupancyParams), tag = "metrics",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of occupancy, or with format=csv all of it as CSV", content(
            (OccupancyPage = "application/json", examples(
                ("minute" = (summary = "granularity=minute (the default)", value = json!(occupancy_example()))),
                ("day" = (summary = "granularity=day: rows also carry the bucket's peak", value = json!(occupancy_day_example()))),
            )),
            (String = "text/csv", example = json!(occupancy_csv_example())),
        ), headers(
            ("ETag" = String, description = "Strong tag of this answer; send it as If-None-Match to revalidate"),
            ("Last-Modified" = String, description = "When data was last published (absent before the first publication)"),
            ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"occupancy-<granularity>-<datetime_gte>-<datetime_lte>.csv\"`"),
        )),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match", headers(
            ("ETag" = String, description = "The current tag"),
            ("Last-Modified" = String, description = "When data was last published"),
        )),
        (status = 400, description = "A missing or invalid parameter (`required`, `invalid_datetime`, `invalid_range`, `invalid_page_size`, `invalid_granularity`, `invalid_format`)",
            body = ErrorBody, example = json!({"detail": "granularity: \"2h\" is not one of minute, 15m, hour, day, week, month.", "code": "invalid_granularity", "error_id": "3e0b5c7d19a4f268"})),
        (status = 404, description = "Unknown store or page", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn occupancy() {}

/// Per store: entries, exits, peak occupancy and the busiest hour of a range, optionally against an
/// earlier period.
///
/// One row per store the user sees (or the `store_code` one), also for stores without counts, ordered
/// by store_code. With `compare`, each row also has the earlier period's figures and the change of
/// entries. With `format=csv` (or `Accept: text/csv`), every store as CSV.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/summary/", params(SummaryParams), tag = "metrics",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of store summaries, or with format=csv all of them as CSV", content(
            (SummaryPage = "application/json", examples(
                ("plain" = (summary = "Without compare", value = json!(summary_example(false)))),
                ("compare" = (summary = "compare=previous_period", value = json!(summary_example(true)))),
            )),
            (String = "text/csv", example = json!(summary_csv_example())),
        ), headers(
            ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"summary-<datetime_gte>-<datetime_lte>.csv\"`"),
        )),
        (status = 400, description = "A missing or invalid parameter (`required`, `invalid_datetime`, `invalid_range`, `invalid_page_size`, `invalid_compare`, `invalid_format`)",
            body = ErrorBody, example = json!({"detail": "compare: \"last_week\" is not one of previous_period, previous_year.", "code": "invalid_compare", "error_id": "b81f0c2e6d5a7349"})),
        (status = 404, description = "Unknown store or page", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn summary() {}

/// Each store's occupancy now, from published and pending (not yet published) counts.
///
/// One row per store the user sees (or the `store_code` one), ordered by store_code: the occupancy in
/// the store's current occupancy period (since its last daily reset). Never cached. With `format=csv`
/// (or `Accept: text/csv`), every store as CSV.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/occupancy/live/", params(LiveOccupancyParams), tag = "metrics",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of live occupancy, or with format=csv all of it as CSV", content(
            (LiveOccupancyPage = "application/json", example = json!(live_example())),
            (String = "text/csv", example = json!(live_csv_example())),
        ), headers(
            ("Cache-Control" = String, description = "`no-store`: the answer changes with every ingest"),
            ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"occupancy-live.csv\"`"),
        )),
        (status = 400, description = "An invalid parameter (`invalid_page_size`, `invalid_format`)", body = ErrorBody,
            example = json!({"detail": "format: \"xml\" is not one of json, csv.", "code": "invalid_format", "error_id": "47d2e9a0c5b1f836"})),
        (status = 404, description = "Unknown store or page", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn live_occupancy() {}

/// Per store: its devices' silence, completeness and count balance over the last days.
///
/// One row per store the user sees (or the `store_code` one), ordered by store_code, with each active
/// device and each local day (oldest first, today included). Only the store's open time counts: its
/// opening hours or, without them, the hours learned from its counts (`hours_learned`). A device is
/// `silent` after more than `silence_minutes` open minutes without a bin; a day's `completeness` is the
/// share of its open minutes with a bin; its `balance` is `|in - out| / max(in, out)`, `imbalanced`
/// above `imbalance_percent` when `max(in, out)` is at least 100. Computed on each request from
/// published and pending counts.
#[utoipa::path(get, path = "/api/devices/health", params(DeviceHealthParams), tag = "devices",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of stores' device health", body = DeviceHealthPage,
            example = json!(device_health_example())),
        (status = 400, description = "An invalid parameter (`invalid_parameter`: `days`, `silence_minutes` or `imbalance_percent` not a whole number in its range; `invalid_page_size`)",
            body = ErrorBody, example = json!({"detail": "days: \"99\" is not a whole number from 1 to 31.", "code": "invalid_parameter", "error_id": "c4a81e07f3d29b56"})),
        (status = 404, description = "Unknown store (`store_code_not_found`, also for a store outside the user's) or page (`invalid_page`)",
            body = ErrorBody, example = json!(not_found_example())),
    ))]
fn device_health() {}

/// The stores the user may see.
#[utoipa::path(get, path = "/api/stores", tag = "stores", security(("basic" = []), ("api_token" = [])),
    responses((status = 200, description = "The user's stores", body = StoreList)))]
fn stores() {}

/// Publication status: the last and next publication, bins pending and published.
#[utoipa::path(get, path = "/api/status", tag = "status", security(("basic" = []), ("api_token" = [])),
    responses((status = 200, description = "Publication status", body = Status)))]
fn status() {}

/// Push count bins: a JSON array of bins, one bin object, or NDJSON (one bin per line) with
/// `Content-Type: application/x-ndjson`. One request is one transaction. Authenticate with
/// `Authorization: Bearer <device token>` (the device's own bins only) or Basic auth of a user allowed
/// to ingest.
#[utoipa::path(post, path = "/api/ingest/bins", tag = "ingest",
    request_body(description = "Bins; a later bin for the same device and minute replaces an earlier one", content(
        (IngestBody = "application/json"),
        (String = "application/x-ndjson", example = json!("{\"device_id\":\"cnt-1\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":3,\"out\":0}\n{\"device_id\":\"cnt-1\",\"minute\":\"2023-10-26T12:07:00Z\",\"in\":1,\"out\":2}\n")),
    )),
    security(("device_token" = []), ("basic" = [])),
    responses(
        (status = 200, description = "All bins stored", body = Accepted),
        (status = 400, description = "A bad record, named by index and field; nothing stored", body = ErrorBody,
            example = json!({"detail": "bins[3].minute: \"2023-10-26T12:06:30Z\" is not the start of a minute (seconds must be 0)", "code": "invalid_bin", "error_id": "5b0e93c1d7a24f68"})),
        (status = 403, description = "Bins of another device, or a user without the ingest permission", body = ErrorBody),
        (status = 413, description = "The body is over the limit (`--max-body-bytes`)", body = ErrorBody),
    ))]
fn ingest_bins() {}

/// Record a manual occupancy count (users allowed to ingest); it applies from the next publication.
#[utoipa::path(post, path = "/api/occupancy/corrections", request_body = NewCorrection, tag = "corrections",
    security(("basic" = [])),
    responses(
        (status = 201, description = "Recorded", body = CorrectionView),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 403, description = "Not allowed to ingest", body = ErrorBody),
        (status = 404, description = "Unknown store", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn add_correction() {}

/// A store's occupancy corrections (users allowed to ingest).
#[utoipa::path(get, path = "/api/occupancy/corrections", tag = "corrections",
    params(("store_code" = String, Query, description = "The store")),
    security(("basic" = [])),
    responses(
        (status = 200, description = "The store's corrections by minute", body = Vec<CorrectionView>),
        (status = 400, description = "store_code missing", body = ErrorBody),
        (status = 403, description = "Not allowed to ingest", body = ErrorBody),
        (status = 404, description = "Unknown store", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn list_corrections() {}

/// A sample body of `assets/sensors/` (the vendors' own samples, sources in its README) as JSON.
fn sample(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("the samples are JSON")
}

/// The answers every sensor endpoint gives; `$example_400` is its malformed-body example.
macro_rules! sensor_path {
    ($name:ident, $path:literal, $doc:literal, $content:tt, $example_400:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "sensors",
            request_body(description = "The body exactly as the sensor sends it", content $content),
            security(("device_token" = []), ("sensor_token_query" = []), ("sensor_token_header" = []),
                ("sensor_token_bare" = []), ("basic" = [])),
            responses(
                (status = 200, description = "Stored: the minutes it touched are recomputed", body = SensorAccepted,
                    example = json!({"observations": 1, "bins": 1})),
                (status = 400, description = "A malformed payload, named by JSON path or XML element; nothing stored",
                    body = ErrorBody, example = json!({"detail": $example_400, "code": "invalid_payload", "error_id": "5b0e93c1d7a24f68"})),
                (status = 403, description = "The token's device is not the payload's sensor, or a user without the ingest permission", body = ErrorBody),
                (status = 404, description = "No sensor of this vendor is registered with the payload's serial (listed by `footfall device unknown`)",
                    body = ErrorBody, example = json!({"detail": "no xovis sensor with serial \"80:1F:12:D5:30:DC\" is registered (footfall device unknown lists it)", "code": "sensor_not_found", "error_id": "0d6a1c93be27f450"})),
                (status = 413, description = "The body is over the limit (`--max-body-bytes`)", body = ErrorBody),
            ))]
        fn $name() {}
    };
}

sensor_path!(
    ingest_xovis,
    "/api/ingest/xovis",
    "Xovis PC series: the firmware 5 logics push (`logics_data`, times as epoch milliseconds or RFC 3339) or the firmware 4 count push. Each record is counted at the minute of its `from`; a record sent again replaces itself (by logic and `from`). `fw`/`bw` are in/out unless the device says otherwise (`--in`, `--out`, `--line`, `--reverse`).",
    ((
        serde_json::Value = "application/json",
        examples(
            ("fw5" = (
                summary = "Firmware 5 logics push (akenza PC2SV5 sample)",
                value = json!(sample(include_str!("../../assets/sensors/xovis-v5-a.json")))
            )),
            ("fw5_catch_up" = (
                summary = "Four one-minute bins, no sensor_info (only a device token can push it)",
                value = json!(sample(include_str!("../../assets/sensors/xovis-v5-b.json")))
            )),
            ("fw4" = (
                summary = "Firmware 4 count push (akenza PC2S sample)",
                value = json!(sample(include_str!("../../assets/sensors/xovis-v4.json")))
            )),
        )
    )),
    "logics_data.logics[0].records[2].from: must be a time, got true"
);
sensor_path!(
    ingest_axis,
    "/api/ingest/axis",
    "Axis 3D People Counter \"Axis Retail Data\" (generic data push): each `people-counts` measurement is counted whole at the minute of its `utcFrom` (1, 5 or 15 minutes are not spread).",
    ((
        serde_json::Value = "application/json",
        examples(
            ("device" = (
                summary = "A real device capture (akenza sample)",
                value = json!(sample(include_str!("../../assets/sensors/axis-device.json")))
            )),
            ("official" = (
                summary = "The official sample",
                value = json!(sample(include_str!("../../assets/sensors/axis.json")))
            )),
        )
    )),
    "data.measurements[0].items[1].count: must be a count, got \"many\""
);
sensor_path!(
    ingest_irisys,
    "/api/ingest/irisys",
    "Irisys Vector `CountLogs`: cumulative registers. The count of [t1, t2) is value(t2) - value(t1), at t1's minute; a decrease is a reset; the first reading is a baseline; late readings re-split. Irisys sends the token as a bare `Authorization` or `Authentication` header.",
    ((
        serde_json::Value = "application/json",
        example = json!(sample(include_str!("../../assets/sensors/irisys.json")))
    )),
    "CountLogs[0].Timestamp: \"yesterday\" is not a time"
);
sensor_path!(
    ingest_milesight,
    "/api/ingest/milesight",
    "Milesight VS1xx people counters: `line_periodic_data` counted at the minute of `time_info.start_time`, summed over the lines (`--line`).",
    ((
        serde_json::Value = "application/json",
        example = json!(sample(include_str!("../../assets/sensors/milesight.json")))
    )),
    "device_info.device_sn: missing"
);
sensor_path!(
    ingest_hikvision,
    "/api/ingest/hikvision",
    "Hikvision `EventNotificationAlert` PeopleCounting as XML, JSON, or the XML/JSON part of a multipart body. `timeRange` counts at the minute of `startTime`; `realTime` running totals are cumulative registers `enter` and `exit`. Cameras set no header: use `?token=` (over TLS: it ends up in proxy logs).",
    (
        (
            String = "application/xml",
            examples(
                ("timeRange" = (
                    summary = "Per-period counts",
                    value = json!(include_str!("../../assets/sensors/hikvision-timerange.xml"))
                )),
                ("realTime" = (
                    summary = "Running totals",
                    value = json!(include_str!("../../assets/sensors/hikvision-realtime.xml"))
                )),
            )
        ),
        (serde_json::Value = "application/json"),
        (String = "multipart/form-data")
    ),
    "EventNotificationAlert.peopleCounting.enter: must be a count, got \"four\""
);

/// One count bin as pushed by a device.
#[derive(serde::Deserialize, ToSchema)]
pub struct IngestBin {
    /// The device that counted.
    #[schema(example = "cnt-1")]
    pub device_id: String,
    /// The start of the minute (UTC unless an offset is given); its seconds must be 0.
    #[schema(format = DateTime, example = "2023-10-26T12:06:00Z")]
    pub minute: String,
    /// People who went in (`in`).
    #[serde(rename = "in")]
    #[schema(example = 3, minimum = 0)]
    pub entries: u32,
    /// People who went out (`out`).
    #[serde(rename = "out")]
    #[schema(example = 0, minimum = 0)]
    pub exits: u32,
}

/// The JSON body of an ingest: an array of bins, or one bin.
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestBody {
    /// Several bins.
    Bins(Vec<IngestBin>),
    /// One bin.
    Bin(IngestBin),
}

/// The answer of `/healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The server is up", body = Health)))]
fn healthz() {}

/// The seed document's visits example (the People Counter API).
fn visits_example() -> serde_json::Value {
    let row = |in_metric: i64, out_metric: i64, minute: &str| {
        json!({"store_code": "116500", "in_metric": in_metric, "out_metric": out_metric,
            "diff_metric": in_metric - out_metric, "minute": minute})
    };
    json!({
        "count": 6,
        "next": "http://api.opap.bespot.io/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&page=2&page_size=4&store_code=116500",
        "previous": null,
        "results": [
            row(3, 0, "2023-10-26T15:06:00+03:00"),
            row(0, 1, "2023-10-26T15:08:00+03:00"),
            row(1, 2, "2023-10-26T15:09:00+03:00"),
            row(0, 2, "2023-10-26T15:10:00+03:00"),
        ],
    })
}

/// The seed document's occupancy example.
fn occupancy_example() -> serde_json::Value {
    let row = |occupancy_metric: i64, minute: &str| json!({"store_code": "116500", "occupancy_metric": occupancy_metric, "minute": minute});
    json!({
        "count": 5,
        "next": null,
        "previous": null,
        "results": [
            row(7, "2021-05-12T12:41:00+03:00"),
            row(9, "2021-05-12T12:44:00+03:00"),
            row(12, "2021-05-12T12:50:00+03:00"),
            row(11, "2021-05-12T12:53:00+03:00"),
            row(11, "2021-05-12T12:56:00+03:00"),
        ],
    })
}

/// The first rows of `visits_example` as CSV.
fn visits_csv_example() -> &'static str {
    "store_code,in_metric,out_metric,diff_metric,minute\r\n\
     116500,3,0,3,2023-10-26T15:06:00+03:00\r\n\
     116500,0,1,-1,2023-10-26T15:08:00+03:00\r\n"
}

/// Occupancy with `granularity=day`.
fn occupancy_day_example() -> serde_json::Value {
    let row = |occupancy_metric: i64, max_occupancy_metric: i64, minute: &str| {
        json!({"store_code": "116500", "occupancy_metric": occupancy_metric,
            "max_occupancy_metric": max_occupancy_metric, "minute": minute})
    };
    json!({
        "count": 2,
        "next": null,
        "previous": null,
        "results": [row(0, 41, "2021-05-12T00:00:00+03:00"), row(3, 37, "2021-05-13T00:00:00+03:00")],
    })
}

/// Occupancy with `granularity=hour` as CSV.
fn occupancy_csv_example() -> &'static str {
    "store_code,occupancy_metric,max_occupancy_metric,minute\r\n\
     116500,9,9,2021-05-12T12:00:00+03:00\r\n\
     116500,11,12,2021-05-12T13:00:00+03:00\r\n"
}

/// A summary page of two stores, one without counts; with `compare`, the earlier period's figures.
fn summary_example(compare: bool) -> serde_json::Value {
    let mut counted = json!({"store_code": "116500", "in_metric": 2973, "out_metric": 2904,
        "peak_occupancy_metric": 166, "peak_occupancy_minute": "2023-10-26T18:48:00+03:00",
        "busiest_hour": "2023-10-26T18:00:00+03:00", "busiest_hour_in_metric": 266});
    let mut empty = json!({"store_code": "220310", "in_metric": 0, "out_metric": 0, "peak_occupancy_metric": 0,
        "peak_occupancy_minute": null, "busiest_hour": null, "busiest_hour_in_metric": null});
    if compare {
        for (name, value) in [
            ("compare_in_metric", json!(2710)),
            ("compare_out_metric", json!(2688)),
            ("compare_peak_occupancy_metric", json!(151)),
            ("in_change_percent", json!(9.7)),
        ] {
            counted[name] = value;
        }
        for name in ["compare_in_metric", "compare_out_metric", "compare_peak_occupancy_metric", "in_change_percent"] {
            empty[name] = serde_json::Value::Null;
        }
    }
    json!({"count": 2, "next": null, "previous": null, "results": [counted, empty]})
}

/// `summary_example(true)` as CSV.
fn summary_csv_example() -> &'static str {
    "store_code,in_metric,out_metric,peak_occupancy_metric,peak_occupancy_minute,busiest_hour,busiest_hour_in_metric,compare_in_metric,compare_out_metric,compare_peak_occupancy_metric,in_change_percent\r\n\
     116500,2973,2904,166,2023-10-26T18:48:00+03:00,2023-10-26T18:00:00+03:00,266,2710,2688,151,9.7\r\n\
     220310,0,0,0,,,,,,,\r\n"
}

/// Live occupancy of two stores, one without counts yet in its current period.
fn live_example() -> serde_json::Value {
    json!({
        "count": 2,
        "next": null,
        "previous": null,
        "results": [
            {"store_code": "116500", "occupancy_metric": 69, "minute": "2023-10-26T15:06:00+03:00",
                "published_until": "2023-10-26T15:05:39+03:00"},
            {"store_code": "220310", "occupancy_metric": 0, "minute": null,
                "published_until": "2023-10-26T08:05:39-04:00"},
        ],
    })
}

/// `live_example` as CSV.
fn live_csv_example() -> &'static str {
    "store_code,occupancy_metric,minute,published_until\r\n\
     116500,69,2023-10-26T15:06:00+03:00,2023-10-26T15:05:39+03:00\r\n\
     220310,0,,2023-10-26T08:05:39-04:00\r\n"
}

/// Device health over `days=2`: a store with set hours and a silent, imbalanced door today; a store
/// with learned hours whose device has no counts.
fn device_health_example() -> serde_json::Value {
    let day = |date: &str, open: u32, with_data: u32, in_metric: i64, out_metric: i64| {
        let round = |share: f64| (share * 1000.0).round() / 1000.0;
        let most = in_metric.max(out_metric);
        let balance = (most > 0).then(|| round((in_metric - out_metric).abs() as f64 / most as f64));
        json!({"date": date, "open_minutes": open, "minutes_with_data": with_data,
            "completeness": (open > 0).then(|| round(f64::from(with_data) / f64::from(open))),
            "in_metric": in_metric, "out_metric": out_metric, "balance": balance,
            "imbalanced": most >= 100 && balance.is_some_and(|balance| balance > 0.10)})
    };
    json!({
        "count": 2,
        "next": null,
        "previous": null,
        "results": [
            {"store_code": "116500", "opening_hours": "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off",
                "hours_learned": false, "open_now": true, "silent_devices": 1,
                "days": [day("2023-10-25", 720, 702, 2973, 2904), day("2023-10-26", 366, 310, 1210, 1050)],
                "devices": [
                    {"device_id": "cnt-1", "last_bin": "2023-10-26T15:06:00+03:00", "silent": false,
                        "open_minutes_without_data": 0,
                        "days": [day("2023-10-25", 720, 715, 1500, 1480), day("2023-10-26", 366, 362, 640, 600)]},
                    {"device_id": "cnt-2", "last_bin": "2023-10-26T14:02:00+03:00", "silent": true,
                        "open_minutes_without_data": 64,
                        "days": [day("2023-10-25", 720, 702, 1473, 1424), day("2023-10-26", 366, 310, 570, 450)]},
                ]},
            {"store_code": "220310", "opening_hours": null, "hours_learned": true, "open_now": false,
                "silent_devices": 0,
                "days": [day("2023-10-25", 0, 0, 0, 0), day("2023-10-26", 0, 0, 0, 0)],
                "devices": [
                    {"device_id": "nyc-1", "last_bin": null, "silent": false, "open_minutes_without_data": 0,
                        "days": [day("2023-10-25", 0, 0, 0, 0), day("2023-10-26", 0, 0, 0, 0)]},
                ]},
        ],
    })
}

/// The seed document's 404 example.
fn not_found_example() -> serde_json::Value {
    json!({"detail": "Store with this store_code not found.", "code": "store_code_not_found", "error_id": "2ac759de3d9b62d4"})
}

/// The seed document's 401 example.
fn unauthorized_example() -> serde_json::Value {
    json!({"detail": "Invalid username/password.", "code": "authentication_failed", "error_id": "6ebbc397d56be8e3"})
}

/// The schemes the operations name: Basic auth of a user, a device's ingest token, a user's API token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = |auth: HttpAuthScheme, description: &str| {
            SecurityScheme::Http(HttpBuilder::new().scheme(auth).description(Some(description)).build())
        };
        components.add_security_scheme("basic", scheme(HttpAuthScheme::Basic, "A user's name and password."));
        components.add_security_scheme(
            "device_token",
            scheme(HttpAuthScheme::Bearer, "A device's ingest token, printed by `footfall device add`."),
        );
        let api_key = |key: utoipa::openapi::security::ApiKey| SecurityScheme::ApiKey(key);
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        components.add_security_scheme(
            "sensor_token_query",
            api_key(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A device's ingest token as ?token= (sensors that set no header; serve TLS, it ends up in proxy logs). Sensors may also send it as the password of Basic auth, any user name.",
            ))),
        );
        components.add_security_scheme(
            "sensor_token_header",
            api_key(ApiKey::Header(ApiKeyValue::with_description(
                "Authentication",
                "A device's ingest token, alone (Irisys).",
            ))),
        );
        components.add_security_scheme(
            "sensor_token_bare",
            api_key(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "A device's ingest token alone, without a scheme (Irisys).",
            ))),
        );
        components.add_security_scheme(
            "api_token",
            scheme(HttpAuthScheme::Bearer, "A user's API token, printed by `footfall token add`; the user's scope."),
        );
    }
}

/// The answers the layers and the accept loop can give to any request (408, 414, 431, 503, and 405 or
/// 500 as `default`), and the 401 and 429 of every authenticated operation, added to each operation
/// here rather than repeated on each.
struct ServerWideResponses;

impl Modify for ServerWideResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::{ContentBuilder, Object, Ref, Response, ResponseBuilder, Type};
        let error = |description: &str, example: Option<serde_json::Value>| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).example(example);
            ResponseBuilder::new().description(description).content("application/json", content.build())
        };
        let retry_after = |description: &str| {
            HeaderBuilder::new().schema(Object::with_type(Type::Integer)).description(Some(description)).build()
        };
        let common: [(&str, Response); 5] = [
            ("408", error("The request took longer than the request timeout (`--request-timeout`)", None).build()),
            ("414", error("The query string is over the limit (4 KiB)", None).build()),
            // hyper answers it before the request reaches the application: no body.
            (
                "431",
                ResponseBuilder::new().description("The request headers are over the limit (16 KiB); no body").build(),
            ),
            (
                "503",
                error("Too many concurrent connections (`--max-connections`); the connection is closed", None)
                    .header("Retry-After", retry_after("Seconds to wait before retrying"))
                    .build(),
            ),
            ("default", error("Any other error: a method not allowed (405), an internal error (500)", None).build()),
        ];
        let unauthorized = error("Missing or wrong credentials", Some(unauthorized_example()))
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .description(Some("The scheme to authenticate with: Basic, or Bearer after a token"))
                    .build(),
            )
            .build();
        let throttled = error("Too many failed sign-ins from this user or address", None)
            .header("Retry-After", retry_after("Seconds until the next attempt is allowed"))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, response: &Response| {
                    responses.entry(status.to_owned()).or_insert_with(|| response.clone().into());
                };
                common.iter().for_each(|(status, response)| add(status, response));
                if operation.security.is_some() {
                    add("401", &unauthorized);
                    add("429", &throttled);
                }
            }
        }
    }
}

/// `granularity`, `format` and `compare` may also be sent empty, which means their default (as every
/// filter of the API takes an empty value): their parameters take one of the enum's values or "". The
/// enums themselves stay as they are, for clients generated from the document.
struct EmptyMeansDefault;

impl Modify for EmptyMeansDefault {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
        use utoipa::openapi::{Ref, RefOr};
        let choices: Vec<Ref> = ["Granularity", "Format", "Compare"].map(Ref::from_schema_name).into();
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let Some(RefOr::Ref(choice)) = &parameter.schema else { continue };
                    if !choices.contains(choice) {
                        continue;
                    }
                    let empty = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([""]))
                        .description(Some("Empty: the default, as if the parameter were not sent"));
                    parameter.schema = Some(AnyOfBuilder::new().item(choice.clone()).item(empty).into());
                }
            }
        }
    }
}

/// `StoreView`'s `opening_hours` and `capacity` are always sent, null when unset: required (and
/// nullable), as the summary's nulls are, though `stores.rs` declares them as plain options.
struct StoreViewNulls;

impl Modify for StoreViewNulls {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let components = openapi.components.get_or_insert_with(Default::default);
        let Some(RefOr::T(Schema::Object(view))) = components.schemas.get_mut("StoreView") else { return };
        for name in ["opening_hours", "capacity"] {
            if view.properties.contains_key(name) && !view.required.iter().any(|required| required == name) {
                view.required.push(name.to_owned());
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "footfall", description = "People-counter metrics: visits and occupancy per store and minute or coarser buckets, per-store summaries, live occupancy, CSV exports, and device health."),
    paths(visits, occupancy, summary, live_occupancy, device_health, stores, status, ingest_bins, add_correction, list_corrections, healthz, ingest_xovis,
        ingest_axis, ingest_irisys, ingest_milesight, ingest_hikvision),
    components(schemas(VisitRow, OccupancyRow, VisitsPage, OccupancyPage, SummaryRow, SummaryPage, LiveOccupancyRow,
        LiveOccupancyPage, DayHealth, DeviceHealthRow, StoreHealthRow, DeviceHealthPage, Granularity, Format, Compare, ErrorBody, ErrorCode, StoreList, StoreView,
        Status, IngestBin, IngestBody, Accepted, NewCorrection, CorrectionView, Health, SensorAccepted)),
    tags(
        (name = "metrics", description = "The People Counter API: visits and occupancy per store and minute (or coarser buckets), per-store summaries and live occupancy, as JSON pages or CSV"),
        (name = "stores", description = "The stores a user sees"),
        (name = "devices", description = "Device health: silence while open, completeness and count balance"),
        (name = "status", description = "Publication status"),
        (name = "ingest", description = "Count bins from devices"),
        (name = "sensors", description = "Sensors pushing in their own format (Xovis, Axis, Irisys, Milesight, Hikvision)"),
        (name = "corrections", description = "Manual occupancy counts"),
        (name = "health", description = "Liveness"),
    ),
    modifiers(&SecuritySchemes, &ServerWideResponses, &EmptyMeansDefault, &StoreViewNulls)
)]
/// The OpenAPI document of the API, generated from the handlers' annotations.
pub struct ApiDoc;

/// `/api/openapi.json` and the browsable reference at `/api/docs`, its assets embedded in the binary.
pub fn routes() -> Router {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", ApiDoc::openapi()))
}
