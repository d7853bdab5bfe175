//! Sensors that push in their vendor's own format: which vendor, the serial their payloads carry, which
//! counts are "in" and "out", and the rules that turn what they report into minute bins.
//!
//! The rules (docs/sensors.md says them to installers):
//! - an interval's counts are recorded at the minute holding the interval's start; longer intervals are
//!   not spread over the minutes they cover;
//! - several intervals starting in one minute add up, and a vendor interval sent again (same device,
//!   same key: logic and start, say) replaces the earlier copy instead of adding to it;
//! - cumulative registers: the count of `[t1, t2)` is `value(t2) - value(t1)`, recorded at `t1`'s
//!   minute; a decrease is a reset and counts `value(t2)`; the first reading only sets the baseline; a
//!   reading sent again changes nothing; a late reading between two known ones splits their interval;
//! - times: UTC or an explicit offset where the payload has one, a time without offset in the store's
//!   zone (the earlier instant where a fall-back makes it ambiguous).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::{Counts, DeviceId, Minute};

/// A sensor vendor whose push format footfall reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    /// Xovis PC series: firmware 5 `logics_data`, firmware 4 count push.
    Xovis,
    /// Axis 3D People Counter: "Axis Retail Data".
    Axis,
    /// Irisys Vector: `CountLogs` of cumulative registers.
    Irisys,
    /// Milesight VS1xx: `line_periodic_data`.
    Milesight,
    /// Hikvision: `EventNotificationAlert` PeopleCounting.
    Hikvision,
}

impl Vendor {
    /// Every vendor, in the order of the docs.
    pub const ALL: [Vendor; 5] = [Vendor::Xovis, Vendor::Axis, Vendor::Irisys, Vendor::Milesight, Vendor::Hikvision];

    /// The name in paths, topics and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Vendor::Xovis => "xovis",
            Vendor::Axis => "axis",
            Vendor::Irisys => "irisys",
            Vendor::Milesight => "milesight",
            Vendor::Hikvision => "hikvision",
        }
    }

    /// The vendor of a name (case-insensitive).
    pub fn parse(text: &str) -> Result<Vendor, String> {
        Vendor::ALL.into_iter().find(|vendor| vendor.as_str().eq_ignore_ascii_case(text)).ok_or_else(|| {
            let names: Vec<&str> = Vendor::ALL.iter().map(|v| v.as_str()).collect();
            format!("unknown vendor {text:?}; expected one of {}", names.join(", "))
        })
    }

    /// The names of the "in" and "out" counts when none are given; `None` where there is no default
    /// (Irisys registers are named by the installer).
    pub const fn default_names(self) -> Option<(&'static str, &'static str)> {
        match self {
            Vendor::Xovis => Some(("fw", "bw")),
            Vendor::Axis | Vendor::Milesight => Some(("in", "out")),
            Vendor::Hikvision => Some(("enter", "exit")),
            Vendor::Irisys => None,
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A serial as compared: trimmed, ASCII upper case (MAC-like serials arrive in either case).
pub fn normalize_serial(serial: &str) -> String {
    serial.trim().to_ascii_uppercase()
}

/// How a sensor's payloads become one device's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorConfig {
    /// Its vendor.
    pub vendor: Vendor,
    /// Its serial, normalized ([`normalize_serial`]).
    pub serial: String,
    /// The count (counter name, direction, register name or id) that is "in".
    pub in_name: String,
    /// The count that is "out".
    pub out_name: String,
    /// Which lines (Xovis logic ids, Milesight line numbers) to sum; empty: all.
    pub lines: Vec<u32>,
    /// Swap in and out (a sensor mounted the other way round).
    pub reverse: bool,
}

impl SensorConfig {
    /// A configuration, with the vendor's default names where none are given.
    pub fn new(
        vendor: Vendor,
        serial: &str,
        names: (Option<String>, Option<String>),
        lines: Vec<u32>,
        reverse: bool,
    ) -> Result<SensorConfig, String> {
        let serial = normalize_serial(serial);
        if serial.is_empty() || serial.len() > 64 {
            return Err("the serial must be 1 to 64 characters".into());
        }
        let (in_name, out_name) = match (names, vendor.default_names()) {
            ((Some(i), Some(o)), _) => (i, o),
            ((i, o), Some((di, d_o))) => (i.unwrap_or_else(|| di.into()), o.unwrap_or_else(|| d_o.into())),
            (_, None) => return Err(format!("{vendor} sensors need --in and --out (register names or ids)")),
        };
        if in_name == out_name {
            return Err("--in and --out must differ".into());
        }
        Ok(SensorConfig { vendor, serial, in_name, out_name, lines, reverse })
    }

    /// The lines as stored: comma-separated, empty for all.
    pub fn lines_text(&self) -> String {
        self.lines.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }

    /// Parses [`SensorConfig::lines_text`].
    pub fn parse_lines(text: &str) -> Result<Vec<u32>, String> {
        text.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().map_err(|_| format!("bad line {s:?}"))).collect()
    }

    fn role(&self, name: &str, id: Option<&str>) -> Option<Role> {
        let is = |wanted: &str| name == wanted || id == Some(wanted);
        let role = if is(&self.in_name) {
            Role::In
        } else if is(&self.out_name) {
            Role::Out
        } else {
            return None;
        };
        Some(if self.reverse { role.other() } else { role })
    }
}

