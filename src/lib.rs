//! footfall: a people-counter metrics server.
//!
//! # Layout
//! - [`domain`]: identifiers, minutes and time zones, occupancy, pagination. No HTTP, no SQL.
//! - [`storage`]: the [`storage::Storage`] trait and its SQLite and PostgreSQL implementations;
//!   ingested bins stay pending until published, then feed per-store rollups the API reads.
//! - [`ingest`]: NDJSON/CSV parsing and validation into bins, all-or-nothing per file.
//! - [`api`]: the axum router, Basic auth with a verification cache, errors, the endpoints, OpenAPI.
//! - [`publish`]: the publication schedule.
//! - [`config`]: the settings of `serve`, defaults once, layered with a TOML file, variables and flags.
//! - [`app`]: builds and runs the server from a config and a bound listener.
//! - [`cli`]: the `footfall` command line; [`demo`] is a subcommand with its own module. The benchmarks
//!   are the separate binary `footfall-bench` (tools/bench), which uses this library.

// Denied, not forbidden: `memory` makes the one allowed call.
#![deny(unsafe_code)]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod forwarded;
pub mod ingest;
pub mod memory;
pub mod publish;
pub mod server;
pub mod storage;
pub mod telemetry;
