//! Store opening hours in a subset of the OpenStreetMap `opening_hours` syntax, as given to
//! `footfall store add/set CODE --hours "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off"`.
//!
//! # Grammar
//!
//! ```text
//! hours    = rule *( ";" rule )         ; empty rules (e.g. after a trailing ";") are ignored
//! rule     = "24/7"                     ; open all week, must stand alone as a rule
//!          | days " " times
//!          | days " " ( "off" | "closed" )
//!          | times                      ; every day
//! days     = day-item *( "," day-item )
//! day-item = day | day "-" day          ; a range may wrap: Sa-Mo is Sa, Su, Mo
//! day      = "Mo" | "Tu" | "We" | "Th" | "Fr" | "Sa" | "Su"
//! times    = range *( "," range )
//! range    = time "-" time
//! time     = HH ":" MM                  ; two digits each, HH 00-24, MM 00-59, 24:00 only as an end
//! ```
//!
//! Whitespace around `;`, `,` and `-` is ignored; days and times are separated by whitespace.
//! Day names are case-sensitive, as in OSM.
//!
//! A range whose end is before its start runs past midnight: `Fr 22:00-02:00` opens Friday
//! 22:00-24:00 and Saturday 00:00-02:00 (Sunday's spill goes to Monday). A range whose end equals
//! its start is refused; a whole day is `00:00-24:00`.
//!
//! Later rules replace earlier ones for the weekdays they name, as in OSM:
//! `Mo-Sa 09:00-20:00; Sa 10:00-18:00` opens Saturday 10:00-18:00 only. A rule replaces the day's
//! own ranges (and their spill into the next day), not the spill it receives from the previous
//! day: with `Fr 22:00-02:00; Sa off` the store is still open Saturday 00:00-02:00.
//!
//! Examples: `24/7`; `09:00-21:00`; `Mo-Fr 08:30-12:00,14:00-18:30; Sa 09:00-12:00; Su closed`;
//! `Th-Sa 18:00-03:00`; `Sa-Mo 10:00-16:00`.
//!
//! Everything else in the OSM syntax (public and school holidays `PH`/`SH`, months, dates, years,
//! week numbers, `Mo[1]`, open ends `+`, sunrise and sunset, comments, `open`/`unknown`, `||`
//! fallbacks, repeating `/` ranges) is refused with an error saying it is not supported.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{DateTime, Weekday};

/// Minutes in a day.
const DAY: u16 = 24 * 60;

/// OSM day names, Monday first (the index is [`Weekday::to_monday_zero_offset`]).
const DAY_NAMES: [&str; 7] = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

/// The weekdays a rule names, Monday first.
type WeekdaySet = [bool; 7];

/// Weekly opening hours: for each weekday, the open intervals in local time.
///
/// Each day holds its intervals `[start, end)` in minutes after local midnight, sorted, with
/// `end <= 1440`, merged so that none overlap or touch. A past-midnight range is stored split
/// across its two days, so two texts meaning the same week compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpeningHours {
    days: [Vec<(u16, u16)>; 7],
}

impl OpeningHours {
    /// Open every minute of every day (`24/7`).
    pub fn always_open() -> OpeningHours {
        OpeningHours { days: std::array::from_fn(|_| vec![(0, DAY)]) }
    }

    /// Parses the subset of the OSM syntax described in the module documentation.
    ///
    /// The error quotes the offending part and says what was expected instead, e.g.
    /// `"Mx": unknown weekday; expected Mo, Tu, We, Th, Fr, Sa, Su`.
    pub fn parse(text: &str) -> Result<OpeningHours, String> {
        // Each day's own ranges, ends up to 2880 when they run past midnight: a later rule naming
        // the day replaces them, spill included, but not the spill it receives from the day before.
        let mut own: [Vec<(u16, u16)>; 7] = Default::default();
        let mut any_rule = false;
        for rule in text.split(';') {
            let rule = normalize(rule);
            if rule.is_empty() {
                continue;
            }
            any_rule = true;
            let (days, ranges) = parse_rule(&rule)?;
            for (day, selected) in days.iter().enumerate() {
                if *selected {
                    own[day] = ranges.clone();
                }
            }
        }
        if !any_rule {
            return Err(format!(
                "{:?}: no rules; expected e.g. \"Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off\" or \"24/7\"",
                text.trim()
            ));
        }
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (day, ranges) in own.iter().enumerate() {
            for &(start, end) in ranges {
                days[day].push((start, end.min(DAY)));
                if end > DAY {
                    days[(day + 1) % 7].push((0, end - DAY));
                }
            }
        }
        for intervals in &mut days {
            merge(intervals);
        }
        Ok(OpeningHours { days })
    }

