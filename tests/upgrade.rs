//! A database written by the footfall of commit 4c339bb (schema version 1, dumped in
//! tests/fixtures/upgrade by generate.sh) opens with this binary, migrates, loses nothing, and passes
//! `footfall check`, on both engines; a database newer than this binary is refused.

#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use footfall::app::ServerConfig;
use footfall::domain::publication::PublicationPolicy;
use footfall::storage;
use helpers::{Backend, TestApp, fresh_database, metrics_path};
use serde_json::Value;

backend_tests!(a_version_1_database_upgrades_without_losing_anything, a_database_newer_than_the_binary_is_refused);

const ANALYST: (&str, &str) = ("analyst", "analyst-password");
const ATHENS: (&str, &str) = ("athens", "athens-password");

/// Loads the version-1 dump of `backend` into a fresh database; returns its URL.
async fn load_fixture(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_database(backend).await;
    let dump = match backend {
        Backend::Sqlite => include_str!("fixtures/upgrade/sqlite-v1.sql"),
        Backend::Postgres => include_str!("fixtures/upgrade/postgres-v1.sql"),
    };
    execute_batch(backend, &url, dump).await;
    (url, dir)
}

/// Runs `sql` (several statements) on the database at `url`, behind footfall's back.
async fn execute_batch(backend: Backend, url: &str, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap();
            rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(sql).await.unwrap();
        }
    }
}

/// The schema versions recorded in the database.
async fn schema_versions(backend: Backend, url: &str) -> Vec<i64> {
    let sql = "SELECT version FROM schema_migrations ORDER BY version";
    match backend {
        Backend::Sqlite => {
            let connection = rusqlite::Connection::open(url.strip_prefix("sqlite://").unwrap()).unwrap();
            let mut statement = connection.prepare(sql).unwrap();
            statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query(sql, &[]).await.unwrap().iter().map(|row| row.get(0)).collect()
        }
    }
}

/// `(store_code, minute, in, out)` of the visits rows, and `(store_code, minute, occupancy)` of the
/// occupancy rows, on 2023-10-26.
async fn day(
    app: &TestApp,
    credentials: (&str, &str),
) -> (Vec<(String, String, i64, i64)>, Vec<(String, String, i64)>) {
    let (gte, lte) = ("2023-10-26T00:00:00Z", "2023-10-27T23:59:00Z");
    let visits = app.walk_rows(&metrics_path("visits", gte, lte, ""), Some(credentials)).await;
    let occupancy = app.walk_rows(&metrics_path("occupancy", gte, lte, ""), Some(credentials)).await;
    let s = |value: &Value| value.as_str().unwrap().to_owned();
    (
        visits
            .iter()
            .map(|r| {
                (
                    s(&r["store_code"]),
                    s(&r["minute"]),
                    r["in_metric"].as_i64().unwrap(),
                    r["out_metric"].as_i64().unwrap(),
                )
            })
            .collect(),
        occupancy
            .iter()
            .map(|r| (s(&r["store_code"]), s(&r["minute"]), r["occupancy_metric"].as_i64().unwrap()))
            .collect(),
    )
}

fn visit(store: &str, minute: &str, entries: i64, exits: i64) -> (String, String, i64, i64) {
    (store.to_owned(), minute.to_owned(), entries, exits)
}

fn inside(store: &str, minute: &str, occupancy: i64) -> (String, String, i64) {
    (store.to_owned(), minute.to_owned(), occupancy)
}

