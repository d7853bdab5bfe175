//! Retention: `footfall prune --before DATE` and `serve` with `retention_minute_days` delete old
//! published minute data, whole store-days at a time, and `footfall check` still passes.

use std::time::{Duration, Instant};

use footfall::app::ServerConfig;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, fresh_database, metrics_path, ndjson, run_cli};

backend_tests!(
    prune_removes_whole_store_days_and_check_still_passes,
    prune_refuses_a_bad_or_future_date_and_removes_nothing,
    serve_prunes_past_the_retention_at_start,
);

const GTE: &str = "2023-10-20T00:00:00Z";
const LTE: &str = "2023-10-28T00:00:00Z";

/// Athens with its occupancy reset at 04:00 (so its night belongs to the previous day) and a UTC
/// store, with bins over three days and a correction on the first.
async fn app_with_three_days(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.add_store_with_reset("ath", "Europe/Athens", "04:00");
    app.add_store("utc", "UTC");
    app.add_device("ath-1", "ath");
    app.add_device("utc-1", "utc");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.ingest(&[
        ("ath-1", "2023-10-24T10:00:00Z", 3, 0),
        // 02:30 local on the 26th: before the 04:00 reset, so the 25th's store-day.
        ("ath-1", "2023-10-25T23:30:00Z", 2, 1),
        ("ath-1", "2023-10-26T10:00:00Z", 5, 1),
        ("ath-1", "2023-10-26T10:01:00Z", 0, 2),
        ("utc-1", "2023-10-25T12:00:00Z", 1, 0),
        ("utc-1", "2023-10-26T00:00:00Z", 4, 1),
    ]);
    app.cli_ok(&["occupancy", "set", "ath", "--at", "2023-10-24T10:00:00Z", "--value", "7"], None);
    app
}

async fn rows(app: &TestApp, endpoint: &str) -> Vec<Value> {
    app.walk_rows(&metrics_path(endpoint, GTE, LTE, ""), Some(ANALYST)).await
}

fn assert_check_passes(app: &TestApp, rows: u64, days: u64) {
    let check = app.cli_ok(&["check"], None);
    assert!(check.contains(&format!("ok: {rows} rollup rows in {days} store-days")), "{check}");
}

async fn prune_removes_whole_store_days_and_check_still_passes(backend: Backend) {
    let app = app_with_three_days(backend).await;
    assert_check_passes(&app, 6, 5);
    let occupancy_before = rows(&app, "occupancy").await;

    let stdout = app.cli_ok(&["prune", "--before", "2023-10-26"], None);
    assert_eq!(
        stdout.trim(),
        "pruned published minute data before local date 2023-10-26: removed 3 bins, 3 rollup rows in 3 \
         store-days and 1 occupancy corrections, minutes 2023-10-24T10:00:00Z to 2023-10-25T23:30:00Z"
    );
    assert_check_passes(&app, 3, 2);
    let visits = rows(&app, "visits").await;
    let visits: Vec<(&str, &str)> =
        visits.iter().map(|row| (row["store_code"].as_str().unwrap(), row["minute"].as_str().unwrap())).collect();
    assert_eq!(
        visits,
        [
            ("ath", "2023-10-26T13:00:00+03:00"),
            ("ath", "2023-10-26T13:01:00+03:00"),
            ("utc", "2023-10-26T00:00:00+00:00")
        ]
    );
    // The days kept are untouched, their occupancy included.
    let kept: Vec<&Value> = occupancy_before
        .iter()
        .filter(|row| {
            row["minute"].as_str().unwrap() >= "2023-10-26T00" && row["minute"] != "2023-10-26T02:30:00+03:00"
        })
        .collect();
    assert_eq!(rows(&app, "occupancy").await.iter().collect::<Vec<_>>(), kept);
    let status = app.get("/api/status", Some(ANALYST)).await;
    assert_eq!(status.body["bins_published"], 3, "{}", status.body);
    let corrections = app.cli_ok(&["occupancy", "corrections", "ath"], None);
    assert!(!corrections.contains("2023-10-24"), "{corrections}");

    // Nothing left before that date: a second prune removes nothing and says so.
    let again = app.cli_ok(&["prune", "--before", "2023-10-26"], None);
    assert!(again.contains("removed 0 bins, 0 rollup rows in 0 store-days"), "{again}");
    assert!(!again.contains("minutes"), "{again}");
    // A datetime keeps the store-day holding it.
    let stdout = app.cli_ok(&["prune", "--before", "2023-10-26T12:00:00Z"], None);
    assert!(stdout.contains("removed 0 bins"), "{stdout}");
    // Late bins for a pruned day are published again, and stay consistent.
    app.ingest(&[("utc-1", "2023-10-25T13:00:00Z", 1, 1)]);
    assert_check_passes(&app, 4, 3);
}

async fn prune_refuses_a_bad_or_future_date_and_removes_nothing(backend: Backend) {
    let app = app_with_three_days(backend).await;
    for (before, message) in [
        ("yesterday", "\"yesterday\" is neither a date"),
        ("2023-13-01", "is neither a date"),
        ("2999-01-01", "is in the future"),
    ] {
        let output = app.cli(&["prune", "--before", before], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{before}");
        assert!(stderr.contains("--before") && stderr.contains(message), "{before}: {stderr}");
    }
    assert_eq!(rows(&app, "visits").await.len(), 6);
    assert_check_passes(&app, 6, 5);
}

async fn serve_prunes_past_the_retention_at_start(backend: Backend) {
    let (url, dir) = fresh_database(backend).await;
    let cli = |args: &[&str], stdin: Option<&str>| {
        let output = run_cli(&url, args, stdin);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    cli(&["store", "add", "utc", "--timezone", "UTC"], None);
    cli(&["device", "add", "utc-1", "--store", "utc"], None);
    cli(&["user", "add", ANALYST.0, "--password-stdin", "--all-stores"], Some(ANALYST.1));
    let recent = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let recent = recent.strftime("%Y-%m-%dT%H:%M:00Z").to_string();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("bins.ndjson");
    let bins =
        [("utc-1", "2023-10-26T12:00:00Z", 3, 1), ("utc-1", "2023-10-26T12:01:00Z", 1, 0), ("utc-1", &recent, 2, 0)];
    std::fs::write(&file, ndjson(&bins)).unwrap();
    cli(&["ingest", file.to_str().unwrap()], None);
    cli(&["publish"], None);

    let config = ServerConfig { retention_minute_days: Some(30), ..ServerConfig::immediate() };
    let app = TestApp::spawn_on(backend, url.clone(), dir, config).await;
    let old = metrics_path("visits", "2023-10-26T00:00:00Z", "2023-10-27T00:00:00Z", "");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.get(&old, Some(ANALYST)).await;
        assert_eq!(response.status, 200, "{}", response.body);
        if response.body["count"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the old minutes were not pruned at start: {}", response.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let kept = app.get(&metrics_path("visits", "2023-01-01T00:00:00Z", &now, ""), Some(ANALYST)).await;
    assert_eq!(kept.body["count"], 1, "the recent minute is kept: {}", kept.body);
    assert_check_passes(&app, 1, 1);
}
