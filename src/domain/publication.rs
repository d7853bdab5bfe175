//! The publication policy: when ingested data becomes visible to readers.
use std::time::Duration;
/// When ingested bins are published. Stored in the database, so every process writing to it (servers,
/// the CLI) applies the same policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicationPolicy {
    /// Published at every multiple of `interval` since the epoch by the schedule.
    Scheduled {
        /// The time between publications.
        interval: Duration,
    },
    /// Published by whichever process ingests it, in the same call.
    OnIngest,
}
impl PublicationPolicy {
    /// Zero means on ingest.
    pub fn from_interval(interval: Duration) -> Self {
        if interval.is_zero() { Self::OnIngest } else { Self::Scheduled { interval } }
    }
    /// The schedule's interval; zero on ingest.
    pub fn interval(self) -> Duration {
        match self {
            Self::Scheduled { interval } => interval,
            Self::OnIngest => Duration::ZERO,
        }
    }
}
impl Default for PublicationPolicy {
    fn default() -> Self {
        Self::Scheduled { interval: Duration::from_secs(15 * 60) }
    }
}

use jiff::Timestamp;

/// What one publication did.
#[derive(Clone, Debug, Default)]
pub struct PublishSummary {
    /// Distinct (device, minute) bins published.
    pub bins: u64,
    /// Occupancy periods recomputed.
    pub periods: u64,
}

/// Identifies what is published: it changes with every publication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicationMark {
    /// Counts publications.
    pub generation: i64,
    /// When the last one happened; `None` before the first.
    pub published_at: Option<Timestamp>,
}

/// What is published and what waits.
#[derive(Clone, Debug, Default)]
pub struct PublicationState {
    /// The last publication.
    pub mark: PublicationMark,
    /// Distinct (device, minute) bins waiting for the next publication.
    pub pending_bins: u64,
    /// Distinct (device, minute) bins published.
    pub published_bins: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_interval_is_publication_on_ingest() {
        assert_eq!(PublicationPolicy::from_interval(Duration::ZERO), PublicationPolicy::OnIngest);
        let hourly = PublicationPolicy::from_interval(Duration::from_secs(3600));
        assert_eq!(hourly, PublicationPolicy::Scheduled { interval: Duration::from_secs(3600) });
        assert_eq!(hourly.interval(), Duration::from_secs(3600));
        assert_eq!(PublicationPolicy::OnIngest.interval(), Duration::ZERO);
        assert_eq!(PublicationPolicy::default().interval(), Duration::from_secs(900));
    }
}
