//! Period and page arithmetic: which occupancy periods bins touch, and where a page of a multi-store
//! query starts given the row count of each period.

use std::collections::BTreeSet;

use crate::domain::catalog::Catalog;
use crate::domain::keys::{DeviceKey, StoreKey};
use crate::domain::{Minute, Period, PeriodCalendar};

/// A bin names a device key the catalog does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pending bin of unknown device key {0}")]
pub struct UnknownDeviceKey(pub DeviceKey);

/// Collects the occupancy periods touched by bins given in (device, minute) order, calling the
/// time-zone arithmetic once per period rather than once per bin.
pub fn touched_periods(
    catalog: &Catalog,
    bins: impl IntoIterator<Item = (DeviceKey, Minute)>,
) -> Result<BTreeSet<(StoreKey, Period)>, UnknownDeviceKey> {
    let mut touched = BTreeSet::new();
    let mut current: Option<(DeviceKey, StoreKey, Period)> = None;
    for (device, minute) in bins {
        if let Some((d, _, period)) = current
            && d == device
            && period.start <= minute
            && minute < period.end
        {
            continue;
        }
        let store_key = catalog.device(device).map(|d| d.store).ok_or(UnknownDeviceKey(device))?;
        let store = catalog.store(store_key).expect("a device's store is in the catalog");
        let period = store.calendar().period_of(minute);
        touched.insert((store_key, period));
        current = Some((device, store_key, period));
    }
    Ok(touched)
}

/// The periods of `calendar` holding `minutes`, given in ascending order: what must be recomputed when
/// those minutes change store or the store's periods change. One time-zone lookup per period.
pub fn periods_holding(calendar: &PeriodCalendar<'_>, minutes: impl IntoIterator<Item = Minute>) -> Vec<Period> {
    let mut periods: Vec<Period> = Vec::new();
    for minute in minutes {
        if periods.last().is_none_or(|period| minute >= period.end) {
            periods.push(calendar.period_of(minute));
        }
    }
    periods
}

/// A period of a store with the number of rollup rows it holds.
#[derive(Clone, Copy, Debug)]
pub struct PeriodCount {
    /// The store.
    pub store: StoreKey,
    /// The period.
    pub period: Period,
    /// Rollup rows in it.
    pub rows: u64,
}

/// Where a page starts: the store, the first minute to read from, and how many rows to skip there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageStart {
    /// The position of the store in the query's store list.
    pub store_index: usize,
    /// The first minute to read from.
    pub from: Minute,
    /// Rows to skip from there.
    pub skip: u64,
}

/// Locates row `offset` of a multi-store query given the in-range row count of each period, listed in
/// (store order, period start) order with `store_index` the position in the query's store list.
pub fn locate_page(periods: &[(usize, Period, u64)], first: Minute, mut offset: u64) -> Option<PageStart> {
    for &(store_index, period, rows) in periods {
        if offset < rows {
            return Some(PageStart { store_index, from: period.start.max(first), skip: offset });
        }
        offset -= rows;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_holding_minutes_are_found_once_each() {
        let utc = jiff::tz::TimeZone::UTC;
        let calendar = PeriodCalendar { timezone: &utc, reset: "04:00".parse().unwrap() };
        let at = |text: &str| Minute::parse_bin_minute(text).unwrap();
        let minutes = ["2023-10-26T03:59:00Z", "2023-10-26T04:00:00Z", "2023-10-26T23:00:00Z", "2023-10-28T05:00:00Z"];
        let periods = periods_holding(&calendar, minutes.map(at));
        let starts: Vec<Minute> = periods.iter().map(|period| period.start).collect();
        assert_eq!(starts, ["2023-10-25T04:00:00Z", "2023-10-26T04:00:00Z", "2023-10-28T04:00:00Z"].map(at));
    }

    #[test]
    fn pages_are_located_by_period_counts() {
        let m = |n: i64| Minute::from_unix_seconds(n * 60).unwrap();
        let p = |a, b| Period { start: m(a), end: m(b) };
        let periods = [(0, p(0, 10), 3), (0, p(10, 20), 2), (1, p(0, 10), 4)];
        assert_eq!(locate_page(&periods, m(5), 0), Some(PageStart { store_index: 0, from: m(5), skip: 0 }));
        assert_eq!(locate_page(&periods, m(5), 4), Some(PageStart { store_index: 0, from: m(10), skip: 1 }));
        assert_eq!(locate_page(&periods, m(5), 5), Some(PageStart { store_index: 1, from: m(5), skip: 0 }));
        assert_eq!(locate_page(&periods, m(5), 9), None);
    }
}
