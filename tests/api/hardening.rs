//! Hardening: throttled sign-ins, equal timing for unknown users, TLS, limits, account and device
//! lifecycle, backup and check.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestCertificate};
use footfall::app::ServerConfig;
use footfall::server::ConnectionLimits;

backend_tests!(
    a_changed_password_is_verified_again_despite_the_cache,
    removed_users_and_devices_stop_working_at_once_and_bins_stay,
    check_passes_on_a_consistent_store_and_after_late_data_and_corrections,
);

const VISITS: &str =
    "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z";

async fn seeded(backend: Backend, config: ServerConfig) -> (TestApp, String) {
    let app = TestApp::spawn_with(backend, config).await;
    app.add_store("116500", "Europe/Athens");
    let token = app.add_device("cnt-1", "116500");
    app.add_user("analyst", "right", &[]);
    app.ingest(&[("cnt-1", "2023-10-26T12:06:00Z", 3, 0)]);
    (app, token)
}

async fn a_changed_password_is_verified_again_despite_the_cache(backend: Backend) {
    let (app, _) = seeded(backend, ServerConfig::immediate()).await;
    assert_eq!(app.get(VISITS, Some(("analyst", "right"))).await.status, 200); // now cached
    app.cli_ok(&["user", "passwd", "analyst", "--password-stdin"], Some("new\n"));
    assert_eq!(
        app.get(VISITS, Some(("analyst", "right"))).await.status,
        401,
        "the cached old password no longer works"
    );
    assert_eq!(app.get(VISITS, Some(("analyst", "new"))).await.status, 200);
    assert!(!app.cli(&["user", "passwd", "ghost", "--password-stdin"], Some("x")).status.success());
}

async fn removed_users_and_devices_stop_working_at_once_and_bins_stay(backend: Backend) {
    let (app, token) = seeded(backend, ServerConfig::immediate()).await;
    app.add_user("other", "pw", &[]);
    assert_eq!(app.get(VISITS, Some(("other", "pw"))).await.status, 200);
    app.cli_ok(&["user", "remove", "other"], None);
    assert_eq!(app.get(VISITS, Some(("other", "pw"))).await.error_code(), "authentication_failed");

    let post = |token: String| {
        let request = app.client.post(app.url("/api/ingest/bins")).bearer_auth(token).json(&serde_json::json!([
            {"device_id": "cnt-1", "minute": "2023-10-26T12:07:00Z", "in": 1, "out": 0}
        ]));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(token.clone()).await, 200);
    app.cli_ok(&["device", "remove", "cnt-1"], None);
    assert_eq!(post(token).await, 401, "the removed device's token stops working");
    let refused = app.ingest_file("late.ndjson", &crate::helpers::ndjson(&[("cnt-1", "2023-10-26T12:08:00Z", 1, 0)]));
    assert!(!refused.status.success(), "a removed device cannot send through the CLI either");
    let rows = app.get(VISITS, Some(("analyst", "right"))).await;
    assert_eq!(rows.body["count"], 2, "its bins stay: {}", rows.body);
    assert_eq!(app.get(&format!("{VISITS}&device_id=cnt-1"), Some(("analyst", "right"))).await.body["count"], 2);
    assert!(app.cli_ok(&["device", "list"], None).contains("(removed)"));
    assert!(!app.cli(&["device", "remove", "cnt-1"], None).status.success(), "removing twice is refused");
}

async fn check_passes_on_a_consistent_store_and_after_late_data_and_corrections(backend: Backend) {
    let (app, _) = seeded(backend, ServerConfig::immediate()).await;
    app.ingest(&[("cnt-1", "2023-10-26T12:00:00Z", 5, 1), ("cnt-1", "2023-10-26T12:06:00Z", 0, 0)]);
    app.cli_ok(&["occupancy", "set", "116500", "--at", "2023-10-26T12:03:00Z", "--value", "9"], None);
    app.publish();
    let report = app.cli_ok(&["check"], None);
    assert!(report.starts_with("ok: 1 rollup rows in 1 store-days"), "{report}");
}