    /// The open intervals `[start, end)` of `weekday`, in minutes after local midnight: sorted,
    /// disjoint, `end <= 1440`; empty when closed all day.
    pub fn intervals(&self, weekday: Weekday) -> &[(u16, u16)] {
        &self.days[index(weekday)]
    }

    /// Whether the store is open during minute `minute_of_day` (0-1439, local time) of `weekday`.
    /// Values from 1440 on are not minutes of a day and are never open.
    pub fn is_open(&self, weekday: Weekday, minute_of_day: u16) -> bool {
        self.intervals(weekday).iter().any(|&(start, end)| start <= minute_of_day && minute_of_day < end)
    }

    /// Whether the store is open at local civil time `local` (seconds are ignored).
    pub fn is_open_at(&self, local: DateTime) -> bool {
        // hour() is 0-23 and minute() 0-59: the casts are lossless.
        let minute_of_day = local.hour() as u16 * 60 + local.minute() as u16;
        self.is_open(local.weekday(), minute_of_day)
    }

    /// Total open minutes of `weekday` (1440 when open all day), spill from the day before included.
    pub fn open_minutes(&self, weekday: Weekday) -> u16 {
        self.intervals(weekday).iter().map(|&(start, end)| end - start).sum()
    }
}

impl FromStr for OpeningHours {
    type Err = String;

    /// Same as [`OpeningHours::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OpeningHours::parse(text)
    }
}

/// The canonical form, which parses back to the same value: `24/7` when always open, otherwise one
/// rule per run of consecutive weekdays (Monday to Sunday) with the same intervals, e.g.
/// `Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off`. Past-midnight spill shows as the next day's own
/// `00:00-HH:MM` range.
impl fmt::Display for OpeningHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == OpeningHours::always_open() {
            return f.write_str("24/7");
        }
        let mut first = 0;
        while first < 7 {
            let mut last = first;
            while last + 1 < 7 && self.days[last + 1] == self.days[first] {
                last += 1;
            }
            if first > 0 {
                f.write_str("; ")?;
            }
            f.write_str(DAY_NAMES[first])?;
            if last > first {
                write!(f, "-{}", DAY_NAMES[last])?;
            }
            if self.days[first].is_empty() {
                f.write_str(" off")?;
            }
            for (i, &(start, end)) in self.days[first].iter().enumerate() {
                let separator = if i == 0 { ' ' } else { ',' };
                write!(f, "{separator}{:02}:{:02}-{:02}:{:02}", start / 60, start % 60, end / 60, end % 60)?;
            }
            first = last + 1;
        }
        Ok(())
    }
}

/// Monday is 0, Sunday 6.
fn index(weekday: Weekday) -> usize {
    weekday.to_monday_zero_offset() as usize
}

