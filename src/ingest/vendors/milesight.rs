//! Milesight VS1xx people counters: `line_periodic_data`, the counts of each line over
//! `time_info.start_time`..`end_time`. Trigger and total sections are not counted (the periodic data
//! already holds them; counting both would count twice).

use serde_json::Value;

use super::json::{Node, key_of};
use crate::domain::sensors::{Payload, RawInterval};

/// Parses a report; the serial is `device_info.device_sn`. A report without periodic line data (a
/// trigger report, region data) stores nothing.
pub fn parse(value: &Value) -> Result<Payload, String> {
    let root = Node::root(value);
    let mut payload = Payload { serial: root.field("device_info")?.field("device_sn")?.text()?, ..Payload::default() };
    let Some(lines) = root.opt("line_periodic_data") else {
        return Ok(payload);
    };
    let start = root.field("time_info")?.field("start_time")?.time()?;
    for line in lines.items()? {
        let number = line.field("line")?.count()?;
        let number = u32::try_from(number).map_err(|_| line.error("line is too large"))?;
        let total = line.field("total")?;
        let counts =
            vec![("in".to_owned(), total.field("in")?.count()?), ("out".to_owned(), total.field("out")?.count()?)];
        payload.intervals.push(RawInterval {
            line: Some(number),
            key: format!("{number}/{}", key_of(&start)),
            start,
            counts,
        });
    }
    Ok(payload)
}
