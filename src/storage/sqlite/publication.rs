//! The publication: pending bins merged into the published ones, the touched periods' rollups
//! recomputed.

use std::collections::BTreeSet;

use super::*;

impl Inner {
    fn publish(&self, transaction: &Transaction, now: Timestamp) -> Result<PublishSummary> {
        let catalog = self.catalog(transaction)?;
        let mut pending =
            transaction.prepare("SELECT device_id, minute FROM pending_bins ORDER BY device_id, minute")?;
        let keys = pending
            .query_map([], |row| Ok((row.get::<_, DeviceKey>(0)?, row.get::<_, i64>(1)?)))?
            .map(|row| row.map(|(device, minute)| (device, stored_minute(minute))))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut touched = touched_periods(&catalog, keys.iter().copied())?;
        let mut corrected =
            transaction.prepare("SELECT store_id, minute FROM occupancy_corrections WHERE published = 0")?;
        for row in corrected.query_map([], |row| Ok((row.get::<_, StoreKey>(0)?, row.get::<_, i64>(1)?)))? {
            let (store, minute) = row?;
            let calendar = catalog.store(store).expect("a correction's store is in the catalog").calendar();
            touched.insert((store, calendar.period_of(stored_minute(minute))));
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
        recompute_periods(transaction, &catalog, &touched)?;
        transaction.execute("DELETE FROM pending_bins", [])?;
        transaction.execute("UPDATE occupancy_corrections SET published = 1 WHERE published = 0", [])?;
        transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'", [])?;
        transaction.execute("UPDATE meta SET value = ?1 WHERE key = 'last_published_at'", [now.as_millisecond()])?;
        Ok(PublishSummary { bins: keys.len() as u64, periods: touched.len() as u64 })
    }
}

/// Recomputes the rollup rows, hour and day pieces and row counts of these periods from the published bins
/// and corrections.
pub(super) fn recompute_periods(
    transaction: &Transaction,
    catalog: &Catalog,
    touched: &BTreeSet<(StoreKey, Period)>,
) -> Result<()> {
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
    for &(store, period) in touched {
        let (start, end) = (period.start.unix_seconds(), period.end.unix_seconds());
        let minutes = read
            .query_map(params![store, start, end], |row| Ok((stored_minute(row.get(0)?), row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<Vec<(Minute, i64, i64)>>>()?;
        let corrections = read_corrections
            .query_map(params![store, start, end], |row| Ok((stored_minute(row.get(0)?), row.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(Minute, i64)>>>()?;
        let occupancy = running_occupancy(&minutes, &corrections);
        clear.execute(params![store, start, end])?;
        let rows: Vec<MinuteCounts> = minutes
            .iter()
            .zip(occupancy)
            .map(|(&(minute, entries, exits), occupancy)| (minute, entries, exits, occupancy))
            .collect();
        for &(minute, entries, exits, occupancy) in &rows {
            insert.execute(params![store, minute.unix_seconds(), entries, exits, occupancy])?;
        }
        let calendar = catalog.store(store).expect("a touched store is in the catalog").calendar();
        write_pieces(transaction, store, period, &calendar, &rows)?;
        if minutes.is_empty() {
            uncount.execute(params![store, start])?;
        } else {
            count.execute(params![store, start, end, minutes.len() as i64])?;
        }
    }
    Ok(())
}

/// Replaces a store's hour and day pieces of `period` with those of `rows`, its minute rows there.
pub(super) fn write_pieces(
    transaction: &Transaction,
    store: StoreKey,
    period: Period,
    calendar: &PeriodCalendar<'_>,
    rows: &[MinuteCounts],
) -> Result<()> {
    transaction
        .prepare_cached(
            "DELETE FROM store_rollups WHERE store_id = ?1 AND level IN (1, 2) AND start >= ?2 AND start < ?3",
        )?
        .execute(params![store, period.start.unix_seconds(), period.end.unix_seconds()])?;
    let mut insert = transaction.prepare_cached(
        "INSERT INTO store_rollups (store_id, level, start, entries, exits, row_count, last_minute, last_occupancy,
             peak_occupancy, peak_minute) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for level in Level::STORED {
        for (start, totals) in pieces(calendar, level, rows) {
            insert.execute(params![
                store,
                level.code(),
                start.unix_seconds(),
                totals.entries,
                totals.exits,
                totals.rows,
                totals.last_minute.unix_seconds(),
                totals.last_occupancy,
                totals.peak_occupancy,
                totals.peak_minute.unix_seconds()
            ])?;
        }
    }
    Ok(())
}

/// After a store's time zone or reset changed: recomputes its whole rollup under the new calendar, in
/// every period holding one of its rows.
pub(super) fn republish_store(transaction: &Transaction, store: StoreKey) -> Result<Republished> {
    let catalog = fresh_catalog(transaction)?;
    let calendar = catalog.store(store).expect("the changed store is in the catalog").calendar();
    let minutes = transaction
        .prepare("SELECT minute FROM store_minutes WHERE store_id = ?1 ORDER BY minute")?
        .query_map([store], |row| Ok(stored_minute(row.get(0)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let touched: BTreeSet<_> = periods_holding(&calendar, minutes).into_iter().map(|period| (store, period)).collect();
    // The old periods' rows and counts go: their boundaries are no longer the store's.
    transaction.execute("DELETE FROM store_minutes WHERE store_id = ?1", [store])?;
    transaction.execute("DELETE FROM store_periods WHERE store_id = ?1", [store])?;
    transaction.execute("DELETE FROM store_rollups WHERE store_id = ?1", [store])?;
    recompute_periods(transaction, &catalog, &touched)?;
    transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'", [])?;
    Ok(Republished { periods: touched.len() as u64, bins: 0 })
}

/// After published bins at `minutes` (ascending) moved between `stores`: recomputes the periods of
/// both that hold them.
pub(super) fn republish_moved(
    transaction: &Transaction,
    stores: [StoreKey; 2],
    minutes: &[Minute],
) -> Result<Republished> {
    let catalog = fresh_catalog(transaction)?;
    let mut touched = BTreeSet::new();
    for store in stores {
        let calendar = catalog.store(store).expect("the device's stores are in the catalog").calendar();
        touched.extend(periods_holding(&calendar, minutes.iter().copied()).into_iter().map(|period| (store, period)));
    }
    recompute_periods(transaction, &catalog, &touched)?;
    transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'", [])?;
    Ok(Republished { periods: touched.len() as u64, bins: minutes.len() as u64 })
}

/// The catalog as changed by `transaction`, not cached: the change may yet roll back.
fn fresh_catalog(transaction: &Transaction) -> Result<Catalog> {
    load_catalog(transaction).map_err(|e| StorageError::Backend(e.into()))
}

pub(super) fn publication_mark(connection: &Connection) -> Result<PublicationMark> {
    let published_at = meta(connection, "last_published_at")?;
    Ok(PublicationMark {
        generation: meta(connection, "publication_generation")?,
        published_at: stored_publication_time(published_at),
    })
}

#[async_trait]
impl PublicationStore for SqliteStorage {
    async fn publication_policy(&self) -> Result<PublicationPolicy> {
        let seconds = self
            .run(Access::Read, |inner| inner.reader(|connection| Ok(meta(connection, PUBLISH_INTERVAL_KEY)?)))
            .await?;
        policy_from_seconds(seconds)
    }

    async fn set_publication_policy(&self, policy: PublicationPolicy) -> Result<()> {
        let seconds = policy_seconds(policy)?;
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                // The catalog carries the policy: it changes only when the policy does.
                let changed = transaction.execute(
                    "UPDATE meta SET value = ?1 WHERE key = ?2 AND value <> ?1",
                    params![seconds, PUBLISH_INTERVAL_KEY],
                )?;
                if changed > 0 {
                    bump_catalog(transaction)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn publish(&self, now: Timestamp, slot: Option<i64>) -> Result<Option<PublishSummary>> {
        if let Some(inbox) = &self.inner.inbox {
            inbox.expect_publication();
        }
        self.run(Access::Write, move |inner| {
            let publication = |transaction: &Transaction| {
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
            };
            match &inner.inbox {
                // Ingests arriving meanwhile are acknowledged from the inbox, not kept waiting.
                Some(inbox) => inbox.publishing(&mut *inner.writer()?, publication),
                None => inner.write(publication),
            }
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
    async fn publication_mark(&self) -> Result<PublicationMark> {
        self.run(Access::Read, |inner| inner.reader(publication_mark)).await
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
}
