//! The embedded store: SQLite in WAL mode, one writer connection and a pool of readers.
//!
//! Durability: `synchronous=FULL`, so a commit that returned survives a power cut; WAL keeps readers
//! and the writer out of each other's way, and every multi-statement change is one transaction.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use super::*;
use crate::domain::occupancy::running_occupancy;
use crate::domain::publication::PublicationPolicy; // stand-in: replaced by layout-storage's migration 0002

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('catalog_version', 0), ('publication_generation', 0), ('last_published_at', -1), ('last_scheduled_slot', -1),
    ('published_bins', 0);
CREATE TABLE stores (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    occupancy_reset_minutes INTEGER NOT NULL
);
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE,
    store_id INTEGER NOT NULL REFERENCES stores (id),
    token_hash TEXT NOT NULL UNIQUE,
    last_bin_minute INTEGER,
    last_seen_at INTEGER,
    removed_at INTEGER
);
CREATE INDEX devices_by_store ON devices (store_id);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    all_stores INTEGER NOT NULL,
    can_ingest INTEGER NOT NULL
);
CREATE TABLE user_stores (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    store_id INTEGER NOT NULL REFERENCES stores (id),
    PRIMARY KEY (user_id, store_id)
) WITHOUT ROWID;
-- Ingested, not yet published.
CREATE TABLE pending_bins (
    device_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    PRIMARY KEY (device_id, minute)
) WITHOUT ROWID;
-- Published, per device; minute = Unix seconds of the UTC minute start.
CREATE TABLE bins (
    device_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    PRIMARY KEY (device_id, minute)
) WITHOUT ROWID;
-- Published, per store: only minutes with entries + exits > 0.
CREATE TABLE store_minutes (
    store_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    occupancy INTEGER NOT NULL,
    PRIMARY KEY (store_id, minute)
) WITHOUT ROWID;
-- Occupancy periods (local days) holding published rows, with their row counts.
CREATE TABLE store_periods (
    store_id INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    PRIMARY KEY (store_id, period_start)
) WITHOUT ROWID;
CREATE INDEX store_periods_by_start ON store_periods (period_start);
-- Manual occupancy counts; unpublished ones mark their period for recomputation.
CREATE TABLE occupancy_corrections (
    store_id INTEGER NOT NULL REFERENCES stores (id),
    minute INTEGER NOT NULL,
    value INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    published INTEGER NOT NULL,
    PRIMARY KEY (store_id, minute)
) WITHOUT ROWID;
"#];

/// No occupancy period is longer than this (a local day plus any DST or zone shift).
const LONGEST_PERIOD_SECONDS: i64 = 3 * 86_400;
/// Above this many stores, the periods of a query are found by time rather than store by store...
const STORES_LOOKED_UP_ONE_BY_ONE: usize = 16;
/// ... unless the query spans more than this: each period found through the time index costs a lookup
/// in the table, while a store's own periods are read in one range of the table, so beyond a few
/// periods per store, store by store is cheaper (100 stores, 45 days: 1.6 ms by time, 0.5 ms by store).
const LONGEST_SPAN_LOOKED_UP_BY_TIME: i64 = 3 * 86_400;

pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    catalog: Mutex<Arc<Catalog>>,
    read_slots: tokio::sync::Semaphore,
    write_slots: tokio::sync::Semaphore,
}

#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// Concurrent readers: a few per core is all SQLite can use; more only add page caches.
const MAX_READERS: usize = 8;

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Backend(Box::new(error))
}

impl From<rusqlite::Error> for StorageError {
    fn from(error: rusqlite::Error) -> Self {
        backend(error)
    }
}

