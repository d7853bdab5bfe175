//! `GET /metrics`: refused (as an unknown path) without its token, served on a metrics listener, series
//! that move with requests, sign-in failures, ingests and publications, database gauges, and no secret.
//!
//! The recorder is process-wide, so other tests running at the same time add to the counters: counters
//! are compared as "grew by at least"; the database gauges belong to each server and are exact.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, Response, TestApp};
use footfall::app::ServerConfig;
use footfall::config::MetricsToken;

backend_tests!(
    metrics_are_a_404_without_the_token_or_with_a_wrong_one,
    series_move_with_requests_sign_ins_ingests_and_publications,
    database_gauges_follow_pending_bins_and_publications,
    the_metrics_listener_serves_metrics_and_nothing_else,
);

const TOKEN: &str = "metrics-token-0123456789abcdef";

fn with_token(config: ServerConfig) -> ServerConfig {
    ServerConfig { metrics_token: Some(MetricsToken::new(TOKEN).unwrap()), ..config }
}

/// `GET url` with `authorization` (if any): status, content type and body text.
async fn get_text(app: &TestApp, url: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut request = app.client.get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map_or("", |value| value.to_str().unwrap()).to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// A scrape of the main listener with the token, which must succeed.
async fn scrape(app: &TestApp) -> String {
    let (status, content_type, text) = get_text(app, &app.url("/metrics"), Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    text
}

/// The sum of the samples of `name` whose labels include all of `labels` (0 when there is none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).into_iter().sum()
}

fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, "}"));
            let wanted = series_name == name
                && labels.iter().all(|(label, value)| series_labels.contains(&format!("{label}=\"{value}\"")));
            wanted.then(|| value.parse::<f64>().unwrap())
        })
        .collect()
}

/// The JSON 404 of an unknown path.
async fn assert_not_found(app: &TestApp, url: &str, authorization: Option<&str>) {
    let mut request = app.client.get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = Response::read("GET", request.send().await.unwrap()).await;
    assert_eq!((response.status, response.error_code()), (404, "not_found"), "{url} with {authorization:?}");
}

async fn metrics_are_a_404_without_the_token_or_with_a_wrong_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_token(ServerConfig::immediate())).await;
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let url = app.url("/metrics");
    let before = sample(&scrape(&app).await, "footfall_auth_failures_total", &[("credential", "metrics_token")]);
    assert_not_found(&app, &url, None).await;
    assert_not_found(&app, &url, Some("Bearer metrics-token-0123456789abcdeX")).await;
    assert_not_found(&app, &url, Some(&format!("Bearer {TOKEN}x"))).await;
    let basic =
        format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "analyst:s3cret"));
    assert_not_found(&app, &url, Some(&basic)).await;
    // Any other method is the same 404, so nothing tells that the path exists.
    let post = app.client.post(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(post.status().as_u16(), 404);
    let after = sample(&scrape(&app).await, "footfall_auth_failures_total", &[("credential", "metrics_token")]);
    assert!(after >= before + 2.0, "two wrong tokens are counted: {before} -> {after}");

    // Without a configured token, even the right-looking one opens nothing.
    let closed = TestApp::spawn(backend).await;
    assert_not_found(&closed, &closed.url("/metrics"), Some(&format!("Bearer {TOKEN}"))).await;
}

async fn series_move_with_requests_sign_ins_ingests_and_publications(backend: Backend) {
    let config = ServerConfig { auth_failures_per_minute: 1, ..with_token(ServerConfig::immediate()) };
    let app = TestApp::spawn_with(backend, config).await;
    app.add_store("116500", "Europe/Athens");
    let device_token = app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.add_user("mallory", "right-password", &[]);

    let before = scrape(&app).await;
    let stores_ok = [("method", "GET"), ("route", "/api/stores"), ("status", "200")];
    let stores_401 = [("method", "GET"), ("route", "/api/stores"), ("status", "401")];
    let ingest_ok = [("method", "POST"), ("route", "/api/ingest/bins"), ("status", "200")];

    assert_eq!(app.get("/api/stores", Some(ANALYST)).await.status, 200);
    let wrong = || async {
        let request = app.client.get(app.url("/api/stores")).basic_auth("mallory", Some("wrong"));
        request.send().await.unwrap().status().as_u16()
    };
    assert_eq!(wrong().await, 401);
    assert_eq!(wrong().await, 429, "throttled after one failure");
    assert_eq!(app.get("/api/stores/no/such/path", Some(ANALYST)).await.status, 404);
    let bins = json!([
        {"device_id": "cnt-1", "minute": "2023-10-26T12:06:00Z", "in": 3, "out": 0},
        {"device_id": "cnt-1", "minute": "2023-10-26T12:07:00Z", "in": 1, "out": 1},
    ]);
    let post = |token: String, body: serde_json::Value| {
        let request = app.client.post(app.url("/api/ingest/bins")).bearer_auth(token).json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(device_token.clone(), bins).await, 200);
    let unknown = json!([{"device_id": "cnt-9", "minute": "2023-10-26T12:06:00Z", "in": 1, "out": 0}]);
    let basic_ingest = app.client.post(app.url("/api/ingest/bins")).json(&unknown).send().await.unwrap();
    assert_eq!(basic_ingest.status().as_u16(), 401);
    assert_eq!(post("not-a-device-token".into(), unknown.clone()).await, 401);
    assert_eq!(post(device_token.clone(), unknown).await, 400, "an unknown device");
    assert_eq!(post(device_token.clone(), json!([{"device_id": "cnt-1"}])).await, 400);

    let after = scrape(&app).await;
    let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
        let (was, is) = (sample(&before, name, labels), sample(&after, name, labels));
        assert!(is >= was + by, "{name}{labels:?} grew from {was} to {is}, not by {by}");
    };
    grew("footfall_http_requests_total", &stores_ok, 1.0);
    grew("footfall_http_requests_total", &stores_401, 1.0);
    grew("footfall_http_requests_total", &[("route", "/api/stores"), ("status", "429")], 1.0);
    grew("footfall_http_requests_total", &[("route", "unmatched"), ("status", "404")], 1.0);
    grew("footfall_http_requests_total", &ingest_ok, 1.0);
    grew("footfall_http_request_duration_seconds_count", &[("method", "GET"), ("route", "/api/stores")], 3.0);
    grew("footfall_auth_failures_total", &[("credential", "password")], 1.0);
    grew("footfall_auth_failures_total", &[("credential", "device_token")], 1.0);
    grew("footfall_auth_throttled_total", &[], 1.0);
    grew("footfall_bins_ingested_total", &[("source", "http")], 2.0);
    grew("footfall_records_rejected_total", &[("source", "http")], 2.0);
    // Published on ingest (the server runs with --publish-interval 0).
    grew("footfall_publication_duration_seconds_count", &[("trigger", "write")], 1.0);
    grew("footfall_bins_published_total", &[("trigger", "write")], 2.0);
    let engine = if backend == Backend::Sqlite { "sqlite" } else { "postgres" };
    grew("footfall_db_pool_wait_seconds_count", &[("engine", engine)], 1.0);
    // Histograms have buckets, and no route label is a raw path.
    assert!(after.contains("footfall_http_request_duration_seconds_bucket{"), "{after}");
    assert!(!after.contains("no/such/path"), "raw paths never become labels");

    // Secrets never show: not the metrics token, a device token, or a password.
    for secret in [TOKEN, device_token.as_str(), ANALYST.1, "right-password", "not-a-device-token"] {
        assert!(!after.contains(secret), "{secret:?} is in /metrics");
    }
}

