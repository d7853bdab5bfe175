//! How every `list` command prints: aligned text columns for people, or one JSON array for programs.

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use serde_json::Value;

/// Instants as the CLI prints them, in text and JSON alike: UTC to the second.
pub fn instant(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// How a `list` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns with a header.
    Text,
    /// One JSON array of objects with snake_case keys.
    Json,
}

/// The options of every `list` command.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// text (aligned columns) or json (an array of objects with snake_case keys).
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// A listing: its column headers and, per item, the cells of its text line and its JSON object (the
/// two are built side by side so a column cannot be missing from either).
pub struct Listing {
    columns: &'static [&'static str],
    items: Vec<(Vec<String>, Value)>,
}

impl Listing {
    /// An empty listing with these column headers.
    pub fn new(columns: &'static [&'static str]) -> Listing {
        Listing { columns, items: Vec::new() }
    }

    /// Adds an item: one cell per column, and its JSON object.
    pub fn push(&mut self, cells: Vec<String>, json: Value) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.items.push((cells, json));
    }

    /// Prints the listing to stdout.
    pub fn print(self, format: ListFormat) {
        print!("{}", self.render(format));
    }

    fn render(self, format: ListFormat) -> String {
        match format {
            ListFormat::Json => {
                let array = Value::Array(self.items.into_iter().map(|(_, json)| json).collect());
                format!("{array}\n")
            }
            ListFormat::Text => {
                // Each column as wide as its widest cell, so long names cannot shift the next column.
                let mut widths: Vec<usize> = self.columns.iter().map(|column| column.chars().count()).collect();
                for (cells, _) in &self.items {
                    for (width, cell) in widths.iter_mut().zip(cells) {
                        *width = (*width).max(cell.chars().count());
                    }
                }
                let line = |cells: &mut dyn Iterator<Item = &str>| {
                    let padded: Vec<String> =
                        cells.zip(&widths).map(|(cell, &width)| format!("{cell:<width$}")).collect();
                    format!("{}\n", padded.join("  ").trim_end())
                };
                let mut text = line(&mut self.columns.iter().copied());
                for (cells, _) in &self.items {
                    text.push_str(&line(&mut cells.iter().map(String::as_str)));
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut listing = Listing::new(&["code", "name", "reset"]);
        listing.push(vec!["1".into(), "a rather long store name".into(), "04:00".into()], Value::Null);
        listing.push(vec!["116500".into(), "Ω".into(), "00:00".into()], Value::Null);
        let text = listing.render(ListFormat::Text);
        let starts: Vec<Option<usize>> =
            text.lines().map(|line| line.char_indices().position(|(_, c)| c == ':').map(|i| i - 2)).collect();
        assert_eq!(starts[1], starts[2], "{text}");
        assert_eq!(text.lines().next().unwrap().find("reset").unwrap(), starts[1].unwrap(), "{text}");
        assert!(text.lines().all(|line| !line.ends_with(' ')), "{text:?}");
    }
}
