//! Pending bins and occupancy corrections.

use super::*;

/// Ingests up to this many bins go in one INSERT of arrays into the pending bins; larger ones through
/// COPY, whose setup is not worth making for a device's minute or two.
const COPY_THRESHOLD: usize = 2_000;

/// Writes sorted, deduplicated bins for the next publication (a bin re-sent replaces the earlier one).
pub(super) async fn write_pending(transaction: &Transaction<'_>, bins: &[Bin], stores: &[StoreKey]) -> Result<()> {
    if bins.len() > COPY_THRESHOLD {
        // Sensors send minutes in order, so a large batch nearly always lands after each device's
        // earlier bins: then it is copied straight into the bins, with a note per device of the range it
        // fills, at a third of the cost of an upsert into the pending bins, and the publication need not
        // move it. The ranges must hold no bin yet, published or pending: a note's range is then
        // exactly this ingest's bins, which every read of published bins leaves out until the
        // publication, and no older pending value can later be merged over one of them. A concurrent
        // write of one of its keys fails the COPY, which is undone to the savepoint.
        let ranges = device_ranges(bins, stores);
        if ranges_are_empty(transaction, &ranges).await? {
            transaction.batch_execute("SAVEPOINT new_bins").await?;
            match write_new_bins(transaction, bins, stores, &ranges).await {
                Ok(()) => return Ok(transaction.batch_execute("RELEASE SAVEPOINT new_bins").await?),
                Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    transaction.batch_execute("ROLLBACK TO SAVEPOINT new_bins").await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    upsert_pending(transaction, bins, stores).await
}

/// Per device of key-sorted bins: store, device, first minute, last minute and number of bins, column
/// by column.
fn device_ranges(bins: &[Bin], stores: &[StoreKey]) -> [Vec<i64>; 5] {
    let mut ranges: [Vec<i64>; 5] = Default::default();
    let mut at = 0;
    for run in bins.chunk_by(|a, b| a.device == b.device) {
        let (first, last) = (run[0].minute, run[run.len() - 1].minute);
        let range = [stores[at].0, run[0].device.0, first.unix_seconds(), last.unix_seconds(), run.len() as i64];
        for (column, value) in ranges.iter_mut().zip(range) {
            column.push(value);
        }
        at += run.len();
    }
    ranges
}

fn range_params(ranges: &[Vec<i64>; 5]) -> Vec<&(dyn ToSql + Sync)> {
    ranges.iter().map(|column| column as &(dyn ToSql + Sync)).collect()
}

/// Whether no bin, published or pending, lies in any of the ranges.
async fn ranges_are_empty(transaction: &Transaction<'_>, ranges: &[Vec<i64>; 5]) -> Result<bool> {
    let statement = transaction
        .prepare_cached(
            "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
                             AS r (store_id, device_id, first_minute, last_minute, bins))
             SELECT NOT EXISTS (SELECT 1 FROM r JOIN bins b
                                  ON b.store_id = r.store_id AND b.device_id = r.device_id
                                 AND b.minute >= r.first_minute AND b.minute <= r.last_minute)
                AND NOT EXISTS (SELECT 1 FROM r JOIN pending_bins p
                                  ON p.store_id = r.store_id AND p.device_id = r.device_id
                                 AND p.minute >= r.first_minute AND p.minute <= r.last_minute)",
        )
        .await?;
    Ok(transaction.query_one(&statement, &range_params(ranges)).await?.get(0))
}

/// COPYs bins of new keys into `bins` and notes their ranges.
async fn write_new_bins(
    transaction: &Transaction<'_>,
    bins: &[Bin],
    stores: &[StoreKey],
    ranges: &[Vec<i64>; 5],
) -> Result<(), tokio_postgres::Error> {
    copy_bins(transaction, "bins", bins, stores).await?;
    let statement = transaction
        .prepare_cached(
            "INSERT INTO pending_spans (store_id, device_id, first_minute, last_minute, bins)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])",
        )
        .await?;
    transaction.execute(&statement, &range_params(ranges)).await?;
    Ok(())
}

/// Upserts the bins into the pending bins.
async fn upsert_pending(transaction: &Transaction<'_>, bins: &[Bin], stores: &[StoreKey]) -> Result<()> {
    const UPSERT: &str = "ON CONFLICT (store_id, device_id, minute)
                          DO UPDATE SET entries = excluded.entries, exits = excluded.exits";
    if bins.len() <= COPY_THRESHOLD {
        let devices: Vec<DeviceKey> = bins.iter().map(|bin| bin.device).collect();
        let minutes: Vec<i64> = bins.iter().map(|bin| bin.minute.unix_seconds()).collect();
        let entries: Vec<i64> = bins.iter().map(|bin| i64::from(bin.counts.entries)).collect();
        let exits: Vec<i64> = bins.iter().map(|bin| i64::from(bin.counts.exits)).collect();
        let statement = transaction
            .prepare_cached(&format!(
                "INSERT INTO pending_bins (store_id, device_id, minute, entries, exits)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) {UPSERT}"
            ))
            .await?;
        transaction.execute(&statement, &[&stores, &devices, &minutes, &entries, &exits]).await?;
        return Ok(());
    }
    transaction
        .batch_execute(
            "CREATE TEMPORARY TABLE incoming_bins (
                 store_id bigint, device_id bigint, minute bigint, entries bigint, exits bigint) ON COMMIT DROP",
        )
        .await?;
    copy_bins(transaction, "incoming_bins", bins, stores).await?;
    transaction
        .batch_execute(&format!(
            "INSERT INTO pending_bins (store_id, device_id, minute, entries, exits)
             SELECT store_id, device_id, minute, entries, exits FROM incoming_bins {UPSERT}"
        ))
        .await?;
    Ok(())
}

/// Binary COPY of the bins into `table`.
async fn copy_bins(
    transaction: &Transaction<'_>,
    table: &str,
    bins: &[Bin],
    stores: &[StoreKey],
) -> Result<(), tokio_postgres::Error> {
    let sink = transaction
        .copy_in(&format!("COPY {table} (store_id, device_id, minute, entries, exits) FROM STDIN (FORMAT binary)"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8; 5]);
    pin_mut!(writer);
    for (bin, store) in bins.iter().zip(stores) {
        let row: [i64; 5] = [
            store.0,
            bin.device.0,
            bin.minute.unix_seconds(),
            i64::from(bin.counts.entries),
            i64::from(bin.counts.exits),
        ];
        writer.as_mut().write_raw(row.iter()).await?;
    }
    writer.finish().await?;
    Ok(())
}

#[async_trait]
impl IngestStore for PostgresStorage {
    async fn ingest(&self, mut bins: Vec<Bin>, received_at: Timestamp) -> Result<u64> {
        let catalog = self.catalog().await?;
        let (bins, stores) = tokio::task::spawn_blocking(move || -> Result<(Vec<Bin>, Vec<StoreKey>)> {
            sort_and_dedupe(&mut bins);
            let store_of = |device: DeviceKey| {
                catalog
                    .device(device)
                    .map(|d| d.store)
                    .ok_or_else(|| StorageError::Invalid(format!("bin of unknown device key {device}")))
            };
            for bin in &bins {
                store_of(bin.device)?;
            }
            // Then in key order (store, device, minute): stable, so each device's run stays in minute order.
            bins.sort_by_key(|bin| store_of(bin.device).expect("checked"));
            let stores = bins.iter().map(|bin| store_of(bin.device).expect("checked")).collect();
            Ok((bins, stores))
        })
        .await
        .map_err(backend)??;
        let mut client = self.pool.get().await?;
        // No lock against a publication: it takes the pending bins and notes it publishes in one
        // statement each, and leaves out of its rollup the bins of notes it did not take.
        let transaction = client.transaction().await?;
        let started = std::time::Instant::now();
        write_pending(&transaction, &bins, &stores).await?;
        tracing::debug!(bins = bins.len(), write_ms = started.elapsed().as_millis() as u64, "ingested");
        // The last bin of each device's run is its latest.
        let latest: Vec<&Bin> =
            bins.chunk_by(|a, b| a.device == b.device).map(|run| run.last().expect("runs")).collect();
        let devices: Vec<DeviceKey> = latest.iter().map(|bin| bin.device).collect();
        let minutes: Vec<i64> = latest.iter().map(|bin| bin.minute.unix_seconds()).collect();
        transaction
            .execute(
                "UPDATE devices d
                 SET last_seen_at = $1, last_bin_minute = greatest(coalesce(d.last_bin_minute, u.minute), u.minute)
                 FROM unnest($2::bigint[], $3::bigint[]) AS u (id, minute) WHERE d.id = u.id",
                &[&received_at.as_millisecond(), &devices, &minutes],
            )
            .await?;
        transaction.commit().await?;
        Ok(bins.len() as u64)
    }
    async fn add_correction(&self, store: StoreCode, correction: Correction) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        // Shared (corrections do not wait for each other): a publication in progress must not mark this
        // correction published without having applied it.
        transaction.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&PUBLISH_LOCK]).await?;
        let store = store_key(&transaction, &store).await?;
        transaction
            .execute(
                "INSERT INTO occupancy_corrections (store_id, minute, value, created_at, published)
                 VALUES ($1, $2, $3, $4, false)
                 ON CONFLICT (store_id, minute) DO UPDATE
                 SET value = excluded.value, created_at = excluded.created_at, published = false",
                &[
                    &store,
                    &correction.minute.unix_seconds(),
                    &i64::from(correction.value),
                    &correction.created_at.as_millisecond(),
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }
    async fn corrections(&self, store: StoreCode) -> Result<Vec<Correction>> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let key = store_key(&transaction, &store).await?;
        let rows = transaction
            .query(
                "SELECT minute, value, created_at FROM occupancy_corrections WHERE store_id = $1 ORDER BY minute",
                &[&key],
            )
            .await?;
        transaction.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(Correction {
                    minute: stored_minute(row.get(0)),
                    value: u32::try_from(row.get::<_, i64>(1))
                        .map_err(|_| StorageError::Invalid("stored correction out of range".into()))?,
                    created_at: Timestamp::from_millisecond(row.get(2)).expect("stored"),
                })
            })
            .collect()
    }
}
