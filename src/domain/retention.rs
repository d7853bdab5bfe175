//! Retention: which published minute data a prune removes, and what it removed.
//!
//! A prune removes whole occupancy periods (store-days), never part of one: a period's occupancy is a
//! running count from its reset, so cutting into it would change the values of the minutes kept, and
//! its rollup rows and row count go with its bins, so `check` still finds the rollups equal to the bins.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;

use crate::domain::Minute;
use crate::domain::catalog::{Catalog, Store};
use crate::domain::keys::StoreKey;
use crate::domain::time::parse_instant;

/// Up to where a prune removes published minute data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneBefore {
    /// Every store's occupancy periods of local dates before this one.
    Date(Date),
    /// Every occupancy period that ends at or before this instant; the period holding it is kept.
    Instant(Timestamp),
}

impl PruneBefore {
    /// `2024-01-31` (a local date of each store) or a datetime (`2024-01-31T12:00:00Z`, UTC unless it
    /// has an offset).
    pub fn parse(text: &str) -> Result<PruneBefore, String> {
        let text = text.trim();
        // jiff reads a date out of a datetime too: only a bare date is one.
        if !text.contains(['T', 't', ' ', ':'])
            && let Ok(date) = text.parse::<Date>()
        {
            return Ok(PruneBefore::Date(date));
        }
        parse_instant(text)
            .map(PruneBefore::Instant)
            .map_err(|_| format!("{text:?} is neither a date (2024-01-31) nor a datetime (2024-01-31T12:00:00Z)"))
    }

    /// The first minute `store` keeps: the start of its first period that is not removed.
    pub fn cutoff(&self, store: &Store) -> Minute {
        let calendar = store.calendar();
        match *self {
            PruneBefore::Date(date) => calendar.period_start(date),
            PruneBefore::Instant(instant) => calendar.period_of(Minute::last_at_or_before(instant)).start,
        }
    }

    /// The cutoff of every store of the catalog.
    pub fn cutoffs(&self, catalog: &Catalog) -> Vec<(StoreKey, Minute)> {
        catalog.stores().iter().map(|store| (store.key, self.cutoff(store))).collect()
    }

    /// Whether this reaches beyond `now`, which would remove data of today or later (refused: a prune
    /// is for old data).
    pub fn is_after(&self, now: Timestamp) -> bool {
        match *self {
            PruneBefore::Date(date) => date > now.to_zoned(jiff::tz::TimeZone::UTC).date(),
            PruneBefore::Instant(instant) => instant > now,
        }
    }
}

impl fmt::Display for PruneBefore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneBefore::Date(date) => write!(f, "local date {date}"),
            PruneBefore::Instant(instant) => write!(f, "{}", instant.strftime("%Y-%m-%dT%H:%M:%SZ")),
        }
    }
}

/// What a prune removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Published (device, minute) bins.
    pub bins: u64,
    /// Rows of the store rollup.
    pub rollup_rows: u64,
    /// Occupancy periods (store-days) that held rollup rows.
    pub periods: u64,
    /// Published occupancy corrections in those periods.
    pub corrections: u64,
    /// Sensors' stored intervals and register readings (each register keeps its last reading before
    /// the cutoff: the baseline of its next count).
    pub sensor_rows: u64,
    /// The first and last minute of the bins removed, if any.
    pub range: Option<(Minute, Minute)>,
}

impl PruneSummary {
    /// Adds the removed bins' first and last minute to the range.
    pub fn extend_range(&mut self, first: Minute, last: Minute) {
        self.range = Some(match self.range {
            Some((a, b)) => (a.min(first), b.max(last)),
            None => (first, last),
        });
    }
}

impl fmt::Display for PruneSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} bins, {} rollup rows in {} store-days and {} occupancy corrections",
            self.bins, self.rollup_rows, self.periods, self.corrections
        )?;
        if self.sensor_rows > 0 {
            write!(f, ", and {} sensor intervals and register readings", self.sensor_rows)?;
        }
        match self.range {
            Some((first, last)) => write!(f, ", minutes {first} to {last}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::domain::{ResetTime, StoreCode};

    fn store(timezone: &str, reset: &str) -> Store {
        Store {
            key: StoreKey(1),
            code: StoreCode::parse("s").unwrap(),
            name: "s".into(),
            timezone: TimeZone::get(timezone).unwrap(),
            reset: reset.parse::<ResetTime>().unwrap(),
            hours: None,
            capacity: None,
        }
    }

    fn minute(text: &str) -> Minute {
        Minute::parse_bin_minute(text).unwrap()
    }

    #[test]
    fn a_date_cuts_at_the_start_of_that_local_day_s_period() {
        let before = PruneBefore::parse("2023-10-26").unwrap();
        assert_eq!(before, PruneBefore::Date("2023-10-26".parse().unwrap()));
        assert_eq!(before.cutoff(&store("UTC", "00:00")), minute("2023-10-26T00:00:00Z"));
        assert_eq!(before.cutoff(&store("Europe/Athens", "00:00")), minute("2023-10-25T21:00:00Z"));
        // With a reset at 04:00, the night before it belongs to the previous day and goes with it.
        assert_eq!(before.cutoff(&store("Europe/Athens", "04:00")), minute("2023-10-26T01:00:00Z"));
    }

    #[test]
    fn an_instant_keeps_the_period_holding_it() {
        let utc = store("UTC", "00:00");
        let mid_day = PruneBefore::parse("2023-10-26T12:30:00Z").unwrap();
        assert_eq!(mid_day.cutoff(&utc), minute("2023-10-26T00:00:00Z"));
        let at_reset = PruneBefore::parse("2023-10-26T00:00:00Z").unwrap();
        assert_eq!(at_reset.cutoff(&utc), minute("2023-10-26T00:00:00Z"));
        assert!(PruneBefore::parse("yesterday").unwrap_err().contains("\"yesterday\""));
    }

    #[test]
    fn only_the_past_can_be_pruned() {
        let now: Timestamp = "2023-10-26T12:00:00Z".parse().unwrap();
        assert!(!PruneBefore::parse("2023-10-26").unwrap().is_after(now));
        assert!(PruneBefore::parse("2023-10-27").unwrap().is_after(now));
        assert!(PruneBefore::parse("2023-10-26T12:00:01Z").unwrap().is_after(now));
    }

    #[test]
    fn a_summary_says_what_it_removed() {
        let mut summary = PruneSummary { bins: 3, rollup_rows: 2, periods: 1, ..Default::default() };
        assert_eq!(summary.to_string(), "removed 3 bins, 2 rollup rows in 1 store-days and 0 occupancy corrections");
        summary.sensor_rows = 4;
        assert!(summary.to_string().ends_with(", and 4 sensor intervals and register readings"));
        summary.extend_range(minute("2023-10-25T10:00:00Z"), minute("2023-10-25T11:00:00Z"));
        summary.extend_range(minute("2023-10-24T10:00:00Z"), minute("2023-10-25T09:00:00Z"));
        assert!(summary.to_string().ends_with(", minutes 2023-10-24T10:00:00Z to 2023-10-25T11:00:00Z"));
    }
}