impl SqliteStorage {
    pub async fn open(path: &str) -> anyhow::Result<SqliteStorage> {
        anyhow::ensure!(
            !path.is_empty() && path != ":memory:",
            "sqlite needs a file path (sqlite://footfall.db): readers share it with the writer"
        );
        let path = PathBuf::from(path);
        let inner = tokio::task::spawn_blocking(move || -> anyhow::Result<Inner> {
            let mut writer = open_connection(&path, true)?;
            migrate(&mut writer)?;
            let catalog = Arc::new(load_catalog(&writer)?);
            Ok(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                catalog: Mutex::new(catalog),
                read_slots: tokio::sync::Semaphore::new(MAX_READERS),
                // One writing, one waiting on the writer lock: the rest wait here, without a thread.
                write_slots: tokio::sync::Semaphore::new(2),
            })
        })
        .await??;
        Ok(SqliteStorage { inner: Arc::new(inner) })
    }

    /// Runs blocking database work off the async threads. Waiting for a slot happens here, not on a
    /// blocking thread: the number of reader connections (each with its page cache) and blocking threads
    /// stays bounded however many requests arrive, and reads never queue behind a long publication.
    async fn run<T: Send + 'static>(
        &self,
        access: Access,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let slots = match access {
            Access::Read => &self.inner.read_slots,
            Access::Write => &self.inner.write_slots,
        };
        let _slot = slots.acquire().await.map_err(backend)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner)).await.map_err(backend)?
    }
}

fn open_connection(path: &Path, writer: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    // A large page cache for the writer is worth several times the ingest rate (shared/notes/ceilings.md);
    // readers share the OS page cache and need little of their own. At most 128 + 8 x 16 MiB in all.
    let cache_kib = if writer { 131_072 } else { 16_384 };
    connection.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY;"
    ))?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transaction.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")?;
    let applied: i64 =
        transaction.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        transaction.execute_batch(migration)?;
        transaction.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [index as i64 + 1])?;
    }
    transaction.commit()
}

fn meta(connection: &Connection, key: &str) -> rusqlite::Result<i64> {
    connection.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
}

