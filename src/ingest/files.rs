//! The file source: `footfall ingest FILE...`, each file parsed whole and stored in its own transaction.

use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::service::{self, IngestError, Permission};
use super::{Format, RecordError};
use crate::storage::Storage;
use crate::telemetry::series::{self, Source};

/// Ingests each file in its own transaction; reports every rejected file and fails if any was. `-` is
/// stdin, read as `stdin_format`.
pub async fn ingest_files(storage: &dyn Storage, files: &[String], stdin_format: Format) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress =
        indicatif::ProgressBar::with_draw_target(Some(files.len() as u64), indicatif::ProgressDrawTarget::stderr());
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {msg}")
            .expect("valid template"),
    );
    if std::io::stderr().is_terminal() {
        progress.enable_steady_tick(Duration::from_millis(120));
    }
    let mut records = 0u64;
    let mut rejected = Vec::new();
    for file in files {
        progress.set_message(file.clone());
        match ingest_file(storage, file, stdin_format).await {
            Ok(count) => {
                series::bins_ingested(Source::File, count);
                records += count;
            }
            Err(error) => {
                series::records_rejected(Source::File);
                progress.suspend(|| eprintln!("{file}: rejected: {error:#}"));
                rejected.push(file.as_str());
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ingested {records} records from {} of {} files in {seconds:.2} s ({:.0} records/s)",
        files.len() - rejected.len(),
        files.len(),
        records as f64 / seconds.max(1e-9)
    );
    if !rejected.is_empty() {
        bail!("{} file(s) rejected, nothing of them was stored: {}", rejected.len(), rejected.join(", "));
    }
    Ok(())
}

/// Reads, parses and ingests one file (`-` is stdin); returns the distinct bins written.
async fn ingest_file(storage: &dyn Storage, file: &str, stdin_format: Format) -> anyhow::Result<u64> {
    let (format, text) = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
        (stdin_format, text)
    } else {
        let format = Format::of_path(file)
            .context("unknown file type: use .ndjson, .jsonl, .json or .csv (or '-' for stdin with --format)")?;
        (format, std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?)
    };
    let records = tokio::task::spawn_blocking(move || super::parse(format, &text)).await??;
    let catalog = storage.catalog().await?;
    match service::ingest(storage, &catalog, Permission::AnyDevice, records).await {
        Ok(stored) => Ok(stored),
        Err(IngestError::Storage(error)) => Err(error.into()),
        // A file's records are named by their line.
        Err(rejected @ (IngestError::UnknownDevice { position, .. } | IngestError::OtherDevice { position, .. })) => {
            Err(RecordError { line: position, column: None, message: rejected.to_string() }.into())
        }
    }
}
