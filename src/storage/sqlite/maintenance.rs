//! Backups, the consistency check, pruning and the monitoring snapshot.

use super::*;

/// Everything `check` verifies, in one read transaction.
fn check(inner: &Inner, connection: &Connection) -> Result<CheckReport> {
    let mut problems = Vec::new();
    let integrity: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if integrity != "ok" {
        problems.push(format!("SQLite integrity check: {integrity}"));
    }
    let catalog = inner.catalog(connection)?;
    let minute = stored_minute;
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
    let pieces = connection
        .prepare(&format!("SELECT store_id, level, {PIECE_COLUMNS} FROM store_rollups"))?
        .query_map([], |row| {
            let mut columns = [0i64; 8];
            for (index, column) in columns.iter_mut().enumerate() {
                *column = row.get(index + 2)?;
            }
            let (start, totals) = stored_piece(columns);
            Ok((row.get(0)?, row.get(1)?, start, totals))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    problems.extend(verify_pieces(&catalog, &stored, &pieces));
    let (found, periods) = verify_rollups(&catalog, stored, expected, &corrections, 50);
    problems.extend(found);
    let mut statement =
        connection.prepare("SELECT store_id, period_start, period_end, row_count FROM store_periods")?;
    let recorded = statement
        .query_map([], |row| {
            let period = Period { start: minute(row.get(1)?), end: minute(row.get(2)?) };
            Ok(((row.get::<_, StoreKey>(0)?, period), row.get::<_, i64>(3)? as u64))
        })?
        .collect::<rusqlite::Result<std::collections::BTreeMap<_, _>>>()?;
    if recorded != periods {
        let differing = periods.iter().filter(|(key, count)| recorded.get(key) != Some(count)).count()
            + recorded.keys().filter(|key| !periods.contains_key(key)).count();
        problems.push(format!("{differing} store-day row counts differ from the rollup"));
    }
    Ok(CheckReport { rollup_rows, periods: periods.len() as u64, problems })
}

/// Deletes the published data of every store before its cutoff: whole occupancy periods.
fn prune(inner: &Inner, transaction: &Transaction, before: PruneBefore) -> Result<PruneSummary> {
    let catalog = inner.catalog(transaction)?;
    let mut summary = PruneSummary::default();
    let mut range = transaction.prepare(
        "SELECT min(minute), max(minute) FROM bins
         WHERE device_id IN (SELECT id FROM devices WHERE store_id = ?1) AND minute < ?2",
    )?;
    let mut bins = transaction
        .prepare("DELETE FROM bins WHERE device_id IN (SELECT id FROM devices WHERE store_id = ?1) AND minute < ?2")?;
    let mut rollup = transaction.prepare("DELETE FROM store_minutes WHERE store_id = ?1 AND minute < ?2")?;
    let mut periods = transaction.prepare("DELETE FROM store_periods WHERE store_id = ?1 AND period_start < ?2")?;
    // Pieces lie inside their period: those before the cutoff (a period start) are the pruned periods'.
    let mut pieces = transaction.prepare("DELETE FROM store_rollups WHERE store_id = ?1 AND start < ?2")?;
    let mut corrections = transaction
        .prepare("DELETE FROM occupancy_corrections WHERE store_id = ?1 AND minute < ?2 AND published = 1")?;
    let of_store = "device_id IN (SELECT device_id FROM devices WHERE store_id = ?1)";
    let mut intervals =
        transaction.prepare(&format!("DELETE FROM sensor_intervals WHERE {of_store} AND minute < ?2"))?;
    let mut readings = transaction.prepare(&format!(
        "DELETE FROM sensor_readings AS r WHERE {of_store} AND at < ?2 * 1000
         AND at < (SELECT max(at) FROM sensor_readings AS l
                   WHERE l.device_id = r.device_id AND l.role = r.role AND l.at < ?2 * 1000)"
    ))?;
    for (store, cutoff) in before.cutoffs(&catalog) {
        let bounds = params![store, cutoff.unix_seconds()];
        let (first, last) = range.query_row(bounds, |row| Ok((row.get::<_, Option<i64>>(0)?, row.get(1)?)))?;
        if let (Some(first), Some(last)) = (first, last) {
            summary.extend_range(stored_minute(first), stored_minute(last));
        }
        summary.bins += bins.execute(bounds)? as u64;
        summary.rollup_rows += rollup.execute(bounds)? as u64;
        summary.periods += periods.execute(bounds)? as u64;
        pieces.execute(bounds)?;
        summary.corrections += corrections.execute(bounds)? as u64;
        summary.sensor_rows += (intervals.execute(bounds)? + readings.execute(bounds)?) as u64;
    }
    if summary != PruneSummary::default() {
        transaction
            .execute("UPDATE meta SET value = value - ?1 WHERE key = 'published_bins'", [summary.bins as i64])?;
        // What readers see changed: their ETags must too.
        transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'", [])?;
    }
    Ok(summary)
}

#[async_trait]
impl Maintenance for SqliteStorage {
    async fn prune(&self, before: PruneBefore) -> Result<PruneSummary> {
        self.run(Access::Write, move |inner| inner.write(|transaction| prune(inner, transaction, before))).await
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
    async fn monitoring(&self) -> Result<MonitoringSnapshot> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                static QUERY: std::sync::LazyLock<String> =
                    std::sync::LazyLock::new(|| monitoring_query("(SELECT count(*) FROM pending_bins)"));
                let mut statement = connection.prepare_cached(&QUERY)?;
                let mut rows = statement.query([PUBLISH_INTERVAL_KEY])?;
                let (mut scalars, mut devices) = (None, Vec::new());
                while let Some(row) = rows.next()? {
                    scalars.get_or_insert((row.get(5)?, row.get(6)?, row.get(7)?));
                    if row.get::<_, Option<String>>(0)?.is_some() {
                        devices.push(super::catalog::device_status(row, 0)?);
                    }
                }
                let (pending, published_at, interval) = scalars.expect("the query has a row without devices too");
                monitoring_snapshot(pending, published_at, interval, devices)
            })
        })
        .await
    }
}
