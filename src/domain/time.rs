//! UTC minutes, the datetime bounds of the read API, and rendering a minute in a store's local time.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// Seconds in a minute.
pub const SECONDS_PER_MINUTE: i64 = 60;
const NANOS_PER_MINUTE: i128 = 60_000_000_000;

/// The start of a UTC minute, as seconds since the Unix epoch (always a multiple of 60).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(i64);

/// Bins are accepted from 1970 up to the end of 9999: the range the minute renderer can print.
const FIRST_BIN_SECOND: i64 = 0;
const LAST_BIN_SECOND: i64 = 253_402_300_740; // 9999-12-31T23:59:00Z

impl Minute {
    /// The minute starting at these Unix seconds; `None` unless they are a whole minute.
    pub fn from_unix_seconds(seconds: i64) -> Option<Minute> {
        (seconds.rem_euclid(SECONDS_PER_MINUTE) == 0).then_some(Minute(seconds))
    }

    /// Its start in Unix seconds.
    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// The minute `minutes` later (earlier when negative).
    pub fn plus_minutes(self, minutes: i64) -> Minute {
        Minute(self.0 + minutes * SECONDS_PER_MINUTE)
    }

    /// The first minute whose start is at or after `instant`.
    pub fn first_at_or_after(instant: Timestamp) -> Minute {
        let nanos = instant.as_nanosecond();
        let minutes = nanos.div_euclid(NANOS_PER_MINUTE) + i128::from(nanos.rem_euclid(NANOS_PER_MINUTE) != 0);
        Minute(minutes as i64 * SECONDS_PER_MINUTE)
    }

    /// The last minute whose start is at or before `instant`.
    pub fn last_at_or_before(instant: Timestamp) -> Minute {
        let minutes = instant.as_nanosecond().div_euclid(NANOS_PER_MINUTE);
        Minute(minutes as i64 * SECONDS_PER_MINUTE)
    }

    /// Parses the `minute` of an ingested bin: an ISO 8601 datetime (UTC when it has no offset) whose
    /// seconds are zero.
    pub fn parse_bin_minute(text: &str) -> Result<Minute, String> {
        let instant = parse_instant(text)
            .map_err(|_| format!("{text:?} is not a valid datetime (expected e.g. 2023-10-26T12:06:00Z)"))?;
        if instant.subsec_nanosecond() != 0 || instant.as_second().rem_euclid(SECONDS_PER_MINUTE) != 0 {
            return Err(format!("{text:?} is not the start of a minute (seconds must be 0)"));
        }
        let seconds = instant.as_second();
        if !(FIRST_BIN_SECOND..=LAST_BIN_SECOND).contains(&seconds) {
            return Err(format!("{text:?} is outside the supported range 1970..9999"));
        }
        Ok(Minute(seconds))
    }

    /// Its start as an instant.
    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_second(self.0).expect("minutes are created within jiff's range")
    }
}

impl std::fmt::Display for Minute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.timestamp().to_string())
    }
}

/// An instant as the API writes its timestamps: RFC 3339 in UTC to the whole second
/// (`2026-12-04T10:00:13Z`), one format whatever the instant's precision.
pub fn utc_seconds(instant: Timestamp) -> String {
    instant.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a datetime the way the read API's bounds are given: RFC 3339 / ISO 8601 with `Z` or an
/// offset, optional fractional seconds, a space or `T` between date and time, or naive (taken as UTC),
/// or a bare date (its midnight, UTC).
pub fn parse_instant(text: &str) -> Result<Timestamp, jiff::Error> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    // An unencoded `+03:00` in a query string arrives as ` 03:00`: read it the way it was meant.
    if let Some(repaired) = repair_decoded_plus(text)
        && let Ok(instant) = repaired.parse::<Timestamp>()
    {
        return Ok(instant);
    }
    let naive: DateTime = match text.parse::<DateTime>() {
        Ok(datetime) => datetime,
        Err(error) => match text.parse::<Date>() {
            Ok(date) => date.to_datetime(Time::midnight()),
            Err(_) => return Err(error),
        },
    };
    naive.to_zoned(TimeZone::UTC).map(|zoned| zoned.timestamp())
}

