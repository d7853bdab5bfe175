//! PostgreSQL storage: tokio-postgres over a deadpool pool, for several stateless servers sharing one
//! database (docs/scaling.md).
//!
//! The schema mirrors SQLite's, with every bin table keyed by `store_id` first so it can be sharded by
//! store with Citus; minutes are bigint Unix seconds, as in SQLite.
//!
//! Concurrency across processes rests on one transaction-level advisory lock, the publish lock:
//! `publish` holds it exclusively, so publications never overlap; `add_correction` shares it, so a
//! publication marks published only the corrections it applied. Ingests take no lock: a publication
//! takes the pending bins it publishes in one `DELETE ... RETURNING` (under READ COMMITTED, reading the
//! keys and clearing them in two statements could lose a bin that landed in between), so ingests are
//! acknowledged while a publication runs, and wait only when they re-send a key being taken.
//!
//! A large ingest of new keys skips the pending bins: it is copied straight into `bins` and notes its
//! runs of minutes in `pending_spans`. Every read of published bins (the rollup, a device's rows, the
//! check) leaves out the bins a note covers, in the same statement, so such an ingest is published
//! whole: by the publication that takes its notes, and by no statement before.
//! Readers take no lock: `rows` reads one REPEATABLE READ snapshot.
//!
//! tokio-postgres rather than sqlx: binary COPY for bulk ingest, pipelining of independent statements
//! on one connection, and no database needed at build time; deadpool adds the pool and its statement
//! cache (every statement is prepared once per connection).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use futures_util::{TryStreamExt, pin_mut};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{IsolationLevel, NoTls};

use super::context_snapshot::ContextSnapshot;
use super::*;
use crate::domain::occupancy::running_occupancy;

mod catalog;
mod changes;
mod ingest;
mod maintenance;
mod publication;
mod reads;
mod sensors;
mod webhooks;

/// The schema steps, in order; `schema_migrations` records how many a database has had.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_publication_policy.sql"),
    include_str!("migrations/0003_api_tokens.sql"),
    include_str!("migrations/0004_device_moves.sql"),
    include_str!("migrations/0005_sensors.sql"),
    include_str!("migrations/0006_sensor_minute_totals.sql"),
    include_str!("migrations/0007_store_rollups.sql"),
    include_str!("migrations/0008_store_hours.sql"),
    include_str!("migrations/0009_webhooks.sql"),
    include_str!("migrations/0010_bins_in_place.sql"),
];
/// The migration that added `store_rollups`, filled from the existing rollup when it is applied.
const STORE_ROLLUPS_MIGRATION: i64 = 7;

/// Advisory lock keys ("footfall" in ASCII, plus one). Advisory locks are per database.
const MIGRATION_LOCK: i64 = 0x666f_6f74_6661_6c6c;
const PUBLISH_LOCK: i64 = MIGRATION_LOCK + 1;

/// Connections per server process. Each API request holds one for a single short transaction and the
/// publisher one more, so 16 keeps a 2-core server's requests from queueing on the pool, while four
/// servers (64) plus the CLI and maintenance stay under PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Overridden by the URL's `pool_size` query parameter, which wins over this variable.
pub const POOL_SIZE_ENV: &str = "FOOTFALL_PG_POOL_SIZE";

/// The PostgreSQL store: a pool of connections to one database.
pub struct PostgresStorage {
    pool: TimedPool,
    catalog: Mutex<Arc<Catalog>>,
    /// The pool's connection settings, for the change listener's own connection.
    config: tokio_postgres::Config,
    changes: Arc<changes::ChangeWatch>,
}

/// The pool, recording how long each call waits for a connection: a full pool shows there first.
struct TimedPool(Pool);

impl TimedPool {
    async fn get(&self) -> Result<deadpool_postgres::Client, deadpool_postgres::PoolError> {
        let started = std::time::Instant::now();
        let client = self.0.get().await;
        crate::telemetry::series::pool_wait("postgres", None, started.elapsed());
        client
    }
}

/// `HOST:PORT/DB` of a connection's settings, for messages (never its user or password).
fn server_name(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

/// A failed first connection as one line naming the server and the cause once: deadpool's and
/// tokio-postgres' errors each repeat their source in their own message, so the whole chain said
/// "error connecting to server" twice.
fn connection_failure(server: &str, error: deadpool_postgres::PoolError) -> anyhow::Error {
    use std::error::Error as _;
    let cause = match &error {
        deadpool_postgres::PoolError::Backend(error) => match (error.as_db_error(), error.source()) {
            (Some(refusal), _) => format!("{}: {}", refusal.severity(), refusal.message()),
            (None, Some(cause)) => cause.to_string(),
            (None, None) => error.to_string(),
        },
        deadpool_postgres::PoolError::Timeout(_) => "timed out".to_owned(),
        other => other.to_string(),
    };
    anyhow::anyhow!("cannot connect to PostgreSQL at {server}: {cause}")
}

/// Keys are bound and read as their row id (bigint).
macro_rules! sql_keys {
    ($($key:ty),*) => {$(
        impl<'a> FromSql<'a> for $key {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                i64::from_sql(ty, raw).map(Self)
            }

            fn accepts(ty: &Type) -> bool {
                <i64 as FromSql>::accepts(ty)
            }
        }

        impl ToSql for $key {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut tokio_postgres::types::private::BytesMut,
            ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <i64 as ToSql>::accepts(ty)
            }

            tokio_postgres::types::to_sql_checked!();
        }
    )*};
}

