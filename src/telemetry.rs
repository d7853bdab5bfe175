//! Logging set-up: structured logs to stderr, as text or one JSON object per line, filtered by `RUST_LOG`
//! (default `info`). Colours only on a terminal, so files and pipes get no ANSI escapes. The Prometheus
//! series and their recorder are [`series`].

pub mod series;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The format of the logs on stderr (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event, with the fields of its span (a request's method, path, ...) under `span`.
    Json,
}

impl LogFormat {
    /// The name `--log-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Installs the global subscriber; a second call is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}

/// A fresh id for an error or a request: 16 lowercase hex digits, logged with it and returned to the
/// client, so an operator can find what a client reports.
pub fn new_error_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