fn repair_decoded_plus(text: &str) -> Option<String> {
    let (head, tail) = text.rsplit_once(' ')?;
    let looks_like_offset = tail.len() == 5 && tail.as_bytes()[2] == b':' || tail.len() == 4;
    (looks_like_offset && head.contains(['T', 't'])).then(|| format!("{head}+{tail}"))
}

/// The local time of day at which a store's occupancy restarts from zero.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ResetTime {
    minutes_after_midnight: u16,
}

impl ResetTime {
    /// Local midnight.
    pub const MIDNIGHT: ResetTime = ResetTime { minutes_after_midnight: 0 };

    /// The reset this many minutes after local midnight; `None` beyond the day.
    pub fn from_minutes(minutes_after_midnight: u16) -> Option<ResetTime> {
        (minutes_after_midnight < 24 * 60).then_some(ResetTime { minutes_after_midnight })
    }

    /// Minutes after local midnight.
    pub fn minutes_after_midnight(self) -> u16 {
        self.minutes_after_midnight
    }

    fn time(self) -> Time {
        let hour = (self.minutes_after_midnight / 60) as i8;
        let minute = (self.minutes_after_midnight % 60) as i8;
        Time::new(hour, minute, 0, 0).expect("validated")
    }
}

impl std::str::FromStr for ResetTime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{text:?} is not a time of day HH:MM (00:00 to 23:59)");
        let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
        let digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(hours) || !digits(minutes) {
            return Err(invalid());
        }
        let (hours, minutes): (u16, u16) = (hours.parse().unwrap(), minutes.parse().unwrap());
        if hours > 23 || minutes > 59 {
            return Err(invalid());
        }
        Ok(ResetTime { minutes_after_midnight: hours * 60 + minutes })
    }
}

impl std::fmt::Display for ResetTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&format!("{:02}:{:02}", self.minutes_after_midnight / 60, self.minutes_after_midnight % 60))
    }
}

/// An occupancy period of a store: `[start, end)` in UTC minutes, one per local day.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    /// Its first minute.
    pub start: Minute,
    /// The first minute after it.
    pub end: Minute,
}

/// The occupancy periods of a store: where each local day's count restarts from zero.
pub struct PeriodCalendar<'a> {
    /// The store's time zone.
    pub timezone: &'a TimeZone,
    /// The local time its periods start at.
    pub reset: ResetTime,
}

impl PeriodCalendar<'_> {
    /// The period containing `minute`.
    pub fn period_of(&self, minute: Minute) -> Period {
        let date = minute.timestamp().to_zoned(self.timezone.clone()).date();
        let start = self.period_start(date);
        if minute < start {
            let previous = date.checked_sub(1.day()).expect("dates of minutes since 1970");
            Period { start: self.period_start(previous), end: start }
        } else {
            let next = date.checked_add(1.day()).expect("dates before 9999-12-31");
            Period { start, end: self.period_start(next) }
        }
    }

    /// The start of the period of local date `date`: the first minute whose local wall-clock time is at
    /// or after `date` + reset. A reset inside a DST gap takes effect at the end of the gap; an ambiguous
    /// one (DST end) at its first occurrence.
    pub fn period_start(&self, date: Date) -> Minute {
        let wall_clock = date.to_datetime(self.reset.time());
        let instant = match self.timezone.to_ambiguous_timestamp(wall_clock).offset() {
            AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
                offset.to_timestamp(wall_clock).expect("in range")
            }
            AmbiguousOffset::Gap { before, .. } => {
                let after_gap_start = before.to_timestamp(wall_clock).expect("in range");
                self.timezone
                    .preceding(after_gap_start + 1.second())
                    .next()
                    .map(|transition| transition.timestamp())
                    .unwrap_or(after_gap_start)
            }
        };
        Minute::first_at_or_after(instant)
    }
}

/// Renders minutes as `2023-10-26T15:06:00+03:00` in one time zone, remembering the current offset
/// until the zone's next transition so that a page of consecutive minutes costs one lookup, and the
/// current local day rendered, so that a minute of it only fills in its hour and minute.
pub struct LocalMinuteWriter<'a> {
    timezone: &'a TimeZone,
    valid_from: i64,
    valid_until: i64,
    offset_seconds: i32,
    /// The UTC instant of the local midnight of the rendered day, at the current offset.
    day_start: i64,
    /// The UTC span in which `day` holds: that local day, within the offset's validity.
    day_from: i64,
    day_until: i64,
    day: [u8; LOCAL_MINUTE_LEN],
}

