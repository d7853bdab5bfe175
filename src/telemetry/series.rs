//! The Prometheus series footfall records, named and described once here, and the process-wide recorder
//! that holds them (`metrics` with its Prometheus exporter). docs/operations.md lists every series.
//!
//! Until [`install`] runs (`serve` with `--metrics-listen` or `metrics.token`), the `metrics` macros go
//! to its no-op recorder, so recording costs next to nothing where nobody can scrape; the CLI never
//! installs it. Gauges read from the database are not recorded here: `api::prometheus` computes them at
//! each scrape.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by method, route and status.
pub const HTTP_REQUESTS: &str = "footfall_http_requests_total";
/// Time to answer a request (until its headers), by method and route.
pub const HTTP_REQUEST_DURATION: &str = "footfall_http_request_duration_seconds";
/// Failed sign-ins, by credential.
pub const AUTH_FAILURES: &str = "footfall_auth_failures_total";
/// Requests refused by the sign-in throttle.
pub const AUTH_THROTTLED: &str = "footfall_auth_throttled_total";
/// Bins stored, by source.
pub const BINS_INGESTED: &str = "footfall_bins_ingested_total";
/// Batches refused for a bad record, by source.
pub const RECORDS_REJECTED: &str = "footfall_records_rejected_total";
/// Time a publication took, by trigger.
pub const PUBLICATION_DURATION: &str = "footfall_publication_duration_seconds";
/// Bins published, by trigger.
pub const BINS_PUBLISHED: &str = "footfall_bins_published_total";
/// Publications that failed, by trigger.
pub const PUBLICATION_FAILURES: &str = "footfall_publication_failures_total";
/// Webhook events queued, by type.
pub const WEBHOOK_EVENTS: &str = "footfall_webhook_events_total";
/// Webhook delivery attempts, by outcome (delivered, failed, given_up).
pub const WEBHOOK_ATTEMPTS: &str = "footfall_webhook_attempts_total";
/// Time spent waiting for a database connection, by engine (and, for SQLite, access).
pub const DB_POOL_WAIT: &str = "footfall_db_pool_wait_seconds";

/// Request latencies: from well under a millisecond (a cached read) to the 30 s request timeout.
const REQUEST_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Publications: milliseconds on ingest, up to minutes for a large backlog.
const PUBLICATION_BUCKETS: &[f64] = &[0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Connection waits: none at all when the pool has room, up to the 30 s pool timeout.
const POOL_WAIT_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];
/// How often histograms are folded into their buckets when nobody scrapes, so memory stays bounded.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle): from here on the
/// series below are recorded.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = [
            (HTTP_REQUEST_DURATION, REQUEST_BUCKETS),
            (PUBLICATION_DURATION, PUBLICATION_BUCKETS),
            (DB_POOL_WAIT, POOL_WAIT_BUCKETS),
        ]
        .into_iter()
        .fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
            builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets).expect("non-empty buckets")
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows only the database gauges");
        }
        describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            })
            .expect("spawning the metrics upkeep thread");
        handle
    })
}

/// Whether [`install`] has run: callers skip the work of building labels while it has not.
pub fn installed() -> bool {
    HANDLE.get().is_some()
}

/// The recorded series in the Prometheus text format; empty before [`install`].
pub fn render() -> String {
    HANDLE.get().map(PrometheusHandle::render).unwrap_or_default()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route template and status.");
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response headers, by method and route template."
    );
    describe_counter!(
        AUTH_FAILURES,
        "Failed sign-ins, by credential (password, api_token, device_token, metrics_token)."
    );
    describe_counter!(AUTH_THROTTLED, "Requests refused with 429 by the sign-in throttle.");
    describe_counter!(BINS_INGESTED, "Distinct (device, minute) bins stored, by source.");
    describe_counter!(
        RECORDS_REJECTED,
        "Batches (files, requests, messages) refused whole for a bad record or device, by source."
    );
    describe_histogram!(PUBLICATION_DURATION, metrics::Unit::Seconds, "Time a publication took, by trigger.");
    describe_counter!(BINS_PUBLISHED, "Distinct (device, minute) bins published, by trigger.");
    describe_counter!(PUBLICATION_FAILURES, "Publications that failed, by trigger.");
    describe_counter!(WEBHOOK_EVENTS, "Webhook events queued by this process, by type (made once across servers).");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts made by this process, by outcome: delivered, failed (to be retried), given_up."
    );
    describe_histogram!(
        DB_POOL_WAIT,
        metrics::Unit::Seconds,
        "Time a database call waited for a connection (PostgreSQL pool) or a slot and thread (SQLite)."
    );
}

/// Where ingested bins came from: the `source` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `footfall ingest FILE` (in its own process: see docs/operations.md).
    File,
    /// `POST /api/ingest/bins`.
    Http,
    /// MQTT messages.
    Mqtt,
    /// A vendor's native push format, by the vendor's name (`xovis`, `axis`, ...).
    Vendor(&'static str),
}

impl Source {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Http => "http",
            Source::Mqtt => "mqtt",
            Source::Vendor(name) => name,
        }
    }
}

/// What made a publication happen: the `trigger` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule's slot.
    Schedule,
    /// A write under publication on ingest.
    Write,
    /// A server starting with publication on ingest over pending data.
    Start,
}

impl Trigger {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Write => "write",
            Trigger::Start => "start",
        }
    }
}

/// One answered request: `route` is the matched route template (never the raw path, whose values
/// would make a series per store or page).
pub fn http_request(method: &'static str, route: String, status: u16, latency: Duration) {
    if !installed() {
        return;
    }
    histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route.clone()).record(latency);
    counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status.to_string()).increment(1);
}

/// A failed sign-in with this kind of credential (`password`, `api_token`, `device_token`, `metrics_token`).
pub fn auth_failure(credential: &'static str) {
    counter!(AUTH_FAILURES, "credential" => credential).increment(1);
}

/// A webhook event of `event_type` queued.
pub fn webhook_event(event_type: &'static str) {
    counter!(WEBHOOK_EVENTS, "type" => event_type).increment(1);
}

/// A webhook delivery attempt: `delivered`, `failed` or `given_up`.
pub fn webhook_attempt(outcome: &'static str) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// A request refused by the sign-in throttle.
pub fn throttled() {
    counter!(AUTH_THROTTLED).increment(1);
}

/// `bins` distinct bins stored from `source`.
pub fn bins_ingested(source: Source, bins: u64) {
    counter!(BINS_INGESTED, "source" => source.label()).increment(bins);
}

/// A batch from `source` refused whole for a bad record.
pub fn records_rejected(source: Source) {
    counter!(RECORDS_REJECTED, "source" => source.label()).increment(1);
}

/// A publication that ran (`Some(bins)`) or failed (`None`).
pub fn publication(trigger: Trigger, took: Duration, published: Option<u64>) {
    let trigger = trigger.label();
    match published {
        Some(bins) => {
            histogram!(PUBLICATION_DURATION, "trigger" => trigger).record(took);
            counter!(BINS_PUBLISHED, "trigger" => trigger).increment(bins);
        }
        None => counter!(PUBLICATION_FAILURES, "trigger" => trigger).increment(1),
    }
}

/// A wait for a database connection. `access` is `read` or `write` where the engine tells them apart
/// (SQLite), `None` where it does not (the PostgreSQL pool).
pub fn pool_wait(engine: &'static str, access: Option<&'static str>, waited: Duration) {
    match access {
        Some(access) => histogram!(DB_POOL_WAIT, "engine" => engine, "access" => access).record(waited),
        None => histogram!(DB_POOL_WAIT, "engine" => engine).record(waited),
    }
}
