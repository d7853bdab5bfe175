//! MQTT ingestion against the real Mosquitto on 127.0.0.1:1883, including a broker restart.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};
use footfall::app::ServerConfig;

backend_tests!(
    mqtt_bins_are_stored_and_mismatched_topics_rejected,
    a_broker_restart_loses_nothing,
    vendor_mqtt_xovis_and_milesight_payloads_are_stored
);

const BROKER: (&str, u16) = ("127.0.0.1", 1883);
/// The tests share one broker and one restarts it: run them one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn broker_up() -> bool {
    tokio::net::TcpStream::connect(BROKER).await.is_ok()
}

async fn mqtt_available() -> bool {
    if broker_up().await {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but Mosquitto at {BROKER:?} is unreachable");
    eprintln!("SKIPPED: Mosquitto at {BROKER:?} is unreachable");
    false
}

/// A QoS 1 publisher with a persistent session, polling its event loop in the background through
/// broker outages.
fn publisher() -> AsyncClient {
    let mut options = MqttOptions::new(format!("footfall-test-pub-{:x}", rand::random::<u64>()), BROKER.0, BROKER.1);
    options.set_clean_session(false).set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    client
}

async fn spawn_with_mqtt(backend: Backend) -> TestApp {
    let client_id = format!("footfall-test-{:x}", rand::random::<u64>());
    let mqtt = Some(format!("mqtt://127.0.0.1:1883?client_id={client_id}"));
    let app = TestApp::spawn_with(backend, ServerConfig { mqtt, ..ServerConfig::immediate() }).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_device("cnt-2", "116500");
    app.add_user("analyst", "pw", &[]);
    app
}

fn payload(device: &str, minutes: std::ops::Range<u32>, entries: u32) -> Vec<u8> {
    let bins: Vec<_> = minutes
        .map(|m| json!({"device_id": device, "minute": format!("2023-10-26T{:02}:{:02}:00Z", 8 + m / 60, m % 60), "in": entries, "out": 0}))
        .collect();
    serde_json::to_vec(&bins).unwrap()
}

async fn total_in(app: &TestApp) -> i64 {
    let response = app
        .get(
            "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z&page_size=10000",
            Some(("analyst", "pw")),
        )
        .await;
    response.results().iter().map(|row| row["in_metric"].as_i64().unwrap()).sum()
}

async fn wait_for_total(app: &TestApp, expected: i64, within: Duration) -> i64 {
    let started = Instant::now();
    loop {
        let total = total_in(app).await;
        if total == expected || started.elapsed() > within {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes until the server's subscription is live (bins replace, so repeats are harmless).
async fn publish_first_batch(app: &TestApp, client: &AsyncClient, topic: &str, body: Vec<u8>, expected: i64) {
    for _ in 0..20 {
        client.publish(topic, QoS::AtLeastOnce, false, body.clone()).await.unwrap();
        if wait_for_total(app, expected, Duration::from_millis(500)).await == expected {
            return;
        }
    }
    panic!("the server never received {topic}");
}

async fn mqtt_bins_are_stored_and_mismatched_topics_rejected(backend: Backend) {
    // The lock first: the restart test stops the broker while it holds it.
    let _guard = ONE_AT_A_TIME.lock().await;
    if !mqtt_available().await {
        return;
    }
    let app = spawn_with_mqtt(backend).await;
    let client = publisher();
    publish_first_batch(&app, &client, "footfall/cnt-1/bins", payload("cnt-1", 0..10, 1), 10).await;

    // cnt-1's bins on cnt-2's topic are rejected whole; a single object is a batch of one.
    client.publish("footfall/cnt-2/bins", QoS::AtLeastOnce, false, payload("cnt-1", 10..20, 1)).await.unwrap();
    let single = json!({"device_id": "cnt-2", "minute": "2023-10-26T09:00:00Z", "in": 5, "out": 0});
    client.publish("footfall/cnt-2/bins", QoS::AtLeastOnce, false, serde_json::to_vec(&single).unwrap()).await.unwrap();
    assert_eq!(wait_for_total(&app, 15, Duration::from_secs(10)).await, 15);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(total_in(&app).await, 15, "the mismatched message stored nothing");
}

fn restart_broker_command(action: &str) {
    let status = match action {
        "stop" => std::process::Command::new("pkill").args(["-TERM", "-x", "mosquitto"]).status(),
        _ => std::process::Command::new("mosquitto").args(["-d", "-c", "/etc/mosquitto/mosquitto.conf"]).status(),
    };
    assert!(status.is_ok_and(|s| s.success()), "could not {action} mosquitto");
}

async fn a_broker_restart_loses_nothing(backend: Backend) {
    // The lock first: the restart test stops the broker while it holds it.
    let _guard = ONE_AT_A_TIME.lock().await;
    if !mqtt_available().await {
        return;
    }
    let app = spawn_with_mqtt(backend).await;
    let client = publisher();
    publish_first_batch(&app, &client, "footfall/cnt-1/bins", payload("cnt-1", 0..30, 1), 30).await;

    restart_broker_command("stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker_up().await {
        assert!(Instant::now() < deadline, "mosquitto did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Published while the broker is down: the publisher's session resends it.
    client.publish("footfall/cnt-2/bins", QoS::AtLeastOnce, false, payload("cnt-2", 0..30, 2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    restart_broker_command("start");
    assert_eq!(wait_for_total(&app, 90, Duration::from_secs(45)).await, 90, "bins sent across the restart arrived");

    client.publish("footfall/cnt-1/bins", QoS::AtLeastOnce, false, payload("cnt-1", 30..40, 3)).await.unwrap();
    assert_eq!(wait_for_total(&app, 120, Duration::from_secs(15)).await, 120, "ingestion continues after the restart");
}

/// Xovis and Milesight publish their own payloads under `footfall/<vendor>/...`; the serial picks the
/// device, an unknown serial is dropped and listed.
async fn vendor_mqtt_xovis_and_milesight_payloads_are_stored(backend: Backend) {
    use crate::vendors::{MILESIGHT, XOVIS_A, XOVIS_C, add_sensor, rows, visits};
    // The lock first: the restart test stops the broker while it holds it.
    let _guard = ONE_AT_A_TIME.lock().await;
    if !mqtt_available().await {
        return;
    }
    let client_id = format!("footfall-test-{:x}", rand::random::<u64>());
    let mqtt = Some(format!("mqtt://127.0.0.1:1883?client_id={client_id}"));
    let app = TestApp::spawn_with(backend, ServerConfig { mqtt, ..ServerConfig::immediate() }).await;
    app.add_store("s1", "UTC");
    app.add_user("analyst", "pw", &[]);
    add_sensor(&app, "pc2s", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:D3:27:CA"]);
    add_sensor(&app, "vs125", "s1", &["--vendor", "milesight", "--serial", "6537F28545220003"]);
    let client = publisher();
    // Each test run gets its own topics, so a retained or queued message of another run cannot interfere.
    let run = rand::random::<u32>();
    let mut milesight: serde_json::Value = serde_json::from_str(MILESIGHT).unwrap();
    milesight["line_periodic_data"][0]["total"] = json!({"in": 4, "out": 3});
    let xovis_day = ("2023-05-17T00:00:00Z", "2023-05-17T23:59:00Z");
    let started = Instant::now();
    loop {
        client
            .publish(format!("footfall/xovis/{run}/80:1F:12:D3:27:CA"), QoS::AtLeastOnce, false, XOVIS_A)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !visits(&app, xovis_day.0, xovis_day.1).await.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the server never received the Xovis package");
    }
    assert_eq!(visits(&app, xovis_day.0, xovis_day.1).await, rows(&[("2023-05-17T12:09:00+00:00", 1, 0)]));
    client.publish(format!("footfall/xovis/{run}/unknown"), QoS::AtLeastOnce, false, XOVIS_C).await.unwrap();
    client
        .publish(format!("footfall/milesight/{run}/6537F28545220003"), QoS::AtLeastOnce, false, milesight.to_string())
        .await
        .unwrap();
    let milesight_day = ("2026-07-31T00:00:00Z", "2026-07-31T23:59:00Z");
    let started = Instant::now();
    while visits(&app, milesight_day.0, milesight_day.1).await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "the server never received the Milesight report");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(visits(&app, milesight_day.0, milesight_day.1).await, rows(&[("2026-07-31T23:11:00+00:00", 4, 3)]));
    let unknown = app.cli_ok(&["device", "unknown"], None);
    assert!(unknown.contains("80:1F:12:D5:30:DC"), "{unknown}");
}
