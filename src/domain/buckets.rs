//! Buckets: minutes grouped into 15 minutes, hours, days, weeks or months of a store's local time, and the
//! hour and day rollups kept at publication that let a bucket be read without the minutes beneath it.
//!
//! A stored rollup row is a *piece*: the minutes of one local hour (or day) that fall in one occupancy
//! period. Pieces never straddle a period boundary, so recomputing a period replaces exactly its own
//! pieces. A query's range is split into whole day pieces in the middle, whole hour pieces at its edges
//! and single minutes at the very edges ([`plan`]), so a bucket only partly inside the range holds just
//! the minutes inside it, and the work follows the number of buckets rather than of minutes.

use std::collections::BTreeMap;

use jiff::ToSpan;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::keys::StoreKey;
use super::{Minute, Period, PeriodCalendar};

/// The size of the buckets a read groups its rows into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One row per minute: the seed's behaviour.
    Minute,
    /// 15 minutes of the local clock.
    QuarterHour,
    /// A local clock hour (the repeated hour of a DST end is two).
    Hour,
    /// A local day, midnight to midnight (23 or 25 hours on DST days).
    Day,
    /// Monday 00:00 to Monday 00:00, local.
    Week,
    /// The 1st 00:00 to the next 1st, local.
    Month,
}

impl Granularity {
    /// Every granularity, by its query value.
    pub const ALL: [Granularity; 6] = [
        Granularity::Minute,
        Granularity::QuarterHour,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
    ];

    /// Its query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::QuarterHour => "15m",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// The granularity of a query value.
    pub fn parse(text: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|granularity| granularity.as_str() == text)
    }
}

/// `[start, end)` of one bucket, in UTC minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Its first minute.
    pub start: Minute,
    /// The first minute after it.
    pub end: Minute,
}

fn local_midnight(date: Date, timezone: &TimeZone) -> Minute {
    // A midnight inside a DST gap starts the day at the end of the gap.
    let zoned = date.to_zoned(timezone.clone()).expect("dates of minutes are in range");
    Minute::first_at_or_after(zoned.timestamp())
}

/// The bucket of `granularity` in `timezone` holding `minute`.
pub fn bucket_of(timezone: &TimeZone, granularity: Granularity, minute: Minute) -> Bucket {
    let span = |start: Minute, minutes: i64| Bucket { start, end: start.plus_minutes(minutes) };
    if granularity == Granularity::Minute {
        return span(minute, 1);
    }
    let zoned = minute.timestamp().to_zoned(timezone.clone());
    let minute_of_hour = i64::from(zoned.minute());
    let date = zoned.date();
    let days = |first: Date, next: Date| Bucket {
        start: local_midnight(first, timezone),
        end: local_midnight(next, timezone),
    };
    match granularity {
        Granularity::Minute => unreachable!("handled above"),
        // Offsets change on quarter hours in every zone in use: the local clock's quarter and hour start
        // that many minutes earlier in UTC.
        Granularity::QuarterHour => span(minute.plus_minutes(-(minute_of_hour % 15)), 15),
        Granularity::Hour => span(minute.plus_minutes(-minute_of_hour), 60),
        Granularity::Day => days(date, date.tomorrow().expect("in range")),
        Granularity::Week => {
            let monday = date.checked_sub(i64::from(date.weekday().to_monday_zero_offset()).days()).expect("in range");
            days(monday, monday.checked_add(7.days()).expect("in range"))
        }
        Granularity::Month => {
            let first = date.first_of_month();
            days(first, first.checked_add(1.month()).expect("in range"))
        }
    }
}

/// A stored rollup level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Single minutes: the store's minute rollup itself.
    Minute,
    /// Pieces of local hours.
    Hour,
    /// Pieces of local days.
    Day,
}

impl Level {
    /// The levels kept as pieces.
    pub const STORED: [Level; 2] = [Level::Hour, Level::Day];

    /// How the level is stored in the `level` column of `store_rollups`.
    pub fn code(self) -> i64 {
        match self {
            Level::Minute => 0,
            Level::Hour => 1,
            Level::Day => 2,
        }
    }

    fn granularity(self) -> Granularity {
        match self {
            Level::Minute => Granularity::Minute,
            Level::Hour => Granularity::Hour,
            Level::Day => Granularity::Day,
        }
    }

