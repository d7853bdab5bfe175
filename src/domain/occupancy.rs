//! Occupancy: people inside a store at the end of each minute of a period.

/// Running `max(0, previous + in - out)` over a period's minutes, in order, starting from zero.
pub fn running_occupancy(minutes: impl IntoIterator<Item = (i64, i64)>) -> Vec<i64> {
    let mut inside = 0i64;
    minutes
        .into_iter()
        .map(|(entries, exits)| {
            inside = (inside + entries - exits).max(0);
            inside
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_accumulates_and_clamps_at_zero() {
        assert_eq!(running_occupancy([(7, 0), (2, 0), (3, 0), (0, 1), (1, 1)]), vec![7, 9, 12, 11, 11]);
        assert_eq!(running_occupancy([(1, 0), (0, 5), (2, 0)]), vec![1, 0, 2]);
        assert!(running_occupancy([]).is_empty());
    }
}
