//! The publication policy lives in the database: `serve` records it, every process that ingests applies
//! it, and a read never publishes.

use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp};
use footfall::app::ServerConfig;

backend_tests!(
    a_cli_ingest_into_an_on_ingest_database_is_published_by_the_cli,
    a_cli_occupancy_correction_into_an_on_ingest_database_is_published_by_the_cli,
    a_read_never_publishes,
    an_on_ingest_server_publishes_what_was_pending_when_it_starts,
);

const VISITS: &str =
    "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z";

fn never() -> ServerConfig {
    ServerConfig { publish_interval: Duration::from_secs(365 * 86_400), ..Default::default() }
}

fn seed(app: &TestApp) {
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
}

/// Waits until `app`'s status reports `interval` as the database's policy: the server has recorded it.
async fn await_policy(app: &TestApp, interval: Duration) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.get("/api/status", Some(ANALYST)).await;
        assert_eq!(status.status, 200, "{}", status.body);
        if status.body["publish_interval_seconds"].as_u64() == Some(interval.as_secs()) {
            return;
        }
        assert!(Instant::now() < deadline, "the policy was not recorded: {}", status.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_cli_ingest_into_an_on_ingest_database_is_published_by_the_cli(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed(&app);
    await_policy(&app, Duration::ZERO).await;
    app.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0), ("cnt-1", "2023-10-26T08:01:00Z", 1, 0)]);
    // Published by the CLI itself, before any request could have done it.
    assert!(!app.storage.has_pending().await.unwrap(), "the CLI published its bins");
    let status = app.get("/api/status", Some(ANALYST)).await.body;
    assert_eq!((status["bins_pending"].as_u64(), status["bins_published"].as_u64()), (Some(0), Some(2)), "{status}");
    assert_eq!(status["next_publication"], serde_json::Value::Null);
    assert_eq!(app.get(VISITS, Some(ANALYST)).await.body["count"], 2);
}

async fn a_cli_occupancy_correction_into_an_on_ingest_database_is_published_by_the_cli(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed(&app);
    await_policy(&app, Duration::ZERO).await;
    app.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0)]);
    let generation = app.storage.publication_mark().await.unwrap().generation;
    let said = app.cli_ok(&["occupancy", "set", "116500", "--at", "2023-10-26T08:00:00Z", "--value", "3"], None);
    assert!(said.trim_end().ends_with("; published"), "{said}");
    assert!(app.storage.publication_mark().await.unwrap().generation > generation, "the CLI published its correction");
    let occupancy = "/api/bi/acquisition-metrics/occupancy/?store_code=116500&datetime_gte=2023-10-26T08:00:00Z&datetime_lte=2023-10-26T08:00:00Z";
    let body = app.get(occupancy, Some(ANALYST)).await.body;
    assert_eq!(body["results"][0]["occupancy_metric"], 3, "{body}");
}

async fn a_read_never_publishes(backend: Backend) {
    // A server started with `--publish-interval 0`, then a scheduled one over the same database: the
    // database's policy is now the schedule, and the first server's reads must not publish either.
    let on_ingest = TestApp::spawn(backend).await;
    seed(&on_ingest);
    await_policy(&on_ingest, Duration::ZERO).await;
    let scheduled = TestApp::spawn_on(backend, on_ingest.database_url.clone(), None, never()).await;
    await_policy(&on_ingest, never().publish_interval).await;
    on_ingest.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0), ("cnt-1", "2023-10-26T08:01:00Z", 1, 0)]);
    let generation = on_ingest.storage.publication_mark().await.unwrap().generation;
    for app in [&on_ingest, &scheduled] {
        let visits = app.get(VISITS, Some(ANALYST)).await;
        assert_eq!((visits.status, visits.body["count"].as_u64()), (200, Some(0)), "{}", visits.body);
        let status = app.get("/api/status", Some(ANALYST)).await.body;
        assert_eq!(
            (status["bins_pending"].as_u64(), status["bins_published"].as_u64()),
            (Some(2), Some(0)),
            "{status}"
        );
    }
    assert_eq!(on_ingest.storage.publication_mark().await.unwrap().generation, generation, "nothing was published");
    assert!(on_ingest.storage.has_pending().await.unwrap());
}

async fn an_on_ingest_server_publishes_what_was_pending_when_it_starts(backend: Backend) {
    let mut scheduled = TestApp::spawn_with(backend, never()).await;
    seed(&scheduled);
    await_policy(&scheduled, never().publish_interval).await;
    scheduled.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0)]);
    assert!(scheduled.storage.has_pending().await.unwrap(), "pending under the schedule");
    scheduled.stop().await;
    let on_ingest = TestApp::spawn_on(backend, scheduled.database_url.clone(), None, ServerConfig::immediate()).await;
    await_policy(&on_ingest, Duration::ZERO).await;
    assert!(!on_ingest.storage.has_pending().await.unwrap(), "published at start");
    assert_eq!(on_ingest.get(VISITS, Some(ANALYST)).await.body["count"], 1);
}
