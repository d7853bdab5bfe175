//! The HTTP layer: routing, authentication, errors, the read endpoints and their OpenAPI document.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod page_cache;
pub mod prometheus;
pub mod render;
pub mod reports;
pub mod status;
pub mod stores;
pub mod throttle;
pub mod vendors;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Router};
use tower::ServiceBuilder;
use tower::timeout::TimeoutLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing::field::Empty;

use crate::config::MetricsToken;
use crate::server::ClientAddr;
use crate::storage::Storage;
use auth::Authenticator;
use error::{ApiError, ErrorCode};

/// What every handler shares: the storage, the authenticator and the request limits.
pub struct AppState {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// Credential checks, their cache and the sign-in throttle.
    pub authenticator: Authenticator,
    /// The largest ingest request body accepted.
    pub max_body_bytes: usize,
    /// The longest a request may take, body included (then 408).
    pub request_timeout: Duration,
    /// The longest query string accepted (then 414).
    pub max_query_bytes: usize,
    /// The scheme of the links the API builds.
    pub scheme: &'static str,
    /// The host of the links when a request has no Host header.
    pub default_host: String,
    /// The bearer token that opens `GET /metrics` on this listener; without one it is a 404 here.
    pub metrics_token: Option<MetricsToken>,
    /// Origins whose pages may call the API from a browser (CORS); empty: no CORS headers at all.
    pub cors_allowed_origins: Vec<String>,
    /// Rendered read pages, answered again until the next publication.
    pub page_cache: page_cache::PageCache,
}

/// The visits endpoint.
pub const VISITS_PATH: &str = "/api/bi/acquisition-metrics/visits/";
/// The occupancy endpoint.
pub const OCCUPANCY_PATH: &str = "/api/bi/acquisition-metrics/occupancy/";
/// The device health endpoint.
pub const DEVICE_HEALTH_PATH: &str = "/api/devices/health";
/// The summary endpoint.
pub const SUMMARY_PATH: &str = "/api/bi/acquisition-metrics/summary/";
/// The live occupancy endpoint.
pub const LIVE_OCCUPANCY_PATH: &str = "/api/bi/acquisition-metrics/occupancy/live/";

/// The whole HTTP application: the routes, the OpenAPI document, the dashboard and the layers.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors(&state.cors_allowed_origins);
    let limits = RequestLimits { timeout: state.request_timeout, max_query_bytes: state.max_query_bytes };
    let method_not_allowed =
        || async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "Method not allowed.") };
    let api = Router::new()
        .route(VISITS_PATH, get(metrics::visits).fallback(method_not_allowed))
        .route(VISITS_PATH.trim_end_matches('/'), get(metrics::visits).fallback(method_not_allowed))
        .route(OCCUPANCY_PATH, get(metrics::occupancy).fallback(method_not_allowed))
        .route(OCCUPANCY_PATH.trim_end_matches('/'), get(metrics::occupancy).fallback(method_not_allowed))
        .route(SUMMARY_PATH, get(reports::summary).fallback(method_not_allowed))
        .route(SUMMARY_PATH.trim_end_matches('/'), get(reports::summary).fallback(method_not_allowed))
        .route(LIVE_OCCUPANCY_PATH, get(reports::live).fallback(method_not_allowed))
        .route(LIVE_OCCUPANCY_PATH.trim_end_matches('/'), get(reports::live).fallback(method_not_allowed))
        .route("/api/ingest/bins", post(ingest::post_bins).fallback(method_not_allowed))
        .route(
            "/api/occupancy/corrections",
            post(ingest::post_correction).get(ingest::list_corrections).fallback(method_not_allowed),
        )
        .route("/api/status", get(status::status).fallback(method_not_allowed))
        .route("/api/stores", get(stores::list).fallback(method_not_allowed))
        .route(DEVICE_HEALTH_PATH, get(health::device_health).fallback(method_not_allowed))
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        // Not in the OpenAPI document, and every refusal is the 404 of an unknown path (even a 405).
        .route(
            prometheus::METRICS_PATH,
            get(prometheus::scrape_with_token).fallback(|| async { ApiError::not_found() }),
        )
        .with_state(state.clone());
    // One route per vendor: any other /api/ingest/... is the JSON 404 of an unknown path.
    let api = crate::domain::sensors::Vendor::ALL.into_iter().fold(api, |api, vendor| {
        let route = post(vendors::post_vendor)
            .fallback(method_not_allowed)
            .layer(axum::Extension(vendor))
            .with_state(state.clone());
        api.route(&format!("/api/ingest/{}", vendor.as_str()), route)
    });
    api.merge(openapi::routes()).merge(dashboard::routes()).fallback(|| async { ApiError::not_found() }).layer(
        // Outermost first. The id is set before the span is made, so the span carries it.
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(record_response)
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(()),
            )
            .layer(middleware::from_fn(prometheus::track))
            .layer(PropagateRequestIdLayer::x_request_id())
            // Outside the limits, so that their errors reach the browser's script too.
            .option_layer(cors)
            .layer(CompressionLayer::new().gzip(true).br(true))
            .layer(middleware::from_fn_with_state(limits.max_query_bytes, limit_query))
            .layer(HandleErrorLayer::new(move |error: BoxError| async move { timed_out(error, limits.timeout) }))
            .layer(TimeoutLayer::new(limits.timeout))
            .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked").into_response())),
    )
}