/// The length of a rendered minute.
pub const LOCAL_MINUTE_LEN: usize = 25;

impl<'a> LocalMinuteWriter<'a> {
    /// A writer of minutes in `timezone`.
    pub fn new(timezone: &'a TimeZone) -> Self {
        LocalMinuteWriter {
            timezone,
            valid_from: 1,
            valid_until: 0,
            offset_seconds: 0,
            day_start: 0,
            day_from: 1,
            day_until: 0,
            day: [0; LOCAL_MINUTE_LEN],
        }
    }

    /// `minute` as local time with its UTC offset.
    pub fn render(&mut self, minute: Minute) -> [u8; LOCAL_MINUTE_LEN] {
        let seconds = minute.unix_seconds();
        if seconds < self.day_from || seconds >= self.day_until {
            if seconds < self.valid_from || seconds >= self.valid_until {
                self.lookup(minute.timestamp());
            }
            let offset = i64::from(self.offset_seconds);
            self.day_start = (seconds + offset).div_euclid(86_400) * 86_400 - offset;
            self.day = render_minute(self.day_start, self.offset_seconds);
            self.day_from = self.day_start.max(self.valid_from);
            self.day_until = (self.day_start + 86_400).min(self.valid_until);
        }
        let second_of_day = (seconds - self.day_start) as u32;
        let mut out = self.day;
        put2(&mut out[11..13], second_of_day / 3600);
        put2(&mut out[14..16], second_of_day % 3600 / 60);
        out
    }

    fn lookup(&mut self, instant: Timestamp) {
        self.offset_seconds = self.timezone.to_offset(instant).seconds();
        self.valid_from = self
            .timezone
            .preceding(instant + 1.second())
            .next()
            .map_or(i64::MIN, |transition| transition.timestamp().as_second());
        self.valid_until =
            self.timezone.following(instant).next().map_or(i64::MAX, |transition| transition.timestamp().as_second());
    }
}

/// Formats `utc_seconds` shifted by `offset_seconds` as local ISO 8601 with the offset. The offset's
/// seconds (only historical LMT zones have any) are not shown.
pub fn render_minute(utc_seconds: i64, offset_seconds: i32) -> [u8; LOCAL_MINUTE_LEN] {
    let local = utc_seconds + i64::from(offset_seconds);
    let (year, month, day) = civil_from_days(local.div_euclid(86_400));
    let second_of_day = local.rem_euclid(86_400);
    let (hour, minute) = (second_of_day / 3600, second_of_day % 3600 / 60);
    let mut out = *b"0000-00-00T00:00:00+00:00";
    let year = year.clamp(0, 9999) as u32;
    out[0] = b'0' + (year / 1000) as u8;
    out[1] = b'0' + (year / 100 % 10) as u8;
    out[2] = b'0' + (year / 10 % 10) as u8;
    out[3] = b'0' + (year % 10) as u8;
    put2(&mut out[5..7], month);
    put2(&mut out[8..10], day);
    put2(&mut out[11..13], hour as u32);
    put2(&mut out[14..16], minute as u32);
    if offset_seconds < 0 {
        out[19] = b'-';
    }
    let offset = offset_seconds.unsigned_abs();
    put2(&mut out[20..22], offset / 3600);
    put2(&mut out[23..25], offset % 3600 / 60);
    out
}

