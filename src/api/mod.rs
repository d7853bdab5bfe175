//! The HTTP layer: routing, authentication, errors, the read endpoints and their OpenAPI document.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod render;
pub mod status;
pub mod stores;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::storage::Storage;
use auth::Authenticator;
use error::ApiError;

pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub authenticator: Authenticator,
    /// The largest ingest request body accepted.
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_query_bytes: usize,
    /// The scheme of the links the API builds.
    pub scheme: &'static str,
    /// The host of the links when a request has no Host header.
    pub default_host: String,
}

pub const VISITS_PATH: &str = "/api/bi/acquisition-metrics/visits/";
pub const OCCUPANCY_PATH: &str = "/api/bi/acquisition-metrics/occupancy/";

pub fn router(state: Arc<AppState>) -> Router {
    let limits = RequestLimits { timeout: state.request_timeout, max_query_bytes: state.max_query_bytes };
    let method_not_allowed =
        || async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed.") };
    let api = Router::new()
        .route(VISITS_PATH, get(metrics::visits).fallback(method_not_allowed))
        .route(VISITS_PATH.trim_end_matches('/'), get(metrics::visits).fallback(method_not_allowed))
        .route(OCCUPANCY_PATH, get(metrics::occupancy).fallback(method_not_allowed))
        .route(OCCUPANCY_PATH.trim_end_matches('/'), get(metrics::occupancy).fallback(method_not_allowed))
        .route("/api/ingest/bins", post(ingest::post_bins).fallback(method_not_allowed))
        .route(
            "/api/occupancy/corrections",
            post(ingest::post_correction).get(ingest::list_corrections).fallback(method_not_allowed),
        )
        .route("/api/status", get(status::status).fallback(method_not_allowed))
        .route("/api/stores", get(stores::list).fallback(method_not_allowed))
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .with_state(state);
    api.merge(openapi::routes())
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found.") })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(limits, enforce_limits))
        .layer(middleware::from_fn(log_request))
}

#[derive(Clone, Copy)]
struct RequestLimits {
    timeout: Duration,
    max_query_bytes: usize,
}

/// A query string too long to be a real query gets 414; a request (body included) that takes longer
/// than the timeout gets 408, so a slow client cannot hold a worker.
async fn enforce_limits(State(limits): State<RequestLimits>, request: Request, next: Next) -> Response {
    let query_bytes = request.uri().query().map_or(0, str::len);
    if query_bytes > limits.max_query_bytes {
        let detail = format!("The query string is {query_bytes} bytes; the limit is {}.", limits.max_query_bytes);
        return ApiError::new(StatusCode::URI_TOO_LONG, "query_too_long", detail).into_response();
    }
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let detail = format!("The request took longer than {} s.", limits.timeout.as_secs());
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", detail).into_response()
        }
    }
}

/// One log line per request: method, path and query, status, latency. Headers are never logged, so
/// credentials cannot leak into logs.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let target = request.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_default();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        target,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}