#[tokio::test]
async fn check_detects_a_tampered_rollup_and_backup_copies_everything() {
    let (app, _) = seeded(Backend::Sqlite, ServerConfig::immediate()).await;
    app.publish();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    app.cli_ok(&["backup", copy.to_str().unwrap()], None);
    assert!(!app.cli(&["backup", copy.to_str().unwrap()], None).status.success(), "never overwrites");
    let copy_url = format!("sqlite://{}", copy.display());
    let copied = crate::helpers::run_cli(&copy_url, &["check"], None);
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    assert!(String::from_utf8_lossy(&copied.stdout).starts_with("ok: 1 rollup rows"));

    let path = app.database_url.strip_prefix("sqlite://").unwrap().to_owned();
    let connection = rusqlite::Connection::open(path).unwrap();
    // An hour rollup row that no longer adds up to its minutes.
    assert_eq!(connection.execute("UPDATE store_rollups SET entries = entries + 1 WHERE level = 1", []).unwrap(), 1);
    let output = app.cli(&["check"], None);
    assert!(!output.status.success());
    let problems = String::from_utf8_lossy(&output.stderr);
    assert!(problems.contains("1 hour or day rollup rows differ"), "{problems}");
    connection.execute("UPDATE store_rollups SET entries = entries - 1 WHERE level = 1", []).unwrap();
    assert!(app.cli(&["check"], None).status.success());

    connection.execute("UPDATE store_minutes SET occupancy = occupancy + 1", []).unwrap();
    let output = app.cli(&["check"], None);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("occupancy"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// When a busy client's cache entry expires, all its connections miss at once: they must not each run
/// an argon2 verification (each costs 19 MiB and a blocking thread), while wrong passwords are each
/// still verified in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_the_same_credentials_costs_one_verification() {
    use base64::Engine;
    use futures_util::future::join_all;
    let (app, _) = seeded(Backend::Sqlite, ServerConfig::immediate()).await;
    let authenticator = footfall::api::auth::Authenticator::default();
    let header = |password: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("analyst:{password}")))
    };
    let right = header("right");
    let burst = (0..32).map(|_| authenticator.authenticate(app.storage.as_ref(), Some(right.as_bytes()), None));
    let results = join_all(burst).await;
    assert!(results.iter().all(Result::is_ok), "every request of the burst is let in");
    // One verification per core may start before the first one fills the cache; no more.
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    let verified = authenticator.verifications();
    assert!((1..=cores).contains(&verified), "{verified} verifications for one burst");

    let wrong: Vec<String> = (0..4).map(|n| header(&format!("wrong-{n}"))).collect();
    let attempts = wrong.iter().map(|h| authenticator.authenticate(app.storage.as_ref(), Some(h.as_bytes()), None));
    let results = join_all(attempts).await;
    assert!(results.iter().all(|r| r.as_ref().is_err_and(|e| e.code == "authentication_failed")));
    assert_eq!(authenticator.verifications(), verified + 4, "no wrong password is answered from the cache");
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    let (app, _) = seeded(Backend::Sqlite, ServerConfig::immediate()).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get(VISITS, Some(("analyst", "wrong"))).await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    let throttled = app.get(VISITS, Some(("analyst", "right"))).await;
    assert_eq!(throttled.status, 429, "while blocked, even the right password waits");
    assert_eq!(throttled.error_code(), "throttled");
    let retry_after: u64 = throttled.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after));
    // Other users are not affected by one name's block...
    app.add_user("colleague", "pw", &[]);
    assert_eq!(app.get(VISITS, Some(("colleague", "pw"))).await.status, 200);
    // ...and the legitimate user is back after the short first block.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(app.get(VISITS, Some(("analyst", "right"))).await.status, 200);
}

#[tokio::test]
async fn tls_serves_https_with_https_links() {
    let certificate = TestCertificate::new();
    let config = ServerConfig { tls: certificate.tls(), ..ServerConfig::immediate() };
    let (app, _) = seeded(Backend::Sqlite, config).await;
    let (client, port) = certificate.client(&app);
    let url = format!("https://localhost:{port}{VISITS}&page_size=1");
    let response = client.get(&url).basic_auth("analyst", Some("right")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["count"], 1);
    // Plain HTTP to the TLS port gets nowhere.
    assert!(app.client.get(app.url(VISITS)).send().await.is_err());
}

