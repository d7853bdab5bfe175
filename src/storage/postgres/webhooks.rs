//! Webhook endpoints, their delivery queue and the alert states. Deliveries are claimed with
//! `FOR UPDATE SKIP LOCKED`, so several servers share the queue and each delivery goes out once at a time.

use super::*;

fn delivery_status(row: &tokio_postgres::Row) -> DeliveryStatus {
    DeliveryStatus {
        message_id: row.get(0),
        event_type: row.get(1),
        created_at: stored_instant(row.get(2)),
        attempts: row.get::<_, i64>(3) as u32,
        delivered_at: row.get::<_, Option<i64>>(4).map(stored_instant),
        next_attempt_at: row.get::<_, Option<i64>>(5).map(stored_instant),
        last_status: row.get::<_, Option<i64>>(6).map(|status| status as u16),
        last_error: row.get(7),
    }
}

#[async_trait]
impl WebhookStore for PostgresStorage {
    async fn add_webhook(&self, url: String, secret: String, events: Vec<String>, at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                "INSERT INTO webhooks (url, secret, events, created_at) VALUES ($1, $2, $3, $4)",
                &[&url, &secret, &events.join(","), &at.as_millisecond()],
            )
            .await;
        reject_duplicate(inserted, || format!("a webhook to {url} exists already"))?;
        Ok(())
    }
    async fn webhooks(&self) -> Result<Vec<Webhook>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT url, events, created_at FROM webhooks ORDER BY url", &[]).await?;
        Ok(rows
            .iter()
            .map(|row| Webhook {
                url: row.get(0),
                events: stored_events(row.get(1)),
                created_at: stored_instant(row.get(2)),
            })
            .collect())
    }
    async fn webhook_secret(&self, url: String) -> Result<Option<String>> {
        let client = self.pool.get().await?;
        Ok(client.query_opt("SELECT secret FROM webhooks WHERE url = $1", &[&url]).await?.map(|row| row.get(0)))
    }
    async fn remove_webhook(&self, url: String) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute(
                "DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE url = $1)",
                &[&url],
            )
            .await?;
        let removed = transaction.execute("DELETE FROM webhooks WHERE url = $1", &[&url]).await?;
        expect_one(removed, || format!("no webhook to {url}"))?;
        transaction.commit().await?;
        Ok(())
    }
    async fn webhook_deliveries(&self, url: String, limit: u32) -> Result<Vec<DeliveryStatus>> {
        let client = self.pool.get().await?;
        let known: bool =
            client.query_one("SELECT EXISTS (SELECT 1 FROM webhooks WHERE url = $1)", &[&url]).await?.get(0);
        if !known {
            return Err(StorageError::NotFound(format!("no webhook to {url}")));
        }
        let rows = client
            .query(
                "SELECT d.message_id, e.event_type, e.created_at, d.attempts, d.delivered_at, d.next_attempt_at,
                        d.last_status, d.last_error
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                 JOIN webhook_events e ON e.id = d.event_id
                 WHERE w.url = $1 ORDER BY d.id DESC LIMIT $2",
                &[&url, &i64::from(limit)],
            )
            .await?;
        Ok(rows.iter().map(delivery_status).collect())
    }
    async fn enqueue_event(&self, event: NewEvent) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let inserted = transaction
            .query_opt(
                "INSERT INTO webhook_events (event_key, event_type, body, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_key) DO NOTHING RETURNING id",
                &[&event.key, &event.event_type, &event.body, &event.at.as_millisecond()],
            )
            .await?;
        let Some(row) = inserted else {
            return Ok(false);
        };
        let event_id: i64 = row.get(0);
        let endpoints = transaction
            .query("SELECT id, events FROM webhooks WHERE $1::text IS NULL OR url = $1", &[&event.only_url])
            .await?;
        for endpoint in endpoints {
            let events: String = endpoint.get(1);
            if event.only_url.is_some() || stored_events(&events).contains(&event.event_type) {
                let webhook: i64 = endpoint.get(0);
                transaction
                    .execute(
                        "INSERT INTO webhook_deliveries (webhook_id, event_id, message_id, next_attempt_at)
                         VALUES ($1, $2, $3, $4)",
                        &[&webhook, &event_id, &crate::domain::webhooks::message_id(), &event.at.as_millisecond()],
                    )
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(true)
    }
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "WITH due AS (
                     SELECT id FROM webhook_deliveries
                     WHERE delivered_at IS NULL AND next_attempt_at <= $1
                     ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 UPDATE webhook_deliveries d SET next_attempt_at = $2
                 FROM due, webhooks w, webhook_events e
                 WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id
                 RETURNING d.id, w.url, w.secret, d.message_id, e.body, d.attempts",
                &[&now.as_millisecond(), &lease_until.as_millisecond(), &i64::from(limit)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| ClaimedDelivery {
                id: row.get(0),
                url: row.get(1),
                secret: row.get(2),
                message_id: row.get(3),
                body: row.get(4),
                attempts: row.get::<_, i64>(5) as u32,
            })
            .collect())
    }
    async fn record_attempt(&self, id: i64, outcome: AttemptOutcome, at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        match outcome {
            AttemptOutcome::Delivered { status } => client
                .execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = $2, next_attempt_at = NULL,
                         last_status = $3, last_error = NULL WHERE id = $1",
                    &[&id, &at.as_millisecond(), &i64::from(status)],
                )
                .await?,
            AttemptOutcome::Failed { status, error, retry_at } => {
                client
                    .execute(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2, last_status = $3,
                         last_error = $4 WHERE id = $1",
                        &[&id, &retry_at.map(|at| at.as_millisecond()), &status.map(i64::from), &error],
                    )
                    .await?
            }
        };
        Ok(())
    }
    async fn change_alert_state(&self, subject: String, state: String) -> Result<Option<Option<String>>> {
        let mut client = self.pool.get().await?;
        // Read first: a state is checked every pass and rarely changes, and a write costs a commit.
        let current = client.query_opt("SELECT state FROM alert_states WHERE subject = $1", &[&subject]).await?;
        if current.is_some_and(|row| row.get::<_, &str>(0) == state) {
            return Ok(None);
        }
        let transaction = client.transaction().await?;
        // The subject's row is locked until commit: of servers changing it at once, one sees the change.
        transaction
            .execute("INSERT INTO alert_states (subject, state) VALUES ($1, '') ON CONFLICT DO NOTHING", &[&subject])
            .await?;
        let previous: String = transaction
            .query_one("SELECT state FROM alert_states WHERE subject = $1 FOR UPDATE", &[&subject])
            .await?
            .get(0);
        if previous == state {
            return Ok(None);
        }
        transaction.execute("UPDATE alert_states SET state = $2 WHERE subject = $1", &[&subject, &state]).await?;
        transaction.commit().await?;
        Ok(Some((!previous.is_empty()).then_some(previous)))
    }
}
