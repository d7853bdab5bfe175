//! `footfall-bench soak`: a sustained mixed load against a real server process, to show that throughput,
//! latency and memory stay flat. The server runs as a child process (so its memory is its own) over a
//! temporary SQLite store with demo data; this process drives keep-alive connections with a minimal
//! HTTP/1.1 client: mostly reads of both endpoints, some batches of bins over HTTP ingest, while the server
//! publishes every minute. The reads spread over more pages than the server's response cache holds
//! (windows of whole hours up to a store-day, for every store, day and entrance, at three page sizes), a
//! few pages hot and a long tail, so the cache fills during the warm-up and keeps evicting. With
//! `--ingest-share 1 --batch 1000` it is the HTTP ingest throughput benchmark.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, default_value = "10m", value_parser = footfall::publish::parse_interval)]
    pub duration: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Share of requests that ingest a batch of bins (the rest read).
    #[arg(long, default_value_t = 0.2)]
    pub ingest_share: f64,
    /// Bins per ingest request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// The server's publication interval.
    #[arg(long, default_value = "1m")]
    pub publish_interval: String,
    /// Ingests re-send (replace) the minutes of this window, over and over, so the store stops growing
    /// once the window is full, as with devices re-sending a day; 0 sends ever new minutes.
    #[arg(long, default_value = "24h", value_parser = footfall::publish::parse_interval)]
    pub ingest_window: Duration,
    /// Load before the starting memory is taken, so that caches are warm.
    #[arg(long, default_value = "1m", value_parser = footfall::publish::parse_interval)]
    pub warmup: Duration,
    /// The server's response cache, in bytes (passed to it, so the report can compare the pages with it).
    #[arg(long, default_value_t = 64 << 20)]
    pub response_cache_bytes: u64,
    /// The `footfall` binary to run as the server [default: the `footfall` beside this executable,
    /// as `cargo build` leaves it].
    #[arg(long, env = "FOOTFALL_BIN")]
    pub server: Option<std::path::PathBuf>,
}

const STORES: [&str; 3] = [footfall::demo::ATHENS_STORE, "220310", "330720"];

/// The reads cover the full days before today of the 14 demo days.
const DAYS_READ: i64 = 12;

/// Window lengths that tile a UTC day, from an hourly poll to the whole day.
const WINDOW_HOURS: [i64; 8] = [1, 2, 3, 4, 6, 8, 12, 24];

/// The page sizes clients ask for: the default (1000 rows) and two smaller ones.
const PAGE_SIZES: [&str; 3] = ["", "&page_size=500", "&page_size=250"];

/// The pages the reads ask for, most popular first, and the body size each was answered with.
struct ReadPages {
    targets: Vec<String>,
    popularity: WeightedIndex<f64>,
    body_bytes: Vec<AtomicU64>,
}

impl ReadPages {
    /// Every store, endpoint (visits of the store and of each entrance, occupancy), window of
    /// [`WINDOW_HOURS`] on each day before `today`, and page size, in a fixed random order: each is one
    /// cached page, and together they weigh a few times the default cache.
    fn new(today: jiff::Timestamp) -> ReadPages {
        let today_start = today.as_second().div_euclid(86_400) * 86_400;
        let windows: Vec<String> = (1..=DAYS_READ)
            .flat_map(|days_ago| {
                let day_start = today_start - days_ago * 86_400;
                WINDOW_HOURS.into_iter().flat_map(move |hours| {
                    (0..24).step_by(hours as usize).map(move |hour| (day_start + hour * 3600, hours))
                })
            })
            .map(|(first, hours)| {
                let [from, to] = [first, first + hours * 3600 - 60]
                    .map(|at| jiff::Timestamp::from_second(at).expect("in range").strftime("%Y-%m-%dT%H:%M:%SZ"));
                format!("&datetime_gte={from}&datetime_lte={to}")
            })
            .collect();
        let mut targets = Vec::new();
        for store in STORES {
            let readings = [
                format!("visits/?store_code={store}"),
                format!("visits/?store_code={store}&device_id=cnt-{store}-a"),
                format!("visits/?store_code={store}&device_id=cnt-{store}-b"),
                format!("occupancy/?store_code={store}"),
            ];
            for reading in &readings {
                for window in &windows {
                    for page_size in PAGE_SIZES {
                        targets.push(format!("/api/bi/acquisition-metrics/{reading}{window}{page_size}"));
                    }
                }
            }
        }
        targets.shuffle(&mut rand::rngs::StdRng::seed_from_u64(15));
        // Zipf's law, as in a web cache's requests: the page of rank r is asked in proportion to 1/r.
        let popularity = WeightedIndex::new((1..=targets.len()).map(|rank| 1.0 / rank as f64)).expect("pages");
        let body_bytes = targets.iter().map(|_| AtomicU64::new(0)).collect();
        ReadPages { targets, popularity, body_bytes }
    }

