//! Device health: is a sensor still counting, and can its counts be trusted? Silence while the store is
//! open, completeness (the share of open minutes with data) and the balance of in against out, per local
//! day; the store's hours as set, or learned from its counts.

use std::collections::{BTreeMap, BTreeSet};

use jiff::ToSpan;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use super::Minute;
use super::opening_hours::OpeningHours;

/// The thresholds of the health flags.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthSettings {
    /// Open minutes without a bin after which a device is silent.
    pub silence_minutes: i64,
    /// `|in - out| / max(in, out)` above which a day is imbalanced...
    pub imbalance: f64,
    /// ... when `max(in, out)` is at least this.
    pub imbalance_min_count: i64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings { silence_minutes: 30, imbalance: 0.10, imbalance_min_count: 100 }
    }
}

/// Weeks of counts an hour's "usually open" is learned from, and how many of them must have counts.
pub const LEARNING_WEEKS: usize = 4;
const LEARNED_OPEN_WEEKS: usize = 3;

/// When a store is open: its set hours, or the hours of the week it usually has counts.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Hours set with `--hours`.
    Set(OpeningHours),
    /// Per weekday (Monday first) and local hour: usually open.
    Learned([[bool; 24]; 7]),
}

impl Schedule {
    /// Learns the hours from the local hours (their starts, UTC minutes) that had counts: an hour of the
    /// week is usually open when it had counts on at least 3 of the last 4 same weekdays before `today`.
    pub fn learn(timezone: &TimeZone, hours_with_counts: impl IntoIterator<Item = Minute>, today: Date) -> Schedule {
        let counted: BTreeSet<(Date, i8)> = hours_with_counts
            .into_iter()
            .map(|minute| {
                let local = minute.timestamp().to_zoned(timezone.clone()).datetime();
                (local.date(), local.hour())
            })
            .collect();
        let mut open = [[false; 24]; 7];
        for (weekday, hours) in open.iter_mut().enumerate() {
            // The last LEARNING_WEEKS dates of this weekday before today.
            let back = (today.weekday().to_monday_zero_offset() as i64 - weekday as i64).rem_euclid(7);
            let back = if back == 0 { 7 } else { back };
            let dates: Vec<Date> = (0..LEARNING_WEEKS as i64)
                .filter_map(|week| today.checked_sub((back + 7 * week).days()).ok())
                .collect();
            for (hour, open) in hours.iter_mut().enumerate() {
                let weeks = dates.iter().filter(|date| counted.contains(&(**date, hour as i8))).count();
                *open = weeks >= LEARNED_OPEN_WEEKS;
            }
        }
        Schedule::Learned(open)
    }

    /// Whether the store is open at this local time.
    pub fn is_open(&self, local: DateTime) -> bool {
        match self {
            Schedule::Set(hours) => hours.is_open_at(local),
            Schedule::Learned(open) => open[local.weekday().to_monday_zero_offset() as usize][local.hour() as usize],
        }
    }

    /// Whether the hours are learned.
    pub fn is_learned(&self) -> bool {
        matches!(self, Schedule::Learned(_))
    }
}

/// One local day of a device or a store.
#[derive(Clone, Debug, PartialEq)]
pub struct DayHealth {
    /// The local date.
    pub date: Date,
    /// Minutes the store was open (up to now, today).
    pub open_minutes: u32,
    /// Of those, minutes with a bin.
    pub minutes_with_data: u32,
    /// People in over the day.
    pub entries: i64,
    /// People out over the day.
    pub exits: i64,
    /// `|in - out| / max(in, out)`, none without counts.
    pub balance: Option<f64>,
    /// Whether the balance is over the setting, with enough counts to tell.
    pub imbalanced: bool,
}

impl DayHealth {
    /// Minutes with data over open minutes; none on a closed day.
    pub fn completeness(&self) -> Option<f64> {
        (self.open_minutes > 0).then(|| f64::from(self.minutes_with_data) / f64::from(self.open_minutes))
    }
}

/// A device's health over the days asked.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceHealth {
    /// Its last bin (published or pending), if any in the window.
    pub last_bin: Option<Minute>,
    /// Open minutes since the last bin (or since the window's start), up to now.
    pub open_minutes_without_data: i64,
    /// Whether that is over the silence setting.
    pub silent: bool,
    /// The days, oldest first.
    pub days: Vec<DayHealth>,
}

fn balance(entries: i64, exits: i64, settings: &HealthSettings) -> (Option<f64>, bool) {
    let most = entries.max(exits);
    if most == 0 {
        return (None, false);
    }
    let balance = (entries - exits).abs() as f64 / most as f64;
    (Some(balance), most >= settings.imbalance_min_count && balance > settings.imbalance)
}