/// A registered sensor, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensor {
    /// The device it counts as.
    pub device_id: DeviceId,
    /// Its configuration.
    pub config: SensorConfig,
    /// When it last pushed something stored.
    pub last_push_at: Option<Timestamp>,
    /// The last package sequence number seen (Xovis `package_info.id`).
    pub last_package: Option<i64>,
    /// How many package numbers were skipped so far (Xovis: packages lost or not yet re-sent).
    pub package_gaps: i64,
}

/// A serial that pushed without being registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSensor {
    /// The vendor path it pushed to.
    pub vendor: Vendor,
    /// Its serial, normalized.
    pub serial: String,
    /// First push.
    pub first_seen: Timestamp,
    /// Last push.
    pub last_seen: Timestamp,
    /// How many pushes.
    pub pushes: i64,
}

/// "In" or "out".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Entries.
    In,
    /// Exits.
    Out,
}

impl Role {
    /// The other one.
    pub const fn other(self) -> Role {
        match self {
            Role::In => Role::Out,
            Role::Out => Role::In,
        }
    }

    /// As stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::In => "in",
            Role::Out => "out",
        }
    }

    /// From [`Role::as_str`].
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "in" => Some(Role::In),
            "out" => Some(Role::Out),
            _ => None,
        }
    }
}

/// A time as a payload gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// UTC, or with an offset: an instant.
    Instant(Timestamp),
    /// Without offset: in the store's zone.
    Local(DateTime),
}

impl When {
    /// The instant, a local time taken in `zone` (the earlier one where it is ambiguous).
    pub fn resolve(self, zone: &TimeZone) -> Result<Timestamp, String> {
        match self {
            When::Instant(instant) => Ok(instant),
            When::Local(local) => zone
                .to_ambiguous_timestamp(local)
                .earlier()
                .map_err(|e| format!("{local} has no instant in the store's zone: {e}")),
        }
    }
}

/// One interval's counts as reported, before the sensor's mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawInterval {
    /// The line or logic it counts (for `--line`), if the vendor has several.
    pub line: Option<u32>,
    /// What identifies it among the device's intervals, start included: sent again, it replaces.
    pub key: String,
    /// Its start.
    pub start: When,
    /// Named counts (counter names, directions).
    pub counts: Vec<(String, u64)>,
}

/// One reading of a cumulative register, before the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawReading {
    /// Its name.
    pub name: String,
    /// Its id, if the vendor has one.
    pub id: Option<String>,
    /// When it was read.
    pub at: When,
    /// The register's value.
    pub value: u64,
}

/// What a payload says, vendor-neutral.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    /// The serial the payload carries (not normalized).
    pub serial: String,
    /// The package sequence (agent, number), if the vendor numbers packages.
    pub package: Option<(i64, i64)>,
    /// Interval counts.
    pub intervals: Vec<RawInterval>,
    /// Register readings.
    pub readings: Vec<RawReading>,
}

/// An interval mapped to in and out, at its minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Its key ([`RawInterval::key`]).
    pub key: String,
    /// The minute holding its start.
    pub minute: Minute,
    /// In and out.
    pub counts: Counts,
}

/// A register reading mapped to in or out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// In or out.
    pub role: Role,
    /// When.
    pub at: Timestamp,
    /// The value.
    pub value: u64,
}

/// What one push stores for one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observations {
    /// Interval counts, replacing by key.
    pub intervals: Vec<Interval>,
    /// Register readings, ignored when already known.
    pub readings: Vec<Reading>,
}

fn to_u32(value: u64, what: &str) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{what}: {value} is too large"))
}

