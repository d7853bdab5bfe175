//! The publication: pending bins merged into the published ones, the touched periods' rollups
//! recomputed, under the exclusive publish lock.

use super::*;

/// Publication recomputes this many periods per round trip, bounding memory (a local day has at most
/// 1500 rows) while keeping round trips few.
const PERIODS_PER_BATCH: usize = 500;

/// Publications of more bins than this refresh the planner's statistics.
const ANALYZE_THRESHOLD: i64 = 100_000;

impl PostgresStorage {
    async fn publish_in(&self, transaction: &Transaction<'_>, now: Timestamp) -> Result<PublishSummary> {
        let started = std::time::Instant::now();
        // The rollup's aggregation sorts up to a batch of periods' bins (~10^6 rows), which would spill
        // to disk at the default 4 MB.
        transaction.batch_execute("SET LOCAL work_mem = '128MB'").await?;
        // The pending bins are taken in one statement: what it deleted is what this publication
        // publishes, and bins ingested from then on stay pending for the next one. Ingests take no lock
        // against this; only one re-sending a key being taken waits, for that row.
        let taken = transaction
            .execute(
                "CREATE TEMPORARY TABLE publishing_bins ON COMMIT DROP AS
                 WITH taken AS (DELETE FROM pending_bins RETURNING store_id, device_id, minute, entries, exits)
                 SELECT * FROM taken",
                &[],
            )
            .await?;
        if taken as i64 > ANALYZE_THRESHOLD {
            // A temporary table has no statistics until analysed: the merge's plan needs them.
            transaction.batch_execute("ANALYZE publishing_bins").await?;
        }
        let catalog = self.catalog_in(transaction).await?;
        let Pending { bins: pending_bins, mut touched } = pending_summary(transaction, &catalog).await?;
        let (noted, noted_periods) = take_notes(transaction, &catalog).await?;
        touched.extend(noted_periods);
        for row in
            transaction.query("SELECT store_id, minute FROM occupancy_corrections WHERE NOT published", &[]).await?
        {
            let store: StoreKey = row.get(0);
            let calendar = catalog.store(store).expect("a correction's store is in the catalog").calendar();
            touched.insert((store, calendar.period_of(stored_minute(row.get(1)))));
        }
        let inserted = merge_pending(transaction).await? + noted;
        let pending = pending_bins + noted;
        let merged = started.elapsed();
        let touched: Vec<(StoreKey, Period)> = touched.into_iter().collect();
        for batch in touched.chunks(PERIODS_PER_BATCH) {
            recompute_periods(transaction, &catalog, batch).await?;
        }
        tracing::debug!(
            pending,
            periods = touched.len(),
            merge_ms = merged.as_millis() as u64,
            rollup_ms = (started.elapsed() - merged).as_millis() as u64,
            "published"
        );
        if pending > ANALYZE_THRESHOLD {
            // After a bulk publication the planner's statistics are stale until autovacuum comes by,
            // and a store's page read planned for 90 rows instead of 35,000 took 38 ms, not 3.
            transaction.batch_execute("ANALYZE bins, store_minutes, store_periods").await?;
        }
        transaction.execute("UPDATE occupancy_corrections SET published = true WHERE NOT published", &[]).await?;
        transaction
            .execute(
                "UPDATE meta SET value = CASE key
                     WHEN 'publication_generation' THEN value + 1
                     WHEN 'published_bins' THEN value + $1
                     ELSE $2 END
                 WHERE key IN ('publication_generation', 'published_bins', 'last_published_at')",
                &[&inserted, &now.as_millisecond()],
            )
            .await?;
        changes::announce_change(transaction).await?;
        Ok(PublishSummary { bins: pending as u64, periods: touched.len() as u64 })
    }
}

/// What is pending: the number of bins and the periods they touch.
struct Pending {
    bins: i64,
    touched: BTreeSet<(StoreKey, Period)>,
}

