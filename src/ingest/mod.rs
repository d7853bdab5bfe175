//! Ingestion: parsing and validating count bins from NDJSON, CSV and request or message bodies, and
//! the sources that feed them to the one [`service`]: files ([`files`]), HTTP (`api::ingest`) and MQTT
//! ([`mqtt`]). A file or batch is accepted whole or not at all: the first bad record rejects it, named by
//! its line or index.

pub mod files;
pub mod mqtt;
pub mod service;
pub mod vendors;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::{Counts, Minute};

/// A rejected record: its 1-based line number (and column, for malformed JSON) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.map(|column| format!(", column {column}")).unwrap_or_default())]
pub struct RecordError {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, where the JSON parser stopped.
    pub column: Option<usize>,
    /// What was wrong.
    pub message: String,
}

/// What was wrong with one JSON bin, and the column within it where the parser stopped if it was
/// malformed.
struct JsonError {
    column: Option<usize>,
    message: String,
}

impl From<String> for JsonError {
    fn from(message: String) -> JsonError {
        JsonError { column: None, message }
    }
}

/// serde_json's message without the "at line L column C" it appends: the caller reports one position,
/// its own line and this error's column.
fn syntax_error(context: &str, error: &serde_json::Error) -> JsonError {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    JsonError { column: (error.column() > 0).then_some(error.column()), message: format!("{context}: {message}") }
}

/// A parsed record, not yet checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it was read (line, or index in a batch), for errors.
    pub line: usize,
    /// The device as named by the source.
    pub device_id: String,
    /// The UTC minute counted.
    pub minute: Minute,
    /// In and out in that minute.
    pub counts: Counts,
}

/// A file format of `footfall ingest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`.ndjson`, `.jsonl`).
    Ndjson,
    /// A JSON array of bins or one bin, as an HTTP request body (`.json`).
    Json,
    /// `device_id,minute,in,out` with a header line (`.csv`).
    Csv,
}

impl Format {
    /// The format of a file by its name (stdin, `-`, has none: its format is given).
    pub fn of_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
            Some(Format::Ndjson)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// Parses a whole file; the first bad record rejects it.
pub fn parse(format: Format, text: &str) -> Result<Vec<Record>, RecordError> {
    match format {
        Format::Ndjson => parse_ndjson(text),
        Format::Json => parse_json(text),
        Format::Csv => parse_csv(text),
    }
}

/// The fields of one JSON bin, each kept raw so that an error can name the field. Other fields are ignored.
#[derive(Deserialize)]
struct JsonFields<'a> {
    #[serde(borrow)]
    device_id: Option<&'a RawValue>,
    #[serde(borrow)]
    minute: Option<&'a RawValue>,
    #[serde(borrow, rename = "in")]
    entries: Option<&'a RawValue>,
    #[serde(borrow, rename = "out")]
    exits: Option<&'a RawValue>,
}

/// Remembers the last minute parsed: consecutive records usually share it.
#[derive(Default)]
struct MinuteParser {
    last: Option<(String, Minute)>,
}

impl MinuteParser {
    fn parse(&mut self, text: &str) -> Result<Minute, String> {
        if let Some((last_text, minute)) = &self.last
            && last_text == text
        {
            return Ok(*minute);
        }
        let minute = Minute::parse_bin_minute(text).map_err(|e| format!("minute: {e}"))?;
        self.last = Some((text.to_owned(), minute));
        Ok(minute)
    }
}

fn count(name: &str, value: i64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| {
        if value < 0 {
            format!("{name}: must not be negative, got {value}")
        } else {
            format!("{name}: {value} is too large")
        }
    })
}

fn record(line: usize, device_id: &str, minute: Minute, entries: i64, exits: i64) -> Result<Record, String> {
    Ok(Record {
        line,
        device_id: device_id.to_owned(),
        minute,
        counts: Counts { entries: count("in", entries)?, exits: count("out", exits)? },
    })
}

/// Parses one JSON bin object; errors name the field.
fn json_record(line: usize, json: &str, minutes: &mut MinuteParser) -> Result<Record, JsonError> {
    let fields: JsonFields = serde_json::from_str(json)
        .map_err(|e| syntax_error("not a JSON object with device_id, minute, in, out", &e))?;
    fn required<'a>(name: &str, value: Option<&'a RawValue>) -> Result<&'a str, String> {
        value.map(RawValue::get).ok_or_else(|| format!("{name}: missing"))
    }
    let text = |name: &str, value| -> Result<Cow<'_, str>, String> {
        serde_json::from_str(required(name, value)?).map_err(|_| format!("{name}: must be a string"))
    };
    let integer = |name: &str, value| -> Result<i64, String> {
        let raw = required(name, value)?;
        serde_json::from_str(raw).map_err(|_| format!("{name}: must be an integer, got {raw}"))
    };
    let device_id = text("device_id", fields.device_id)?;
    let minute = minutes.parse(&text("minute", fields.minute)?)?;
    Ok(record(line, &device_id, minute, integer("in", fields.entries)?, integer("out", fields.exits)?)?)
}

