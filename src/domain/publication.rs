//! The publication policy: when ingested data becomes visible to readers.
use std::time::Duration;
/// When ingested bins are published. Stored in the database, so every process writing to it (servers,
/// the CLI) applies the same policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicationPolicy {
    /// Published at every multiple of `interval` since the epoch by the schedule.
    Scheduled { interval: Duration },
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
