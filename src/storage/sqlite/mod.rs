//! The embedded store: SQLite in WAL mode, one writer connection and a pool of readers.
//!
//! Durability: `synchronous=FULL`, so a commit that returned survives a power cut; WAL keeps readers
//! and the writer out of each other's way, and every multi-statement change is one transaction.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use super::context_snapshot::ContextSnapshot;
use super::*;
use crate::domain::occupancy::running_occupancy;

mod catalog;
mod inbox;
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
];
/// The migration that added `store_rollups`, filled from the existing rollup when it is applied.
const STORE_ROLLUPS_MIGRATION: i64 = 7;

/// How a database file is opened, from the URL's `mode` parameter (SQLite's URI names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteMode {
    /// `rwc`, the default: read and write, creating the file if need be.
    ReadWriteCreate,
    /// `rw`: read and write an existing file.
    ReadWrite,
    /// `ro`: read an existing file; every write is refused.
    ReadOnly,
}

/// The URI parameters SQLite itself understands besides `mode`, passed on to it.
const SQLITE_URI_PARAMETERS: &[&str] = &["cache", "immutable", "nolock", "psow", "vfs"];

/// What follows `sqlite://`: the file and its parameters, e.g. `footfall.db?mode=ro`.
#[derive(Clone, Debug)]
pub struct SqliteUrl {
    path: PathBuf,
    mode: SqliteMode,
    /// Parameters passed to SQLite in a `file:` URI.
    passed: Vec<(String, String)>,
}

impl SqliteUrl {
    /// Splits `PATH[?NAME=VALUE&...]`; an unknown parameter or mode is an error naming it.
    pub fn parse(text: &str) -> anyhow::Result<SqliteUrl> {
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        anyhow::ensure!(
            !path.is_empty() && path != ":memory:",
            "sqlite needs a file path (sqlite://footfall.db): readers share it with the writer"
        );
        let mut url = SqliteUrl { path: PathBuf::from(path), mode: SqliteMode::ReadWriteCreate, passed: Vec::new() };
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "mode" => {
                    url.mode = match &*value {
                        "rwc" => SqliteMode::ReadWriteCreate,
                        "rw" => SqliteMode::ReadWrite,
                        "ro" => SqliteMode::ReadOnly,
                        _ => anyhow::bail!("sqlite URL: mode={value:?} is not one of ro, rw, rwc"),
                    }
                }
                known if SQLITE_URI_PARAMETERS.contains(&known) => url.passed.push((name.into(), value.into())),
                _ => anyhow::bail!(
                    "sqlite URL: unknown parameter {name:?} (known: mode=ro|rw|rwc, {})",
                    SQLITE_URI_PARAMETERS.join(", ")
                ),
            }
        }
        Ok(url)
    }

    /// Makes a missing file an error rather than a new database (for commands that only read).
    pub fn refuse_missing(&mut self) {
        if self.mode == SqliteMode::ReadWriteCreate {
            self.mode = SqliteMode::ReadWrite;
        }
    }

    fn open_connection(&self) -> rusqlite::Result<Connection> {
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= match self.mode {
            SqliteMode::ReadWriteCreate => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            SqliteMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            SqliteMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        };
        if self.passed.is_empty() {
            return Connection::open_with_flags(&self.path, flags);
        }
        // A `file:` URI carries the parameters; the path is percent-encoded so `?`, `#` and `%` in it
        // stay part of the name.
        let mut uri = String::from("file:");
        for byte in self.path.to_string_lossy().bytes() {
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => uri.push(byte as char),
                _ => uri.push_str(&format!("%{byte:02X}")),
            }
        }
        let query: Vec<String> = self.passed.iter().map(|(name, value)| format!("{name}={value}")).collect();
        uri.push('?');
        uri.push_str(&query.join("&"));
        Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
    }
}

/// The embedded store.
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    url: SqliteUrl,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    catalog: Mutex<Arc<Catalog>>,
    read_slots: tokio::sync::Semaphore,
    write_slots: tokio::sync::Semaphore,
    /// Appends to the inbox take turns under its mutex: one waits on a blocking thread, the rest here.
    inbox_slots: tokio::sync::Semaphore,
    /// Sensor pushes waiting for the writer: the next trip to it writes all of them in one
    /// transaction (group commit), so a commit's fsync is shared by every push that queued meanwhile.
    queued_pushes: Mutex<Vec<sensors::QueuedPush>>,
    /// A connection that only asks SQLite whether anything was committed since it last asked
    /// (`PRAGMA data_version`): reads of request contexts are shared while nothing was.
    watch: Mutex<Connection>,
    /// Request contexts as of one `data_version`.
    contexts: Mutex<ContextSnapshot>,
    /// Where ingests go while a publication holds the writer; none when open read-only.
    inbox: Option<inbox::Inbox>,
}

