//! Webhooks as the Standard Webhooks specification (<https://www.standardwebhooks.com/>) defines them:
//! the events an endpoint subscribes to, its signing secret, the signed headers, the JSON body and the
//! retry schedule. Receivers can then verify deliveries with any Standard Webhooks library. Nothing here
//! sends anything: delivery and its bookkeeping are the caller's.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the message id, the same on every retry so that receivers can deduplicate.
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the attempt's Unix time in seconds, signed so that receivers can reject replays.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the signatures ([`WebhookSecret::sign`]).
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// What happened, as a webhook's `type` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A device stopped reporting counts.
    DeviceSilent,
    /// A silent device reports again.
    DeviceRecovered,
    /// A store's occupancy rose above its threshold.
    OccupancyAbove,
    /// A store's occupancy fell back below its threshold.
    OccupancyBelow,
    /// A day's entries and exits differ by more than expected.
    CountImbalance,
    /// A period's figures were published.
    PublicationCompleted,
    /// A test sent on request to check an endpoint; never subscribed to, so not in [`SUBSCRIBABLE`].
    WebhookTest,
}

/// The events an endpoint can subscribe to, in the order listings show them.
pub const SUBSCRIBABLE: [EventType; 6] = [
    EventType::DeviceSilent,
    EventType::DeviceRecovered,
    EventType::OccupancyAbove,
    EventType::OccupancyBelow,
    EventType::CountImbalance,
    EventType::PublicationCompleted,
];

const ALL_EVENTS: [EventType; 7] = [
    EventType::DeviceSilent,
    EventType::DeviceRecovered,
    EventType::OccupancyAbove,
    EventType::OccupancyBelow,
    EventType::CountImbalance,
    EventType::PublicationCompleted,
    EventType::WebhookTest,
];

impl EventType {
    /// The name, e.g. `device.silent`: the body's `type` and what `--events` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceSilent => "device.silent",
            Self::DeviceRecovered => "device.recovered",
            Self::OccupancyAbove => "occupancy.above",
            Self::OccupancyBelow => "occupancy.below",
            Self::CountImbalance => "count.imbalance",
            Self::PublicationCompleted => "publication.completed",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// The event named `name`; the error lists the valid names.
    pub fn parse(name: &str) -> Result<Self, String> {
        ALL_EVENTS.into_iter().find(|event| event.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = ALL_EVENTS.iter().map(|event| event.as_str()).collect();
            format!("unknown event {name:?} (valid: {})", names.join(", "))
        })
    }

    /// The events of a comma-separated list such as `device.silent,occupancy.above`, without repeats and
    /// in [`SUBSCRIBABLE`] order; `all` stands for every subscribable event. An empty list, an empty
    /// item or `webhook.test` (not subscribable) is an error.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        if text.trim().is_empty() {
            return Err("no events given (a comma-separated list of event names, or all)".to_owned());
        }
        let mut chosen = [false; SUBSCRIBABLE.len()];
        for item in text.split(',').map(str::trim) {
            if item == "all" {
                chosen = [true; SUBSCRIBABLE.len()];
                continue;
            }
            if item.is_empty() {
                return Err(format!("empty event name in {text:?}"));
            }
            let event = Self::parse(item)?;
            let index = SUBSCRIBABLE
                .iter()
                .position(|&subscribable| subscribable == event)
                .ok_or_else(|| format!("{item} cannot be subscribed to (it is sent on request only)"))?;
            chosen[index] = true;
        }
        Ok(SUBSCRIBABLE.into_iter().zip(chosen).filter_map(|(event, on)| on.then_some(event)).collect())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The prefix of a secret's text form, as Standard Webhooks libraries expect it.