async fn database_gauges_follow_pending_bins_and_publications(backend: Backend) {
    let never = ServerConfig { publish_interval: Duration::from_secs(365 * 86_400), ..Default::default() };
    let app = TestApp::spawn_with(backend, with_token(never)).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_device("cnt-2", "116500");
    let first = scrape(&app).await;
    assert_eq!(sample(&first, "footfall_database_up", &[]), 1.0);
    assert_eq!(sample(&first, "footfall_pending_bins", &[]), 0.0);
    assert!(samples(&first, "footfall_publication_age_seconds", &[]).is_empty(), "never published: {first}");
    assert!(samples(&first, "footfall_device_last_bin_age_seconds", &[]).is_empty(), "no bins yet");

    app.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0), ("cnt-1", "2023-10-26T08:01:00Z", 1, 0)]);
    let pending = scrape(&app).await;
    assert_eq!(sample(&pending, "footfall_pending_bins", &[]), 2.0);
    assert_eq!(sample(&pending, "footfall_publish_interval_seconds", &[]), (365 * 86_400) as f64);
    let cnt_1 = [("store_code", "116500"), ("device_id", "cnt-1")];
    let last_bin = samples(&pending, "footfall_device_last_bin_age_seconds", &cnt_1);
    let since_08_02 = (jiff::Timestamp::now().as_second()
        - "2023-10-26T08:02:00Z".parse::<jiff::Timestamp>().unwrap().as_second()) as f64;
    assert!(matches!(last_bin[..], [age] if (age - since_08_02).abs() < 60.0), "{last_bin:?} vs {since_08_02}");
    let seen = samples(&pending, "footfall_device_last_seen_age_seconds", &cnt_1);
    assert!(matches!(seen[..], [age] if (0.0..60.0).contains(&age)), "received just now: {seen:?}");
    assert!(samples(&pending, "footfall_device_last_seen_age_seconds", &[("device_id", "cnt-2")]).is_empty());

    app.publish();
    let published = scrape(&app).await;
    assert_eq!(sample(&published, "footfall_pending_bins", &[]), 0.0);
    let age = samples(&published, "footfall_publication_age_seconds", &[]);
    assert!(matches!(age[..], [age] if (0.0..60.0).contains(&age)), "just published: {age:?}");

    // A removed device's series goes with it.
    app.cli_ok(&["device", "remove", "cnt-1"], None);
    let removed = scrape(&app).await;
    assert!(samples(&removed, "footfall_device_last_bin_age_seconds", &cnt_1).is_empty(), "{removed}");
}

async fn the_metrics_listener_serves_metrics_and_nothing_else(backend: Backend) {
    let (app, metrics) = TestApp::spawn_with_metrics_listener(backend, ServerConfig::immediate()).await;
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    assert_eq!(app.get("/api/stores", Some(ANALYST)).await.status, 200);
    let (status, content_type, text) = get_text(&app, &format!("{metrics}/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(sample(&text, "footfall_http_requests_total", &[("route", "/api/stores"), ("status", "200")]) >= 1.0);
    assert_eq!(sample(&text, "footfall_database_up", &[]), 1.0);
    assert!(text.contains("footfall_build_info{version=\""), "{text}");
    // Only /metrics there; and with no token configured, the API's listener does not serve it.
    assert_not_found(&app, &format!("{metrics}/api/stores"), None).await;
    assert_not_found(&app, &format!("{metrics}/healthz"), None).await;
    assert_not_found(&app, &app.url("/metrics"), None).await;
}