fn load_catalog(connection: &Connection) -> anyhow::Result<Catalog> {
    let version = meta(connection, "catalog_version")?;
    let mut statement = connection.prepare("SELECT id, code, name, timezone, occupancy_reset_minutes FROM stores")?;
    let stores = statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get::<_, String>(3)?, row.get(4)?))
        })?
        .map(|row| {
            let (key, code, name, timezone, reset) = row?;
            Ok(Store {
                key,
                code: StoreCode::parse(&code).map_err(anyhow::Error::msg)?,
                name,
                timezone: TimeZone::get(&timezone)?,
                reset: ResetTime::from_minutes(reset).ok_or_else(|| anyhow::anyhow!("bad reset {reset}"))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut statement = connection.prepare("SELECT id, device_id, store_id, removed_at IS NULL FROM devices")?;
    let devices = statement
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?)))?
        .map(|row| {
            let (key, device_id, store, active) = row?;
            Ok(Device { key, device_id: DeviceId::parse(&device_id).map_err(anyhow::Error::msg)?, store, active })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Catalog::new(version, stores, devices))
}

fn bump_catalog(transaction: &Transaction) -> rusqlite::Result<()> {
    transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'catalog_version'", []).map(drop)
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The outcome of an UPDATE or DELETE of one named row: `NotFound` when there was none.
fn expect_one(changed: usize, missing: impl FnOnce() -> String) -> Result<()> {
    if changed == 0 { Err(StorageError::NotFound(missing())) } else { Ok(()) }
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
            None => open_connection(&self.path, false)?,
        };
        let result = work(&connection);
        self.readers.lock().unwrap().push(connection);
        result
    }

    fn write<T>(&self, work: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut connection = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&transaction)?;
        transaction.commit()?;
        Ok(value)
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

    fn publish(&self, transaction: &Transaction, now: Timestamp) -> Result<PublishSummary> {
        let catalog = self.catalog(transaction)?;
        let mut pending =
            transaction.prepare("SELECT device_id, minute FROM pending_bins ORDER BY device_id, minute")?;
        let keys = pending
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?
            .map(|row| row.map(|(device, minute)| (device, Minute::from_unix_seconds(minute).expect("stored minutes"))))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut touched = touched_periods(&catalog, keys.iter().copied())?;
        let mut corrected =
            transaction.prepare("SELECT store_id, minute FROM occupancy_corrections WHERE published = 0")?;
        for row in corrected.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))? {
            let (store, minute) = row?;
            let calendar = catalog.store(store).expect("a correction's store is in the catalog").calendar();
            touched.insert((store, calendar.period_of(Minute::from_unix_seconds(minute).expect("stored"))));
        }
        let already_published: i64 = transaction.query_row(
            "SELECT count(*) FROM pending_bins p WHERE EXISTS
             (SELECT 1 FROM bins b WHERE b.device_id = p.device_id AND b.minute = p.minute)",
            [],
            |row| row.get(0),
        )?;
        transaction.execute(
            "UPDATE meta SET value = value + ?1 WHERE key = 'published_bins'",
            [keys.len() as i64 - already_published],
        )?;
        transaction.execute(
            "INSERT INTO bins (device_id, minute, entries, exits)
             SELECT device_id, minute, entries, exits FROM pending_bins WHERE true
             ON CONFLICT (device_id, minute) DO UPDATE SET entries = excluded.entries, exits = excluded.exits",
            [],
        )?;
        let mut read = transaction.prepare(
            "SELECT minute, sum(entries), sum(exits) FROM bins
             WHERE device_id IN (SELECT id FROM devices WHERE store_id = ?1) AND minute >= ?2 AND minute < ?3
             GROUP BY minute HAVING sum(entries) + sum(exits) > 0 ORDER BY minute",
        )?;
        let mut clear =
            transaction.prepare("DELETE FROM store_minutes WHERE store_id = ?1 AND minute >= ?2 AND minute < ?3")?;
        let mut insert = transaction.prepare(
            "INSERT INTO store_minutes (store_id, minute, entries, exits, occupancy) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut count = transaction.prepare(
            "INSERT INTO store_periods (store_id, period_start, period_end, row_count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (store_id, period_start) DO UPDATE SET period_end = excluded.period_end, row_count = excluded.row_count",
        )?;
        let mut uncount = transaction.prepare("DELETE FROM store_periods WHERE store_id = ?1 AND period_start = ?2")?;
        let mut read_corrections = transaction.prepare(
            "SELECT minute, value FROM occupancy_corrections
             WHERE store_id = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute",
        )?;
        for &(store, period) in &touched {
            let (start, end) = (period.start.unix_seconds(), period.end.unix_seconds());
            let minutes = read
                .query_map(params![store, start, end], |row| {
                    Ok((Minute::from_unix_seconds(row.get(0)?).expect("stored"), row.get(1)?, row.get(2)?))
                })?
                .collect::<rusqlite::Result<Vec<(Minute, i64, i64)>>>()?;
            let corrections = read_corrections
                .query_map(params![store, start, end], |row| {
                    Ok((Minute::from_unix_seconds(row.get(0)?).expect("stored"), row.get(1)?))
                })?
                .collect::<rusqlite::Result<Vec<(Minute, i64)>>>()?;
            let occupancy = running_occupancy(&minutes, &corrections);
            clear.execute(params![store, start, end])?;
            for (&(minute, entries, exits), occupancy) in minutes.iter().zip(occupancy) {
                insert.execute(params![store, minute.unix_seconds(), entries, exits, occupancy])?;
            }
            if minutes.is_empty() {
                uncount.execute(params![store, start])?;
            } else {
                count.execute(params![store, start, end, minutes.len() as i64])?;
            }
        }
        transaction.execute("DELETE FROM pending_bins", [])?;
        transaction.execute("UPDATE occupancy_corrections SET published = 1 WHERE published = 0", [])?;
        transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'", [])?;
        transaction.execute("UPDATE meta SET value = ?1 WHERE key = 'last_published_at'", [now.as_millisecond()])?;
        Ok(PublishSummary { bins: keys.len() as u64, periods: touched.len() as u64 })
    }
}