async fn a_version_1_database_upgrades_without_losing_anything(backend: Backend) {
    let (url, dir) = load_fixture(backend).await;
    assert_eq!(schema_versions(backend, &url).await, [1]);
    // Scheduled far out: the pending bin of the fixture must stay pending through the reads below.
    let config = ServerConfig { publish_interval: Duration::from_secs(365 * 86_400), ..Default::default() };
    let app = TestApp::spawn_on(backend, url.clone(), dir, config).await;
    // PostgreSQL's step 10 added the notes of bins written straight into `bins`.
    let steps = match backend {
        Backend::Sqlite => 9,
        Backend::Postgres => 10,
    };
    assert_eq!(schema_versions(backend, &url).await, (1..=steps).collect::<Vec<i64>>(), "every migration step applied");
    // Step 2 added the stored publication policy, at its default.
    assert_eq!(app.storage.publication_policy().await.unwrap(), PublicationPolicy::default());
    // Step 3 added API tokens: none yet, and an upgraded user can be given one.
    assert!(app.storage.api_tokens().await.unwrap().is_empty());
    let token = app.cli_ok(&["token", "add", "upgraded", "--user", ANALYST.0], None).lines().last().unwrap().to_owned();
    let stores = app.get_with_authorization("/api/stores", &format!("Bearer {token}")).await;
    assert_eq!(stores.status, 200, "{}", stores.body);
    assert_eq!(stores.body["count"], 2, "{}", stores.body);

    let check = app.cli_ok(&["check"], None);
    assert!(check.contains("5 rollup rows in 2 store-days"), "{check}");

    let (visits, occupancy) = day(&app, ANALYST).await;
    assert_eq!(
        visits,
        [
            visit("ath", "2023-10-26T13:00:00+03:00", 3, 0),
            visit("ath", "2023-10-26T13:01:00+03:00", 3, 1),
            visit("ath", "2023-10-26T13:02:00+03:00", 0, 2),
            visit("ny", "2023-10-26T10:00:00-04:00", 4, 1),
            visit("ny", "2023-10-26T10:05:00-04:00", 1, 3),
        ]
    );
    // The correction (10 at 13:01 in Athens) survives.
    assert_eq!(
        occupancy,
        [
            inside("ath", "2023-10-26T13:00:00+03:00", 3),
            inside("ath", "2023-10-26T13:01:00+03:00", 10),
            inside("ath", "2023-10-26T13:02:00+03:00", 8),
            inside("ny", "2023-10-26T10:00:00-04:00", 3),
            inside("ny", "2023-10-26T10:05:00-04:00", 1),
        ]
    );
    // Step 7 filled the hour and day rollups from the published minutes.
    let by_day = metrics_path("occupancy", "2023-10-26T00:00:00Z", "2023-10-26T23:59:00Z", "granularity=day");
    let days = app.walk_rows(&by_day, Some(ANALYST)).await;
    assert_eq!(days.len(), 2, "{days:?}");
    assert_eq!((days[0]["occupancy_metric"].as_i64(), days[0]["max_occupancy_metric"].as_i64()), (Some(8), Some(10)));
    let hours =
        metrics_path("visits", "2023-10-26T00:00:00Z", "2023-10-26T23:59:00Z", "granularity=hour&store_code=ny");
    let hours = app.walk_rows(&hours, Some(ANALYST)).await;
    assert_eq!(hours.len(), 1);
    assert_eq!((hours[0]["in_metric"].as_i64(), hours[0]["out_metric"].as_i64()), (Some(5), Some(4)));
    // Step 8 added opening hours and capacity: none set, hours learned.
    let stores = app.get("/api/stores", Some(ANALYST)).await;
    assert_eq!(stores.results()[0]["opening_hours"], serde_json::Value::Null);
    assert_eq!(stores.results()[0]["capacity"], serde_json::Value::Null);
    // Users keep their passwords and scopes.
    let (athens_visits, _) = day(&app, ATHENS).await;
    assert_eq!(athens_visits, visits[..3]);
    let corrections = app.cli_ok(&["occupancy", "corrections", "ath"], None);
    assert!(corrections.contains("10"), "{corrections}");

    // The removed device stays removed and the pending bin stays pending, then publishes.
    let devices = app.cli_ok(&["device", "list"], None);
    let ath_2 = devices.lines().find(|line| line.contains("ath-2")).expect("ath-2 is listed");
    assert!(ath_2.contains("removed"), "{devices}");
    let state = app.storage.publication().await.unwrap();
    assert_eq!((state.pending_bins, state.published_bins, state.mark.generation), (1, 6, 2));
    app.publish();
    let pending_day = metrics_path("visits", "2023-10-27T00:00:00Z", "2023-10-27T23:59:00Z", "");
    let rows = app.walk_rows(&pending_day, Some(ANALYST)).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["in_metric"], 5);
    let check = app.cli_ok(&["check"], None);
    assert!(check.contains("6 rollup rows in 3 store-days"), "{check}");
}

async fn a_database_newer_than_the_binary_is_refused(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    drop(storage::open(&url).await.unwrap());
    let current = schema_versions(backend, &url).await.len();
    // As a later footfall with 99 migration steps would leave it.
    execute_batch(backend, &url, "INSERT INTO schema_migrations (version) VALUES (99)").await;
    let error = storage::open(&url).await.err().expect("a newer schema is refused").to_string();
    assert!(error.contains("schema version 99"), "{error}");
    assert!(error.contains(&format!("newer than this footfall ({current})")), "{error}");
    assert_eq!(schema_versions(backend, &url).await.last(), Some(&99), "the refused database is left as it was");
}