/// One JSON object per line; blank lines are skipped.
pub fn parse_ndjson(text: &str) -> Result<Vec<Record>, RecordError> {
    let mut minutes = MinuteParser::default();
    let mut records = Vec::with_capacity(text.len() / 64);
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_number = index + 1;
        let record = json_record(line_number, line, &mut minutes);
        records.push(record.map_err(|JsonError { column, message }| RecordError {
            line: line_number,
            column,
            message,
        })?);
    }
    Ok(records)
}

/// A JSON array of bins, or one bin; each record is named by the line it starts on.
pub fn parse_json(text: &str) -> Result<Vec<Record>, RecordError> {
    let items = json_items(text).map_err(|error| {
        let JsonError { column, message } = syntax_error("not a JSON array of bins or one bin", &error);
        RecordError { line: error.line().max(1), column, message }
    })?;
    let mut minutes = MinuteParser::default();
    let (mut counted_to, mut line) = (0, 1);
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        // Each item is a slice of `text`: its offset gives its line, counted on from the previous one.
        let offset = item.as_ptr() as usize - text.as_ptr() as usize;
        line += text[counted_to..offset].matches('\n').count();
        counted_to = offset;
        // The whole text parsed as JSON already, so an item's error is about its fields, not a column.
        let record = json_record(line, item, &mut minutes).map_err(|JsonError { message, .. }| RecordError {
            line,
            column: None,
            message,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// The bins of a JSON body: the items of an array, or the body itself as one bin. The body is parsed
/// whole first, so a syntax error has its position in the body.
fn json_items(body: &str) -> Result<Vec<&str>, serde_json::Error> {
    if body.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(body)?;
        Ok(items.into_iter().map(RawValue::get).collect())
    } else {
        let item: &RawValue = serde_json::from_str(body)?;
        Ok(vec![item.get()])
    }
}

/// A rejected record of a request body: its 0-based index in the batch and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bins[{index}]: {message}")]
pub struct BatchError {
    /// The record's index, from 0.
    pub index: usize,
    /// What was wrong.
    pub message: String,
}

/// A request or message body: a JSON array of bins, a single bin object, or (with `ndjson`) one bin per
/// line. Records are numbered by their 0-based index in the batch.
pub fn parse_batch(body: &str, ndjson: bool) -> Result<Vec<Record>, BatchError> {
    let mut minutes = MinuteParser::default();
    let items: Vec<&str> = if ndjson {
        body.lines().filter(|line| !line.trim().is_empty()).collect()
    } else {
        json_items(body).map_err(|e| BatchError {
            index: 0,
            message: format!("the body is not a JSON array of bins or one bin: {e}"),
        })?
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            json_record(index, item, &mut minutes).map_err(|JsonError { column, message }| BatchError {
                index,
                message: match column {
                    Some(column) => format!("column {column}: {message}"),
                    None => message,
                },
            })
        })
        .collect()
}

/// A header `device_id,minute,in,out`, then one bin per row.
pub fn parse_csv(text: &str) -> Result<Vec<Record>, RecordError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header_error =
        || RecordError { line: 1, column: None, message: "the header must be device_id,minute,in,out".into() };
    let headers = reader.headers().map_err(|_| header_error())?;
    if headers.iter().map(str::trim).ne(["device_id", "minute", "in", "out"]) {
        return Err(header_error());
    }
    let mut minutes = MinuteParser::default();
    let mut records = Vec::with_capacity(text.len() / 40);
    let mut row = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize;
        let fail = |message: String| RecordError { line, column: None, message };
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(fail(format!("malformed row: {error}"))),
        }
        let line = row.position().map_or(line, |p| p.line() as usize);
        let fail = |message: String| RecordError { line, column: None, message };
        if row.len() != 4 {
            return Err(fail(format!("expected 4 fields, found {}", row.len())));
        }
        let integer = |name: &str, field: &str| {
            field.trim().parse::<i64>().map_err(|_| format!("{name}: {field:?} is not an integer"))
        };
        let minute = minutes.parse(row[1].trim()).map_err(fail)?;
        let entries = integer("in", &row[2]).map_err(fail)?;
        let exits = integer("out", &row[3]).map_err(fail)?;
        records.push(record(line, row[0].trim(), minute, entries, exits).map_err(fail)?);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_parses_and_names_bad_lines() {
        let good = "{\"device_id\":\"cnt-1\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":3,\"out\":0}\n\n{\"device_id\":\"cnt-2\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":0,\"out\":1,\"extra\":true}\n";
        let records = parse_ndjson(good).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].line, 3);
        assert_eq!(records[0].counts, Counts { entries: 3, exits: 0 });

        let cases = [
            ("{\"device_id\":\"a\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":-1,\"out\":0}", "negative"),
            ("{\"device_id\":\"a\",\"minute\":\"2023-10-26T12:06:30Z\",\"in\":1,\"out\":0}", "seconds"),
            ("{\"device_id\":\"a\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":1}", "out: missing"),
            ("not json", "not a JSON object"),
            (
                "{\"device_id\":\"a\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":1.5,\"out\":0}",
                "in: must be an integer",
            ),
            ("{\"device_id\":7,\"minute\":\"2023-10-26T12:06:00Z\",\"in\":1,\"out\":0}", "device_id: must be a string"),
        ];
        for (line, expected) in cases {
            let text = format!("{}\n{line}\n", good.lines().next().unwrap());
            let error = parse_ndjson(&text).unwrap_err();
            assert_eq!(error.line, 2, "{line}");
            assert!(error.to_string().contains(expected), "{error} should mention {expected}");
        }
    }

    #[test]
    fn csv_needs_its_header_and_counts_lines_from_it() {
        let records = parse_csv("device_id,minute,in,out\ncnt-1,2023-10-26T12:06:00Z,3,0\n").unwrap();
        assert_eq!(records[0].line, 2);
        assert_eq!(records[0].device_id, "cnt-1");
        assert_eq!(parse_csv("a,b,c,d\n").unwrap_err().line, 1);
        let error =
            parse_csv("device_id,minute,in,out\ncnt-1,2023-10-26T12:06:00Z,3,0\ncnt-1,2023-10-26T12:07:00Z,x,0\n")
                .unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.message.contains("in"));
    }

    #[test]
    fn batches_are_arrays_objects_or_ndjson_and_errors_name_index_and_field() {
        let bin = |minute: &str, entries: i64| {
            format!("{{\"device_id\":\"d\",\"minute\":\"{minute}\",\"in\":{entries},\"out\":0}}")
        };
        let (a, b) = (bin("2023-10-26T12:06:00Z", 1), bin("2023-10-26T12:07:00Z", 2));
        assert_eq!(parse_batch(&format!("[{a},{b}]"), false).unwrap().len(), 2);
        assert_eq!(parse_batch(&a, false).unwrap().len(), 1);
        assert_eq!(parse_batch(&format!("{a}\n\n{b}\n"), true).unwrap().len(), 2);
        let error = parse_batch(&format!("[{a},{}]", bin("2023-10-26T12:07:00Z", -2)), false).unwrap_err();
        assert_eq!(error.to_string(), "bins[1]: in: must not be negative, got -2");
        let error = parse_batch(&format!("[{a},{}]", bin("2023-10-26T12:07:05Z", 1)), false).unwrap_err();
        assert!(error.to_string().starts_with("bins[1]: minute:"), "{error}");
        assert!(parse_batch("[1,", false).is_err());
    }

    #[test]
    fn json_files_name_records_by_the_line_they_start_on_and_syntax_errors_by_one_position() {
        let bin = |minute: &str, entries: i64| {
            format!("{{\"device_id\":\"d\",\"minute\":\"2023-10-26T12:{minute}:00Z\",\"in\":{entries},\"out\":0}}")
        };
        let records = parse_json(&format!("[\n  {},\n\n  {}]", bin("06", 1), bin("07", 2))).unwrap();
        assert_eq!(records.iter().map(|record| record.line).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(parse_json(&format!("\n\n{}\n", bin("06", 1))).unwrap()[0].line, 3, "one object");
        let error = parse_json(&format!("[{},\n{}]", bin("06", 1), bin("07", -2))).unwrap_err();
        assert_eq!(error.to_string(), "line 2: in: must not be negative, got -2");
        let error = parse_json("{\n  \"device_id\": \"d\",\n  \"in\": 1").unwrap_err();
        assert_eq!((error.line, error.column), (3, Some(9)), "{error}");
        assert!(
            error.to_string().starts_with("line 3, column 9: ") && !error.to_string().contains(" at line"),
            "{error}"
        );
        let error = parse_ndjson(&format!("{}\n{}", bin("06", 1), &bin("07", 1)[..30])).unwrap_err();
        assert!(
            error.to_string().starts_with("line 2, column 30: ") && !error.to_string().contains(" at line"),
            "{error}"
        );
    }

    #[test]
    fn formats_follow_the_file_name() {
        assert_eq!(Format::of_path("-"), None);
        assert_eq!(Format::of_path("a.json"), Some(Format::Json));
        assert_eq!(Format::of_path("a.JSONL"), Some(Format::Ndjson));
        assert_eq!(Format::of_path("a.csv"), Some(Format::Csv));
        assert_eq!(Format::of_path("a.txt"), None);
    }
}
