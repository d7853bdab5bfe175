//! Storage: traits per capability in domain terms ([`CatalogStore`], [`IngestStore`],
//! [`PublicationStore`], [`ReadStore`], [`Maintenance`], all of them [`Storage`]), with an embedded
//! SQLite and a PostgreSQL implementation, each a folder with one file per capability.
//!
//! Ingested bins land in a pending area. Publishing merges them into the published bins and
//! recomputes the store-level rollup (`store_minutes`: in, out and occupancy per store and minute) of
//! every occupancy period they touch, plus a per-period row count. The read API only ever reads
//! published data: the rollup for store rows, the published bins for one device's rows. The row counts
//! per period let a page be located by seeking to its period instead of skipping rows, so a page costs
//! the same wherever it lies in a long walk.

mod context_snapshot;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::domain::bins::{Bin, Correction, sort_and_dedupe};
use crate::domain::buckets::{Level, MinuteCounts, Totals, pieces};
use crate::domain::catalog::{
    Catalog, Device, DeviceStatus, NewScope, NewStore, NewUser, Republished, Store, StoreChange, StoreScope,
    UserCredentials, UserSummary,
};
use crate::domain::keys::{ApiTokenKey, DeviceKey, StoreKey, UserKey};
use crate::domain::monitoring::MonitoringSnapshot;
use crate::domain::opening_hours::OpeningHours;
use crate::domain::periods::{UnknownDeviceKey, locate_page, periods_holding, touched_periods};
use crate::domain::publication::{PublicationMark, PublicationPolicy, PublicationState, PublishSummary};
use crate::domain::reads::{MinuteRow, RequestContext, RollupRequest, RowSource, RowsPage, RowsQuery, TokenContext};
use crate::domain::retention::{PruneBefore, PruneSummary};
use crate::domain::rollups::{CheckReport, StoredRollup, verify_pieces, verify_rollups};
use crate::domain::sensors::{
    Observations, Role, Sensor, SensorConfig, UnknownSensor, Vendor, clamp_count, minutes_touched_by_reading,
    package_step, register_counts,
};
use crate::domain::tokens::{ApiTokenInfo, NewApiToken, TokenGrant};
use crate::domain::{DeviceId, Minute, Period, PeriodCalendar, ResetTime, StoreCode, TokenName, Username};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// What was to be added exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// What was named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request or the stored data is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A storage call's result.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl From<UnknownDeviceKey> for StorageError {
    fn from(error: UnknownDeviceKey) -> Self {
        StorageError::Invalid(error.to_string())
    }
}

/// Wraps an engine's error.
fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Backend(Box::new(error))
}

/// The outcome of an UPDATE or DELETE of one named row, given how many rows it changed: `NotFound`
/// when there was none.
fn expect_one(changed: u64, missing: impl FnOnce() -> String) -> Result<()> {
    if changed == 0 { Err(StorageError::NotFound(missing())) } else { Ok(()) }
}

/// Adds one row of a `users` query ordered by username (`code`: one store of its scope, if any) to
/// `users`, the summaries so far.
fn summarise_user(
    users: &mut Vec<UserSummary>,
    username: &str,
    all_stores: bool,
    can_ingest: bool,
    code: Option<&str>,
) -> Result<()> {
    if users.last().is_none_or(|user: &UserSummary| user.username.as_str() != username) {
        let username = Username::parse(username).map_err(StorageError::Invalid)?;
        users.push(UserSummary { username, stores: (!all_stores).then(Vec::new), can_ingest });
    }
    if let (Some(code), Some(stores)) = (code, users.last_mut().and_then(|user| user.stores.as_mut())) {
        stores.push(StoreCode::parse(code).map_err(StorageError::Invalid)?);
    }
    Ok(())
}

/// No occupancy period is longer than this (a local day plus any DST or zone shift).
const LONGEST_PERIOD_SECONDS: i64 = 3 * 86_400;
/// Above this many stores, the periods of a query are found by time rather than store by store...
const STORES_LOOKED_UP_ONE_BY_ONE: usize = 16;
/// ... unless the query spans more than this: each period found through the time index costs a lookup
/// in the table, while a store's own periods are read in one range of the table, so beyond a few
/// periods per store, store by store is cheaper (100 stores, 45 days: 1.6 ms by time, 0.5 ms by store).
const LONGEST_SPAN_LOOKED_UP_BY_TIME: i64 = 3 * 86_400;

