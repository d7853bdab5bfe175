//! `TestApp`: a server on port 0 over a fresh database, the CLI pointed at the same database, and an
//! HTTP client. `backend_tests!` runs each listed test against every storage backend.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use footfall::app::{ServerConfig, serve_with_metrics};
use footfall::storage::{self, Storage};
use serde_json::Value;

// A submodule of the helpers so every test binary that includes them validates what it reads.
#[path = "schema.rs"]
pub mod schema;

pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(backend: Backend)` once per backend, as `sqlite::name` and
/// `postgres::name`. Without a reachable PostgreSQL the postgres variants say they were skipped,
/// except under CI=true, where they fail.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_available().await {
                        super::$name($crate::helpers::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

/// Whether PostgreSQL tests can run; panics under CI=true when they cannot.
pub async fn postgres_available() -> bool {
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_postgres::connect(POSTGRES_ADMIN_URL, tokio_postgres::NoTls),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable"
        );
        eprintln!("SKIPPED: PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable");
    }
    reachable
}

/// A fresh, empty database for one test.
pub async fn fresh_database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}", dir.path().join("footfall.db").display()), Some(dir))
        }
        Backend::Postgres => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "footfall_test_{}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                rand::random::<u32>()
            );
            let (client, connection) =
                tokio_postgres::connect(POSTGRES_ADMIN_URL, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            static COLLECTED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
            COLLECTED.get_or_init(|| drop_databases_of_finished_runs(&client)).await;
            client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            (format!("postgres://postgres@127.0.0.1:5432/{name}"), None)
        }
    }
}

/// Test databases are named after the test process; those of processes that have exited are dropped
/// (once per process), so repeated runs do not fill the server's disk.
async fn drop_databases_of_finished_runs(client: &tokio_postgres::Client) {
    if !std::path::Path::new("/proc/self").exists() {
        return; // no way to tell which runs have finished
    }
    let rows =
        client.query("SELECT datname FROM pg_database WHERE datname LIKE 'footfall\\_test\\_%'", &[]).await.unwrap();
    for row in rows {
        let name: &str = row.get(0);
        let pid = name.trim_start_matches("footfall_test_").split('_').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            // Another process may be dropping it too; either way it is gone.
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    pub database_url: String,
    pub client: reqwest::Client,
    pub storage: Arc<dyn Storage>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// A server that makes ingested data visible at once (`--publish-interval 0`).
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, ServerConfig::immediate()).await
    }

    pub async fn spawn_with(backend: Backend, config: ServerConfig) -> TestApp {
        let (database_url, dir) = fresh_database(backend).await;
        Self::spawn_on(backend, database_url, dir, config).await
    }

    /// A server over an existing database (several servers can share one).
    pub async fn spawn_on(
        backend: Backend,
        database_url: String,
        dir: Option<tempfile::TempDir>,
        config: ServerConfig,
    ) -> TestApp {
        Self::spawn_listening(backend, database_url, dir, config, None).await
    }

    /// A server over a fresh database that also serves `/metrics` on a metrics listener; returns it with
    /// that listener's base URL.
    pub async fn spawn_with_metrics_listener(backend: Backend, config: ServerConfig) -> (TestApp, String) {
        let (database_url, dir) = fresh_database(backend).await;
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_url = format!("http://{}", metrics.local_addr().unwrap());
        (Self::spawn_listening(backend, database_url, dir, config, Some(metrics)).await, metrics_url)
    }

    async fn spawn_listening(
        backend: Backend,
        database_url: String,
        dir: Option<tempfile::TempDir>,
        config: ServerConfig,
        metrics_listener: Option<tokio::net::TcpListener>,
    ) -> TestApp {
        let storage = storage::open(&database_url).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_metrics(storage.clone(), listener, metrics_listener, config, async {
            let _ = stopped.await;
        }));
        TestApp {
            backend,
            address,
            database_url,
            client: reqwest::Client::new(),
            storage,
            shutdown: Some(shutdown),
            server: Some(server),
            _dir: dir,
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Runs the `footfall` binary against this app's database.
    /// Runs the CLI on this server's database. On PostgreSQL the server shares request contexts between
    /// change notices, which arrive within milliseconds (a second at most): it is brought up to date
    /// before this returns, so that the test's next request sees what the command changed.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let output = run_cli(&self.database_url, args, stdin);
        if self.backend == Backend::Postgres
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| runtime.block_on(self.storage.catch_up())).unwrap();
        }
        output
    }

    /// Runs the CLI and panics with its output unless it succeeded; returns stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.cli(args, stdin);
        assert!(
            output.status.success(),
            "footfall {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn add_store(&self, code: &str, timezone: &str) {
        self.cli_ok(&["store", "add", code, "--timezone", timezone], None);
    }

    pub fn add_device(&self, device: &str, store: &str) -> String {
        let stdout = self.cli_ok(&["device", "add", device, "--store", store], None);
        stdout.lines().last().unwrap().to_owned()
    }

    /// Adds a user seeing `stores` (empty: all stores).
    pub fn add_user(&self, name: &str, password: &str, stores: &[&str]) {
        let joined = stores.join(",");
        let mut args = vec!["user", "add", name, "--password-stdin"];
        if stores.is_empty() {
            args.push("--all-stores");
        } else {
            args.extend(["--stores", &joined]);
        }
        self.cli_ok(&args, Some(&format!("{password}\n")));
    }

    /// Writes `content` to a file named `name` in a temporary directory and runs `footfall ingest` on it.
    pub fn ingest_file(&self, name: &str, content: &str) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        self.cli(&["ingest", path.to_str().unwrap()], None)
    }

    /// Ingests bins `(device, minute, in, out)` through the CLI as NDJSON and asserts success.
    pub fn ingest(&self, bins: &[(&str, &str, u32, u32)]) {
        let output = self.ingest_file("bins.ndjson", &ndjson(bins));
        assert!(output.status.success(), "ingest failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    pub fn publish(&self) {
        self.cli_ok(&["publish"], None);
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.address, path_and_query)
    }

    /// GET with optional Basic credentials; returns status, headers and the JSON body.
    pub async fn get(&self, path_and_query: &str, credentials: Option<(&str, &str)>) -> Response {
        let mut request = self.client.get(self.url(path_and_query));
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        Response::read("GET", request.send().await.unwrap()).await
    }

    /// GET with a raw Authorization header value.
    pub async fn get_with_authorization(&self, path_and_query: &str, authorization: &str) -> Response {
        let request = self.client.get(self.url(path_and_query)).header("Authorization", authorization);
        Response::read("GET", request.send().await.unwrap()).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub fn run_cli(database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .arg("--database")
        .arg(database_url)
        .args(args)
        .env_remove("FOOTFALL_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(stdin) = stdin {
        input.write_all(stdin.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn ndjson(bins: &[(&str, &str, u32, u32)]) -> String {
    bins.iter()
        .map(|(device, minute, entries, exits)| {
            format!("{{\"device_id\":\"{device}\",\"minute\":\"{minute}\",\"in\":{entries},\"out\":{exits}}}\n")
        })
        .collect()
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    /// Reads a response to a `method` request; its body must be JSON (or empty) and match the OpenAPI
    /// document (`schema::check`).
    pub async fn read(method: &str, response: reqwest::Response) -> Response {
        let status = response.status().as_u16();
        let path = response.url().path().to_owned();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        schema::check(method, &path, status, &headers, &body);
        Response { status, headers, body }
    }

    /// Asserts the contract's error shape and returns the code.
    pub fn error_code(&self) -> &str {
        let error_id = self.body["error_id"].as_str().expect("error_id");
        assert!(error_id.len() == 16 && error_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(self.body["detail"].is_string(), "detail: {}", self.body);
        assert_eq!(self.body.as_object().unwrap().len(), 3, "exactly detail, code, error_id: {}", self.body);
        self.body["code"].as_str().expect("code")
    }

    pub fn results(&self) -> &Vec<Value> {
        self.body["results"].as_array().expect("results")
    }
}

/// The credentials most tests use for their all-stores user.
pub const ANALYST: (&str, &str) = ("analyst", "s3cret");

impl TestApp {
    /// Adds a store with a non-default occupancy reset (`HH:MM`).
    pub fn add_store_with_reset(&self, code: &str, timezone: &str, reset: &str) {
        self.cli_ok(&["store", "add", code, "--timezone", timezone, "--occupancy-reset", reset], None);
    }

    /// Ingests owned bins (e.g. generated ones) in one NDJSON file and asserts success.
    pub fn ingest_owned(&self, bins: &[(String, String, u32, u32)]) {
        let borrowed: Vec<_> = bins.iter().map(|(d, m, i, o)| (d.as_str(), m.as_str(), *i, *o)).collect();
        self.ingest(&borrowed);
    }

    /// GET of an absolute URL built by the API (a `next` or `previous` link), which must point at this
    /// server.
    pub async fn follow(&self, url: &str, credentials: Option<(&str, &str)>) -> Response {
        let path = url.strip_prefix(&self.address).unwrap_or_else(|| panic!("{url} is not on {}", self.address));
        self.get(path, credentials).await
    }

    /// Follows `next` from `path_and_query` to the last page, asserting every page is a 200 with the same
    /// `count` and a `previous` link exactly when it is not the first. Returns the pages in order.
    pub async fn walk(&self, path_and_query: &str, credentials: Option<(&str, &str)>) -> Vec<Response> {
        let first = self.get(path_and_query, credentials).await;
        assert_eq!(first.status, 200, "{path_and_query}: {}", first.body);
        let count = first.body["count"].clone();
        let mut pages = vec![first];
        while let Some(next) = pages.last().unwrap().body["next"].as_str().map(str::to_owned) {
            let page = self.follow(&next, credentials).await;
            assert_eq!(page.status, 200, "{next}: {}", page.body);
            assert_eq!(page.body["count"], count, "{next}");
            assert!(page.body["previous"].is_string(), "{next} has no previous link");
            assert!(!page.results().is_empty(), "{next} is an empty page");
            pages.push(page);
            assert!(pages.len() < 100_000, "runaway walk");
        }
        pages
    }

    /// Every row of every page reached from `path_and_query` by following `next`.
    pub async fn walk_rows(&self, path_and_query: &str, credentials: Option<(&str, &str)>) -> Vec<Value> {
        let pages = self.walk(path_and_query, credentials).await;
        let rows: Vec<Value> = pages.iter().flat_map(|page| page.results().iter().cloned()).collect();
        assert_eq!(pages[0].body["count"].as_u64(), Some(rows.len() as u64), "count matches the rows walked");
        rows
    }
}

/// Percent-encodes a query parameter value (so `+03:00` survives the trip).
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `/api/bi/acquisition-metrics/{endpoint}/?datetime_gte=..&datetime_lte=..` plus `extra` (`&`-joined,
/// already encoded) when not empty. The bounds are encoded.
pub fn metrics_path(endpoint: &str, gte: &str, lte: &str, extra: &str) -> String {
    let mut path =
        format!("/api/bi/acquisition-metrics/{endpoint}/?datetime_gte={}&datetime_lte={}", encode(gte), encode(lte));
    if !extra.is_empty() {
        path.push('&');
        path.push_str(extra);
    }
    path
}

impl Response {
    /// The `minute` of every result row.
    pub fn minutes(&self) -> Vec<String> {
        self.results().iter().map(|row| row["minute"].as_str().expect("minute").to_owned()).collect()
    }
}

/// A self-signed certificate for `localhost`, as PEM files in a temporary directory, and clients that
/// trust it.
pub struct TestCertificate {
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    pem: String,
}

impl TestCertificate {
    pub fn new() -> TestCertificate {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        TestCertificate { _dir: dir, cert, key, pem: certified.cert.pem() }
    }

    /// The `tls` of a [`ServerConfig`].
    pub fn tls(&self) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        Some((self.cert.clone(), self.key.clone()))
    }

    /// A client trusting the certificate, with `localhost` resolved to `app`'s port, and the port.
    pub fn client(&self, app: &TestApp) -> (reqwest::Client, String) {
        let port = app.address.rsplit(':').next().unwrap().to_owned();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap())
            .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
            .build()
            .unwrap();
        (client, port)
    }
}