/// CORS for the listed origins, or none (the default): preflights are answered, and answers carry the
/// headers, for those origins only. Credentials are allowed because BI web apps send Basic or Bearer
/// authorization; the validators and the request id are exposed to their scripts.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{Method, header};
    if origins.is_empty() {
        return None;
    }
    let origins = origins.iter().map(|origin| HeaderValue::from_str(origin).expect("checked by config::parse_origin"));
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_NONE_MATCH, request_id.clone()])
            .allow_credentials(true)
            .expose_headers([header::ETAG, header::LAST_MODIFIED, header::RETRY_AFTER, request_id])
            .max_age(Duration::from_secs(3600)),
    )
}

#[derive(Clone, Copy)]
struct RequestLimits {
    timeout: Duration,
    max_query_bytes: usize,
}

/// A query string too long to be a real query gets 414.
async fn limit_query(State(max_query_bytes): State<usize>, request: Request, next: Next) -> Response {
    let query_bytes = request.uri().query().map_or(0, str::len);
    if query_bytes > max_query_bytes {
        let detail = format!("The query string is {query_bytes} bytes; the limit is {max_query_bytes}.");
        return ApiError::new(StatusCode::URI_TOO_LONG, ErrorCode::QueryTooLong, detail).into_response();
    }
    next.run(request).await
}

/// A request (body included) that takes longer than the timeout gets 408, so a slow client cannot hold
/// a worker.
fn timed_out(error: BoxError, timeout: Duration) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        let detail = format!("The request took longer than {} s.", timeout.as_secs());
        ApiError::new(StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout, detail)
    } else {
        ApiError::internal(error)
    }
}

/// Request ids as error ids are: 16 random hex digits.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&crate::telemetry::new_error_id()).ok().map(RequestId::new)
    }
}

/// One log line per request, when it is answered: method, path, query, client address, request id,
/// status, latency, and the user and error id that authentication and [`ApiError`] record in the span.
/// Headers are never logged, so credentials cannot leak into logs.
fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let client = request.extensions().get::<ClientAddr>().map(|ClientAddr(address)| address.to_string());
    let request_id = request.headers().get("x-request-id").and_then(|id| id.to_str().ok());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        query = request.uri().query().map(redact_token).as_deref(),
        client,
        request_id,
        user = Empty,
        error_id = Empty,
        status = Empty,
        latency_us = Empty,
    )
}

/// A query string as logged: the value of a `token` parameter (sensors that set no header send their
/// device token that way) is replaced, so the request log holds no credential.
fn redact_token(query: &str) -> std::borrow::Cow<'_, str> {
    if !query.split('&').any(|pair| pair.starts_with("token=")) {
        return std::borrow::Cow::Borrowed(query);
    }
    let pairs: Vec<&str> =
        query.split('&').map(|pair| if pair.starts_with("token=") { "token=REDACTED" } else { pair }).collect();
    std::borrow::Cow::Owned(pairs.join("&"))
}

fn record_response<B>(response: &axum::http::Response<B>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    span.record("latency_us", latency.as_micros() as u64);
    tracing::info!("request");
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn tokens_in_the_query_are_not_logged() {
        assert_eq!(super::redact_token("a=1&token=secret&b=2"), "a=1&token=REDACTED&b=2");
        assert_eq!(super::redact_token("tokens=1"), "tokens=1");
    }
}
