//! `footfall-bench reports`: the reports of issue 12 on a database of every-minute traffic: one store's
//! year by day, a month of 100 stores by day (one page), and a CSV export of every minute row with the
//! process's memory watched while it streams. docs/benchmarks.md explains each figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use axum::http::{Request, header};
use base64::Engine;
use futures_util::StreamExt;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;
use tower::ServiceExt;

use footfall::api::auth::{Authenticator, hash_password, hash_token};
use footfall::api::page_cache::PageCache;
use footfall::api::{AppState, VISITS_PATH, router};
use footfall::app::{self, ServerConfig};
use footfall::domain::bins::Bin;
use footfall::domain::catalog::{NewScope, NewStore, NewUser};
use footfall::domain::{Counts, DeviceId, Minute, ResetTime, StoreCode, Username};
use footfall::storage;

#[derive(clap::Args, Debug)]
pub struct ReportsArgs {
    /// Stores, one device each, counting every minute.
    #[arg(long, default_value_t = 100)]
    pub stores: usize,
    /// Days of traffic of every store; the first store has a whole year.
    #[arg(long, default_value_t = 35)]
    pub days: i64,
    /// Sequential requests per latency measurement.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

const ZONES: [&str; 4] = ["Europe/Athens", "America/New_York", "Asia/Tokyo", "UTC"];
const USER: &str = "bench";

#[derive(Serialize)]
struct Report {
    stores: usize,
    minute_rows: u64,
    ingest_seconds: f64,
    publish_seconds: f64,
    year_by_day: Latency,
    month_of_all_stores_by_day: Latency,
    csv_export: CsvReport,
}

#[derive(Serialize)]
struct Latency {
    rows: u64,
    server_p50_ms: f64,
    server_p90_ms: f64,
    http_p50_ms: f64,
}

#[derive(Serialize)]
struct CsvReport {
    rows: u64,
    bytes: u64,
    seconds: f64,
    rows_per_s: f64,
    rss_before_mib: f64,
    rss_peak_mib: f64,
    rss_growth_mib: f64,
}

/// This process's resident set, from /proc.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[index].as_secs_f64() * 1e3
}