    fn finer(self) -> Level {
        match self {
            Level::Day => Level::Hour,
            Level::Hour | Level::Minute => Level::Minute,
        }
    }
}

/// What a run of minutes with counts adds up to: a minute row, a stored piece or a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// People in.
    pub entries: i64,
    /// People out.
    pub exits: i64,
    /// Minutes with counts.
    pub rows: i64,
    /// The last of those minutes.
    pub last_minute: Minute,
    /// People inside after it.
    pub last_occupancy: i64,
    /// The highest occupancy at the end of any of those minutes.
    pub peak_occupancy: i64,
    /// The first minute it was reached.
    pub peak_minute: Minute,
}

impl Totals {
    /// One minute row.
    pub fn of_minute(minute: Minute, entries: i64, exits: i64, occupancy: i64) -> Totals {
        Totals {
            entries,
            exits,
            rows: 1,
            last_minute: minute,
            last_occupancy: occupancy,
            peak_occupancy: occupancy,
            peak_minute: minute,
        }
    }

    /// Adds `other`, a run of other minutes before or after these.
    pub fn absorb(&mut self, other: &Totals) {
        self.entries += other.entries;
        self.exits += other.exits;
        self.rows += other.rows;
        if other.last_minute > self.last_minute {
            self.last_minute = other.last_minute;
            self.last_occupancy = other.last_occupancy;
        }
        if (other.peak_occupancy, std::cmp::Reverse(other.peak_minute))
            > (self.peak_occupancy, std::cmp::Reverse(self.peak_minute))
        {
            self.peak_occupancy = other.peak_occupancy;
            self.peak_minute = other.peak_minute;
        }
    }
}

/// A minute row of the store rollup: minute, in, out, occupancy.
pub type MinuteCounts = (Minute, i64, i64, i64);

/// The pieces of `level` of a store's minute rows (ascending, one occupancy period or several), each
/// keyed by its first possible minute: the later of its bucket's start and its period's start.
pub fn pieces(calendar: &PeriodCalendar<'_>, level: Level, rows: &[MinuteCounts]) -> Vec<(Minute, Totals)> {
    let mut pieces: Vec<(Minute, Totals)> = Vec::new();
    let mut current: Option<(Bucket, Period)> = None;
    for &(minute, entries, exits, occupancy) in rows {
        let totals = Totals::of_minute(minute, entries, exits, occupancy);
        match current {
            Some((bucket, period)) if minute < bucket.end && minute < period.end => {
                pieces.last_mut().expect("a piece is open").1.absorb(&totals);
            }
            _ => {
                let bucket = bucket_of(calendar.timezone, level.granularity(), minute);
                let period = calendar.period_of(minute);
                pieces.push((bucket.start.max(period.start), totals));
                current = Some((bucket, period));
            }
        }
    }
    pieces
}

/// Where a store's rows of `[from, to)` are read from: one level over a range of piece starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRange {
    /// Minute rows, hour pieces or day pieces.
    pub level: Level,
    /// The first minute (piece start) read.
    pub from: Minute,
    /// The first minute (piece start) not read.
    pub to: Minute,
}

/// Where pieces of `level` may start: its buckets' and the periods' starts.
fn is_boundary(calendar: &PeriodCalendar<'_>, level: Level, at: Minute) -> bool {
    bucket_of(calendar.timezone, level.granularity(), at).start == at || calendar.period_of(at).start == at
}

fn next_boundary(calendar: &PeriodCalendar<'_>, level: Level, at: Minute) -> Minute {
    if is_boundary(calendar, level, at) {
        return at;
    }
    bucket_of(calendar.timezone, level.granularity(), at).end.min(calendar.period_of(at).end)
}

fn previous_boundary(calendar: &PeriodCalendar<'_>, level: Level, at: Minute) -> Minute {
    bucket_of(calendar.timezone, level.granularity(), at).start.max(calendar.period_of(at).start)
}

