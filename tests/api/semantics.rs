//! What the rows mean: summing, filters, sparse minutes, replacement, bounds, local minutes across DST,
//! occupancy periods and clamp, store order, and publication.

use std::time::Duration;

use footfall::app::ServerConfig;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, metrics_path};

backend_tests!(
    visits_are_summed_over_the_devices_of_a_store,
    device_id_limits_visits_to_that_device,
    minutes_without_counts_have_no_row,
    resending_a_bin_replaces_it,
    a_resent_zero_bin_removes_its_contribution,
    within_one_file_a_later_line_wins,
    bounds_are_inclusive_and_compared_at_full_precision,
    minutes_are_local_with_their_utc_offset,
    dst_end_in_athens_orders_rows_by_instant,
    dst_start_in_athens_skips_the_gap,
    occupancy_restarts_at_local_midnight_and_never_goes_below_zero,
    occupancy_counts_earlier_data_of_the_same_day,
    a_custom_reset_puts_the_small_hours_in_the_previous_day,
    store_codes_are_ordered_by_bytes,
    data_stays_invisible_until_published,
    a_large_batch_stays_invisible_until_published_and_a_later_resend_wins,
);

/// `(store_code, minute, in, out)` of every visits row in the window, walked page by page.
async fn visits(app: &TestApp, gte: &str, lte: &str, extra: &str) -> Vec<(String, String, i64, i64)> {
    let rows = app.walk_rows(&metrics_path("visits", gte, lte, extra), Some(ANALYST)).await;
    rows.iter()
        .map(|row| {
            let (entries, exits) = (row["in_metric"].as_i64().unwrap(), row["out_metric"].as_i64().unwrap());
            assert_eq!(row["diff_metric"].as_i64().unwrap(), entries - exits, "{row}");
            assert_eq!(row.as_object().unwrap().len(), 5, "exactly the listed keys: {row}");
            (s(&row["store_code"]), s(&row["minute"]), entries, exits)
        })
        .collect()
}

/// `(store_code, minute, occupancy)` of every occupancy row in the window.
async fn occupancy(app: &TestApp, gte: &str, lte: &str, extra: &str) -> Vec<(String, String, i64)> {
    let rows = app.walk_rows(&metrics_path("occupancy", gte, lte, extra), Some(ANALYST)).await;
    rows.iter()
        .map(|row| {
            assert_eq!(row.as_object().unwrap().len(), 3, "exactly the listed keys: {row}");
            (s(&row["store_code"]), s(&row["minute"]), row["occupancy_metric"].as_i64().unwrap())
        })
        .collect()
}

fn s(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_owned()
}

fn v(store: &str, minute: &str, entries: i64, exits: i64) -> (String, String, i64, i64) {
    (store.to_owned(), minute.to_owned(), entries, exits)
}

fn o(store: &str, minute: &str, value: i64) -> (String, String, i64) {
    (store.to_owned(), minute.to_owned(), value)
}

/// Just the minutes of visits rows.
async fn visit_minutes(app: &TestApp, gte: &str, lte: &str) -> Vec<String> {
    visits(app, gte, lte, "").await.into_iter().map(|row| row.1).collect()
}

/// An app with the all-stores user and the given stores and `(device, store)` pairs.
async fn app_with(backend: Backend, stores: &[(&str, &str)], devices: &[(&str, &str)]) -> TestApp {
    let app = TestApp::spawn(backend).await;
    for (code, zone) in stores {
        app.add_store(code, zone);
    }
    for (device, store) in devices {
        app.add_device(device, store);
    }
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app
}

const DAY_GTE: &str = "2023-10-26T00:00:00Z";
const DAY_LTE: &str = "2023-10-27T00:00:00Z";