/// Applies a sensor's mapping to a payload: lines outside `--line` and counts other than in and out are
/// dropped, in and out swapped with `--reverse`, times resolved in `zone`. An interval carrying neither
/// count (a zone logic's `balance`) is dropped.
pub fn observe(config: &SensorConfig, payload: &Payload, zone: &TimeZone) -> Result<Observations, String> {
    let mut observations = Observations::default();
    for interval in &payload.intervals {
        if let Some(line) = interval.line
            && !config.lines.is_empty()
            && !config.lines.contains(&line)
        {
            continue;
        }
        let (mut entries, mut exits, mut any) = (0u64, 0u64, false);
        for (name, value) in &interval.counts {
            match config.role(name, None) {
                Some(Role::In) => (entries, any) = (entries + value, true),
                Some(Role::Out) => (exits, any) = (exits + value, true),
                None => {}
            }
        }
        if !any {
            continue;
        }
        let start = interval.start.resolve(zone)?;
        observations.intervals.push(Interval {
            key: interval.key.clone(),
            minute: Minute::last_at_or_before(start),
            counts: Counts { entries: to_u32(entries, "in")?, exits: to_u32(exits, "out")? },
        });
    }
    for reading in &payload.readings {
        if let Some(role) = config.role(&reading.name, reading.id.as_deref()) {
            observations.readings.push(Reading { role, at: reading.at.resolve(zone)?, value: reading.value });
        }
    }
    Ok(observations)
}

/// The count of each consecutive pair of one register's readings (sorted by time, no two at one
/// instant), at the minute of the pair's first reading: the difference, or the later value after a
/// reset. The first reading counts nothing by itself.
pub fn register_counts(readings: &[(Timestamp, u64)]) -> BTreeMap<Minute, u64> {
    let mut counts = BTreeMap::new();
    for pair in readings.windows(2) {
        let ((t1, v1), (_, v2)) = (pair[0], pair[1]);
        let delta = if v2 >= v1 { v2 - v1 } else { v2 };
        *counts.entry(Minute::last_at_or_before(t1)).or_insert(0) += delta;
    }
    counts
}

/// The minutes whose register counts a new reading at `at` changes, given the latest known reading
/// before it: that reading's minute (its interval now ends at `at`) and `at`'s own.
pub fn minutes_touched_by_reading(previous: Option<Timestamp>, at: Timestamp) -> Vec<Minute> {
    let mut minutes: Vec<Minute> = previous.into_iter().map(Minute::last_at_or_before).collect();
    minutes.push(Minute::last_at_or_before(at));
    minutes.dedup();
    minutes
}

/// Package sequence tracking: given the last (agent, number) and a new one, the new last and the
/// numbers skipped. Another agent starts a new sequence; a number not above the last is a re-send.
pub fn package_step(last: Option<(i64, i64)>, new: (i64, i64)) -> ((i64, i64), i64) {
    match last {
        Some((agent, number)) if agent == new.0 => {
            if new.1 > number {
                (new, new.1 - number - 1)
            } else {
                ((agent, number), 0)
            }
        }
        _ => (new, 0),
    }
}