pub async fn run(database: Option<String>, args: ReportsArgs) -> anyhow::Result<()> {
    ensure!(args.stores > 0 && args.days > 30 && args.requests > 0, "--stores > 0, --days > 30, --requests > 0");
    let work_dir = tempfile::tempdir()?;
    let url = database.unwrap_or_else(|| format!("sqlite://{}", work_dir.path().join("reports.db").display()));
    let storage = storage::open(&url).await?;
    ensure!(storage.catalog().await?.stores().is_empty(), "{url} already has stores: it must be empty");

    // Every store counts every minute of its days (so every minute is a row); the first one for a year.
    let end = Minute::first_at_or_after("2024-12-31T00:00:00Z".parse()?);
    let mut codes = Vec::new();
    for index in 0..args.stores {
        let code = StoreCode::parse(&format!("R{:04}", index + 1)).map_err(anyhow::Error::msg)?;
        let store = NewStore {
            code: code.clone(),
            name: code.as_str().to_owned(),
            timezone: ZONES[index % ZONES.len()].into(),
            reset: ResetTime::MIDNIGHT,
            hours: None,
            capacity: None,
        };
        storage.add_store(store).await?;
        let device = DeviceId::parse(&format!("{}-a", code.as_str())).map_err(anyhow::Error::msg)?;
        storage.add_device(device, code.clone(), hash_token(&format!("{index:032x}"))).await?;
        codes.push(code);
    }
    let catalog = storage.catalog().await?;
    let started = Instant::now();
    let mut minute_rows = 0u64;
    for (index, code) in codes.iter().enumerate() {
        let device = catalog.device_by_id(&format!("{}-a", code.as_str())).expect("just added").key;
        let days = if index == 0 { 366 } else { args.days };
        let minutes = days * 1440;
        let first = end.plus_minutes(-minutes);
        let bins: Vec<Bin> = (0..minutes)
            .map(|n| {
                let counts = Counts { entries: 1 + (n * 7 + index as i64) as u32 % 5, exits: (n * 3) as u32 % 6 };
                Bin { device, minute: first.plus_minutes(n), counts }
            })
            .collect();
        minute_rows += bins.len() as u64;
        for batch in bins.chunks(100_000) {
            storage.ingest(batch.to_vec(), Timestamp::now()).await?;
        }
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    eprintln!("bench: ingested {minute_rows} bins in {ingest_seconds:.1} s; publishing ...");
    let started = Instant::now();
    storage.publish(Timestamp::now(), None).await?;
    let publish_seconds = started.elapsed().as_secs_f64();
    eprintln!("bench: published in {publish_seconds:.1} s");

    let password = format!("{:032x}", rand::random::<u128>());
    let user = NewUser {
        username: Username::parse(USER).map_err(anyhow::Error::msg)?,
        password_hash: hash_password(&password),
        scope: NewScope::All,
        can_ingest: false,
    };
    storage.add_user(user).await?;
    let authorization =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let config = ServerConfig { response_cache_bytes: 0, ..ServerConfig::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(storage.clone(), listener, config.clone(), async {
        let _ = stopped.await;
    }));
    let in_process = router(Arc::new(AppState {
        storage: storage.clone(),
        authenticator: Authenticator::default(),
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
        max_query_bytes: config.max_query_bytes,
        scheme: "http",
        default_host: address.to_string(),
        metrics_token: None,
        cors_allowed_origins: Vec::new(),
        page_cache: PageCache::new(0),
    }));
    let client = reqwest::Client::new();
    let base = format!("http://{address}");

    let year = (end.timestamp() - (366 * 24).hours(), end.timestamp() - 1.minute());
    let year_path = format!(
        "{VISITS_PATH}?store_code={}&granularity=day&page_size=400&datetime_gte={}&datetime_lte={}",
        codes[0].as_str(),
        year.0,
        year.1
    );
    let month = (end.timestamp() - (30 * 24).hours(), end.timestamp() - 1.minute());
    let month_path =
        format!("{VISITS_PATH}?granularity=day&page_size=10000&datetime_gte={}&datetime_lte={}", month.0, month.1);
    let mut latencies = Vec::new();
    for path in [&year_path, &month_path] {
        let mut server_samples = Vec::with_capacity(args.requests);
        let mut http_samples = Vec::with_capacity(args.requests);
        let mut rows = 0;
        for round in 0..=args.requests {
            let request = Request::builder()
                .uri(path.as_str())
                .header(header::HOST, address.to_string())
                .header(header::AUTHORIZATION, &authorization)
                .body(axum::body::Body::empty())?;
            let started = Instant::now();
            let response = in_process.clone().oneshot(request).await?;
            ensure!(response.status() == 200, "GET {path}: {}", response.status());
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            let elapsed = started.elapsed();
            let started = Instant::now();
            let over_http = client.get(format!("{base}{path}")).header(header::AUTHORIZATION, &authorization).send();
            let over_http = over_http.await?.bytes().await?;
            let http_elapsed = started.elapsed();
            ensure!(over_http == body, "GET {path}: the HTTP answer differs");
            if round == 0 {
                let page: serde_json::Value = serde_json::from_slice(&body)?;
                rows = page["count"].as_u64().unwrap_or(0);
                continue; // warm-up
            }
            server_samples.push(elapsed);
            http_samples.push(http_elapsed);
        }
        latencies.push(Latency {
            rows,
            server_p50_ms: percentile(&mut server_samples, 0.5),
            server_p90_ms: percentile(&mut server_samples, 0.9),
            http_p50_ms: percentile(&mut http_samples, 0.5),
        });
    }

    // The export of every minute row, streamed; the resident set sampled meanwhile.
    let all = (end.timestamp() - (400 * 24).hours(), end.timestamp());
    let csv_path = format!("{VISITS_PATH}?format=csv&datetime_gte={}&datetime_lte={}", all.0, all.1);
    let rss_before = rss_mib();
    let peak = Arc::new(std::sync::Mutex::new(rss_before));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let now = rss_mib();
                {
                    let mut peak = peak.lock().unwrap();
                    *peak = peak.max(now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let response = client.get(format!("{base}{csv_path}")).header(header::AUTHORIZATION, &authorization).send().await?;
    ensure!(response.status() == 200, "GET {csv_path}: {}", response.status());
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await?;
    let rows = lines - 1; // the header
    ensure!(rows == minute_rows, "the export has {rows} rows, expected {minute_rows}");
    let rss_peak = *peak.lock().unwrap();
    let csv_export = CsvReport {
        rows,
        bytes,
        seconds,
        rows_per_s: rows as f64 / seconds,
        rss_before_mib: rss_before,
        rss_peak_mib: rss_peak,
        rss_growth_mib: rss_peak - rss_before,
    };
    let _ = stop.send(());
    server.await??;

    let [year_by_day, month_of_all_stores_by_day]: [Latency; 2] =
        latencies.try_into().map_err(|_| anyhow::anyhow!("two measurements"))?;
    let report = Report {
        stores: args.stores,
        minute_rows,
        ingest_seconds,
        publish_seconds,
        year_by_day,
        month_of_all_stores_by_day,
        csv_export,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let row = |name: &str, latency: &Latency, target: f64| {
            println!(
                "{name:<40} {:>6} rows  server p50 {:>7.3} ms  p90 {:>7.3} ms  http p50 {:>7.3} ms  (target {target} ms: {})",
                latency.rows,
                latency.server_p50_ms,
                latency.server_p90_ms,
                latency.http_p50_ms,
                if latency.server_p50_ms <= target { "met" } else { "MISSED" }
            )
        };
        println!(
            "{} stores, {} minute rows; ingest {ingest_seconds:.1} s, publish {publish_seconds:.1} s",
            args.stores, minute_rows
        );
        row("one store, one year, granularity=day", &report.year_by_day, 2.0);
        row("all stores, one month, granularity=day", &report.month_of_all_stores_by_day, 20.0);
        let csv = &report.csv_export;
        println!(
            "CSV export of every minute row: {} rows, {:.0} MB in {:.2} s = {:.0} rows/s (target 500000: {}); RSS {:.1} -> peak {:.1} MiB, +{:.1} MiB (target < 20: {})",
            csv.rows,
            csv.bytes as f64 / 1e6,
            csv.seconds,
            csv.rows_per_s,
            if csv.rows_per_s >= 500_000.0 { "met" } else { "MISSED" },
            csv.rss_before_mib,
            csv.rss_peak_mib,
            csv.rss_growth_mib,
            if csv.rss_growth_mib < 20.0 { "met" } else { "MISSED" },
        );
    }
    Ok(())
}
