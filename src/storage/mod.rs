//! Storage: one trait in domain terms, with an embedded SQLite and a PostgreSQL implementation.
//!
//! Ingested bins land in a pending area. Publishing merges them into the published bins and
//! recomputes the store-level rollup (`store_minutes`: in, out and occupancy per store and minute) of
//! every occupancy period they touch, plus a per-period row count. The read API only ever reads
//! published data: the rollup for store rows, the published bins for one device's rows. The row counts
//! per period let a page be located by seeking to its period instead of skipping rows, so a page costs
//! the same wherever it lies in a long walk.

pub mod postgres;
pub mod sqlite;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::domain::publication::PublicationPolicy;
use crate::domain::{Counts, DeviceId, Minute, Period, PeriodCalendar, ResetTime, StoreCode, Username};

pub type StoreKey = i64;
pub type DeviceKey = i64;
pub type UserKey = i64;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Opens the store named by a database URL (`sqlite://PATH` or `postgres://...`), applying migrations.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Storage>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteStorage::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStorage::connect(url).await?))
    } else {
        anyhow::bail!("unsupported database URL {url:?}: expected sqlite://PATH or postgres://...")
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub key: StoreKey,
    pub code: StoreCode,
    pub name: String,
    pub timezone: TimeZone,
    pub reset: ResetTime,
}

impl Store {
    pub fn calendar(&self) -> PeriodCalendar<'_> {
        PeriodCalendar { timezone: &self.timezone, reset: self.reset }
    }
}

#[derive(Clone, Debug)]
pub struct Device {
    pub key: DeviceKey,
    pub device_id: DeviceId,
    pub store: StoreKey,
    /// False once removed: its published bins stay, it can send no more.
    pub active: bool,
}

/// Stores (ordered by code, byte order) and devices, as of one catalog version.
#[derive(Debug, Default)]
pub struct Catalog {
    pub version: i64,
    stores: Vec<Store>,
    devices: Vec<Device>,
    store_by_code: HashMap<String, usize>,
    store_by_key: HashMap<StoreKey, usize>,
    device_by_id: HashMap<String, usize>,
    device_by_key: HashMap<DeviceKey, usize>,
}

impl Catalog {
    pub fn new(version: i64, mut stores: Vec<Store>, devices: Vec<Device>) -> Catalog {
        stores.sort_by(|a, b| a.code.as_str().as_bytes().cmp(b.code.as_str().as_bytes()));
        fn index<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
            keys.enumerate().map(|(i, k)| (k, i)).collect()
        }
        Catalog {
            version,
            store_by_code: index(stores.iter().map(|s| s.code.to_string())),
            store_by_key: index(stores.iter().map(|s| s.key)),
            device_by_id: index(devices.iter().map(|d| d.device_id.to_string())),
            device_by_key: index(devices.iter().map(|d| d.key)),
            stores,
            devices,
        }
    }

    /// All stores, ordered by store code.
    pub fn stores(&self) -> &[Store] {
        &self.stores
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    pub fn store_by_code(&self, code: &str) -> Option<&Store> {
        self.store_by_code.get(code).map(|&i| &self.stores[i])
    }

    pub fn store(&self, key: StoreKey) -> Option<&Store> {
        self.store_by_key.get(&key).map(|&i| &self.stores[i])
    }

    pub fn device_by_id(&self, device_id: &str) -> Option<&Device> {
        self.device_by_id.get(device_id).map(|&i| &self.devices[i])
    }

    pub fn device(&self, key: DeviceKey) -> Option<&Device> {
        self.device_by_key.get(&key).map(|&i| &self.devices[i])
    }

    /// The position of a store in code order; rows of several stores are ordered by it.
    pub fn store_rank(&self, key: StoreKey) -> Option<usize> {
        self.store_by_key.get(&key).copied()
    }
}

#[derive(Clone, Debug)]
pub struct NewStore {
    pub code: StoreCode,
    pub name: String,
    pub timezone: String,
    pub reset: ResetTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreScope {
    All,
    Only(Vec<StoreKey>),
}

impl StoreScope {
    pub fn includes(&self, store: StoreKey) -> bool {
        match self {
            StoreScope::All => true,
            StoreScope::Only(stores) => stores.contains(&store),
        }
    }
}

#[derive(Clone, Debug)]
pub enum NewScope {
    All,
    Stores(Vec<StoreCode>),
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: Username,
    /// An argon2 PHC string; never the password.
    pub password_hash: String,
    pub scope: NewScope,
    /// May push bins and occupancy corrections over HTTP.
    pub can_ingest: bool,
}

/// What the API needs to authenticate and authorize a user.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub key: UserKey,
    pub password_hash: String,
    pub scope: StoreScope,
    pub can_ingest: bool,
}