fn put2(out: &mut [u8], value: u32) {
    out[0] = b'0' + (value / 10) as u8;
    out[1] = b'0' + (value % 10) as u8;
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        parse_instant(text).unwrap()
    }

    fn minute(text: &str) -> Minute {
        Minute::parse_bin_minute(text).unwrap()
    }

    #[test]
    fn bounds_accept_the_documented_forms() {
        let expected = ts("2023-10-26T12:05:00Z");
        for text in [
            "2023-10-26T12:05:00Z",
            "2023-10-26T15:05:00+03:00",
            "2023-10-26T12:05:00.000Z",
            "2023-10-26T12:05:00",
            "2023-10-26 12:05:00",
            "2023-10-26T12:05",
            "2023-10-26T15:05:00 03:00",
            "2023-10-26t12:05:00z",
        ] {
            assert_eq!(parse_instant(text).unwrap(), expected, "{text}");
        }
        assert_eq!(ts("2023-10-26"), ts("2023-10-26T00:00:00Z"));
        assert_eq!(ts("2023-10-26T09:05:00-03:00"), expected);
    }

    #[test]
    fn bounds_reject_nonsense() {
        for text in ["", "yesterday", "2023-13-01T00:00:00Z", "2023-10-26T25:00:00Z", "2023-02-30T00:00:00Z", "12:05"] {
            assert!(parse_instant(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn bounds_round_to_minutes_at_full_precision() {
        let start = minute("2023-10-26T12:05:00Z");
        assert_eq!(Minute::first_at_or_after(ts("2023-10-26T12:05:00Z")), start);
        assert_eq!(Minute::first_at_or_after(ts("2023-10-26T12:05:00.001Z")), start.plus_minutes(1));
        assert_eq!(Minute::first_at_or_after(ts("2023-10-26T12:04:59.999Z")), start);
        assert_eq!(Minute::last_at_or_before(ts("2023-10-26T12:05:59.5Z")), start);
        assert_eq!(Minute::last_at_or_before(ts("2023-10-26T12:05:00Z")), start);
        assert_eq!(Minute::last_at_or_before(ts("2023-10-26T12:04:59.999Z")), start.plus_minutes(-1));
        // Before the epoch the rounding still goes the right way.
        assert_eq!(Minute::first_at_or_after(ts("1969-12-31T23:59:30Z")).unix_seconds(), 0);
        assert_eq!(Minute::last_at_or_before(ts("1969-12-31T23:59:30Z")).unix_seconds(), -60);
    }

    #[test]
    fn bin_minutes_must_have_zero_seconds() {
        assert_eq!(minute("2023-10-26T12:06:00Z").unix_seconds() % 60, 0);
        assert_eq!(minute("2023-10-26T15:06:00+03:00"), minute("2023-10-26T12:06:00Z"));
        assert!(Minute::parse_bin_minute("2023-10-26T12:06:30Z").unwrap_err().contains("seconds"));
        assert!(Minute::parse_bin_minute("2023-10-26T12:06:00.5Z").unwrap_err().contains("seconds"));
        assert!(Minute::parse_bin_minute("1960-01-01T00:00:00Z").unwrap_err().contains("range"));
        assert!(Minute::parse_bin_minute("soon").is_err());
    }

    #[test]
    fn reset_times_parse_strictly() {
        assert_eq!("04:30".parse::<ResetTime>().unwrap().minutes_after_midnight(), 270);
        assert_eq!("00:00".parse::<ResetTime>().unwrap(), ResetTime::MIDNIGHT);
        for bad in ["25:00", "24:00", "12:60", "4:30", "0430", "", "aa:bb"] {
            assert!(bad.parse::<ResetTime>().is_err(), "{bad}");
        }
        assert_eq!("23:59".parse::<ResetTime>().unwrap().to_string(), "23:59");
    }

    #[test]
    fn rendering_matches_jiff_for_many_zones_and_instants() {
        let zones =
            ["Europe/Athens", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC", "America/St_Johns"];
        for zone in zones {
            let timezone = TimeZone::get(zone).unwrap();
            let mut writer = LocalMinuteWriter::new(&timezone);
            let mut seconds = 946_684_800i64; // 2000-01-01
            while seconds < 4_102_444_800 {
                let minute = Minute::from_unix_seconds(seconds).unwrap();
                let zoned = minute.timestamp().to_zoned(timezone.clone());
                let expected = zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
                assert_eq!(std::str::from_utf8(&writer.render(minute)).unwrap(), expected);
                seconds += 60 * 7919; // a prime stride crosses every transition pattern
            }
        }
    }

    #[test]
    fn consecutive_minutes_render_as_jiff_does_across_days_and_transitions() {
        for (zone, from) in [
            ("Europe/Athens", "2023-10-28T18:00:00Z"),
            ("Europe/Athens", "2023-03-25T18:00:00Z"),
            ("Australia/Lord_Howe", "2023-04-01T10:00:00Z"),
            ("America/St_Johns", "2023-11-04T20:00:00Z"),
        ] {
            let timezone = TimeZone::get(zone).unwrap();
            let mut writer = LocalMinuteWriter::new(&timezone);
            let first = minute(from).unix_seconds();
            for seconds in (first..first + 2 * 86_400).step_by(60) {
                let minute = Minute::from_unix_seconds(seconds).unwrap();
                let expected = minute.timestamp().to_zoned(timezone.clone()).strftime("%Y-%m-%dT%H:%M:00%:z");
                assert_eq!(std::str::from_utf8(&writer.render(minute)).unwrap(), expected.to_string(), "{zone}");
            }
        }
    }

    #[test]
    fn rendering_is_dst_correct_in_athens() {
        let athens = TimeZone::get("Europe/Athens").unwrap();
        let mut writer = LocalMinuteWriter::new(&athens);
        let render =
            |writer: &mut LocalMinuteWriter, text| String::from_utf8(writer.render(minute(text)).to_vec()).unwrap();
        assert_eq!(render(&mut writer, "2023-10-29T00:59:00Z"), "2023-10-29T03:59:00+03:00");
        assert_eq!(render(&mut writer, "2023-10-29T01:00:00Z"), "2023-10-29T03:00:00+02:00");
        assert_eq!(render(&mut writer, "2023-03-26T00:59:00Z"), "2023-03-26T02:59:00+02:00");
        assert_eq!(render(&mut writer, "2023-03-26T01:00:00Z"), "2023-03-26T04:00:00+03:00");
        assert_eq!(render(&mut writer, "2023-10-26T12:06:00Z"), "2023-10-26T15:06:00+03:00");
        assert_eq!(render_minute(0, 0), *b"1970-01-01T00:00:00+00:00");
        assert_eq!(&render_minute(0, -(3 * 3600 + 1800)), b"1969-12-31T20:30:00-03:30");
    }

    fn period(zone: &str, reset: &str, at: &str) -> (String, String) {
        let timezone = TimeZone::get(zone).unwrap();
        let calendar = PeriodCalendar { timezone: &timezone, reset: reset.parse().unwrap() };
        let period = calendar.period_of(minute(at));
        let local = |m: Minute| m.timestamp().to_zoned(timezone.clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string();
        (local(period.start), local(period.end))
    }

    #[test]
    fn periods_start_at_the_local_reset() {
        assert_eq!(
            period("Europe/Athens", "00:00", "2023-10-26T12:06:00Z"),
            ("2023-10-26T00:00+03:00".into(), "2023-10-27T00:00+03:00".into())
        );
        // Before a 04:00 reset, data belongs to the previous day's period.
        assert_eq!(
            period("Europe/Athens", "04:00", "2023-10-26T00:30:00Z"),
            ("2023-10-25T04:00+03:00".into(), "2023-10-26T04:00+03:00".into())
        );
        // The minute exactly at the reset starts the new period.
        assert_eq!(period("Europe/Athens", "04:00", "2023-10-26T01:00:00Z").0, "2023-10-26T04:00+03:00");
    }

    #[test]
    fn periods_across_dst() {
        // The day of the DST end is 25 hours long.
        assert_eq!(
            period("Europe/Athens", "00:00", "2023-10-29T12:00:00Z"),
            ("2023-10-29T00:00+03:00".into(), "2023-10-30T00:00+02:00".into())
        );
        // An ambiguous reset (03:30 happens twice on 2023-10-29) resets once, at the first occurrence.
        assert_eq!(
            period("Europe/Athens", "03:30", "2023-10-29T01:15:00Z"),
            ("2023-10-29T03:30+03:00".into(), "2023-10-30T03:30+02:00".into())
        );
        // A reset inside the gap (03:00-04:00 is skipped on 2023-03-26) takes effect at its end.
        assert_eq!(
            period("Europe/Athens", "03:30", "2023-03-26T12:00:00Z"),
            ("2023-03-26T04:00+03:00".into(), "2023-03-27T03:30+03:00".into())
        );
        assert_eq!(period("Europe/Athens", "03:30", "2023-03-26T00:59:00Z").1, "2023-03-26T04:00+03:00");
    }
}
