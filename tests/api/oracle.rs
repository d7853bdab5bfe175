//! A property-style test: random sparse bins for several stores (time zones with DST changes, resets
//! at odd times, one inside a DST gap and one on a repeated hour) and devices, ingested in two files
//! with replacements and in-file repeats. A straightforward oracle, written with jiff alone and none
//! of the crate's domain code, computes every expected row; full traversals of both endpoints must
//! equal it exactly, at every granularity, and so must the summary with its comparison.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, metrics_path};

backend_tests!(
    random_bins_match_the_oracle_seed_1,
    random_bins_match_the_oracle_seed_2,
    random_bins_match_the_oracle_seed_3
);

async fn random_bins_match_the_oracle_seed_1(backend: Backend) {
    check_seed(backend, 1).await
}

async fn random_bins_match_the_oracle_seed_2(backend: Backend) {
    check_seed(backend, 0x5eed_2023).await
}

async fn random_bins_match_the_oracle_seed_3(backend: Backend) {
    check_seed(backend, 987_654_321).await
}

const LIMITED: (&str, &str) = ("limited", "limited-pw");
const LIMITED_STORES: [&str; 2] = ["ath-0330", "kol"];

/// Two days around each of: the DST start in Athens, the DST end in Athens, the DST end in New York.
const WINDOWS: [(&str, &str); 3] = [
    ("2023-03-25T12:00:00Z", "2023-03-27T12:00:00Z"),
    ("2023-10-28T12:00:00Z", "2023-10-30T12:00:00Z"),
    ("2023-11-04T12:00:00Z", "2023-11-06T12:00:00Z"),
];
const ALL_GTE: &str = "2023-01-01T00:00:00Z";
const ALL_LTE: &str = "2024-01-01T00:00:00Z";

/// An expected row, with what selects it.
struct Row {
    store: usize,
    minute: i64,
    value: Value,
}

/// The visits rows of `stores` within `window` with the occupancy of the same minute.
fn minute_counts<'r>(
    (visits, occupancy): (&'r [Row], &'r [Row]),
    stores: &[usize],
    window: (Timestamp, Timestamp),
) -> Vec<(&'r Row, i64)> {
    let (gte, lte) = (window.0.as_nanosecond(), window.1.as_nanosecond());
    visits
        .iter()
        .zip(occupancy)
        .filter(|(row, _)| stores.contains(&row.store))
        .filter(|(row, _)| (gte..=lte).contains(&(i128::from(row.minute) * 1_000_000_000)))
        .map(|(visit, inside)| (visit, inside.value["occupancy_metric"].as_i64().unwrap()))
        .collect()
}

/// The rows of `stores` whose minute starts within `window` (both ends inclusive).
fn select(rows: &[Row], stores: &[usize], window: (Timestamp, Timestamp)) -> Vec<Value> {
    let (gte, lte) = (window.0.as_nanosecond(), window.1.as_nanosecond());
    rows.iter()
        .filter(|row| stores.contains(&row.store))
        .filter(|row| (gte..=lte).contains(&(i128::from(row.minute) * 1_000_000_000)))
        .map(|row| row.value.clone())
        .collect()
}

struct StoreSpec {
    code: String,
    timezone: TimeZone,
    reset: (i8, i8),
    devices: Vec<String>,
}

/// Expected state: the stores (in byte order of their codes) and the latest bin per (device, minute).
struct Oracle {
    stores: Vec<StoreSpec>,
    store_of_device: HashMap<String, usize>,
    bins: BTreeMap<(String, i64), (u32, u32)>,
    period_starts: HashMap<(usize, DateTime), i64>,
}

/// The granularities other than the minute.
const GRANULARITIES: [&str; 5] = ["15m", "hour", "day", "week", "month"];

fn seconds(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_second()
}

