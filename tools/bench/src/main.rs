//! `footfall-bench`: the benchmarks of footfall, kept out of the user's command line (and its `reqwest`
//! out of the server binary). `bench` measures ingest and the read API in-process; `soak` drives a
//! `footfall` server process. docs/benchmarks.md explains both.

// The same denial as the library's: no unsafe code here.
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod reports;
mod sensors;
mod soak;

#[derive(Parser, Debug)]
#[command(name = "footfall-bench", version, about = "Benchmarks of the footfall server")]
struct Cli {
    /// Database URL for `bench`: sqlite://PATH or postgres://USER@HOST/DB (an empty one) [default: a
    /// temporary SQLite file]
    #[arg(long, env = "FOOTFALL_DATABASE_URL", global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure ingest and query performance on a generated database.
    Bench(bench::BenchArgs),
    /// Measure the reports: a year by day, a month of all stores by day, a CSV export of every minute.
    Reports(reports::ReportsArgs),
    /// Measure sensors pushing in their own formats: mixed vendors, and a day-long Xovis package.
    Sensors(sensors::SensorArgs),
    /// Run a sustained mixed load against a server process and report throughput, latency and memory.
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    // The benchmark serves in-process: the same allocator setting as the server binary.
    footfall::memory::return_large_blocks_to_the_os();
    let cli = Cli::parse();
    footfall::telemetry::init(footfall::telemetry::LogFormat::Text);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bench(args) => bench::run(cli.database, args).await,
            Command::Reports(args) => reports::run(cli.database, args).await,
            Command::Sensors(args) => sensors::run(cli.database, args).await,
            Command::Soak(args) => soak::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed_and_every_default_parses() {
        Cli::command().debug_assert();
        for args in [&["footfall-bench", "bench"][..], &["footfall-bench", "soak"], &["footfall-bench", "sensors"]] {
            Cli::try_parse_from(args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
        }
    }
}
