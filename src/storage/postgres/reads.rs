//! Reads of published rows, located through the per-period row counts.

use super::*;

/// The in-range row count of every period of the queried stores, in (store order, period start) order.
async fn period_counts(
    transaction: &Transaction<'_>,
    stores: &[StoreKey],
    first: Minute,
    last: Minute,
) -> Result<Vec<(usize, Period, u64)>> {
    let (first_s, last_s) = (first.unix_seconds(), last.unix_seconds());
    let earliest_start = first_s - LONGEST_PERIOD_SECONDS;
    let position: HashMap<StoreKey, usize> = stores.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    let rows = if periods_by_store(stores.len(), first, last) {
        let statement = transaction
            .prepare_cached(
                "SELECT store_id, period_start, period_end, row_count FROM store_periods
                 WHERE store_id = ANY($1) AND period_start <= $2 AND period_start > $3 AND period_end > $4",
            )
            .await?;
        transaction.query(&statement, &[&stores, &last_s, &earliest_start, &first_s]).await?
    } else {
        let statement = transaction
            .prepare_cached(
                "SELECT store_id, period_start, period_end, row_count FROM store_periods
                 WHERE period_start <= $1 AND period_start > $2 AND period_end > $3",
            )
            .await?;
        transaction.query(&statement, &[&last_s, &earliest_start, &first_s]).await?
    };
    let mut found: Vec<(usize, i64, i64, u64)> = rows
        .iter()
        .filter_map(|row| {
            let index = *position.get(&row.get::<_, StoreKey>(0))?;
            Some((index, row.get(1), row.get(2), row.get::<_, i64>(3) as u64))
        })
        .collect();
    found.sort_unstable_by_key(|&(index, start, _, _)| (index, start));

    // A period cut by the query's bounds is counted from the positions (`period_row`) of its first
    // and last rows in range: an index probe per cut side (most periods are cut on one side only), not a
    // scan, and one statement for all of them.
    let cut: Vec<usize> = (0..found.len())
        .filter(|&i| {
            let (_, start, end, _) = found[i];
            !(start >= first_s && end - 60 <= last_s)
        })
        .collect();
    if !cut.is_empty() {
        let cut_stores: Vec<StoreKey> = cut.iter().map(|&i| stores[found[i].0]).collect();
        let lows: Vec<i64> = cut.iter().map(|&i| found[i].1.max(first_s)).collect();
        let highs: Vec<i64> = cut.iter().map(|&i| (found[i].2 - 60).min(last_s)).collect();
        let cut_low: Vec<bool> = cut.iter().map(|&i| found[i].1 < first_s).collect();
        let cut_high: Vec<bool> = cut.iter().map(|&i| found[i].2 - 60 > last_s).collect();
        let statement = transaction
            .prepare_cached(
                "SELECT t.ordinal,
                     CASE WHEN t.cut_low THEN (SELECT period_row FROM store_minutes s
                         WHERE s.store_id = t.store_id AND s.minute >= t.low AND s.minute <= t.high
                         ORDER BY s.minute LIMIT 1) END,
                     CASE WHEN t.cut_high THEN (SELECT period_row FROM store_minutes s
                         WHERE s.store_id = t.store_id AND s.minute >= t.low AND s.minute <= t.high
                         ORDER BY s.minute DESC LIMIT 1) END
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::boolean[], $5::boolean[])
                      WITH ORDINALITY AS t (store_id, low, high, cut_low, cut_high, ordinal)",
            )
            .await?;
        let params: [&(dyn ToSql + Sync); 5] = [&cut_stores, &lows, &highs, &cut_low, &cut_high];
        for row in transaction.query(&statement, &params).await? {
            let position = row.get::<_, i64>(0) as usize - 1;
            let index = cut[position];
            let first_row = if cut_low[position] { row.get::<_, Option<i64>>(1) } else { Some(1) };
            let last_row = if cut_high[position] { row.get::<_, Option<i64>>(2) } else { Some(found[index].3 as i64) };
            found[index].3 = match (first_row, last_row) {
                (Some(first_row), Some(last_row)) if last_row >= first_row => (last_row - first_row + 1) as u64,
                _ => 0,
            };
        }
    }
    Ok(found
        .into_iter()
        .filter(|&(_, _, _, rows)| rows > 0)
        .map(|(index, start, end, rows)| (index, Period { start: stored_minute(start), end: stored_minute(end) }, rows))
        .collect())
}