async fn visits_are_summed_over_the_devices_of_a_store(backend: Backend) {
    let app =
        app_with(backend, &[("S", "Europe/Athens"), ("T", "UTC")], &[("d1", "S"), ("d2", "S"), ("t1", "T")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:06:00Z", 2, 0),
        ("d2", "2023-10-26T12:06:00Z", 1, 3),
        ("t1", "2023-10-26T12:06:00Z", 5, 5),
        ("d2", "2023-10-26T12:07:00Z", 0, 1),
    ]);
    let response = app.get(&metrics_path("visits", DAY_GTE, DAY_LTE, ""), Some(ANALYST)).await;
    assert_eq!(
        response.body,
        json!({"count": 3, "next": null, "previous": null, "results": [
            {"store_code": "S", "in_metric": 3, "out_metric": 3, "diff_metric": 0, "minute": "2023-10-26T15:06:00+03:00"},
            {"store_code": "S", "in_metric": 0, "out_metric": 1, "diff_metric": -1, "minute": "2023-10-26T15:07:00+03:00"},
            {"store_code": "T", "in_metric": 5, "out_metric": 5, "diff_metric": 0, "minute": "2023-10-26T12:06:00+00:00"},
        ]})
    );
    assert_eq!(
        occupancy(&app, DAY_GTE, DAY_LTE, "store_code=S").await,
        [o("S", "2023-10-26T15:06:00+03:00", 0), o("S", "2023-10-26T15:07:00+03:00", 0)]
    );
}

async fn device_id_limits_visits_to_that_device(backend: Backend) {
    let app =
        app_with(backend, &[("S", "Europe/Athens"), ("T", "UTC")], &[("d1", "S"), ("d2", "S"), ("t1", "T")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:06:00Z", 2, 0),
        ("d2", "2023-10-26T12:06:00Z", 1, 3),
        ("t1", "2023-10-26T12:06:00Z", 5, 5),
        ("d2", "2023-10-26T12:07:00Z", 0, 1),
        ("d1", "2023-10-26T12:08:00Z", 4, 0),
    ]);
    let d2 = [v("S", "2023-10-26T15:06:00+03:00", 1, 3), v("S", "2023-10-26T15:07:00+03:00", 0, 1)];
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d2").await, d2);
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d2&store_code=S").await, d2);
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=t1").await, [v("T", "2023-10-26T12:06:00+00:00", 5, 5)]);
    // Filters combine: a device outside the chosen store has no rows there.
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d2&store_code=T").await, []);
    // An empty filter value is no filter.
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=").await.len(), 4);
}

