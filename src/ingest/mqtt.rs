//! MQTT ingestion: subscribe to `footfall/<device_id>/bins` (QoS 1) and store each message's bins, and
//! to `footfall/<vendor>/#` for sensors publishing in their own format (Xovis, Milesight, ...): the
//! payload is what the sensor would POST, its serial picks the device. The broker's ACL is the boundary:
//! whoever may publish there may push for any registered sensor. (`footfall/<vendor>/bins` stays the bins
//! topic of a device named like a vendor.)
//!
//! A message is acknowledged only after its bins are committed, so the broker redelivers anything the
//! server had not stored when it stopped or lost the connection. The session is persistent
//! (clean_session = false, a stable client id), so messages published while the server is away wait at
//! the broker. Re-delivered messages are harmless: bins replace by (device, minute).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::watch;

use super::parse_batch;
use super::service::{self, IngestError, Permission, active_device};
use super::vendors::{self, PushError, Pusher};
use crate::domain::sensors::Vendor;
use crate::storage::{Storage, StorageError};
use crate::telemetry::series::{self, Source};

/// The topics subscribed to: one per device, its id in the middle.
pub const TOPIC_FILTER: &str = "footfall/+/bins";

/// Parses `mqtt://HOST:PORT[?client_id=ID]`.
pub fn options(url: &str) -> anyhow::Result<MqttOptions> {
    let rest = url.strip_prefix("mqtt://").context("the MQTT URL must look like mqtt://HOST:PORT")?;
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "1883"));
    let port: u16 = port.parse().with_context(|| format!("bad MQTT port in {url:?}"))?;
    let client_id = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "client_id")
        .map_or_else(|| "footfall".to_owned(), |(_, value)| value.into_owned());
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(8 << 20, 8 << 20);
    Ok(options)
}