/// Drops whitespace next to `-` and `,` and collapses other runs of whitespace to one space, so
/// that `Mo - Fr 09:00 - 12:00, 14:00 - 18:00` splits into two words.
fn normalize(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len());
    let mut pending_space = false;
    for c in rule.trim().chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !matches!(c, '-' | ',') && !out.ends_with(['-', ',']) {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// One normalized, non-empty rule: the weekdays it names and its ranges (ends up to 2880).
fn parse_rule(rule: &str) -> Result<(WeekdaySet, Vec<(u16, u16)>), String> {
    let words: Vec<&str> = rule.split(' ').collect();
    for word in &words {
        check_supported(word)?;
    }
    if words == ["24/7"] {
        return Ok(([true; 7], vec![(0, DAY)]));
    }
    if words.contains(&"24/7") {
        return Err(format!("{rule:?}: 24/7 must stand alone as a rule; for some days write e.g. Mo-Fr 00:00-24:00"));
    }
    let first = words[0];
    let (days, rest) = if first.starts_with(|c: char| c.is_ascii_digit()) {
        ([true; 7], &words[..])
    } else if matches!(first, "off" | "closed") {
        return Err(format!("{rule:?}: expected weekdays before {first} (e.g. Su {first})"));
    } else if first.starts_with(|c: char| c.is_ascii_alphabetic()) {
        (parse_days(first)?, &words[1..])
    } else {
        return Err(format!("{first:?}: expected weekdays (e.g. Mo-Fr), a time range (e.g. 09:00-21:00) or 24/7"));
    };
    let [times, extra @ ..] = rest else {
        return Err(format!("{rule:?}: missing opening times; expected HH:MM-HH:MM ranges or off after the weekdays"));
    };
    let ranges = if matches!(*times, "off" | "closed") { Vec::new() } else { parse_times(times)? };
    if let Some(extra) = extra.first() {
        return Err(format!(
            "{rule:?}: unexpected {extra:?}; separate weekdays from times with one space, time ranges with \",\" \
             and rules with \";\""
        ));
    }
    Ok((days, ranges))
}

/// Refuses the parts of the OSM syntax this subset does not implement, naming the word or item.
fn check_supported(word: &str) -> Result<(), String> {
    // (what is refused, what to write instead)
    let refused =
        |part: &str, (what, instead): (&str, &str)| Err(format!("{part:?}: {what} are not supported; {instead}"));
    let by_character = [
        ('"', ("comments", "remove the quoted text")),
        ('|', ("fallback rules (||)", "write one rule per day range")),
        ('+', ("open ends (+)", "write an end time")),
        ('[', ("nth weekdays of the month (e.g. Mo[1])", "name the weekday alone")),
        ('(', ("variable times", "write HH:MM")),
    ];
    for (character, why) in by_character {
        if word.contains(character) {
            return refused(word, why);
        }
    }
    if word.contains('/') && word != "24/7" {
        return refused(word, ("repeating ranges (/)", "write each range, or 24/7 alone"));
    }
    let only_weekdays = "rules apply to every week of the year; name weekdays only";
    for item in word.split([',', '-']) {
        let why = match item.to_ascii_lowercase().as_str() {
            "ph" => ("public holidays (PH)", only_weekdays),
            "sh" => ("school holidays (SH)", only_weekdays),
            "jan" | "feb" | "mar" | "apr" | "may" | "jun" | "jul" | "aug" | "sep" | "oct" | "nov" | "dec" => {
                ("months", only_weekdays)
            }
            "week" => ("week numbers", only_weekdays),
            "easter" => ("dates", only_weekdays),
            "sunrise" | "sunset" | "dawn" | "dusk" => ("times relative to the sun", "write HH:MM"),
            "open" | "unknown" => ("the open and unknown modifiers", "write times or off"),
            _ if item.len() == 4 && item.bytes().all(|b| b.is_ascii_digit()) => ("years", only_weekdays),
            _ => continue,
        };
        return refused(item, why);
    }
    Ok(())
}

/// `Mo-Fr,Su`: the weekdays named, ranges wrapping past Sunday (`Sa-Mo`).
fn parse_days(text: &str) -> Result<WeekdaySet, String> {
    let mut days = [false; 7];
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{text:?}: empty weekday in the list; expected e.g. Mo,We,Fr"));
        }
        match item.split_once('-') {
            None => days[parse_day(item)?] = true,
            Some((from, to)) => {
                let (from, to) = (parse_day(from)?, parse_day(to)?);
                if from == to {
                    return Err(format!(
                        "{item:?}: a weekday range must end on another day; write {} alone",
                        DAY_NAMES[from]
                    ));
                }
                let mut day = from;
                days[day] = true;
                while day != to {
                    day = (day + 1) % 7;
                    days[day] = true;
                }
            }
        }
    }
    Ok(days)
}

/// One OSM day name, Monday 0.
fn parse_day(name: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|&day| day == name)
        .ok_or_else(|| format!("{name:?}: unknown weekday; expected Mo, Tu, We, Th, Fr, Sa, Su"))
}

/// `09:00-12:00,14:00-18:00`: sorted, merged ranges, ends past 1440 for ranges past midnight.
fn parse_times(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut ranges = Vec::new();
    for item in text.split(',') {
        ranges.push(parse_range(item)?);
    }
    merge(&mut ranges);
    Ok(ranges)
}

