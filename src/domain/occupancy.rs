//! Occupancy: people inside a store at the end of each minute of a period.

use super::Minute;

/// A period's minutes `(minute, in, out)` in order, and its corrections `(minute, value)` in order.
///
/// Occupancy runs `max(0, previous + in - out)` from zero. A correction sets the count at the end of
/// its minute: that minute's value is the correction, and later minutes continue from it.
pub fn running_occupancy(minutes: &[(Minute, i64, i64)], corrections: &[(Minute, i64)]) -> Vec<i64> {
    let mut inside = 0i64;
    let mut pending = corrections.iter().peekable();
    minutes
        .iter()
        .map(|&(minute, entries, exits)| {
            while let Some(&&(at, value)) = pending.peek()
                && at < minute
            {
                inside = value;
                pending.next();
            }
            inside = (inside + entries - exits).max(0);
            while let Some(&&(at, value)) = pending.peek()
                && at == minute
            {
                inside = value;
                pending.next();
            }
            inside
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(counts: &[(i64, i64)]) -> Vec<(Minute, i64, i64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &(entries, exits))| (Minute::from_unix_seconds(600 * i as i64).unwrap(), entries, exits))
            .collect()
    }

    #[test]
    fn occupancy_accumulates_and_clamps_at_zero() {
        assert_eq!(running_occupancy(&minutes(&[(7, 0), (2, 0), (3, 0), (0, 1), (1, 1)]), &[]), [7, 9, 12, 11, 11]);
        assert_eq!(running_occupancy(&minutes(&[(1, 0), (0, 5), (2, 0)]), &[]), [1, 0, 2]);
        assert!(running_occupancy(&[], &[]).is_empty());
    }

    #[test]
    fn corrections_set_the_count_and_later_minutes_continue_from_it() {
        let at = |tenth: i64| Minute::from_unix_seconds(600 * tenth).unwrap();
        let rows = minutes(&[(5, 0), (2, 0), (1, 0), (0, 1)]);
        // At a minute with counts, the correction is that minute's value.
        assert_eq!(running_occupancy(&rows, &[(at(1), 20)]), [5, 20, 21, 20]);
        // Between minutes with counts, it applies before the next one.
        let between = Minute::from_unix_seconds(600 + 60).unwrap();
        assert_eq!(running_occupancy(&rows, &[(between, 3)]), [5, 7, 4, 3]);
        // Several: the latest one before a minute wins.
        assert_eq!(running_occupancy(&rows, &[(at(0), 1), (between, 0)]), [1, 3, 1, 0]);
    }
}
