//! Walking a JSON body with the path of every value at hand, so an error names where it is
//! (`logics_data.logics[0].records[2].from: ...`).

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde_json::Value;

use crate::domain::sensors::When;

/// A value owning its path (paths are built as the walk goes down).
pub struct Node<'a> {
    /// The value.
    pub value: &'a Value,
    /// Its path.
    pub path: String,
}

/// Parses a body as JSON.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

impl<'a> Node<'a> {
    /// The root.
    pub fn root(value: &'a Value) -> Node<'a> {
        Node { value, path: String::new() }
    }

    fn child(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) }
    }

    /// An error at this node.
    pub fn error(&self, message: impl std::fmt::Display) -> String {
        if self.path.is_empty() { message.to_string() } else { format!("{}: {message}", self.path) }
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
        object.get(name).filter(|v| !v.is_null()).map(|value| Node { value, path: self.child(name) })
    }

    /// The items of an array.
    pub fn items(&self) -> Result<Vec<Node<'a>>, String> {
        let array = self.value.as_array().ok_or_else(|| self.error("must be an array"))?;
        Ok(array.iter().enumerate().map(|(i, value)| Node { value, path: format!("{}[{i}]", self.path) }).collect())
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
        let parsed = match self.value {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            value => value.as_i64(),
        };
        match parsed {
            Some(n) if n >= 0 => Ok(n as u64),
            Some(n) => Err(self.error(format!("must not be negative, got {n}"))),
            None => Err(self.error(format!("must be a count, got {}", self.value))),
        }
    }

    /// A time: epoch milliseconds (or seconds, below 10^11), RFC 3339 with offset, or a local time.
    pub fn time(&self) -> Result<When, String> {
        match self.value {
            Value::Number(_) => {
                let n = self.int()?;
                let instant =
                    if n.abs() < 100_000_000_000 { Timestamp::from_second(n) } else { Timestamp::from_millisecond(n) };
                instant.map(When::Instant).map_err(|e| self.error(e))
            }
            Value::String(text) => parse_time(text).map_err(|e| self.error(e)),
            other => Err(self.error(format!("must be a time, got {other}"))),
        }
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