const SECRET_PREFIX: &str = "whsec_";
/// Bytes in a generated secret; the specification asks for 24 to 64.
const GENERATED_SECRET_BYTES: usize = 24;
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// An endpoint's signing key (the HMAC-SHA256 key). Its `Debug` shows no key bytes, so it can sit in
/// logged structs; errors from [`WebhookSecret::parse`] do not echo the text either.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A new random secret of 24 bytes.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; GENERATED_SECRET_BYTES]>().to_vec())
    }

    /// The secret written `whsec_<base64 of 24 to 64 key bytes>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("a webhook secret starts with {SECRET_PREFIX}"))?;
        let key = BASE64.decode(encoded).map_err(|_| "a webhook secret's key is not valid base64".to_owned())?;
        if !SECRET_BYTES.contains(&key.len()) {
            return Err(format!(
                "a webhook secret's key has {} bytes, not {} to {}",
                key.len(),
                SECRET_BYTES.start(),
                SECRET_BYTES.end()
            ));
        }
        Ok(Self(key))
    }

    /// The `whsec_...` text form: what is stored, and shown once to whoever registers the endpoint.
    pub fn as_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    /// The `webhook-signature` header value, `v1,<base64 of HMAC-SHA256("{id}.{timestamp}.{body}")>`.
    /// `timestamp` is the `webhook-timestamp` sent with it (Unix seconds), so re-sign on every attempt.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.mac(message_id, timestamp, body)))
    }

    /// Whether `header` (a `webhook-signature` value) holds a valid `v1` signature of this message among
    /// its space-separated signatures; others (other versions, other keys) are skipped, which lets a
    /// sender sign with an old and a new key while rotating. Compares in constant time. Whether
    /// `timestamp` is recent enough is the receiver's own check.
    pub fn verify(&self, message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.mac(message_id, timestamp, body);
        header
            .split(' ')
            .filter_map(|signature| signature.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .fold(false, |found, given| found | bool::from(given.ct_eq(&expected)))
    }

    fn mac(&self, message_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(format!("{message_id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// A new `webhook-id`: `msg_` and 26 random letters and digits. One per event per endpoint, kept across
/// that delivery's retries so that the receiver can tell a retry from a new event.
pub fn message_id() -> String {
    let random: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(26).map(char::from).collect();
    format!("msg_{random}")
}

/// The body of a webhook: `{"type": ..., "timestamp": ..., "data": ...}` in that order, `timestamp` being
/// when the event happened in RFC 3339 UTC to the second (e.g. `2026-12-07T12:00:00Z`).
pub fn event_body(event: EventType, timestamp: jiff::Timestamp, data: &serde_json::Value) -> String {
    // A struct, not `json!`, to keep the fields in this order whatever serde_json's map features are.
    #[derive(Serialize)]
    struct Body<'a> {
        r#type: &'static str,
        timestamp: String,
        data: &'a serde_json::Value,
    }
    let body = Body { r#type: event.as_str(), timestamp: timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), data };
    serde_json::to_string(&body).expect("a JSON value and strings serialize")
}

/// Standard Webhooks' schedule: the first attempt at once, then retries 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h and 10 h after each failure.
const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts made before a delivery is given up: the first and [`retry_delay`]'s seven retries.
pub const MAX_ATTEMPTS: u32 = RETRY_SCHEDULE.len() as u32 + 1;

/// How long to wait before the next attempt once `attempts_made` attempts have failed, following the
/// Standard Webhooks schedule: after attempt 1, 5 s; 2, 5 min; 3, 30 min; 4, 2 h; 5, 5 h; 6 and 7,
/// 10 h; after attempt 8, `None`: given up. A short first retry gets past a blip within a minute, while
/// the whole schedule (about 27.6 hours) outlasts a day-long outage at the receiver. With no attempt
/// made yet (0), the answer is at once.
pub fn retry_delay(attempts_made: u32) -> Option<Duration> {
    match attempts_made {
        0 => Some(Duration::ZERO),
        n => RETRY_SCHEDULE.get(n as usize - 1).copied(),
    }
}

/// Whether a receiver's answer counts as delivered: any 2xx. Anything else, redirects included, is
/// retried ([`retry_delay`]).
pub fn is_delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the Standard Webhooks reference implementation's tests.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(MSG_ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(secret.as_text(), SECRET);
    }

    #[test]
    fn verifies_only_the_signed_message() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert!(secret.verify(MSG_ID, TIMESTAMP, BODY, SIGNATURE));
        assert!(!secret.verify(MSG_ID, TIMESTAMP, br#"{"test": 2432232315}"#, SIGNATURE));
        assert!(!secret.verify(MSG_ID, TIMESTAMP + 1, BODY, SIGNATURE));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJeK", TIMESTAMP, BODY, SIGNATURE));
        assert!(!WebhookSecret::generate().verify(MSG_ID, TIMESTAMP, BODY, SIGNATURE));
    }

    #[test]
    fn verifies_any_of_several_signatures() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let other = WebhookSecret::generate().sign(MSG_ID, TIMESTAMP, BODY);
        assert!(secret.verify(MSG_ID, TIMESTAMP, BODY, &format!("{other} {SIGNATURE}")));
        assert!(secret.verify(MSG_ID, TIMESTAMP, BODY, &format!("v2,abc {SIGNATURE} v1,!!")));
        // The right bytes under another version are not a v1 signature.
        assert!(!secret.verify(MSG_ID, TIMESTAMP, BODY, &SIGNATURE.replace("v1,", "v1a,")));
        assert!(!secret.verify(MSG_ID, TIMESTAMP, BODY, &other));
        assert!(!secret.verify(MSG_ID, TIMESTAMP, BODY, ""));
        assert!(!secret.verify(MSG_ID, TIMESTAMP, BODY, "v1,"));
    }

    #[test]
    fn generated_secrets_round_trip_and_sign() {
        let secret = WebhookSecret::generate();
        let text = secret.as_text();
        assert!(text.starts_with("whsec_"));
        assert_eq!(BASE64.decode(&text["whsec_".len()..]).unwrap().len(), 24);
        assert_ne!(text, WebhookSecret::generate().as_text());
        let parsed = WebhookSecret::parse(&text).unwrap();
        let signature = parsed.sign("msg_1", 1, b"{}");
        assert_eq!(signature, secret.sign("msg_1", 1, b"{}"));
        assert!(secret.verify("msg_1", 1, b"{}", &signature));
    }

    #[test]
    fn secret_parse_errors() {
        let no_prefix = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert!(no_prefix.contains("whsec_"), "{no_prefix}");
        assert!(!no_prefix.contains("MfKQ"), "the error must not echo the secret: {no_prefix}");
        assert!(WebhookSecret::parse("whsec_not*base64").unwrap_err().contains("base64"));
        assert!(WebhookSecret::parse("whsec_").unwrap_err().contains("0 bytes"));
        let short = format!("whsec_{}", BASE64.encode([7u8; 23]));
        assert!(WebhookSecret::parse(&short).unwrap_err().contains("23 bytes"));
        let long = format!("whsec_{}", BASE64.encode([7u8; 65]));
        assert!(WebhookSecret::parse(&long).unwrap_err().contains("65 bytes"));
        assert!(WebhookSecret::parse(&format!("whsec_{}", BASE64.encode([7u8; 64]))).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}\n", BASE64.encode([7u8; 24]))).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
        assert!(!format!("{:?}", Some(&secret)).contains("MfKQ"));
    }

    #[test]
    fn event_names_round_trip() {
        for event in ALL_EVENTS {
            assert_eq!(EventType::parse(event.as_str()), Ok(event));
            assert_eq!(event.to_string(), event.as_str());
        }
        assert_eq!(EventType::WebhookTest.as_str(), "webhook.test");
        assert_eq!(EventType::PublicationCompleted.as_str(), "publication.completed");
        let error = EventType::parse("device.dead").unwrap_err();
        assert!(error.contains("device.dead") && error.contains("occupancy.below") && error.contains("webhook.test"));
        assert!(!SUBSCRIBABLE.contains(&EventType::WebhookTest));
        assert!(SUBSCRIBABLE.is_sorted());
    }

    #[test]
    fn parse_list_cases() {
        use EventType::*;
        assert_eq!(EventType::parse_list("device.silent"), Ok(vec![DeviceSilent]));
        assert_eq!(
            EventType::parse_list("occupancy.above,device.silent,occupancy.above"),
            Ok(vec![DeviceSilent, OccupancyAbove])
        );
        assert_eq!(
            EventType::parse_list(" count.imbalance , device.recovered "),
            Ok(vec![DeviceRecovered, CountImbalance])
        );
        assert_eq!(EventType::parse_list("all"), Ok(SUBSCRIBABLE.to_vec()));
        assert_eq!(EventType::parse_list("device.silent,all"), Ok(SUBSCRIBABLE.to_vec()));
        assert!(EventType::parse_list("").unwrap_err().contains("no events"));
        assert!(EventType::parse_list("  ").is_err());
        assert!(EventType::parse_list("device.silent,").unwrap_err().contains("empty"));
        assert!(EventType::parse_list("device.silent,nope").unwrap_err().contains("nope"));
        assert!(EventType::parse_list("webhook.test").unwrap_err().contains("cannot be subscribed"));
    }

    #[test]
    fn retry_schedule() {
        assert_eq!(retry_delay(0), Some(Duration::ZERO));
        assert_eq!(retry_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(2), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(7), Some(Duration::from_secs(36_000)));
        assert_eq!(retry_delay(8), None);
        assert_eq!(retry_delay(u32::MAX), None);
        assert_eq!(MAX_ATTEMPTS, 8);
        let delays: Vec<Duration> = (1..).map_while(retry_delay).collect();
        assert_eq!(delays.len() as u32, MAX_ATTEMPTS - 1);
        let total: Duration = delays.iter().sum();
        assert_eq!(total.as_secs(), 99_305); // 27 h 35 min 5 s: over about a day
        assert!(total > Duration::from_secs(24 * 3600) && total < Duration::from_secs(28 * 3600));
        assert!(delays[0] < Duration::from_secs(60));
    }

    #[test]
    fn delivered_is_2xx() {
        assert!(is_delivered(200) && is_delivered(204) && is_delivered(299));
        assert!(!is_delivered(199) && !is_delivered(301) && !is_delivered(410) && !is_delivered(500));
    }

    #[test]
    fn message_ids() {
        let id = message_id();
        assert_eq!(id.len(), 4 + 26);
        assert!(id.starts_with("msg_") && id[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(id, message_id());
    }

    #[test]
    fn event_body_json() {
        let at: jiff::Timestamp = "2026-12-07T12:00:00.750Z".parse().unwrap();
        let data = serde_json::json!({"store": "116500", "device": "cnt-1"});
        assert_eq!(
            event_body(EventType::DeviceSilent, at, &data),
            r#"{"type":"device.silent","timestamp":"2026-12-07T12:00:00Z","data":{"device":"cnt-1","store":"116500"}}"#
        );
        let test = event_body(EventType::WebhookTest, "2026-01-02T03:04:05Z".parse().unwrap(), &serde_json::json!({}));
        assert_eq!(test, r#"{"type":"webhook.test","timestamp":"2026-01-02T03:04:05Z","data":{}}"#);
    }
}
