//! Webhooks against a real local receiver: Standard Webhooks signatures checked with HMAC-SHA256 here,
//! retries keeping their webhook-id, deliveries surviving a restart, one delivery with two servers, and
//! the capacity and silence events made from generated data.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp};
use footfall::app::ServerConfig;

backend_tests!(
    deliveries_are_signed_and_a_retry_keeps_its_id,
    queued_deliveries_survive_a_restart,
    occupancy_over_capacity_fires_once_each_way,
    a_silent_device_fires_and_recovers_but_not_while_closed,
    an_imbalanced_day_fires_once_per_device_and_store,
);

/// A local receiver: records every request, answers the queued statuses (then 200).
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.answers.lock().unwrap().extend(answers);
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.received.lock().unwrap().push((headers, String::from_utf8(body.to_vec()).unwrap()));
                    let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn events(&self, event_type: &str) -> Vec<(HeaderMap, Value)> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .map(|(headers, body)| (headers.clone(), serde_json::from_str::<Value>(body).unwrap()))
            .filter(|(_, body)| body["type"] == event_type)
            .collect()
    }

    /// Waits until `count` requests of `event_type` arrived (or `limit` passed); returns them.
    async fn wait_for(&self, event_type: &str, count: usize, limit: Duration) -> Vec<(HeaderMap, Value)> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.events(event_type).len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.events(event_type)
    }
}

/// Adds an endpoint; returns its secret (the last line printed).
fn add_webhook(app: &TestApp, url: &str, events: &str) -> String {
    let output = app.cli_ok(&["webhook", "add", url, "--events", events], None);
    output.lines().last().unwrap().to_owned()
}

/// The Standard Webhooks signature, computed here: base64 HMAC-SHA256 over `id.timestamp.body` keyed by
/// the secret's base64-decoded bytes after `whsec_`.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap()
}

fn fast_alerts() -> ServerConfig {
    ServerConfig { alert_interval: Duration::from_millis(200), ..ServerConfig::immediate() }
}

async fn deliveries_are_signed_and_a_retry_keeps_its_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    let (receiver, url) = Receiver::start(&[500]).await;
    let secret = add_webhook(&app, &url, "publication.completed");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = app.cli_ok(&["webhook", "list"], None);
    assert!(listed.contains(&url) && !listed.contains(&secret), "the secret is shown once: {listed}");

    app.ingest(&[("cnt-1", "2023-10-26T12:00:00Z", 3, 1)]);
    let attempts = receiver.wait_for("publication.completed", 2, Duration::from_secs(20)).await;
    assert_eq!(attempts.len(), 2, "a 500, then the retry 5 s later");
    let (first, second) = (&attempts[0].0, &attempts[1].0);
    assert_eq!(header(first, "webhook-id"), header(second, "webhook-id"), "a retry keeps its id");
    let raw = receiver.received.lock().unwrap().clone();
    for (headers, body) in &raw {
        let expected =
            expected_signature(&secret, header(headers, "webhook-id"), header(headers, "webhook-timestamp"), body);
        assert_eq!(header(headers, "webhook-signature"), expected);
        assert_eq!(header(headers, "content-type"), "application/json");
    }
    let body = &attempts[1].1;
    assert_eq!(body["data"]["bins"], 1);
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let deliveries = app.cli_ok(&["webhook", "deliveries", &url, "--format", "json"], None);
    let deliveries: Value = serde_json::from_str(&deliveries).unwrap();
    assert_eq!(deliveries[0]["attempts"], 2);
    assert_eq!(deliveries[0]["last_status"], 200);
    assert!(deliveries[0]["delivered_at"].is_string());

    let tested = app.cli_ok(&["webhook", "test", &url], None);
    assert!(tested.contains("answered 200"), "{tested}");
    let test = receiver.events("webhook.test");
    assert_eq!(test.len(), 1);
    let refused = app.cli(&["webhook", "add", "ftp://example.com/x", "--events", "all"], None);
    assert!(!refused.status.success());
    let refused = app.cli(&["webhook", "add", &url, "--events", "device.exploded"], None);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("device.exploded"));
    app.cli_ok(&["webhook", "remove", &url], None);
    assert!(!app.cli(&["webhook", "deliveries", &url], None).status.success());
}

async fn queued_deliveries_survive_a_restart(backend: Backend) {
    let config = ServerConfig { publish_interval: Duration::from_secs(900), ..ServerConfig::default() };
    let mut app = TestApp::spawn_with(backend, config.clone()).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    let (receiver, url) = Receiver::start(&[500]).await;
    add_webhook(&app, &url, "publication.completed");
    // A delivery failed once and waits for its retry when the server stops.
    app.ingest(&[("cnt-1", "2023-10-26T12:00:00Z", 3, 1)]);
    app.publish();
    assert_eq!(receiver.wait_for("publication.completed", 1, Duration::from_secs(10)).await.len(), 1);
    app.stop().await;
    // No server runs: the CLI's publication queues its event in the database.
    app.ingest(&[("cnt-1", "2023-10-26T12:01:00Z", 3, 1)]);
    app.publish();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.events("publication.completed").len(), 1);
    let mut servers = vec![TestApp::spawn_on(backend, app.database_url.clone(), None, config.clone()).await];
    if backend == Backend::Postgres {
        // Two servers over one database: each delivery is posted by one of them.
        servers.push(TestApp::spawn_on(backend, app.database_url.clone(), None, config).await);
    }
    let delivered = receiver.wait_for("publication.completed", 3, Duration::from_secs(15)).await;
    assert_eq!(delivered.len(), 3, "the retry and the new event");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered = receiver.events("publication.completed");
    assert_eq!(delivered.len(), 3, "each delivered once");
    let first = header(&delivered[0].0, "webhook-id");
    let retried = delivered.iter().filter(|(headers, _)| header(headers, "webhook-id") == first).count();
    assert_eq!(retried, 2, "the failed delivery retried after the restart, with its id");
    for server in &mut servers {
        server.stop().await;
    }
}