fn utc_text(second: i64) -> String {
    Timestamp::from_second(second).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Oracle {
    fn wall_clock(&self, store: usize, second: i64) -> DateTime {
        Timestamp::from_second(second).unwrap().to_zoned(self.stores[store].timezone.clone()).datetime()
    }

    fn local_text(&self, store: usize, second: i64) -> String {
        let zoned = Timestamp::from_second(second).unwrap().to_zoned(self.stores[store].timezone.clone());
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// The first minute whose local wall-clock time is at or after `date` + reset.
    fn period_start(&mut self, store: usize, date: Date) -> i64 {
        let (hour, minute) = self.stores[store].reset;
        self.first_minute_at_or_after(store, date.at(hour, minute, 0, 0))
    }

    /// The first minute whose local wall-clock time is at or after `target`, found by walking minute by
    /// minute from well before it (no offset exceeds 15 hours).
    fn first_minute_at_or_after(&mut self, store: usize, target: DateTime) -> i64 {
        if let Some(&start) = self.period_starts.get(&(store, target)) {
            return start;
        }
        let mut second = target.to_zoned(TimeZone::UTC).unwrap().timestamp().as_second() - 15 * 3600;
        while self.wall_clock(store, second) < target {
            second += 60;
        }
        self.period_starts.insert((store, target), second);
        second
    }

    /// The start of the bucket holding the minute: quarters and hours walk back to the local clock's
    /// quarter or hour; days, weeks and months start at the first minute of their first local date.
    fn bucket_start(&mut self, store: usize, second: i64, granularity: &str) -> i64 {
        let clock = self.wall_clock(store, second);
        let date = clock.date();
        let first_date = match granularity {
            "15m" | "hour" => {
                let step = if granularity == "15m" { 15 } else { 60 };
                let mut start = second;
                while i64::from(self.wall_clock(store, start).minute()) % step != 0 {
                    start -= 60;
                }
                return start;
            }
            "day" => date,
            "week" => date - jiff::Span::new().days(i64::from(date.weekday().to_monday_zero_offset())),
            "month" => date.first_of_month(),
            other => panic!("granularity {other}"),
        };
        self.first_minute_at_or_after(store, first_date.at(0, 0, 0, 0))
    }

    /// The bucket rows of both endpoints for `stores` and `window`, from the minute rows.
    fn expected_buckets(
        &mut self,
        (visits, occupancy): (&[Row], &[Row]),
        stores: &[usize],
        window: (Timestamp, Timestamp),
        granularity: &str,
    ) -> (Vec<Value>, Vec<Value>) {
        // (store, start, in, out, occupancy after the last row, peak)
        let mut buckets: Vec<(usize, i64, i64, i64, i64, i64)> = Vec::new();
        for (visit, inside) in minute_counts((visits, occupancy), stores, window) {
            let start = self.bucket_start(visit.store, visit.minute, granularity);
            let (entries, exits) =
                (visit.value["in_metric"].as_i64().unwrap(), visit.value["out_metric"].as_i64().unwrap());
            match buckets.last_mut() {
                Some(bucket) if bucket.0 == visit.store && bucket.1 == start => {
                    bucket.2 += entries;
                    bucket.3 += exits;
                    bucket.4 = inside;
                    bucket.5 = bucket.5.max(inside);
                }
                _ => buckets.push((visit.store, start, entries, exits, inside, inside)),
            }
        }
        let visits = buckets
            .iter()
            .map(|&(store, start, entries, exits, _, _)| self.visits_row(store, start, entries, exits).value)
            .collect();
        let occupancy = buckets
            .iter()
            .map(|&(store, start, _, _, inside, peak)| {
                json!({
                    "store_code": self.stores[store].code,
                    "occupancy_metric": inside,
                    "max_occupancy_metric": peak,
                    "minute": self.local_text(store, start),
                })
            })
            .collect();
        (visits, occupancy)
    }

    /// The summary rows of `stores` over `window`, compared with the same length just before.
    fn expected_summary(
        &mut self,
        rows: (&[Row], &[Row]),
        stores: &[usize],
        window: (Timestamp, Timestamp),
    ) -> Vec<Value> {
        // The minutes the bounds select: the first at or after gte, the last at or before lte.
        const MINUTE: i128 = 60_000_000_000;
        let first = ((window.0.as_nanosecond() + MINUTE - 1).div_euclid(MINUTE) * 60) as i64;
        let last = (window.1.as_nanosecond().div_euclid(MINUTE) * 60) as i64;
        let shift = last - first + 60;
        let earlier = (Timestamp::from_second(first - shift).unwrap(), Timestamp::from_second(last - shift).unwrap());
        stores
            .iter()
            .map(|&store| {
                let now = self.store_summary(rows, store, window);
                let before = self.store_summary(rows, store, earlier);
                let mut row = now.clone();
                let known =
                    |key: &str| if before["has_counts"] == json!(true) { before[key].clone() } else { Value::Null };
                let row_map = row.as_object_mut().unwrap();
                row_map.remove("has_counts");
                row_map.insert("compare_in_metric".into(), known("in_metric"));
                row_map.insert("compare_out_metric".into(), known("out_metric"));
                row_map.insert("compare_peak_occupancy_metric".into(), known("peak_occupancy_metric"));
                let (was, is) = (before["in_metric"].as_i64().unwrap(), now["in_metric"].as_i64().unwrap());
                let change = if was == 0 {
                    Value::Null
                } else {
                    json!(((is - was) as f64 * 1000.0 / was as f64).round() / 10.0)
                };
                row_map.insert("in_change_percent".into(), change);
                row
            })
            .collect()
    }

    fn store_summary(&mut self, rows: (&[Row], &[Row]), store: usize, window: (Timestamp, Timestamp)) -> Value {
        let (mut entries, mut exits) = (0, 0);
        let mut peak: Option<(i64, i64)> = None;
        let mut hours: Vec<(i64, i64)> = Vec::new();
        for (visit, inside) in minute_counts(rows, &[store], window) {
            entries += visit.value["in_metric"].as_i64().unwrap();
            exits += visit.value["out_metric"].as_i64().unwrap();
            if peak.is_none_or(|(value, _)| inside > value) {
                peak = Some((inside, visit.minute));
            }
            let hour = self.bucket_start(store, visit.minute, "hour");
            let visit_in = visit.value["in_metric"].as_i64().unwrap();
            match hours.last_mut() {
                Some(last) if last.0 == hour => last.1 += visit_in,
                _ => hours.push((hour, visit_in)),
            }
        }
        let busiest = hours.iter().fold(None::<(i64, i64)>, |best, &(hour, count)| match best {
            Some((_, most)) if most >= count => best,
            _ => Some((hour, count)),
        });
        json!({
            "store_code": self.stores[store].code,
            "in_metric": entries,
            "out_metric": exits,
            "peak_occupancy_metric": peak.map_or(0, |(value, _)| value),
            "peak_occupancy_minute": peak.map(|(_, minute)| self.local_text(store, minute)),
            "busiest_hour": busiest.map(|(hour, _)| self.local_text(store, hour)),
            "busiest_hour_in_metric": busiest.map(|(_, count)| count),
            "has_counts": peak.is_some(),
        })
    }

    /// The local date whose occupancy period contains the minute.
    fn period_of(&mut self, store: usize, second: i64) -> Date {
        let date = self.wall_clock(store, second).date();
        if self.period_start(store, date) <= second { date } else { date.yesterday().unwrap() }
    }

    /// Per store, per minute: the counts summed over its devices.
    fn store_minutes(&self) -> Vec<BTreeMap<i64, (i64, i64)>> {
        let mut minutes = vec![BTreeMap::new(); self.stores.len()];
        for ((device, minute), (entries, exits)) in &self.bins {
            let sum: &mut (i64, i64) = minutes[self.store_of_device[device]].entry(*minute).or_default();
            sum.0 += i64::from(*entries);
            sum.1 += i64::from(*exits);
        }
        minutes
    }

    fn visits_row(&self, store: usize, minute: i64, entries: i64, exits: i64) -> Row {
        let value = json!({
            "store_code": self.stores[store].code,
            "in_metric": entries,
            "out_metric": exits,
            "diff_metric": entries - exits,
            "minute": self.local_text(store, minute),
        });
        Row { store, minute, value }
    }

    /// Every visits row of one device.
    fn device_visits(&self, device: &str) -> Vec<Row> {
        let store = self.store_of_device[device];
        self.bins
            .iter()
            .filter(|((d, _), counts)| d == device && **counts != (0, 0))
            .map(|((_, minute), (i, o))| self.visits_row(store, *minute, i64::from(*i), i64::from(*o)))
            .collect()
    }

    /// Every visits row and every occupancy row, over all stores, in the API's order.
    fn expected(&mut self) -> (Vec<Row>, Vec<Row>) {
        let (mut visits, mut occupancy) = (Vec::new(), Vec::new());
        for (store, minutes) in self.store_minutes().into_iter().enumerate() {
            let mut period = None;
            let mut inside = 0i64;
            for (minute, (entries, exits)) in minutes {
                if (entries, exits) == (0, 0) {
                    continue;
                }
                visits.push(self.visits_row(store, minute, entries, exits));
                let this_period = self.period_of(store, minute);
                if period != Some(this_period) {
                    period = Some(this_period);
                    inside = 0;
                }
                inside = (inside + entries - exits).max(0);
                let value = json!({
                    "store_code": self.stores[store].code,
                    "occupancy_metric": inside,
                    "minute": self.local_text(store, minute),
                });
                occupancy.push(Row { store, minute, value });
            }
        }
        (visits, occupancy)
    }

    fn store_index(&self, code: &str) -> usize {
        self.stores.iter().position(|s| s.code == code).unwrap()
    }
}

fn random_counts(rng: &mut StdRng) -> (u32, u32) {
    if rng.random_bool(0.1) { (0, 0) } else { (rng.random_range(0..=6), rng.random_range(0..=7)) }
}

/// Random sparse bins: each device reports a minute with its own probability, plus bins on and just
/// before period boundaries, where resets are easiest to get wrong.
fn random_bins(rng: &mut StdRng, oracle: &mut Oracle, density: f64) -> Vec<(String, i64, u32, u32)> {
    let mut bins = Vec::new();
    for store in 0..oracle.stores.len() {
        let devices = oracle.stores[store].devices.clone();
        for (index, device) in devices.iter().enumerate() {
            // The last device of the UTC store never reports.
            let p = if oracle.stores[store].code == "utc" && index + 1 == devices.len() {
                0.0
            } else {
                density * rng.random_range(0.2..1.8)
            };
            for (from, to) in WINDOWS {
                for minute in (seconds(from)..=seconds(to)).step_by(60) {
                    if rng.random_bool(p) {
                        bins.push((device.clone(), minute, random_counts(rng)));
                    }
                }
            }
        }
        let Some(first_device) = devices.first().cloned() else { continue };
        for (from, to) in WINDOWS {
            let (from, to) = (seconds(from), seconds(to));
            let mut date = oracle.wall_clock(store, from).date().yesterday().unwrap();
            while date <= oracle.wall_clock(store, to).date() {
                let start = oracle.period_start(store, date);
                if (from..=to).contains(&start) && rng.random_bool(0.6) {
                    let device = devices.choose(rng).unwrap_or(&first_device).clone();
                    bins.push((device.clone(), start - 60, random_counts(rng)));
                    bins.push((device, start, random_counts(rng)));
                }
                date = date.tomorrow().unwrap();
            }
        }
    }
    bins.shuffle(rng);
    bins.into_iter().map(|(device, minute, (i, o))| (device, minute, i, o)).collect()
}

/// Repeats a few lines later in the file with other counts: the later line must win.
fn with_repeats(rng: &mut StdRng, mut lines: Vec<(String, i64, u32, u32)>) -> Vec<(String, i64, u32, u32)> {
    for _ in 0..lines.len() / 30 {
        let from = rng.random_range(0..lines.len());
        let to = rng.random_range(from..=lines.len());
        let (device, minute, ..) = lines[from].clone();
        let (i, o) = random_counts(rng);
        lines.insert(to, (device, minute, i, o));
    }
    lines
}

fn apply(oracle: &mut Oracle, lines: &[(String, i64, u32, u32)]) {
    for (device, minute, i, o) in lines {
        oracle.bins.insert((device.clone(), *minute), (*i, *o));
    }
}

fn assert_rows_eq(actual: &[Value], expected: &[Value], what: &str) {
    if actual == expected {
        return;
    }
    let first = actual.iter().zip(expected).position(|(a, e)| a != e).unwrap_or(actual.len().min(expected.len()));
    panic!(
        "{what}: {} rows, expected {}; first difference at row {first}: got {}, expected {}",
        actual.len(),
        expected.len(),
        actual.get(first).map_or("nothing".into(), Value::to_string),
        expected.get(first).map_or("nothing".into(), Value::to_string),
    );
}

/// A random bound inside the data: a window minute plus a sub-minute part, in UTC or at +03:00.
fn random_bound(rng: &mut StdRng) -> (Timestamp, String) {
    let (from, to) = *WINDOWS.choose(rng).unwrap();
    let minute = rng.random_range(seconds(from) / 60..=seconds(to) / 60) * 60;
    let (text, nanos) = *[("00", 0), ("00.001", 1_000_000), ("30.5", 30_500_000_000), ("59.999", 59_999_000_000i64)]
        .choose(rng)
        .unwrap();
    let instant = Timestamp::from_second(minute).unwrap() + jiff::SignedDuration::from_nanos(nanos);
    let offset_hours = *[0i8, 3, -5].choose(rng).unwrap();
    let local = Timestamp::from_second(minute).unwrap().to_zoned(TimeZone::fixed(jiff::tz::offset(offset_hours)));
    let suffix = match offset_hours {
        0 => "Z".to_owned(),
        h => format!("{:+03}:00", h),
    };
    (instant, format!("{}{text}{suffix}", local.strftime("%Y-%m-%dT%H:%M:")))
}

async fn verify(app: &TestApp, oracle: &mut Oracle, rng: &mut StdRng, stage: &str) {
    let all: Vec<usize> = (0..oracle.stores.len()).collect();
    let everything = (ALL_GTE.parse().unwrap(), ALL_LTE.parse().unwrap());
    let (visit_rows, occupancy_rows) = oracle.expected();
    let limited: Vec<usize> = LIMITED_STORES.iter().map(|code| oracle.store_index(code)).collect();
    let expected_visits = select(&visit_rows, &all, everything);
    let expected_occupancy = select(&occupancy_rows, &all, everything);
    assert!(expected_visits.len() > 500, "{stage}: too little data to be a test ({})", expected_visits.len());
    for page_size in ["", "page_size=97", "page_size=10000"] {
        let visits = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, page_size), Some(ANALYST)).await;
        assert_rows_eq(&visits, &expected_visits, &format!("{stage}: visits of all stores, {page_size:?}"));
        let occupancy = app.walk_rows(&metrics_path("occupancy", ALL_GTE, ALL_LTE, page_size), Some(ANALYST)).await;
        assert_rows_eq(&occupancy, &expected_occupancy, &format!("{stage}: occupancy of all stores, {page_size:?}"));
    }
    for store in 0..oracle.stores.len() {
        let code = oracle.stores[store].code.clone();
        let extra = format!("store_code={code}&page_size=250");
        let visits = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, &extra), Some(ANALYST)).await;
        assert_rows_eq(&visits, &select(&visit_rows, &[store], everything), &format!("{stage}: visits of {code}"));
        let occupancy = app.walk_rows(&metrics_path("occupancy", ALL_GTE, ALL_LTE, &extra), Some(ANALYST)).await;
        assert_rows_eq(
            &occupancy,
            &select(&occupancy_rows, &[store], everything),
            &format!("{stage}: occupancy of {code}"),
        );
    }
    let mut devices: Vec<String> = oracle.store_of_device.keys().cloned().collect();
    devices.sort();
    for device in devices.choose_multiple(rng, 4) {
        let extra = format!("device_id={device}&page_size=300");
        let visits = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, &extra), Some(ANALYST)).await;
        assert_rows_eq(
            &visits,
            &select(&oracle.device_visits(device), &all, everything),
            &format!("{stage}: visits of {device}"),
        );
    }
    let visits = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, "page_size=500"), Some(LIMITED)).await;
    assert_rows_eq(
        &visits,
        &select(&visit_rows, &limited, everything),
        &format!("{stage}: visits of the limited user"),
    );
    let rows = (&visit_rows[..], &occupancy_rows[..]);
    for granularity in GRANULARITIES {
        let (visits, occupancy) = oracle.expected_buckets(rows, &all, everything, granularity);
        let extra = format!("granularity={granularity}&page_size=400");
        let got = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, &extra), Some(ANALYST)).await;
        assert_rows_eq(&got, &visits, &format!("{stage}: visits of all stores by {granularity}"));
        let got = app.walk_rows(&metrics_path("occupancy", ALL_GTE, ALL_LTE, &extra), Some(ANALYST)).await;
        assert_rows_eq(&got, &occupancy, &format!("{stage}: occupancy of all stores by {granularity}"));
    }
    let (visits, _) = oracle.expected_buckets(rows, &limited, everything, "day");
    let got = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, "granularity=day"), Some(LIMITED)).await;
    assert_rows_eq(&got, &visits, &format!("{stage}: visits by day of the limited user"));
    let summary = app
        .walk_rows(&metrics_path("summary", ALL_GTE, ALL_LTE, "compare=previous_period&page_size=3"), Some(ANALYST))
        .await;
    assert_rows_eq(
        &summary,
        &oracle.expected_summary(rows, &all, everything),
        &format!("{stage}: summary of all stores"),
    );
    let summary =
        app.walk_rows(&metrics_path("summary", ALL_GTE, ALL_LTE, "compare=previous_period"), Some(LIMITED)).await;
    assert_rows_eq(
        &summary,
        &oracle.expected_summary(rows, &limited, everything),
        &format!("{stage}: summary, limited"),
    );
    // Random windows: occupancy still counts the data of the period before the window; buckets hold
    // only the window's minutes; the summary compares with the same length just before.
    for window in 0..6 {
        let (a, b) = (random_bound(rng), random_bound(rng));
        let ((gte, gte_text), (lte, lte_text)) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let stores = if rng.random_bool(0.5) { all.clone() } else { vec![rng.random_range(0..all.len())] };
        let extra =
            if stores.len() == 1 { format!("store_code={}", oracle.stores[stores[0]].code) } else { String::new() };
        let what = format!("{stage}: window {gte_text} .. {lte_text} {extra}");
        let visits = app.walk_rows(&metrics_path("visits", &gte_text, &lte_text, &extra), Some(ANALYST)).await;
        assert_rows_eq(&visits, &select(&visit_rows, &stores, (gte, lte)), &format!("visits {what}"));
        let occupancy = app.walk_rows(&metrics_path("occupancy", &gte_text, &lte_text, &extra), Some(ANALYST)).await;
        assert_rows_eq(&occupancy, &select(&occupancy_rows, &stores, (gte, lte)), &format!("occupancy {what}"));
        let granularity = GRANULARITIES[window % GRANULARITIES.len()];
        let (visits, occupancy) = oracle.expected_buckets(rows, &stores, (gte, lte), granularity);
        let bucketed = format!("{extra}&granularity={granularity}&page_size=5");
        let got = app.walk_rows(&metrics_path("visits", &gte_text, &lte_text, &bucketed), Some(ANALYST)).await;
        assert_rows_eq(&got, &visits, &format!("visits by {granularity} {what}"));
        let got = app.walk_rows(&metrics_path("occupancy", &gte_text, &lte_text, &bucketed), Some(ANALYST)).await;
        assert_rows_eq(&got, &occupancy, &format!("occupancy by {granularity} {what}"));
        let compared = format!("{extra}&compare=previous_period");
        let got = app.walk_rows(&metrics_path("summary", &gte_text, &lte_text, &compared), Some(ANALYST)).await;
        assert_rows_eq(&got, &oracle.expected_summary(rows, &stores, (gte, lte)), &format!("summary {what}"));
    }
}

