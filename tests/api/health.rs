//! Opening hours, capacity and device health (issue 14, first part): silence only while open,
//! completeness, count balance per device and per store, learned hours, scope.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp};

backend_tests!(
    hours_and_capacity_are_set_listed_and_cleared,
    health_flags_silence_completeness_and_imbalance,
    hours_are_learned_from_three_of_the_last_four_weeks,
);

/// The UTC minute `ago` minutes before `now`, as a bin's minute.
fn minute(now: jiff::Timestamp, ago: i64) -> String {
    let at = jiff::Timestamp::from_second((now.as_second() / 60 - ago) * 60).unwrap();
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn hours_and_capacity_are_set_listed_and_cleared(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.cli_ok(
        &[
            "store",
            "add",
            "116500",
            "--timezone",
            "Europe/Athens",
            "--hours",
            "Mo-Fr 09:00-21:00;Sa 10:00-20:00",
            "--capacity",
            "120",
        ],
        None,
    );
    app.add_store("220310", "America/New_York");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let stores = app.get("/api/stores", Some(ANALYST)).await;
    let first = &stores.results()[0];
    assert_eq!(first["opening_hours"], "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off", "canonical form");
    assert_eq!(first["capacity"], 120);
    assert_eq!(
        (stores.results()[1]["opening_hours"].clone(), stores.results()[1]["capacity"].clone()),
        (Value::Null, Value::Null)
    );

    let refused = app.cli(&["store", "set", "116500", "--hours", "Mo-Fx 09:00-21:00"], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("\"Fx\": unknown weekday"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let refused = app.cli(&["store", "set", "116500", "--capacity", "many"], None);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--capacity"));

    app.cli_ok(&["store", "set", "116500", "--hours", "learned", "--capacity", "none"], None);
    let listed = app.cli_ok(&["store", "list", "--format", "json"], None);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!((listed[0]["opening_hours"].clone(), listed[0]["capacity"].clone()), (Value::Null, Value::Null));
    app.cli_ok(&["store", "set", "220310", "--hours", "24/7"], None);
    let stores = app.get("/api/stores", Some(ANALYST)).await;
    assert_eq!(stores.results()[1]["opening_hours"], "24/7");
}

async fn health_flags_silence_completeness_and_imbalance(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = jiff::Timestamp::now();
    // Days are local: in a zone where it is about noon, the last three hours fall on one day whenever
    // the test runs (in UTC, a run at 01:30 split door-b's counts over two days, neither imbalanced).
    let zone = zone_at_about_noon(now);
    app.cli_ok(&["store", "add", "open", "--timezone", &zone, "--hours", "24/7"], None);
    app.cli_ok(&["store", "add", "closed", "--timezone", &zone, "--hours", "Mo-Su off"], None);
    for (device, store) in [("door-a", "open"), ("door-b", "open"), ("quiet", "closed")] {
        app.add_device(device, store);
    }
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.add_user("limited", "pw", &["closed"]);
    let mut bins = Vec::new();
    // door-a: every minute of the last two hours, 2 in and 2 out: complete and balanced.
    for ago in 0..120 {
        bins.push(("door-a".to_owned(), minute(now, ago), 2, 2));
    }
    // door-b: silent for the last hour; before, 200 in and 100 out: imbalanced on its own.
    for ago in 61..161 {
        bins.push(("door-b".to_owned(), minute(now, ago), 2, 1));
    }
    app.ingest_owned(&bins);

    let health = app.get("/api/devices/health?days=2", Some(ANALYST)).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["count"], 2);
    let (closed, open) = (&health.results()[0], &health.results()[1]);
    assert_eq!((open["store_code"].as_str(), open["open_now"].as_bool()), (Some("open"), Some(true)));
    let device = |store: &Value, id: &str| {
        store["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == id).unwrap().clone()
    };
    let sum = |device: &Value, key: &str| {
        device["days"].as_array().unwrap().iter().map(|day| day[key].as_i64().unwrap()).sum::<i64>()
    };
    let (a, b) = (device(open, "door-a"), device(open, "door-b"));
    assert_eq!(a["silent"], false, "{a}");
    assert_eq!(sum(&a, "minutes_with_data"), 120);
    assert_eq!(b["silent"], true, "{b}");
    assert!(b["open_minutes_without_data"].as_i64().unwrap() >= 60, "{b}");
    assert_eq!((sum(&b, "in_metric"), sum(&b, "out_metric")), (200, 100));
    let b_flagged = b["days"].as_array().unwrap().iter().any(|day| day["imbalanced"] == true);
    let a_flagged = a["days"].as_array().unwrap().iter().any(|day| day["imbalanced"] == true);
    assert!(b_flagged && !a_flagged, "{b} {a}");
    // The store over both doors: 440 in, 340 out.
    let store_in: i64 = open["days"].as_array().unwrap().iter().map(|day| day["in_metric"].as_i64().unwrap()).sum();
    assert_eq!(store_in, 440);
    assert_eq!(open["silent_devices"], 1);
    // A store that is never open has no silent device, however long without data.
    let quiet = device(closed, "quiet");
    assert_eq!((quiet["silent"].as_bool(), quiet["last_bin"].clone()), (Some(false), Value::Null));
    assert_eq!(sum(&quiet, "open_minutes"), 0);

    // A longer silence setting clears it.
    let relaxed = app.get("/api/devices/health?store_code=open&silence_minutes=90", Some(ANALYST)).await;
    assert_eq!(device(&relaxed.results()[0], "door-b")["silent"], false);
    let wrong = app.get("/api/devices/health?days=99", Some(ANALYST)).await;
    assert_eq!((wrong.status, wrong.error_code()), (400, "invalid_parameter"));

    // Users see only their stores' devices.
    let limited = app.get("/api/devices/health", Some(("limited", "pw"))).await;
    assert_eq!(limited.body["count"], 1);
    let hidden = app.get("/api/devices/health?store_code=open", Some(("limited", "pw"))).await;
    assert_eq!((hidden.status, hidden.error_code()), (404, "store_code_not_found"));

    let listed = app.cli_ok(&["device", "health", "--store", "open"], None);
    let line = listed.lines().find(|line| line.contains("door-b")).unwrap();
    assert!(line.contains("SILENT"), "{listed}");
}

/// A fixed-offset zone (`Etc/GMT±N`, whose sign is POSIX's, inverted) where `now` is between 11:00 and
/// 13:00.
fn zone_at_about_noon(now: jiff::Timestamp) -> String {
    let utc_hour = now.as_second().rem_euclid(86_400) / 3600;
    let offset = (12 - utc_hour + 36) % 24 - 12;
    match offset {
        0 => "UTC".to_owned(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

async fn hours_are_learned_from_three_of_the_last_four_weeks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("usual", "UTC");
    app.add_store("rare", "UTC");
    app.add_device("usual-1", "usual");
    app.add_device("rare-1", "rare");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let now = jiff::Timestamp::now();
    let week = 7 * 1440;
    let mut bins = Vec::new();
    // The current hour had counts on 3 of the last 4 same weekdays at the usual store, on 2 at the rare one.
    for weeks in 1..=3 {
        bins.push(("usual-1".to_owned(), minute(now, weeks * week), 1, 0));
    }
    for weeks in 1..=2 {
        bins.push(("rare-1".to_owned(), minute(now, weeks * week), 1, 0));
    }
    app.ingest_owned(&bins);
    app.publish();
    let health = app.get("/api/devices/health?days=1", Some(ANALYST)).await;
    let (rare, usual) = (&health.results()[0], &health.results()[1]);
    assert_eq!((usual["hours_learned"].as_bool(), usual["open_now"].as_bool()), (Some(true), Some(true)), "{usual}");
    assert_eq!((rare["hours_learned"].as_bool(), rare["open_now"].as_bool()), (Some(true), Some(false)), "{rare}");
    // Open now and nothing today: the usual store's device is silent once its open hour has run long
    // enough; the rare store's never is.
    assert_eq!(rare["devices"][0]["silent"], false);
}