/// A device with what it last sent.
#[derive(Clone, Debug)]
pub struct DeviceStatus {
    pub device_id: DeviceId,
    pub store_code: StoreCode,
    pub active: bool,
    /// The latest minute of any bin it sent.
    pub last_bin_minute: Option<Minute>,
    /// When its last bins were received.
    pub last_seen_at: Option<Timestamp>,
}

/// A manual occupancy count: at the end of `minute` the store held `value` people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    pub minute: Minute,
    pub value: u32,
    pub created_at: Timestamp,
}

/// One device's counts for one minute, resolved to the device's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bin {
    pub device: DeviceKey,
    pub minute: Minute,
    pub counts: Counts,
}

/// Sorts bins by (device, minute) and keeps the last of each key: within one ingest, a later bin
/// replaces an earlier one. Writing in key order is also several times faster.
pub fn sort_and_dedupe(bins: &mut Vec<Bin>) {
    bins.sort_by_key(|bin| (bin.device, bin.minute)); // stable: later duplicates stay later
    let mut write = 0;
    for read in 0..bins.len() {
        if write > 0 && (bins[write - 1].device, bins[write - 1].minute) == (bins[read].device, bins[read].minute) {
            bins[write - 1] = bins[read];
        } else {
            bins[write] = bins[read];
            write += 1;
        }
    }
    bins.truncate(write);
}

/// A request for published rows: for one device (its own bins), or for stores (their rollup).
#[derive(Clone, Debug)]
pub struct RowsQuery {
    pub source: RowSource,
    /// First and last minute included.
    pub first: Minute,
    pub last: Minute,
    pub offset: u64,
    pub limit: u32,
}

#[derive(Clone, Debug)]
pub enum RowSource {
    /// These stores, in store-code order.
    Stores(Vec<StoreKey>),
    Device(DeviceKey),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteRow {
    pub store: StoreKey,
    pub minute: Minute,
    pub entries: i64,
    pub exits: i64,
    /// People inside at the end of the minute (0 for device rows, which have no occupancy).
    pub occupancy: i64,
}

#[derive(Clone, Debug, Default)]
pub struct RowsPage {
    /// Rows matching the query on all pages.
    pub count: u64,
    pub rows: Vec<MinuteRow>,
}

#[derive(Clone, Debug, Default)]
pub struct PublishSummary {
    pub bins: u64,
    pub periods: u64,
}

/// Identifies what is published: it changes with every publication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicationMark {
    pub generation: i64,
    pub published_at: Option<Timestamp>,
}

/// What a read request needs before its query.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The account of the name the request signs in with, if there is one.
    pub user: Option<UserCredentials>,
    pub catalog: Arc<Catalog>,
    pub mark: PublicationMark,
}

