//! `footfall-bench sensors`: sensors pushing in their own formats through the real server.
//!
//! 1. Throughput: `--sensors` sensors of mixed vendors (Xovis, Axis, Milesight, Hikvision, Irisys in
//!    turn), each pushing one-minute packages over `--connections` keep-alive connections for
//!    `--seconds`; pushes per second, median of `--runs` runs.
//! 2. Catch-up: one Xovis package holding a day of one-minute records (1440), pushed whole (after one
//!    unmeasured warm-up package); records per
//!    second end to end (parse, map, store, recompute), median of `--runs` packages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use footfall::api::auth::{hash_token, new_device_token};
use footfall::app::{self, ServerConfig};
use footfall::domain::catalog::NewStore;
use footfall::domain::sensors::{SensorConfig, Vendor};
use footfall::domain::{DeviceId, ResetTime, StoreCode};
use footfall::storage;
use serde_json::json;

/// The options of `footfall-bench sensors`.
#[derive(clap::Args, Debug)]
pub struct SensorArgs {
    /// Simulated sensors, vendors in turn.
    #[arg(long, default_value_t = 1000)]
    sensors: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Length of each throughput run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const VENDORS: [Vendor; 5] = [Vendor::Xovis, Vendor::Axis, Vendor::Milesight, Vendor::Hikvision, Vendor::Irisys];
/// 2024-03-01T00:00:00Z.
const EPOCH: i64 = 1_709_251_200;

struct Sensor {
    vendor: Vendor,
    serial: String,
    token: String,
}

/// One minute's package of `sensor` for minute `minute` (from [`EPOCH`]): its body and content type.
fn package(sensor: &Sensor, minute: i64, sequence: i64) -> (String, &'static str) {
    let start = EPOCH + minute * 60;
    let instant = jiff::Timestamp::from_second(start).expect("in range");
    let (entries, exits) = (minute % 7, minute % 5);
    match sensor.vendor {
        Vendor::Xovis => (
            json!({"logics_data": {"package_info": {"version": "5.0", "id": sequence, "agent_id": 1},
                "sensor_info": {"serial_number": sensor.serial, "type": "SINGLE_SENSOR"},
                "logics": [{"id": 1, "name": "Line", "info": "XLT_LINE_IN_OUT_COUNT", "geometries": [],
                    "records": [{"from": start * 1000, "to": (start + 60) * 1000, "samples": 1, "samples_expected": 1,
                        "counts": [{"id": 1, "name": "fw", "value": entries}, {"id": 2, "name": "bw", "value": exits}]}]}]}})
            .to_string(),
            "application/json",
        ),
        Vendor::Axis => (
            json!({"apiName": "Axis Retail Data", "apiVersion": "0.4", "data": {"measurements": [{"kind": "people-counts",
                "utcFrom": instant.to_string(), "items": [{"direction": "in", "count": entries}, {"direction": "out", "count": exits}]}]},
                "sensor": {"serial": sensor.serial, "timeZone": "UTC"}})
            .to_string(),
            "application/json",
        ),
        Vendor::Milesight => (
            json!({"device_info": {"device_sn": sensor.serial}, "line_periodic_data": [{"line": 1, "total": {"in": entries, "out": exits}}],
                "time_info": {"start_time": instant.to_string()}})
            .to_string(),
            "application/json",
        ),
        Vendor::Hikvision => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"1.0\" xmlns=\"urn:psialliance-org\">\
                 <macAddress>{}</macAddress><channelID>1</channelID><eventType>PeopleCounting</eventType>\
                 <peopleCounting><statisticalMethods>timeRange</statisticalMethods><TimeRange><startTime>{instant}</startTime>\
                 </TimeRange><enter>{entries}</enter><exit>{exits}</exit></peopleCounting></EventNotificationAlert>",
                sensor.serial
            ),
            "application/xml",
        ),
        Vendor::Irisys => (
            json!({"FriendlyDeviceSerial": sensor.serial, "CountLogs": [{"LogEntryId": sequence, "Timestamp": instant.to_string(),
                "Counts": [{"Name": "In", "RegisterId": 0, "Value": minute * 3}, {"Name": "Out", "RegisterId": 1, "Value": minute * 2}]}]})
            .to_string(),
            "application/json",
        ),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the benchmark.
pub async fn run(database: Option<String>, args: SensorArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("sensors.db").display()));
    let storage = storage::open(&url).await?;
    let store = StoreCode::parse("S1").map_err(anyhow::Error::msg)?;
    storage
        .add_store(NewStore {
            code: store.clone(),
            name: "Sensors".into(),
            timezone: "UTC".into(),
            reset: ResetTime::from_minutes(0).expect("midnight"),
            hours: None,
            capacity: None,
        })
        .await?;
    // The catch-up packages: one to warm up (not measured), then `runs` measured.
    let catch_up_sensors = args.runs + 1;
    let mut sensors = Vec::with_capacity(args.sensors + catch_up_sensors);
    for index in 0..args.sensors + catch_up_sensors {
        // The last sensors are Xovis ones for the catch-up packages.
        let vendor = if index >= args.sensors { Vendor::Xovis } else { VENDORS[index % VENDORS.len()] };
        let serial = format!("SN{index:06}");
        let token = new_device_token();
        let device_id = DeviceId::parse(&format!("sensor-{index}")).map_err(anyhow::Error::msg)?;
        let names = if vendor == Vendor::Irisys { (Some("In".into()), Some("Out".into())) } else { (None, None) };
        let config = SensorConfig::new(vendor, &serial, names, vec![], false).map_err(anyhow::Error::msg)?;
        storage.add_sensor(device_id, store.clone(), hash_token(&token), config).await?;
        sensors.push(Sensor { vendor, serial, token });
    }
    let catch_up: Vec<Sensor> = sensors.split_off(args.sensors);
    let sensors = Arc::new(sensors);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig { publish_interval: Duration::from_secs(15 * 60), ..ServerConfig::default() };
    let server = tokio::spawn(app::serve(storage.clone(), listener, config, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;

    println!(
        "footfall-bench sensors ({} build, {}): {} sensors of 5 vendors, {} connections",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        if url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" },
        args.sensors,
        args.connections
    );
    let mut rates = Vec::new();
    let next_minute = Arc::new(AtomicU64::new(0));
    for run in 0..args.runs {
        let pushes = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut workers = Vec::new();
        for worker in 0..args.connections {
            let (sensors, client, base) = (sensors.clone(), client.clone(), base.clone());
            let (pushes, failures, done, next_minute) =
                (pushes.clone(), failures.clone(), done.clone(), next_minute.clone());
            workers.push(tokio::spawn(async move {
                // Each worker pushes the next minute of its share of the sensors, round after round.
                while !done.load(Ordering::Relaxed) {
                    let minute = next_minute.fetch_add(1, Ordering::Relaxed) as i64;
                    for sensor in sensors.iter().skip(worker).step_by(args.connections) {
                        if done.load(Ordering::Relaxed) {
                            break;
                        }
                        let (body, content_type) = package(sensor, minute, minute + 1);
                        let response = client
                            .post(format!("{base}/api/ingest/{}", sensor.vendor.as_str()))
                            .bearer_auth(&sensor.token)
                            .header("content-type", content_type)
                            .body(body)
                            .send()
                            .await;
                        match response {
                            Ok(response) if response.status().is_success() => {
                                pushes.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        done.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = pushes.load(Ordering::Relaxed) as f64 / seconds;
        let failed = failures.load(Ordering::Relaxed);
        println!("  run {}: {rate:.0} pushes/s ({failed} failed)", run + 1);
        anyhow::ensure!(failed == 0, "{failed} pushes failed");
        rates.push(rate);
    }
    println!("mixed one-minute pushes: {:.0} pushes/s (median of {})  [target >= 5000]", median(rates), args.runs);

    // The throughput runs leave the WAL to checkpoint: let that settle so the catch-up packages are
    // measured on their own. The first package warms up (the server's heap grows to hold one).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut record_rates = Vec::new();
    for (run, sensor) in catch_up.iter().enumerate() {
        let records: Vec<_> = (0..1440)
            .map(|m: i64| {
                let from = (EPOCH + (run as i64 * 1440 + m) * 60) * 1000;
                json!({"from": from, "to": from + 60_000, "samples": 1, "samples_expected": 1,
                    "counts": [{"id": 1, "name": "fw", "value": m % 7}, {"id": 2, "name": "bw", "value": m % 5},
                               {"id": 3, "name": "fw-male", "value": 0}, {"id": 4, "name": "bw-male", "value": 0}]})
            })
            .collect();
        let body = json!({"logics_data": {"package_info": {"version": "5.0", "id": 1, "agent_id": 1},
            "sensor_info": {"serial_number": sensor.serial, "type": "SINGLE_SENSOR"},
            "logics": [{"id": 1, "name": "Line", "info": "XLT_LINE_IN_OUT_COUNT", "geometries": [], "records": records}]}})
        .to_string();
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/ingest/xovis"))
            .bearer_auth(&sensor.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(response.status().is_success(), "the day package failed: {}", response.text().await?);
        let rate = 1440.0 / seconds;
        if run == 0 {
            println!("  warm-up day package: {} bytes, {:.1} ms, {rate:.0} records/s", body.len(), seconds * 1000.0);
            continue;
        }
        println!("  day package {run}: {} bytes, {:.1} ms, {rate:.0} records/s", body.len(), seconds * 1000.0);
        record_rates.push(rate);
    }
    println!(
        "Xovis day package (1440 one-minute records): {:.0} records/s (median of {})  [target >= 200000]",
        median(record_rates),
        args.runs
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
