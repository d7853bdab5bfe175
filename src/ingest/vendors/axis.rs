//! Axis 3D People Counter "Axis Retail Data" (generic data push): per-interval counts by direction.

use serde_json::Value;

use super::json::{Node, key_of};
use crate::domain::sensors::{Payload, RawInterval};

/// Parses a push; the serial is `sensor.serial`, each `people-counts` measurement is one interval at its
/// `utcFrom` (or `localFrom` in the store's zone when there is no UTC time).
pub fn parse(value: &Value) -> Result<Payload, String> {
    let root = Node::root(value);
    let sensor = root.field("sensor")?;
    let mut payload = Payload { serial: sensor.field("serial")?.text()?, ..Payload::default() };
    for measurement in root.field("data")?.field("measurements")?.items()? {
        let kind = measurement.opt("kind").map(|k| k.str()).transpose()?.unwrap_or("people-counts");
        if kind != "people-counts" {
            continue;
        }
        let start = measurement.field_of(&["utcFrom", "localFrom"])?.time()?;
        let mut counts = Vec::new();
        for item in measurement.field("items")?.items()? {
            counts.push((item.field("direction")?.str()?.to_owned(), item.field("count")?.count()?));
        }
        payload.intervals.push(RawInterval { line: None, key: format!("{kind}/{}", key_of(&start)), start, counts });
    }
    Ok(payload)
}