async fn minutes_without_counts_have_no_row(backend: Backend) {
    let app = app_with(backend, &[("S", "UTC")], &[("d1", "S"), ("d2", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:06:00Z", 2, 0),
        ("d1", "2023-10-26T12:10:00Z", 0, 0),
        ("d2", "2023-10-26T12:10:00Z", 0, 0),
        ("d1", "2023-10-26T12:11:00Z", 0, 0),
        ("d2", "2023-10-26T12:11:00Z", 0, 1),
        ("d1", "2023-10-26T12:12:00Z", 0, 0),
    ]);
    assert_eq!(
        visits(&app, DAY_GTE, DAY_LTE, "").await,
        [v("S", "2023-10-26T12:06:00+00:00", 2, 0), v("S", "2023-10-26T12:11:00+00:00", 0, 1)]
    );
    assert_eq!(
        occupancy(&app, DAY_GTE, DAY_LTE, "").await,
        [o("S", "2023-10-26T12:06:00+00:00", 2), o("S", "2023-10-26T12:11:00+00:00", 1)]
    );
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d1").await, [v("S", "2023-10-26T12:06:00+00:00", 2, 0)]);
}

async fn resending_a_bin_replaces_it(backend: Backend) {
    let app = app_with(backend, &[("S", "UTC")], &[("d1", "S"), ("d2", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:00:00Z", 5, 1),
        ("d2", "2023-10-26T12:00:00Z", 1, 0),
        ("d1", "2023-10-26T12:05:00Z", 0, 2),
    ]);
    assert_eq!(occupancy(&app, DAY_GTE, DAY_LTE, "").await.iter().map(|r| r.2).collect::<Vec<_>>(), [5, 3]);
    // The same bin again is idempotent; a corrected one replaces, not adds.
    app.ingest(&[("d1", "2023-10-26T12:00:00Z", 5, 1)]);
    app.ingest(&[("d1", "2023-10-26T12:00:00Z", 2, 0)]);
    assert_eq!(
        visits(&app, DAY_GTE, DAY_LTE, "").await,
        [v("S", "2023-10-26T12:00:00+00:00", 3, 0), v("S", "2023-10-26T12:05:00+00:00", 0, 2)]
    );
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d1").await[0], v("S", "2023-10-26T12:00:00+00:00", 2, 0));
    // Occupancy after the corrected minute is recomputed too.
    assert_eq!(
        occupancy(&app, DAY_GTE, DAY_LTE, "").await,
        [o("S", "2023-10-26T12:00:00+00:00", 3), o("S", "2023-10-26T12:05:00+00:00", 1)]
    );
}

async fn a_resent_zero_bin_removes_its_contribution(backend: Backend) {
    let app = app_with(backend, &[("S", "UTC")], &[("d1", "S"), ("d2", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:00:00Z", 5, 1),
        ("d2", "2023-10-26T12:00:00Z", 1, 0),
        ("d1", "2023-10-26T12:05:00Z", 0, 2),
    ]);
    app.ingest(&[("d1", "2023-10-26T12:00:00Z", 0, 0)]);
    assert_eq!(
        visits(&app, DAY_GTE, DAY_LTE, "").await,
        [v("S", "2023-10-26T12:00:00+00:00", 1, 0), v("S", "2023-10-26T12:05:00+00:00", 0, 2)]
    );
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d1").await, [v("S", "2023-10-26T12:05:00+00:00", 0, 2)]);
    assert_eq!(
        occupancy(&app, DAY_GTE, DAY_LTE, "").await,
        [o("S", "2023-10-26T12:00:00+00:00", 1), o("S", "2023-10-26T12:05:00+00:00", 0)]
    );
    // Once every device of the minute is 0/0 the minute disappears from both endpoints.
    app.ingest(&[("d2", "2023-10-26T12:00:00Z", 0, 0)]);
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "").await, [v("S", "2023-10-26T12:05:00+00:00", 0, 2)]);
    assert_eq!(occupancy(&app, DAY_GTE, DAY_LTE, "").await, [o("S", "2023-10-26T12:05:00+00:00", 0)]);
}

async fn within_one_file_a_later_line_wins(backend: Backend) {
    let app = app_with(backend, &[("S", "UTC")], &[("d1", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:00:00Z", 1, 0),
        ("d1", "2023-10-26T12:01:00Z", 9, 9),
        ("d1", "2023-10-26T12:00:00Z", 7, 2),
        ("d1", "2023-10-26T12:00:00Z", 4, 1),
        ("d1", "2023-10-26T12:01:00Z", 0, 0),
    ]);
    let csv = "device_id,minute,in,out\nd1,2023-10-26T13:00:00Z,8,0\nd1,2023-10-26T13:00:00Z,3,0\n";
    assert!(app.ingest_file("bins.csv", csv).status.success());
    assert_eq!(
        visits(&app, DAY_GTE, DAY_LTE, "").await,
        [v("S", "2023-10-26T12:00:00+00:00", 4, 1), v("S", "2023-10-26T13:00:00+00:00", 3, 0)]
    );
}

async fn bounds_are_inclusive_and_compared_at_full_precision(backend: Backend) {
    let app = app_with(backend, &[("S", "UTC")], &[("d1", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T12:04:00Z", 1, 0),
        ("d1", "2023-10-26T12:05:00Z", 1, 0),
        ("d1", "2023-10-26T12:06:00Z", 1, 0),
        ("d1", "2023-10-26T12:30:00Z", 1, 0),
        ("d1", "2023-10-26T12:31:00Z", 1, 0),
    ]);
    let all = ["12:05", "12:06", "12:30"];
    let cases: &[(&str, &str, &[&str])] = &[
        ("2023-10-26T12:05:00Z", "2023-10-26T12:30:00Z", &all),
        ("2023-10-26T12:05:00.001Z", "2023-10-26T12:30:00Z", &["12:06", "12:30"]),
        ("2023-10-26T12:05:00.000001Z", "2023-10-26T12:30:00Z", &["12:06", "12:30"]),
        ("2023-10-26T12:04:59.999Z", "2023-10-26T12:30:00Z", &all),
        ("2023-10-26T12:05:00Z", "2023-10-26T12:30:59.5Z", &all),
        ("2023-10-26T12:05:00Z", "2023-10-26T12:29:59.999Z", &["12:05", "12:06"]),
        ("2023-10-26T12:05:00Z", "2023-10-26T12:05:00Z", &["12:05"]),
        ("2023-10-26T12:05:00.5Z", "2023-10-26T12:05:59Z", &[]),
        ("2023-10-26T15:05:00+03:00", "2023-10-26T15:30:00+03:00", &all),
        ("2023-10-26T07:05:00-05:00", "2023-10-26T12:30:00+00:00", &all),
        ("2023-10-26T17:35:00+05:30", "2023-10-26T18:00:00.000+05:30", &all),
        ("2023-10-26T12:05:00", "2023-10-26T12:30:00", &all),
        ("2023-10-26T12:05:00.001", "2023-10-26T12:30:59.999999", &["12:06", "12:30"]),
    ];
    for (gte, lte, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|hm| format!("2023-10-26T{hm}:00+00:00")).collect();
        assert_eq!(visit_minutes(&app, gte, lte).await, expected, "visits {gte} .. {lte}");
        let minutes: Vec<String> = occupancy(&app, gte, lte, "").await.into_iter().map(|row| row.1).collect();
        assert_eq!(minutes, expected, "occupancy {gte} .. {lte}");
    }
}

async fn minutes_are_local_with_their_utc_offset(backend: Backend) {
    let stores = [
        ("athens", "Europe/Athens"),
        ("kolkata", "Asia/Kolkata"),
        ("new-york", "America/New_York"),
        ("st-johns", "America/St_Johns"),
        ("utc", "UTC"),
    ];
    let devices: Vec<(String, &str)> = stores.iter().map(|(code, _)| (format!("{code}-1"), *code)).collect();
    let devices: Vec<(&str, &str)> = devices.iter().map(|(d, s)| (d.as_str(), *s)).collect();
    let app = app_with(backend, &stores, &devices).await;
    let mut bins = Vec::new();
    for (device, _) in &devices {
        for minute in ["2023-01-15T12:00:00Z", "2023-01-15T20:00:00Z", "2023-07-01T12:00:00Z"] {
            bins.push((device.to_string(), minute.to_owned(), 1, 0));
        }
    }
    app.ingest_owned(&bins);
    let minutes: Vec<(String, String)> = visits(&app, "2023-01-01T00:00:00Z", "2023-12-31T00:00:00Z", "")
        .await
        .into_iter()
        .map(|(store, minute, ..)| (store, minute))
        .collect();
    let expected = [
        ("athens", "2023-01-15T14:00:00+02:00"),
        ("athens", "2023-01-15T22:00:00+02:00"),
        ("athens", "2023-07-01T15:00:00+03:00"),
        ("kolkata", "2023-01-15T17:30:00+05:30"),
        ("kolkata", "2023-01-16T01:30:00+05:30"),
        ("kolkata", "2023-07-01T17:30:00+05:30"),
        ("new-york", "2023-01-15T07:00:00-05:00"),
        ("new-york", "2023-01-15T15:00:00-05:00"),
        ("new-york", "2023-07-01T08:00:00-04:00"),
        ("st-johns", "2023-01-15T08:30:00-03:30"),
        ("st-johns", "2023-01-15T16:30:00-03:30"),
        ("st-johns", "2023-07-01T09:30:00-02:30"),
        ("utc", "2023-01-15T12:00:00+00:00"),
        ("utc", "2023-01-15T20:00:00+00:00"),
        ("utc", "2023-07-01T12:00:00+00:00"),
    ];
    assert_eq!(minutes, expected.map(|(s, m)| (s.to_owned(), m.to_owned())));
    // Occupancy restarts at each store's own local midnight: Kolkata's 01:30 is a new day.
    let kolkata = occupancy(&app, "2023-01-01T00:00:00Z", "2023-12-31T00:00:00Z", "store_code=kolkata").await;
    assert_eq!(kolkata.iter().map(|row| row.2).collect::<Vec<_>>(), [1, 1, 1]);
    let utc = occupancy(&app, "2023-01-01T00:00:00Z", "2023-12-31T00:00:00Z", "store_code=utc").await;
    assert_eq!(utc.iter().map(|row| row.2).collect::<Vec<_>>(), [1, 2, 1]);
}

async fn dst_end_in_athens_orders_rows_by_instant(backend: Backend) {
    let app = app_with(backend, &[("athens", "Europe/Athens")], &[("a1", "athens")]).await;
    app.add_store_with_reset("reset-0330", "Europe/Athens", "03:30");
    app.add_device("r1", "reset-0330");
    let bins = [
        ("2023-10-28T20:59:00Z", 1, 0), // 23:59+03:00 on the 28th
        ("2023-10-28T21:00:00Z", 2, 0), // 00:00+03:00 on the 29th: a new day
        ("2023-10-29T00:29:00Z", 1, 0), // 03:29+03:00
        ("2023-10-29T00:30:00Z", 1, 0), // 03:30+03:00, the first 03:30
        ("2023-10-29T00:59:00Z", 1, 0), // 03:59+03:00
        ("2023-10-29T01:00:00Z", 1, 0), // 03:00+02:00: clocks went back
        ("2023-10-29T01:30:00Z", 1, 0), // 03:30+02:00, the second 03:30
        ("2023-10-29T21:59:00Z", 0, 2), // 23:59+02:00
        ("2023-10-29T22:00:00Z", 1, 0), // 00:00+02:00 on the 30th
    ];
    let mut all = Vec::new();
    for device in ["a1", "r1"] {
        all.extend(bins.iter().map(|(minute, i, o)| (device.to_owned(), minute.to_string(), *i, *o)));
    }
    app.ingest_owned(&all);
    let (gte, lte) = ("2023-10-28T20:00:00Z", "2023-10-30T00:00:00Z");
    let minutes = [
        "2023-10-28T23:59:00+03:00",
        "2023-10-29T00:00:00+03:00",
        "2023-10-29T03:29:00+03:00",
        "2023-10-29T03:30:00+03:00",
        "2023-10-29T03:59:00+03:00",
        "2023-10-29T03:00:00+02:00",
        "2023-10-29T03:30:00+02:00",
        "2023-10-29T23:59:00+02:00",
        "2023-10-30T00:00:00+02:00",
    ];
    for page_size in ["1", "4", "1000"] {
        let rows = visits(&app, gte, lte, &format!("store_code=athens&page_size={page_size}")).await;
        assert_eq!(rows.iter().map(|row| row.1.as_str()).collect::<Vec<_>>(), minutes, "page_size={page_size}");
    }
    let expect = |store: &str, values: [i64; 9]| -> Vec<(String, String, i64)> {
        minutes.iter().zip(values).map(|(minute, value)| o(store, minute, value)).collect()
    };
    // Midnight reset: the 25-hour day keeps counting across the change.
    assert_eq!(occupancy(&app, gte, lte, "store_code=athens").await, expect("athens", [1, 2, 3, 4, 5, 6, 7, 5, 1]));
    // A 03:30 reset happens once, at the first 03:30; the repeated hour stays in the new period.
    assert_eq!(
        occupancy(&app, gte, lte, "store_code=reset-0330").await,
        expect("reset-0330", [1, 3, 4, 1, 2, 3, 4, 2, 3])
    );
}

async fn dst_start_in_athens_skips_the_gap(backend: Backend) {
    let app = app_with(backend, &[("athens", "Europe/Athens")], &[("a1", "athens")]).await;
    app.add_store_with_reset("reset-0330", "Europe/Athens", "03:30");
    app.add_device("r1", "reset-0330");
    let bins = [
        "2023-03-25T21:59:00Z", // 23:59+02:00 on the 25th
        "2023-03-25T22:00:00Z", // 00:00+02:00 on the 26th
        "2023-03-26T00:59:00Z", // 02:59+02:00
        "2023-03-26T01:00:00Z", // 04:00+03:00: 03:00-03:59 does not exist
        "2023-03-26T20:59:00Z", // 23:59+03:00
        "2023-03-26T21:00:00Z", // 00:00+03:00 on the 27th
        "2023-03-27T00:29:00Z", // 03:29+03:00
        "2023-03-27T00:30:00Z", // 03:30+03:00
    ];
    let mut all = Vec::new();
    for device in ["a1", "r1"] {
        all.extend(bins.iter().map(|minute| (device.to_owned(), minute.to_string(), 1, 0)));
    }
    app.ingest_owned(&all);
    let (gte, lte) = ("2023-03-25T00:00:00Z", "2023-03-28T00:00:00Z");
    let minutes = [
        "2023-03-25T23:59:00+02:00",
        "2023-03-26T00:00:00+02:00",
        "2023-03-26T02:59:00+02:00",
        "2023-03-26T04:00:00+03:00",
        "2023-03-26T23:59:00+03:00",
        "2023-03-27T00:00:00+03:00",
        "2023-03-27T03:29:00+03:00",
        "2023-03-27T03:30:00+03:00",
    ];
    let rows = visits(&app, gte, lte, "store_code=athens").await;
    assert_eq!(rows.iter().map(|row| row.1.as_str()).collect::<Vec<_>>(), minutes);
    let expect = |store: &str, values: [i64; 8]| -> Vec<(String, String, i64)> {
        minutes.iter().zip(values).map(|(minute, value)| o(store, minute, value)).collect()
    };
    assert_eq!(occupancy(&app, gte, lte, "store_code=athens").await, expect("athens", [1, 1, 2, 3, 4, 1, 2, 3]));
    // A reset at 03:30, inside the gap, takes effect at the end of the gap (04:00+03:00).
    assert_eq!(
        occupancy(&app, gte, lte, "store_code=reset-0330").await,
        expect("reset-0330", [1, 2, 3, 1, 2, 3, 4, 1])
    );
}

async fn occupancy_restarts_at_local_midnight_and_never_goes_below_zero(backend: Backend) {
    let app = app_with(backend, &[("S", "Europe/Athens")], &[("d1", "S"), ("d2", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-26T10:00:00Z", 5, 0),
        ("d1", "2023-10-26T10:01:00Z", 0, 8), // clamps at 0
        ("d1", "2023-10-26T10:02:00Z", 2, 0), // 2, not -1
        ("d2", "2023-10-26T10:03:00Z", 0, 1),
        // Devices are summed before the clamp: 1 + 3 - 2 = 2 (device by device it would be 3).
        ("d1", "2023-10-26T10:05:00Z", 0, 2),
        ("d2", "2023-10-26T10:05:00Z", 3, 0),
        ("d1", "2023-10-26T20:59:00Z", 4, 0), // 23:59 local
        ("d2", "2023-10-26T21:00:00Z", 1, 3), // 00:00 local on the 27th: max(0, 1 - 3)
        ("d2", "2023-10-26T21:01:00Z", 1, 0),
    ]);
    let values: Vec<i64> = occupancy(&app, DAY_GTE, DAY_LTE, "").await.into_iter().map(|row| row.2).collect();
    assert_eq!(values, [5, 0, 2, 1, 2, 6, 0, 1]);
}

async fn occupancy_counts_earlier_data_of_the_same_day(backend: Backend) {
    let app = app_with(backend, &[("S", "Europe/Athens")], &[("d1", "S")]).await;
    app.ingest(&[
        ("d1", "2023-10-25T12:00:00Z", 100, 0), // the previous day does not count
        ("d1", "2023-10-25T21:30:00Z", 10, 0),  // 00:30 local on the 26th
        ("d1", "2023-10-26T07:00:00Z", 0, 3),
        ("d1", "2023-10-26T12:00:00Z", 1, 0),
        ("d1", "2023-10-26T12:30:00Z", 0, 2),
    ]);
    assert_eq!(
        occupancy(&app, "2023-10-26T11:00:00Z", "2023-10-26T13:00:00Z", "").await,
        [o("S", "2023-10-26T15:00:00+03:00", 8), o("S", "2023-10-26T15:30:00+03:00", 6)]
    );
    assert_eq!(
        occupancy(&app, "2023-10-26T12:30:00Z", "2023-10-26T12:30:00Z", "").await,
        [o("S", "2023-10-26T15:30:00+03:00", 6)]
    );
    let values: Vec<i64> =
        occupancy(&app, "2023-10-25T00:00:00Z", DAY_LTE, "").await.into_iter().map(|row| row.2).collect();
    assert_eq!(values, [100, 10, 7, 8, 6]);
}

async fn a_custom_reset_puts_the_small_hours_in_the_previous_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store_with_reset("night", "Europe/Athens", "04:00");
    app.add_device("n1", "night");
    app.add_user(ANALYST.0, ANALYST.1, &["night"]);
    app.ingest(&[
        ("n1", "2023-10-25T00:30:00Z", 9, 0), // 03:30 local on the 25th: the 24th's period
        ("n1", "2023-10-25T01:00:00Z", 1, 0), // 04:00 local: the 25th's period starts
        ("n1", "2023-10-25T19:00:00Z", 5, 0), // 22:00 local on the 25th
        ("n1", "2023-10-25T22:00:00Z", 2, 0), // 01:00 local on the 26th, still the 25th's period
        ("n1", "2023-10-26T00:59:00Z", 0, 1), // 03:59 local
        ("n1", "2023-10-26T01:00:00Z", 1, 3), // 04:00 local: a new period, max(0, 1 - 3)
        ("n1", "2023-10-26T01:01:00Z", 2, 0),
    ]);
    assert_eq!(
        occupancy(&app, "2023-10-25T23:00:00Z", "2023-10-26T02:00:00Z", "").await,
        [
            o("night", "2023-10-26T03:59:00+03:00", 7),
            o("night", "2023-10-26T04:00:00+03:00", 0),
            o("night", "2023-10-26T04:01:00+03:00", 2),
        ]
    );
    let values: Vec<i64> =
        occupancy(&app, "2023-10-24T00:00:00Z", DAY_LTE, "").await.into_iter().map(|row| row.2).collect();
    assert_eq!(values, [9, 1, 6, 8, 7, 0, 2]);
    // Visits are unaffected by the reset.
    let entries: Vec<i64> =
        visits(&app, "2023-10-24T00:00:00Z", DAY_LTE, "").await.into_iter().map(|row| row.2).collect();
    assert_eq!(entries, [9, 1, 5, 2, 0, 1, 2]);
}

async fn store_codes_are_ordered_by_bytes(backend: Backend) {
    // Byte order, not a locale's collation: digits < upper case < '_' < lower case < non-ASCII.
    let codes = ["aa", "B", "é1", "a", "9", "_x", "Z", "10", "a-b"];
    let app = TestApp::spawn(backend).await;
    for (index, code) in codes.iter().enumerate() {
        app.add_store(code, "UTC");
        app.add_device(&format!("dev-{index}"), code);
    }
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let mut bins = Vec::new();
    for index in 0..codes.len() {
        for minute in ["2023-10-26T12:07:00Z", "2023-10-26T12:03:00Z"] {
            bins.push((format!("dev-{index}"), minute.to_owned(), 1, 0));
        }
    }
    app.ingest_owned(&bins);
    let expected_codes = ["10", "9", "B", "Z", "_x", "a", "a-b", "aa", "é1"];
    let expected: Vec<(String, String)> = expected_codes
        .iter()
        .flat_map(|code| {
            ["2023-10-26T12:03:00+00:00", "2023-10-26T12:07:00+00:00"].map(|m| (code.to_string(), m.to_owned()))
        })
        .collect();
    for page_size in ["3", "1000"] {
        let rows = visits(&app, DAY_GTE, DAY_LTE, &format!("page_size={page_size}")).await;
        assert_eq!(rows.into_iter().map(|row| (row.0, row.1)).collect::<Vec<_>>(), expected);
        let rows = occupancy(&app, DAY_GTE, DAY_LTE, &format!("page_size={page_size}")).await;
        assert_eq!(rows.into_iter().map(|row| (row.0, row.1)).collect::<Vec<_>>(), expected);
    }
    let encoded = crate::helpers::encode("é1");
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, &format!("store_code={encoded}")).await.len(), 2);
}

