//! Xovis PC series: the firmware 5 logics push (`logics_data`) and the firmware 4 count push
//! (`content.element[].measurement[]`).

use serde_json::Value;

use super::json::{Node, key_of};
use crate::domain::sensors::{Payload, RawInterval};

/// Parses either push; the serial is `sensor_info.serial_number` (fw 5) or `sensor-info.serial-number`
/// (fw 4). A fw 5 package without `sensor_info` (the agent's "full sensor info" off) has no serial: the
/// caller then takes the device token's sensor.
pub fn parse(value: &Value) -> Result<Payload, String> {
    let root = Node::root(value);
    if let Some(data) = root.opt("logics_data") {
        return logics(&data);
    }
    if root.opt("content").is_some() {
        return count_push(&root);
    }
    if root.opt("connection_test").is_some() {
        return Ok(Payload::default());
    }
    Err("expected a firmware 5 logics push (logics_data) or a firmware 4 count push (content.element)".into())
}

fn logics(data: &Node) -> Result<Payload, String> {
    let mut payload = Payload::default();
    if let Some(info) = data.opt("sensor_info") {
        payload.serial = info.field("serial_number")?.str()?.to_owned();
    }
    if let Some(package) = data.opt("package_info") {
        let agent = package.opt("agent_id").map(|a| a.int()).transpose()?.unwrap_or(0);
        payload.package = Some((agent, package.field("id")?.int()?));
    }
    for logic in data.field("logics")?.items()? {
        let id = logic.field("id")?.int()?;
        let line = u32::try_from(id).map_err(|_| logic.field("id").unwrap().error("must be a logic id"))?;
        for record in logic.field("records")?.items()? {
            let start = record.field("from")?.time()?;
            let mut counts = Vec::new();
            if let Some(values) = record.opt("counts") {
                for count in values.items()? {
                    let name = count.field("name")?.str()?;
                    // Histogram and state counters may carry non-count values: only fw/bw-like ones matter,
                    // but every value must still be a count to be trusted.
                    counts.push((name.to_owned(), count.field("value")?.count()?));
                }
            }
            payload.intervals.push(RawInterval {
                line: Some(line),
                key: format!("{id}/{}", key_of(&start)),
                start,
                counts,
            });
        }
    }
    Ok(payload)
}

fn count_push(root: &Node) -> Result<Payload, String> {
    let mut payload =
        Payload { serial: root.field("sensor-info")?.field("serial-number")?.str()?.to_owned(), ..Payload::default() };
    for element in root.field("content")?.field("element")?.items()? {
        let id = element.field("element-id")?.int()?;
        let line = u32::try_from(id).map_err(|_| element.error("element-id must not be negative"))?;
        for measurement in element.field("measurement")?.items()? {
            let start = measurement.field("from")?.time()?;
            let mut counts = Vec::new();
            for value in measurement.field("value")?.items()? {
                counts.push((value.field("label")?.str()?.to_owned(), value.field("value")?.count()?));
            }
            payload.intervals.push(RawInterval {
                line: Some(line),
                key: format!("e{id}/{}", key_of(&start)),
                start,
                counts,
            });
        }
    }
    Ok(payload)
}
