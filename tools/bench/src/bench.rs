//! `footfall-bench bench`: generates a database of realistic traffic, ingests and publishes it, then serves it
//! in-process and measures the read API over keep-alive HTTP and, without the network, through the
//! router itself. docs/benchmarks.md explains each figure.
//!
//! The data: N stores in a few time zones with two entrances each, open about fourteen hours a day,
//! visitors arriving at a rate with lunch and evening peaks (more at weekends), entering through one
//! entrance and leaving 5 to 60 minutes later through either. Only minutes with a count are sent (as
//! sensors do), in arrival order: minute by minute, the devices of one minute shuffled.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::http::{Request, header};
use base64::Engine;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tower::ServiceExt;

use footfall::api::auth::{Authenticator, hash_password, hash_token};
use footfall::api::page_cache::PageCache;
use footfall::api::{AppState, OCCUPANCY_PATH, VISITS_PATH, router};
use footfall::app::{self, ServerConfig};
use footfall::demo::poisson;
use footfall::domain::bins::Bin;
use footfall::domain::catalog::{Catalog, NewScope, NewStore, NewUser};
use footfall::domain::keys::DeviceKey;
use footfall::domain::{Counts, DeviceId, Minute, ResetTime, StoreCode, Username};
use footfall::storage::{self, Storage};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Bins ingested through `Storage::ingest`, in batches.
    #[arg(long, default_value_t = 5_000_000)]
    pub bins: usize,
    /// Further bins ingested afterwards from one NDJSON file through the CLI code path (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    pub file_bins: usize,
    /// Stores, with two devices each.
    #[arg(long, default_value_t = 100)]
    pub stores: usize,
    /// Bins per `Storage::ingest` call.
    #[arg(long, default_value_t = 100_000)]
    pub batch: usize,
    /// Sequential requests per latency measurement.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Concurrent keep-alive connections for the throughput measurement.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds of the throughput measurement.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Samples of each page of the all-stores walk.
    #[arg(long, default_value_t = 20)]
    pub walk_samples: usize,
    /// Seed of the generated traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the results as one JSON object (on the last line of stdout) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run the server with metrics recorded (a metrics token), and scrape `/metrics` once at the end.
    #[arg(long)]
    pub metrics: bool,
}

/// Time zones the stores cycle through: both DST conventions, none, and a date-line-crossing one.
const ZONES: [&str; 5] = ["Europe/Athens", "America/New_York", "Asia/Tokyo", "Europe/London", "UTC"];
/// The first local day of traffic; a few weeks from here cross both the US and the EU DST change.
const FIRST_DAY: (i16, i8, i8) = (2024, 3, 1);
/// The day of the one-store-day query, as days after the first: a Friday, two weeks in (when the data
/// lasts six weeks or more).
const QUERY_DAY: i64 = 14;
const PAGE_SIZE: u64 = 10_000;
const BENCH_USER: &str = "bench";