/// Summarises the pending bins. Reading every pending key would move millions of rows; per device and
/// UTC hour the first and last minute suffice, since every period between them is touched (periods
/// are contiguous; only around exotic zone changes could a period lying wholly inside an hour be
/// recomputed without need, which is merely redundant).
async fn pending_summary(transaction: &Transaction<'_>, catalog: &Catalog) -> Result<Pending> {
    let rows = transaction
        .query(
            "SELECT store_id, device_id, min(minute), max(minute), count(*) FROM publishing_bins
             GROUP BY store_id, device_id, minute / 3600 ORDER BY store_id, min(minute)",
            &[],
        )
        .await?;
    let mut pending = Pending { bins: 0, touched: BTreeSet::new() };
    let mut current: Option<(StoreKey, Period)> = None;
    for row in rows {
        let (store_key, first, last): (StoreKey, i64, i64) = (row.get(0), row.get(2), row.get(3));
        pending.bins += row.get::<_, i64>(4);
        touched_by(catalog, &mut pending.touched, &mut current, store_key, stored_minute(first), stored_minute(last))?;
    }
    Ok(pending)
}

/// Takes the notes of bins written straight into `bins` that this statement sees (later ones stay,
/// and the rollup leaves their bins out): how many bins they cover, all new keys, and their periods.
async fn take_notes(transaction: &Transaction<'_>, catalog: &Catalog) -> Result<(i64, BTreeSet<(StoreKey, Period)>)> {
    let rows =
        transaction.query("DELETE FROM pending_spans RETURNING store_id, first_minute, last_minute, bins", &[]).await?;
    let bins = rows.iter().map(|row| row.get::<_, i64>(3)).sum();
    let mut spans: Vec<(StoreKey, i64, i64)> = rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    spans.sort_unstable();
    let mut touched = BTreeSet::new();
    let mut current: Option<(StoreKey, Period)> = None;
    for (store_key, first, last) in spans {
        touched_by(catalog, &mut touched, &mut current, store_key, stored_minute(first), stored_minute(last))?;
    }
    Ok((bins, touched))
}

/// Adds the periods from the one holding `first` to the one holding `last` (periods are contiguous);
/// `current`, the last period added, saves a lookup when spans come in store and minute order.
fn touched_by(
    catalog: &Catalog,
    touched: &mut BTreeSet<(StoreKey, Period)>,
    current: &mut Option<(StoreKey, Period)>,
    store_key: StoreKey,
    first: Minute,
    last: Minute,
) -> Result<()> {
    let store = catalog
        .store(store_key)
        .ok_or_else(|| StorageError::Invalid(format!("pending bins of unknown store key {store_key}")))?;
    let calendar = store.calendar();
    let mut period = match *current {
        Some((s, period)) if s == store_key && period.start <= first && first < period.end => period,
        _ => calendar.period_of(first),
    };
    touched.insert((store_key, period));
    while period.end <= last {
        period = calendar.period_of(period.end);
        touched.insert((store_key, period));
    }
    *current = Some((store_key, period));
    Ok(())
}

/// Merges the pending bins into the published ones; returns how many were new. They are re-sent keys
/// and small ingests (large ones of new keys go straight into `bins`): an upsert, which also covers a
/// key written straight into `bins` while this publication runs.
async fn merge_pending(transaction: &Transaction<'_>) -> Result<i64> {
    // `xmax = 0` marks a row this statement inserted rather than updated: new bins are counted in the
    // same pass as the merge instead of by a second join. In key order: the index grows at the right
    // end of each device's range (measured ~15% faster).
    Ok(transaction
        .query_one(
            "WITH merged AS (
                 INSERT INTO bins (store_id, device_id, minute, entries, exits)
                 SELECT store_id, device_id, minute, entries, exits FROM publishing_bins
                 ORDER BY store_id, device_id, minute
                 ON CONFLICT (store_id, device_id, minute)
                 DO UPDATE SET entries = excluded.entries, exits = excluded.exits
                 RETURNING xmax = 0 AS inserted)
             SELECT count(*) FILTER (WHERE inserted) FROM merged",
            &[],
        )
        .await?
        .get(0))
}

/// The bins ingested and not yet published, as one row: those pending, and those written straight into
/// `bins` (each note counts its own; a note's range holds no other) that no pending one replaces.
pub(super) const PENDING_BINS: &str = "WITH noted AS MATERIALIZED (SELECT * FROM pending_spans)
    SELECT (SELECT count(*) FROM pending_bins) + (SELECT coalesce(sum(bins), 0) FROM noted)::bigint
         - (SELECT count(*) FROM pending_bins p
            WHERE EXISTS (SELECT 1 FROM noted s WHERE s.store_id = p.store_id AND s.device_id = p.device_id
                            AND s.first_minute <= p.minute AND p.minute <= s.last_minute)
              AND EXISTS (SELECT 1 FROM bins b
                          WHERE b.store_id = p.store_id AND b.device_id = p.device_id AND b.minute = p.minute))";

