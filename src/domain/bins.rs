//! Count bins as stored: one device's counts for one minute, and manual occupancy corrections.

use jiff::Timestamp;

use crate::domain::keys::DeviceKey;
use crate::domain::{Counts, Minute};

/// A manual occupancy count: at the end of `minute` the store held `value` people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    /// The minute at whose end the count was taken.
    pub minute: Minute,
    /// People inside.
    pub value: u32,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// One device's counts for one minute, resolved to the device's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bin {
    /// The device that counted.
    pub device: DeviceKey,
    /// The UTC minute counted.
    pub minute: Minute,
    /// People in and out.
    pub counts: Counts,
}

/// Sorts bins by (device, minute) and keeps the last of each key: within one ingest, a later bin
/// replaces an earlier one. Writing in key order is also several times faster.
pub fn sort_and_dedupe(bins: &mut Vec<Bin>) {
    bins.sort_by_key(|bin| (bin.device, bin.minute)); // stable: later duplicates stay later
    let mut write = 0;
    for read in 0..bins.len() {
        if write > 0 && (bins[write - 1].device, bins[write - 1].minute) == (bins[read].device, bins[read].minute) {
            bins[write - 1] = bins[read];
        } else {
            bins[write] = bins[read];
            write += 1;
        }
    }
    bins.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(device: i64, minute: i64, entries: u32) -> Bin {
        Bin {
            device: DeviceKey(device),
            minute: Minute::from_unix_seconds(minute * 60).unwrap(),
            counts: Counts { entries, exits: 0 },
        }
    }

    #[test]
    fn later_bins_replace_earlier_ones_for_the_same_key() {
        let mut bins = vec![bin(2, 5, 1), bin(1, 5, 1), bin(2, 5, 2), bin(1, 4, 1), bin(2, 5, 3)];
        sort_and_dedupe(&mut bins);
        assert_eq!(bins, vec![bin(1, 4, 1), bin(1, 5, 1), bin(2, 5, 3)]);
    }
}
