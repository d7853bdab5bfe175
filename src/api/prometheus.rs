//! `GET /metrics` in the Prometheus text format, and the layer that counts and times every request.
//!
//! The endpoint answers on a metrics listener (`serve --metrics-listen`, nothing else served there) or,
//! on the API's listener, to `Authorization: Bearer <metrics.token>`; anything else gets the JSON 404 of
//! an unknown path, so the endpoint does not even show that it exists. The recorded series are
//! `telemetry::series`; the gauges read from the database are computed here, at each scrape, with one
//! query. docs/operations.md lists every series.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;

use super::AppState;
use super::error::ApiError;
use super::extract::bearer_token;
use crate::domain::monitoring::MonitoringSnapshot;
use crate::telemetry::series;

/// The path of the endpoint, on either listener.
pub const METRICS_PATH: &str = "/metrics";
/// Always 1, labelled with the version: which build is running.
pub const BUILD_INFO: &str = "footfall_build_info";
/// 1 when the scrape could read the database, else 0 (and the other database gauges are missing).
pub const DATABASE_UP: &str = "footfall_database_up";
/// Bins ingested and not yet published.
pub const PENDING_BINS: &str = "footfall_pending_bins";
/// The database's publication interval; 0 publishes on ingest.
pub const PUBLISH_INTERVAL: &str = "footfall_publish_interval_seconds";
/// Seconds since the last publication.
pub const PUBLICATION_AGE: &str = "footfall_publication_age_seconds";
/// Seconds since the end of the latest minute a device sent a bin for, per device.
pub const DEVICE_LAST_BIN_AGE: &str = "footfall_device_last_bin_age_seconds";
/// Seconds since bins of a device were last received, per device.
pub const DEVICE_LAST_SEEN_AGE: &str = "footfall_device_last_seen_age_seconds";

/// The `route` of a request no route matched: raw paths would make a series per scanner probe.
const UNMATCHED: &str = "unmatched";
/// The methods with a `method` label of their own; any other is `other`.
static METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// The router of a metrics listener: `GET /metrics` without authentication, a JSON 404 for the rest.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(METRICS_PATH, get(|State(state): State<Arc<AppState>>| async move { scrape(&state).await }))
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
}

/// `GET /metrics` on the API's listener: only with the configured bearer token.
pub async fn scrape_with_token(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match (&state.metrics_token, bearer_token(&headers)) {
        (Some(token), Some(presented)) if token.matches(presented) => scrape(&state).await,
        (Some(_), Some(_)) => {
            series::auth_failure("metrics_token");
            ApiError::not_found().into_response()
        }
        _ => ApiError::not_found().into_response(),
    }
}

