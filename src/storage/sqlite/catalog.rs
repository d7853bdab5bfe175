//! Stores, devices, users and tokens.

use super::publication::{republish_moved, republish_store};
use super::*;

/// A device's status from columns `at..at + 5` of a row: device id, store code, last bin minute, last
/// seen (ms), active.
pub(super) fn device_status(row: &rusqlite::Row, at: usize) -> Result<DeviceStatus> {
    Ok(DeviceStatus {
        device_id: DeviceId::parse(&row.get::<_, String>(at)?).map_err(StorageError::Invalid)?,
        store_code: StoreCode::parse(&row.get::<_, String>(at + 1)?).map_err(StorageError::Invalid)?,
        last_bin_minute: row.get::<_, Option<i64>>(at + 2)?.and_then(Minute::from_unix_seconds),
        last_seen_at: row.get::<_, Option<i64>>(at + 3)?.and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        active: row.get(at + 4)?,
    })
}

pub(super) fn user_credentials(connection: &Connection, username: &str) -> Result<Option<UserCredentials>> {
    let user = connection
        .prepare_cached("SELECT id, password_hash, all_stores, can_ingest FROM users WHERE username = ?1")?
        .query_row([username], |row| {
            Ok((row.get::<_, UserKey>(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((key, password_hash, all_stores, can_ingest)) = user else {
        return Ok(None);
    };
    let scope = if all_stores {
        StoreScope::All
    } else {
        let mut statement = connection.prepare_cached("SELECT store_id FROM user_stores WHERE user_id = ?1")?;
        StoreScope::Only(statement.query_map([key], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?)
    };
    Ok(Some(UserCredentials { key, password_hash, scope, can_ingest }))
}

#[async_trait]
impl CatalogStore for SqliteStorage {
    async fn catalog(&self) -> Result<Arc<Catalog>> {
        self.run(Access::Read, |inner| inner.reader(|connection| inner.catalog(connection))).await
    }
    async fn add_store(&self, store: NewStore) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let inserted = transaction.execute(
                    "INSERT INTO stores (code, name, timezone, occupancy_reset_minutes, opening_hours, capacity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        store.code.as_str(),
                        store.name,
                        store.timezone,
                        store.reset.minutes_after_midnight(),
                        store.hours.as_ref().map(ToString::to_string),
                        store.capacity
                    ],
                );
                reject_duplicate(inserted, || format!("store {} already exists", store.code))?;
                bump_catalog(transaction)?;
                Ok(())
            })
        })
        .await
    }
    async fn add_device(&self, device_id: DeviceId, store: StoreCode, token_hash: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| insert_device(transaction, &device_id, &store, &token_hash))
        })
        .await
    }
    async fn add_user(&self, user: NewUser) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let store_keys = match &user.scope {
                    NewScope::All => Vec::new(),
                    NewScope::Stores(codes) => {
                        codes.iter().map(|code| store_key(transaction, code)).collect::<Result<Vec<_>>>()?
                    }
                };
                let inserted = transaction.execute(
                    "INSERT INTO users (username, password_hash, all_stores, can_ingest) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        user.username.as_str(),
                        user.password_hash,
                        matches!(user.scope, NewScope::All),
                        user.can_ingest
                    ],
                );
                reject_duplicate(inserted, || format!("user {} already exists", user.username))?;
                let user_key = transaction.last_insert_rowid();
                for store in store_keys {
                    transaction.execute(
                        "INSERT OR IGNORE INTO user_stores (user_id, store_id) VALUES (?1, ?2)",
                        params![user_key, store],
                    )?;
                }
                Ok(())
            })
        })
        .await
    }
    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let username = username.to_owned();
        self.run(Access::Read, move |inner| inner.reader(|connection| user_credentials(connection, &username))).await
    }
    async fn rotate_device_token(&self, device_id: DeviceId, token_hash: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                update_active_device(transaction, "token_hash", token_hash, &device_id)?;
                bump_catalog(transaction)?;
                Ok(())
            })
        })
        .await
    }
    async fn device_statuses(&self) -> Result<Vec<DeviceStatus>> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let mut statement = connection.prepare(
                    "SELECT d.device_id, s.code, d.last_bin_minute, d.last_seen_at, d.removed_at IS NULL
                     FROM devices d JOIN stores s ON s.id = d.store_id ORDER BY d.device_id, d.id",
                )?;
                statement.query_and_then([], |row| device_status(row, 0))?.collect()
            })
        })
        .await
    }
    async fn remove_device(&self, device_id: DeviceId) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                update_active_device(transaction, "removed_at", Timestamp::now().as_millisecond(), &device_id)?;
                for statement in crate::storage::FORGET_SENSOR {
                    transaction.execute(&statement.replace("$1", "?1"), [device_id.as_str()])?;
                }
                bump_catalog(transaction)?;
                Ok(())
            })
        })
        .await
    }
    async fn set_password(&self, username: Username, password_hash: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                expect_one(
                    transaction.execute(
                        "UPDATE users SET password_hash = ?1 WHERE username = ?2",
                        params![password_hash, username.as_str()],
                    )? as u64,
                    || format!("user {username} does not exist"),
                )?;
                Ok(())
            })
        })
        .await
    }
    async fn remove_user(&self, username: Username) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                expect_one(
                    transaction.execute("DELETE FROM users WHERE username = ?1", [username.as_str()])? as u64,
                    || format!("user {username} does not exist"),
                )?;
                Ok(())
            })
        })
        .await
    }
    async fn add_api_token(&self, token: NewApiToken) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let user = user_key(transaction, &token.username)?;
                let inserted = transaction.execute(
                    "INSERT INTO api_tokens (name, user_id, token_hash, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        token.name.as_str(),
                        user,
                        token.token_hash,
                        token.created_at.as_millisecond(),
                        token.expires_at.map(|at| at.as_millisecond())
                    ],
                );
                reject_duplicate(inserted, || format!("API token {} already exists", token.name))?;
                Ok(())
            })
        })
        .await
    }
    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let mut statement = connection.prepare(
                    "SELECT t.name, u.username, t.created_at, t.last_used_at, t.expires_at
                     FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.name",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                    ))
                })?;
                rows.map(|row| {
                    let (name, username, created_at, last_used_at, expires_at) = row?;
                    Ok(ApiTokenInfo {
                        name: TokenName::parse(&name).map_err(StorageError::Invalid)?,
                        username: Username::parse(&username).map_err(StorageError::Invalid)?,
                        created_at: stored_instant(created_at),
                        last_used_at: last_used_at.map(stored_instant),
                        expires_at: expires_at.map(stored_instant),
                    })
                })
                .collect()
            })
        })
        .await
    }
    async fn users(&self) -> Result<Vec<UserSummary>> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let mut statement = connection.prepare(
                    "SELECT u.username, u.all_stores, u.can_ingest, s.code FROM users u
                     LEFT JOIN user_stores us ON us.user_id = u.id LEFT JOIN stores s ON s.id = us.store_id
                     ORDER BY u.username, s.code",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get::<_, Option<String>>(3)?))
                })?;
                let mut users = Vec::new();
                for row in rows {
                    let (username, all_stores, can_ingest, code) = row?;
                    summarise_user(&mut users, &username, all_stores, can_ingest, code.as_deref())?;
                }
                Ok(users)
            })
        })
        .await
    }
    async fn revoke_api_token(&self, name: TokenName) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let deleted = transaction.execute("DELETE FROM api_tokens WHERE name = ?1", [name.as_str()])?;
                expect_one(deleted as u64, || format!("API token {name} does not exist"))
            })
        })
        .await
    }
    async fn record_token_use(&self, token: ApiTokenKey, at: Timestamp) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                transaction.execute(
                    "UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
                    params![at.as_millisecond(), token],
                )?;
                Ok(())
            })
        })
        .await
    }
    async fn change_store(&self, code: StoreCode, change: StoreChange) -> Result<Republished> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let key = store_key(transaction, &code)?;
                let reset = change.reset.map(ResetTime::minutes_after_midnight);
                let (new_hours, hours, new_capacity, capacity) = profile_change(&change);
                transaction.execute(
                    "UPDATE stores SET name = coalesce(?2, name), timezone = coalesce(?3, timezone),
                     occupancy_reset_minutes = coalesce(?4, occupancy_reset_minutes),
                     opening_hours = CASE WHEN ?5 THEN ?6 ELSE opening_hours END,
                     capacity = CASE WHEN ?7 THEN ?8 ELSE capacity END WHERE id = ?1",
                    params![key, change.name, change.timezone, reset, new_hours, hours, new_capacity, capacity],
                )?;
                bump_catalog(transaction)?;
                if !change.moves_periods() {
                    return Ok(Republished::default());
                }
                republish_store(transaction, key)
            })
        })
        .await
    }
    async fn move_device(&self, device_id: DeviceId, store: StoreCode, from: Minute) -> Result<Republished> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let new_store = store_key(transaction, &store)?;
                let (old_key, old_store, token_hash, last_bin_minute, last_seen_at): (
                    DeviceKey,
                    StoreKey,
                    String,
                    Option<i64>,
                    Option<i64>,
                ) = transaction
                    .query_row(
                        "SELECT id, store_id, token_hash, last_bin_minute, last_seen_at FROM devices
                         WHERE device_id = ?1 AND removed_at IS NULL",
                        [device_id.as_str()],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
                    )
                    .optional()?
                    .ok_or_else(|| StorageError::NotFound(format!("device {device_id} does not exist")))?;
                if old_store == new_store {
                    return Err(StorageError::Invalid(format!("device {device_id} already counts for store {store}")));
                }
                // The old row stays with the earlier bins, inactive; a new row takes over the id and token.
                transaction.execute(
                    "UPDATE devices SET removed_at = ?2, token_hash = 'moved:' || id WHERE id = ?1",
                    params![old_key, Timestamp::now().as_millisecond()],
                )?;
                transaction.execute(
                    "INSERT INTO devices (device_id, store_id, token_hash, last_bin_minute, last_seen_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![device_id.as_str(), new_store, token_hash, last_bin_minute, last_seen_at],
                )?;
                let new_key = DeviceKey(transaction.last_insert_rowid());
                let moved = transaction
                    .prepare("SELECT minute FROM bins WHERE device_id = ?1 AND minute >= ?2 ORDER BY minute")?
                    .query_map(params![old_key, from.unix_seconds()], |row| Ok(stored_minute(row.get(0)?)))?
                    .collect::<rusqlite::Result<Vec<Minute>>>()?;
                for table in ["bins", "pending_bins"] {
                    transaction.execute(
                        &format!("UPDATE {table} SET device_id = ?3 WHERE device_id = ?1 AND minute >= ?2"),
                        params![old_key, from.unix_seconds(), new_key],
                    )?;
                }
                bump_catalog(transaction)?;
                republish_moved(transaction, [old_store, new_store], &moved)
            })
        })
        .await
    }
}

