//! Backups (left to PostgreSQL's tools), the consistency check, pruning and the monitoring snapshot.

use super::*;

/// Everything `check` verifies, in one snapshot.
async fn check(storage: &PostgresStorage, transaction: &Transaction<'_>) -> Result<CheckReport> {
    let catalog = storage.catalog_in(transaction).await?;
    let mut problems = Vec::new();
    let stored = transaction
        .query("SELECT store_id, minute, entries, exits, occupancy FROM store_minutes ORDER BY store_id, minute", &[])
        .await?
        .iter()
        .map(|row| StoredRollup {
            store: row.get(0),
            minute: stored_minute(row.get(1)),
            entries: row.get(2),
            exits: row.get(3),
            occupancy: row.get(4),
        })
        .collect::<Vec<_>>();
    let expected = transaction
        .query(
            &format!(
                "WITH {} SELECT store_id, minute, sum(entries)::bigint, sum(exits)::bigint FROM bins b
                 WHERE NOT {}
                 GROUP BY store_id, minute HAVING sum(entries) + sum(exits) > 0 ORDER BY store_id, minute",
                publication::NOTED,
                publication::UNPUBLISHED
            ),
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), stored_minute(row.get(1)), row.get(2), row.get(3)))
        .collect::<Vec<_>>();
    let corrections = transaction
        .query(
            "SELECT store_id, minute, value FROM occupancy_corrections WHERE published ORDER BY store_id, minute",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), stored_minute(row.get(1)), row.get(2)))
        .collect::<Vec<_>>();
    let rollup_rows = stored.len() as u64;
    let pieces = transaction
        .query(&format!("SELECT store_id, level, {PIECE_COLUMNS} FROM store_rollups"), &[])
        .await?
        .iter()
        .map(|row| {
            let (start, totals) = stored_piece(std::array::from_fn(|column| row.get(column + 2)));
            (row.get(0), row.get(1), start, totals)
        })
        .collect::<Vec<_>>();
    problems.extend(verify_pieces(&catalog, &stored, &pieces));
    let (found, periods) = verify_rollups(&catalog, stored, expected, &corrections, 50);
    problems.extend(found);
    let recorded = transaction
        .query("SELECT store_id, period_start, period_end, row_count FROM store_periods", &[])
        .await?
        .iter()
        .map(|row| {
            let period = Period { start: stored_minute(row.get(1)), end: stored_minute(row.get(2)) };
            ((row.get::<_, StoreKey>(0), period), row.get::<_, i64>(3) as u64)
        })
        .collect::<BTreeMap<_, _>>();
    if recorded != periods {
        let differing = periods.iter().filter(|(key, count)| recorded.get(key) != Some(count)).count()
            + recorded.keys().filter(|key| !periods.contains_key(key)).count();
        problems.push(format!("{differing} store-day row counts differ from the rollup"));
    }
    // The row positions that count periods cut by a query's bounds.
    let misplaced: i64 = transaction
        .query_one(
            "SELECT count(*) FROM (
                 SELECT m.period_row,
                        row_number() OVER (PARTITION BY p.store_id, p.period_start ORDER BY m.minute) AS position
                 FROM store_minutes m JOIN store_periods p
                   ON p.store_id = m.store_id AND m.minute >= p.period_start AND m.minute < p.period_end) rows
             WHERE period_row <> position",
            &[],
        )
        .await?
        .get(0);
    if misplaced > 0 {
        problems.push(format!("{misplaced} rollup rows have a wrong position within their store-day"));
    }
    Ok(CheckReport { rollup_rows, periods: periods.len() as u64, problems })
}

