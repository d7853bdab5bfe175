//! The tower-http layers: request ids, compression, the JSON request log, and the timeout's JSON answer.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, Response, TestApp, TestCertificate, fresh_database, run_cli};
use footfall::app::ServerConfig;

const VISITS: &str =
    "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z";

async fn seeded() -> TestApp {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "right", &[]);
    app.ingest(&[("cnt-1", "2023-10-26T12:06:00Z", 3, 0), ("cnt-1", "2023-10-26T12:07:00Z", 1, 2)]);
    app
}

#[tokio::test]
async fn a_request_id_is_set_on_every_answer_and_the_clients_is_echoed() {
    let app = seeded().await;
    let first = app.get(VISITS, Some(("analyst", "right"))).await;
    let second = app.get("/no/such/path", None).await;
    let id = |response: &Response| response.headers["x-request-id"].to_str().unwrap().to_owned();
    let (first_id, second_id) = (id(&first), id(&second));
    assert_eq!(first_id.len(), 16, "{first_id}");
    assert!(first_id.bytes().all(|b| b.is_ascii_hexdigit()), "{first_id}");
    assert_ne!(first_id, second_id, "each request gets its own id");
    assert_eq!(second.status, 404, "error answers carry one too");

    let sent =
        app.client.get(app.url(VISITS)).basic_auth("analyst", Some("right")).header("x-request-id", "client-chosen-42");
    let echoed = Response::read("GET", sent.send().await.unwrap()).await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.headers["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn gzip_and_br_answers_decode_to_the_same_json() {
    let app = seeded().await;
    let plain = app.get(VISITS, Some(("analyst", "right"))).await;
    assert_eq!(plain.status, 200);
    assert!(plain.headers.get("content-encoding").is_none(), "no compression unless asked");
    for encoding in ["gzip", "br"] {
        let request =
            app.client.get(app.url(VISITS)).basic_auth("analyst", Some("right")).header("accept-encoding", encoding);
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-encoding"], encoding);
        let compressed = response.bytes().await.unwrap();
        let mut decoded = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut decoded).unwrap(),
            _ => brotli::Decompressor::new(&compressed[..], 4096).read_to_end(&mut decoded).unwrap(),
        };
        let body: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(body, plain.body, "{encoding}");
    }
}

#[tokio::test]
async fn a_slow_request_gets_the_json_408() {
    let config = ServerConfig { request_timeout: Duration::from_millis(300), ..ServerConfig::immediate() };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    app.add_store("116500", "Europe/Athens");
    let token = app.add_device("cnt-1", "116500");
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/ingest/bins HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await.unwrap().unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "request_timeout");
    assert!(body["detail"].is_string() && body["error_id"].as_str().is_some_and(|id| id.len() == 16), "{body}");
}

#[tokio::test]
async fn the_json_request_log_has_method_path_status_latency_and_user() {
    let (database_url, _dir) = fresh_database(Backend::Sqlite).await;
    run_cli(&database_url, &["user", "add", "analyst", "--password-stdin", "--all-stores"], Some("right\n"));
    let mut server = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["--database", &database_url, "serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // "footfall is serving URL on http://ADDRESS/ ..."
    let mut banner = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut banner).unwrap();
    let address = banner.split("http://").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let response = reqwest::Client::new()
        .get(format!("http://{address}/api/stores"))
        .basic_auth("analyst", Some("right"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refused = reqwest::Client::new().get(format!("http://{address}/api/stores")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let _ = server.kill();
    let mut stderr = String::new();
    server.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let _ = server.wait();

    let requests: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .filter(|line| line["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{stderr}");
    let signed_in = &requests[0]["span"];
    assert_eq!(signed_in["method"], "GET", "{stderr}");
    assert_eq!(signed_in["path"], "/api/stores");
    assert_eq!(signed_in["status"], 200);
    assert!(signed_in["latency_us"].as_u64().is_some(), "{signed_in}");
    assert_eq!(signed_in["user"], "analyst");
    assert!(signed_in["client"].as_str().is_some_and(|client| client.starts_with("127.0.0.1:")), "{signed_in}");
    let anonymous = &requests[1]["span"];
    assert_eq!(anonymous["status"], 401);
    assert!(anonymous["error_id"].as_str().is_some_and(|id| id.len() == 16), "the error id is logged: {anonymous}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes when stderr is not a terminal");
}

#[tokio::test]
async fn over_the_connection_cap_a_tls_client_gets_the_json_503_over_tls() {
    let certificate = TestCertificate::new();
    let limits = footfall::server::ConnectionLimits { max_connections: 1, ..Default::default() };
    let config = ServerConfig { tls: certificate.tls(), limits, ..ServerConfig::immediate() };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let (client, port) = certificate.client(&app);
    let url = format!("https://localhost:{port}/healthz");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200, "under the cap it serves");

    // A connection that never starts its handshake holds the one slot.
    let _held = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A new client: a new connection, not the pooled one.
    let (fresh_client, _) = certificate.client(&app);
    let refused = fresh_client.get(&url).send().await.expect("the refusal is readable over TLS");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "too_many_connections");
    assert!(body["error_id"].as_str().is_some_and(|id| id.len() == 16), "{body}");
}
