//! Irisys Vector HTTP POST: `CountLogs` of cumulative count registers, timestamps in UTC.

use serde_json::Value;

use super::json::Node;
use crate::domain::sensors::{Payload, RawReading};

/// Parses a push; the serial is `FriendlyDeviceSerial`, each log's `Counts` are register readings at the
/// log's `Timestamp`.
pub fn parse(value: &Value) -> Result<Payload, String> {
    let root = Node::root(value);
    let mut payload = Payload { serial: root.field("FriendlyDeviceSerial")?.text()?, ..Payload::default() };
    for log in root.field("CountLogs")?.items()? {
        let at = log.field("Timestamp")?.time()?;
        for count in log.field("Counts")?.items()? {
            payload.readings.push(RawReading {
                name: count.field("Name")?.str()?.to_owned(),
                id: count.opt("RegisterId").map(|id| id.text()).transpose()?,
                at,
                value: count.field("Value")?.count()?,
            });
        }
    }
    Ok(payload)
}
