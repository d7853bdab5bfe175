//! The OpenAPI 3 document, generated from these declarations, and the embedded Swagger UI.

#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]` documentation

use axum::Router;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::error::ErrorBody;
use super::ingest::{Accepted, CorrectionView, NewCorrection};
use super::status::Status;
use super::stores::{StoreList, StoreView};

/// One store's visits in one minute.
#[derive(Serialize, ToSchema)]
pub struct VisitRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// Entries in the minute, summed over the store's devices.
    #[schema(example = 3, minimum = 0)]
    pub in_metric: i64,
    /// Exits in the minute.
    #[schema(example = 0, minimum = 0)]
    pub out_metric: i64,
    /// in_metric - out_metric.
    #[schema(example = 3)]
    pub diff_metric: i64,
    /// Start of the minute in the store's local time, with its UTC offset.
    #[schema(example = "2023-10-26T15:06:00+03:00")]
    pub minute: String,
}

/// One store's occupancy at the end of one minute.
#[derive(Serialize, ToSchema)]
pub struct OccupancyRow {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// People inside at the end of the minute.
    #[schema(example = 7, minimum = 0)]
    pub occupancy_metric: i64,
    /// Start of the minute in the store's local time, with its UTC offset.
    #[schema(example = "2021-05-12T12:41:00+03:00")]
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
    /// Rows per page (default 1000; values above 10000 are treated as 10000).
    #[param(minimum = 1)]
    page_size: Option<u64>,
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
    #[param(minimum = 1)]
    page_size: Option<u64>,
    #[param(minimum = 1)]
    page: Option<u64>,
}

/// In, out and in - out per store and minute.
///
/// One row per (store, minute) with any count, summed over the store's devices (or one device's, with
/// device_id), ordered by store_code then minute.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/visits/", params(VisitsParams),
    security(("basic" = [])),
    responses(
        (status = 200, description = "A page of visits", body = VisitsPage),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "A missing or invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
        (status = 404, description = "Unknown store, device or page", body = ErrorBody),
    ))]
fn visits() {}

/// People inside each store at the end of each minute.
///
/// One row per minute with any count; occupancy restarts from 0 at the store's daily reset time.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/occupancy/", params(OccupancyParams),
    security(("basic" = [])),
    responses(
        (status = 200, description = "A page of occupancy", body = OccupancyPage),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "A missing or invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
        (status = 404, description = "Unknown store or page", body = ErrorBody),
    ))]
fn occupancy() {}

/// The stores the user may see.
#[utoipa::path(get, path = "/api/stores", security(("basic" = [])),
    responses(
        (status = 200, description = "The user's stores", body = StoreList),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
    ))]
fn stores() {}

/// Publication status: the last and next publication, bins pending and published.
#[utoipa::path(get, path = "/api/status", security(("basic" = [])),
    responses(
        (status = 200, description = "Publication status", body = Status),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
    ))]
fn status() {}

/// Push count bins: a JSON array (or one object) of bins, or NDJSON with
/// `Content-Type: application/x-ndjson`. One request is one transaction. Authenticate with
/// `Authorization: Bearer <device token>` (the device's own bins only) or Basic auth of a user allowed
/// to ingest.
#[utoipa::path(post, path = "/api/ingest/bins", request_body = Vec<IngestBin>,
    security(("device_token" = []), ("basic" = [])),
    responses(
        (status = 200, description = "All bins stored", body = Accepted),
        (status = 400, description = "A bad record, named by index and field; nothing stored", body = ErrorBody),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
        (status = 403, description = "Bins of another device, or a user without the ingest permission", body = ErrorBody),
        (status = 413, description = "The body is over the limit", body = ErrorBody),
    ))]
fn ingest_bins() {}

/// Record a manual occupancy count (users allowed to ingest); it applies from the next publication.
#[utoipa::path(post, path = "/api/occupancy/corrections", request_body = NewCorrection,
    security(("basic" = [])),
    responses(
        (status = 201, description = "Recorded", body = CorrectionView),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
        (status = 403, description = "Not allowed to ingest", body = ErrorBody),
        (status = 404, description = "Unknown store", body = ErrorBody),
    ))]
fn add_correction() {}

/// A store's occupancy corrections (users allowed to ingest).
#[utoipa::path(get, path = "/api/occupancy/corrections", params(("store_code" = String, Query)),
    security(("basic" = [])),
    responses(
        (status = 200, description = "The store's corrections by minute", body = Vec<CorrectionView>),
        (status = 400, description = "store_code missing", body = ErrorBody),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins: retry after Retry-After seconds", body = ErrorBody),
        (status = 403, description = "Not allowed to ingest", body = ErrorBody),
        (status = 404, description = "Unknown store", body = ErrorBody),
    ))]
fn list_corrections() {}

/// One count bin as pushed by a device.
#[derive(serde::Deserialize, ToSchema)]
pub struct IngestBin {
    /// The device that counted.
    #[schema(example = "cnt-1")]
    pub device_id: String,
    /// The UTC start of the minute (seconds 0).
    #[schema(example = "2023-10-26T12:06:00Z")]
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

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up")))]
fn healthz() {}

struct BasicAuth;

/// Every operation may also answer the server-wide errors (405, 408, 413, 414, 431, 503, 500) with the
/// same error body: documented once as each operation's `default` response.
struct ServerWideErrors;

impl Modify for ServerWideErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = ResponseBuilder::new()
            .description("Any other error: a method not allowed, a limit exceeded (time, body, query, headers, connections), an internal error")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                operation.responses.responses.entry("default".to_owned()).or_insert_with(|| error.clone().into());
            }
        }
    }
}

impl Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "footfall", description = "People-counter metrics: visits and occupancy per store and minute."),
    paths(visits, occupancy, stores, status, ingest_bins, add_correction, list_corrections, healthz),
    components(schemas(VisitRow, OccupancyRow, VisitsPage, OccupancyPage, ErrorBody, StoreList, StoreView, Status,
        IngestBin, Accepted, NewCorrection, CorrectionView)),
    modifiers(&BasicAuth, &ServerWideErrors)
)]
/// The OpenAPI document of the API, generated from the handlers' annotations.
pub struct ApiDoc;

/// `/api/openapi.json` and the browsable reference at `/api/docs`, its assets embedded in the binary.
pub fn routes() -> Router {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", ApiDoc::openapi()))
}
