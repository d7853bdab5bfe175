//! The retention schedule of `serve`: published minute data older than the configured number of days
//! is pruned once at start and then daily (whole occupancy periods; see [`crate::domain::retention`]).

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::domain::retention::PruneBefore;
use crate::storage::Storage;

/// How often the schedule prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(86_400);

/// Up to where a retention of `days` prunes at `now`: the occupancy periods that ended `days` days ago.
pub fn prune_before(days: u32, now: Timestamp) -> PruneBefore {
    PruneBefore::Instant(now - SignedDuration::from_hours(24 * i64::from(days)))
}

/// Prunes minute data older than `days` days now and then every [`PRUNE_EVERY`], until `stop` changes,
/// logging what each prune removed. A failed prune is logged; the next one retries.
pub async fn run(storage: Arc<dyn Storage>, days: u32, mut stop: watch::Receiver<bool>) {
    loop {
        let before = prune_before(days, Timestamp::now());
        match storage.prune(before).await {
            Ok(summary) => tracing::info!(retention_days = days, %before, %summary, "pruned minute data"),
            Err(error) => {
                tracing::error!(retention_days = days, %error, "pruning minute data failed; retried in a day")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