#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
    Inbox,
}

/// Concurrent readers: a few per core is all SQLite can use; more only add page caches.
const MAX_READERS: usize = 8;

/// Keys are bound and read as their row id.
macro_rules! sql_keys {
    ($($key:ty),*) => {$(
        impl rusqlite::types::ToSql for $key {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl rusqlite::types::FromSql for $key {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map(Self)
            }
        }
    )*};
}

sql_keys!(StoreKey, DeviceKey, UserKey, ApiTokenKey);

impl From<rusqlite::Error> for StorageError {
    fn from(error: rusqlite::Error) -> Self {
        backend(error)
    }
}

impl SqliteStorage {
    /// Opens (creating if need be) the database file at `path` and applies pending migrations.
    pub async fn open(path: &str) -> anyhow::Result<SqliteStorage> {
        let url = SqliteUrl { path: PathBuf::from(path), mode: SqliteMode::ReadWriteCreate, passed: Vec::new() };
        anyhow::ensure!(
            !path.is_empty() && path != ":memory:",
            "sqlite needs a file path (sqlite://footfall.db): readers share it with the writer"
        );
        Self::open_url(url).await
    }

    /// Opens the database of a `sqlite://` URL: read-only with `mode=ro` (the schema must then be
    /// current, as nothing can be migrated), otherwise applying pending migrations.
    pub async fn open_url(url: SqliteUrl) -> anyhow::Result<SqliteStorage> {
        if url.mode != SqliteMode::ReadWriteCreate && !url.path.exists() {
            anyhow::bail!(
                "the database {} does not exist (a command that adds a store creates it)",
                url.path.display()
            );
        }
        let inner = tokio::task::spawn_blocking(move || -> anyhow::Result<Inner> {
            let mut writer =
                open_connection(&url, true).with_context(|| format!("opening the database {}", url.path.display()))?;
            if url.mode == SqliteMode::ReadOnly {
                check_schema_is_current(&writer)?;
            } else {
                migrate(&mut writer)?;
            }
            let inbox = match url.mode {
                SqliteMode::ReadOnly => None,
                _ => Some(inbox::Inbox::open(&url, &mut writer)?),
            };
            let catalog = Arc::new(load_catalog(&writer)?);
            let watch = open_connection(&url, false)?;
            Ok(Inner {
                url,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                catalog: Mutex::new(catalog),
                read_slots: tokio::sync::Semaphore::new(MAX_READERS),
                // One writing, one waiting on the writer lock: the rest wait here, without a thread.
                write_slots: tokio::sync::Semaphore::new(2),
                inbox_slots: tokio::sync::Semaphore::new(1),
                queued_pushes: Mutex::new(Vec::new()),
                watch: Mutex::new(watch),
                contexts: Mutex::new(ContextSnapshot::default()),
                inbox,
            })
        })
        .await??;
        let inner = Arc::new(inner);
        if inner.url.mode != SqliteMode::ReadOnly {
            spawn_checkpointer(&inner)?;
        }
        Ok(SqliteStorage { inner })
    }

    /// Runs blocking database work off the async threads. Waiting for a slot happens here, not on a
    /// blocking thread: the number of reader connections (each with its page cache) and blocking threads
    /// stays bounded however many requests arrive, and reads never queue behind a long publication.
    async fn run<T: Send + 'static>(
        &self,
        access: Access,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (slots, access) = match access {
            Access::Read => (&self.inner.read_slots, "read"),
            Access::Write => (&self.inner.write_slots, "write"),
            Access::Inbox => (&self.inner.inbox_slots, "inbox"),
        };
        let queued = std::time::Instant::now();
        let _slot = slots.acquire().await.map_err(backend)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // The wait for a slot and then a blocking thread: SQLite's counterpart of a pool wait.
            crate::telemetry::series::pool_wait("sqlite", Some(access), queued.elapsed());
            work(&inner)
        })
        .await
        .map_err(backend)?
    }
}