sql_keys!(StoreKey, DeviceKey, UserKey, ApiTokenKey);

impl From<tokio_postgres::Error> for StorageError {
    fn from(error: tokio_postgres::Error) -> Self {
        backend(error)
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        backend(error)
    }
}

/// The outcome of an INSERT of one named row: `AlreadyExists` when a unique key already holds it.
fn reject_duplicate<T>(inserted: Result<T, tokio_postgres::Error>, existing: impl FnOnce() -> String) -> Result<T> {
    match inserted {
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StorageError::AlreadyExists(existing())),
        other => Ok(other?),
    }
}

/// Splits the footfall-only `pool_size` parameter off a PostgreSQL URL (tokio-postgres rejects
/// parameters it does not know).
fn split_pool_size(url: &str) -> anyhow::Result<(String, Option<usize>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut pool_size = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("pool_size", value)) => pool_size = Some(parse_pool_size(value)?),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, pool_size))
}

fn parse_pool_size(value: &str) -> anyhow::Result<usize> {
    match value.parse::<usize>() {
        Ok(size) if size > 0 => Ok(size),
        _ => anyhow::bail!("pool size {value:?} is not a positive integer"),
    }
}

async fn meta(transaction: &Transaction<'_>, key: &str) -> Result<i64> {
    let statement = transaction.prepare_cached("SELECT value FROM meta WHERE key = $1").await?;
    Ok(transaction.query_one(&statement, &[&key]).await?.get(0))
}

async fn store_key(transaction: &Transaction<'_>, code: &StoreCode) -> Result<StoreKey> {
    let statement = transaction.prepare_cached("SELECT id FROM stores WHERE code = $1").await?;
    transaction
        .query_opt(&statement, &[&code.as_str()])
        .await?
        .map(|row| row.get(0))
        .ok_or_else(|| StorageError::NotFound(format!("store {code} does not exist")))
}

async fn bump_catalog(transaction: &Transaction<'_>) -> Result<()> {
    transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'catalog_version'", &[]).await?;
    changes::announce_change(transaction).await?;
    Ok(())
}

