//! Xovis PC series: the firmware 5 logics push (`logics_data`) and the firmware 4 count push
//! (`content.element[].measurement[]`).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::json::{self, CountField, Node, TimeField, key_of};
use crate::domain::sensors::{Payload, RawInterval};

/// Parses either push; the serial is `sensor_info.serial_number` (fw 5) or `sensor-info.serial-number`
/// (fw 4). A fw 5 package without `sensor_info` (the agent's "full sensor info" off) has no serial: the
/// caller then takes the device token's sensor.
pub fn parse(body: &[u8]) -> Result<Payload, String> {
    let expected = "expected a firmware 5 logics push (logics_data) or a firmware 4 count push (content.element)";
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(expected.into());
    }
    // Firmware 5 is read into typed records straight from the bytes: a catch-up package holds
    // thousands of them.
    let push: Push = json::typed(body)?;
    if let Some(data) = push.logics_data {
        return logics(data);
    }
    if push.content.is_some() {
        return count_push(&Node::root(&json::parse(body)?));
    }
    if push.connection_test.is_some() {
        return Ok(Payload::default());
    }
    Err(expected.into())
}

#[derive(Deserialize)]
struct Push<'a> {
    #[serde(borrow)]
    logics_data: Option<LogicsData<'a>>,
    content: Option<IgnoredAny>,
    connection_test: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct LogicsData<'a> {
    sensor_info: Option<SensorInfo>,
    package_info: Option<PackageInfo>,
    #[serde(borrow)]
    logics: Vec<Logic<'a>>,
}

#[derive(Deserialize)]
struct SensorInfo {
    serial_number: String,
}

#[derive(Deserialize)]
struct PackageInfo {
    agent_id: Option<i64>,
    id: i64,
}

#[derive(Deserialize)]
struct Logic<'a> {
    id: i64,
    #[serde(borrow)]
    records: Vec<Record<'a>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    from: TimeField,
    #[serde(borrow)]
    counts: Option<Vec<Count<'a>>>,
}

/// Histogram and state counters may carry non-count values: only fw/bw-like ones matter, but every
/// value must still be a count to be trusted.
#[derive(Deserialize)]
struct Count<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    value: CountField,
}

fn logics(data: LogicsData) -> Result<Payload, String> {
    let mut payload = Payload {
        serial: data.sensor_info.map(|info| info.serial_number).unwrap_or_default(),
        package: data.package_info.map(|package| (package.agent_id.unwrap_or(0), package.id)),
        ..Payload::default()
    };
    payload.intervals.reserve(data.logics.iter().map(|logic| logic.records.len()).sum());
    for (index, logic) in data.logics.into_iter().enumerate() {
        let line = u32::try_from(logic.id)
            .map_err(|_| format!("logics_data.logics[{index}].id: must be a logic id, got {}", logic.id))?;
        for record in logic.records {
            let start = record.from.0;
            let counts = record.counts.unwrap_or_default();
            payload.intervals.push(RawInterval {
                line: Some(line),
                key: format!("{line}/{}", key_of(&start)),
                start,
                counts: counts.into_iter().map(|count| (count.name.into_owned(), count.value.0)).collect(),
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