async fn store_rows(transaction: &Transaction<'_>, stores: &[StoreKey], query: &RowsQuery) -> Result<RowsPage> {
    let counts = period_counts(transaction, stores, query.first, query.last).await?;
    let count = counts.iter().map(|&(_, _, rows)| rows).sum();
    let mut page = RowsPage { count, rows: Vec::with_capacity(query.limit.min(10_000) as usize) };
    let Some(start) = locate_page(&counts, query.first, query.offset) else {
        return Ok(page);
    };
    // The counts say how many rows each store gives the page, so the per-store reads (each within one
    // store: one shard under Citus) are sent together rather than one round trip after another.
    let mut per_store: BTreeMap<usize, u64> = BTreeMap::new();
    for &(index, period, rows) in &counts {
        if index > start.store_index || (index == start.store_index && period.start.max(query.first) >= start.from) {
            *per_store.entry(index).or_default() += rows;
        }
    }
    let mut remaining = u64::from(query.limit);
    let mut reads = Vec::new();
    for (index, rows) in per_store {
        if remaining == 0 {
            break;
        }
        let (from, skip) = if index == start.store_index { (start.from, start.skip) } else { (query.first, 0) };
        let take = remaining.min(rows - skip);
        remaining -= take;
        reads.push((stores[index], from, skip, take));
    }
    let statement = transaction
        .prepare_cached(
            "SELECT minute, entries, exits, occupancy FROM store_minutes
             WHERE store_id = $1 AND minute >= $2 AND minute <= $3 ORDER BY minute LIMIT $4 OFFSET $5",
        )
        .await?;
    let last = query.last.unix_seconds();
    let results = futures_util::future::try_join_all(reads.iter().map(|(store, from, skip, take)| {
        let (from, skip, take) = (from.unix_seconds(), *skip as i64, *take as i64);
        let statement = &statement;
        async move { transaction.query(statement, &[store, &from, &last, &take, &skip]).await }
    }))
    .await?;
    for ((store, ..), rows) in reads.iter().zip(results) {
        page.rows.extend(rows.iter().map(|row| minute_row(*store, row)));
    }
    Ok(page)
}

async fn device_rows(
    transaction: &Transaction<'_>,
    catalog: &Catalog,
    device: DeviceKey,
    query: &RowsQuery,
) -> Result<RowsPage> {
    let store = catalog.device(device).map(|d| d.store).ok_or_else(|| StorageError::NotFound("device".into()))?;
    let (first, last) = (query.first.unix_seconds(), query.last.unix_seconds());
    let (noted, unpublished) = (publication::NOTED, publication::UNPUBLISHED);
    let published = format!(
        "FROM bins b WHERE store_id = $1 AND device_id = $2 AND minute >= $3 AND minute <= $4
         AND entries + exits > 0 AND NOT {unpublished}"
    );
    let count = transaction.prepare_cached(&format!("WITH {noted} SELECT count(*) {published}")).await?;
    let select = transaction
        .prepare_cached(&format!(
            "WITH {noted} SELECT minute, entries, exits {published} ORDER BY minute LIMIT $5 OFFSET $6"
        ))
        .await?;
    let (limit, offset) = (i64::from(query.limit), query.offset.min(i64::MAX as u64) as i64);
    let count_params: [&(dyn ToSql + Sync); 4] = [&store, &device, &first, &last];
    let select_params: [&(dyn ToSql + Sync); 6] = [&store, &device, &first, &last, &limit, &offset];
    let (count, rows) = futures_util::try_join!(
        transaction.query_one(&count, &count_params),
        transaction.query(&select, &select_params),
    )?;
    let rows = rows
        .iter()
        .map(|row| MinuteRow {
            store,
            minute: stored_minute(row.get(0)),
            entries: row.get(1),
            exits: row.get(2),
            occupancy: 0,
        })
        .collect();
    Ok(RowsPage { count: count.get::<_, i64>(0) as u64, rows })
}

