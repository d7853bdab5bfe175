//! Crash tests: `kill -9` the server during a stream of HTTP ingests, and the CLI during a large
//! ingest. After a restart every acknowledged batch is there, no batch is half there, and
//! `footfall check` passes. A test binary of its own, because it runs the real binary as a child process.

#[path = "api/helpers.rs"]
mod helpers;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use footfall::app::ServerConfig;
use helpers::{ANALYST, Backend, TestApp, fresh_database, run_cli};

const BATCH: u32 = 200;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_server(database_url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args([
            "--database",
            database_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--publish-interval",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_until_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn minute(batch: u32, index: u32) -> String {
    let minutes = batch * BATCH + index;
    let at = jiff::Timestamp::from_second(1_698_278_400 + i64::from(minutes) * 60).unwrap(); // 2023-10-26
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The `in` of every visits row, by minute, as the API serves it after a restart.
async fn served_minutes(database_url: &str) -> std::collections::HashMap<String, i64> {
    let app = TestApp::spawn_on(Backend::Sqlite, database_url.to_owned(), None, ServerConfig::immediate()).await;
    let rows = app
        .walk_rows(
            "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-01-01T00:00:00Z&datetime_lte=2025-01-01T00:00:00Z&page_size=10000",
            Some(ANALYST),
        )
        .await;
    rows.iter()
        .map(|row| {
            let minute: jiff::Timestamp = row["minute"].as_str().unwrap().parse().unwrap();
            (minute.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), row["in_metric"].as_i64().unwrap())
        })
        .collect()
}

fn assert_check_passes(database_url: &str) {
    let check = run_cli(database_url, &["check"], None);
    assert!(
        check.status.success(),
        "footfall check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_http_ingests_loses_no_acknowledged_batch() {
    let (database_url, _dir) = fresh_database(Backend::Sqlite).await;
    assert!(run_cli(&database_url, &["store", "add", "116500", "--timezone", "Europe/Athens"], None).status.success());
    let token =
        String::from_utf8(run_cli(&database_url, &["device", "add", "cnt-1", "--store", "116500"], None).stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned();
    let user = run_cli(&database_url, &["user", "add", ANALYST.0, "--password-stdin", "--all-stores"], Some(ANALYST.1));
    assert!(user.status.success());

    let port = free_port();
    let mut server = spawn_server(&database_url, port);
    wait_until_up(port).await;

    // Senders: batch b holds BATCH consecutive minutes, each with in = b + 1, so a batch can be told apart.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let sent = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = Vec::new();
    for sender in 0..4u32 {
        let (acknowledged, sent, token) = (acknowledged.clone(), sent.clone(), token.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for round in 0.. {
                let batch = round * 4 + sender;
                let bins: Vec<_> = (0..BATCH)
                    .map(|i| serde_json::json!({"device_id": "cnt-1", "minute": minute(batch, i), "in": batch + 1, "out": 0}))
                    .collect();
                sent.lock().unwrap().insert(batch);
                let response = client
                    .post(format!("http://127.0.0.1:{port}/api/ingest/bins"))
                    .bearer_auth(&token)
                    .json(&bins)
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
                        acknowledged.lock().unwrap().insert(batch);
                    }
                    _ => return, // the server is gone
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 5, "the stream ran before the kill ({} batches)", acknowledged.len());
    eprintln!("{} batches acknowledged of {} sent before the kill", acknowledged.len(), sent.lock().unwrap().len());

    let served = served_minutes(&database_url).await;
    for &batch in sent.lock().unwrap().iter() {
        let present = (0..BATCH).filter(|&i| served.get(&minute(batch, i)) == Some(&i64::from(batch + 1))).count();
        if acknowledged.contains(&batch) {
            assert_eq!(present, BATCH as usize, "acknowledged batch {batch} is whole");
        } else {
            assert!(
                present == 0 || present == BATCH as usize,
                "unacknowledged batch {batch} is {present}/{BATCH} there"
            );
        }
    }
    assert_eq!(served.len() % BATCH as usize, 0);
    assert_check_passes(&database_url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_large_cli_ingest_leaves_the_file_all_or_nothing() {
    let (database_url, dir) = fresh_database(Backend::Sqlite).await;
    let dir = dir.unwrap();
    assert!(run_cli(&database_url, &["store", "add", "116500", "--timezone", "Europe/Athens"], None).status.success());
    assert!(run_cli(&database_url, &["device", "add", "cnt-1", "--store", "116500"], None).status.success());
    assert!(
        run_cli(&database_url, &["user", "add", ANALYST.0, "--password-stdin", "--all-stores"], Some(ANALYST.1))
            .status
            .success()
    );
    // A first file that completes, then a large one killed part-way.
    let small: String = (0..BATCH).map(|i| helpers::ndjson(&[("cnt-1", &minute(0, i), 1, 0)])).collect();
    std::fs::write(dir.path().join("small.ndjson"), small).unwrap();
    let done = run_cli(&database_url, &["ingest", dir.path().join("small.ndjson").to_str().unwrap()], None);
    assert!(done.status.success());

    let large: String = (0..600_000u32).map(|i| helpers::ndjson(&[("cnt-1", &minute(1, i), 7, 0)])).collect();
    let large_path = dir.path().join("large.ndjson");
    std::fs::write(&large_path, large).unwrap();
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["--database", &database_url, "ingest", large_path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let finished_first = ingest.try_wait().unwrap().is_some();
    let _ = ingest.kill();
    ingest.wait().unwrap();

    assert!(run_cli(&database_url, &["publish"], None).status.success());
    let served = served_minutes(&database_url).await;
    assert!((0..BATCH).all(|i| served.get(&minute(0, i)) == Some(&1)), "the completed file is there");
    let large_rows = served.values().filter(|&&entries| entries == 7).count();
    assert!(large_rows == 0 || large_rows == 600_000, "the killed file is {large_rows}/600000 there");
    if !finished_first {
        eprintln!("killed mid-ingest; the large file has {large_rows} rows");
    }
    assert_check_passes(&database_url);
}
