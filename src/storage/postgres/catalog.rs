//! Stores, devices, users and tokens.

use super::publication::{republish_moved, republish_store};
use super::*;

/// A device's status from columns `at..at + 5` of a row: device id, store code, last bin minute, last
/// seen (ms), active.
pub(super) fn device_status(row: &tokio_postgres::Row, at: usize) -> Result<DeviceStatus> {
    Ok(DeviceStatus {
        device_id: DeviceId::parse(row.get(at)).map_err(StorageError::Invalid)?,
        store_code: StoreCode::parse(row.get(at + 1)).map_err(StorageError::Invalid)?,
        last_bin_minute: row.get::<_, Option<i64>>(at + 2).and_then(Minute::from_unix_seconds),
        last_seen_at: row.get::<_, Option<i64>>(at + 3).and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        active: row.get(at + 4),
    })
}

#[async_trait]
impl CatalogStore for PostgresStorage {
    async fn catalog(&self) -> Result<Arc<Catalog>> {
        let mut client = self.pool.get().await?;
        // Asked on every request: one round trip while the catalog is unchanged.
        let statement = client.prepare_cached("SELECT value FROM meta WHERE key = 'catalog_version'").await?;
        let version = client.query_one(&statement, &[]).await?.get(0);
        self.catalog_at(&mut client, version).await
    }
    async fn add_store(&self, store: NewStore) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let inserted = transaction
            .execute(
                "INSERT INTO stores (code, name, timezone, occupancy_reset_minutes, opening_hours, capacity)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &store.code.as_str(),
                    &store.name,
                    &store.timezone,
                    &i32::from(store.reset.minutes_after_midnight()),
                    &store.hours.as_ref().map(ToString::to_string),
                    &store.capacity.map(i64::from),
                ],
            )
            .await;
        reject_duplicate(inserted, || format!("store {} already exists", store.code))?;
        bump_catalog(&transaction).await?;
        self.commit_change(transaction).await?;
        Ok(())
    }
    async fn add_device(&self, device_id: DeviceId, store: StoreCode, token_hash: String) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        insert_device(&transaction, &device_id, &store, &token_hash).await?;
        self.commit_change(transaction).await?;
        Ok(())
    }
    async fn add_user(&self, user: NewUser) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let mut store_keys = Vec::new();
        if let NewScope::Stores(codes) = &user.scope {
            for code in codes {
                store_keys.push(store_key(&transaction, code).await?);
            }
        }
        let inserted = transaction
            .query_one(
                "INSERT INTO users (username, password_hash, all_stores, can_ingest) VALUES ($1, $2, $3, $4)
                 RETURNING id",
                &[&user.username.as_str(), &user.password_hash, &matches!(user.scope, NewScope::All), &user.can_ingest],
            )
            .await;
        let user_key: i64 = reject_duplicate(inserted, || format!("user {} already exists", user.username))?.get(0);
        transaction
            .execute(
                "INSERT INTO user_stores (user_id, store_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
                &[&user_key, &store_keys],
            )
            .await?;
        changes::announce_change(&transaction).await?;
        self.commit_change(transaction).await?;
        Ok(())
    }
    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let client = self.pool.get().await?;
        // Asked on every request (verifications are cached, the account is not): one round trip.
        let statement = client
            .prepare_cached(
                "SELECT id, password_hash, all_stores, can_ingest,
                        array(SELECT store_id FROM user_stores WHERE user_id = users.id ORDER BY store_id)
                 FROM users WHERE username = $1",
            )
            .await?;
        Ok(client.query_opt(&statement, &[&username]).await?.and_then(|row| user_at(&row, 0)))
    }
    async fn rotate_device_token(&self, device_id: DeviceId, token_hash: String) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let changed = transaction
            .execute(
                "UPDATE devices SET token_hash = $1 WHERE device_id = $2 AND removed_at IS NULL",
                &[&token_hash, &device_id.as_str()],
            )
            .await?;
        expect_one(changed, || format!("device {device_id} does not exist"))?;
        bump_catalog(&transaction).await?;
        self.commit_change(transaction).await?;
        Ok(())
    }
    async fn device_statuses(&self) -> Result<Vec<DeviceStatus>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT d.device_id, s.code, d.last_bin_minute, d.last_seen_at, d.removed_at IS NULL
                 FROM devices d JOIN stores s ON s.id = d.store_id ORDER BY d.device_id COLLATE \"C\", d.id",
                &[],
            )
            .await?;
        rows.iter().map(|row| device_status(row, 0)).collect()
    }
    async fn remove_device(&self, device_id: DeviceId) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let changed = transaction
            .execute(
                "UPDATE devices SET removed_at = $1 WHERE device_id = $2 AND removed_at IS NULL",
                &[&Timestamp::now().as_millisecond(), &device_id.as_str()],
            )
            .await?;
        expect_one(changed, || format!("device {device_id} does not exist"))?;
        for statement in crate::storage::FORGET_SENSOR {
            transaction.execute(statement, &[&device_id.as_str()]).await?;
        }
        bump_catalog(&transaction).await?;
        self.commit_change(transaction).await?;
        Ok(())
    }
    async fn set_password(&self, username: Username, password_hash: String) -> Result<()> {
        let client = self.pool.get().await?;
        let changed = client
            .execute("UPDATE users SET password_hash = $1 WHERE username = $2", &[&password_hash, &username.as_str()])
            .await?;
        expect_one(changed, || format!("user {username} does not exist"))?;
        self.announce_committed_change(&client).await
    }
    async fn remove_user(&self, username: Username) -> Result<()> {
        let client = self.pool.get().await?;
        let changed = client.execute("DELETE FROM users WHERE username = $1", &[&username.as_str()]).await?;
        expect_one(changed, || format!("user {username} does not exist"))?;
        self.announce_committed_change(&client).await
    }
    async fn add_api_token(&self, token: NewApiToken) -> Result<()> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                "INSERT INTO api_tokens (name, user_id, token_hash, created_at, expires_at)
                 SELECT $1, id, $3, $4, $5 FROM users WHERE username = $2",
                &[
                    &token.name.as_str(),
                    &token.username.as_str(),
                    &token.token_hash,
                    &token.created_at.as_millisecond(),
                    &token.expires_at.map(|at| at.as_millisecond()),
                ],
            )
            .await;
        let inserted = reject_duplicate(inserted, || format!("API token {} already exists", token.name))?;
        expect_one(inserted, || format!("user {} does not exist", token.username))
    }
    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT t.name, u.username, t.created_at, t.last_used_at, t.expires_at
                 FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.name COLLATE \"C\"",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiTokenInfo {
                    name: TokenName::parse(row.get(0)).map_err(StorageError::Invalid)?,
                    username: Username::parse(row.get(1)).map_err(StorageError::Invalid)?,
                    created_at: stored_instant(row.get(2)),
                    last_used_at: row.get::<_, Option<i64>>(3).map(stored_instant),
                    expires_at: row.get::<_, Option<i64>>(4).map(stored_instant),
                })
            })
            .collect()
    }
    async fn revoke_api_token(&self, name: TokenName) -> Result<()> {
        let client = self.pool.get().await?;
        let deleted = client.execute("DELETE FROM api_tokens WHERE name = $1", &[&name.as_str()]).await?;
        expect_one(deleted, || format!("API token {name} does not exist"))
    }
    async fn record_token_use(&self, token: ApiTokenKey, at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .await?;
        client.execute(&statement, &[&at.as_millisecond(), &token]).await?;
        Ok(())
    }
    async fn users(&self) -> Result<Vec<UserSummary>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT u.username, u.all_stores, u.can_ingest, s.code FROM users u
                 LEFT JOIN user_stores us ON us.user_id = u.id LEFT JOIN stores s ON s.id = us.store_id
                 ORDER BY u.username COLLATE \"C\", s.code COLLATE \"C\"",
                &[],
            )
            .await?;
        let mut users = Vec::new();
        for row in rows {
            summarise_user(&mut users, row.get(0), row.get(1), row.get(2), row.get(3))?;
        }
        Ok(users)
    }
    async fn change_store(&self, code: StoreCode, change: StoreChange) -> Result<Republished> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        if change.moves_periods() {
            // The rollup is rewritten: no publication may interleave.
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&PUBLISH_LOCK]).await?;
        }
        let key = store_key(&transaction, &code).await?;
        let reset = change.reset.map(|reset| i32::from(reset.minutes_after_midnight()));
        let (new_hours, hours, new_capacity, capacity) = profile_change(&change);
        transaction
            .execute(
                "UPDATE stores SET name = coalesce($2, name), timezone = coalesce($3, timezone),
                 occupancy_reset_minutes = coalesce($4, occupancy_reset_minutes),
                 opening_hours = CASE WHEN $5 THEN $6 ELSE opening_hours END,
                 capacity = CASE WHEN $7 THEN $8 ELSE capacity END WHERE id = $1",
                &[&key, &change.name, &change.timezone, &reset, &new_hours, &hours, &new_capacity, &capacity],
            )
            .await?;
        bump_catalog(&transaction).await?;
        let republished =
            if change.moves_periods() { republish_store(&transaction, key).await? } else { Republished::default() };
        self.commit_change(transaction).await?;
        Ok(republished)
    }
    async fn move_device(&self, device_id: DeviceId, store: StoreCode, from: Minute) -> Result<Republished> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        // Bins change store and both rollups are rewritten: no publication may interleave.
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&PUBLISH_LOCK]).await?;
        let new_store = store_key(&transaction, &store).await?;
        let old = transaction
            .query_opt(
                "SELECT id, store_id, token_hash, last_bin_minute, last_seen_at FROM devices
                 WHERE device_id = $1 AND removed_at IS NULL FOR UPDATE",
                &[&device_id.as_str()],
            )
            .await?
            .ok_or_else(|| StorageError::NotFound(format!("device {device_id} does not exist")))?;
        let (old_key, old_store, token_hash): (DeviceKey, StoreKey, String) = (old.get(0), old.get(1), old.get(2));
        if old_store == new_store {
            return Err(StorageError::Invalid(format!("device {device_id} already counts for store {store}")));
        }
        // The old row stays with the earlier bins, inactive; a new row takes over the id and token.
        transaction
            .execute(
                "UPDATE devices SET removed_at = $2, token_hash = 'moved:' || id WHERE id = $1",
                &[&old_key, &Timestamp::now().as_millisecond()],
            )
            .await?;
        let new_key: DeviceKey = transaction
            .query_one(
                "INSERT INTO devices (device_id, store_id, token_hash, last_bin_minute, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &device_id.as_str(),
                    &new_store,
                    &token_hash,
                    &old.get::<_, Option<i64>>(3),
                    &old.get::<_, Option<i64>>(4),
                ],
            )
            .await?
            .get(0);
        let from = from.unix_seconds();
        let moved: Vec<Minute> = transaction
            .query(
                "UPDATE bins SET store_id = $3, device_id = $4 WHERE store_id = $1 AND device_id = $2 AND minute >= $5
                 RETURNING minute",
                &[&old_store, &old_key, &new_store, &new_key, &from],
            )
            .await?
            .iter()
            .map(|row| stored_minute(row.get(0)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        transaction
            .execute(
                "UPDATE pending_bins SET store_id = $3, device_id = $4
                 WHERE store_id = $1 AND device_id = $2 AND minute >= $5",
                &[&old_store, &old_key, &new_store, &new_key, &from],
            )
            .await?;
        bump_catalog(&transaction).await?;
        let republished = republish_moved(&transaction, [old_store, new_store], &moved).await?;
        self.commit_change(transaction).await?;
        Ok(republished)
    }
}

/// Adds a device to a store (and bumps the catalog); its id must never have been used.
pub(super) async fn insert_device(
    transaction: &Transaction<'_>,
    device_id: &DeviceId,
    store: &StoreCode,
    token_hash: &str,
) -> Result<()> {
    let store_key = store_key(transaction, store).await?;
    // A removed or moved device keeps its id (its rows hold its bins): the id is not reused.
    let known: bool = transaction
        .query_one("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = $1)", &[&device_id.as_str()])
        .await?
        .get(0);
    if known {
        return Err(StorageError::AlreadyExists(format!("device {device_id} already exists")));
    }
    let inserted = transaction
        .execute(
            "INSERT INTO devices (device_id, store_id, token_hash) VALUES ($1, $2, $3)",
            &[&device_id.as_str(), &store_key, &token_hash],
        )
        .await;
    reject_duplicate(inserted, || format!("device {device_id} already exists"))?;
    bump_catalog(transaction).await?;
    Ok(())
}
