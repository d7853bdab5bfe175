//! Black-box tests: the real server on port 0 over a temporary database, set up through the real
//! `footfall` binary, queried with a real HTTP client. Every test runs against SQLite and PostgreSQL.

mod cli;
mod cors;
mod errors;
mod hardening;
mod health;
mod helpers;
mod http_ingest;
mod ingest;
mod isolation;
mod layers;
mod mqtt;
mod openapi;
mod oracle;
mod page_cache;
mod pagination;
mod policy;
mod prometheus;
mod publication;
mod publication_policy;
mod reports;
mod retention;
mod scaling;
mod seed;
mod semantics;
mod tokens;
mod vendors;
mod webhooks;