/// Whether the periods of a query over `stores` from `first` to `last` are read store by store (rather
/// than through the time index).
fn periods_by_store(stores: usize, first: Minute, last: Minute) -> bool {
    stores <= STORES_LOOKED_UP_ONE_BY_ONE || last.unix_seconds() - first.unix_seconds() > LONGEST_SPAN_LOOKED_UP_BY_TIME
}

/// The meta key of the publication policy: the schedule's interval in seconds, 0 = on ingest.
const PUBLISH_INTERVAL_KEY: &str = "publish_interval_seconds";

/// The publication policy stored as `seconds`.
fn policy_from_seconds(seconds: i64) -> Result<PublicationPolicy> {
    let seconds = u64::try_from(seconds)
        .map_err(|_| StorageError::Invalid(format!("stored publication interval {seconds} is negative")))?;
    Ok(PublicationPolicy::from_interval(std::time::Duration::from_secs(seconds)))
}

/// The publication policy as stored: whole seconds, so a sub-second interval is refused rather than
/// rounded (down to zero, it would turn into publication on ingest).
fn policy_seconds(policy: PublicationPolicy) -> Result<i64> {
    let interval = policy.interval();
    if interval.subsec_nanos() != 0 {
        return Err(StorageError::Invalid(format!("the publication interval {interval:?} is not whole seconds")));
    }
    i64::try_from(interval.as_secs())
        .map_err(|_| StorageError::Invalid(format!("the publication interval {interval:?} is too long")))
}

/// What removing a device forgets of its sensor (`$1` is the device id), in both engines: the sensor
/// row, so its serial can be registered again, and the intervals and readings only its pushes needed.
/// Its bins stay.
pub(crate) const FORGET_SENSOR: [&str; 3] = [
    "DELETE FROM sensor_intervals WHERE device_id = $1",
    "DELETE FROM sensor_readings WHERE device_id = $1",
    "DELETE FROM sensors WHERE device_id = $1",
];

/// Opening hours as stored: their canonical text, NULL for learned hours.
fn stored_hours(text: Option<String>) -> Result<Option<OpeningHours>> {
    text.map(|text| {
        text.parse().map_err(|error| StorageError::Invalid(format!("stored opening hours {text:?}: {error}")))
    })
    .transpose()
}

/// A capacity as stored (NULL: none).
fn stored_capacity(value: Option<i64>) -> Result<Option<u32>> {
    value
        .map(|value| u32::try_from(value).map_err(|_| StorageError::Invalid(format!("stored capacity {value}"))))
        .transpose()
}

/// What a store change writes of the hours and the capacity: whether each changes, and its new stored
/// value.
fn profile_change(change: &StoreChange) -> (bool, Option<String>, bool, Option<i64>) {
    (
        change.hours.is_some(),
        change.hours.clone().flatten().map(|hours| hours.to_string()),
        change.capacity.is_some(),
        change.capacity.flatten().map(i64::from),
    )
}

/// An instant stored as Unix milliseconds.
fn stored_instant(milliseconds: i64) -> Timestamp {
    Timestamp::from_millisecond(milliseconds).expect("stored instants are in range")
}

/// The last publication, stored as Unix milliseconds, -1 before the first.
fn stored_publication_time(millis: i64) -> Option<Timestamp> {
    (millis >= 0).then(|| stored_instant(millis))
}

/// The snapshot from the scalar columns of [`monitoring_query`] and its devices.
fn monitoring_snapshot(
    pending_bins: i64,
    published_at: i64,
    interval_seconds: i64,
    devices: Vec<DeviceStatus>,
) -> Result<MonitoringSnapshot> {
    Ok(MonitoringSnapshot {
        pending_bins: pending_bins as u64,
        last_published_at: stored_publication_time(published_at),
        policy: policy_from_seconds(interval_seconds)?,
        devices,
    })
}

/// A minute stored as Unix seconds.
fn stored_minute(seconds: i64) -> Minute {
    Minute::from_unix_seconds(seconds).expect("stored minutes are whole minutes")
}

/// Opens the store named by a database URL (`sqlite://PATH[?mode=ro|rw|rwc...]` or `postgres://...`),
/// applying migrations; a missing SQLite file is created unless the URL says `mode=ro` or `mode=rw`.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Storage>> {
    open_with(url, false).await
}

