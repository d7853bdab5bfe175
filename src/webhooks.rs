//! Webhooks at run time: the events (`publication.completed` after a publication; `occupancy.above` and
//! `occupancy.below` against a store's capacity from live occupancy; `device.silent`,
//! `device.recovered` and `count.imbalance` from device health) queued in the database, and the
//! deliveries of the queue posted, signed per Standard Webhooks, retried on its schedule. Any number of
//! servers (and CLI commands) may make events and deliver: a crossing is one event (an alert state
//! changes once), a delivery is claimed by one server at a time.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::sync::watch;

use crate::domain::Minute;
use crate::domain::health::HealthSettings;
use crate::domain::publication::PublishSummary;
use crate::domain::time::LocalMinuteWriter;
use crate::domain::webhooks::{
    EventType, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, event_body, is_delivered, retry_delay,
};
use crate::storage::{AttemptOutcome, ClaimedDelivery, NewEvent, Storage, StorageError};
use crate::telemetry::series;

/// How long a claimed delivery is kept from other servers: longer than an attempt can take.
const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// The longest a receiver may take to answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries claimed per pass.
const CLAIM_LIMIT: u32 = 32;
/// How often the queue is looked at.
const DELIVERY_POLL: Duration = Duration::from_secs(1);
/// Occupancy falls back below its capacity when under this share of it: a store hovering at its capacity
/// makes one event, not one per minute.
const BELOW_SHARE: f64 = 0.9;

/// Queues an event made now.
pub async fn emit(
    storage: &dyn Storage,
    event: EventType,
    key: String,
    data: serde_json::Value,
) -> Result<bool, StorageError> {
    let at = Timestamp::now();
    let body = event_body(event, at, &data);
    let new = storage
        .enqueue_event(NewEvent { key, event_type: event.as_str().to_owned(), body, at, only_url: None })
        .await?;
    if new {
        series::webhook_event(event.as_str());
    }
    Ok(new)
}

/// After a publication (by a server's schedule or `footfall publish`): `publication.completed`. A failure
/// to queue it is logged; the publication stands.
pub async fn publication_completed(storage: &dyn Storage, summary: &PublishSummary) {
    if summary.bins == 0 && summary.periods == 0 {
        return; // nothing was pending: nothing changed
    }
    let generation = match storage.publication_mark().await {
        Ok(mark) => mark.generation,
        Err(error) => return tracing::error!(%error, "reading the publication for its webhook event failed"),
    };
    let data = json!({ "bins": summary.bins, "store_days": summary.periods, "generation": generation });
    let key = format!("publication.completed:{generation}");
    if let Err(error) = emit(storage, EventType::PublicationCompleted, key, data).await {
        tracing::error!(%error, "queueing the publication.completed event failed");
    }
}

/// The HTTP client of the deliveries: TLS with the web's roots, no redirects (a 3xx is a failure).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("footfall/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initializes")
}

/// Posts one delivery, signed, and says how it went.
pub async fn attempt(client: &reqwest::Client, delivery: &ClaimedDelivery, now: Timestamp) -> AttemptOutcome {
    let failed = |status: Option<u16>, error: String| {
        let retry_at = retry_delay(delivery.attempts + 1)
            .map(|delay| now + SignedDuration::try_from(delay).expect("retry delays are short"));
        AttemptOutcome::Failed { status, error, retry_at }
    };
    let secret = match WebhookSecret::parse(&delivery.secret) {
        Ok(secret) => secret,
        Err(error) => return AttemptOutcome::Failed { status: None, error, retry_at: None },
    };
    let timestamp = now.as_second();
    let signature = secret.sign(&delivery.message_id, timestamp, delivery.body.as_bytes());
    let sent = client
        .post(&delivery.url)
        .header(HEADER_ID, &delivery.message_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) if is_delivered(response.status().as_u16()) => {
            AttemptOutcome::Delivered { status: response.status().as_u16() }
        }
        Ok(response) => {
            let status = response.status();
            failed(Some(status.as_u16()), format!("the receiver answered {status}"))
        }
        // Without the URL: it may carry credentials.
        Err(error) => failed(None, error.without_url().to_string()),
    }
}

/// One pass over the queue: claims what is due, posts it concurrently, records each outcome. Returns
/// the number of attempts made.
pub async fn deliver_due(storage: &dyn Storage, client: &reqwest::Client) -> Result<usize, StorageError> {
    let now = Timestamp::now();
    let claimed = storage.claim_deliveries(now, now + LEASE, CLAIM_LIMIT).await?;
    let outcomes = futures_util::future::join_all(claimed.iter().map(|delivery| attempt(client, delivery, now))).await;
    for (delivery, outcome) in claimed.iter().zip(outcomes) {
        series::webhook_attempt(match &outcome {
            AttemptOutcome::Delivered { .. } => "delivered",
            AttemptOutcome::Failed { retry_at: Some(_), .. } => "failed",
            AttemptOutcome::Failed { retry_at: None, .. } => "given_up",
        });
        if let AttemptOutcome::Failed { error, retry_at, .. } = &outcome {
            tracing::warn!(message_id = %delivery.message_id, attempts = delivery.attempts + 1, %error, given_up = retry_at.is_none(), "webhook delivery failed");
        }
        storage.record_attempt(delivery.id, outcome, Timestamp::now()).await?;
    }
    Ok(claimed.len())
}