/// A device's health from its bins `(minute, in, out)` in `[first, now]` (ascending), the store's
/// zone and schedule; the days are the local dates from `first`'s to `now`'s.
pub fn device_health(
    timezone: &TimeZone,
    schedule: &Schedule,
    bins: &[(Minute, i64, i64)],
    first: Minute,
    now: Minute,
    settings: &HealthSettings,
) -> DeviceHealth {
    let local = |minute: Minute| minute.timestamp().to_zoned(timezone.clone()).datetime();
    let with_data: BTreeMap<Minute, (i64, i64)> =
        bins.iter().filter(|bin| bin.0 >= first && bin.0 <= now).map(|&(m, i, o)| (m, (i, o))).collect();
    let mut days: BTreeMap<Date, DayHealth> = BTreeMap::new();
    let mut open_without_data = 0i64;
    let mut minute = first;
    // One pass over the window's minutes: open or not, with data or not.
    while minute <= now {
        let at = local(minute);
        let day = days.entry(at.date()).or_insert_with(|| DayHealth {
            date: at.date(),
            open_minutes: 0,
            minutes_with_data: 0,
            entries: 0,
            exits: 0,
            balance: None,
            imbalanced: false,
        });
        let data = with_data.get(&minute);
        if let Some(&(entries, exits)) = data {
            day.entries += entries;
            day.exits += exits;
            open_without_data = 0;
        }
        if schedule.is_open(at) {
            day.open_minutes += 1;
            if data.is_some() {
                day.minutes_with_data += 1;
            } else {
                open_without_data += 1;
            }
        }
        minute = minute.plus_minutes(1);
    }
    let days: Vec<DayHealth> = days
        .into_values()
        .map(|mut day| {
            (day.balance, day.imbalanced) = balance(day.entries, day.exits, settings);
            day
        })
        .collect();
    DeviceHealth {
        last_bin: with_data.keys().next_back().copied(),
        open_minutes_without_data: open_without_data,
        silent: open_without_data > settings.silence_minutes,
        days,
    }
}

/// A store's days over all its doors: in and out summed and the balance of the sums (a door counting
/// people in and another counting them out can each be unbalanced while the store is not); the minutes
/// with data of its least complete door.
pub fn store_days(devices: &[DeviceHealth], settings: &HealthSettings) -> Vec<DayHealth> {
    let mut days: BTreeMap<Date, DayHealth> = BTreeMap::new();
    for day in devices.iter().flat_map(|device| &device.days) {
        days.entry(day.date)
            .and_modify(|sum| {
                sum.entries += day.entries;
                sum.exits += day.exits;
                sum.minutes_with_data = sum.minutes_with_data.min(day.minutes_with_data);
            })
            .or_insert_with(|| day.clone());
    }
    days.into_values()
        .map(|mut day| {
            (day.balance, day.imbalanced) = balance(day.entries, day.exits, settings);
            day
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Minute {
        Minute::parse_bin_minute(text).unwrap()
    }

    #[test]
    fn silence_counts_only_open_minutes() {
        let utc = TimeZone::UTC;
        // Open 09:00-10:00 and from 12:00: a last bin at 09:50 is 10 + 15 open minutes old at 12:15.
        let schedule = Schedule::Set("Mo-Su 09:00-10:00,12:00-24:00".parse().unwrap());
        let bins = [(at("2023-10-26T09:50:00Z"), 3, 1)];
        let settings = HealthSettings::default();
        let health =
            device_health(&utc, &schedule, &bins, at("2023-10-26T00:00:00Z"), at("2023-10-26T12:15:00Z"), &settings);
        assert_eq!(health.open_minutes_without_data, 9 + 16);
        assert!(!health.silent);
        let later = at("2023-10-26T12:30:00Z");
        let health = device_health(&utc, &schedule, &bins, at("2023-10-26T00:00:00Z"), later, &settings);
        assert!(health.silent, "{health:?}");
        let day = &health.days[0];
        assert_eq!((day.open_minutes, day.minutes_with_data), (60 + 31, 1));
        assert_eq!(health.last_bin, Some(at("2023-10-26T09:50:00Z")));
    }

    #[test]
    fn imbalance_needs_enough_counts() {
        let settings = HealthSettings::default();
        assert_eq!(balance(99, 50, &settings), (Some(49.0 / 99.0), false), "too few to tell");
        assert_eq!(balance(200, 100, &settings), (Some(0.5), true));
        assert_eq!(balance(200, 185, &settings), (Some(0.075), false));
        assert_eq!(balance(0, 0, &settings), (None, false));
    }

    #[test]
    fn a_store_sums_its_doors_before_the_balance() {
        let utc = TimeZone::UTC;
        let schedule = Schedule::Set(OpeningHours::always_open());
        let settings = HealthSettings::default();
        let (first, now) = (at("2023-10-26T00:00:00Z"), at("2023-10-26T00:09:00Z"));
        let inbound: Vec<_> = (0..10).map(|n| (first.plus_minutes(n), 20, 0)).collect();
        let outbound: Vec<_> = (0..5).map(|n| (first.plus_minutes(n), 0, 40)).collect();
        let doors = [
            device_health(&utc, &schedule, &inbound, first, now, &settings),
            device_health(&utc, &schedule, &outbound, first, now, &settings),
        ];
        assert!(doors.iter().all(|door| door.days[0].imbalanced));
        let store = store_days(&doors, &settings);
        assert_eq!((store[0].entries, store[0].exits, store[0].imbalanced), (200, 200, false));
        assert_eq!(store[0].minutes_with_data, 5, "the least complete door");
    }

    #[test]
    fn hours_are_learned_per_weekday_and_hour() {
        let utc = TimeZone::UTC;
        let today: Date = "2023-10-26".parse().unwrap(); // a Thursday
        // Thursdays 10:00 on three of the last four weeks; 11:00 on two.
        let hours = ["2023-10-19T10:05:00Z", "2023-10-12T10:00:00Z", "2023-09-28T10:30:00Z"]
            .into_iter()
            .chain(["2023-10-19T11:00:00Z", "2023-10-05T11:00:00Z", "2023-09-21T11:00:00Z"])
            .map(at);
        let schedule = Schedule::learn(&utc, hours, today);
        let thursday = |hour| today.at(hour, 15, 0, 0);
        assert!(schedule.is_open(thursday(10)));
        assert!(!schedule.is_open(thursday(11)), "2023-09-21 is five weeks back");
        assert!(!schedule.is_open("2023-10-27T10:15".parse().unwrap()), "another weekday");
        assert!(schedule.is_learned());
    }
}
