//! Reads of published rows, located through the per-period row counts.

use super::catalog::user_credentials;
use super::publication::publication_mark;
use super::*;

/// The in-range row count of every period of the queried stores, in (store order, period start) order.
fn period_counts(
    connection: &Connection,
    stores: &[StoreKey],
    first: Minute,
    last: Minute,
) -> Result<Vec<(usize, Period, u64)>> {
    let (first_s, last_s) = (first.unix_seconds(), last.unix_seconds());
    let mut found: Vec<(usize, i64, i64, u64)> = Vec::new();
    if periods_by_store(stores.len(), first, last) {
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
            Ok((row.get::<_, StoreKey>(0)?, row.get(1)?, row.get(2)?, row.get::<_, i64>(3)? as u64))
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
        let period = Period { start: stored_minute(start), end: stored_minute(end) };
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
            |row| minute_row(store, row),
        )?;
        for row in rows {
            page.rows.push(row?);
        }
        from = query.first;
        skip = 0;
    }
    Ok(page)
}

/// A row of `SELECT minute, entries, exits, occupancy` as a row of `store`; device rows select an
/// occupancy of 0, having none.
fn minute_row(store: StoreKey, row: &rusqlite::Row) -> rusqlite::Result<MinuteRow> {
    Ok(MinuteRow {
        store,
        minute: stored_minute(row.get(0)?),
        entries: row.get(1)?,
        exits: row.get(2)?,
        occupancy: row.get(3)?,
    })
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
        "SELECT minute, entries, exits, 0 AS occupancy FROM bins
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
            |row| minute_row(store, row),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(RowsPage { count: count as u64, rows })
}

/// The API token with this hash and its user's account.
fn token_grant(connection: &Connection, token_hash: &str) -> Result<Option<(TokenGrant, UserCredentials)>> {
    let found = connection
        .prepare_cached(
            "SELECT t.id, t.name, u.username, t.expires_at, t.last_used_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
        )?
        .query_row([token_hash], |row| {
            Ok((
                row.get::<_, ApiTokenKey>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()?;
    let Some((key, name, username, expires_at, last_used_at)) = found else {
        return Ok(None);
    };
    // None if the user was removed in between (its tokens went with it).
    let Some(user) = user_credentials(connection, &username)? else {
        return Ok(None);
    };
    let grant = TokenGrant {
        key,
        name: TokenName::parse(&name).map_err(StorageError::Invalid)?,
        username: Username::parse(&username).map_err(StorageError::Invalid)?,
        expires_at: expires_at.map(stored_instant),
        last_used_at: last_used_at.map(stored_instant),
    };
    Ok(Some((grant, user)))
}

#[async_trait]
impl ReadStore for SqliteStorage {
    /// Read from the database once per change: while `data_version` says nothing was committed since,
    /// a request's context comes from the snapshot, without a trip to a reader connection.
    async fn request_context(&self, username: &str) -> Result<RequestContext> {
        let version = self.inner.data_version();
        if let Some(version) = version
            && let Some(context) = self.inner.contexts.lock().unwrap().get(version, username)
        {
            return Ok(context);
        }
        let name = username.to_owned();
        let context = self
            .run(Access::Read, move |inner| {
                inner.reader(|connection| {
                    Ok(RequestContext {
                        user: user_credentials(connection, &name)?,
                        catalog: inner.catalog(connection)?,
                        mark: publication_mark(connection)?,
                    })
                })
            })
            .await?;
        if let Some(version) = version {
            // Read after `version` was: at least that new, so it may stand for it.
            self.inner.contexts.lock().unwrap().put(version, username, &context);
        }
        Ok(context)
    }
    async fn token_context(&self, token_hash: &str) -> Result<TokenContext> {
        let token_hash = token_hash.to_owned();
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                Ok(TokenContext {
                    token: token_grant(connection, &token_hash)?,
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
    async fn rollups(&self, requests: Vec<RollupRequest>) -> Result<Vec<Vec<(Minute, Totals)>>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                // One read transaction: every range from the same publication.
                connection.execute_batch("BEGIN")?;
                let result = requests.iter().map(|request| rollup_range(connection, request)).collect();
                connection.execute_batch("COMMIT")?;
                result
            })
        })
        .await
    }
    async fn device_bins(
        &self,
        devices: Vec<DeviceKey>,
        first: Minute,
        last: Minute,
    ) -> Result<Vec<Vec<(Minute, i64, i64)>>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                connection.execute_batch("BEGIN")?;
                let mut statement = connection.prepare_cached(
                    "SELECT minute, entries, exits FROM pending_bins WHERE device_id = ?1 AND minute >= ?2 AND minute <= ?3
                     UNION ALL
                     SELECT minute, entries, exits FROM bins b WHERE device_id = ?1 AND minute >= ?2 AND minute <= ?3
                       AND NOT EXISTS (SELECT 1 FROM pending_bins p WHERE p.device_id = b.device_id AND p.minute = b.minute)
                     ORDER BY minute",
                )?;
                let result = devices
                    .iter()
                    .map(|&device| {
                        statement
                            .query_map(params![device, first.unix_seconds(), last.unix_seconds()], |row| {
                                Ok((stored_minute(row.get(0)?), row.get(1)?, row.get(2)?))
                            })?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .collect::<rusqlite::Result<Vec<_>>>();
                connection.execute_batch("COMMIT")?;
                Ok(result?)
            })
        })
        .await
    }
    async fn live_occupancy(&self, periods: Vec<(StoreKey, Period)>) -> Result<Vec<Option<(Minute, i64)>>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                connection.execute_batch("BEGIN")?;
                let result = periods.iter().map(|&(store, period)| live_occupancy(connection, store, period)).collect();
                connection.execute_batch("COMMIT")?;
                result
            })
        })
        .await
    }
}