/// The notes of bins written straight into `bins` that a statement sees, as a WITH item: read once per
/// statement (they are few), rather than probed per bin.
pub(super) const NOTED: &str =
    "noted AS MATERIALIZED (SELECT store_id, device_id, first_minute, last_minute FROM pending_spans)";

/// Whether bin `b` is one written straight into `bins` and not yet published (a note covers it): every
/// read of published bins leaves these out. Needs [`NOTED`].
pub(super) const UNPUBLISHED: &str = "EXISTS (SELECT 1 FROM noted s
    WHERE s.store_id = b.store_id AND s.device_id = b.device_id AND s.first_minute <= b.minute AND b.minute <= s.last_minute)";

/// Recomputes the rollup rows and row counts of these periods from the published bins and
/// corrections: one read of the sums, one of the corrections, one delete, one insert, and two writes
/// of the counts, whatever the number of periods.
async fn recompute_periods(
    transaction: &Transaction<'_>,
    catalog: &Catalog,
    periods: &[(StoreKey, Period)],
) -> Result<()> {
    let stores: Vec<i64> = periods.iter().map(|&(store, _)| store.0).collect();
    let starts: Vec<i64> = periods.iter().map(|(_, period)| period.start.unix_seconds()).collect();
    let ends: Vec<i64> = periods.iter().map(|(_, period)| period.end.unix_seconds()).collect();

    let corrections = period_corrections(transaction, periods).await?;
    let ranges = device_ranges(catalog, periods);
    // The bins as they are, summed here: PostgreSQL sums bigints as numeric, and its aggregation and
    // sort took 0.9 of the 1.0 s this read took for 500 store-days (677k bins), on the backend's one
    // core while this process's sat idle.
    let statement = transaction
        .prepare_cached(&format!(
            "WITH {NOTED}
             SELECT t.period, b.minute, b.entries, b.exits
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
                  AS t (period, store_id, device_id, period_start, period_end)
             JOIN bins b ON b.store_id = t.store_id AND b.device_id = t.device_id
                        AND b.minute >= t.period_start AND b.minute < t.period_end
             WHERE NOT {UNPUBLISHED}"
        ))
        .await?;
    let params: Vec<&(dyn ToSql + Sync)> = ranges.iter().map(|column| column as &(dyn ToSql + Sync)).collect();
    let rows = transaction.query_raw(&statement, params).await?;
    pin_mut!(rows);
    let mut bins: Vec<Vec<(i64, i64, i64)>> = vec![Vec::new(); periods.len()];
    while let Some(row) = rows.try_next().await? {
        bins[row.get::<_, i64>(0) as usize].push((row.get(1), row.get(2), row.get(3)));
    }
    let minutes: Vec<Vec<(Minute, i64, i64)>> = bins.into_iter().map(minute_sums).collect();

    let mut new_rows: Vec<[i64; 6]> = Vec::new();
    let mut new_pieces = PieceColumns::default();
    let (mut counted, mut counts, mut empty) = (Vec::new(), Vec::new(), Vec::new());
    for (index, (minutes, corrections)) in minutes.iter().zip(&corrections).enumerate() {
        if minutes.is_empty() {
            empty.push(index);
            continue;
        }
        counted.push(index);
        counts.push(minutes.len() as i64);
        let occupancy = running_occupancy(minutes, corrections);
        let rows: Vec<MinuteCounts> = minutes
            .iter()
            .zip(occupancy)
            .map(|(&(minute, entries, exits), occupancy)| (minute, entries, exits, occupancy))
            .collect();
        for (row, &(minute, entries, exits, occupancy)) in rows.iter().enumerate() {
            let values = [stores[index], minute.unix_seconds(), entries, exits, occupancy, row as i64 + 1];
            new_rows.push(values);
        }
        let (store, _) = periods[index];
        new_pieces.add(store, &catalog.store(store).expect("a touched store is in the catalog").calendar(), &rows);
    }
    transaction
        .execute(
            &transaction
                .prepare_cached(
                    "DELETE FROM store_minutes s
                     USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t (store_id, period_start, period_end)
                     WHERE s.store_id = t.store_id AND s.minute >= t.period_start AND s.minute < t.period_end",
                )
                .await?,
            &[&stores, &starts, &ends],
        )
        .await?;
    transaction
        .execute(
            &transaction
                .prepare_cached(
                    "DELETE FROM store_rollups s
                     USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t (store_id, period_start, period_end)
                     WHERE s.store_id = t.store_id AND s.start >= t.period_start AND s.start < t.period_end",
                )
                .await?,
            &[&stores, &starts, &ends],
        )
        .await?;
    new_pieces.insert(transaction).await?;
    // COPY rather than an INSERT of arrays: a third less of the backend's time for a batch's ~400k rows.
    let sink = transaction
        .copy_in(
            "COPY store_minutes (store_id, minute, entries, exits, occupancy, period_row) FROM STDIN (FORMAT binary)",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8; 6]);
    pin_mut!(writer);
    for row in &new_rows {
        writer.as_mut().write_raw(row.iter()).await?;
    }
    writer.finish().await?;
    let select = |indexes: &[usize], column: &[i64]| -> Vec<i64> { indexes.iter().map(|&i| column[i]).collect() };
    let (counted_stores, counted_starts, counted_ends) =
        (select(&counted, &stores), select(&counted, &starts), select(&counted, &ends));
    transaction
        .execute(
            &transaction
                .prepare_cached(
                    "INSERT INTO store_periods (store_id, period_start, period_end, row_count)
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
                     ON CONFLICT (store_id, period_start)
                     DO UPDATE SET period_end = excluded.period_end, row_count = excluded.row_count",
                )
                .await?,
            &[&counted_stores, &counted_starts, &counted_ends, &counts],
        )
        .await?;
    if !empty.is_empty() {
        let (empty_stores, empty_starts) = (select(&empty, &stores), select(&empty, &starts));
        transaction
            .execute(
                &transaction
                    .prepare_cached(
                        "DELETE FROM store_periods p USING unnest($1::bigint[], $2::bigint[]) AS t (store_id, period_start)
                         WHERE p.store_id = t.store_id AND p.period_start = t.period_start",
                    )
                    .await?,
                &[&empty_stores, &empty_starts],
            )
            .await?;
    }
    Ok(())
}