#[tokio::test]
async fn overlong_queries_get_414_and_slow_requests_408() {
    let config = ServerConfig { request_timeout: Duration::from_millis(500), ..ServerConfig::immediate() };
    let (app, token) = seeded(Backend::Sqlite, config).await;
    let long = format!("{VISITS}&padding={}", "x".repeat(5000));
    let response = app.get(&long, Some(("analyst", "right"))).await;
    assert_eq!((response.status, response.error_code()), (414, "query_too_long"));

    // A body that never finishes arriving.
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/ingest/bins HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"));
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_connections_are_bounded() {
    let limits =
        ConnectionLimits { max_connections: 2, header_read_timeout: Duration::from_millis(500), ..Default::default() };
    let (app, _) = seeded(Backend::Sqlite, ServerConfig { limits, ..ServerConfig::immediate() }).await;
    let address = app.address.trim_start_matches("http://").to_owned();

    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap(); // never finishes its headers
    let _idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "too_many_connections");
    // Written by the accept loop, not by ApiError: it must still be what the document declares.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("retry-after", "1".parse().unwrap());
    crate::helpers::schema::check("GET", "/healthz", 503, &headers, &body);

    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closes a connection whose headers do not arrive");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Sends a visits request for two rows, one per page, as if relayed by a proxy with these headers.
async fn relayed(app: &TestApp, username: &str, password: &str, forwarded: &[(&str, &str)]) -> reqwest::Response {
    let path = VISITS.to_owned() + "&page_size=1";
    let mut request = app.client.get(app.url(&path)).basic_auth(username, Some(password));
    for (name, value) in forwarded {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_gives_the_client_scheme_host_and_address() {
    let proxies = footfall::forwarded::TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let config = ServerConfig { trusted_proxies: proxies, auth_failures_per_minute: 1, ..ServerConfig::immediate() };
    let (app, _) = seeded(Backend::Sqlite, config).await;
    app.ingest(&[("cnt-1", "2023-10-26T12:07:00Z", 1, 0)]);
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "footfall.example.com")];
    let page: serde_json::Value = relayed(&app, "analyst", "right", &forwarded).await.json().await.unwrap();
    let next = page["next"].as_str().unwrap();
    assert!(next.starts_with("https://footfall.example.com/api/bi/acquisition-metrics/visits/?"), "{next}");

    // Throttling counts the client's address, not the proxy's: one address using up its failures
    // (four, under different names) does not block another client behind the same proxy.
    let from = |address: &'static str| [("x-forwarded-for", address)];
    for name in ["u0", "u1", "u2", "u3"] {
        assert_eq!(relayed(&app, name, "wrong", &from("203.0.113.1")).await.status(), 401);
    }
    assert_eq!(relayed(&app, "u4", "wrong", &from("203.0.113.1")).await.status(), 429);
    assert_eq!(relayed(&app, "u5", "wrong", &from("203.0.113.2")).await.status(), 401);
    assert_eq!(relayed(&app, "analyst", "right", &from("203.0.113.2")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_from_anyone_else_are_ignored() {
    let config = ServerConfig { auth_failures_per_minute: 1, ..ServerConfig::immediate() };
    let (app, _) = seeded(Backend::Sqlite, config).await;
    app.ingest(&[("cnt-1", "2023-10-26T12:07:00Z", 1, 0)]);
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example")];
    let page: serde_json::Value = relayed(&app, "analyst", "right", &forwarded).await.json().await.unwrap();
    let next = page["next"].as_str().unwrap();
    assert!(next.starts_with(&app.url("/api/")), "{next}");

    // A made-up X-Forwarded-For on each attempt does not escape the per-address throttle.
    for (name, address) in [("u0", "192.0.2.1"), ("u1", "192.0.2.2"), ("u2", "192.0.2.3"), ("u3", "192.0.2.4")] {
        assert_eq!(relayed(&app, name, "wrong", &[("x-forwarded-for", address)]).await.status(), 401);
    }
    assert_eq!(relayed(&app, "u4", "wrong", &[("x-forwarded-for", "192.0.2.5")]).await.status(), 429);
}

/// Bins a crash left in the SQLite inbox (appended while a publication ran, not yet moved) are pending
/// when the store is opened again, the later of two copies of a key winning, and moved only once.
#[tokio::test]
async fn bins_a_crash_left_in_the_inbox_are_pending_after_a_restart() {
    let app = TestApp::spawn_with(Backend::Sqlite, ServerConfig::default()).await;
    app.add_store("athens", "Europe/Athens");
    app.add_device("ath-1", "athens");
    app.add_user("analyst", "pw", &[]);
    let device = app.storage.catalog().await.unwrap().device_by_id("ath-1").unwrap().key;
    let path = app.database_url.strip_prefix("sqlite://").unwrap().to_owned();
    let inbox = rusqlite::Connection::open(format!("{path}-inbox")).unwrap();
    let minute = 1_698_321_600; // 2023-10-26T12:00:00Z
    for entries in [3, 5] {
        inbox
            .execute(
                "INSERT INTO inbox_bins (device_id, minute, entries, exits, received_at) VALUES (?1, ?2, ?3, 1, 0)",
                rusqlite::params![device.0, minute, entries],
            )
            .unwrap();
    }

    let reopened = footfall::storage::open(&app.database_url).await.unwrap();
    let state = reopened.publication().await.unwrap();
    assert_eq!(state.pending_bins, 1, "the two copies of one key are one pending bin");
    let left: i64 = inbox.query_row("SELECT count(*) FROM inbox_bins", [], |row| row.get(0)).unwrap();
    assert_eq!(left, 0, "moved rows leave the inbox");
    drop(reopened);
    let again = footfall::storage::open(&app.database_url).await.unwrap();
    again.publish(jiff::Timestamp::now(), None).await.unwrap().unwrap();
    let state = again.publication().await.unwrap();
    assert_eq!((state.pending_bins, state.published_bins), (0, 1));
    let response = app
        .get(
            "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z",
            Some(("analyst", "pw")),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let rows = response.body["results"].as_array().unwrap();
    assert_eq!((rows.len(), rows[0]["in_metric"].as_u64()), (1, Some(5)), "{rows:?}");
}
