//! Pending bins and occupancy corrections.

use super::*;

#[async_trait]
impl IngestStore for SqliteStorage {
    async fn ingest(&self, mut bins: Vec<Bin>, received_at: Timestamp) -> Result<u64> {
        if self.inner.inbox.as_ref().is_some_and(|inbox| inbox.is_open()) {
            // A publication holds the writer: the inbox takes the bins now (the `run` below would wait).
            let (appended, returned) = self
                .run(Access::Inbox, move |inner| {
                    sort_and_dedupe(&mut bins);
                    let inbox = inner.inbox.as_ref().expect("checked");
                    Ok((inbox.append(&bins, received_at), bins))
                })
                .await?;
            if let Some(count) = appended? {
                return Ok(count);
            }
            bins = returned;
        }
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
                        minute: stored_minute(row.get(0)?),
                        value: row.get(1)?,
                        created_at: Timestamp::from_millisecond(row.get(2)?).expect("stored"),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
        })
        .await
    }
}