#[derive(Clone, Debug, Default)]
pub struct PublicationState {
    pub mark: PublicationMark,
    /// Distinct (device, minute) bins waiting for the next publication.
    pub pending_bins: u64,
    /// Distinct (device, minute) bins published.
    pub published_bins: u64,
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores and devices; cheap when nothing changed since the last call.
    async fn catalog(&self) -> Result<Arc<Catalog>>;
    async fn add_store(&self, store: NewStore) -> Result<()>;
    async fn add_device(&self, device_id: DeviceId, store: StoreCode, token_hash: String) -> Result<()>;
    async fn add_user(&self, user: NewUser) -> Result<()>;
    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>>;
    /// The device whose ingest token has this SHA-256 (hex).
    async fn device_by_token_hash(&self, token_hash: &str) -> Result<Option<DeviceKey>>;
    /// Replaces a device's token hash: the old token stops working at once.
    async fn rotate_device_token(&self, device_id: DeviceId, token_hash: String) -> Result<()>;
    /// Every device, ordered by device id, with what it last sent.
    async fn device_statuses(&self) -> Result<Vec<DeviceStatus>>;
    /// Removes a device: its token stops working at once and it can send no more bins; its bins stay.
    async fn remove_device(&self, device_id: DeviceId) -> Result<()>;
    /// Replaces a user's password hash; cached verifications of the old password stop matching.
    async fn set_password(&self, username: Username, password_hash: String) -> Result<()>;
    async fn remove_user(&self, username: Username) -> Result<()>;
    /// A consistent copy of the whole store at `path`, taken while it is in use.
    async fn backup(&self, path: std::path::PathBuf) -> Result<()>;
    /// Verifies the store's integrity and that the published rollups equal the published bins.
    async fn check(&self) -> Result<CheckReport>;
    /// Stores bins as pending, in one transaction: all or nothing, and records `received_at` as the
    /// devices' last-seen time. Returns the number of distinct (device, minute) bins written.
    async fn ingest(&self, bins: Vec<Bin>, received_at: Timestamp) -> Result<u64>;
    /// Records an occupancy correction; the next publication applies it.
    async fn add_correction(&self, store: StoreCode, correction: Correction) -> Result<()>;
    /// A store's corrections, by minute.
    async fn corrections(&self, store: StoreCode) -> Result<Vec<Correction>>;
    /// Makes everything pending visible, atomically, recomputing the rollups of the touched periods.
    /// With a schedule `slot` (the interval number since the epoch), publishes only if no process has
    /// published that slot yet, so several servers over one database publish once per interval;
    /// `None` is returned when another one did.
    async fn publish(&self, now: Timestamp, slot: Option<i64>) -> Result<Option<PublishSummary>>;
    /// Whether anything ingested is not published yet.
    async fn has_pending(&self) -> Result<bool>;
    /// Cheap: two values, for ETags and Last-Modified on every response.
    async fn publication_mark(&self) -> Result<PublicationMark>;
    async fn publication(&self) -> Result<PublicationState>;
    /// The user, the catalog and the publication mark at once: one trip to the store per read request
    /// before its query, rather than three.
    async fn request_context(&self, username: &str) -> Result<RequestContext>;
    async fn rows(&self, query: RowsQuery) -> Result<RowsPage>;
    // stand-in: replaced by layout-storage's migration 0002
    /// When ingested data is published, as recorded by the last `serve` (the default if none has).
    async fn publication_policy(&self) -> Result<PublicationPolicy>;
    // stand-in: replaced by layout-storage's migration 0002
    /// Records the publication policy every process writing to this database applies.
    async fn set_publication_policy(&self, policy: PublicationPolicy) -> Result<()>;
}

/// Collects the occupancy periods touched by bins given in (device, minute) order, calling the
/// time-zone arithmetic once per period rather than once per bin.
pub fn touched_periods(
    catalog: &Catalog,
    bins: impl IntoIterator<Item = (DeviceKey, Minute)>,
) -> Result<BTreeSet<(StoreKey, Period)>> {
    let mut touched = BTreeSet::new();
    let mut current: Option<(DeviceKey, StoreKey, Period)> = None;
    for (device, minute) in bins {
        if let Some((d, _, period)) = current
            && d == device
            && period.start <= minute
            && minute < period.end
        {
            continue;
        }
        let store_key = catalog
            .device(device)
            .map(|d| d.store)
            .ok_or_else(|| StorageError::Invalid(format!("pending bin of unknown device key {device}")))?;
        let store = catalog.store(store_key).expect("a device's store is in the catalog");
        let period = store.calendar().period_of(minute);
        touched.insert((store_key, period));
        current = Some((device, store_key, period));
    }
    Ok(touched)
}

/// What `check` found; `problems` is empty for a consistent store.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    pub rollup_rows: u64,
    pub periods: u64,
    pub problems: Vec<String>,
}

/// One published rollup row as stored, for verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredRollup {
    pub store: StoreKey,
    pub minute: Minute,
    pub entries: i64,
    pub exits: i64,
    pub occupancy: i64,
}