/// The minutes with traffic of a store's bins `(minute, entries, exits)`, summed over its devices, in
/// minute order.
fn minute_sums(mut bins: Vec<(i64, i64, i64)>) -> Vec<(Minute, i64, i64)> {
    bins.sort_unstable_by_key(|&(minute, ..)| minute);
    let mut sums: Vec<(Minute, i64, i64)> = Vec::with_capacity(bins.len());
    for run in bins.chunk_by(|a, b| a.0 == b.0) {
        let (entries, exits) = run.iter().fold((0, 0), |(e, x), &(_, entries, exits)| (e + entries, x + exits));
        if entries + exits > 0 {
            sums.push((stored_minute(run[0].0), entries, exits));
        }
    }
    sums
}

/// Each period's corrections (published or not), by minute.
pub(super) async fn period_corrections(
    transaction: &Transaction<'_>,
    periods: &[(StoreKey, Period)],
) -> Result<Vec<Vec<(Minute, i64)>>> {
    let indexes: Vec<i64> = (0..periods.len() as i64).collect();
    let stores: Vec<i64> = periods.iter().map(|&(store, _)| store.0).collect();
    let starts: Vec<i64> = periods.iter().map(|(_, period)| period.start.unix_seconds()).collect();
    let ends: Vec<i64> = periods.iter().map(|(_, period)| period.end.unix_seconds()).collect();
    let statement = transaction
        .prepare_cached(
            "SELECT t.period, c.minute, c.value
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t (period, store_id, period_start, period_end)
             JOIN occupancy_corrections c
               ON c.store_id = t.store_id AND c.minute >= t.period_start AND c.minute < t.period_end
             ORDER BY t.period, c.minute",
        )
        .await?;
    let mut corrections = vec![Vec::new(); periods.len()];
    for row in transaction.query(&statement, &[&indexes, &stores, &starts, &ends]).await? {
        corrections[row.get::<_, i64>(0) as usize].push((stored_minute(row.get(1)), row.get(2)));
    }
    Ok(corrections)
}

