//! The publication schedule: at every multiple of the interval since the epoch (for 15 minutes: :00,
//! :15, :30 and :45), publish what was ingested. Each slot is claimed in the database, so any number of
//! servers over one database publish it exactly once.
//!
//! Whether data is published on a schedule or as soon as it is written is the database's
//! [`PublicationPolicy`], recorded by `serve` at start; [`after_write`] and [`at_start`] are the only
//! places that act on it, so every process writing to the database (servers, the CLI) applies it alike.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::domain::catalog::Catalog;
use crate::domain::publication::{PublicationPolicy, PublishSummary};
use crate::storage::{Result, Storage};
use crate::telemetry::series::{self, Trigger};

/// Parses `15m`, `1h`, `30s`, `900` (seconds) or `0`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not an interval like 15m, 1h, 30s or 0");
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: u64 = digits.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(invalid()),
    };
    Ok(Duration::from_secs(seconds))
}

/// The next slot after `now`: its number and the instant it starts.
pub fn next_slot(now: Timestamp, interval: Duration) -> (i64, Timestamp) {
    let step = interval.as_secs().max(1) as i64;
    let slot = now.as_second().div_euclid(step) + 1;
    (slot, Timestamp::from_second(slot * step).expect("in range"))
}

/// After a write (bins or an occupancy correction): publishes it now if the database's policy, as of
/// the catalog read for the write, is [`PublicationPolicy::OnIngest`]; otherwise the schedule will.
/// Returns whether it published.
pub async fn after_write(storage: &dyn Storage, catalog: &Catalog, now: Timestamp) -> Result<bool> {
    let on_ingest = catalog.publication_policy == PublicationPolicy::OnIngest;
    if on_ingest {
        publish(storage, now, None, Trigger::Write).await?;
    }
    Ok(on_ingest)
}

/// At a server's start: records its policy for every process writing to the database, and, on ingest,
/// publishes what is already pending (written under an earlier schedule), since no schedule will.
/// Returns the schedule's interval when the server must run one.
pub async fn at_start(storage: &dyn Storage, policy: PublicationPolicy) -> Result<Option<Duration>> {
    storage.set_publication_policy(policy).await?;
    match policy {
        PublicationPolicy::Scheduled { interval } => Ok(Some(interval)),
        PublicationPolicy::OnIngest => {
            if storage.has_pending().await? {
                publish(storage, Timestamp::now(), None, Trigger::Start).await?;
            }
            Ok(None)
        }
    }
}

/// Publishes at every slot of `interval` until `stop` changes; a slot another server claimed is skipped.
pub async fn run_schedule(storage: Arc<dyn Storage>, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        let (slot, at) = next_slot(Timestamp::now(), interval);
        let wait = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        match publish(storage.as_ref(), Timestamp::now(), Some(slot), Trigger::Schedule).await {
            Ok(Some(summary)) => tracing::info!(slot, bins = summary.bins, periods = summary.periods, "published"),
            Ok(None) => tracing::debug!(slot, "slot already published by another server"),
            Err(error) => tracing::error!(slot, %error, "scheduled publication failed; the next slot retries"),
        }
    }
}

/// [`crate::storage::PublicationStore::publish`], timed and counted for `/metrics`.
async fn publish(
    storage: &dyn Storage,
    now: Timestamp,
    slot: Option<i64>,
    trigger: Trigger,
) -> Result<Option<PublishSummary>> {
    let started = std::time::Instant::now();
    let published = storage.publish(now, slot).await;
    match &published {
        Ok(Some(summary)) => {
            series::publication(trigger, started.elapsed(), Some(summary.bins));
            crate::webhooks::publication_completed(storage, summary).await;
        }
        Ok(None) => {} // another server published the slot
        Err(_) => series::publication(trigger, started.elapsed(), None),
    }
    published
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_interval("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_interval("45").unwrap(), Duration::from_secs(45));
        assert!(parse_interval("15 minutes").is_err());
        assert!(parse_interval("m").is_err());
    }

    #[test]
    fn slots_align_to_the_quarter_hour() {
        let (slot, at) = next_slot("2023-10-26T12:07:31Z".parse().unwrap(), Duration::from_secs(900));
        assert_eq!(at, "2023-10-26T12:15:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(slot * 900, at.as_second());
        let (_, at) = next_slot("2023-10-26T12:15:00Z".parse().unwrap(), Duration::from_secs(900));
        assert_eq!(at, "2023-10-26T12:30:00Z".parse::<Timestamp>().unwrap());
    }
}