async fn occupancy_over_capacity_fires_once_each_way(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, ServerConfig { publish_interval: Duration::from_secs(900), ..fast_alerts() })
            .await;
    let now = jiff::Timestamp::now();
    let reset_hour = (now.as_second() / 3600 + 12) % 24;
    app.cli_ok(
        &[
            "store",
            "add",
            "116500",
            "--timezone",
            "UTC",
            "--occupancy-reset",
            &format!("{reset_hour:02}:00"),
            "--capacity",
            "5",
        ],
        None,
    );
    app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let (receiver, url) = Receiver::start(&[]).await;
    add_webhook(&app, &url, "occupancy.above,occupancy.below");
    let minute = |ago: i64| {
        let at = jiff::Timestamp::from_second((now.as_second() / 60 - ago) * 60).unwrap();
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    // Pending, not published: live occupancy crosses without waiting for the publication.
    app.ingest_owned(&[("cnt-1".into(), minute(5), 4, 0), ("cnt-1".into(), minute(4), 4, 0)]);
    let above = receiver.wait_for("occupancy.above", 1, Duration::from_secs(10)).await;
    assert_eq!(above.len(), 1);
    assert_eq!((above[0].1["data"]["occupancy"].as_i64(), above[0].1["data"]["capacity"].as_i64()), (Some(8), Some(5)));
    // 5 is at the capacity but not below 90 % of it: no change.
    app.ingest_owned(&[("cnt-1".into(), minute(3), 0, 3)]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.events("occupancy.below").is_empty());
    app.ingest_owned(&[("cnt-1".into(), minute(2), 0, 2)]);
    let below = receiver.wait_for("occupancy.below", 1, Duration::from_secs(10)).await;
    assert_eq!(below.len(), 1);
    assert_eq!(below[0].1["data"]["occupancy"], 3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.events("occupancy.above").len(), 1, "one event per crossing");
}

async fn a_silent_device_fires_and_recovers_but_not_while_closed(backend: Backend) {
    let app = TestApp::spawn_with(backend, fast_alerts()).await;
    app.cli_ok(&["store", "add", "open", "--timezone", "UTC", "--hours", "24/7"], None);
    app.cli_ok(&["store", "add", "closed", "--timezone", "UTC", "--hours", "Mo-Su off"], None);
    // Subscribed before the devices exist: a device that never sent is silent from its first check.
    let (receiver, url) = Receiver::start(&[]).await;
    add_webhook(&app, &url, "device.silent,device.recovered");
    app.add_device("door", "open");
    app.add_device("quiet", "closed");
    let now = jiff::Timestamp::now();
    let minute = |ago: i64| {
        let at = jiff::Timestamp::from_second((now.as_second() / 60 - ago) * 60).unwrap();
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    app.ingest_owned(&[("door".into(), minute(45), 1, 1)]);
    let silent = receiver.wait_for("device.silent", 1, Duration::from_secs(10)).await;
    assert_eq!(silent.len(), 1);
    assert_eq!(silent[0].1["data"]["device_id"], "door");
    app.ingest_owned(&[("door".into(), minute(0), 1, 0)]);
    let recovered = receiver.wait_for("device.recovered", 1, Duration::from_secs(10)).await;
    assert_eq!(recovered.len(), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let silent = receiver.events("device.silent");
    assert_eq!(silent.len(), 1, "the closed store's device never is: {silent:?}");
}

async fn an_imbalanced_day_fires_once_per_device_and_store(backend: Backend) {
    let app = TestApp::spawn_with(backend, fast_alerts()).await;
    app.cli_ok(&["store", "add", "open", "--timezone", "UTC", "--hours", "24/7"], None);
    let (receiver, url) = Receiver::start(&[]).await;
    add_webhook(&app, &url, "count.imbalance");
    app.add_device("in-door", "open");
    app.add_device("out-door", "open");
    // Yesterday: the in-door counts 200 in and 100 out, the out-door 0 in and 100 out: each door is
    // imbalanced, the store (200 in, 200 out) is not.
    let yesterday = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().yesterday().unwrap();
    let ten = yesterday.at(10, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp();
    let mut bins = Vec::new();
    for n in 0..100 {
        let minute = (ten + jiff::SignedDuration::from_mins(n)).strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        bins.push(("in-door".to_owned(), minute.clone(), 2, 1));
        bins.push(("out-door".to_owned(), minute, 0, 1));
    }
    app.ingest_owned(&bins);
    receiver.wait_for("count.imbalance", 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = receiver.events("count.imbalance");
    let mut doors: Vec<(String, i64, i64)> = events
        .iter()
        .map(|(_, body)| {
            let data = &body["data"];
            assert_eq!(data["date"], yesterday.to_string());
            (
                data["device_id"].as_str().expect("a door, not the store").to_owned(),
                data["in_metric"].as_i64().unwrap(),
                data["out_metric"].as_i64().unwrap(),
            )
        })
        .collect();
    doors.sort();
    assert_eq!(
        doors,
        [("in-door".to_owned(), 200, 100), ("out-door".to_owned(), 0, 100)],
        "once each, not the balanced store"
    );
}