/// Everything `check` verifies, in one read transaction.
fn check(inner: &Inner, connection: &Connection) -> Result<CheckReport> {
    let mut problems = Vec::new();
    let integrity: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if integrity != "ok" {
        problems.push(format!("SQLite integrity check: {integrity}"));
    }
    let catalog = inner.catalog(connection)?;
    let minute = |seconds: i64| Minute::from_unix_seconds(seconds).expect("stored");
    let mut statement = connection
        .prepare("SELECT store_id, minute, entries, exits, occupancy FROM store_minutes ORDER BY store_id, minute")?;
    let stored = statement
        .query_map([], |row| {
            Ok(StoredRollup {
                store: row.get(0)?,
                minute: minute(row.get(1)?),
                entries: row.get(2)?,
                exits: row.get(3)?,
                occupancy: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut statement = connection.prepare(
        "SELECT d.store_id, b.minute, sum(b.entries), sum(b.exits) FROM bins b JOIN devices d ON d.id = b.device_id
         GROUP BY d.store_id, b.minute HAVING sum(b.entries) + sum(b.exits) > 0 ORDER BY d.store_id, b.minute",
    )?;
    let expected = statement
        .query_map([], |row| Ok((row.get(0)?, minute(row.get(1)?), row.get(2)?, row.get(3)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut statement = connection.prepare(
        "SELECT store_id, minute, value FROM occupancy_corrections WHERE published = 1 ORDER BY store_id, minute",
    )?;
    let corrections = statement
        .query_map([], |row| Ok((row.get(0)?, minute(row.get(1)?), row.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let rollup_rows = stored.len() as u64;
    let (found, periods) = verify_rollups(&catalog, stored, expected, &corrections, 50);
    problems.extend(found);
    let mut statement =
        connection.prepare("SELECT store_id, period_start, period_end, row_count FROM store_periods")?;
    let recorded = statement
        .query_map([], |row| {
            let period = Period { start: minute(row.get(1)?), end: minute(row.get(2)?) };
            Ok(((row.get::<_, i64>(0)?, period), row.get::<_, i64>(3)? as u64))
        })?
        .collect::<rusqlite::Result<std::collections::BTreeMap<_, _>>>()?;
    if recorded != periods {
        let differing = periods.iter().filter(|(key, count)| recorded.get(key) != Some(count)).count()
            + recorded.keys().filter(|key| !periods.contains_key(key)).count();
        problems.push(format!("{differing} store-day row counts differ from the rollup"));
    }
    Ok(CheckReport { rollup_rows, periods: periods.len() as u64, problems })
}

fn publication_mark(connection: &Connection) -> Result<PublicationMark> {
    let published_at = meta(connection, "last_published_at")?;
    Ok(PublicationMark {
        generation: meta(connection, "publication_generation")?,
        published_at: (published_at >= 0).then(|| Timestamp::from_millisecond(published_at).expect("stored")),
    })
}

fn user_credentials(connection: &Connection, username: &str) -> Result<Option<UserCredentials>> {
    let user = connection
        .prepare_cached("SELECT id, password_hash, all_stores, can_ingest FROM users WHERE username = ?1")?
        .query_row([username], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?)))
        .optional()?;
    let Some((key, password_hash, all_stores, can_ingest)) = user else {
        return Ok(None);
    };
    let scope = if all_stores {
        StoreScope::All
    } else {
        let mut statement = connection.prepare_cached("SELECT store_id FROM user_stores WHERE user_id = ?1")?;
        StoreScope::Only(statement.query_map([key], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?)
    };
    Ok(Some(UserCredentials { key, password_hash, scope, can_ingest }))
}

/// The in-range row count of every period of the queried stores, in (store order, period start) order.
fn period_counts(
    connection: &Connection,
    stores: &[StoreKey],
    first: Minute,
    last: Minute,
) -> Result<Vec<(usize, Period, u64)>> {
    let (first_s, last_s) = (first.unix_seconds(), last.unix_seconds());
    let mut found: Vec<(usize, i64, i64, u64)> = Vec::new();
    if stores.len() <= STORES_LOOKED_UP_ONE_BY_ONE || last_s - first_s > LONGEST_SPAN_LOOKED_UP_BY_TIME {
        let mut statement = connection.prepare_cached(
            "SELECT period_start, period_end, row_count FROM store_periods
             WHERE store_id = ?1 AND period_start <= ?2 AND period_start > ?3 AND period_end > ?4 ORDER BY period_start",
        )?;
        for (index, &store) in stores.iter().enumerate() {
            let rows = statement
                .query_map(params![store, last_s, first_s - LONGEST_PERIOD_SECONDS, first_s], |row| {
                    Ok((index, row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))
                })?;
            for row in rows {
                found.push(row?);
            }
        }
    } else {
        let position: HashMap<StoreKey, usize> = stores.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let mut statement = connection.prepare_cached(
            "SELECT store_id, period_start, period_end, row_count FROM store_periods
             WHERE period_start <= ?1 AND period_start > ?2 AND period_end > ?3",
        )?;
        let rows = statement.query_map(params![last_s, first_s - LONGEST_PERIOD_SECONDS, first_s], |row| {
            Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?, row.get::<_, i64>(3)? as u64))
        })?;
        for row in rows {
            let (store, start, end, count) = row?;
            if let Some(&index) = position.get(&store) {
                found.push((index, start, end, count));
            }
        }
        found.sort_unstable_by_key(|&(index, start, _, _)| (index, start));
    }
    let mut partial = connection
        .prepare_cached("SELECT count(*) FROM store_minutes WHERE store_id = ?1 AND minute >= ?2 AND minute <= ?3")?;
    let mut counts = Vec::with_capacity(found.len());
    for (index, start, end, rows) in found {
        let period = Period {
            start: Minute::from_unix_seconds(start).expect("stored"),
            end: Minute::from_unix_seconds(end).expect("stored"),
        };
        // Periods cut by the query's bounds are counted row by row, on the shorter side of the cut: the
        // part outside the bounds is usually a night or the future, which hold few or no rows.
        let rows = if start >= first_s && end - 60 <= last_s {
            rows
        } else {
            let (from, to) = (start.max(first_s), (end - 60).min(last_s));
            let mut count = |from: i64, to: i64| -> rusqlite::Result<u64> {
                if from > to {
                    return Ok(0);
                }
                partial.query_row(params![stores[index], from, to], |row| row.get::<_, i64>(0)).map(|n| n as u64)
            };
            if to - from <= (end - start) / 2 {
                count(from, to)?
            } else {
                rows.saturating_sub(count(start, from - 60)? + count(to + 60, end - 60)?)
            }
        };
        if rows > 0 {
            counts.push((index, period, rows));
        }
    }
    Ok(counts)
}

fn store_rows(connection: &Connection, stores: &[StoreKey], query: &RowsQuery) -> Result<RowsPage> {
    let counts = period_counts(connection, stores, query.first, query.last)?;
    let count = counts.iter().map(|&(_, _, rows)| rows).sum();
    let mut page = RowsPage { count, rows: Vec::with_capacity(query.limit.min(10_000) as usize) };
    let Some(start) = locate_page(&counts, query.first, query.offset) else {
        return Ok(page);
    };
    let mut statement = connection.prepare_cached(
        "SELECT minute, entries, exits, occupancy FROM store_minutes
         WHERE store_id = ?1 AND minute >= ?2 AND minute <= ?3 ORDER BY minute LIMIT ?4 OFFSET ?5",
    )?;
    let mut from = start.from;
    let mut skip = start.skip;
    let stores_with_rows = counts.iter().map(|&(index, _, _)| index).collect::<std::collections::BTreeSet<_>>();
    for index in stores_with_rows.range(start.store_index..) {
        let remaining = query.limit as usize - page.rows.len();
        if remaining == 0 {
            break;
        }
        let store = stores[*index];
        let rows = statement.query_map(
            params![store, from.unix_seconds(), query.last.unix_seconds(), remaining as i64, skip as i64],
            |row| {
                Ok(MinuteRow {
                    store,
                    minute: Minute::from_unix_seconds(row.get(0)?).expect("stored"),
                    entries: row.get(1)?,
                    exits: row.get(2)?,
                    occupancy: row.get(3)?,
                })
            },
        )?;
        for row in rows {
            page.rows.push(row?);
        }
        from = query.first;
        skip = 0;
    }
    Ok(page)
}

fn device_rows(connection: &Connection, catalog: &Catalog, device: DeviceKey, query: &RowsQuery) -> Result<RowsPage> {
    let store = catalog.device(device).map(|d| d.store).ok_or_else(|| StorageError::NotFound("device".into()))?;
    let bounds = params![device, query.first.unix_seconds(), query.last.unix_seconds()];
    let count: i64 = connection
        .prepare_cached(
            "SELECT count(*) FROM bins WHERE device_id = ?1 AND minute >= ?2 AND minute <= ?3 AND entries + exits > 0",
        )?
        .query_row(bounds, |row| row.get(0))?;
    let mut statement = connection.prepare_cached(
        "SELECT minute, entries, exits FROM bins
         WHERE device_id = ?1 AND minute >= ?2 AND minute <= ?3 AND entries + exits > 0
         ORDER BY minute LIMIT ?4 OFFSET ?5",
    )?;
    let rows = statement
        .query_map(
            params![
                device,
                query.first.unix_seconds(),
                query.last.unix_seconds(),
                query.limit as i64,
                query.offset.min(i64::MAX as u64) as i64
            ],
            |row| {
                Ok(MinuteRow {
                    store,
                    minute: Minute::from_unix_seconds(row.get(0)?).expect("stored"),
                    entries: row.get(1)?,
                    exits: row.get(2)?,
                    occupancy: 0,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(RowsPage { count: count as u64, rows })
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn catalog(&self) -> Result<Arc<Catalog>> {
        self.run(Access::Read, |inner| inner.reader(|connection| inner.catalog(connection))).await
    }

    async fn add_store(&self, store: NewStore) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let inserted = transaction.execute(
                    "INSERT INTO stores (code, name, timezone, occupancy_reset_minutes) VALUES (?1, ?2, ?3, ?4)",
                    params![store.code.as_str(), store.name, store.timezone, store.reset.minutes_after_midnight()],
                );
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        Err(StorageError::AlreadyExists(format!("store {} already exists", store.code)))
                    }
                    other => other.map_err(StorageError::from),
                }?;
                bump_catalog(transaction)?;
                Ok(())
            })
        })
        .await
    }

    async fn add_device(&self, device_id: DeviceId, store: StoreCode, token_hash: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let store_key = store_key(transaction, &store)?;
                let inserted = transaction.execute(
                    "INSERT INTO devices (device_id, store_id, token_hash) VALUES (?1, ?2, ?3)",
                    params![device_id.as_str(), store_key, token_hash],
                );
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        Err(StorageError::AlreadyExists(format!("device {device_id} already exists")))
                    }
                    other => other.map_err(StorageError::from),
                }?;
                bump_catalog(transaction)?;
                Ok(())
            })
        })
        .await
    }

    async fn add_user(&self, user: NewUser) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let store_keys = match &user.scope {
                    NewScope::All => Vec::new(),
                    NewScope::Stores(codes) => {
                        codes.iter().map(|code| store_key(transaction, code)).collect::<Result<Vec<_>>>()?
                    }
                };
                let inserted = transaction.execute(
                    "INSERT INTO users (username, password_hash, all_stores, can_ingest) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        user.username.as_str(),
                        user.password_hash,
                        matches!(user.scope, NewScope::All),
                        user.can_ingest
                    ],
                );
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        Err(StorageError::AlreadyExists(format!("user {} already exists", user.username)))
                    }
                    other => other.map_err(StorageError::from),
                }?;
                let user_key = transaction.last_insert_rowid();
                for store in store_keys {
                    transaction.execute(
                        "INSERT OR IGNORE INTO user_stores (user_id, store_id) VALUES (?1, ?2)",
                        params![user_key, store],
                    )?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let username = username.to_owned();
        self.run(Access::Read, move |inner| inner.reader(|connection| user_credentials(connection, &username))).await
    }

    async fn device_by_token_hash(&self, token_hash: &str) -> Result<Option<DeviceKey>> {
        let token_hash = token_hash.to_owned();
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                Ok(connection
                    .prepare_cached("SELECT id FROM devices WHERE token_hash = ?1 AND removed_at IS NULL")?
                    .query_row([&token_hash], |row| row.get(0))
                    .optional()?)
            })
        })
        .await
    }

    async fn rotate_device_token(&self, device_id: DeviceId, token_hash: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                expect_one(
                    transaction.execute(
                        "UPDATE devices SET token_hash = ?1 WHERE device_id = ?2 AND removed_at IS NULL",
                        params![token_hash, device_id.as_str()],
                    )?,
                    || format!("device {device_id} does not exist"),
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn device_statuses(&self) -> Result<Vec<DeviceStatus>> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let mut statement = connection.prepare(
                    "SELECT d.device_id, s.code, d.last_bin_minute, d.last_seen_at, d.removed_at IS NULL
                     FROM devices d JOIN stores s ON s.id = d.store_id ORDER BY d.device_id",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, bool>(4)?,
                    ))
                })?;
                rows.map(|row| {
                    let (device_id, store_code, last_bin_minute, last_seen_at, active) = row?;
                    Ok(DeviceStatus {
                        device_id: DeviceId::parse(&device_id).map_err(StorageError::Invalid)?,
                        store_code: StoreCode::parse(&store_code).map_err(StorageError::Invalid)?,
                        active,
                        last_bin_minute: last_bin_minute.and_then(Minute::from_unix_seconds),
                        last_seen_at: last_seen_at.and_then(|ms| Timestamp::from_millisecond(ms).ok()),
                    })
                })
                .collect()
            })
        })
        .await
    }

    async fn remove_device(&self, device_id: DeviceId) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                expect_one(
                    transaction.execute(
                        "UPDATE devices SET removed_at = ?1 WHERE device_id = ?2 AND removed_at IS NULL",
                        params![Timestamp::now().as_millisecond(), device_id.as_str()],
                    )?,
                    || format!("device {device_id} does not exist"),
                )?;
                bump_catalog(transaction)?;
                Ok(())
            })
        })
        .await
    }

    async fn set_password(&self, username: Username, password_hash: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                expect_one(
                    transaction.execute(
                        "UPDATE users SET password_hash = ?1 WHERE username = ?2",
                        params![password_hash, username.as_str()],
                    )?,
                    || format!("user {username} does not exist"),
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn remove_user(&self, username: Username) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                expect_one(transaction.execute("DELETE FROM users WHERE username = ?1", [username.as_str()])?, || {
                    format!("user {username} does not exist")
                })?;
                Ok(())
            })
        })
        .await
    }

    async fn backup(&self, path: PathBuf) -> Result<()> {
        self.run(Access::Read, move |inner| {
            if path.exists() {
                return Err(StorageError::AlreadyExists(format!("{} already exists", path.display())));
            }
            // VACUUM INTO copies one read snapshot: consistent while writers go on, and compact.
            inner.reader(|connection| {
                connection.execute("VACUUM INTO ?1", [path.to_string_lossy()])?;
                Ok(())
            })
        })
        .await
    }

    async fn check(&self) -> Result<CheckReport> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                connection.execute_batch("BEGIN")?;
                let result = check(inner, connection);
                connection.execute_batch("COMMIT")?;
                result
            })
        })
        .await
    }

    async fn add_correction(&self, store: StoreCode, correction: Correction) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let store = store_key(transaction, &store)?;
                transaction.execute(
                    "INSERT INTO occupancy_corrections (store_id, minute, value, created_at, published)
                     VALUES (?1, ?2, ?3, ?4, 0)
                     ON CONFLICT (store_id, minute) DO UPDATE
                     SET value = excluded.value, created_at = excluded.created_at, published = 0",
                    params![
                        store,
                        correction.minute.unix_seconds(),
                        correction.value,
                        correction.created_at.as_millisecond()
                    ],
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn corrections(&self, store: StoreCode) -> Result<Vec<Correction>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                let key: StoreKey = connection
                    .query_row("SELECT id FROM stores WHERE code = ?1", [store.as_str()], |row| row.get(0))
                    .optional()?
                    .ok_or_else(|| StorageError::NotFound(format!("store {store} does not exist")))?;
                let mut statement = connection.prepare(
                    "SELECT minute, value, created_at FROM occupancy_corrections WHERE store_id = ?1 ORDER BY minute",
                )?;
                let rows = statement.query_map([key], |row| {
                    Ok(Correction {
                        minute: Minute::from_unix_seconds(row.get(0)?).expect("stored"),
                        value: row.get(1)?,
                        created_at: Timestamp::from_millisecond(row.get(2)?).expect("stored"),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
        })
        .await
    }

    async fn publication_mark(&self) -> Result<PublicationMark> {
        self.run(Access::Read, |inner| inner.reader(publication_mark)).await
    }

    async fn ingest(&self, mut bins: Vec<Bin>, received_at: Timestamp) -> Result<u64> {
        self.run(Access::Write, move |inner| {
            sort_and_dedupe(&mut bins);
            inner.write(|transaction| {
                let mut upsert = transaction.prepare(
                    "INSERT INTO pending_bins (device_id, minute, entries, exits) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (device_id, minute) DO UPDATE SET entries = excluded.entries, exits = excluded.exits",
                )?;
                for bin in &bins {
                    upsert.execute(params![
                        bin.device,
                        bin.minute.unix_seconds(),
                        bin.counts.entries,
                        bin.counts.exits
                    ])?;
                }
                let mut seen = transaction.prepare(
                    "UPDATE devices SET last_seen_at = ?2, last_bin_minute = max(coalesce(last_bin_minute, ?3), ?3)
                     WHERE id = ?1",
                )?;
                // Bins are sorted by device, then minute: the last of each run is the device's latest.
                for run in bins.chunk_by(|a, b| a.device == b.device) {
                    let latest = run.last().expect("runs are not empty");
                    seen.execute(params![latest.device, received_at.as_millisecond(), latest.minute.unix_seconds()])?;
                }
                Ok(bins.len() as u64)
            })
        })
        .await
    }

    async fn publish(&self, now: Timestamp, slot: Option<i64>) -> Result<Option<PublishSummary>> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                if let Some(slot) = slot {
                    let claimed = transaction.execute(
                        "UPDATE meta SET value = ?1 WHERE key = 'last_scheduled_slot' AND value < ?1",
                        [slot],
                    )?;
                    if claimed == 0 {
                        return Ok(None);
                    }
                }
                inner.publish(transaction, now).map(Some)
            })
        })
        .await
    }

    async fn has_pending(&self) -> Result<bool> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                Ok(connection.query_row("SELECT EXISTS (SELECT 1 FROM pending_bins)", [], |row| row.get(0))?)
            })
        })
        .await
    }

    async fn publication(&self) -> Result<PublicationState> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let pending: i64 = connection.query_row("SELECT count(*) FROM pending_bins", [], |row| row.get(0))?;
                Ok(PublicationState {
                    mark: publication_mark(connection)?,
                    pending_bins: pending as u64,
                    published_bins: meta(connection, "published_bins")? as u64,
                })
            })
        })
        .await
    }

    async fn request_context(&self, username: &str) -> Result<RequestContext> {
        let username = username.to_owned();
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                Ok(RequestContext {
                    user: user_credentials(connection, &username)?,
                    catalog: inner.catalog(connection)?,
                    mark: publication_mark(connection)?,
                })
            })
        })
        .await
    }

    async fn rows(&self, query: RowsQuery) -> Result<RowsPage> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                // One read transaction: the count and the rows come from the same publication.
                connection.execute_batch("BEGIN")?;
                let result = match &query.source {
                    RowSource::Stores(stores) => store_rows(connection, stores, &query),
                    RowSource::Device(device) => {
                        inner.catalog(connection).and_then(|catalog| device_rows(connection, &catalog, *device, &query))
                    }
                };
                connection.execute_batch("COMMIT")?;
                result
            })
        })
        .await
    }

    // stand-in: replaced by layout-storage's migration 0002
    async fn publication_policy(&self) -> Result<PublicationPolicy> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let seconds: Option<i64> = connection
                    .query_row("SELECT value FROM meta WHERE key = 'publish_interval_seconds'", [], |row| row.get(0))
                    .optional()?;
                Ok(seconds.map_or_else(PublicationPolicy::default, |seconds| {
                    PublicationPolicy::from_interval(std::time::Duration::from_secs(seconds.max(0) as u64))
                }))
            })
        })
        .await
    }

    // stand-in: replaced by layout-storage's migration 0002
    async fn set_publication_policy(&self, policy: PublicationPolicy) -> Result<()> {
        let seconds = policy.interval().as_secs() as i64;
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                transaction.execute(
                    "INSERT INTO meta VALUES ('publish_interval_seconds', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [seconds],
                )?;
                Ok(())
            })
        })
        .await
    }
}
