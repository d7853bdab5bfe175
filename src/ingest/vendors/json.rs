//! Walking a JSON body with the path of every value at hand, so an error names where it is
//! (`logics_data.logics[0].records[2].from: ...`).

use std::rc::Rc;

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde_json::Value;

use crate::domain::sensors::When;

/// A value and the way to it from the root. The path is a chain of steps shared with the parent and
/// written out only for an error: a large package is walked without building a string per value.
pub struct Node<'a> {
    /// The value.
    pub value: &'a Value,
    path: Option<Rc<Step<'a>>>,
}

/// One step down from the root: into a field or an array item.
struct Step<'a> {
    parent: Option<Rc<Step<'a>>>,
    segment: Segment<'a>,
}

enum Segment<'a> {
    Field(&'a str),
    Item(usize),
}

/// Parses a body as JSON.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// The path of a chain of steps: `logics_data.logics[0].records[2].from`.
fn path_text(step: &Option<Rc<Step>>) -> String {
    let mut steps = Vec::new();
    let mut next = step.as_deref();
    while let Some(step) = next {
        steps.push(&step.segment);
        next = step.parent.as_deref();
    }
    let mut text = String::new();
    for segment in steps.into_iter().rev() {
        match segment {
            Segment::Field(name) if text.is_empty() => text.push_str(name),
            Segment::Field(name) => {
                text.push('.');
                text.push_str(name);
            }
            Segment::Item(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

impl<'a> Node<'a> {
    /// The root.
    pub fn root(value: &'a Value) -> Node<'a> {
        Node { value, path: None }
    }

    fn down(&self, value: &'a Value, segment: Segment<'a>) -> Node<'a> {
        Node { value, path: Some(Rc::new(Step { parent: self.path.clone(), segment })) }
    }

    /// The path of this value.
    fn path(&self) -> String {
        path_text(&self.path)
    }

    fn child(&self, name: &str) -> String {
        let path = self.path();
        if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
    }

    /// An error at this node.
    pub fn error(&self, message: impl std::fmt::Display) -> String {
        let path = self.path();
        if path.is_empty() { message.to_string() } else { format!("{path}: {message}") }
    }

    /// A field that must be there.
    pub fn field(&self, name: &str) -> Result<Node<'a>, String> {
        self.opt(name).ok_or_else(|| format!("{}: missing", self.child(name)))
    }

    /// The first of several spellings of a field that is there.
    pub fn field_of(&self, names: &[&str]) -> Result<Node<'a>, String> {
        names.iter().find_map(|name| self.opt(name)).ok_or_else(|| format!("{}: missing", self.child(names[0])))
    }

    /// A field that may be missing (or null).
    pub fn opt(&self, name: &str) -> Option<Node<'a>> {
        let object = self.value.as_object()?;
        let (name, value) = object.get_key_value(name)?;
        (!value.is_null()).then(|| self.down(value, Segment::Field(name)))
    }

    /// The items of an array.
    pub fn items(&self) -> Result<Vec<Node<'a>>, String> {
        let array = self.value.as_array().ok_or_else(|| self.error("must be an array"))?;
        Ok(array.iter().enumerate().map(|(index, value)| self.down(value, Segment::Item(index))).collect())
    }

    /// A string.
    pub fn str(&self) -> Result<&'a str, String> {
        self.value.as_str().ok_or_else(|| self.error("must be a string"))
    }

    /// A string, or a number written as one (ids).
    pub fn text(&self) -> Result<String, String> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(self.error("must be a string or a number")),
        }
    }

    /// An integer.
    pub fn int(&self) -> Result<i64, String> {
        self.value.as_i64().ok_or_else(|| self.error(format!("must be an integer, got {}", self.value)))
    }

    /// A count: an integer from 0 (some vendors send it as a string).
    pub fn count(&self) -> Result<u64, String> {
        count_of(self.value).map_err(|e| self.error(e))
    }

    /// A time: epoch milliseconds (or seconds, below 10^11), RFC 3339 with offset, or a local time.
    pub fn time(&self) -> Result<When, String> {
        time_of(self.value).map_err(|e| self.error(e))
    }
}

/// A count: an integer from 0, or one written as a string.
pub fn count_of(value: &Value) -> Result<u64, String> {
    let parsed = match value {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        value => value.as_i64(),
    };
    match parsed {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(n) => Err(format!("must not be negative, got {n}")),
        None => Err(format!("must be a count, got {value}")),
    }
}

/// A time: epoch milliseconds (or seconds, below 10^11), RFC 3339 with offset, or a local time.
pub fn time_of(value: &Value) -> Result<When, String> {
    match value {
        Value::Number(n) => {
            let n = n.as_i64().ok_or_else(|| format!("must be an integer, got {n}"))?;
            let instant =
                if n.abs() < 100_000_000_000 { Timestamp::from_second(n) } else { Timestamp::from_millisecond(n) };
            instant.map(When::Instant).map_err(|e| e.to_string())
        }
        Value::String(text) => parse_time(text),
        other => Err(format!("must be a time, got {other}")),
    }
}