/// How often the checkpointer copies the WAL's new pages into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Checkpoints the WAL on a thread and connection of its own until the storage is dropped. SQLite's
/// automatic checkpoint (turned off on the writer) runs inside whichever commit crosses its threshold,
/// so one ingest in a thousand would wait for megabytes to be copied and synced; here no commit does.
/// A passive checkpoint takes no lock that writers or readers wait for.
fn spawn_checkpointer(inner: &Arc<Inner>) -> anyhow::Result<()> {
    let connection = open_connection(&inner.url, false)?;
    let storage = Arc::downgrade(inner);
    std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if storage.strong_count() == 0 {
                return;
            }
            if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "WAL checkpoint failed; the next one will try again");
            }
        }
    })?;
    Ok(())
}

fn open_connection(url: &SqliteUrl, writer: bool) -> rusqlite::Result<Connection> {
    let connection = url.open_connection()?;
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    // A large page cache for the writer is worth several times the ingest rate (shared/notes/ceilings.md);
    // readers share the OS page cache and need little of their own. At most 128 + 8 x 16 MiB in all.
    let cache_kib = if writer { 131_072 } else { 16_384 };
    // Switching to WAL is a write: a read-only connection uses the mode the file has.
    let journal = if url.mode == SqliteMode::ReadOnly { "" } else { "PRAGMA journal_mode = WAL;" };
    // The checkpointer thread does the writer's checkpoints (spawn_checkpointer).
    let checkpoints = if writer && url.mode != SqliteMode::ReadOnly { "PRAGMA wal_autocheckpoint = 0;" } else { "" };
    connection.execute_batch(&format!(
        "{journal} {checkpoints} PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY;"
    ))?;
    Ok(connection)
}

/// The schema version of a database opened read-only, which cannot be migrated: it must be this
/// binary's.
fn check_schema_is_current(connection: &Connection) -> anyhow::Result<()> {
    let applied: i64 = connection
        .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |row| row.get(0))
        .context("reading the schema version")?;
    anyhow::ensure!(
        applied as usize <= MIGRATIONS.len(),
        "the database has schema version {applied}, newer than this footfall ({})",
        MIGRATIONS.len()
    );
    anyhow::ensure!(
        applied as usize == MIGRATIONS.len(),
        "the database has schema version {applied}, older than this footfall ({}): open it once without mode=ro to upgrade it",
        MIGRATIONS.len()
    );
    Ok(())
}

fn migrate(connection: &mut Connection) -> anyhow::Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transaction.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")?;
    let applied: i64 =
        transaction.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |row| row.get(0))?;
    // A newer binary may have changed the schema in ways this one would misread or undo.
    anyhow::ensure!(
        applied as usize <= MIGRATIONS.len(),
        "the database has schema version {applied}, newer than this footfall ({})",
        MIGRATIONS.len()
    );
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        transaction.execute_batch(migration)?;
        transaction.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [index as i64 + 1])?;
    }
    if applied < STORE_ROLLUPS_MIGRATION {
        fill_pieces(&transaction)?;
    }
    transaction.commit()?;
    Ok(())
}

/// Computes every store's hour and day pieces from its minute rollup.
fn fill_pieces(transaction: &Transaction) -> anyhow::Result<()> {
    let catalog = load_catalog(transaction)?;
    let mut read = transaction
        .prepare("SELECT minute, entries, exits, occupancy FROM store_minutes WHERE store_id = ?1 ORDER BY minute")?;
    for store in catalog.stores() {
        let rows = read
            .query_map([store.key], |row| Ok((stored_minute(row.get(0)?), row.get(1)?, row.get(2)?, row.get(3)?)))?
            .collect::<rusqlite::Result<Vec<MinuteCounts>>>()?;
        let calendar = store.calendar();
        for period in periods_holding(&calendar, rows.iter().map(|row| row.0)) {
            let from = rows.partition_point(|row| row.0 < period.start);
            let to = rows.partition_point(|row| row.0 < period.end);
            publication::write_pieces(transaction, store.key, period, &calendar, &rows[from..to])?;
        }
    }
    Ok(())
}

fn meta(connection: &Connection, key: &str) -> rusqlite::Result<i64> {
    connection.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
}