async fn load_catalog(transaction: &Transaction<'_>) -> Result<Catalog> {
    // The version is read first: the stores and devices read after it are at least that new, so a
    // concurrent change costs at most one extra reload.
    let version = meta(transaction, "catalog_version").await?;
    let stores = transaction
        .query("SELECT id, code, name, timezone, occupancy_reset_minutes, opening_hours, capacity FROM stores", &[]);
    let devices = transaction.query("SELECT id, device_id, store_id, removed_at IS NULL, token_hash FROM devices", &[]);
    let sensor_columns = format!("SELECT {} FROM sensors", sensors::SENSOR_COLUMNS);
    let sensors = transaction.query(&sensor_columns, &[]);
    let (stores, devices, sensors) = futures_util::try_join!(stores, devices, sensors)?;
    let policy = meta(transaction, PUBLISH_INTERVAL_KEY).await?;
    let invalid = |what: String| StorageError::Invalid(what);
    let stores = stores
        .iter()
        .map(|row| {
            let timezone: String = row.get(3);
            let reset: i32 = row.get(4);
            Ok(Store {
                key: row.get(0),
                code: StoreCode::parse(row.get(1)).map_err(invalid)?,
                name: row.get(2),
                timezone: TimeZone::get(&timezone)
                    .map_err(|e| StorageError::Invalid(format!("store time zone {timezone:?}: {e}")))?,
                reset: u16::try_from(reset)
                    .ok()
                    .and_then(ResetTime::from_minutes)
                    .ok_or_else(|| StorageError::Invalid(format!("bad occupancy reset {reset}")))?,
                hours: stored_hours(row.get(5))?,
                capacity: stored_capacity(row.get(6))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tokens: Vec<(String, DeviceKey)> =
        devices.iter().filter(|row| row.get::<_, bool>(3)).map(|row| (row.get(4), row.get(0))).collect();
    let devices = devices
        .iter()
        .map(|row| {
            Ok(Device {
                key: row.get(0),
                device_id: DeviceId::parse(row.get(1)).map_err(invalid)?,
                store: row.get(2),
                active: row.get(3),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let sensors = sensors
        .iter()
        .map(|row| sensors::sensor_of(row).map(|sensor| (sensor.device_id, sensor.config)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Catalog::new(version, stores, devices)
        .with_device_tokens(tokens)
        .with_sensors(sensors)
        .with_publication_policy(policy_from_seconds(policy)?))
}

/// The user in columns `at..at + 5` of a row (id, password_hash, all_stores, can_ingest, store ids), or
/// `None` if the id is NULL.
fn user_at(row: &tokio_postgres::Row, at: usize) -> Option<UserCredentials> {
    let key = row.get::<_, Option<UserKey>>(at)?;
    let scope = if row.get(at + 2) { StoreScope::All } else { StoreScope::Only(row.get(at + 4)) };
    Some(UserCredentials { key, password_hash: row.get(at + 1), scope, can_ingest: row.get(at + 3) })
}

fn publication_mark_from(generation: i64, published_at: i64) -> PublicationMark {
    PublicationMark { generation, published_at: stored_publication_time(published_at) }
}

impl PostgresStorage {
    /// Connects to `postgres://...` (optionally `?pool_size=N`) and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<PostgresStorage> {
        let (url, from_url) = split_pool_size(url)?;
        let pool_size = match (from_url, std::env::var(POOL_SIZE_ENV)) {
            (Some(size), _) => size,
            (None, Ok(value)) => parse_pool_size(&value)?,
            (None, Err(_)) => DEFAULT_POOL_SIZE,
        };
        let mut config: tokio_postgres::Config = url.parse()?;
        let server = server_name(&config);
        if config.get_application_name().is_none() {
            config.application_name("footfall");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            // A request waiting this long for a connection fails rather than hanging.
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()?;
        let storage = PostgresStorage {
            pool: TimedPool(pool),
            catalog: Mutex::new(Arc::new(Catalog::default())),
            config,
            changes: Arc::default(),
        };
        // The first connection says whether the server is there at all.
        let client = storage.pool.get().await.map_err(|error| connection_failure(&server, error))?;
        storage.migrate(client).await?;
        Ok(storage)
    }

    /// Commits a transaction that announced a change, and counts it at once for this process.
    async fn commit_change(&self, transaction: Transaction<'_>) -> Result<()> {
        transaction.commit().await?;
        self.changes.changed();
        Ok(())
    }

    /// Announces a change a statement of `client` outside a transaction just committed.
    async fn announce_committed_change(&self, client: &deadpool_postgres::Client) -> Result<()> {
        changes::announce_change(client).await?;
        self.changes.changed();
        Ok(())
    }

    async fn migrate(&self, mut client: deadpool_postgres::Client) -> anyhow::Result<()> {
        let transaction = client.transaction().await?;
        // Servers starting together queue here; each then sees the others' migrations as applied.
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
        let applied: i64 =
            transaction.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?.get(0);
        anyhow::ensure!(
            applied as usize <= MIGRATIONS.len(),
            "the database has schema version {applied}, newer than this footfall ({})",
            MIGRATIONS.len()
        );
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            transaction.batch_execute(migration).await?;
            transaction.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&(index as i64 + 1)]).await?;
        }
        if applied < STORE_ROLLUPS_MIGRATION {
            self.fill_pieces(&transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Computes every store's hour and day pieces from its minute rollup.
    async fn fill_pieces(&self, transaction: &Transaction<'_>) -> Result<()> {
        let catalog = self.catalog_in(transaction).await?;
        for store in catalog.stores() {
            let rows: Vec<MinuteCounts> = transaction
                .query(
                    "SELECT minute, entries, exits, occupancy FROM store_minutes WHERE store_id = $1 ORDER BY minute",
                    &[&store.key],
                )
                .await?
                .iter()
                .map(|row| (stored_minute(row.get(0)), row.get(1), row.get(2), row.get(3)))
                .collect();
            let mut columns = publication::PieceColumns::default();
            columns.add(store.key, &store.calendar(), &rows);
            columns.insert(transaction).await?;
        }
        Ok(())
    }

    /// The catalog, given its current version: the cached one while that is unchanged.
    async fn catalog_at(&self, client: &mut deadpool_postgres::Client, version: i64) -> Result<Arc<Catalog>> {
        let cached = self.catalog.lock().unwrap().clone();
        if cached.version == version {
            return Ok(cached);
        }
        let transaction = client.transaction().await?;
        let catalog = self.catalog_in(&transaction).await?;
        transaction.commit().await?;
        Ok(catalog)
    }

    /// The catalog as of `transaction`, reloaded only when its version changed.
    async fn catalog_in(&self, transaction: &Transaction<'_>) -> Result<Arc<Catalog>> {
        let version = meta(transaction, "catalog_version").await?;
        let cached = self.catalog.lock().unwrap().clone();
        if cached.version == version {
            return Ok(cached);
        }
        let fresh = Arc::new(load_catalog(transaction).await?);
        *self.catalog.lock().unwrap() = fresh.clone();
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_taken_off_the_url() {
        let (url, size) = split_pool_size("postgres://u@h/db?pool_size=4&sslmode=disable").unwrap();
        assert_eq!((url.as_str(), size), ("postgres://u@h/db?sslmode=disable", Some(4)));
        let (url, size) = split_pool_size("postgres://u@h/db?pool_size=4").unwrap();
        assert_eq!((url.as_str(), size), ("postgres://u@h/db", Some(4)));
        assert_eq!(split_pool_size("postgres://u@h/db").unwrap(), ("postgres://u@h/db".to_owned(), None));
        assert!(split_pool_size("postgres://u@h/db?pool_size=0").is_err());
        assert!(split_pool_size("postgres://u@h/db?pool_size=many").is_err());
    }
}