/// Deserializes a typed body, naming the path of what was wrong (`a.b[1].c: ...`) as [`Node`] does.
pub fn typed<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, String> {
    // Tracking the path costs an allocation per field name: it is done only to explain a failure.
    serde_json::from_slice(body).map_err(|_| explain_failure::<T>(body))
}

/// Deserializes a body known to fail again, tracking the path, and says where and why it failed.
fn explain_failure<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> String {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(_) => match deserializer.end() {
            Ok(()) => unreachable!("a body that failed to deserialize deserialized"),
            Err(error) => return format!("the body is not JSON: {error}"),
        },
        Err(error) => error,
    };
    let path = error.path().to_string();
    let inner = error.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return format!("the body is not JSON: {inner}");
    }
    // The path names the place; serde_json's "at line 1 column 4711" would repeat it less legibly.
    let message = inner.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(message, _)| message);
    if path == "." { message.to_owned() } else { format!("{path}: {message}") }
}

/// A count in a typed body ([`count_of`]).
pub struct CountField(pub u64);

impl<'de> serde::Deserialize<'de> for CountField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        count_of(&value).map(CountField).map_err(serde::de::Error::custom)
    }
}

/// A time in a typed body ([`time_of`]).
pub struct TimeField(pub When);

impl<'de> serde::Deserialize<'de> for TimeField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        time_of(&value).map(TimeField).map_err(serde::de::Error::custom)
    }
}

/// What a start contributes to an interval's key: the instant in milliseconds, or the local time.
pub fn key_of(when: &When) -> String {
    match when {
        When::Instant(instant) => instant.as_millisecond().to_string(),
        When::Local(local) => local.to_string(),
    }
}

/// A time as text: with `Z` or an offset (`+02:00`, `+0200`, `-00:00`), an instant; without, a local
/// time (`2024-05-30T20:11:32`, `2022/12/20 18:15:52`).
pub fn parse_time(text: &str) -> Result<When, String> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(When::Instant(instant));
    }
    // `+0000` (no colon) and the odd `-00:00`.
    if let Some((body, sign, offset)) = split_offset(text) {
        let local: DateTime = body.replace('/', "-").parse().map_err(|e| format!("{text:?} is not a time: {e}"))?;
        let hours: i64 = offset[..2].parse().map_err(|_| format!("{text:?}: bad offset"))?;
        let minutes: i64 = offset[offset.len() - 2..].parse().map_err(|_| format!("{text:?}: bad offset"))?;
        let seconds = sign * (hours * 3600 + minutes * 60);
        let offset = jiff::tz::Offset::from_seconds(seconds as i32).map_err(|e| e.to_string())?;
        return offset.to_timestamp(local).map(When::Instant).map_err(|e| e.to_string());
    }
    let local: DateTime = text.replace('/', "-").parse().map_err(|e| format!("{text:?} is not a time: {e}"))?;
    Ok(When::Local(local))
}

fn split_offset(text: &str) -> Option<(&str, i64, &str)> {
    let time_at = text.find(['T', ' '])?;
    let position = text[time_at..].rfind(['+', '-'])? + time_at;
    let offset = &text[position + 1..];
    let valid = (offset.len() == 4 && offset.bytes().all(|b| b.is_ascii_digit()))
        || (offset.len() == 5 && offset.as_bytes()[2] == b':');
    valid.then(|| (&text[..position], if text.as_bytes()[position] == b'-' { -1 } else { 1 }, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_vendor_spelling() {
        let instant = |text: &str| When::Instant(text.parse().unwrap());
        assert_eq!(parse_time("2021-09-23T10:20:00+02:00"), Ok(instant("2021-09-23T08:20:00Z")));
        assert_eq!(parse_time("2019-02-01T12:30:00+0000"), Ok(instant("2019-02-01T12:30:00Z")));
        assert_eq!(parse_time("2026-07-31T23:12:00-00:00"), Ok(instant("2026-07-31T23:12:00Z")));
        assert_eq!(parse_time("2022/12/20 18:15:52"), Ok(When::Local("2022-12-20T18:15:52".parse().unwrap())));
        assert_eq!(parse_time("2020-12-08T13:19:00"), Ok(When::Local("2020-12-08T13:19:00".parse().unwrap())));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn errors_name_the_path() {
        let value: Value = serde_json::from_str(r#"{"a":{"b":[{"c":1},{"c":"x"}]}}"#).unwrap();
        let root = Node::root(&value);
        let items = root.field("a").unwrap().field("b").unwrap().items().unwrap();
        assert_eq!(items[1].field("c").unwrap().int().unwrap_err(), "a.b[1].c: must be an integer, got \"x\"");
        assert_eq!(items[0].field("d").err().unwrap(), "a.b[0].d: missing");
    }
}
