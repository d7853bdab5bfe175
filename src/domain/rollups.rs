//! Rollup verification: the published per-store rollup recomputed from the published bins.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::buckets::{Level, MinuteCounts, Totals, pieces};
use crate::domain::catalog::{Catalog, Store};
use crate::domain::keys::StoreKey;
use crate::domain::occupancy::running_occupancy;
use crate::domain::{Minute, Period};

/// What `check` found; `problems` is empty for a consistent store.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Published rollup rows verified.
    pub rollup_rows: u64,
    /// Occupancy periods holding them.
    pub periods: u64,
    /// What is wrong, if anything.
    pub problems: Vec<String>,
}

/// One published rollup row as stored, for verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredRollup {
    /// The store.
    pub store: StoreKey,
    /// The UTC minute.
    pub minute: Minute,
    /// People in.
    pub entries: i64,
    /// People out.
    pub exits: i64,
    /// People inside at the end of the minute.
    pub occupancy: i64,
}

/// A stored hour or day piece: its store, level code, start and totals.
pub type StoredPiece = (StoreKey, i64, Minute, Totals);

/// Compares the stored hour and day pieces with those the stored minute rollup (in (store, minute)
/// order) makes: one problem per store whose pieces differ.
pub fn verify_pieces(catalog: &Catalog, minutes: &[StoredRollup], stored: &[StoredPiece]) -> Vec<String> {
    let mut expected: BTreeMap<(StoreKey, i64, Minute), Totals> = BTreeMap::new();
    for run in minutes.chunk_by(|a, b| a.store == b.store) {
        let store = run[0].store;
        let Some(calendar) = catalog.store(store).map(Store::calendar) else { continue };
        let rows: Vec<MinuteCounts> = run.iter().map(|r| (r.minute, r.entries, r.exits, r.occupancy)).collect();
        for level in Level::STORED {
            for (start, totals) in pieces(&calendar, level, &rows) {
                expected.insert((store, level.code(), start), totals);
            }
        }
    }
    let stored: BTreeMap<(StoreKey, i64, Minute), Totals> =
        stored.iter().map(|&(store, level, start, totals)| ((store, level, start), totals)).collect();
    let mut differing: BTreeMap<StoreKey, usize> = BTreeMap::new();
    let keys: BTreeSet<&(StoreKey, i64, Minute)> = expected.keys().chain(stored.keys()).collect();
    for key in keys {
        if expected.get(key) != stored.get(key) {
            *differing.entry(key.0).or_default() += 1;
        }
    }
    differing
        .into_iter()
        .map(|(store, count)| format!("store {store}: {count} hour or day rollup rows differ from the minute rollup"))
        .collect()
}

/// Compares stored rollup rows with the ones recomputed from the published bins. Both iterators are in
/// (store, minute) order; `expected_counts` are the per-minute sums of the bins (minutes with any count),
/// `corrections` the published corrections in (store, minute) order. Returns the problems found
/// (at most `limit`) and the row count of every period that has rows.
pub fn verify_rollups(
    catalog: &Catalog,
    stored: impl IntoIterator<Item = StoredRollup>,
    expected_counts: impl IntoIterator<Item = (StoreKey, Minute, i64, i64)>,
    corrections: &[(StoreKey, Minute, i64)],
    limit: usize,
) -> (Vec<String>, BTreeMap<(StoreKey, Period), u64>) {
    let mut problems = Vec::new();
    let mut note = |problem: String| {
        if problems.len() < limit {
            problems.push(problem);
        }
    };
    let stored: Vec<StoredRollup> = stored.into_iter().collect();
    let expected: Vec<(StoreKey, Minute, i64, i64)> = expected_counts.into_iter().collect();
    let stored_keys: BTreeSet<(StoreKey, Minute)> = stored.iter().map(|r| (r.store, r.minute)).collect();
    let expected_keys: BTreeSet<(StoreKey, Minute)> = expected.iter().map(|e| (e.0, e.1)).collect();
    for (store, minute) in expected_keys.difference(&stored_keys) {
        note(format!("store {store}: minute {minute} has bins but no published rollup row"));
    }
    for (store, minute) in stored_keys.difference(&expected_keys) {
        note(format!("store {store}: rollup row at {minute} has no bins"));
    }
    // Group expected minutes by period and recompute occupancy there.
    let mut periods = BTreeMap::new();
    let stored_by_key: HashMap<(StoreKey, Minute), StoredRollup> =
        stored.iter().map(|r| ((r.store, r.minute), *r)).collect();
    let mut run: Vec<(Minute, i64, i64)> = Vec::new();
    let mut current: Option<(StoreKey, Period)> = None;
    let flush = |current: Option<(StoreKey, Period)>,
                 run: &mut Vec<(Minute, i64, i64)>,
                 note: &mut dyn FnMut(String)| {
        let Some((store, period)) = current else { return };
        let period_corrections: Vec<(Minute, i64)> = corrections
            .iter()
            .filter(|c| c.0 == store && period.start <= c.1 && c.1 < period.end)
            .map(|c| (c.1, c.2))
            .collect();
        let occupancy = running_occupancy(run, &period_corrections);
        for (&(minute, entries, exits), occupancy) in run.iter().zip(occupancy) {
            if let Some(row) = stored_by_key.get(&(store, minute)) {
                if (row.entries, row.exits, row.occupancy) != (entries, exits, occupancy) {
                    note(format!(
                        "store {store}: minute {minute} stored (in {}, out {}, occupancy {}) but the bins give (in {entries}, out {exits}, occupancy {occupancy})",
                        row.entries, row.exits, row.occupancy
                    ));
                }
            }
        }
        run.clear();
    };
    for (store, minute, entries, exits) in expected {
        let inside = current.is_some_and(|(s, p)| s == store && p.start <= minute && minute < p.end);
        if !inside {
            flush(current, &mut run, &mut note);
            let Some(calendar) = catalog.store(store).map(Store::calendar) else {
                note(format!("bins of unknown store key {store}"));
                current = None;
                continue;
            };
            current = Some((store, calendar.period_of(minute)));
        }
        *periods.entry(current.expect("set above")).or_insert(0u64) += 1;
        run.push((minute, entries, exits));
    }
    flush(current, &mut run, &mut note);
    (problems, periods)
}