/// Splits `[first, end)` into ranges of `level` pieces in the middle and finer ones at the edges.
fn split(calendar: &PeriodCalendar<'_>, level: Level, first: Minute, end: Minute, ranges: &mut Vec<SourceRange>) {
    if first >= end {
        return;
    }
    if level == Level::Minute {
        ranges.push(SourceRange { level, from: first, to: end });
        return;
    }
    let (inner_first, inner_end) = (next_boundary(calendar, level, first), previous_boundary(calendar, level, end));
    if inner_first < inner_end {
        split(calendar, level.finer(), first, inner_first, ranges);
        ranges.push(SourceRange { level, from: inner_first, to: inner_end });
        split(calendar, level.finer(), inner_end, end, ranges);
    } else {
        split(calendar, level.finer(), first, end, ranges);
    }
}

/// The ranges to read for buckets of `granularity` over `[first, last]`: the coarsest stored level
/// whose pieces lie each inside one bucket.
pub fn plan(calendar: &PeriodCalendar<'_>, granularity: Granularity, first: Minute, last: Minute) -> Vec<SourceRange> {
    let coarsest = match granularity {
        Granularity::Minute | Granularity::QuarterHour => Level::Minute,
        Granularity::Hour => Level::Hour,
        Granularity::Day | Granularity::Week | Granularity::Month => Level::Day,
    };
    let mut ranges = Vec::new();
    split(calendar, coarsest, first, last.plus_minutes(1), &mut ranges);
    ranges
}

/// Groups pieces and minute rows (each inside one bucket, in any order) into buckets, by start.
pub fn group(
    timezone: &TimeZone,
    granularity: Granularity,
    parts: impl IntoIterator<Item = (Minute, Totals)>,
) -> BTreeMap<Minute, Totals> {
    let mut buckets: BTreeMap<Minute, Totals> = BTreeMap::new();
    let mut last: Option<Bucket> = None;
    for (start, totals) in parts {
        let bucket = match last {
            Some(bucket) if bucket.start <= start && start < bucket.end => bucket,
            _ => bucket_of(timezone, granularity, start),
        };
        last = Some(bucket);
        buckets.entry(bucket.start).and_modify(|sum| sum.absorb(&totals)).or_insert(totals);
    }
    buckets
}

/// One bucket row of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketRow {
    /// The store.
    pub store: StoreKey,
    /// The bucket's first minute.
    pub start: Minute,
    /// What its minutes inside the query's bounds add up to.
    pub totals: Totals,
}

/// A store's figures over a range, as the summary endpoint shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// People in.
    pub entries: i64,
    /// People out.
    pub exits: i64,
    /// Whether any minute had counts.
    pub has_counts: bool,
    /// The highest occupancy and the first minute it was reached, if any minute had counts.
    pub peak: Option<(i64, Minute)>,
    /// The local clock hour (its start) with the most entries, the earliest of equals, and its entries.
    pub busiest_hour: Option<(Minute, i64)>,
}

impl Summary {
    /// The summary of a store's hour buckets.
    pub fn of_hours(hours: &BTreeMap<Minute, Totals>) -> Summary {
        let mut summary = Summary::default();
        let mut total: Option<Totals> = None;
        for (&start, totals) in hours {
            match total.as_mut() {
                Some(sum) => sum.absorb(totals),
                None => total = Some(*totals),
            }
            if summary.busiest_hour.is_none_or(|(_, entries)| totals.entries > entries) {
                summary.busiest_hour = Some((start, totals.entries));
            }
        }
        if let Some(total) = total {
            summary.entries = total.entries;
            summary.exits = total.exits;
            summary.has_counts = true;
            summary.peak = Some((total.peak_occupancy, total.peak_minute));
        }
        summary
    }
}

/// How a summary's comparison period lies before the asked one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The same length just before.
    PreviousPeriod,
    /// 364 days earlier, so weekdays align.
    PreviousYear,
}

impl Compare {
    /// Its query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compare::PreviousPeriod => "previous_period",
            Compare::PreviousYear => "previous_year",
        }
    }

    /// The comparison of a query value.
    pub fn parse(text: &str) -> Option<Compare> {
        [Compare::PreviousPeriod, Compare::PreviousYear].into_iter().find(|compare| compare.as_str() == text)
    }

    /// The compared minutes of `[first, last]`.
    pub fn range(self, first: Minute, last: Minute) -> (Minute, Minute) {
        let shift = match self {
            Compare::PreviousPeriod => (last.unix_seconds() - first.unix_seconds()) / 60 + 1,
            Compare::PreviousYear => 364 * 24 * 60,
        };
        (first.plus_minutes(-shift), last.plus_minutes(-shift))
    }
}