/// Sets `column` to `value` on the device `device_id` unless it is removed: `NotFound` when there is
/// no such active device.
fn update_active_device(
    transaction: &Transaction,
    column: &str,
    value: impl rusqlite::ToSql,
    device_id: &DeviceId,
) -> Result<()> {
    let changed = transaction.execute(
        &format!("UPDATE devices SET {column} = ?1 WHERE device_id = ?2 AND removed_at IS NULL"),
        params![value, device_id.as_str()],
    )?;
    expect_one(changed as u64, || format!("device {device_id} does not exist"))
}

/// The key of the user `username`: `NotFound` when there is none.
fn user_key(transaction: &Transaction, username: &Username) -> Result<UserKey> {
    transaction
        .query_row("SELECT id FROM users WHERE username = ?1", [username.as_str()], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("user {username} does not exist")))
}

/// Adds a device to a store (and bumps the catalog); its id must never have been used.
pub(super) fn insert_device(
    transaction: &Transaction,
    device_id: &DeviceId,
    store: &StoreCode,
    token_hash: &str,
) -> Result<()> {
    let store_key = store_key(transaction, store)?;
    // A removed or moved device keeps its id (its rows hold its bins): the id is not reused.
    let known: bool = transaction.query_row(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)",
        [device_id.as_str()],
        |row| row.get(0),
    )?;
    if known {
        return Err(StorageError::AlreadyExists(format!("device {device_id} already exists")));
    }
    let inserted = transaction.execute(
        "INSERT INTO devices (device_id, store_id, token_hash) VALUES (?1, ?2, ?3)",
        params![device_id.as_str(), store_key, token_hash],
    );
    reject_duplicate(inserted, || format!("device {device_id} already exists"))?;
    bump_catalog(transaction)?;
    Ok(())
}
