//! MQTT ingestion: subscribe to `footfall/<device_id>/bins` (QoS 1) and store each message's bins.
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

use crate::api::AppState;
use crate::api::ingest::store_bins;
use crate::domain::bins::Bin;
use crate::ingest::parse_batch;

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
pub async fn run(state: Arc<AppState>, url: String, mut stop: watch::Receiver<bool>) {
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
                if let Err(error) = client.try_subscribe(TOPIC_FILTER, QoS::AtLeastOnce) {
                    tracing::error!(%error, "MQTT subscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(message))) => {
                if handle(&state, &message).await {
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
async fn handle(state: &AppState, message: &Publish) -> bool {
    let topic = message.topic.as_str();
    match bins_of(state, topic, &message.payload).await {
        Ok(bins) => {
            let count = bins.len();
            match store_bins(state, bins).await {
                Ok(()) => {
                    tracing::debug!(topic, count, "MQTT bins stored");
                    true
                }
                Err(error) => {
                    tracing::error!(topic, detail = %error.detail, "MQTT bins not stored; awaiting redelivery");
                    false
                }
            }
        }
        Err(reason) => {
            tracing::warn!(topic, %reason, "MQTT message rejected");
            true
        }
    }
}

async fn bins_of(state: &AppState, topic: &str, payload: &[u8]) -> Result<Vec<Bin>, String> {
    let device_id = topic
        .strip_prefix("footfall/")
        .and_then(|rest| rest.strip_suffix("/bins"))
        .ok_or_else(|| format!("unexpected topic {topic:?}"))?;
    let text = std::str::from_utf8(payload).map_err(|_| "the payload is not UTF-8".to_owned())?;
    let trimmed = text.trim();
    let ndjson = !trimmed.starts_with('[') && trimmed.contains('\n');
    let records = parse_batch(text, ndjson).map_err(|error| error.to_string())?;
    let catalog = state.storage.catalog().await.map_err(|error| error.to_string())?;
    let device =
        catalog.device_by_id(device_id).filter(|d| d.active).ok_or_else(|| format!("unknown device {device_id:?}"))?;
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            if record.device_id == device_id {
                Ok(Bin { device: device.key, minute: record.minute, counts: record.counts })
            } else {
                Err(format!("bins[{index}].device_id: {:?} does not match the topic's device", record.device_id))
            }
        })
        .collect()
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
}
