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
    #[schema(format = DateTime, example = "2023-10-26T15:06:00+03:00")]
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
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/visits/", params(VisitsParams), tag = "metrics",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of visits", body = VisitsPage, headers(
            ("ETag" = String, description = "Strong tag of this answer; send it as If-None-Match to revalidate"),
            ("Last-Modified" = String, description = "When data was last published (absent before the first publication)"),
        ), example = json!(visits_example())),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match", headers(
            ("ETag" = String, description = "The current tag"),
            ("Last-Modified" = String, description = "When data was last published"),
        )),
        (status = 400, description = "A missing or invalid parameter", body = ErrorBody,
            example = json!({"detail": "datetime_gte: this query parameter is required.", "code": "required", "error_id": "9f1c2b7a04d3e815"})),
        (status = 404, description = "Unknown store, device or page", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn visits() {}

/// People inside each store at the end of each minute.
///
/// One row per minute with any count; occupancy restarts from 0 at the store's daily reset time.
#[utoipa::path(get, path = "/api/bi/acquisition-metrics/occupancy/", params(OccupancyParams), tag = "metrics",
    security(("basic" = []), ("api_token" = [])),
    responses(
        (status = 200, description = "A page of occupancy", body = OccupancyPage, headers(
            ("ETag" = String, description = "Strong tag of this answer; send it as If-None-Match to revalidate"),
            ("Last-Modified" = String, description = "When data was last published (absent before the first publication)"),
        ), example = json!(occupancy_example())),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match", headers(
            ("ETag" = String, description = "The current tag"),
            ("Last-Modified" = String, description = "When data was last published"),
        )),
        (status = 400, description = "A missing or invalid parameter", body = ErrorBody),
        (status = 404, description = "Unknown store or page", body = ErrorBody, example = json!(not_found_example())),
    ))]
fn occupancy() {}

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

#[derive(OpenApi)]
#[openapi(
    info(title = "footfall", description = "People-counter metrics: visits and occupancy per store and minute."),
    paths(visits, occupancy, stores, status, ingest_bins, add_correction, list_corrections, healthz, ingest_xovis,
        ingest_axis, ingest_irisys, ingest_milesight, ingest_hikvision),
    components(schemas(VisitRow, OccupancyRow, VisitsPage, OccupancyPage, ErrorBody, ErrorCode, StoreList, StoreView,
        Status, IngestBin, IngestBody, Accepted, NewCorrection, CorrectionView, Health, SensorAccepted)),
    tags(
        (name = "metrics", description = "The People Counter API: visits and occupancy per store and minute"),
        (name = "stores", description = "The stores a user sees"),
        (name = "status", description = "Publication status"),
        (name = "ingest", description = "Count bins from devices"),
        (name = "sensors", description = "Sensors pushing in their own format (Xovis, Axis, Irisys, Milesight, Hikvision)"),
        (name = "corrections", description = "Manual occupancy counts"),
        (name = "health", description = "Liveness"),
    ),
    modifiers(&SecuritySchemes, &ServerWideResponses)
)]
/// The OpenAPI document of the API, generated from the handlers' annotations.
pub struct ApiDoc;

/// `/api/openapi.json` and the browsable reference at `/api/docs`, its assets embedded in the binary.
pub fn routes() -> Router {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", ApiDoc::openapi()))
}