/// The most frequent request, page 1 of one store, in one statement: one snapshot without a
/// transaction's two extra round trips. A page that is not full holds the whole window, so its rows
/// are the count: the statement that also counts (as `period_counts` does) runs only when the page is
/// full. Counting in the same statement cost a fifth of the backend's time per page.
async fn first_page_of_one_store(
    client: &deadpool_postgres::Client,
    store: StoreKey,
    query: &RowsQuery,
) -> Result<RowsPage> {
    let (first, last, limit) = (query.first.unix_seconds(), query.last.unix_seconds(), i64::from(query.limit));
    let page = client
        .prepare_cached(
            "SELECT minute, entries, exits, occupancy FROM store_minutes
             WHERE store_id = $1 AND minute >= $2 AND minute <= $3 ORDER BY minute LIMIT $4",
        )
        .await?;
    // Rows become minutes as they arrive: no vector of rows in between.
    let stream = client.query_raw(&page, [&store as &(dyn ToSql + Sync), &first, &last, &limit]).await?;
    pin_mut!(stream);
    let mut rows = Vec::with_capacity(query.limit.min(crate::domain::pagination::MAX_PAGE_SIZE) as usize);
    while let Some(row) = stream.try_next().await? {
        rows.push(minute_row(store, &row));
    }
    if rows.len() < query.limit as usize {
        return Ok(RowsPage { count: rows.len() as u64, rows });
    }
    // The count is a scalar subquery, evaluated once, so the rows leave in index order (a join of
    // the count to the page needed a sort of the page).
    let counted_page = client
        .prepare_cached(
            "WITH periods AS (
                 SELECT period_start, period_end, row_count,
                        greatest(period_start, $2) AS low, least(period_end - 60, $3) AS high
                 FROM store_periods
                 WHERE store_id = $1 AND period_start <= $3 AND period_start > $2 - $5 AND period_end > $2
             ), total AS (
                 SELECT coalesce(sum(CASE WHEN period_start >= $2 AND period_end - 60 <= $3 THEN row_count
                     ELSE coalesce(
                         CASE WHEN period_end - 60 > $3 THEN (SELECT s.period_row FROM store_minutes s
                             WHERE s.store_id = $1 AND s.minute >= low AND s.minute <= high
                             ORDER BY s.minute DESC LIMIT 1) ELSE row_count END
                         - CASE WHEN period_start < $2 THEN (SELECT s.period_row FROM store_minutes s
                             WHERE s.store_id = $1 AND s.minute >= low AND s.minute <= high
                             ORDER BY s.minute LIMIT 1) ELSE 1 END
                         + 1, 0)
                     END), 0)::bigint AS rows
                 FROM periods
             )
             SELECT minute, entries, exits, occupancy, (SELECT rows FROM total) FROM store_minutes
             WHERE store_id = $1 AND minute >= $2 AND minute <= $3 ORDER BY minute LIMIT $4",
        )
        .await?;
    let rows = client.query(&counted_page, &[&store, &first, &last, &limit, &LONGEST_PERIOD_SECONDS]).await?;
    // No row means an empty window (a publication in between can have pruned it).
    let count = rows.first().map_or(0, |row| row.get::<_, i64>(4) as u64);
    Ok(RowsPage { count, rows: rows.iter().map(|row| minute_row(store, row)).collect() })
}

/// A published minute of `store` from a row of minute, entries, exits and occupancy.
fn minute_row(store: StoreKey, row: &tokio_postgres::Row) -> MinuteRow {
    MinuteRow {
        store,
        minute: stored_minute(row.get(0)),
        entries: row.get(1),
        exits: row.get(2),
        occupancy: row.get(3),
    }
}

