//! Period and page arithmetic: which occupancy periods bins touch, and where a page of a multi-store
//! query starts given the row count of each period.

use std::collections::BTreeSet;

use crate::domain::catalog::Catalog;
use crate::domain::keys::{DeviceKey, StoreKey};
use crate::domain::{Minute, Period};

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