/// One (period index, store, device, period start, period end) range per device of each period's store,
/// column by column: every read of a period's bins is then a range of the (store_id, device_id, minute)
/// key rather than a scan of the store's bins.
pub(super) fn device_ranges(catalog: &Catalog, periods: &[(StoreKey, Period)]) -> [Vec<i64>; 5] {
    let mut ranges: [Vec<i64>; 5] = Default::default();
    for (index, &(store, period)) in periods.iter().enumerate() {
        for device in catalog.devices().iter().filter(|device| device.store == store) {
            let range = [index as i64, store.0, device.key.0, period.start.unix_seconds(), period.end.unix_seconds()];
            for (column, value) in ranges.iter_mut().zip(range) {
                column.push(value);
            }
        }
    }
    ranges
}

/// Hour and day pieces to insert into `store_rollups`, column by column.
#[derive(Default)]
pub(super) struct PieceColumns([Vec<i64>; 10]);

impl PieceColumns {
    /// The pieces of `rows`, a store's minute rows of one or more whole periods.
    pub(super) fn add(&mut self, store: StoreKey, calendar: &PeriodCalendar<'_>, rows: &[MinuteCounts]) {
        for level in Level::STORED {
            for (start, t) in pieces(calendar, level, rows) {
                let values = [
                    store.0,
                    level.code(),
                    start.unix_seconds(),
                    t.entries,
                    t.exits,
                    t.rows,
                    t.last_minute.unix_seconds(),
                    t.last_occupancy,
                    t.peak_occupancy,
                    t.peak_minute.unix_seconds(),
                ];
                for (column, value) in self.0.iter_mut().zip(values) {
                    column.push(value);
                }
            }
        }
    }

    pub(super) async fn insert(&self, transaction: &Transaction<'_>) -> Result<()> {
        let statement = transaction
            .prepare_cached(&format!(
                "INSERT INTO store_rollups (store_id, level, {PIECE_COLUMNS})
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                                      $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])"
            ))
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> = self.0.iter().map(|column| column as &(dyn ToSql + Sync)).collect();
        transaction.execute(&statement, &params).await?;
        Ok(())
    }
}

/// After a store's time zone or reset changed: recomputes its whole rollup under the new calendar, in
/// every period holding one of its rows. The caller holds the publish lock.
pub(super) async fn republish_store(transaction: &Transaction<'_>, store: StoreKey) -> Result<Republished> {
    let catalog = load_catalog(transaction).await?;
    let calendar = catalog.store(store).expect("the changed store is in the catalog").calendar();
    let minutes = transaction
        .query("SELECT minute FROM store_minutes WHERE store_id = $1 ORDER BY minute", &[&store])
        .await?
        .iter()
        .map(|row| stored_minute(row.get(0)))
        .collect::<Vec<_>>();
    let touched: Vec<_> = periods_holding(&calendar, minutes).into_iter().map(|period| (store, period)).collect();
    // The old periods' rows and counts go: their boundaries are no longer the store's.
    transaction.execute("DELETE FROM store_minutes WHERE store_id = $1", &[&store]).await?;
    transaction.execute("DELETE FROM store_rollups WHERE store_id = $1", &[&store]).await?;
    transaction.execute("DELETE FROM store_periods WHERE store_id = $1", &[&store]).await?;
    republish(transaction, &catalog, &touched).await?;
    Ok(Republished { periods: touched.len() as u64, bins: 0 })
}

/// After published bins at `minutes` (ascending) moved between `stores`: recomputes the periods of
/// both that hold them. The caller holds the publish lock.
pub(super) async fn republish_moved(
    transaction: &Transaction<'_>,
    stores: [StoreKey; 2],
    minutes: &[Minute],
) -> Result<Republished> {
    let catalog = load_catalog(transaction).await?;
    let mut touched = Vec::new();
    for store in stores {
        let calendar = catalog.store(store).expect("the device's stores are in the catalog").calendar();
        touched.extend(periods_holding(&calendar, minutes.iter().copied()).into_iter().map(|period| (store, period)));
    }
    republish(transaction, &catalog, &touched).await?;
    Ok(Republished { periods: touched.len() as u64, bins: minutes.len() as u64 })
}