/// Opens an existing store, as [`open`] does, for commands that only read: a missing SQLite file is an
/// error rather than a new empty database.
pub async fn open_existing(url: &str) -> anyhow::Result<Arc<dyn Storage>> {
    open_with(url, true).await
}

async fn open_with(url: &str, must_exist: bool) -> anyhow::Result<Arc<dyn Storage>> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let mut location = sqlite::SqliteUrl::parse(rest)?;
        if must_exist {
            location.refuse_missing();
        }
        Ok(Arc::new(sqlite::SqliteStorage::open_url(location).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStorage::connect(url).await?))
    } else {
        anyhow::bail!("unsupported database URL {url:?}: expected sqlite://PATH or postgres://...")
    }
}

/// The catalog and the accounts: stores, devices and their tokens, users and their API tokens.
#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Stores and devices; cheap when nothing changed since the last call.
    async fn catalog(&self) -> Result<Arc<Catalog>>;
    /// Adds a store; its code must be new.
    async fn add_store(&self, store: NewStore) -> Result<()>;
    /// Adds a device to a store with the SHA-256 (hex) of its ingest token.
    async fn add_device(&self, device_id: DeviceId, store: StoreCode, token_hash: String) -> Result<()>;
    /// Adds a user; the name must be new.
    async fn add_user(&self, user: NewUser) -> Result<()>;
    /// The account of a username, if there is one.
    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>>;
    /// Replaces a device's token hash (the catalog holds the hashes of active devices' tokens): the
    /// old token stops working at once.
    async fn rotate_device_token(&self, device_id: DeviceId, token_hash: String) -> Result<()>;
    /// Every device, ordered by device id, with what it last sent.
    async fn device_statuses(&self) -> Result<Vec<DeviceStatus>>;
    /// Removes a device: its token stops working at once and it can send no more bins; its bins stay.
    async fn remove_device(&self, device_id: DeviceId) -> Result<()>;
    /// Replaces a user's password hash; cached verifications of the old password stop matching.
    async fn set_password(&self, username: Username, password_hash: String) -> Result<()>;
    /// Removes a user, and its API tokens with it.
    async fn remove_user(&self, username: Username) -> Result<()>;
    /// Adds an API token of an existing user; its name must be new.
    async fn add_api_token(&self, token: NewApiToken) -> Result<()>;
    /// Every API token, ordered by name.
    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>>;
    /// Deletes an API token: it stops working at once.
    async fn revoke_api_token(&self, name: TokenName) -> Result<()>;
    /// Records a use of a token at `at`, unless a later one is recorded already.
    async fn record_token_use(&self, token: ApiTokenKey, at: Timestamp) -> Result<()>;
    /// Every user with its scope, ordered by username.
    async fn users(&self) -> Result<Vec<UserSummary>>;
    /// Renames a store or changes its time zone or occupancy reset. A new zone or reset moves every
    /// occupancy period of the store, so its published rollup is recomputed in the same transaction.
    async fn change_store(&self, code: StoreCode, change: StoreChange) -> Result<Republished>;
    /// Moves a device to another store from minute `from` on: its bins from `from` on count for the new
    /// store, earlier ones stay with the old one, and the rollups of both are recomputed where they
    /// change, in one transaction. The device keeps its id and token; the old store keeps an inactive
    /// row of it holding the earlier bins.
    async fn move_device(&self, device_id: DeviceId, store: StoreCode, from: Minute) -> Result<Republished>;
}

/// Writes of counts: bins and occupancy corrections, pending until published.
#[async_trait]
pub trait IngestStore: Send + Sync + 'static {
    /// Stores bins as pending, in one transaction: all or nothing, and records `received_at` as the
    /// devices' last-seen time. Returns the number of distinct (device, minute) bins written.
    async fn ingest(&self, bins: Vec<Bin>, received_at: Timestamp) -> Result<u64>;
    /// Records an occupancy correction; the next publication applies it.
    async fn add_correction(&self, store: StoreCode, correction: Correction) -> Result<()>;
    /// A store's corrections, by minute.
    async fn corrections(&self, store: StoreCode) -> Result<Vec<Correction>>;
}