/// The change from `before` to `now` in percent, to one decimal; none from zero.
pub fn change_percent(before: i64, now: i64) -> Option<f64> {
    (before != 0).then(|| ((now - before) as f64 * 1000.0 / before as f64).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ResetTime;

    fn at(text: &str) -> Minute {
        Minute::parse_bin_minute(text).unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn granularities_parse_from_their_query_values_only() {
        for granularity in Granularity::ALL {
            assert_eq!(Granularity::parse(granularity.as_str()), Some(granularity));
        }
        assert_eq!(Granularity::parse("year"), None);
        assert_eq!(Granularity::parse("Hour"), None);
    }

    #[test]
    fn days_follow_daylight_saving_and_weeks_start_on_monday() {
        let athens = zone("Europe/Athens");
        // 2023-03-26: clocks go from 03:00 to 04:00 in Athens: a 23-hour day.
        let day = bucket_of(&athens, Granularity::Day, at("2023-03-26T12:00:00Z"));
        assert_eq!((day.start, day.end), (at("2023-03-25T22:00:00Z"), at("2023-03-26T21:00:00Z")));
        // 2023-10-29: 04:00 back to 03:00: a 25-hour day.
        let day = bucket_of(&athens, Granularity::Day, at("2023-10-29T12:00:00Z"));
        assert_eq!(day.end.unix_seconds() - day.start.unix_seconds(), 25 * 3600);
        // Thursday 2023-10-26 is in the week starting Monday 2023-10-23 00:00 +03:00.
        let week = bucket_of(&athens, Granularity::Week, at("2023-10-26T12:00:00Z"));
        assert_eq!((week.start, week.end), (at("2023-10-22T21:00:00Z"), at("2023-10-29T22:00:00Z")));
        let month = bucket_of(&athens, Granularity::Month, at("2023-10-31T22:30:00Z"));
        assert_eq!(month.start, at("2023-10-31T22:00:00Z"), "00:30 on 1 November is in November");
    }

    #[test]
    fn the_repeated_hour_of_a_fall_back_is_two_hour_buckets() {
        let new_york = zone("America/New_York");
        // 2023-11-05 01:30 EDT (05:30Z) and 01:30 EST (06:30Z).
        let first = bucket_of(&new_york, Granularity::Hour, at("2023-11-05T05:30:00Z"));
        let second = bucket_of(&new_york, Granularity::Hour, at("2023-11-05T06:30:00Z"));
        assert_eq!(first.start, at("2023-11-05T05:00:00Z"));
        assert_eq!(second.start, at("2023-11-05T06:00:00Z"));
        let kolkata = zone("Asia/Kolkata");
        let quarter = bucket_of(&kolkata, Granularity::QuarterHour, at("2023-10-26T10:10:00Z"));
        assert_eq!(quarter.start, at("2023-10-26T10:00:00Z"), "15:40 local: the quarter from 15:30");
        let hour = bucket_of(&kolkata, Granularity::Hour, at("2023-10-26T10:10:00Z"));
        assert_eq!(hour.start, at("2023-10-26T09:30:00Z"));
    }

    #[test]
    fn totals_keep_the_last_occupancy_and_the_first_peak() {
        let mut sum = Totals::of_minute(at("2023-10-26T10:05:00Z"), 3, 1, 7);
        sum.absorb(&Totals::of_minute(at("2023-10-26T10:01:00Z"), 5, 0, 9));
        sum.absorb(&Totals::of_minute(at("2023-10-26T10:09:00Z"), 0, 2, 9));
        assert_eq!((sum.entries, sum.exits, sum.rows), (8, 3, 3));
        assert_eq!((sum.last_minute, sum.last_occupancy), (at("2023-10-26T10:09:00Z"), 9));
        assert_eq!((sum.peak_occupancy, sum.peak_minute), (9, at("2023-10-26T10:01:00Z")));
    }

    /// Every minute of `[first, last]` is read exactly once, from pieces that lie inside the range.
    fn assert_plan_covers(calendar: &PeriodCalendar<'_>, granularity: Granularity, first: Minute, last: Minute) {
        let ranges = plan(calendar, granularity, first, last);
        let mut at = first;
        for range in &ranges {
            assert_eq!(range.from, at, "{ranges:?}");
            assert!(range.from < range.to);
            if range.level != Level::Minute {
                assert!(is_boundary(calendar, range.level, range.from) && is_boundary(calendar, range.level, range.to));
            }
            at = range.to;
        }
        assert_eq!(at, last.plus_minutes(1));
    }

    #[test]
    fn plans_read_whole_pieces_inside_and_minutes_at_the_edges() {
        let athens = zone("Europe/Athens");
        let calendar = PeriodCalendar { timezone: &athens, reset: "04:30".parse::<ResetTime>().unwrap() };
        let (first, last) = (at("2023-10-20T07:17:00Z"), at("2023-11-03T19:42:00Z"));
        for granularity in Granularity::ALL {
            assert_plan_covers(&calendar, granularity, first, last);
        }
        let ranges = plan(&calendar, Granularity::Week, first, last);
        let levels: Vec<Level> = ranges.iter().map(|range| range.level).collect();
        assert_eq!(levels, [Level::Minute, Level::Hour, Level::Day, Level::Hour, Level::Minute]);
        // A range inside one hour is read minute by minute.
        let short = plan(&calendar, Granularity::Day, at("2023-10-20T07:17:00Z"), at("2023-10-20T07:40:00Z"));
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].level, Level::Minute);
    }

    #[test]
    fn pieces_split_at_buckets_and_periods() {
        let utc = TimeZone::UTC;
        let calendar = PeriodCalendar { timezone: &utc, reset: "04:30".parse::<ResetTime>().unwrap() };
        let rows = [
            (at("2023-10-26T04:10:00Z"), 1, 0, 1),
            (at("2023-10-26T04:20:00Z"), 2, 0, 3),
            (at("2023-10-26T04:40:00Z"), 4, 0, 4), // a new period: occupancy restarted
            (at("2023-10-26T05:00:00Z"), 0, 1, 3),
        ];
        let hours = pieces(&calendar, Level::Hour, &rows);
        let starts: Vec<Minute> = hours.iter().map(|(start, _)| *start).collect();
        assert_eq!(starts, [at("2023-10-26T04:00:00Z"), at("2023-10-26T04:30:00Z"), at("2023-10-26T05:00:00Z")]);
        assert_eq!((hours[0].1.entries, hours[0].1.last_occupancy, hours[0].1.rows), (3, 3, 2));
        let days = pieces(&calendar, Level::Day, &rows);
        assert_eq!(days.len(), 2);
        assert_eq!(days[1].0, at("2023-10-26T04:30:00Z"));
        assert_eq!((days[1].1.entries, days[1].1.exits, days[1].1.peak_occupancy), (4, 1, 4));
    }

    #[test]
    fn summaries_find_the_busiest_hour_and_the_peak() {
        let utc = TimeZone::UTC;
        let rows = [
            Totals::of_minute(at("2023-10-26T09:10:00Z"), 5, 0, 5),
            Totals::of_minute(at("2023-10-26T10:10:00Z"), 5, 2, 8),
            Totals::of_minute(at("2023-10-26T11:10:00Z"), 1, 6, 3),
        ];
        let hours = group(&utc, Granularity::Hour, rows.iter().map(|totals| (totals.last_minute, *totals)));
        let summary = Summary::of_hours(&hours);
        assert_eq!((summary.entries, summary.exits), (11, 8));
        assert_eq!(summary.busiest_hour, Some((at("2023-10-26T09:00:00Z"), 5)), "the earliest of equals");
        assert_eq!(summary.peak, Some((8, at("2023-10-26T10:10:00Z"))));
        assert_eq!(Summary::of_hours(&BTreeMap::new()), Summary::default());
    }

    #[test]
    fn comparisons_shift_the_range() {
        let (first, last) = (at("2023-10-26T00:00:00Z"), at("2023-10-26T23:59:00Z"));
        assert_eq!(
            Compare::PreviousPeriod.range(first, last),
            (at("2023-10-25T00:00:00Z"), at("2023-10-25T23:59:00Z"))
        );
        assert_eq!(Compare::PreviousYear.range(first, last).0, at("2022-10-27T00:00:00Z"));
        assert_eq!(change_percent(200, 250), Some(25.0));
        assert_eq!(change_percent(3, 2), Some(-33.3));
        assert_eq!(change_percent(0, 5), None);
    }
}