/// Recomputes `touched` with `catalog` (the transaction's own, not the cached one: it may yet roll
/// back) and bumps the publication generation.
async fn republish(transaction: &Transaction<'_>, catalog: &Catalog, touched: &[(StoreKey, Period)]) -> Result<()> {
    for batch in touched.chunks(PERIODS_PER_BATCH) {
        recompute_periods(transaction, catalog, batch).await?;
    }
    transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'", &[]).await?;
    changes::announce_change(transaction).await?;
    Ok(())
}

#[async_trait]
impl PublicationStore for PostgresStorage {
    async fn publication_policy(&self) -> Result<PublicationPolicy> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached("SELECT value FROM meta WHERE key = $1").await?;
        policy_from_seconds(client.query_one(&statement, &[&PUBLISH_INTERVAL_KEY]).await?.get(0))
    }

    async fn set_publication_policy(&self, policy: PublicationPolicy) -> Result<()> {
        let seconds = policy_seconds(policy)?;
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        // The catalog carries the policy: it changes only when the policy does.
        let changed = transaction
            .execute("UPDATE meta SET value = $1 WHERE key = $2 AND value <> $1", &[&seconds, &PUBLISH_INTERVAL_KEY])
            .await?;
        if changed > 0 {
            bump_catalog(&transaction).await?;
        }
        self.commit_change(transaction).await?;
        Ok(())
    }

    async fn publish(&self, now: Timestamp, slot: Option<i64>) -> Result<Option<PublishSummary>> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        // One publication at a time, across every process. Under READ COMMITTED each later statement
        // takes a fresh snapshot, so once the lock is ours the slot check below sees the claim a
        // previous holder committed: a slot is published once however many servers race for it. (The
        // UPDATE alone would also be safe: it waits for a concurrent claim's row lock and re-checks
        // `value < slot` against the committed row.)
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&PUBLISH_LOCK]).await?;
        if let Some(slot) = slot {
            let claimed = transaction
                .execute("UPDATE meta SET value = $1 WHERE key = 'last_scheduled_slot' AND value < $1", &[&slot])
                .await?;
            if claimed == 0 {
                return Ok(None);
            }
        }
        let summary = self.publish_in(&transaction, now).await?;
        self.commit_change(transaction).await?;
        Ok(Some(summary))
    }
    async fn has_pending(&self) -> Result<bool> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM pending_bins) OR EXISTS (SELECT 1 FROM pending_spans)")
            .await?;
        Ok(client.query_one(&statement, &[]).await?.get(0))
    }
    async fn publication_mark(&self) -> Result<PublicationMark> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT max(value) FILTER (WHERE key = 'publication_generation'),
                        max(value) FILTER (WHERE key = 'last_published_at')
                 FROM meta WHERE key IN ('publication_generation', 'last_published_at')",
            )
            .await?;
        let row = client.query_one(&statement, &[]).await?;
        Ok(publication_mark_from(row.get(0), row.get(1)))
    }
    async fn publication(&self) -> Result<PublicationState> {
        let client = self.pool.get().await?;
        let pending = client.query_one(PENDING_BINS, &[]);
        let meta = client.query(
            "SELECT key, value FROM meta WHERE key IN ('publication_generation', 'last_published_at', 'published_bins')",
            &[],
        );
        let (pending, meta) = futures_util::try_join!(pending, meta)?;
        let value = |key: &str| meta.iter().find(|row| row.get::<_, &str>(0) == key).map_or(0, |row| row.get(1));
        Ok(PublicationState {
            mark: publication_mark_from(value("publication_generation"), value("last_published_at")),
            pending_bins: pending.get::<_, i64>(0) as u64,
            published_bins: value("published_bins") as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_sums_add_the_devices_and_drop_minutes_without_traffic() {
        let bins = vec![(120, 1, 0), (60, 2, 1), (120, 3, 4), (180, 0, 0), (60, 0, 0), (240, 0, 0), (240, 0, 2)];
        let expected = [(stored_minute(60), 2, 1), (stored_minute(120), 4, 4), (stored_minute(240), 0, 2)];
        assert_eq!(minute_sums(bins), expected);
        assert_eq!(minute_sums(Vec::new()), []);
    }
}