fn load_catalog(connection: &Connection) -> anyhow::Result<Catalog> {
    let version = meta(connection, "catalog_version")?;
    let mut statement = connection
        .prepare("SELECT id, code, name, timezone, occupancy_reset_minutes, opening_hours, capacity FROM stores")?;
    let stores = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, StoreKey>(0)?,
                row.get::<_, String>(1)?,
                row.get(2)?,
                row.get::<_, String>(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })?
        .map(|row| {
            let (key, code, name, timezone, reset, hours, capacity) = row?;
            Ok(Store {
                key,
                code: StoreCode::parse(&code).map_err(anyhow::Error::msg)?,
                name,
                timezone: TimeZone::get(&timezone)?,
                reset: ResetTime::from_minutes(reset).ok_or_else(|| anyhow::anyhow!("bad reset {reset}"))?,
                hours: stored_hours(hours)?,
                capacity: stored_capacity(capacity)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut statement =
        connection.prepare("SELECT id, device_id, store_id, removed_at IS NULL, token_hash FROM devices")?;
    let mut tokens = Vec::new();
    let devices = statement
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?
        .map(|row| {
            let (key, device_id, store, active, token_hash) = row?;
            if active {
                tokens.push((token_hash, key));
            }
            Ok(Device { key, device_id: DeviceId::parse(&device_id).map_err(anyhow::Error::msg)?, store, active })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sensors = sensors::configurations(connection)?;
    let policy = policy_from_seconds(meta(connection, PUBLISH_INTERVAL_KEY)?)?;
    Ok(Catalog::new(version, stores, devices)
        .with_device_tokens(tokens)
        .with_sensors(sensors)
        .with_publication_policy(policy))
}

fn bump_catalog(transaction: &Transaction) -> rusqlite::Result<()> {
    transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'catalog_version'", []).map(drop)
}

/// The outcome of an INSERT of one named row: `AlreadyExists` when a unique key already holds it.
fn reject_duplicate<T>(inserted: rusqlite::Result<T>, existing: impl FnOnce() -> String) -> Result<T> {
    match inserted {
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(StorageError::AlreadyExists(existing()))
        }
        other => Ok(other?),
    }
}

fn store_key(transaction: &Transaction, code: &StoreCode) -> Result<StoreKey> {
    transaction
        .query_row("SELECT id FROM stores WHERE code = ?1", [code.as_str()], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("store {code} does not exist")))
}

impl Inner {
    fn reader<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap().pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => open_connection(&self.url, false)?,
        };
        let result = work(&connection);
        self.readers.lock().unwrap().push(connection);
        result
    }

    fn write<T>(&self, work: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut connection = self.writer()?;
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&transaction)?;
        transaction.commit()?;
        Ok(value)
    }

    /// The writer connection, unless the database is open read-only.
    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        if self.url.mode == SqliteMode::ReadOnly {
            return Err(StorageError::Invalid(format!(
                "the database {} is open read-only (mode=ro): nothing can be changed",
                self.url.path.display()
            )));
        }
        Ok(self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn catalog(&self, connection: &Connection) -> Result<Arc<Catalog>> {
        let version = meta(connection, "catalog_version")?;
        let cached = self.catalog.lock().unwrap().clone();
        if cached.version == version {
            return Ok(cached);
        }
        let fresh = Arc::new(load_catalog(connection).map_err(|e| StorageError::Backend(e.into()))?);
        *self.catalog.lock().unwrap() = fresh.clone();
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adding a row twice, or changing one that is not there, names the row (what the CLI prints).
    #[tokio::test]
    async fn a_duplicate_or_missing_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("footfall.db").to_str().unwrap()).await.unwrap();
        let athens = StoreCode::parse("ath").unwrap();
        let store = || NewStore {
            code: athens.clone(),
            name: "Athens".into(),
            timezone: "Europe/Athens".into(),
            reset: ResetTime::from_minutes(0).unwrap(),
            hours: None,
            capacity: None,
        };
        let device = DeviceId::parse("ath-1").unwrap();
        let message = |result: Result<()>| match result {
            Err(StorageError::AlreadyExists(message) | StorageError::NotFound(message)) => message,
            other => panic!("{other:?}"),
        };

        storage.add_store(store()).await.unwrap();
        assert_eq!(message(storage.add_store(store()).await), "store ath already exists");
        storage.add_device(device.clone(), athens.clone(), "hash".into()).await.unwrap();
        assert_eq!(
            message(storage.add_device(device.clone(), athens.clone(), "hash".into()).await),
            "device ath-1 already exists"
        );
        storage.rotate_device_token(device.clone(), "rotated".into()).await.unwrap();
        storage.remove_device(device.clone()).await.unwrap();
        assert_eq!(message(storage.remove_device(device.clone()).await), "device ath-1 does not exist");
        assert_eq!(message(storage.rotate_device_token(device, "again".into()).await), "device ath-1 does not exist");
    }
}