/// Compares stored rollup rows with the ones recomputed from the published bins. Both iterators are in
/// (store, minute) order; `expected_counts` are the per-minute sums of the bins (minutes with any count),
/// `corrections` the published corrections in (store, minute) order. Returns the problems found
/// (at most `limit`) and the row count of every period that has rows.
pub fn verify_rollups(
    catalog: &Catalog,
    stored: impl IntoIterator<Item = StoredRollup>,
    expected_counts: impl IntoIterator<Item = (StoreKey, Minute, i64, i64)>,
    corrections: &[(StoreKey, Minute, i64)],
    limit: usize,
) -> (Vec<String>, std::collections::BTreeMap<(StoreKey, Period), u64>) {
    use crate::domain::occupancy::running_occupancy;
    let mut problems = Vec::new();
    let mut note = |problem: String| {
        if problems.len() < limit {
            problems.push(problem);
        }
    };
    let stored: Vec<StoredRollup> = stored.into_iter().collect();
    let expected: Vec<(StoreKey, Minute, i64, i64)> = expected_counts.into_iter().collect();
    let stored_keys: BTreeSet<(StoreKey, Minute)> = stored.iter().map(|r| (r.store, r.minute)).collect();
    let expected_keys: BTreeSet<(StoreKey, Minute)> = expected.iter().map(|e| (e.0, e.1)).collect();
    for (store, minute) in expected_keys.difference(&stored_keys) {
        note(format!("store {store}: minute {minute} has bins but no published rollup row"));
    }
    for (store, minute) in stored_keys.difference(&expected_keys) {
        note(format!("store {store}: rollup row at {minute} has no bins"));
    }
    // Group expected minutes by period and recompute occupancy there.
    let mut periods = std::collections::BTreeMap::new();
    let stored_by_key: HashMap<(StoreKey, Minute), StoredRollup> =
        stored.iter().map(|r| ((r.store, r.minute), *r)).collect();
    let mut run: Vec<(Minute, i64, i64)> = Vec::new();
    let mut current: Option<(StoreKey, Period)> = None;
    let flush = |current: Option<(StoreKey, Period)>,
                 run: &mut Vec<(Minute, i64, i64)>,
                 note: &mut dyn FnMut(String)| {
        let Some((store, period)) = current else { return };
        let period_corrections: Vec<(Minute, i64)> = corrections
            .iter()
            .filter(|c| c.0 == store && period.start <= c.1 && c.1 < period.end)
            .map(|c| (c.1, c.2))
            .collect();
        let occupancy = running_occupancy(run, &period_corrections);
        for (&(minute, entries, exits), occupancy) in run.iter().zip(occupancy) {
            if let Some(row) = stored_by_key.get(&(store, minute)) {
                if (row.entries, row.exits, row.occupancy) != (entries, exits, occupancy) {
                    note(format!(
                        "store {store}: minute {minute} stored (in {}, out {}, occupancy {}) but the bins give (in {entries}, out {exits}, occupancy {occupancy})",
                        row.entries, row.exits, row.occupancy
                    ));
                }
            }
        }
        run.clear();
    };
    for (store, minute, entries, exits) in expected {
        let inside = current.is_some_and(|(s, p)| s == store && p.start <= minute && minute < p.end);
        if !inside {
            flush(current, &mut run, &mut note);
            let Some(calendar) = catalog.store(store).map(Store::calendar) else {
                note(format!("bins of unknown store key {store}"));
                current = None;
                continue;
            };
            current = Some((store, calendar.period_of(minute)));
        }
        *periods.entry(current.expect("set above")).or_insert(0u64) += 1;
        run.push((minute, entries, exits));
    }
    flush(current, &mut run, &mut note);
    (problems, periods)
}

/// A period of a store with the number of rollup rows it holds.
#[derive(Clone, Copy, Debug)]
pub struct PeriodCount {
    pub store: StoreKey,
    pub period: Period,
    pub rows: u64,
}

/// Where a page starts: the store, the first minute to read from, and how many rows to skip there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageStart {
    pub store_index: usize,
    pub from: Minute,
    pub skip: u64,
}

/// Locates row `offset` of a multi-store query given the in-range row count of each period, listed in
/// (store order, period start) order with `store_index` the position in the query's store list.
pub fn locate_page(periods: &[(usize, Period, u64)], first: Minute, mut offset: u64) -> Option<PageStart> {
    for &(store_index, period, rows) in periods {
        if offset < rows {
            return Some(PageStart { store_index, from: period.start.max(first), skip: offset });
        }
        offset -= rows;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(device: DeviceKey, minute: i64, entries: u32) -> Bin {
        Bin { device, minute: Minute::from_unix_seconds(minute * 60).unwrap(), counts: Counts { entries, exits: 0 } }
    }

    #[test]
    fn later_bins_replace_earlier_ones_for_the_same_key() {
        let mut bins = vec![bin(2, 5, 1), bin(1, 5, 1), bin(2, 5, 2), bin(1, 4, 1), bin(2, 5, 3)];
        sort_and_dedupe(&mut bins);
        assert_eq!(bins, vec![bin(1, 4, 1), bin(1, 5, 1), bin(2, 5, 3)]);
    }

    #[test]
    fn pages_are_located_by_period_counts() {
        let m = |n: i64| Minute::from_unix_seconds(n * 60).unwrap();
        let p = |a, b| Period { start: m(a), end: m(b) };
        let periods = [(0, p(0, 10), 3), (0, p(10, 20), 2), (1, p(0, 10), 4)];
        assert_eq!(locate_page(&periods, m(5), 0), Some(PageStart { store_index: 0, from: m(5), skip: 0 }));
        assert_eq!(locate_page(&periods, m(5), 4), Some(PageStart { store_index: 0, from: m(10), skip: 1 }));
        assert_eq!(locate_page(&periods, m(5), 5), Some(PageStart { store_index: 1, from: m(5), skip: 0 }));
        assert_eq!(locate_page(&periods, m(5), 9), None);
    }
}