    /// How many pages were answered, and their bodies' bytes: one copy of each, what the cache would
    /// hold to keep them all (before keys and bookkeeping).
    fn answered(&self) -> (usize, u64) {
        let sizes = self.body_bytes.iter().map(|bytes| bytes.load(Ordering::Relaxed)).filter(|&bytes| bytes > 0);
        sizes.fold((0, 0), |(pages, total), bytes| (pages + 1, total + bytes))
    }
}

/// A number from a process's /proc status: `VmRSS` (resident KiB), `VmHWM` (peak resident KiB), `Threads`.
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?.split_whitespace().next()?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    proc_status(pid, "VmRSS")
}

/// The server's resident set, sampled every second, kept as the lowest and highest of each 10 s.
#[derive(Default)]
struct MemoryTrace {
    /// `(first second, lowest KiB, highest KiB, after the warm-up)` of each 10 s.
    windows: Vec<(u64, u64, u64, bool)>,
}

impl MemoryTrace {
    fn record(&mut self, at: u64, kib: u64, after_warmup: bool) {
        let first = at / 10 * 10;
        match self.windows.last_mut() {
            Some((start, lowest, highest, warm)) if *start == first && *warm == after_warmup => {
                *lowest = (*lowest).min(kib);
                *highest = (*highest).max(kib);
            }
            _ => self.windows.push((first, kib, kib, after_warmup)),
        }
    }

    fn after_warmup(&self) -> (u64, u64) {
        let warm = self.windows.iter().filter(|window| window.3);
        warm.fold((u64::MAX, 0), |(lowest, highest), window| (lowest.min(window.1), highest.max(window.2)))
    }

    fn windows(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let shown: Vec<String> = self
            .windows
            .iter()
            .map(|&(at, lowest, highest, _)| format!("{at}s:{:.1}-{:.1}", mib(lowest), mib(highest)))
            .collect();
        shown.join(" ")
    }
}

/// What the soak keeps of an answer.
struct Answer {
    status: u16,
    /// RFC 9211's `Cache-Status`: answered from the response cache,
    hit: bool,
    /// or rendered and put in it.
    stored: bool,
    body_bytes: usize,
}

/// One keep-alive HTTP/1.1 connection; enough of the protocol for footfall's answers.
struct Connection {
    reader: BufReader<TcpStream>,
    authorization: String,
}

impl Connection {
    async fn open(address: &str, authorization: String) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { reader: BufReader::new(stream), authorization })
    }

    /// Sends one request and reads the whole answer.
    async fn request(&mut self, method: &str, target: &str, body: &[u8]) -> anyhow::Result<Answer> {
        let mut head = Vec::with_capacity(256);
        write!(
            head,
            "{method} {target} HTTP/1.1\r\nHost: soak\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.authorization,
            body.len()
        )?;
        head.extend_from_slice(body);
        self.reader.get_mut().write_all(&head).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status: u16 = line.split_whitespace().nth(1).context("no status line")?.parse()?;
        let (mut length, mut hit, mut stored) = (0usize, false, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                } else if name.eq_ignore_ascii_case("cache-status") {
                    hit = value.trim() == "footfall; hit";
                    stored = value.trim_end().ends_with("; stored");
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok(Answer { status, hit, stored, body_bytes: length })
    }
}