/// Runs until `stop` changes, reconnecting with exponential backoff (capped at 30 s).
pub async fn run(storage: Arc<dyn Storage>, url: String, mut stop: watch::Receiver<bool>) {
    let options = match options(&url) {
        Ok(options) => options,
        Err(error) => {
            tracing::error!(%error, "MQTT ingestion disabled");
            return;
        }
    };
    let (client, mut events) = AsyncClient::new(options, 64);
    let mut backoff = Duration::from_millis(250);
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            _ = stop.changed() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(250);
                tracing::info!(%url, topic = TOPIC_FILTER, "MQTT connected");
                // Subscribing again after every connect also covers a broker that lost its sessions.
                let vendor_filters = Vendor::ALL.map(|vendor| format!("footfall/{}/#", vendor.as_str()));
                for filter in std::iter::once(TOPIC_FILTER.to_owned()).chain(vendor_filters) {
                    if let Err(error) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::error!(%error, "MQTT subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(message))) => {
                if handle(storage.as_ref(), &message).await {
                    if let Err(error) = client.try_ack(&message) {
                        tracing::error!(%error, "MQTT ack failed; the broker will redeliver");
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    let _ = client.try_disconnect();
}

/// Stores one message. Returns whether to acknowledge it: yes once stored, and yes for a message that
/// can never be stored (it is logged and dropped); no after a storage failure, so it is redelivered.
async fn handle(storage: &dyn Storage, message: &Publish) -> bool {
    let topic = message.topic.as_str();
    match store(storage, topic, &message.payload).await {
        Ok(count) => {
            tracing::debug!(topic, count, "MQTT bins stored");
            series::bins_ingested(Source::Mqtt, count);
            true
        }
        Err(Refused::NotStored(error)) => {
            tracing::error!(topic, detail = %error, "MQTT bins not stored; awaiting redelivery");
            false
        }
        Err(Refused::Invalid(reason)) => {
            tracing::warn!(topic, %reason, "MQTT message rejected");
            series::records_rejected(Source::Mqtt);
            true
        }
    }
}

/// Why a message was not stored.
enum Refused {
    /// It never can be: dropped.
    Invalid(String),
    /// Storage failed: redelivered.
    NotStored(StorageError),
}

/// The vendor of a sensor topic `footfall/<vendor>/...` (not `footfall/<vendor>/bins`).
fn vendor_of(topic: &str) -> Option<Vendor> {
    let mut segments = topic.split('/');
    let (Some("footfall"), Some(vendor), rest) = (segments.next(), segments.next(), segments.collect::<Vec<_>>())
    else {
        return None;
    };
    if rest == ["bins"] {
        return None;
    }
    Vendor::ALL.into_iter().find(|v| v.as_str() == vendor)
}

/// Stores a sensor's own payload; the serial picks the device.
async fn store_vendor(storage: &dyn Storage, vendor: Vendor, payload: &[u8]) -> Result<u64, Refused> {
    let parsed = vendors::parse(vendor, payload, None).map_err(Refused::Invalid)?;
    let catalog = storage.catalog().await.map_err(Refused::NotStored)?;
    match vendors::push(storage, &catalog, Pusher::Broker, vendor, parsed).await {
        Ok(pushed) => Ok(pushed.bins),
        Err(PushError::Storage(error)) => Err(Refused::NotStored(error)),
        Err(error) => Err(Refused::Invalid(error.to_string())),
    }
}

/// Stores the bins of a message on `footfall/<device_id>/bins`, all of which must be that device's, or
/// a sensor's payload on `footfall/<vendor>/...`. Returns how many distinct bins it wrote.
async fn store(storage: &dyn Storage, topic: &str, payload: &[u8]) -> Result<u64, Refused> {
    if let Some(vendor) = vendor_of(topic) {
        return store_vendor(storage, vendor, payload).await;
    }
    let device_id = topic
        .strip_prefix("footfall/")
        .and_then(|rest| rest.strip_suffix("/bins"))
        .ok_or_else(|| Refused::Invalid(format!("unexpected topic {topic:?}")))?;
    let text = std::str::from_utf8(payload).map_err(|_| Refused::Invalid("the payload is not UTF-8".to_owned()))?;
    let trimmed = text.trim();
    let ndjson = !trimmed.starts_with('[') && trimmed.contains('\n');
    let records = parse_batch(text, ndjson).map_err(|error| Refused::Invalid(error.to_string()))?;
    let catalog = storage.catalog().await.map_err(|error| Refused::Invalid(error.to_string()))?;
    let device =
        active_device(&catalog, device_id).ok_or_else(|| Refused::Invalid(format!("unknown device {device_id:?}")))?;
    match service::ingest(storage, &catalog, Permission::Device(device.key), records).await {
        Ok(stored) => Ok(stored),
        Err(IngestError::Storage(error)) => Err(Refused::NotStored(error)),
        // The topic's device is active, so any other device id is refused.
        Err(IngestError::UnknownDevice { position, device_id } | IngestError::OtherDevice { position, device_id }) => {
            Err(Refused::Invalid(format!(
                "bins[{position}].device_id: {device_id:?} does not match the topic's device"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let parsed = options("mqtt://127.0.0.1:1883?client_id=abc").unwrap();
        assert_eq!(parsed.broker_address(), ("127.0.0.1".to_owned(), 1883));
        assert_eq!(parsed.client_id(), "abc");
        assert!(!parsed.clean_session());
        assert!(options("http://x").is_err());
        assert!(options("mqtt://x:notaport").is_err());
    }

    #[test]
    fn vendor_topics_are_told_from_bins_topics() {
        assert_eq!(vendor_of("footfall/xovis/80:1F:12:D3:27:CA"), Some(Vendor::Xovis));
        assert_eq!(vendor_of("footfall/milesight/site/6537F28545220003"), Some(Vendor::Milesight));
        assert_eq!(vendor_of("footfall/xovis"), Some(Vendor::Xovis));
        assert_eq!(vendor_of("footfall/xovis/bins"), None);
        assert_eq!(vendor_of("footfall/cnt-1/bins"), None);
        assert_eq!(vendor_of("other/xovis/x"), None);
    }
}
