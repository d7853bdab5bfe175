//! Webhook endpoints, their delivery queue and the alert states.

use super::*;

fn delivery_status(row: &rusqlite::Row) -> rusqlite::Result<DeliveryStatus> {
    Ok(DeliveryStatus {
        message_id: row.get(0)?,
        event_type: row.get(1)?,
        created_at: stored_instant(row.get(2)?),
        attempts: row.get(3)?,
        delivered_at: row.get::<_, Option<i64>>(4)?.map(stored_instant),
        next_attempt_at: row.get::<_, Option<i64>>(5)?.map(stored_instant),
        last_status: row.get(6)?,
        last_error: row.get(7)?,
    })
}

#[async_trait]
impl WebhookStore for SqliteStorage {
    async fn add_webhook(&self, url: String, secret: String, events: Vec<String>, at: Timestamp) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let inserted = transaction.execute(
                    "INSERT INTO webhooks (url, secret, events, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![url, secret, events.join(","), at.as_millisecond()],
                );
                reject_duplicate(inserted, || format!("a webhook to {url} exists already"))?;
                Ok(())
            })
        })
        .await
    }
    async fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.run(Access::Read, |inner| {
            inner.reader(|connection| {
                let mut statement = connection.prepare("SELECT url, events, created_at FROM webhooks ORDER BY url")?;
                let rows = statement.query_map([], |row| {
                    Ok(Webhook {
                        url: row.get(0)?,
                        events: stored_events(&row.get::<_, String>(1)?),
                        created_at: stored_instant(row.get(2)?),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
        })
        .await
    }
    async fn webhook_secret(&self, url: String) -> Result<Option<String>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                let secret = connection
                    .query_row("SELECT secret FROM webhooks WHERE url = ?1", [&url], |row| row.get(0))
                    .optional()?;
                Ok(secret)
            })
        })
        .await
    }
    async fn remove_webhook(&self, url: String) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                transaction.execute(
                    "DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE url = ?1)",
                    [&url],
                )?;
                let removed = transaction.execute("DELETE FROM webhooks WHERE url = ?1", [&url])?;
                expect_one(removed as u64, || format!("no webhook to {url}"))
            })
        })
        .await
    }
    async fn webhook_deliveries(&self, url: String, limit: u32) -> Result<Vec<DeliveryStatus>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                let known: bool =
                    connection
                        .query_row("SELECT EXISTS (SELECT 1 FROM webhooks WHERE url = ?1)", [&url], |row| row.get(0))?;
                if !known {
                    return Err(StorageError::NotFound(format!("no webhook to {url}")));
                }
                let mut statement = connection.prepare(
                    "SELECT d.message_id, e.event_type, e.created_at, d.attempts, d.delivered_at, d.next_attempt_at,
                            d.last_status, d.last_error
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     JOIN webhook_events e ON e.id = d.event_id
                     WHERE w.url = ?1 ORDER BY d.id DESC LIMIT ?2",
                )?;
                let rows = statement.query_map(params![url, limit], delivery_status)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
        })
        .await
    }
    async fn enqueue_event(&self, event: NewEvent) -> Result<bool> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let inserted = transaction.execute(
                    "INSERT INTO webhook_events (event_key, event_type, body, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (event_key) DO NOTHING",
                    params![event.key, event.event_type, event.body, event.at.as_millisecond()],
                )?;
                if inserted == 0 {
                    return Ok(false);
                }
                let event_id = transaction.last_insert_rowid();
                let endpoints: Vec<(i64, String)> = transaction
                    .prepare("SELECT id, events FROM webhooks WHERE ?1 IS NULL OR url = ?1")?
                    .query_map([&event.only_url], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut insert = transaction.prepare(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, message_id, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (webhook, events) in endpoints {
                    if event.only_url.is_some() || stored_events(&events).contains(&event.event_type) {
                        let message_id = crate::domain::webhooks::message_id();
                        insert.execute(params![webhook, event_id, message_id, event.at.as_millisecond()])?;
                    }
                }
                Ok(true)
            })
        })
        .await
    }
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let claimed: Vec<ClaimedDelivery> = transaction
                    .prepare(
                        "SELECT d.id, w.url, w.secret, d.message_id, e.body, d.attempts
                         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                         JOIN webhook_events e ON e.id = d.event_id
                         WHERE d.delivered_at IS NULL AND d.next_attempt_at <= ?1
                         ORDER BY d.next_attempt_at LIMIT ?2",
                    )?
                    .query_map(params![now.as_millisecond(), limit], |row| {
                        Ok(ClaimedDelivery {
                            id: row.get(0)?,
                            url: row.get(1)?,
                            secret: row.get(2)?,
                            message_id: row.get(3)?,
                            body: row.get(4)?,
                            attempts: row.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let mut lease =
                    transaction.prepare("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?;
                for delivery in &claimed {
                    lease.execute(params![delivery.id, lease_until.as_millisecond()])?;
                }
                Ok(claimed)
            })
        })
        .await
    }
    async fn record_attempt(&self, id: i64, outcome: AttemptOutcome, at: Timestamp) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                match outcome {
                    AttemptOutcome::Delivered { status } => transaction.execute(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = ?2, next_attempt_at = NULL,
                         last_status = ?3, last_error = NULL WHERE id = ?1",
                        params![id, at.as_millisecond(), status],
                    )?,
                    AttemptOutcome::Failed { status, error, retry_at } => transaction.execute(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3,
                         last_error = ?4 WHERE id = ?1",
                        params![id, retry_at.map(|at| at.as_millisecond()), status, error],
                    )?,
                };
                Ok(())
            })
        })
        .await
    }
    async fn change_alert_state(&self, subject: String, state: String) -> Result<Option<Option<String>>> {
        // Read first: a state is checked every pass and rarely changes, and a write costs a commit.
        let (read_subject, read_state) = (subject.clone(), state.clone());
        let unchanged = self
            .run(Access::Read, move |inner| {
                inner.reader(|connection| {
                    let current: Option<String> = connection
                        .query_row("SELECT state FROM alert_states WHERE subject = ?1", [&read_subject], |row| {
                            row.get(0)
                        })
                        .optional()?;
                    Ok(current.as_deref() == Some(read_state.as_str()))
                })
            })
            .await?;
        if unchanged {
            return Ok(None);
        }
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                let previous: Option<String> = transaction
                    .query_row("SELECT state FROM alert_states WHERE subject = ?1", [&subject], |row| row.get(0))
                    .optional()?;
                if previous.as_deref() == Some(state.as_str()) {
                    return Ok(None);
                }
                transaction.execute(
                    "INSERT INTO alert_states (subject, state) VALUES (?1, ?2)
                     ON CONFLICT (subject) DO UPDATE SET state = excluded.state",
                    params![subject, state],
                )?;
                Ok(Some(previous))
            })
        })
        .await
    }
}