/// `22:00-02:00` is `(1320, 1560)`: an end before the start means the next day.
fn parse_range(text: &str) -> Result<(u16, u16), String> {
    if DAY_NAMES.iter().any(|day| text.starts_with(day)) {
        return Err(format!("{text:?}: weekdays after times; separate rules with \";\""));
    }
    let expected = || format!("{text:?}: expected a time range HH:MM-HH:MM (e.g. 09:00-21:00)");
    let (start, end) = text.split_once('-').ok_or_else(expected)?;
    let (start, end) = (parse_time(text, start)?, parse_time(text, end)?);
    if start == DAY {
        return Err(format!("{text:?}: 24:00 can only end a range; write 00:00"));
    }
    if start == end {
        return Err(format!("{text:?}: the range is empty (start equals end); for a whole day write 00:00-24:00"));
    }
    Ok(if end < start { (start, end + DAY) } else { (start, end) })
}

/// `HH:MM` within range `range` (quoted in errors), as minutes after midnight, 24:00 being 1440.
fn parse_time(range: &str, text: &str) -> Result<u16, String> {
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let (hour, minute) = match text.split_once(':') {
        Some((h, m)) if digits(h) && digits(m) => (h.parse::<u16>().unwrap_or(0), m.parse::<u16>().unwrap_or(0)),
        _ => return Err(format!("{range:?}: {text:?} is not a time; expected HH:MM-HH:MM (e.g. 09:00-21:00)")),
    };
    if hour > 24 {
        return Err(format!("{range:?}: hour {hour:02} is out of range; expected 00-24"));
    }
    if minute > 59 {
        return Err(format!("{range:?}: minute {minute:02} is out of range; expected 00-59"));
    }
    if hour == 24 && minute > 0 {
        return Err(format!("{range:?}: 24:{minute:02} is past the end of the day; 24:00 is the latest time"));
    }
    Ok(hour * 60 + minute)
}