/// Delivers the queue every second until `stop` changes.
pub async fn run_deliveries(storage: Arc<dyn Storage>, mut stop: watch::Receiver<bool>) {
    let client = client();
    loop {
        if let Err(error) = deliver_due(storage.as_ref(), &client).await {
            tracing::error!(%error, "webhook delivery pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(DELIVERY_POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Looks for alerts every `interval` until `stop` changes.
pub async fn run_alerts(storage: Arc<dyn Storage>, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(error) = check_alerts(storage.as_ref(), Timestamp::now()).await {
            tracing::error!(%error, "checking alerts failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One look for alerts: capacity crossings from live occupancy, silence and recovery from device health,
/// and yesterday's count imbalances.
pub async fn check_alerts(storage: &dyn Storage, now: Timestamp) -> Result<(), StorageError> {
    let catalog = storage.catalog().await?;
    let now_minute = Minute::last_at_or_before(now);

    let with_capacity: Vec<_> = catalog.stores().iter().filter(|store| store.capacity.is_some()).collect();
    if !with_capacity.is_empty() {
        let periods = with_capacity.iter().map(|store| (store.key, store.calendar().period_of(now_minute))).collect();
        let live = storage.live_occupancy(periods).await?;
        for (store, found) in with_capacity.iter().zip(live) {
            let capacity = i64::from(store.capacity.expect("filtered"));
            let (minute, occupancy) = found.unwrap_or((now_minute, 0));
            let state = if occupancy > capacity {
                "above"
            } else if (occupancy as f64) < capacity as f64 * BELOW_SHARE {
                "below"
            } else {
                continue; // between: no change either way
            };
            let subject = format!("occupancy:{}", store.code);
            let Some(previous) = storage.change_alert_state(subject, state.to_owned()).await? else { continue };
            let event = match (state, previous.as_deref()) {
                ("above", _) => EventType::OccupancyAbove,
                ("below", Some("above")) => EventType::OccupancyBelow,
                _ => continue, // a store first seen below its capacity
            };
            let local = String::from_utf8_lossy(&LocalMinuteWriter::new(&store.timezone).render(minute)).into_owned();
            let data = json!({ "store_code": store.code.as_str(), "occupancy": occupancy, "capacity": capacity, "minute": local });
            let key = format!("{}:{}:{}", event.as_str(), store.code, minute.unix_seconds());
            emit(storage, event, key, data).await?;
        }
    }

    let stores: Vec<_> = catalog.stores().iter().collect();
    let settings = HealthSettings::default();
    let report = crate::health::stores_health(storage, &catalog, &stores, 2, now, &settings).await?;
    for store in &report {
        for (device, health) in &store.devices {
            let state = if health.silent { "silent" } else { "ok" };
            let subject = format!("device:{}", device.device_id);
            if let Some(previous) = storage.change_alert_state(subject, state.to_owned()).await? {
                let event = match (state, previous.as_deref()) {
                    ("silent", _) => Some(EventType::DeviceSilent),
                    ("ok", Some("silent")) => Some(EventType::DeviceRecovered),
                    _ => None,
                };
                if let Some(event) = event {
                    let mut minutes = LocalMinuteWriter::new(&store.store.timezone);
                    let last_bin =
                        health.last_bin.map(|minute| String::from_utf8_lossy(&minutes.render(minute)).into_owned());
                    let data = json!({
                        "store_code": store.store.code.as_str(),
                        "device_id": device.device_id.as_str(),
                        "last_bin": last_bin,
                        "open_minutes_without_data": health.open_minutes_without_data,
                    });
                    let key = format!("{}:{}:{}", event.as_str(), device.device_id, now_minute.unix_seconds());
                    emit(storage, event, key, data).await?;
                }
            }
            // Yesterday, a whole day: one event per device and day.
            if let Some(day) = health.days.first().filter(|day| day.imbalanced && health.days.len() > 1) {
                let data = json!({
                    "store_code": store.store.code.as_str(),
                    "device_id": device.device_id.as_str(),
                    "date": day.date.to_string(),
                    "in_metric": day.entries,
                    "out_metric": day.exits,
                    "balance": day.balance,
                });
                let key = format!("count.imbalance:{}:{}", device.device_id, day.date);
                emit(storage, EventType::CountImbalance, key, data).await?;
            }
        }
        if let Some(day) = store.days.first().filter(|day| day.imbalanced && store.days.len() > 1) {
            let data = json!({
                "store_code": store.store.code.as_str(),
                "device_id": null,
                "date": day.date.to_string(),
                "in_metric": day.entries,
                "out_metric": day.exits,
                "balance": day.balance,
            });
            let key = format!("count.imbalance:store:{}:{}", store.store.code, day.date);
            emit(storage, EventType::CountImbalance, key, data).await?;
        }
    }
    Ok(())
}

/// `footfall webhook test URL`: one `webhook.test` event posted to that endpoint now, signed like any
/// delivery but outside the queue (not retried), so the command can show how the receiver answered.
pub async fn send_test(storage: &dyn Storage, url: &str) -> Result<AttemptOutcome, StorageError> {
    let secret = storage
        .webhook_secret(url.to_owned())
        .await?
        .ok_or_else(|| StorageError::NotFound(format!("no webhook to {url}")))?;
    let now = Timestamp::now();
    let delivery = ClaimedDelivery {
        id: 0,
        url: url.to_owned(),
        secret,
        message_id: crate::domain::webhooks::message_id(),
        body: event_body(EventType::WebhookTest, now, &json!({ "url": url })),
        attempts: crate::domain::webhooks::MAX_ATTEMPTS,
    };
    Ok(attempt(&client(), &delivery, now).await)
}