pub async fn run(database: Option<String>, args: BenchArgs) -> anyhow::Result<()> {
    ensure!(
        args.bins > 0 && args.stores > 0 && args.batch > 0 && args.requests > 0 && args.connections > 0,
        "counts must be > 0"
    );
    ensure!(args.walk_samples > 0 && args.seconds > 0.0, "--walk-samples and --seconds must be > 0");
    let load_at_start = load_average();
    let work_dir = tempfile::tempdir()?;
    let url = database.unwrap_or_else(|| format!("sqlite://{}", work_dir.path().join("bench.db").display()));
    let storage = storage::open(&url).await?;
    ensure!(
        storage.catalog().await?.stores().is_empty(),
        "{url} already has stores: the benchmark needs an empty database"
    );

    // Data.
    progress(format_args!("generating {} + {} bins for {} stores ...", args.bins, args.file_bins, args.stores));
    let started = Instant::now();
    let plan = setup_catalog(storage.as_ref(), args.stores).await?;
    let catalog = storage.catalog().await?;
    let device_keys: Vec<[DeviceKey; 2]> = plan
        .iter()
        .map(|store| store.devices.each_ref().map(|id| catalog.device_by_id(id).expect("just added").key))
        .collect();
    let traffic = generate(&plan, &device_keys, args.bins + args.file_bins, args.seed)?;
    let (batched, from_file) = traffic.bins.split_at(args.bins);
    progress(format_args!(
        "generated {} bins over {} days in {:.1} s",
        traffic.bins.len(),
        traffic.days,
        started.elapsed().as_secs_f64()
    ));

    // Ingest in batches, as files arrive, then publish.
    let mut batch_seconds = Vec::new();
    for (index, batch) in batched.chunks(args.batch).enumerate() {
        let batch = batch.to_vec();
        let started = Instant::now();
        storage.ingest(batch, Timestamp::now()).await?;
        batch_seconds.push(started.elapsed().as_secs_f64());
        if index % 10 == 9 {
            progress(format_args!("ingested {} batches", index + 1));
        }
    }
    let ingest_seconds: f64 = batch_seconds.iter().sum();
    let mut batch_rates: Vec<f64> =
        batched.chunks(args.batch).zip(&batch_seconds).map(|(batch, s)| batch.len() as f64 / s).collect();
    let ingest = IngestReport {
        bins: batched.len(),
        batches: batch_seconds.len(),
        batch_size: args.batch,
        seconds: ingest_seconds,
        median_batch_bins_per_s: median(&mut batch_rates),
        overall_bins_per_s: batched.len() as f64 / ingest_seconds,
    };
    progress(format_args!("ingested {} bins at {:.0} bins/s; publishing ...", ingest.bins, ingest.overall_bins_per_s));
    // Small batches keep arriving from "sensors" while the backlog is published: what each waited.
    let late_minute = traffic.last.plus_minutes(200 * 1440);
    let (publish, ingest_during_publish) = publish_while_ingesting(&storage, device_keys[0][0], late_minute).await?;

    // The CLI file path: one NDJSON file, read, parsed, resolved and stored.
    let (cli_file, publish_after_file) = if from_file.is_empty() {
        (None, None)
    } else {
        let path = work_dir.path().join("bins.ndjson");
        let bytes = write_ndjson(&path, from_file, &catalog)?;
        progress(format_args!("ingesting {} records from a {:.0} MB NDJSON file ...", from_file.len(), mb(bytes)));
        let started = Instant::now();
        footfall::ingest::files::ingest_files(
            storage.as_ref(),
            &[path.display().to_string()],
            footfall::ingest::Format::Ndjson,
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        std::fs::remove_file(&path)?;
        let file =
            FileReport { records: from_file.len(), bytes, seconds, records_per_s: from_file.len() as f64 / seconds };
        (Some(file), Some(timed_publish(storage.as_ref()).await?))
    };

    // The server.
    let password = format!("{:032x}", rand::random::<u128>());
    storage
        .add_user(NewUser {
            username: Username::parse(BENCH_USER).map_err(anyhow::Error::msg)?,
            password_hash: hash_password(&password),
            scope: NewScope::All,
            can_ingest: false,
        })
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_token = args
        .metrics
        .then(|| footfall::config::MetricsToken::new(&format!("{:032x}", rand::random::<u128>())))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // No response cache: every request here is measured as a miss, the figures comparable over time.
    let config = ServerConfig {
        publish_interval: Duration::from_secs(15 * 60),
        metrics_token: metrics_token.clone(),
        response_cache_bytes: 0,
        ..ServerConfig::default()
    };
    let server_task = tokio::spawn(app::serve(storage.clone(), listener, config.clone(), async {
        let _ = stopped.await;
    }));
    // The same database behind a second server with the response cache on, as deployed.
    let cached_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let cached_address = cached_listener.local_addr()?;
    let (stop_cached, cached_stopped) = tokio::sync::oneshot::channel::<()>();
    let cached_config = ServerConfig { publish_interval: config.publish_interval, ..ServerConfig::default() };
    let cached_task = tokio::spawn(app::serve(storage.clone(), cached_listener, cached_config, async {
        let _ = cached_stopped.await;
    }));
    // The ceiling: the same server stack (footfall::server::run) answering one pre-rendered page.
    let static_body = Arc::new(std::sync::OnceLock::<axum::body::Bytes>::new());
    let static_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let static_address = static_listener.local_addr()?;
    let (stop_static, static_stopped) = tokio::sync::oneshot::channel::<()>();
    let body = static_body.clone();
    let static_router = axum::Router::new().route(
        "/page",
        axum::routing::get(move || {
            let body = body.get().cloned().unwrap_or_default();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let static_task = tokio::spawn(footfall::server::run(
        static_listener,
        static_router,
        None,
        config.limits.clone(),
        footfall::forwarded::TrustedProxies::default(),
        async {
            let _ = static_stopped.await;
        },
    ));
    let authorization =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{BENCH_USER}:{password}")));
    let target = Arc::new(Target {
        base: format!("http://{address}"),
        cached_base: format!("http://{cached_address}"),
        static_base: format!("http://{static_address}"),
        host: address.to_string(),
        authorization,
        client: reqwest::Client::builder().pool_max_idle_per_host(args.connections.max(16)).build()?,
        // The same application without the network: the server's own cost of a request.
        router: router(Arc::new(AppState {
            storage: storage.clone(),
            authenticator: Authenticator::default(),
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            max_query_bytes: config.max_query_bytes,
            scheme: "http",
            default_host: address.to_string(),
            metrics_token: config.metrics_token.clone(),
            cors_allowed_origins: Vec::new(),
            page_cache: PageCache::new(0),
        })),
    });

    let day = &plan[0];
    // With few bins there are few days: then a day a third of the way in.
    let query_day = QUERY_DAY.min(traffic.days / 3);
    let (gte, lte) = local_day_bounds(&day.timezone, query_day)?;
    let day_query = format!("store_code={}&datetime_gte={gte}&datetime_lte={lte}", day.code);
    let visits_path = format!("{VISITS_PATH}?{day_query}");
    let occupancy_path = format!("{OCCUPANCY_PATH}?{day_query}");

    progress(format_args!("measuring the one-store-day query ({} sequential requests each) ...", args.requests));
    let day_rows = target.count(&visits_path).await?;
    ensure!(day_rows > 0, "the one-store-day query is empty");
    let day_paths = [visits_path.as_str(), occupancy_path.as_str()];
    let [http_visits, http_occupancy] = pair(target.sequential(&day_paths, args.requests, Via::Http).await?);
    let [server_visits, server_occupancy] = pair(target.sequential(&day_paths, args.requests, Via::Router).await?);
    let visits = QueryReport { rows: day_rows, http: http_visits, server: server_visits };
    let occupancy =
        QueryReport { rows: target.count(&occupancy_path).await?, http: http_occupancy, server: server_occupancy };

    progress(format_args!("measuring throughput over {} connections for {} s ...", args.connections, args.seconds));
    let seconds = Duration::from_secs_f64(args.seconds);
    let same_path = visits_path.clone();
    let throughput = target.throughput(&target.base, move |_| same_path.clone(), args.connections, seconds).await?;

    progress(format_args!("measuring the response cache and the static-body ceiling ..."));
    let target_page = target.get(&visits_path).await?;
    let same_path = visits_path.clone();
    let cached = target.throughput(&target.cached_base, move |_| same_path.clone(), args.connections, seconds).await?;
    // Another page each request: a day-long window starting n minutes into the data (repeating only
    // once the data's minutes are used up: the hit ratio shows it).
    let (day_code, first) = (day.code.clone(), traffic.first.timestamp());
    let span = (traffic.last.timestamp().duration_since(first).as_mins() - 24 * 60).max(1);
    let shifted = move |n: u64| {
        let start = first.checked_add(jiff::SignedDuration::from_mins(n as i64 % span)).expect("in range");
        let end = start.checked_add(jiff::SignedDuration::from_mins(24 * 60 - 1)).expect("in range");
        format!("{VISITS_PATH}?store_code={day_code}&datetime_gte={start}&datetime_lte={end}")
    };
    let uncached = target.throughput(&target.cached_base, shifted, args.connections, seconds).await?;
    static_body.get_or_init(|| target_page.clone());
    let static_ceiling =
        target.throughput(&target.static_base, |_| "/page".to_owned(), args.connections, seconds).await?;
    let cache = CacheReport {
        cached_over_ceiling: cached.requests_per_s / static_ceiling.requests_per_s,
        cached,
        uncached,
        static_ceiling,
    };

    progress(format_args!("measuring the all-stores walk (page_size={PAGE_SIZE}) ..."));
    let walk_query = format!(
        "datetime_gte={}&datetime_lte={}&page_size={PAGE_SIZE}",
        traffic.first.timestamp(),
        traffic.last.timestamp()
    );
    let walk_rows = target.count(&format!("{VISITS_PATH}?{walk_query}")).await?;
    ensure!(walk_rows > 0, "the all-stores walk is empty");
    let pages = walk_rows.div_ceil(PAGE_SIZE);
    let last_full = (walk_rows / PAGE_SIZE).max(1);
    let measured = [("first", 1), ("last full", last_full), ("last", pages)];
    let paths: Vec<String> =
        measured.iter().map(|(_, page)| format!("{VISITS_PATH}?{walk_query}&page={page}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let http = target.sequential(&paths, args.walk_samples, Via::Http).await?;
    let server = target.sequential(&paths, args.walk_samples, Via::Router).await?;
    let mut walk_pages = Vec::new();
    for (((name, page), path), (http, server)) in measured.into_iter().zip(&paths).zip(http.into_iter().zip(server)) {
        walk_pages.push(PageReport { name, page, rows: target.rows(path).await?, http, server });
    }
    let walk = WalkReport {
        rows: walk_rows,
        pages,
        page_size: PAGE_SIZE,
        last_full_over_first: walk_pages[1].server.p50_ms / walk_pages[0].server.p50_ms,
        last_over_first: walk_pages[2].server.p50_ms / walk_pages[0].server.p50_ms,
        pages_measured: walk_pages,
    };

    if let Some(token) = &metrics_token {
        target.scrape_metrics(token).await?;
    }
    let _ = stop.send(());
    server_task.await??;
    let _ = stop_cached.send(());
    cached_task.await??;
    let _ = stop_static.send(());
    static_task.await??;

    let report = Report {
        machine: Machine::describe(&url, load_at_start),
        data: DataReport {
            stores: args.stores,
            devices: args.stores * 2,
            bins: traffic.bins.len(),
            days: traffic.days,
            first_minute: traffic.first.to_string(),
            last_minute: traffic.last.to_string(),
            published_store_rows: walk_rows,
            one_store_day: format!("store {} on {} ({}), {day_rows} rows", day.code, query_date(query_day)?, day.zone),
        },
        ingest,
        publish,
        ingest_during_publish,
        cli_file,
        publish_after_file,
        visits,
        occupancy,
        throughput,
        cache,
        walk,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|load| load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn progress(message: std::fmt::Arguments) {
    eprintln!("bench: {message}");
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------------
// Data

struct StorePlan {
    code: String,
    zone: &'static str,
    timezone: TimeZone,
    devices: [String; 2],
    /// Local opening and closing hours.
    hours: (i8, i8),
    /// Visitors per hour at the base rate, before the peaks.
    per_hour: f64,
}

async fn setup_catalog(storage: &dyn Storage, stores: usize) -> anyhow::Result<Vec<StorePlan>> {
    let mut plan = Vec::with_capacity(stores);
    for index in 0..stores {
        let code = format!("S{:04}", index + 1);
        let zone = ZONES[index % ZONES.len()];
        let store_code = StoreCode::parse(&code).map_err(anyhow::Error::msg)?;
        storage
            .add_store(NewStore {
                code: store_code.clone(),
                name: code.clone(),
                timezone: zone.into(),
                reset: ResetTime::MIDNIGHT,
                hours: None,
                capacity: None,
            })
            .await?;
        let devices = [format!("{code}-a"), format!("{code}-b")];
        for device in &devices {
            let token = format!("{:032x}", rand::random::<u128>());
            let device_id = DeviceId::parse(device).map_err(anyhow::Error::msg)?;
            storage.add_device(device_id, store_code.clone(), hash_token(&token)).await?;
        }
        plan.push(StorePlan {
            code,
            zone,
            timezone: TimeZone::get(zone)?,
            devices,
            hours: (7 + (index % 3) as i8, 22 + (index % 2) as i8),
            per_hour: 75.0 + (index * 37 % 40) as f64,
        });
    }
    Ok(plan)
}

struct Traffic {
    /// In arrival order.
    bins: Vec<Bin>,
    days: i64,
    first: Minute,
    last: Minute,
}

fn query_date(day: i64) -> anyhow::Result<Date> {
    let (year, month, day_of_month) = FIRST_DAY;
    Ok(Date::new(year, month, day_of_month)?.checked_add(day.days())?)
}

/// A local day's first and last minute in UTC, as the API's bounds.
fn local_day_bounds(timezone: &TimeZone, day: i64) -> anyhow::Result<(Timestamp, Timestamp)> {
    let date = query_date(day)?;
    let start = date.to_zoned(timezone.clone())?.timestamp();
    let next = date.tomorrow()?.to_zoned(timezone.clone())?.timestamp();
    Ok((start, next - 1.minute()))
}

/// Generates `total` bins, day after day for every store, then orders them as they arrive.
fn generate(plan: &[StorePlan], devices: &[[DeviceKey; 2]], total: usize, seed: u64) -> anyhow::Result<Traffic> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bins = Vec::with_capacity(total + total / 10);
    let mut days = 0;
    while bins.len() < total {
        let date = query_date(days)?;
        for (store, devices) in plan.iter().zip(devices) {
            store_day(&mut rng, store, *devices, date, &mut bins)?;
        }
        days += 1;
        ensure!(days < 100_000, "the generated traffic is too sparse");
    }
    // Arrival order: minute by minute, the devices of one minute in random order.
    bins.sort_unstable_by_key(|bin| (bin.minute, bin.device));
    for minute in bins.chunk_by_mut(|a, b| a.minute == b.minute) {
        minute.shuffle(&mut rng);
    }
    bins.truncate(total);
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else { bail!("no bins generated") };
    let (first, last) = (first.minute, last.minute);
    Ok(Traffic { bins, days, first, last })
}

fn store_day(
    rng: &mut StdRng,
    store: &StorePlan,
    devices: [DeviceKey; 2],
    date: Date,
    bins: &mut Vec<Bin>,
) -> anyhow::Result<()> {
    let (open, close) = store.hours;
    let at = |hour: i8| -> anyhow::Result<Minute> {
        let instant = date.at(hour, 0, 0, 0).to_zoned(store.timezone.clone())?.timestamp();
        Minute::from_unix_seconds(instant.as_second()).context("whole hours are minutes")
    };
    let opens = at(open)?;
    let minutes = ((at(close)?.unix_seconds() - opens.unix_seconds()) / 60) as usize;
    let weekend = if date.weekday().to_monday_one_offset() >= 6 { 1.4 } else { 1.0 };
    let mut counts = vec![[Counts { entries: 0, exits: 0 }; 2]; minutes];
    for minute in 0..minutes.saturating_sub(15) {
        let hour = f64::from(open) + minute as f64 / 60.0;
        let peak = |center: f64, width: f64| (-((hour - center) / width).powi(2)).exp();
        let rate = store.per_hour / 60.0 * weekend * (0.6 + 1.2 * peak(13.0, 1.2) + 1.5 * peak(18.5, 1.5));
        for _ in 0..poisson(rng, rate) {
            counts[minute][usize::from(rng.random_bool(0.45))].entries += 1;
            let leaves = (minute + rng.random_range(5..=60)).min(minutes - 1);
            counts[leaves][usize::from(rng.random_bool(0.5))].exits += 1;
        }
    }
    for (offset, minute_counts) in counts.iter().enumerate() {
        for (device, counts) in devices.iter().zip(minute_counts) {
            if !counts.is_empty() {
                bins.push(Bin { device: *device, minute: opens.plus_minutes(offset as i64), counts: *counts });
            }
        }
    }
    Ok(())
}

fn write_ndjson(path: &std::path::Path, bins: &[Bin], catalog: &Catalog) -> anyhow::Result<u64> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut minutes = BTreeMap::new();
    for bin in bins {
        let device = &catalog.device(bin.device).expect("generated for catalogued devices").device_id;
        let minute = minutes.entry(bin.minute).or_insert_with(|| bin.minute.timestamp().to_string());
        writeln!(
            file,
            r#"{{"device_id":"{device}","minute":"{minute}","in":{},"out":{}}}"#,
            bin.counts.entries, bin.counts.exits
        )?;
    }
    file.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Bins per ingest during the publication, and the pause between two: a few sensors pushing.
const PUSH_BINS: i64 = 100;
const PUSH_PAUSE: Duration = Duration::from_millis(20);

/// Publishes the backlog while batches of [`PUSH_BINS`] bins for minutes from `from` keep being
/// ingested, as sensors push: how long each of those ingests took to be acknowledged.
async fn publish_while_ingesting(
    storage: &Arc<dyn Storage>,
    device: DeviceKey,
    from: Minute,
) -> anyhow::Result<(PublishReport, Latency)> {
    let publishing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pushes = {
        let (storage, publishing) = (storage.clone(), publishing.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut minute = from;
            while publishing.load(std::sync::atomic::Ordering::Acquire) {
                let batch = (0..PUSH_BINS)
                    .map(|offset| Bin {
                        device,
                        minute: minute.plus_minutes(offset),
                        counts: footfall::domain::Counts { entries: 1, exits: 1 },
                    })
                    .collect();
                minute = minute.plus_minutes(PUSH_BINS);
                let started = Instant::now();
                storage.ingest(batch, Timestamp::now()).await?;
                samples.push(started.elapsed());
                tokio::time::sleep(PUSH_PAUSE).await;
            }
            anyhow::Ok(samples)
        })
    };
    // Let the pushes start before the publication does.
    tokio::time::sleep(PUSH_PAUSE * 5).await;
    let publish = timed_publish(storage.as_ref()).await;
    publishing.store(false, std::sync::atomic::Ordering::Release);
    let samples = pushes.await??;
    Ok((publish?, Latency::of(samples, 0)))
}

async fn timed_publish(storage: &dyn Storage) -> anyhow::Result<PublishReport> {
    let started = Instant::now();
    let summary = storage.publish(Timestamp::now(), None).await?.unwrap_or_default();
    let seconds = started.elapsed().as_secs_f64();
    progress(format_args!("published {} bins ({} store-days) in {seconds:.1} s", summary.bins, summary.periods));
    Ok(PublishReport { bins: summary.bins, store_days: summary.periods, seconds })
}

// ---------------------------------------------------------------------------------------------------
// Requests

#[derive(Clone, Copy)]
enum Via {
    /// Over keep-alive HTTP to the running server.
    Http,
    /// Through the router in-process: what the server spends, without the network.
    Router,
}

struct Target {
    base: String,
    /// The same database served with the response cache on (the default).
    cached_base: String,
    /// The same server stack answering one pre-rendered page: the ceiling of any answer of that size.
    static_base: String,
    host: String,
    authorization: String,
    client: reqwest::Client,
    router: axum::Router,
}

impl Target {
    /// One request over HTTP: its status must be 200; returns the body.
    async fn get(&self, path: &str) -> anyhow::Result<axum::body::Bytes> {
        Ok(self.get_from(&self.base, path).await?.0)
    }

    /// One request to the server at `base`: the body, and whether it came from the response cache.
    async fn get_from(&self, base: &str, path: &str) -> anyhow::Result<(axum::body::Bytes, bool)> {
        let response =
            self.client.get(format!("{base}{path}")).header(header::AUTHORIZATION, &self.authorization).send().await?;
        let status = response.status();
        let hit = response.headers().get("cache-status").is_some_and(|value| value.as_bytes().ends_with(b"hit"));
        let body = response.bytes().await?;
        ensure!(status == 200, "GET {path}: {status}: {}", String::from_utf8_lossy(&body));
        Ok((body, hit))
    }

    /// One request through the router, without the network.
    async fn get_in_process(&self, path: &str) -> anyhow::Result<axum::body::Bytes> {
        let request = Request::builder()
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, &self.authorization)
            .body(axum::body::Body::empty())?;
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        ensure!(status == 200, "GET {path} (in process): {status}: {}", String::from_utf8_lossy(&body));
        Ok(body)
    }

    /// One scrape of `/metrics` with the token: it must count the requests just measured.
    async fn scrape_metrics(&self, token: &footfall::config::MetricsToken) -> anyhow::Result<()> {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status == 200, "GET /metrics: {status}: {text}");
        let requests: f64 = text
            .lines()
            .filter(|line| line.starts_with("footfall_http_requests_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        ensure!(requests > 0.0, "/metrics counted no requests:\n{text}");
        progress(format_args!("/metrics: {} lines, {requests} requests counted over HTTP", text.lines().count()));
        Ok(())
    }

    fn page(body: &[u8]) -> anyhow::Result<(u64, usize)> {
        let page: serde_json::Value = serde_json::from_slice(body)?;
        let count = page["count"].as_u64().context("a page has a count")?;
        let rows = page["results"].as_array().context("a page has results")?.len();
        Ok((count, rows))
    }

    async fn count(&self, path: &str) -> anyhow::Result<u64> {
        Ok(Self::page(&self.get(path).await?)?.0)
    }

    async fn rows(&self, path: &str) -> anyhow::Result<usize> {
        Ok(Self::page(&self.get(path).await?)?.1)
    }

    async fn fetch(&self, path: &str, via: Via) -> anyhow::Result<axum::body::Bytes> {
        match via {
            Via::Http => self.get(path).await,
            Via::Router => self.get_in_process(path).await,
        }
    }

    /// Latencies of `paths`, requested one at a time, in turn, `rounds` times: taking turns spreads
    /// any disturbance from the rest of the machine evenly over the paths compared.
    async fn sequential(&self, paths: &[&str], rounds: usize, via: Via) -> anyhow::Result<Vec<Latency>> {
        let mut expected = Vec::with_capacity(paths.len());
        for path in paths {
            expected.push(self.fetch(path, via).await?.len()); // warms connections, caches, credentials
        }
        let mut samples = vec![Vec::with_capacity(rounds); paths.len()];
        for _ in 0..rounds {
            for (index, path) in paths.iter().enumerate() {
                let started = Instant::now();
                let body = self.fetch(path, via).await?;
                samples[index].push(started.elapsed());
                ensure!(body.len() == expected[index], "GET {path}: the answer changed");
            }
        }
        Ok(samples.into_iter().zip(expected).map(|(samples, bytes)| Latency::of(samples, bytes)).collect())
    }

    /// Requests/s with `connections` clients of the server at `base`, each sending the next request
    /// when the last is answered; request `n` (counted over all clients) asks for `path(n)`.
    async fn throughput(
        self: &Arc<Self>,
        base: &str,
        path: impl Fn(u64) -> String + Send + Sync + 'static,
        connections: usize,
        duration: Duration,
    ) -> anyhow::Result<ThroughputReport> {
        let path = Arc::new(path);
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let run = |duration: Duration| {
            let deadline = Instant::now() + duration;
            let clients = (0..connections).map(|_| {
                let (target, base, path, next) = (self.clone(), base.to_owned(), path.clone(), next.clone());
                tokio::spawn(async move {
                    let (mut samples, mut hits) = (Vec::new(), 0);
                    while Instant::now() < deadline {
                        let path = path(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                        let started = Instant::now();
                        hits += usize::from(target.get_from(&base, &path).await?.1);
                        samples.push(started.elapsed());
                    }
                    anyhow::Ok((samples, hits))
                })
            });
            futures_util::future::try_join_all(clients)
        };
        run(Duration::from_millis(500)).await?.into_iter().collect::<anyhow::Result<Vec<_>>>()?; // opens the connections
        let started = Instant::now();
        let (samples, hits): (Vec<Vec<Duration>>, Vec<usize>) =
            run(duration).await?.into_iter().collect::<anyhow::Result<Vec<_>>>()?.into_iter().unzip();
        let seconds = started.elapsed().as_secs_f64();
        let samples: Vec<Duration> = samples.into_iter().flatten().collect();
        let requests = samples.len();
        Ok(ThroughputReport {
            connections,
            seconds,
            requests,
            requests_per_s: requests as f64 / seconds,
            cache_hit_ratio: hits.iter().sum::<usize>() as f64 / requests.max(1) as f64,
            latency: Latency::of(samples, 0),
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// Results

#[derive(Serialize)]
struct Report {
    machine: Machine,
    data: DataReport,
    ingest: IngestReport,
    publish: PublishReport,
    /// Ingests of a sensor's push while that publication ran.
    ingest_during_publish: Latency,
    cli_file: Option<FileReport>,
    publish_after_file: Option<PublishReport>,
    visits: QueryReport,
    occupancy: QueryReport,
    throughput: ThroughputReport,
    cache: CacheReport,
    walk: WalkReport,
}

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cpus: usize,
    database: String,
    build: &'static str,
    /// 1, 5 and 15 minute load averages when the benchmark started: other work on the machine skews
    /// every figure.
    load_average_at_start: String,
}

impl Machine {
    fn describe(url: &str, load_average_at_start: String) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|l| {
                    l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            database: url.split_once("://").map_or(url, |(scheme, _)| scheme).to_owned(),
            build: if cfg!(debug_assertions) { "debug" } else { "release" },
            load_average_at_start,
        }
    }
}

#[derive(Serialize)]
struct DataReport {
    stores: usize,
    devices: usize,
    bins: usize,
    days: i64,
    first_minute: String,
    last_minute: String,
    published_store_rows: u64,
    one_store_day: String,
}

#[derive(Serialize)]
struct IngestReport {
    bins: usize,
    batches: usize,
    batch_size: usize,
    seconds: f64,
    median_batch_bins_per_s: f64,
    overall_bins_per_s: f64,
}

#[derive(Serialize)]
struct PublishReport {
    bins: u64,
    store_days: u64,
    seconds: f64,
}

#[derive(Serialize)]
struct FileReport {
    records: usize,
    bytes: u64,
    seconds: f64,
    records_per_s: f64,
}

#[derive(Serialize)]
struct Latency {
    samples: usize,
    body_bytes: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>, body_bytes: usize) -> Latency {
        samples.sort_unstable();
        let ms = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1e3
        };
        Latency {
            samples: samples.len(),
            body_bytes,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: ms(1.0),
        }
    }
}

#[derive(Serialize)]
struct QueryReport {
    rows: u64,
    /// Over keep-alive HTTP, one request at a time.
    http: Latency,
    /// Through the router in-process: the server's cost without the network.
    server: Latency,
}

#[derive(Serialize)]
struct ThroughputReport {
    connections: usize,
    seconds: f64,
    requests: usize,
    requests_per_s: f64,
    /// Answers marked `Cache-Status: footfall; hit`.
    cache_hit_ratio: f64,
    latency: Latency,
}

/// The one-store-day visits page at 16 connections, three ways, beside the server stack's ceiling.
#[derive(Serialize)]
struct CacheReport {
    /// The same page again and again, response cache on.
    cached: ThroughputReport,
    /// Every request another window (a different page), response cache on.
    uncached: ThroughputReport,
    /// A pre-rendered body of the page's size from the same server stack, without auth or a query.
    static_ceiling: ThroughputReport,
    /// cached / static_ceiling.
    cached_over_ceiling: f64,
}

#[derive(Serialize)]
struct PageReport {
    name: &'static str,
    page: u64,
    rows: usize,
    http: Latency,
    server: Latency,
}

#[derive(Serialize)]
struct WalkReport {
    rows: u64,
    pages: u64,
    page_size: u64,
    pages_measured: Vec<PageReport>,
    /// Server p50 of the last full page over that of the first.
    last_full_over_first: f64,
    last_over_first: f64,
}

fn pair(latencies: Vec<Latency>) -> [Latency; 2] {
    latencies.try_into().unwrap_or_else(|_| unreachable!("two paths give two latencies"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn print_table(report: &Report) {
    let r = report;
    println!(
        "footfall bench ({} build, {}, {} CPUs, {}; load average at start {})",
        r.machine.build, r.machine.cpu, r.machine.cpus, r.machine.database, r.machine.load_average_at_start
    );
    println!(
        "data: {} stores, {} devices, {} bins over {} days ({} .. {}), {} published store-minute rows",
        r.data.stores,
        r.data.devices,
        r.data.bins,
        r.data.days,
        r.data.first_minute,
        r.data.last_minute,
        r.data.published_store_rows
    );
    println!("one store-day: {}", r.data.one_store_day);
    println!();
    println!("{:<58} {:>14} {:>22}", "measure", "value", "target");
    let row = |name: &str, value: String, target: &str| println!("{name:<58} {value:>14} {target:>22}");
    let ingest_ok = r.ingest.median_batch_bins_per_s >= 300_000.0;
    row(
        &format!("ingest, median of {} batches of {}", r.ingest.batches, r.ingest.batch_size),
        format!("{:.0}/s", r.ingest.median_batch_bins_per_s),
        &format!(">= 300000/s {}", verdict(ingest_ok)),
    );
    row(&format!("ingest, overall ({} bins)", r.ingest.bins), format!("{:.0}/s", r.ingest.overall_bins_per_s), "");
    row(
        &format!("publish {} bins ({} store-days)", r.publish.bins, r.publish.store_days),
        format!("{:.2} s", r.publish.seconds),
        "",
    );
    let pushes = &r.ingest_during_publish;
    row(
        &format!("  ingests of {PUSH_BINS} bins meanwhile ({}), p50 / p99 / max", pushes.samples),
        format!("{:.0}/{:.0}/{:.0} ms", pushes.p50_ms, pushes.p99_ms, pushes.max_ms),
        &format!("p99 <= 250 ms {}", verdict(pushes.p99_ms <= 250.0)),
    );
    if let Some(file) = &r.cli_file {
        row(
            &format!("CLI NDJSON file, {} records ({:.0} MB)", file.records, mb(file.bytes)),
            format!("{:.0}/s", file.records_per_s),
            "",
        );
    }
    if let Some(publish) = &r.publish_after_file {
        row(
            &format!("publish {} bins ({} store-days)", publish.bins, publish.store_days),
            format!("{:.2} s", publish.seconds),
            "",
        );
    }
    for (name, query) in [("visits", &r.visits), ("occupancy", &r.occupancy)] {
        let (s, h) = (&query.server, &query.http);
        let target = if name == "visits" { format!("< 2 ms {}", verdict(s.p50_ms < 2.0)) } else { String::new() };
        row(&format!("{name} one store-day ({} rows), server p50", query.rows), format!("{:.3} ms", s.p50_ms), &target);
        row(&format!("  server p90 / p99 ({} requests)", s.samples), format!("{:.3}/{:.3}", s.p90_ms, s.p99_ms), "");
        row(&format!("  HTTP keep-alive p50 ({} bytes)", h.body_bytes), format!("{:.3} ms", h.p50_ms), "");
        row(&format!("  HTTP p90 / p99 ({} requests)", h.samples), format!("{:.3}/{:.3}", h.p90_ms, h.p99_ms), "");
    }
    let t = &r.throughput;
    row(
        &format!("visits one store-day, {} connections, {:.1} s", t.connections, t.seconds),
        format!("{:.0} req/s", t.requests_per_s),
        &format!(">= 2000 req/s {}", verdict(t.requests_per_s >= 2000.0)),
    );
    row("  latency under load p50 / p99", format!("{:.2}/{:.2}", t.latency.p50_ms, t.latency.p99_ms), "");
    let c = &r.cache;
    for (name, t) in [
        ("  response cache on, same page", &c.cached),
        ("  response cache on, a new window each request", &c.uncached),
        ("  ceiling: static body of the page's size", &c.static_ceiling),
    ] {
        let hits =
            if name.contains("ceiling") { String::new() } else { format!("{:.0} % hits", t.cache_hit_ratio * 100.0) };
        row(name, format!("{:.0} req/s", t.requests_per_s), &hits);
    }
    row("  cached / ceiling", format!("{:.0} %", c.cached_over_ceiling * 100.0), "");
    let w = &r.walk;
    for page in &w.pages_measured {
        row(
            &format!("walk {} page ({} of {}, {} rows), server p50", page.name, page.page, w.pages, page.rows),
            format!("{:.2} ms", page.server.p50_ms),
            "",
        );
        row(&format!("  HTTP p50 ({} bytes)", page.http.body_bytes), format!("{:.2} ms", page.http.p50_ms), "");
    }
    row(
        "walk last full page / first page (server p50)",
        format!("{:.2}x", w.last_full_over_first),
        &format!("<= 2x {}", verdict(w.last_full_over_first <= 2.0)),
    );
    row("walk last page / first page (server p50)", format!("{:.2}x", w.last_over_first), "");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_arrives_minute_by_minute_with_one_bin_per_device_and_minute() {
        let plan: Vec<StorePlan> = (0..3)
            .map(|index| StorePlan {
                code: format!("S{index}"),
                zone: ZONES[index],
                timezone: TimeZone::get(ZONES[index]).unwrap(),
                devices: [format!("S{index}-a"), format!("S{index}-b")],
                hours: (8, 22),
                per_hour: 90.0,
            })
            .collect();
        let devices = [[1, 2], [3, 4], [5, 6]].map(|pair| pair.map(DeviceKey));
        let traffic = generate(&plan, &devices, 10_000, 7).unwrap();
        assert_eq!(traffic.bins.len(), 10_000);
        assert!(traffic.bins.windows(2).all(|pair| pair[0].minute <= pair[1].minute));
        let mut keys: Vec<_> = traffic.bins.iter().map(|bin| (bin.device, bin.minute)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10_000);
        assert!(traffic.bins.iter().all(|bin| (1..=6).contains(&bin.device.0) && !bin.counts.is_empty()));
        assert_eq!((traffic.first, traffic.last), (traffic.bins[0].minute, traffic.bins[9_999].minute));
    }

    #[test]
    fn a_local_day_is_bounded_by_its_first_and_last_minute_in_utc() {
        let (gte, lte) = local_day_bounds(&TimeZone::get("Europe/Athens").unwrap(), QUERY_DAY).unwrap();
        assert_eq!(gte.to_string(), "2024-03-14T22:00:00Z");
        assert_eq!(lte.to_string(), "2024-03-15T21:59:00Z");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = (1..=100).rev().map(Duration::from_millis).collect();
        let latency = Latency::of(samples, 0);
        assert_eq!((latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.max_ms), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_benchmark_runs_end_to_end_with_metrics() {
        let args = BenchArgs {
            bins: 20_000,
            file_bins: 2_000,
            stores: 3,
            batch: 5_000,
            requests: 5,
            connections: 2,
            seconds: 0.2,
            walk_samples: 2,
            seed: 1,
            json: true,
            // With metrics on: the scrape at the end must count the requests.
            metrics: true,
        };
        run(None, args).await.unwrap();
    }
}