async fn data_stays_invisible_until_published(backend: Backend) {
    // Stay clear of a scheduled publication (at :00, :15, :30, :45) during the test.
    let to_slot = 900 - jiff::Timestamp::now().as_second().rem_euclid(900);
    if to_slot < 10 {
        tokio::time::sleep(Duration::from_secs(to_slot as u64 + 1)).await;
    }
    let app = TestApp::spawn_with(
        backend,
        ServerConfig { publish_interval: Duration::from_secs(15 * 60), ..Default::default() },
    )
    .await;
    app.add_store("S", "UTC");
    app.add_device("d1", "S");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.ingest(&[("d1", "2023-10-26T12:00:00Z", 3, 1)]);
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "").await, []);
    assert_eq!(occupancy(&app, DAY_GTE, DAY_LTE, "").await, []);
    app.publish();
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "").await, [v("S", "2023-10-26T12:00:00+00:00", 3, 1)]);
    assert_eq!(occupancy(&app, DAY_GTE, DAY_LTE, "").await, [o("S", "2023-10-26T12:00:00+00:00", 2)]);
    // A correction and new data stay invisible until the next publication too.
    app.ingest(&[("d1", "2023-10-26T12:00:00Z", 0, 0), ("d1", "2023-10-26T12:01:00Z", 5, 0)]);
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "").await, [v("S", "2023-10-26T12:00:00+00:00", 3, 1)]);
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "device_id=d1").await, [v("S", "2023-10-26T12:00:00+00:00", 3, 1)]);
    app.publish();
    assert_eq!(visits(&app, DAY_GTE, DAY_LTE, "").await, [v("S", "2023-10-26T12:01:00+00:00", 5, 0)]);
    assert_eq!(occupancy(&app, DAY_GTE, DAY_LTE, "").await, [o("S", "2023-10-26T12:01:00+00:00", 5)]);
}