/// Sorts `intervals` and merges those that overlap or touch.
fn merge(intervals: &mut Vec<(u16, u16)>) {
    intervals.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(intervals.len());
    for &(start, end) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *intervals = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::*;

    const WEEK: [Weekday; 7] = [Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday];

    fn hours(text: &str) -> OpeningHours {
        OpeningHours::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    fn error(text: &str) -> String {
        OpeningHours::parse(text).expect_err(text)
    }

    #[test]
    fn the_usual_week() {
        let h = hours("Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off");
        for day in [Monday, Tuesday, Wednesday, Thursday, Friday] {
            assert_eq!(h.intervals(day), [(hm(9, 0), hm(21, 0))]);
        }
        assert_eq!(h.intervals(Saturday), [(hm(10, 0), hm(20, 0))]);
        assert!(h.intervals(Sunday).is_empty());
        assert!(!h.is_open(Monday, hm(8, 59)));
        assert!(h.is_open(Monday, hm(9, 0)));
        assert!(h.is_open(Monday, hm(20, 59)));
        assert!(!h.is_open(Monday, hm(21, 0)));
        assert!(!h.is_open(Sunday, hm(12, 0)));
        assert!(!h.is_open(Monday, 1440));
        assert_eq!(h.open_minutes(Friday), 720);
        assert_eq!(h.open_minutes(Saturday), 600);
        assert_eq!(h.open_minutes(Sunday), 0);
        assert_eq!(h.to_string(), "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off");
    }

    #[test]
    fn is_open_at_a_local_time() {
        let h = hours("Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off");
        // 2025-01-06 is a Monday.
        assert!(h.is_open_at(jiff::civil::date(2025, 1, 6).at(9, 0, 0, 0)));
        assert!(!h.is_open_at(jiff::civil::date(2025, 1, 6).at(8, 59, 59, 0)));
        assert!(!h.is_open_at(jiff::civil::date(2025, 1, 12).at(12, 0, 0, 0)));
        assert!(h.is_open_at(jiff::civil::date(2025, 1, 11).at(19, 59, 0, 0)));
    }

    #[test]
    fn later_rules_replace_earlier_ones_for_their_days() {
        let h = hours("Mo-Sa 09:00-20:00; Sa 10:00-18:00");
        assert_eq!(h.intervals(Friday), [(hm(9, 0), hm(20, 0))]);
        assert_eq!(h.intervals(Saturday), [(hm(10, 0), hm(18, 0))]);
        assert!(h.intervals(Sunday).is_empty());
        assert_eq!(hours("09:00-18:00; Su off"), hours("Mo-Sa 09:00-18:00"));
        assert_eq!(hours("Mo-Fr 09:00-12:00; Mo-Fr 14:00-18:00"), hours("Mo-Fr 14:00-18:00"));
    }

    #[test]
    fn day_lists_and_wrapping_ranges() {
        let h = hours("Sa-Mo 10:00-16:00");
        for day in WEEK {
            assert_eq!(h.open_minutes(day) > 0, matches!(day, Saturday | Sunday | Monday), "{day:?}");
        }
        assert_eq!(hours("Mo,We,Fr-Su 10:00-16:00"), hours("Mo 10:00-16:00; We 10:00-16:00; Fr-Su 10:00-16:00"));
        assert_eq!(hours("Tu-Mo 08:00-09:00"), hours("08:00-09:00"));
    }

    #[test]
    fn several_ranges_a_day_are_sorted_and_merged() {
        let h = hours("Mo 14:00-18:00,08:30-12:00,11:00-12:30,18:00-19:00");
        assert_eq!(h.intervals(Monday), [(hm(8, 30), hm(12, 30)), (hm(14, 0), hm(19, 0))]);
        assert_eq!(h.open_minutes(Monday), 240 + 300);
    }

    #[test]
    fn whitespace_is_tolerated() {
        assert_eq!(
            hours("  Mo - Fr  09:00 - 12:00 , 14:00-18:00 ;Sa,Su\toff ; "),
            hours("Mo-Fr 09:00-12:00,14:00-18:00; Sa,Su off")
        );
        assert_eq!(hours("Su closed; Mo-Sa 10:00-19:00"), hours("Mo-Sa 10:00-19:00; Su off"));
    }

    #[test]
    fn ranges_past_midnight_spill_into_the_next_day() {
        let h = hours("Fr 22:00-02:00");
        assert_eq!(h.intervals(Friday), [(hm(22, 0), 1440)]);
        assert_eq!(h.intervals(Saturday), [(0, hm(2, 0))]);
        assert!(h.is_open(Saturday, hm(1, 59)));
        assert!(!h.is_open(Saturday, hm(2, 0)));

        let h = hours("Su 20:00-03:30");
        assert_eq!(h.intervals(Sunday), [(hm(20, 0), 1440)]);
        assert_eq!(h.intervals(Monday), [(0, hm(3, 30))]);

        // The spill joins the next day's own ranges.
        let h = hours("Th-Sa 18:00-03:00");
        assert_eq!(h.intervals(Thursday), [(hm(18, 0), 1440)]);
        assert_eq!(h.intervals(Friday), [(0, hm(3, 0)), (hm(18, 0), 1440)]);
        assert_eq!(h.intervals(Sunday), [(0, hm(3, 0))]);
        assert_eq!(h.to_string(), "Mo-We off; Th 18:00-24:00; Fr-Sa 00:00-03:00,18:00-24:00; Su 00:00-03:00");

        let h = hours("00:00-24:00; Mo 23:00-01:00");
        assert_eq!(h.intervals(Tuesday), [(0, 1440)]);
    }

    #[test]
    fn an_override_keeps_the_spill_it_receives_but_replaces_the_spill_it_gives() {
        let h = hours("Fr 22:00-02:00; Sa off");
        assert_eq!(h.intervals(Saturday), [(0, hm(2, 0))]);
        let h = hours("Fr-Sa 22:00-02:00; Sa 10:00-18:00");
        assert_eq!(h.intervals(Saturday), [(0, hm(2, 0)), (hm(10, 0), hm(18, 0))]);
        assert!(h.intervals(Sunday).is_empty());
    }

    #[test]
    fn always_open() {
        assert_eq!(hours("24/7"), OpeningHours::always_open());
        assert_eq!(hours("00:00-24:00"), OpeningHours::always_open());
        assert_eq!(hours("Mo-Su 00:00-12:00,12:00-24:00"), OpeningHours::always_open());
        assert_eq!(hours("24/7; Su off").to_string(), "Mo-Sa 00:00-24:00; Su off");
        for day in WEEK {
            assert_eq!(OpeningHours::always_open().open_minutes(day), 1440);
            assert!(OpeningHours::always_open().is_open(day, 1439));
        }
        assert_eq!(OpeningHours::always_open().to_string(), "24/7");
        assert_eq!("24/7".parse::<OpeningHours>(), Ok(OpeningHours::always_open()));
    }

    #[test]
    fn closed_days() {
        let h = hours("Su off");
        assert!(WEEK.iter().all(|&day| h.open_minutes(day) == 0));
        assert_eq!(h.to_string(), "Mo-Su off");
    }

    #[test]
    fn display_parses_back_to_the_same_value() {
        for text in [
            "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off",
            "24/7",
            "Su off",
            "09:00-18:00",
            "Mo-Sa 09:00-20:00; Sa 10:00-18:00",
            "Sa-Mo 10:00-16:00",
            "Fr 22:00-02:00; Sa off",
            "Su 20:00-03:30",
            "Th-Sa 18:00-03:00",
            "Mo,We,Fr 08:30-12:00,14:00-18:30; Tu 00:00-24:00",
            "24/7; Su off",
        ] {
            let value = hours(text);
            let shown = value.to_string();
            assert_eq!(hours(&shown), value, "{text:?} shown as {shown:?}");
            assert_eq!(hours(&shown).to_string(), shown);
        }
        assert_eq!(hours("09:00-18:00").to_string(), "Mo-Su 09:00-18:00");
        assert_eq!(hours("Sa-Mo 10:00-16:00").to_string(), "Mo 10:00-16:00; Tu-Fr off; Sa-Su 10:00-16:00");
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("Mx 09:00-12:00", "\"Mx\": unknown weekday; expected Mo, Tu, We, Th, Fr, Sa, Su"),
            ("Mo-Fx 09:00-12:00", "\"Fx\": unknown weekday"),
            ("mo 09:00-12:00", "\"mo\": unknown weekday"),
            ("Mo-Mo 09:00-12:00", "\"Mo-Mo\": a weekday range must end on another day"),
            ("Mo,,Tu 09:00-12:00", "\"Mo,,Tu\": empty weekday"),
            ("Mo-Fr 09:00-25:00", "\"09:00-25:00\": hour 25 is out of range; expected 00-24"),
            ("Mo 09:60-12:00", "\"09:60-12:00\": minute 60 is out of range"),
            ("Mo 09:00-24:30", "\"09:00-24:30\": 24:30 is past the end of the day"),
            ("Mo 24:00-02:00", "\"24:00-02:00\": 24:00 can only end a range"),
            ("Mo 09:00-09:00", "\"09:00-09:00\": the range is empty"),
            ("Mo 9:00-12:00", "\"9:00-12:00\": \"9:00\" is not a time"),
            ("Mo 09:00", "\"09:00\": expected a time range HH:MM-HH:MM"),
            ("Mo-Fr", "\"Mo-Fr\": missing opening times"),
            ("Mo 09:00-12:00 14:00-18:00", "unexpected \"14:00-18:00\""),
            ("Mo 09:00-12:00,We 10:00-11:00", "\"We\": weekdays after times"),
            ("off", "\"off\": expected weekdays before off"),
            ("Mo-Fr 24/7", "24/7 must stand alone"),
            ("", "no rules"),
            (" ; ", "no rules"),
            ("PH off", "\"PH\": public holidays (PH) are not supported"),
            ("Mo-Fr,SH 09:00-12:00", "\"SH\": school holidays (SH) are not supported"),
            ("Jan-Mar Mo 09:00-12:00", "\"Jan\": months"),
            ("week 01-10 Mo 09:00-12:00", "\"week\": week numbers are not supported"),
            ("Mo 09:00+", "\"09:00+\": open ends (+) are not supported; write an end time"),
            ("Mo sunrise-sunset", "\"sunrise\": times relative to the sun"),
            ("Mo 09:00-12:00 \"call ahead\"", "comments are not supported"),
            ("Mo[1] 09:00-12:00", "\"Mo[1]\": nth weekdays"),
            ("Mo 09:00-12:00 || Tu off", "fallback rules (||) are not supported"),
            ("2025 Mo 09:00-12:00", "\"2025\": years are not supported"),
            ("Mo 10:00-16:00/30", "repeating ranges (/) are not supported"),
            ("Mo 09:00-12:00 open", "\"open\": the open and unknown modifiers"),
            ("Mo 09:00-12:00; Tu x", "\"x\": expected a time range"),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.contains(expected), "{text:?}: {message:?} does not contain {expected:?}");
        }
    }
}
