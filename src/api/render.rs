//! A hand-written JSON writer for result pages: about four times faster than serializing row structs
//! with serde (shared/notes/ceilings.md), and byte-for-byte the same JSON.

use std::collections::HashMap;

use crate::domain::catalog::Catalog;
use crate::domain::keys::StoreKey;
use crate::domain::reads::RowsPage;
use crate::domain::time::LocalMinuteWriter;

/// Which endpoint a page is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// in, out and in-out per store and minute.
    Visits,
    /// People inside per store and minute.
    Occupancy,
}

impl Metric {
    /// Its endpoint's name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Visits => "visits",
            Metric::Occupancy => "occupancy",
        }
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// Writes a page as the API's JSON, minutes in each store's local time; hand-written because it is
/// the hot path (one pass, no intermediate values).
pub fn page(metric: Metric, catalog: &Catalog, page: &RowsPage, next: Option<&str>, previous: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + page.rows.len() * 120);
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"{\"count\":");
    out.extend_from_slice(number.format(page.count).as_bytes());
    for (name, link) in [("next", next), ("previous", previous)] {
        out.extend_from_slice(format!(",\"{name}\":").as_bytes());
        match link {
            Some(link) => out.extend_from_slice(json_string(link).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"results\":[");
    // Per store: its code as a JSON string and a minute writer in its time zone. Rows come grouped by
    // store, so the store changes rarely: looked up only then.
    let mut stores: Vec<(StoreKey, String, LocalMinuteWriter)> = Vec::new();
    let mut current = 0;
    for (index, row) in page.rows.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        if stores.get(current).is_none_or(|(store, ..)| *store != row.store) {
            current = stores.iter().position(|(store, ..)| *store == row.store).unwrap_or_else(|| {
                let store = catalog.store(row.store).expect("rows belong to catalogued stores");
                stores.push((row.store, json_string(store.code.as_str()), LocalMinuteWriter::new(&store.timezone)));
                stores.len() - 1
            });
        }
        let (_, code, minutes) = &mut stores[current];
        out.extend_from_slice(b"{\"store_code\":");
        out.extend_from_slice(code.as_bytes());
        match metric {
            Metric::Visits => {
                out.extend_from_slice(b",\"in_metric\":");
                out.extend_from_slice(number.format(row.entries).as_bytes());
                out.extend_from_slice(b",\"out_metric\":");
                out.extend_from_slice(number.format(row.exits).as_bytes());
                out.extend_from_slice(b",\"diff_metric\":");
                out.extend_from_slice(number.format(row.entries - row.exits).as_bytes());
            }
            Metric::Occupancy => {
                out.extend_from_slice(b",\"occupancy_metric\":");
                out.extend_from_slice(number.format(row.occupancy).as_bytes());
            }
        }
        out.extend_from_slice(b",\"minute\":\"");
        out.extend_from_slice(&minutes.render(row.minute));
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// A value of a row written by [`Table`].
#[derive(Clone, Debug)]
pub enum Field<'a> {
    /// A string.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A local time as [`LocalMinuteWriter`] or [`local_instant`] writes it: nothing to escape.
    Time(&'a [u8]),
    /// JSON `null`, an empty CSV field.
    Null,
}

/// How a response's rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The API's JSON page.
    Json,
    /// Every row as CSV, a header of the JSON keys first.
    Csv,
}

/// Rows written one by one as JSON objects (of a page's `results`) or CSV records.
pub struct Table {
    format: Format,
    out: Vec<u8>,
    rows: usize,
    number: itoa::Buffer,
}

impl Table {
    /// A JSON page's start, up to its `results` array, or nothing for CSV (the header comes with the
    /// first row, or from [`Table::header`]).
    pub fn new(format: Format, count: u64, next: Option<&str>, previous: Option<&str>) -> Table {
        let mut out = Vec::with_capacity(4096);
        if format == Format::Json {
            out.extend_from_slice(format!("{{\"count\":{count}").as_bytes());
            for (name, link) in [("next", next), ("previous", previous)] {
                out.extend_from_slice(format!(",\"{name}\":").as_bytes());
                match link {
                    Some(link) => out.extend_from_slice(json_string(link).as_bytes()),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.extend_from_slice(b",\"results\":[");
        }
        Table { format, out, rows: 0, number: itoa::Buffer::new() }
    }

    /// A CSV body's header row of `names`, for an export that may have no rows.
    pub fn header(&mut self, names: &[&str]) {
        if self.format == Format::Csv {
            self.out.extend_from_slice(names.join(",").as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends one row; for CSV, the fields' names are the header's, in order.
    pub fn row(&mut self, fields: &[(&str, Field<'_>)]) {
        match self.format {
            Format::Json => {
                if self.rows > 0 {
                    self.out.push(b',');
                }
                self.out.push(b'{');
                for (index, (name, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        self.out.push(b',');
                    }
                    self.out.push(b'"');
                    self.out.extend_from_slice(name.as_bytes());
                    self.out.extend_from_slice(b"\":");
                    self.value(value);
                }
                self.out.push(b'}');
            }
            Format::Csv => {
                for (index, (_, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        self.out.push(b',');
                    }
                    self.value(value);
                }
                self.out.extend_from_slice(b"\r\n");
            }
        }
        self.rows += 1;
    }

    fn value(&mut self, value: &Field<'_>) {
        match (value, self.format) {
            (Field::Int(n), _) => self.out.extend_from_slice(self.number.format(*n).as_bytes()),
            (Field::Float(x), _) => self.out.extend_from_slice(format!("{x:?}").as_bytes()),
            (Field::Time(text), Format::Json) => {
                self.out.push(b'"');
                self.out.extend_from_slice(text);
                self.out.push(b'"');
            }
            (Field::Time(text), Format::Csv) => self.out.extend_from_slice(text),
            (Field::Text(text), Format::Json) => self.out.extend_from_slice(json_string(text).as_bytes()),
            (Field::Text(text), Format::Csv) => csv_text(&mut self.out, text),
            (Field::Null, Format::Json) => self.out.extend_from_slice(b"null"),
            (Field::Null, Format::Csv) => {}
        }
    }

    /// The bytes written so far, leaving the table empty: a chunk of a streamed CSV body.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The whole body: for JSON, the page closed.
    pub fn finish(mut self) -> Vec<u8> {
        if self.format == Format::Json {
            self.out.extend_from_slice(b"]}");
        }
        self.out
    }
}

/// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
fn csv_text(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// An instant in `timezone` as `2023-10-26T15:06:07+03:00`.
pub fn local_instant(instant: jiff::Timestamp, timezone: &jiff::tz::TimeZone) -> String {
    instant.to_zoned(timezone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The names of the fields of `metric`'s rows: bucketed occupancy rows also carry the bucket's peak.
pub fn metric_columns(metric: Metric, bucketed: bool) -> &'static [&'static str] {
    match (metric, bucketed) {
        (Metric::Visits, _) => &["store_code", "in_metric", "out_metric", "diff_metric", "minute"],
        (Metric::Occupancy, false) => &["store_code", "occupancy_metric", "minute"],
        (Metric::Occupancy, true) => &["store_code", "occupancy_metric", "max_occupancy_metric", "minute"],
    }
}

/// Per store of a catalog: its code and a writer of minutes in its zone.
pub struct StoreWriters<'a> {
    catalog: &'a Catalog,
    stores: HashMap<StoreKey, (&'a str, LocalMinuteWriter<'a>)>,
}

impl<'a> StoreWriters<'a> {
    /// Writers for the stores of `catalog`.
    pub fn new(catalog: &'a Catalog) -> Self {
        StoreWriters { catalog, stores: HashMap::new() }
    }

    /// The code of `store` and `minute` in its local time.
    pub fn code_and_minute(&mut self, store: StoreKey, minute: crate::domain::Minute) -> (&'a str, [u8; 25]) {
        let catalog = self.catalog;
        let (code, writer) = self.stores.entry(store).or_insert_with(|| {
            let store = catalog.store(store).expect("rows belong to catalogued stores");
            (store.code.as_str(), LocalMinuteWriter::new(&store.timezone))
        });
        (code, writer.render(minute))
    }
}

/// Appends a minute row of `metric` to `table`.
pub fn minute_row(
    table: &mut Table,
    writers: &mut StoreWriters<'_>,
    metric: Metric,
    row: &crate::domain::reads::MinuteRow,
) {
    let (code, minute) = writers.code_and_minute(row.store, row.minute);
    match metric {
        Metric::Visits => visits_row(table, code, row.entries, row.exits, &minute),
        Metric::Occupancy => table.row(&[
            ("store_code", Field::Text(code)),
            ("occupancy_metric", Field::Int(row.occupancy)),
            ("minute", Field::Time(&minute)),
        ]),
    }
}

/// A visits row: the same keys for a minute and a bucket.
fn visits_row(table: &mut Table, code: &str, entries: i64, exits: i64, minute: &[u8]) {
    table.row(&[
        ("store_code", Field::Text(code)),
        ("in_metric", Field::Int(entries)),
        ("out_metric", Field::Int(exits)),
        ("diff_metric", Field::Int(entries - exits)),
        ("minute", Field::Time(minute)),
    ])
}

/// Appends a bucket row of `metric` to `table`.
pub fn bucket_row(
    table: &mut Table,
    writers: &mut StoreWriters<'_>,
    metric: Metric,
    row: &crate::domain::buckets::BucketRow,
) {
    let (code, minute) = writers.code_and_minute(row.store, row.start);
    let totals = &row.totals;
    match metric {
        Metric::Visits => visits_row(table, code, totals.entries, totals.exits, &minute),
        Metric::Occupancy => table.row(&[
            ("store_code", Field::Text(code)),
            ("occupancy_metric", Field::Int(totals.last_occupancy)),
            ("max_occupancy_metric", Field::Int(totals.peak_occupancy)),
            ("minute", Field::Time(&minute)),
        ]),
    }
}