/// The publication: what is pending becomes visible.
#[async_trait]
pub trait PublicationStore: Send + Sync + 'static {
    /// Makes everything pending visible, atomically, recomputing the rollups of the touched periods.
    /// With a schedule `slot` (the interval number since the epoch), publishes only if no process has
    /// published that slot yet, so several servers over one database publish once per interval;
    /// `None` is returned when another one did.
    async fn publish(&self, now: Timestamp, slot: Option<i64>) -> Result<Option<PublishSummary>>;
    /// Whether anything ingested is not published yet.
    async fn has_pending(&self) -> Result<bool>;
    /// Cheap: two values, for ETags and Last-Modified on every response.
    async fn publication_mark(&self) -> Result<PublicationMark>;
    /// What is published and what is pending.
    async fn publication(&self) -> Result<PublicationState>;
    /// When ingested data is published, as every process writing to this database applies it.
    async fn publication_policy(&self) -> Result<PublicationPolicy>;
    /// Replaces the publication policy for every process writing to this database.
    async fn set_publication_policy(&self, policy: PublicationPolicy) -> Result<()>;
}

/// Reads of published data.
#[async_trait]
pub trait ReadStore: Send + Sync + 'static {
    /// The user, the catalog and the publication mark at once: one trip to the store per read request
    /// before its query, rather than three.
    async fn request_context(&self, username: &str) -> Result<RequestContext>;
    /// The same for a request signed in with an API token, found by its SHA-256 (hex): the token and its
    /// user, the catalog and the publication mark, in one trip.
    async fn token_context(&self, token_hash: &str) -> Result<TokenContext>;
    /// Returns once this store's request contexts reflect every change committed before the call, by any
    /// process. SQLite's always do (it asks the database's commit counter on every request); PostgreSQL's
    /// are shared between change notices and catch up within a second, or at once through this.
    async fn catch_up(&self) -> Result<()> {
        Ok(())
    }
    /// A page of published rows and the count of all rows matching the query.
    async fn rows(&self, query: RowsQuery) -> Result<RowsPage>;
    /// Each request's published minute rows or hour or day pieces (`domain::buckets`), by start.
    async fn rollups(&self, requests: Vec<RollupRequest>) -> Result<Vec<Vec<(Minute, Totals)>>>;
    /// Each store's occupancy now in `period` (its current one) from published and pending counts
    /// together: the last minute with counts and the occupancy after it, `None` before any.
    async fn live_occupancy(&self, periods: Vec<(StoreKey, Period)>) -> Result<Vec<Option<(Minute, i64)>>>;
    /// Each device's bins `(minute, in, out)` from `first` to `last` (both included), published and pending
    /// together (a pending bin replacing the published one), by minute: what it sent, zeros included.
    async fn device_bins(
        &self,
        devices: Vec<DeviceKey>,
        first: Minute,
        last: Minute,
    ) -> Result<Vec<Vec<(Minute, i64, i64)>>>;
}

/// A piece row of `store_rollups` in the column order both engines read it in (after `level`):
/// start, entries, exits, row_count, last_minute, last_occupancy, peak_occupancy, peak_minute.
fn stored_piece(columns: [i64; 8]) -> (Minute, Totals) {
    let [start, entries, exits, rows, last_minute, last_occupancy, peak_occupancy, peak_minute] = columns;
    let totals = Totals {
        entries,
        exits,
        rows,
        last_minute: stored_minute(last_minute),
        last_occupancy,
        peak_occupancy,
        peak_minute: stored_minute(peak_minute),
    };
    (stored_minute(start), totals)
}

/// The piece columns [`stored_piece`] reads.
const PIECE_COLUMNS: &str =
    "start, entries, exits, row_count, last_minute, last_occupancy, peak_occupancy, peak_minute";

/// The last of a store's minutes of `period` with counts (published and pending together, `(minute, in,
/// out)` in order) and the occupancy after it, with the period's corrections (published or not).
fn live_from_minutes(minutes: &[(Minute, i64, i64)], corrections: &[(Minute, i64)]) -> Option<(Minute, i64)> {
    let occupancy = crate::domain::occupancy::running_occupancy(minutes, corrections);
    minutes.last().map(|&(minute, _, _)| minute).zip(occupancy.last().copied())
}

