//! `footfall prune`: delete old published minute data once (`serve` does it daily with a retention
//! setting).

use std::sync::Arc;

use anyhow::bail;
use clap::Args;

use crate::domain::retention::PruneBefore;
use crate::storage::Storage;

/// `footfall prune`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  footfall prune --before 2024-01-01\n  footfall prune --before 2024-01-01T06:00:00Z"
)]
pub struct PruneArgs {
    /// Remove the published minute data of every store-day (occupancy period) before this: a date (each
    /// store's local day, e.g. 2024-01-31) or a datetime (UTC unless it has an offset; the store-day
    /// holding it is kept).
    #[arg(long, value_parser = PruneBefore::parse)]
    pub before: PruneBefore,
}

/// Runs `footfall prune`: one transaction, then prints what it removed.
pub async fn run(storage: Arc<dyn Storage>, args: PruneArgs) -> anyhow::Result<()> {
    if args.before.is_after(jiff::Timestamp::now()) {
        bail!("--before {}: is in the future; prune removes only past data", args.before);
    }
    let summary = storage.prune(args.before).await?;
    println!("pruned published minute data before {}: {summary}", args.before);
    Ok(())
}