#[async_trait]
impl ReadStore for PostgresStorage {
    /// Read from the database once per change notice (`changes`): between two, a request's context
    /// comes from the snapshot, without a round trip.
    async fn request_context(&self, username: &str) -> Result<RequestContext> {
        let version = self.changes.version(&self.config);
        if let Some(version) = version
            && let Some(context) = self.changes.contexts.lock().unwrap().get(version, username)
        {
            return Ok(context);
        }
        let mut client = self.pool.get().await?;
        // One round trip: the three meta values, and the user if there is one.
        let statement = client
            .prepare_cached(
                "SELECT (SELECT value FROM meta WHERE key = 'catalog_version'),
                        (SELECT value FROM meta WHERE key = 'publication_generation'),
                        (SELECT value FROM meta WHERE key = 'last_published_at'),
                        users.id, users.password_hash, users.all_stores, users.can_ingest,
                        array(SELECT store_id FROM user_stores WHERE user_id = users.id ORDER BY store_id)
                 FROM (VALUES (1)) AS one LEFT JOIN users ON users.username = $1",
            )
            .await?;
        let row = client.query_one(&statement, &[&username]).await?;
        let context = RequestContext {
            user: user_at(&row, 3),
            catalog: self.catalog_at(&mut client, row.get(0)).await?,
            mark: publication_mark_from(row.get(1), row.get(2)),
        };
        if let Some(version) = version {
            self.changes.contexts.lock().unwrap().put(version, username, &context);
        }
        Ok(context)
    }
    async fn catch_up(&self) -> Result<()> {
        let client = self.pool.get().await?;
        self.changes.caught_up(&client).await
    }
    async fn token_context(&self, token_hash: &str) -> Result<TokenContext> {
        let mut client = self.pool.get().await?;
        // One round trip, as for a user: the three meta values, and the token and its user if any.
        let statement = client
            .prepare_cached(
                "SELECT (SELECT value FROM meta WHERE key = 'catalog_version'),
                        (SELECT value FROM meta WHERE key = 'publication_generation'),
                        (SELECT value FROM meta WHERE key = 'last_published_at'),
                        users.id, users.password_hash, users.all_stores, users.can_ingest,
                        array(SELECT store_id FROM user_stores WHERE user_id = users.id ORDER BY store_id),
                        t.id, t.name, users.username, t.expires_at, t.last_used_at
                 FROM (VALUES (1)) AS one
                 LEFT JOIN (api_tokens t JOIN users ON users.id = t.user_id) ON t.token_hash = $1",
            )
            .await?;
        let row = client.query_one(&statement, &[&token_hash]).await?;
        let token = match user_at(&row, 3) {
            Some(user) => {
                let grant = TokenGrant {
                    key: row.get(8),
                    name: TokenName::parse(row.get(9)).map_err(StorageError::Invalid)?,
                    username: Username::parse(row.get(10)).map_err(StorageError::Invalid)?,
                    expires_at: row.get::<_, Option<i64>>(11).map(stored_instant),
                    last_used_at: row.get::<_, Option<i64>>(12).map(stored_instant),
                };
                Some((grant, user))
            }
            None => None,
        };
        Ok(TokenContext {
            token,
            catalog: self.catalog_at(&mut client, row.get(0)).await?,
            mark: publication_mark_from(row.get(1), row.get(2)),
        })
    }
    async fn rows(&self, query: RowsQuery) -> Result<RowsPage> {
        let mut client = self.pool.get().await?;
        if let RowSource::Stores(stores) = &query.source
            && let [store] = stores[..]
            && query.offset == 0
        {
            return first_page_of_one_store(&client, store, &query).await;
        }
        // One snapshot: the count and the rows come from the same publication.
        let transaction =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let page = match &query.source {
            RowSource::Stores(stores) => store_rows(&transaction, stores, &query).await?,
            RowSource::Device(device) => {
                let catalog = self.catalog_in(&transaction).await?;
                device_rows(&transaction, &catalog, *device, &query).await?
            }
        };
        transaction.commit().await?;
        Ok(page)
    }
    async fn rollups(&self, requests: Vec<RollupRequest>) -> Result<Vec<Vec<(Minute, Totals)>>> {
        let client = self.pool.get().await?;
        let mut columns: [Vec<i64>; 5] = Default::default();
        for (index, request) in requests.iter().enumerate() {
            let range = request.range;
            let values =
                [index as i64, request.store.0, range.level.code(), range.from.unix_seconds(), range.to.unix_seconds()];
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        }
        // One statement, so one snapshot and one round trip: minute rows and pieces alike.
        let statement = client
            .prepare_cached(&format!(
                "WITH t AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
                            AS t (request, store_id, level, range_from, range_to))
                 SELECT t.request, r.{columns} FROM t JOIN store_rollups r
                   ON r.store_id = t.store_id AND r.level = t.level AND r.start >= t.range_from AND r.start < t.range_to
                 UNION ALL
                 SELECT t.request, m.minute, m.entries, m.exits, 1, m.minute, m.occupancy, m.occupancy, m.minute
                 FROM t JOIN store_minutes m
                   ON t.level = 0 AND m.store_id = t.store_id AND m.minute >= t.range_from AND m.minute < t.range_to
                 ORDER BY 1, 2",
                columns = PIECE_COLUMNS.replace(", ", ", r.")
            ))
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(|column| column as &(dyn ToSql + Sync)).collect();
        let mut found = vec![Vec::new(); requests.len()];
        for row in client.query(&statement, &params).await? {
            let piece = stored_piece(std::array::from_fn(|column| row.get(column + 1)));
            found[row.get::<_, i64>(0) as usize].push(piece);
        }
        Ok(found)
    }
    async fn device_bins(
        &self,
        devices: Vec<DeviceKey>,
        first: Minute,
        last: Minute,
    ) -> Result<Vec<Vec<(Minute, i64, i64)>>> {
        let mut client = self.pool.get().await?;
        let transaction =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let catalog = self.catalog_in(&transaction).await?;
        let (mut indexes, mut stores, mut keys) = (Vec::new(), Vec::new(), Vec::new());
        for (index, &device) in devices.iter().enumerate() {
            if let Some(found) = catalog.device(device) {
                indexes.push(index as i64);
                stores.push(found.store.0);
                keys.push(device.0);
            }
        }
        let statement = transaction
            .prepare_cached(
                "WITH t AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t (device, store_id, device_id))
                 SELECT t.device, p.minute, p.entries, p.exits FROM t JOIN pending_bins p
                   ON p.store_id = t.store_id AND p.device_id = t.device_id AND p.minute >= $4 AND p.minute <= $5
                 UNION ALL
                 SELECT t.device, b.minute, b.entries, b.exits FROM t JOIN bins b
                   ON b.store_id = t.store_id AND b.device_id = t.device_id AND b.minute >= $4 AND b.minute <= $5
                 WHERE NOT EXISTS (SELECT 1 FROM pending_bins p
                                   WHERE p.store_id = b.store_id AND p.device_id = b.device_id AND p.minute = b.minute)
                 ORDER BY 1, 2",
            )
            .await?;
        let (first, last) = (first.unix_seconds(), last.unix_seconds());
        let mut found = vec![Vec::new(); devices.len()];
        for row in transaction.query(&statement, &[&indexes, &stores, &keys, &first, &last]).await? {
            found[row.get::<_, i64>(0) as usize].push((stored_minute(row.get(1)), row.get(2), row.get(3)));
        }
        transaction.commit().await?;
        Ok(found)
    }
    async fn live_occupancy(&self, periods: Vec<(StoreKey, Period)>) -> Result<Vec<Option<(Minute, i64)>>> {
        let mut client = self.pool.get().await?;
        let transaction =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let catalog = self.catalog_in(&transaction).await?;
        let ranges = publication::device_ranges(&catalog, &periods);
        let statement = transaction
            .prepare_cached(
                "WITH t AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
                            AS t (period, store_id, device_id, period_start, period_end)),
                 current AS (
                     SELECT t.period, p.minute, p.entries, p.exits FROM t JOIN pending_bins p
                       ON p.store_id = t.store_id AND p.device_id = t.device_id
                      AND p.minute >= t.period_start AND p.minute < t.period_end
                     UNION ALL
                     SELECT t.period, b.minute, b.entries, b.exits FROM t JOIN bins b
                       ON b.store_id = t.store_id AND b.device_id = t.device_id
                      AND b.minute >= t.period_start AND b.minute < t.period_end
                     WHERE NOT EXISTS (SELECT 1 FROM pending_bins p
                                       WHERE p.store_id = b.store_id AND p.device_id = b.device_id AND p.minute = b.minute))
                 SELECT period, minute, sum(entries)::bigint, sum(exits)::bigint FROM current
                 GROUP BY period, minute HAVING sum(entries) + sum(exits) > 0 ORDER BY period, minute",
            )
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> = ranges.iter().map(|column| column as &(dyn ToSql + Sync)).collect();
        let mut minutes: Vec<Vec<(Minute, i64, i64)>> = vec![Vec::new(); periods.len()];
        for row in transaction.query(&statement, &params).await? {
            minutes[row.get::<_, i64>(0) as usize].push((stored_minute(row.get(1)), row.get(2), row.get(3)));
        }
        let corrections = publication::period_corrections(&transaction, &periods).await?;
        transaction.commit().await?;
        Ok(minutes
            .iter()
            .zip(&corrections)
            .map(|(minutes, corrections)| live_from_minutes(minutes, corrections))
            .collect())
    }
}
