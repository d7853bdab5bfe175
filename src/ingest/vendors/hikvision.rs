//! Hikvision ISAPI `EventNotificationAlert` with `eventType` PeopleCounting, as XML, as JSON, or as the
//! part of a multipart body holding one of them. `timeRange` statistics are interval counts at
//! `TimeRange/startTime`; `realTime` statistics are running totals, read as cumulative registers named
//! `enter` and `exit`. Other events (heartbeats, video loss) store nothing.

use quick_xml::events::Event;
use serde_json::{Map, Value};

use super::json::{Node, key_of};
use crate::domain::sensors::{Payload, RawInterval, RawReading};

/// Parses a body by its content type (or, without one, by its first character).
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Payload, String> {
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_owned())
            .ok_or("multipart body without a boundary")?;
        // The boundary's case as sent: take it from the body's first line.
        let part = multipart_part(body, &boundary)?;
        return parse_document(part);
    }
    parse_document(body)
}

fn parse_document(body: &[u8]) -> Result<Payload, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let value = if trimmed.starts_with('<') { xml_to_value(trimmed)? } else { super::json::parse(trimmed.as_bytes())? };
    alert(&value)
}

/// The first part of a multipart body that holds XML or JSON (image parts are skipped).
fn multipart_part<'a>(body: &'a [u8], boundary: &str) -> Result<&'a [u8], String> {
    let delimiter = format!("--{boundary}");
    let lower: Vec<u8> = body.to_ascii_lowercase();
    let positions: Vec<usize> = find_all(&lower, delimiter.as_bytes());
    for window in positions.windows(2) {
        let part = &body[window[0] + delimiter.len()..window[1]];
        let Some(split) = find_all(part, b"\r\n\r\n").first().copied() else { continue };
        let content = part[split + 4..].strip_suffix(b"\r\n").unwrap_or(&part[split + 4..]);
        let start = content.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(start) = start
            && matches!(content[start], b'<' | b'{')
        {
            return Ok(content);
        }
    }
    Err("multipart body: no part holds an XML or JSON EventNotificationAlert".into())
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len()).filter(|&i| &haystack[i..i + needle.len()] == needle).collect()
}

/// An XML document as JSON: `{root: {child: "text", ...}}`, repeated elements as arrays, namespaces and
/// attributes dropped.
fn xml_to_value(text: &str) -> Result<Value, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<(String, Map<String, Value>, String)> = vec![(String::new(), Map::new(), String::new())];
    loop {
        match reader.read_event().map_err(|e| format!("the body is not XML: {e}"))? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                stack.push((name, Map::new(), String::new()));
            }
            Event::Empty(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                insert(&mut stack.last_mut().expect("root").1, name, Value::String(String::new()));
            }
            Event::Text(text) => {
                let decoded = text.decode().map_err(|e| format!("the body is not XML: {e}"))?;
                stack.last_mut().expect("root").2.push_str(&decoded);
            }
            Event::GeneralRef(reference) => {
                let name = String::from_utf8_lossy(&reference).into_owned();
                let resolved = match name.as_str() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                };
                stack.last_mut().expect("root").2.push_str(resolved);
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().expect("balanced");
                let value =
                    if children.is_empty() { Value::String(text.trim().to_owned()) } else { Value::Object(children) };
                let parent = stack.last_mut().ok_or("the body is not XML: unbalanced elements")?;
                insert(&mut parent.1, name, value);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("the body is not XML: an element is not closed".into());
    }
    Ok(Value::Object(stack.pop().expect("root").1))
}

fn insert(map: &mut Map<String, Value>, name: String, value: Value) {
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(name, value);
        }
    }
}

fn alert(value: &Value) -> Result<Payload, String> {
    let root = Node::root(value);
    let alert = root.opt("EventNotificationAlert").unwrap_or(root);
    let mut payload = Payload { serial: alert.field("macAddress")?.text()?, ..Payload::default() };
    let event = alert.field("eventType")?.str()?;
    if !event.eq_ignore_ascii_case("PeopleCounting") {
        return Ok(payload);
    }
    let channel = alert.opt("channelID").map(|c| c.count()).transpose()?.unwrap_or(1);
    let channel = u32::try_from(channel).map_err(|_| alert.error("channelID is too large"))?;
    let counting = alert.field("peopleCounting")?;
    let method = counting.field("statisticalMethods")?;
    let counts = || -> Result<Vec<(String, u64)>, String> {
        let mut counts = vec![
            ("enter".to_owned(), counting.field("enter")?.count()?),
            ("exit".to_owned(), counting.field("exit")?.count()?),
        ];
        if let Some(pass) = counting.opt("pass") {
            counts.push(("pass".to_owned(), pass.count()?));
        }
        Ok(counts)
    };
    match method.str()? {
        "timeRange" => {
            let start = counting.field("TimeRange")?.field("startTime")?.time()?;
            payload.intervals.push(RawInterval {
                line: Some(channel),
                key: format!("{channel}/{}", key_of(&start)),
                start,
                counts: counts()?,
            });
        }
        "realTime" => {
            let at = counting.field("RealTime")?.field("time")?.time()?;
            for (name, value) in counts()? {
                payload.readings.push(RawReading { name, id: None, at, value });
            }
        }
        other => return Err(method.error(format!("unknown statistical method {other:?}"))),
    }
    Ok(payload)
}
