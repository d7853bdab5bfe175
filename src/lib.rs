//! footfall: a people-counter metrics server.
//!
//! # Layout
//! One room per concern; docs/architecture.md gives what each may import and follows a read, an
//! ingest and a publication through them.
//! - [`domain`]: the model: identifiers and typed keys, the catalog (stores, devices and their tokens,
//!   sensors, the publication policy; users, scope),
//!   bins, minutes and time zones, occupancy periods and page arithmetic, pagination, the publication
//!   policy, rollup verification, buckets and the hour/day rollup pieces, opening hours, device health
//!   flags, webhook signing, API tokens, retention cut-offs, the monitoring snapshot. No HTTP, no SQL.
//! - [`storage`]: traits per capability in domain terms ([`storage::Storage`] is all of them) and the
//!   engines `storage::sqlite` and `storage::postgres`, each a folder with one file per capability and
//!   numbered `.sql` migrations, besides SQLite's inbox (`sqlite/inbox.rs`: ingests during a publication)
//!   and PostgreSQL's change notices (`postgres/changes.rs`), which feed the request-context snapshot
//!   both share (`storage/context_snapshot.rs`).
//! - [`ingest`]: parsing and validation of records, and the one [`ingest::service`] that every source
//!   calls (files via [`ingest::files`], HTTP via `api::ingest`, MQTT via [`ingest::mqtt`]): resolve,
//!   refuse removed devices, store all or nothing, apply the publication policy. [`ingest::vendors`]
//!   reads the sensors' own formats (docs/sensors.md) and pushes them through `storage::SensorStore`.
//! - [`publish`]: the publication policy's effects and the schedule.
//! - [`retention`]: the schedule pruning old minute data (`footfall prune` does it once).
//! - [`health`]: device health of stores (bins and schedules into `domain::health` flags).
//! - [`webhooks`]: alert events (capacity, silence, imbalance, publications) queued in the database, and
//!   the signed delivery of the queue (docs/alerts.md).
//! - [`api`]: the axum router and its tower-http layers, the reader and writer extractors
//!   (authentication: Basic, API and device tokens; scope), errors, the endpoints, rendering, the
//!   response cache (`api::page_cache`), the reports (`api::reports`: buckets, summary, live, CSV),
//!   device health (`api::health`), OpenAPI,
//!   the dashboard, and `GET /metrics` with the request-counting layer (`api::prometheus`).
//! - [`config`]: the settings of `serve`, defaults once, layered with a TOML file, variables and flags.
//! - [`server`]: the accept loop (connection cap, TLS, deadlines, client address, drain).
//! - [`app`]: builds and runs the server from its settings and a bound listener.
//! - [`cli`]: the `footfall` command line (lists as text or JSON, tokens, prune, completions and man
//!   pages for the Debian package); [`demo`] creates demo data. The benchmarks are the separate
//!   binary `footfall-bench` (tools/bench), which uses this library.
//! - [`forwarded`], [`telemetry`], [`memory`]: trusted proxies, logging and ids (and
//!   `telemetry::series`, the Prometheus series and their recorder), the allocator setting.

// Denied, not forbidden: `memory` makes the one allowed call.
#![deny(unsafe_code)]
// Every public item says what it is for (`cargo doc` is the API reference of the library).
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod forwarded;
pub mod health;
pub mod ingest;
pub mod memory;
pub mod publish;
pub mod retention;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod webhooks;