/// Counts and times a request by its method, route template and status (the layer of every route).
pub async fn track(request: Request, next: Next) -> Response {
    if !series::installed() {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = METHODS.iter().find(|known| *known == request.method()).map_or("other", Method::as_str);
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    series::http_request(method, route, response.status().as_u16(), started.elapsed());
    response
}

async fn scrape(state: &AppState) -> Response {
    let mut text = series::render();
    let snapshot = state
        .storage
        .monitoring()
        .await
        .inspect_err(|error| tracing::warn!(%error, "metrics: the database gauges are unavailable"))
        .ok();
    write_database_gauges(&mut text, snapshot.as_ref(), Timestamp::now());
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// Appends the gauges read from the database. They are written at each scrape rather than set in the
/// recorder: servers sharing a process (the tests, the benchmark) would overwrite each other's values
/// there, and a removed device's series would stay forever.
fn write_database_gauges(out: &mut String, snapshot: Option<&MonitoringSnapshot>, now: Timestamp) {
    let mut gauges = Gauges(out);
    gauges.family(BUILD_INFO, "Always 1; the version label says which footfall is running.");
    gauges.sample(BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    gauges.family(DATABASE_UP, "1 when this scrape read the database, else 0.");
    gauges.sample(DATABASE_UP, &[], if snapshot.is_some() { 1.0 } else { 0.0 });
    let Some(snapshot) = snapshot else { return };
    let now_ms = now.as_millisecond();
    gauges.family(PENDING_BINS, "Bins ingested and not yet published.");
    gauges.sample(PENDING_BINS, &[], snapshot.pending_bins as f64);
    gauges.family(PUBLISH_INTERVAL, "The database's publication interval; 0 publishes on ingest.");
    gauges.sample(PUBLISH_INTERVAL, &[], snapshot.policy.interval().as_secs_f64());
    gauges.family(PUBLICATION_AGE, "Seconds since the last publication (absent before the first).");
    if let Some(at) = snapshot.last_published_at {
        gauges.sample(PUBLICATION_AGE, &[], seconds_since(at.as_millisecond(), now_ms));
    }
    gauges.family(DEVICE_LAST_BIN_AGE, "Seconds since the end of the latest minute a device sent a bin for.");
    for device in &snapshot.devices {
        if let Some(minute) = device.last_bin_minute {
            let end_ms = (minute.unix_seconds() + 60) * 1000;
            let labels = [("store_code", device.store_code.as_str()), ("device_id", device.device_id.as_str())];
            gauges.sample(DEVICE_LAST_BIN_AGE, &labels, seconds_since(end_ms, now_ms));
        }
    }
    gauges.family(DEVICE_LAST_SEEN_AGE, "Seconds since bins of a device were last received.");
    for device in &snapshot.devices {
        if let Some(seen) = device.last_seen_at {
            let labels = [("store_code", device.store_code.as_str()), ("device_id", device.device_id.as_str())];
            gauges.sample(DEVICE_LAST_SEEN_AGE, &labels, seconds_since(seen.as_millisecond(), now_ms));
        }
    }
}

/// Seconds from `earlier_ms` to `now_ms`, never negative (another server's clock may be ahead).
fn seconds_since(earlier_ms: i64, now_ms: i64) -> f64 {
    (now_ms - earlier_ms).max(0) as f64 / 1000.0
}

/// Gauge families in the Prometheus text format.
struct Gauges<'a>(&'a mut String);

impl Gauges<'_> {
    fn family(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        for (index, (label, text)) in labels.iter().enumerate() {
            self.0.push(if index == 0 { '{' } else { ',' });
            let _ = write!(self.0, "{label}=\"");
            for c in text.chars() {
                match c {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    c => self.0.push(c),
                }
            }
            self.0.push('"');
        }
        if !labels.is_empty() {
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::DeviceStatus;
    use crate::domain::publication::PublicationPolicy;
    use crate::domain::{DeviceId, Minute, StoreCode};

    #[test]
    fn database_gauges_are_ages_at_the_scrape_and_label_values_are_escaped() {
        let now: Timestamp = "2023-10-26T12:10:30Z".parse().unwrap();
        let device = |id: &str, minute: Option<&str>, seen: Option<&str>| DeviceStatus {
            device_id: DeviceId::parse(id).unwrap(),
            store_code: StoreCode::parse("116500").unwrap(),
            active: true,
            last_bin_minute: minute.map(|m| Minute::last_at_or_before(m.parse().unwrap())),
            last_seen_at: seen.map(|s| s.parse().unwrap()),
        };
        let snapshot = MonitoringSnapshot {
            pending_bins: 7,
            last_published_at: Some("2023-10-26T12:00:00Z".parse().unwrap()),
            policy: PublicationPolicy::default(),
            devices: vec![
                device(r#"a"b\c"#, Some("2023-10-26T12:05:00Z"), Some("2023-10-26T12:10:00.500Z")),
                device("never", None, None),
            ],
        };
        let mut text = String::new();
        write_database_gauges(&mut text, Some(&snapshot), now);
        for line in [
            "footfall_database_up 1",
            "footfall_pending_bins 7",
            "footfall_publish_interval_seconds 900",
            "footfall_publication_age_seconds 630",
            r#"footfall_device_last_bin_age_seconds{store_code="116500",device_id="a\"b\\c"} 270"#,
            r#"footfall_device_last_seen_age_seconds{store_code="116500",device_id="a\"b\\c"} 29.5"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("never"), "a device that never sent has no age: {text}");

        let mut down = String::new();
        write_database_gauges(&mut down, None, now);
        assert!(down.contains("footfall_database_up 0\n") && !down.contains(PENDING_BINS), "{down}");
    }
}