/// Saturating conversion of a minute total to a bin count.
pub fn clamp_count(total: u64) -> u32 {
    u32::try_from(total).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn minute(text: &str) -> Minute {
        Minute::last_at_or_before(at(text))
    }

    fn xovis() -> SensorConfig {
        SensorConfig::new(Vendor::Xovis, " 80:1f:12:d3:27:ca ", (None, None), vec![], false).unwrap()
    }

    fn interval(line: u32, start: &str, fw: u64, bw: u64) -> RawInterval {
        RawInterval {
            line: Some(line),
            key: format!("{line}/{start}"),
            start: When::Instant(at(start)),
            counts: vec![("fw".into(), fw), ("bw".into(), bw), ("fw-male".into(), 9)],
        }
    }

    #[test]
    fn vendors_parse_and_have_default_names() {
        assert_eq!(Vendor::parse("Xovis"), Ok(Vendor::Xovis));
        assert!(Vendor::parse("acme").unwrap_err().contains("hikvision"));
        assert_eq!(xovis().serial, "80:1F:12:D3:27:CA");
        assert_eq!((xovis().in_name.as_str(), xovis().out_name.as_str()), ("fw", "bw"));
        assert!(SensorConfig::new(Vendor::Irisys, "V4D-1", (None, None), vec![], false).is_err());
        assert!(
            SensorConfig::new(Vendor::Irisys, "V4D-1", (Some("0".into()), Some("0".into())), vec![], false).is_err()
        );
        assert_eq!(SensorConfig::parse_lines("1,3"), Ok(vec![1, 3]));
        assert_eq!(SensorConfig::parse_lines(""), Ok(vec![]));
    }

    #[test]
    fn intervals_land_at_the_minute_of_their_start_and_map_in_and_out() {
        let payload = Payload {
            intervals: vec![
                interval(3, "2023-05-17T12:09:00Z", 2, 1),
                interval(3, "2023-05-17T12:10:05Z", 1, 0),
                interval(4, "2023-05-17T12:10:00Z", 5, 5),
                // A zone logic: neither fw nor bw.
                RawInterval {
                    line: Some(1),
                    key: "1/x".into(),
                    start: When::Instant(at("2023-05-17T12:10:00Z")),
                    counts: vec![("balance".into(), 3)],
                },
            ],
            ..Payload::default()
        };
        let observed = observe(&xovis(), &payload, &TimeZone::UTC).unwrap();
        let summary: Vec<_> = observed.intervals.iter().map(|i| (i.minute, i.counts.entries, i.counts.exits)).collect();
        assert_eq!(
            summary,
            [
                (minute("2023-05-17T12:09:00Z"), 2, 1),
                (minute("2023-05-17T12:10:00Z"), 1, 0),
                (minute("2023-05-17T12:10:00Z"), 5, 5)
            ]
        );
        let mut only_3_reversed = xovis();
        only_3_reversed.lines = vec![3];
        only_3_reversed.reverse = true;
        let observed = observe(&only_3_reversed, &payload, &TimeZone::UTC).unwrap();
        assert_eq!(observed.intervals.len(), 2);
        assert_eq!(observed.intervals[0].counts, Counts { entries: 1, exits: 2 });
    }

    #[test]
    fn local_times_are_in_the_store_zone_and_the_earlier_instant_when_ambiguous() {
        let zurich = TimeZone::get("Europe/Zurich").unwrap();
        let local = |text: &str| When::Local(text.parse().unwrap());
        assert_eq!(local("2024-07-01T10:00:00").resolve(&zurich).unwrap(), at("2024-07-01T08:00:00Z"));
        // 02:30 happens twice on 2024-10-27: first at +02:00.
        assert_eq!(local("2024-10-27T02:30:00").resolve(&zurich).unwrap(), at("2024-10-27T00:30:00Z"));
        assert_eq!(When::Instant(at("2024-10-27T01:30:00Z")).resolve(&zurich).unwrap(), at("2024-10-27T01:30:00Z"));
    }

    #[test]
    fn registers_count_differences_at_the_first_reading_with_resets() {
        let readings = [
            (at("2018-12-03T14:00:00Z"), 100),
            (at("2018-12-03T14:15:00Z"), 121),
            (at("2018-12-03T14:30:00Z"), 4), // reset: counts 4
            (at("2018-12-03T14:45:00Z"), 10),
        ];
        let counts = register_counts(&readings);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [
                (minute("2018-12-03T14:00:00Z"), 21),
                (minute("2018-12-03T14:15:00Z"), 4),
                (minute("2018-12-03T14:30:00Z"), 6)
            ]
        );
        assert!(register_counts(&readings[..1]).is_empty(), "the first reading is a baseline");
        // A late reading at 14:07 splits [14:00, 14:15).
        let mut late = readings.to_vec();
        late.insert(1, (at("2018-12-03T14:07:30Z"), 110));
        let counts = register_counts(&late);
        assert_eq!(counts[&minute("2018-12-03T14:00:00Z")], 10);
        assert_eq!(counts[&minute("2018-12-03T14:07:00Z")], 11);
        assert_eq!(
            minutes_touched_by_reading(Some(at("2018-12-03T14:00:00Z")), at("2018-12-03T14:07:30Z")),
            [minute("2018-12-03T14:00:00Z"), minute("2018-12-03T14:07:00Z")]
        );
    }

    #[test]
    fn registers_map_by_name_or_id() {
        let config =
            SensorConfig::new(Vendor::Irisys, "v4d-1", (Some("0".into()), Some("Line 2".into())), vec![], false)
                .unwrap();
        let reading = |name: &str, id: &str| RawReading {
            name: name.into(),
            id: Some(id.into()),
            at: When::Instant(at("2018-12-03T14:21:00Z")),
            value: 7,
        };
        let payload = Payload {
            readings: vec![reading("Line 1", "0"), reading("Line 2", "1"), reading("Zone 1", "2")],
            ..Payload::default()
        };
        let observed = observe(&config, &payload, &TimeZone::UTC).unwrap();
        assert_eq!(observed.readings.iter().map(|r| r.role).collect::<Vec<_>>(), [Role::In, Role::Out]);
    }

    #[test]
    fn package_gaps_are_counted_per_agent() {
        assert_eq!(package_step(None, (1003, 2)), ((1003, 2), 0));
        assert_eq!(package_step(Some((1003, 2)), (1003, 3)), ((1003, 3), 0));
        assert_eq!(package_step(Some((1003, 3)), (1003, 6)), ((1003, 6), 2));
        assert_eq!(package_step(Some((1003, 6)), (1003, 4)), ((1003, 6), 0));
        assert_eq!(package_step(Some((1003, 6)), (1008, 1)), ((1008, 1), 0));
    }
}
