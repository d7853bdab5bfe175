//! The inbox: where bins ingested while a publication holds the writer go, so that their ingest is
//! acknowledged at once instead of after the publication (seconds for a large backlog).
//!
//! It is a second database file next to the main one (`PATH-inbox`), with its own writer lock. While
//! this process publishes, an ingest appends its bins there (one transaction, synced, under the inbox
//! mutex); the publication, before it commits, moves every inbox row into `pending_bins` in sequence
//! order and records the last sequence number it moved in `meta` (in the same transaction), then ends
//! the publishing state, still under the inbox mutex, so no ingest can slip a row in behind it. Moved
//! rows are deleted from the inbox afterwards; if that never happens (a crash), the recorded sequence
//! number says they were moved, and opening the store moves whatever was not. Readers see the inbox's
//! bins once they are pending, as they would have after an ingest that waited.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// `meta` key: the last inbox sequence number moved into `pending_bins`.
const MOVED_THROUGH: &str = "inbox_moved_through";

pub(super) struct Inbox {
    connection: Mutex<Connection>,
    /// Set from when this process decides to publish until its publication ends: ingests go to the
    /// inbox meanwhile.
    publishing: AtomicBool,
}

/// The inbox file of a database at `path`.
fn inbox_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-inbox");
    PathBuf::from(name)
}

impl Inbox {
    /// Opens (creating) the inbox of `url`, and moves into the pending bins what an earlier process left
    /// in it.
    pub(super) fn open(url: &SqliteUrl, writer: &mut Connection) -> anyhow::Result<Inbox> {
        let path = inbox_path(&url.path);
        let connection = Connection::open(&path)?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS inbox_bins (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 device_id INTEGER NOT NULL, minute INTEGER NOT NULL,
                 entries INTEGER NOT NULL, exits INTEGER NOT NULL, received_at INTEGER NOT NULL);",
        )?;
        // Rows are there only while a publication runs (it moves them before it commits, so the write
        // transaction below waits for it and then finds them moved) or after a crash: opening a store
        // takes the writer only then.
        let left = connection.query_row("SELECT EXISTS (SELECT 1 FROM inbox_bins)", [], |row| row.get::<_, bool>(0))?;
        let inbox = Inbox { connection: Mutex::new(connection), publishing: AtomicBool::new(false) };
        if left {
            let transaction = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let connection = inbox.lock();
            let moved = move_into_pending(&connection, &transaction)?;
            transaction.commit()?;
            forget(&connection, moved)?;
        }
        Ok(inbox)
    }

    /// Appends `bins` (sorted, deduplicated) while a publication is under way; `None` if none is (any
    /// more), and the caller writes them to `pending_bins` as usual.
    pub(super) fn append(&self, bins: &[Bin], received_at: Timestamp) -> Result<Option<u64>> {
        let mut connection = self.lock();
        if !self.publishing.load(Ordering::Acquire) {
            return Ok(None);
        }
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO inbox_bins (device_id, minute, entries, exits, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for bin in bins {
                insert.execute(params![
                    bin.device,
                    bin.minute.unix_seconds(),
                    bin.counts.entries,
                    bin.counts.exits,
                    received_at.as_millisecond()
                ])?;
            }
        }
        transaction.commit()?;
        Ok(Some(bins.len() as u64))
    }

    /// Whether ingests should try the inbox: a publication of this process is under way.
    pub(super) fn is_open(&self) -> bool {
        self.publishing.load(Ordering::Acquire)
    }

    /// Sends ingests to the inbox from now on: called before a publication waits for the writer, so that
    /// none arriving meanwhile queues behind it. [`Inbox::publishing`] ends it.
    pub(super) fn expect_publication(&self) {
        self.publishing.store(true, Ordering::Release);
    }

    /// Runs `publication` in one transaction of `writer`, ingests going to the inbox meanwhile; moves
    /// what they appended into `pending_bins` as that transaction's last step. Should the publication
    /// fail, what they appended is moved in a transaction of its own.
    pub(super) fn publishing<T>(
        &self,
        writer: &mut Connection,
        publication: impl FnOnce(&Transaction) -> Result<T>,
    ) -> Result<T> {
        self.publishing.store(true, Ordering::Release);
        let mut held = None;
        let published = (|| {
            let transaction = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = publication(&transaction)?;
            // From the last move to the end of the publishing state no ingest may append.
            let inbox = held.insert(self.lock());
            let moved = move_into_pending(inbox, &transaction)?;
            transaction.commit()?;
            Ok((value, moved))
        })();
        let held = held.unwrap_or_else(|| self.lock());
        let (outcome, moved) = match published {
            Ok((value, moved)) => (Ok(value), Some(moved)),
            Err(error) => {
                let moved = (|| {
                    let transaction = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let moved = move_into_pending(&held, &transaction)?;
                    transaction.commit()?;
                    Ok::<_, StorageError>(moved)
                })();
                if let Err(move_error) = &moved {
                    tracing::error!(error = %move_error, "moving the inbox into the pending bins failed; opening the store again moves them");
                }
                (Err(error), moved.ok())
            }
        };
        self.publishing.store(false, Ordering::Release);
        // Left behind, moved rows are only skipped later (their sequence numbers are recorded as moved).
        if let Some(moved) = moved
            && let Err(error) = forget(&held, moved)
        {
            tracing::warn!(%error, "clearing moved rows from the inbox failed; the next publication clears them");
        }
        drop(held);
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Deletes the inbox's rows moved into `pending_bins` (through sequence number `moved`).
fn forget(inbox: &Connection, moved: i64) -> Result<()> {
    inbox.execute("DELETE FROM inbox_bins WHERE seq <= ?1", [moved])?;
    Ok(())
}

/// Moves the rows of `inbox` not yet moved into `pending_bins`, in the order they arrived (a key sent
/// twice keeps its later counts), with the devices' last push; returns the last sequence number moved.
/// Read through the inbox's own connection: attached to the writer, the inbox would be write-locked by
/// every transaction of the writer, the publication's included.
fn move_into_pending(inbox: &Connection, transaction: &Transaction) -> Result<i64> {
    let moved: i64 = transaction
        .query_row("SELECT value FROM meta WHERE key = ?1", [MOVED_THROUGH], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    let mut read = inbox.prepare_cached(
        "SELECT seq, device_id, minute, entries, exits, received_at FROM inbox_bins WHERE seq > ?1 ORDER BY seq",
    )?;
    let rows = read
        .query_map([moved], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let Some(&(last, ..)) = rows.last() else { return Ok(moved) };
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO pending_bins (device_id, minute, entries, exits) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_id, minute) DO UPDATE SET entries = excluded.entries, exits = excluded.exits",
    )?;
    let mut seen = transaction.prepare_cached(
        "UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, ?2), ?2),
             last_bin_minute = max(coalesce(last_bin_minute, ?3), ?3)
         WHERE id = ?1",
    )?;
    for &(_, device, minute, entries, exits, received_at) in &rows {
        upsert.execute(params![device, minute, entries, exits])?;
        seen.execute(params![device, received_at, minute])?;
    }
    transaction.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![MOVED_THROUGH, last],
    )?;
    Ok(last)
}