/// Backups, consistency checks, retention and monitoring.
#[async_trait]
pub trait Maintenance: Send + Sync + 'static {
    /// A consistent copy of the whole store at `path`, taken while it is in use.
    async fn backup(&self, path: std::path::PathBuf) -> Result<()>;
    /// Verifies the store's integrity and that the published rollups equal the published bins.
    async fn check(&self) -> Result<CheckReport>;
    /// Deletes the published minute data (bins, rollup rows, period counts and published corrections)
    /// of every occupancy period before `before` (see [`PruneBefore::cutoff`]), in one transaction.
    /// Pending bins are left to their publication.
    async fn prune(&self, before: PruneBefore) -> Result<PruneSummary>;
    /// What a metrics scrape shows of the database, in one query: pending bins, the last publication,
    /// the policy and the active devices' last bins.
    async fn monitoring(&self) -> Result<MonitoringSnapshot>;
}

/// The query of [`Maintenance::monitoring`], the same in both engines but for `pending_bins`, a scalar
/// subquery counting the bins ingested and not yet published: one row per active device, in the columns
/// of a device status (see the engines' `device_status`), then the pending bins, the last publication
/// and the publication interval (`$1` is [`PUBLISH_INTERVAL_KEY`]); one row of NULL device columns when
/// there is no device.
fn monitoring_query(pending_bins: &str) -> String {
    format!(
        "SELECT d.device_id, d.code, d.last_bin_minute, d.last_seen_at, d.active,
        {pending_bins},
        (SELECT value FROM meta WHERE key = 'last_published_at'),
        (SELECT value FROM meta WHERE key = $1)
    FROM (SELECT 1) AS one LEFT JOIN (
        SELECT d.device_id, s.code, d.last_bin_minute, d.last_seen_at, d.removed_at IS NULL AS active
        FROM devices d JOIN stores s ON s.id = d.store_id WHERE d.removed_at IS NULL) AS d ON true
    ORDER BY d.device_id"
    )
}

/// Everything the server and the CLI ask of a database, in domain terms: every capability at once, so
/// `Arc<dyn Storage>` serves them all. Implemented by every type that has them.
pub trait Storage:
    CatalogStore + IngestStore + PublicationStore + ReadStore + Maintenance + SensorStore + WebhookStore
{
}

impl<T: CatalogStore + IngestStore + PublicationStore + ReadStore + Maintenance + SensorStore + WebhookStore> Storage
    for T
{
}

/// A webhook endpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// Where deliveries are posted.
    pub url: String,
    /// The event types it receives, by name.
    pub events: Vec<String>,
    /// When it was added.
    pub created_at: Timestamp,
}

/// An event to queue for the endpoints subscribed to its type.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// What makes it unique: an event made twice (by two servers, or two passes) is queued once.
    pub key: String,
    /// Its type's name.
    pub event_type: String,
    /// The JSON body every endpoint receives.
    pub body: String,
    /// When it was made.
    pub at: Timestamp,
    /// Only this endpoint, whatever it subscribed to (`webhook test`).
    pub only_url: Option<String>,
}

/// A delivery claimed for one attempt.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    /// Its row.
    pub id: i64,
    /// Where to post.
    pub url: String,
    /// The endpoint's signing secret (`whsec_...`).
    pub secret: String,
    /// `webhook-id`: the same on every attempt.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt went.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// Its status.
        status: u16,
    },
    /// Anything else: retried at `retry_at`, or given up without one.
    Failed {
        /// The status, if the receiver answered.
        status: Option<u16>,
        /// What went wrong, for `webhook deliveries`.
        error: String,
        /// When to try again.
        retry_at: Option<Timestamp>,
    },
}

/// A delivery as `webhook deliveries` shows it.
#[derive(Clone, Debug)]
pub struct DeliveryStatus {
    /// `webhook-id`.
    pub message_id: String,
    /// The event's type.
    pub event_type: String,
    /// When the event was made.
    pub created_at: Timestamp,
    /// Attempts made.
    pub attempts: u32,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// When it is tried next; neither this nor `delivered_at`: given up.
    pub next_attempt_at: Option<Timestamp>,
    /// The last status answered.
    pub last_status: Option<u16>,
    /// The last error.
    pub last_error: Option<String>,
}