#[derive(Default)]
struct Tally {
    reads: AtomicU64,
    ingests: AtomicU64,
    errors: AtomicU64,
    /// Reads answered from the response cache.
    hits: AtomicU64,
    /// Body bytes of the pages the server rendered and put in the cache.
    stored_bytes: AtomicU64,
}

fn percentile(sorted: &[u32], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() - 1) as f64 * fraction) as usize]) / 1000.0
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let binary = match args.server {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name(format!("footfall{}", std::env::consts::EXE_SUFFIX)),
    };
    anyhow::ensure!(
        binary.is_file(),
        "no server binary at {}: build it (`cargo build --release -p footfall`) or pass --server",
        binary.display()
    );
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("soak.db").display());
    let storage = footfall::storage::open(&url).await?;
    eprintln!("creating 14 days of demo data ...");
    footfall::demo::create(storage.as_ref(), 14, jiff::Timestamp::now()).await?;
    let password = "soak-password";
    storage
        .add_user(footfall::domain::catalog::NewUser {
            username: footfall::domain::Username::parse("soak").map_err(anyhow::Error::msg)?,
            password_hash: footfall::api::auth::hash_password(password),
            scope: footfall::domain::catalog::NewScope::All,
            can_ingest: true,
        })
        .await?;
    drop(storage);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let address = format!("127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(&binary)
        .args(["--database", &url, "serve", "--listen", &address, "--publish-interval", &args.publish_interval])
        .args(["--response-cache-bytes", &args.response_cache_bytes.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().context("server pid")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&address).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let authorization =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("soak:{password}")));
    // Warm up: one authenticated request fills the credential cache.
    Connection::open(&address, authorization.clone()).await?.request("GET", "/api/stores", b"").await?;
    eprintln!("soaking for {} s at {} connections ...", args.duration.as_secs(), args.connections);

    let tally = Arc::new(Tally::default());
    let pages = Arc::new(ReadPages::new(jiff::Timestamp::now()));
    let first_minute = jiff::Timestamp::now().as_second() / 60 + 24 * 60;
    let window_minutes = (args.ingest_window.as_secs() / 60) as i64;
    let next_minute = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + args.duration;
    let mut workers = Vec::new();
    for worker in 0..args.connections {
        let (address, authorization, tally, next_minute, pages) =
            (address.clone(), authorization.clone(), tally.clone(), next_minute.clone(), pages.clone());
        let (share, batch) = (args.ingest_share, args.batch);
        workers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
            let mut latencies = (Vec::with_capacity(1 << 16), Vec::with_capacity(1 << 14));
            let mut connection = Connection::open(&address, authorization.clone()).await?;
            while Instant::now() < end {
                let ingest = rng.random_bool(share);
                let request_started = Instant::now();
                let status = if ingest {
                    let store = STORES[rng.random_range(0..STORES.len())];
                    let sent = next_minute.fetch_add(batch as u64, Ordering::Relaxed) as i64;
                    let first = first_minute + if window_minutes > 0 { sent % window_minutes } else { sent };
                    let device = format!("cnt-{store}-{}", if rng.random_bool(0.5) { "a" } else { "b" });
                    let bins: Vec<_> = (0..batch as i64)
                        .map(|i| {
                            let minute = jiff::Timestamp::from_second((first + i) * 60).expect("in range");
                            serde_json::json!({"device_id": device, "minute": minute.to_string(), "in": 1, "out": 1})
                        })
                        .collect();
                    connection.request("POST", "/api/ingest/bins", &serde_json::to_vec(&bins)?).await?.status
                } else {
                    let page = pages.popularity.sample(&mut rng);
                    let answer = connection.request("GET", &pages.targets[page], b"").await?;
                    if answer.status == 200 {
                        pages.body_bytes[page].store(answer.body_bytes as u64, Ordering::Relaxed);
                    }
                    if answer.hit {
                        tally.hits.fetch_add(1, Ordering::Relaxed);
                    } else if answer.stored {
                        tally.stored_bytes.fetch_add(answer.body_bytes as u64, Ordering::Relaxed);
                    }
                    answer.status
                };
                let micros = request_started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if ingest {
                    latencies.1.push(micros)
                } else {
                    latencies.0.push(micros)
                }
                let counter = if ingest { &tally.ingests } else { &tally.reads };
                counter.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    // The resident set is sampled every second: the server hands free pages back in batches, so it
    // moves within seconds and one sample per 10 s would report wherever it happened to land.
    let mut memory = MemoryTrace::default();
    let warmup_end = started + args.warmup.min(args.duration);
    let (mut stored_in_warmup, mut threads_start) = (None, 0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < end {
        tick.tick().await;
        let at = started.elapsed().as_secs();
        if stored_in_warmup.is_none() && Instant::now() >= warmup_end {
            stored_in_warmup = Some(tally.stored_bytes.load(Ordering::Relaxed));
            threads_start = proc_status(pid, "Threads").unwrap_or(0);
        }
        memory.record(at, rss_kib(pid).unwrap_or(0), stored_in_warmup.is_some());
    }
    let stored_in_warmup = stored_in_warmup.unwrap_or(0);
    let (mut reads_ms, mut ingests_ms) = (Vec::new(), Vec::new());
    for worker in workers {
        let (read, ingest) = worker.await??;
        reads_ms.extend(read);
        ingests_ms.extend(ingest);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = rss_kib(pid).unwrap_or(0);
    let rss_peak = proc_status(pid, "VmHWM").unwrap_or(0);
    let threads_end = proc_status(pid, "Threads").unwrap_or(0);
    server.kill().await.ok();
    let mut all: Vec<u32> = reads_ms.iter().chain(&ingests_ms).copied().collect();
    for latencies in [&mut reads_ms, &mut ingests_ms, &mut all] {
        latencies.sort_unstable();
    }

    let (reads, ingests, errors) = (
        tally.reads.load(Ordering::Relaxed),
        tally.ingests.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    println!(
        "soak: {elapsed:.0} s, {} connections, {:.0}% ingests of {} bins",
        args.connections,
        args.ingest_share * 100.0,
        args.batch
    );
    println!(
        "requests: {} ({reads} reads, {ingests} ingests), {:.0} req/s, {errors} non-200",
        reads + ingests,
        (reads + ingests) as f64 / elapsed
    );
    println!(
        "bins ingested: {} ({:.0} bins/s)",
        ingests * args.batch as u64,
        (ingests * args.batch as u64) as f64 / elapsed
    );
    for (name, latencies) in [("all", &all), ("reads", &reads_ms), ("ingests", &ingests_ms)] {
        println!(
            "latency ms, {name}: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            percentile(latencies, 0.5),
            percentile(latencies, 0.9),
            percentile(latencies, 0.99),
            percentile(latencies, 1.0)
        );
    }
    let (lowest, highest) = memory.after_warmup();
    println!(
        "server RSS MiB after {} s of warm-up, sampled every second: lowest {:.1}, highest {:.1}, end {:.1}; \
         peak {:.1}; threads {threads_start} -> {threads_end}",
        args.warmup.as_secs(),
        lowest as f64 / 1024.0,
        highest as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    // The server reports no cache weight: what the reads put in it, against its bound, shows it full.
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!(
        "response cache: bound {:.1} MiB; reads {:.1}% hits; misses stored {:.1} MiB ({:.1} in the warm-up)",
        mib(args.response_cache_bytes),
        tally.hits.load(Ordering::Relaxed) as f64 * 100.0 / reads.max(1) as f64,
        mib(tally.stored_bytes.load(Ordering::Relaxed)),
        mib(stored_in_warmup)
    );
    let (answered, bytes) = pages.answered();
    println!(
        "read pages: {answered} of {} answered, bodies {:.1} MiB, one copy of each",
        pages.targets.len(),
        mib(bytes)
    );
    println!("server RSS MiB over time, lowest-highest of each 10 s: {}", memory.windows());
    Ok(())
}
