//! Parsing and validating count bins from NDJSON and CSV, then resolving them against the catalog.
//! A file is accepted whole or not at all: the first bad record rejects it, named by its line.

use std::borrow::Cow;

use serde::Deserialize;

use crate::domain::{Counts, Minute};
use crate::storage::{Bin, Catalog};

/// A rejected record: its 1-based line number and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RecordError {
    pub line: usize,
    pub message: String,
}

/// A parsed record, not yet checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub device_id: String,
    pub minute: Minute,
    pub counts: Counts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    /// The format of a file by its name; `-` (stdin) is NDJSON.
    pub fn of_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if path == "-" || lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
            Some(Format::Ndjson)
        } else if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

pub fn parse(format: Format, text: &str) -> Result<Vec<Record>, RecordError> {
    match format {
        Format::Ndjson => parse_ndjson(text),
        Format::Csv => parse_csv(text),
    }
}

#[derive(Deserialize)]
struct JsonBin<'a> {
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    #[serde(borrow)]
    minute: Cow<'a, str>,
    #[serde(rename = "in")]
    entries: i64,
    #[serde(rename = "out")]
    exits: i64,
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

/// One JSON object per line; blank lines are skipped.
pub fn parse_ndjson(text: &str) -> Result<Vec<Record>, RecordError> {
    let mut minutes = MinuteParser::default();
    let mut records = Vec::with_capacity(text.len() / 64);
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fail = |message: String| RecordError { line: line_number, message };
        let bin: JsonBin = serde_json::from_str(line).map_err(|e| fail(format!("malformed record: {e}")))?;
        let minute = minutes.parse(&bin.minute).map_err(fail)?;
        records.push(record(line_number, &bin.device_id, minute, bin.entries, bin.exits).map_err(fail)?);
    }
    Ok(records)
}

/// A header `device_id,minute,in,out`, then one bin per row.
pub fn parse_csv(text: &str) -> Result<Vec<Record>, RecordError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header_error = || RecordError { line: 1, message: "the header must be device_id,minute,in,out".into() };
    let headers = reader.headers().map_err(|_| header_error())?;
    if headers.iter().map(str::trim).ne(["device_id", "minute", "in", "out"]) {
        return Err(header_error());
    }
    let mut minutes = MinuteParser::default();
    let mut records = Vec::with_capacity(text.len() / 40);
    let mut row = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize;
        let fail = |message: String| RecordError { line, message };
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(fail(format!("malformed row: {error}"))),
        }
        let line = row.position().map_or(line, |p| p.line() as usize);
        let fail = |message: String| RecordError { line, message };
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

/// Resolves records to bins of known devices.
pub fn resolve(catalog: &Catalog, records: &[Record]) -> Result<Vec<Bin>, RecordError> {
    records
        .iter()
        .map(|record| {
            let device = catalog.device_by_id(&record.device_id).ok_or_else(|| RecordError {
                line: record.line,
                message: format!("unknown device {:?}", record.device_id),
            })?;
            Ok(Bin { device: device.key, minute: record.minute, counts: record.counts })
        })
        .collect()
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
            ("{\"device_id\":\"a\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":1}", "malformed"),
            ("not json", "malformed"),
            ("{\"device_id\":\"a\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":1.5,\"out\":0}", "malformed"),
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
    fn formats_follow_the_file_name() {
        assert_eq!(Format::of_path("-"), Some(Format::Ndjson));
        assert_eq!(Format::of_path("a.JSONL"), Some(Format::Ndjson));
        assert_eq!(Format::of_path("a.csv"), Some(Format::Csv));
        assert_eq!(Format::of_path("a.txt"), None);
    }
}