/// Webhook endpoints, the queue of their deliveries, and the alert states that make events.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Adds an endpoint; its URL must be new.
    async fn add_webhook(&self, url: String, secret: String, events: Vec<String>, at: Timestamp) -> Result<()>;
    /// Every endpoint, by URL.
    async fn webhooks(&self) -> Result<Vec<Webhook>>;
    /// An endpoint's signing secret, if there is one to that URL.
    async fn webhook_secret(&self, url: String) -> Result<Option<String>>;
    /// Removes an endpoint and its queued deliveries.
    async fn remove_webhook(&self, url: String) -> Result<()>;
    /// An endpoint's deliveries, newest first (at most `limit`).
    async fn webhook_deliveries(&self, url: String, limit: u32) -> Result<Vec<DeliveryStatus>>;
    /// Queues an event, one delivery per subscribed endpoint due at once, unless its key was queued
    /// before; returns whether it was new.
    async fn enqueue_event(&self, event: NewEvent) -> Result<bool>;
    /// Claims up to `limit` due deliveries until `lease_until`: no other claim takes them meanwhile.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records an attempt of a claimed delivery.
    async fn record_attempt(&self, id: i64, outcome: AttemptOutcome, at: Timestamp) -> Result<()>;
    /// Sets the state of an alert subject (e.g. `occupancy:116500`); returns the previous state if it
    /// changed (`Some(None)`: the subject is new), `None` if it was already `state`. One caller wins a
    /// change made by several at once.
    async fn change_alert_state(&self, subject: String, state: String) -> Result<Option<Option<String>>>;
}

/// The event types stored for an endpoint, from their comma-separated column.
fn stored_events(text: &str) -> Vec<String> {
    text.split(',').filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

/// One sensor push, resolved: the device's keys and what the payload observed.
#[derive(Clone, Debug)]
pub struct SensorPush {
    /// The device's id (the sensor tables are keyed by it, so a moved device keeps its history).
    pub device_id: DeviceId,
    /// Its active row.
    pub device: DeviceKey,
    /// Its store.
    pub store: StoreKey,
    /// What to store.
    pub observations: Observations,
    /// The package sequence (agent, number), if any.
    pub package: Option<(i64, i64)>,
    /// When it arrived.
    pub received_at: Timestamp,
}

/// Sensors pushing in their vendor's format, and what they observed.
#[async_trait]
pub trait SensorStore: Send + Sync + 'static {
    /// Adds a device that is a sensor, device and sensor in one transaction (as
    /// [`CatalogStore::add_device`] does a plain one); (vendor, serial) must be new.
    async fn add_sensor(
        &self,
        device_id: DeviceId,
        store: StoreCode,
        token_hash: String,
        config: SensorConfig,
    ) -> Result<()>;
    /// Every sensor, by device id.
    async fn sensors(&self) -> Result<Vec<Sensor>>;
    /// Records a push of an unregistered serial.
    async fn record_unknown_sensor(&self, vendor: Vendor, serial: &str, at: Timestamp) -> Result<()>;
    /// Unregistered serials that pushed, by vendor and serial.
    async fn unknown_sensors(&self) -> Result<Vec<UnknownSensor>>;
    /// Stores a push in one transaction: its intervals replace earlier ones of the same key, its
    /// readings join the known ones (a known instant is left as it was), and every minute they touch is
    /// recomputed and written as the device's pending bin. Returns the number of bins written.
    async fn push_sensor(&self, push: SensorPush) -> Result<u64>;
}

/// The bins of the touched minutes from the interval totals and each role's register readings (sorted,
/// starting at or before the first touched minute's earliest reading and running past the last).
fn sensor_bins(
    device: DeviceKey,
    touched: &std::collections::BTreeSet<Minute>,
    interval_totals: &std::collections::BTreeMap<Minute, (u64, u64)>,
    readings: &[(Role, Vec<(Timestamp, u64)>)],
) -> Vec<Bin> {
    let registers: Vec<(Role, std::collections::BTreeMap<Minute, u64>)> =
        readings.iter().map(|(role, values)| (*role, register_counts(values))).collect();
    touched
        .iter()
        .map(|minute| {
            let (mut entries, mut exits) = interval_totals.get(minute).copied().unwrap_or((0, 0));
            for (role, counts) in &registers {
                let count = counts.get(minute).copied().unwrap_or(0);
                match role {
                    Role::In => entries += count,
                    Role::Out => exits += count,
                }
            }
            Bin {
                device,
                minute: *minute,
                counts: crate::domain::Counts { entries: clamp_count(entries), exits: clamp_count(exits) },
            }
        })
        .collect()
}