async fn check_seed(backend: Backend, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let odd_resets = ["04:00", "06:15", "23:45", "12:00", "00:00"];
    let mut specs = vec![
        ("ath", "Europe/Athens", "00:00"),
        // 03:30 falls in the March gap and happens twice at the October change.
        ("ath-0330", "Europe/Athens", "03:30"),
        ("Nyc", "America/New_York", *odd_resets.choose(&mut rng).unwrap()),
        ("kol", "Asia/Kolkata", *odd_resets.choose(&mut rng).unwrap()),
        ("utc", "UTC", "00:00"),
        ("lhw", "Australia/Lord_Howe", *odd_resets.choose(&mut rng).unwrap()),
        ("zz-empty", "Europe/Athens", "00:00"),
    ];
    specs.shuffle(&mut rng);

    let app = TestApp::spawn(backend).await;
    let mut stores = Vec::new();
    for (code, zone, reset) in &specs {
        app.add_store_with_reset(code, zone, reset);
        let device_count = if *code == "zz-empty" { 0 } else { rng.random_range(1..=3) + usize::from(*code == "utc") };
        let devices: Vec<String> = (1..=device_count).map(|i| format!("{}-{i}", code.to_lowercase())).collect();
        for device in &devices {
            app.add_device(device, code);
        }
        let (hour, minute) = reset.split_once(':').unwrap();
        stores.push(StoreSpec {
            code: code.to_string(),
            timezone: TimeZone::get(zone).unwrap(),
            reset: (hour.parse().unwrap(), minute.parse().unwrap()),
            devices,
        });
    }
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.add_user(LIMITED.0, LIMITED.1, &LIMITED_STORES);
    stores.sort_by(|a, b| a.code.cmp(&b.code));
    let store_of_device =
        stores.iter().enumerate().flat_map(|(i, s)| s.devices.iter().map(move |d| (d.clone(), i))).collect();
    let mut oracle = Oracle { stores, store_of_device, bins: BTreeMap::new(), period_starts: HashMap::new() };

    // Stage 1: one NDJSON file.
    let bins = random_bins(&mut rng, &mut oracle, 0.04);
    let lines = with_repeats(&mut rng, bins);
    let ndjson: String = lines
        .iter()
        .map(|(device, minute, i, o)| {
            format!("{{\"device_id\":\"{device}\",\"minute\":\"{}\",\"in\":{i},\"out\":{o}}}\n", utc_text(*minute))
        })
        .collect();
    let output = app.ingest_file("stage1.ndjson", &ndjson);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    apply(&mut oracle, &lines);
    verify(&app, &mut oracle, &mut rng, &format!("seed {seed}, stage 1")).await;

    // Stage 2: one CSV file re-sending a fifth of the bins (half of them as 0/0) and adding new ones.
    let mut lines: Vec<_> = oracle
        .bins
        .keys()
        .filter(|_| rng.random_bool(0.2))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(device, minute)| {
            let (i, o) = if rng.random_bool(0.5) { (0, 0) } else { random_counts(&mut rng) };
            (device, minute, i, o)
        })
        .collect();
    lines.extend(random_bins(&mut rng, &mut oracle, 0.01));
    lines.shuffle(&mut rng);
    let lines = with_repeats(&mut rng, lines);
    let csv: String = std::iter::once("device_id,minute,in,out\n".to_owned())
        .chain(lines.iter().map(|(device, minute, i, o)| format!("{device},{},{i},{o}\n", utc_text(*minute))))
        .collect();
    let output = app.ingest_file("stage2.csv", &csv);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    apply(&mut oracle, &lines);
    verify(&app, &mut oracle, &mut rng, &format!("seed {seed}, stage 2")).await;
}
