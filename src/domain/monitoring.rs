//! What a metrics scrape reads from the database: the state an operator alerts on.

use jiff::Timestamp;

use super::catalog::DeviceStatus;
use super::publication::PublicationPolicy;

/// The database's side of `GET /metrics`, read in one query at each scrape.
#[derive(Clone, Debug)]
pub struct MonitoringSnapshot {
    /// Distinct (device, minute) bins waiting for the next publication.
    pub pending_bins: u64,
    /// When data was last published; `None` before the first publication.
    pub last_published_at: Option<Timestamp>,
    /// The database's publication policy.
    pub policy: PublicationPolicy,
    /// The devices not removed, with what they last sent.
    pub devices: Vec<DeviceStatus>,
}