async fn a_large_batch_stays_invisible_until_published_and_a_later_resend_wins(backend: Backend) {
    let never = ServerConfig { publish_interval: Duration::from_secs(365 * 86_400), ..Default::default() };
    let app = TestApp::spawn_with(backend, never).await;
    app.add_store("S", "UTC");
    app.add_device("d1", "S");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    // Large enough that PostgreSQL copies it straight into the bins' table, with a note of its runs.
    let start = jiff::Timestamp::from_second(1_698_192_000).unwrap(); // 2023-10-25T00:00:00Z
    let minutes: Vec<String> = (0..3000).map(|i| (start + jiff::SignedDuration::from_mins(i)).to_string()).collect();
    let bins: Vec<(&str, &str, u32, u32)> = minutes.iter().map(|minute| ("d1", minute.as_str(), 1, 0)).collect();
    app.ingest(&bins);
    let (gte, lte) = ("2023-10-25T00:00:00Z", "2023-10-27T23:59:00Z");
    assert_eq!(visits(&app, gte, lte, "").await, []);
    assert_eq!(visits(&app, gte, lte, "device_id=d1").await, []);
    assert_eq!(app.storage.publication().await.unwrap().pending_bins, 3000);
    assert_eq!(app.storage.check().await.unwrap().problems, Vec::<String>::new());
    // The first minute again before the publication: one bin, with the later value.
    app.ingest(&[("d1", "2023-10-25T00:00:00Z", 7, 2)]);
    assert_eq!(app.storage.publication().await.unwrap().pending_bins, 3000, "a re-sent minute is one bin");
    app.publish();
    let rows = visits(&app, gte, lte, "").await;
    assert_eq!(
        (rows.len(), &rows[0], &rows[1]),
        (3000, &v("S", "2023-10-25T00:00:00+00:00", 7, 2), &v("S", "2023-10-25T00:01:00+00:00", 1, 0))
    );
    assert_eq!(visits(&app, gte, lte, "device_id=d1").await, rows);
    let state = app.storage.publication().await.unwrap();
    assert_eq!((state.pending_bins, state.published_bins), (0, 3000));
    assert_eq!(app.storage.check().await.unwrap().problems, Vec::<String>::new());
}
