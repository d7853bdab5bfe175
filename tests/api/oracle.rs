//! A property-style test: random sparse bins for several stores (time zones with DST changes, resets
//! at odd times, one inside a DST gap and one on a repeated hour) and devices, ingested in two files
//! with replacements and in-file repeats. A straightforward oracle, written with jiff alone and none
//! of the crate's domain code, computes every expected row; full traversals of both endpoints must
//! equal it exactly.

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
    period_starts: HashMap<(usize, Date), i64>,
}

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

    /// The first minute whose local wall-clock time is at or after `date` + reset, found by walking
    /// minute by minute from well before it (no offset exceeds 15 hours).
    fn period_start(&mut self, store: usize, date: Date) -> i64 {
        if let Some(&start) = self.period_starts.get(&(store, date)) {
            return start;
        }
        let (hour, minute) = self.stores[store].reset;
        let target = date.at(hour, minute, 0, 0);
        let mut second = target.to_zoned(TimeZone::UTC).unwrap().timestamp().as_second() - 15 * 3600;
        while self.wall_clock(store, second) < target {
            second += 60;
        }
        self.period_starts.insert((store, date), second);
        second
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
    let limited: Vec<usize> = LIMITED_STORES.iter().map(|code| oracle.store_index(code)).collect();
    let visits = app.walk_rows(&metrics_path("visits", ALL_GTE, ALL_LTE, "page_size=500"), Some(LIMITED)).await;
    assert_rows_eq(
        &visits,
        &select(&visit_rows, &limited, everything),
        &format!("{stage}: visits of the limited user"),
    );
    // Random windows: occupancy still counts the data of the period before the window.
    for _ in 0..6 {
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
