//! Black-box tests: the real server on port 0 over a temporary database, set up through the real
//! `footfall` binary, queried with a real HTTP client. Every test runs against SQLite and PostgreSQL.

mod helpers;

mod errors;
mod hardening;
mod http_ingest;
mod ingest;
mod isolation;
mod mqtt;
mod oracle;
mod pagination;
mod policy;
mod publication;
mod scaling;
mod seed;
mod semantics;