fn rollup_range(connection: &Connection, request: &RollupRequest) -> Result<Vec<(Minute, Totals)>> {
    let range = request.range;
    let bounds = params![request.store, range.from.unix_seconds(), range.to.unix_seconds()];
    let rows = if range.level == Level::Minute {
        connection
            .prepare_cached(
                "SELECT minute, entries, exits, occupancy FROM store_minutes
                 WHERE store_id = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute",
            )?
            .query_map(bounds, |row| {
                let minute = stored_minute(row.get(0)?);
                Ok((minute, Totals::of_minute(minute, row.get(1)?, row.get(2)?, row.get(3)?)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
    } else {
        connection
            .prepare_cached(&format!(
                "SELECT {PIECE_COLUMNS} FROM store_rollups
                 WHERE store_id = ?1 AND level = ?4 AND start >= ?2 AND start < ?3 ORDER BY start"
            ))?
            .query_map(
                params![request.store, range.from.unix_seconds(), range.to.unix_seconds(), range.level.code()],
                |row| {
                    let mut columns = [0i64; 8];
                    for (index, column) in columns.iter_mut().enumerate() {
                        *column = row.get(index)?;
                    }
                    Ok(stored_piece(columns))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    Ok(rows)
}

/// A store's occupancy now: its minutes of `period` from the published bins, a pending bin replacing
/// the published one of its device and minute.
fn live_occupancy(connection: &Connection, store: StoreKey, period: Period) -> Result<Option<(Minute, i64)>> {
    let bounds = params![store, period.start.unix_seconds(), period.end.unix_seconds()];
    let minutes = connection
        .prepare_cached(
            "WITH store_devices AS (SELECT id FROM devices WHERE store_id = ?1),
             current AS (
                 SELECT minute, entries, exits FROM pending_bins
                 WHERE device_id IN (SELECT id FROM store_devices) AND minute >= ?2 AND minute < ?3
                 UNION ALL
                 SELECT minute, entries, exits FROM bins b
                 WHERE device_id IN (SELECT id FROM store_devices) AND minute >= ?2 AND minute < ?3
                   AND NOT EXISTS (SELECT 1 FROM pending_bins p WHERE p.device_id = b.device_id AND p.minute = b.minute))
             SELECT minute, sum(entries), sum(exits) FROM current
             GROUP BY minute HAVING sum(entries) + sum(exits) > 0 ORDER BY minute",
        )?
        .query_map(bounds, |row| Ok((stored_minute(row.get(0)?), row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<Vec<(Minute, i64, i64)>>>()?;
    let corrections = connection
        .prepare_cached(
            "SELECT minute, value FROM occupancy_corrections
             WHERE store_id = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute",
        )?
        .query_map(bounds, |row| Ok((stored_minute(row.get(0)?), row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(Minute, i64)>>>()?;
    Ok(live_from_minutes(&minutes, &corrections))
}

impl Inner {
    /// SQLite's count of commits by other connections, as this process's watch connection sees it;
    /// `None` if it cannot be read now (the caller then reads the database as usual).
    pub(super) fn data_version(&self) -> Option<i64> {
        // Reads a counter in the WAL index's shared memory: no page is read, nothing blocks for long.
        let watch = self.watch.lock().ok()?;
        watch.query_row("PRAGMA data_version", [], |row| row.get(0)).ok()
    }
}