/// Deletes the published data of every store before its cutoff: whole occupancy periods.
async fn prune(storage: &PostgresStorage, transaction: &Transaction<'_>, before: PruneBefore) -> Result<PruneSummary> {
    let catalog = storage.catalog_in(transaction).await?;
    let (stores, cutoffs): (Vec<i64>, Vec<i64>) =
        before.cutoffs(&catalog).into_iter().map(|(store, cutoff)| (store.0, cutoff.unix_seconds())).unzip();
    let cut = "unnest($1::bigint[], $2::bigint[]) AS t (store_id, cutoff)";
    let bounds: [&(dyn ToSql + Sync); 2] = [&stores, &cutoffs];
    let range = transaction
        .query_one(
            &format!(
                "SELECT min(b.minute), max(b.minute) FROM bins b JOIN {cut}
                 ON b.store_id = t.store_id AND b.minute < t.cutoff"
            ),
            &bounds,
        )
        .await?;
    let delete = |table: &str, condition: &str| {
        let sql = format!("DELETE FROM {table} x USING {cut} WHERE x.store_id = t.store_id AND {condition}");
        async move { transaction.execute(&sql, &bounds).await }
    };
    let mut summary = PruneSummary {
        bins: delete("bins", "x.minute < t.cutoff").await?,
        rollup_rows: delete("store_minutes", "x.minute < t.cutoff").await?,
        periods: delete("store_periods", "x.period_start < t.cutoff").await?,
        corrections: delete("occupancy_corrections", "x.minute < t.cutoff AND x.published").await?,
        sensor_rows: 0,
        range: None,
    };
    // Pieces lie inside their period: those before the cutoff (a period start) are the pruned periods'.
    delete("store_rollups", "x.start < t.cutoff").await?;
    let of_store = format!("FROM devices d, {cut} WHERE d.device_id = x.device_id AND d.store_id = t.store_id");
    let intervals =
        format!("DELETE FROM sensor_intervals x WHERE EXISTS (SELECT 1 {of_store} AND x.minute < t.cutoff)");
    // Each register keeps its last reading before the cutoff: the baseline of its next count.
    let readings = format!(
        "DELETE FROM sensor_readings x WHERE EXISTS (SELECT 1 {of_store} AND x.at < t.cutoff * 1000
             AND x.at < (SELECT max(l.at) FROM sensor_readings l
                         WHERE l.device_id = x.device_id AND l.role = x.role AND l.at < t.cutoff * 1000))"
    );
    summary.sensor_rows =
        transaction.execute(&intervals, &bounds).await? + transaction.execute(&readings, &bounds).await?;
    if let (Some(first), Some(last)) = (range.get::<_, Option<i64>>(0), range.get::<_, Option<i64>>(1)) {
        summary.extend_range(stored_minute(first), stored_minute(last));
    }
    if summary != PruneSummary::default() {
        // What readers see changed: their ETags must too.
        transaction
            .execute(
                "UPDATE meta SET value = CASE key WHEN 'published_bins' THEN value - $1 ELSE value + 1 END
                 WHERE key IN ('published_bins', 'publication_generation')",
                &[&(summary.bins as i64)],
            )
            .await?;
        changes::announce_change(transaction).await?;
    }
    Ok(summary)
}

#[async_trait]
impl Maintenance for PostgresStorage {
    async fn prune(&self, before: PruneBefore) -> Result<PruneSummary> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        // No publication in between: it could recompute a period from bins this is deleting.
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&PUBLISH_LOCK]).await?;
        let summary = prune(self, &transaction, before).await?;
        self.commit_change(transaction).await?;
        Ok(summary)
    }
    async fn backup(&self, _path: std::path::PathBuf) -> Result<()> {
        // A file copy is the embedded store's backup; PostgreSQL has its own tools, which also keep
        // roles, settings and point-in-time recovery (docs/scaling.md).
        Err(StorageError::Invalid(
            "footfall backup copies the embedded SQLite store; back up PostgreSQL with pg_dump or continuous archiving"
                .into(),
        ))
    }
    async fn check(&self) -> Result<CheckReport> {
        let mut client = self.pool.get().await?;
        let transaction =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let report = check(self, &transaction).await?;
        transaction.commit().await?;
        Ok(report)
    }
    async fn monitoring(&self) -> Result<MonitoringSnapshot> {
        let client = self.pool.get().await?;
        static QUERY: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| monitoring_query(&format!("({})", publication::PENDING_BINS)));
        let statement = client.prepare_cached(&QUERY).await?;
        let rows = client.query(&statement, &[&PUBLISH_INTERVAL_KEY]).await?;
        let first = rows.first().expect("the query has a row without devices too");
        let devices = rows
            .iter()
            .filter(|row| row.get::<_, Option<&str>>(0).is_some())
            .map(|row| super::catalog::device_status(row, 0))
            .collect::<Result<Vec<_>>>()?;
        monitoring_snapshot(first.get(5), first.get(6), first.get(7), devices)
    }
}
