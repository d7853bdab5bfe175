//! Reports: CSV exports equal the JSON pages, live occupancy counts pending bins, the new parameters'
//! errors, the seed's bytes unchanged, and rollups kept through prune and a time-zone change. The
//! values of buckets and summaries against an oracle are in `oracle.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, metrics_path};
use footfall::app::ServerConfig;

backend_tests!(
    csv_exports_equal_the_concatenated_json_pages,
    live_occupancy_counts_pending_bins,
    new_parameters_refuse_unknown_values,
    the_seed_example_is_unchanged_byte_for_byte,
    rollups_follow_a_time_zone_change_and_a_prune,
);

/// A few days of bins for two stores, published.
fn sample_app_data(app: &TestApp) {
    app.add_store("116500", "Europe/Athens");
    app.add_store("b,\"quoted\"", "America/New_York");
    app.add_device("cnt-1", "116500");
    app.add_device("cnt-2", "b,\"quoted\"");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let mut bins = Vec::new();
    for minute in (0..3 * 1440).step_by(7) {
        let at = jiff::Timestamp::from_second(1_698_278_400 + minute * 60).unwrap(); // 2023-10-26T00:00Z
        let text = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let device = if minute % 2 == 0 { "cnt-1" } else { "cnt-2" };
        bins.push((device.to_owned(), text, (minute % 5) as u32, (minute % 3) as u32));
    }
    app.ingest_owned(&bins);
}

/// The CSV body of `path` with `format=csv`, checking the response's headers.
async fn csv(app: &TestApp, path: &str) -> String {
    let response = app.client.get(app.url(&format!("{path}&format=csv"))).basic_auth(ANALYST.0, Some(ANALYST.1));
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment; filename=\"") && disposition.ends_with(".csv\""), "{disposition}");
    response.text().await.unwrap()
}

/// The CSV a list of JSON rows makes: a header of the keys, then each row's values.
fn as_csv(rows: &[Value], keys: &[&str]) -> String {
    let field = |value: &Value| match value {
        Value::Null => String::new(),
        Value::String(text) if text.contains([',', '"']) => format!("\"{}\"", text.replace('"', "\"\"")),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut out = keys.join(",") + "\r\n";
    for row in rows {
        assert_eq!(row.as_object().unwrap().keys().len(), keys.len(), "{row}");
        out += &keys.iter().map(|key| field(&row[*key])).collect::<Vec<_>>().join(",");
        out += "\r\n";
    }
    out
}

async fn csv_exports_equal_the_concatenated_json_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    sample_app_data(&app);
    let (gte, lte) = ("2023-10-26T05:17:00Z", "2023-10-28T20:03:30Z");
    let visits = ["store_code", "in_metric", "out_metric", "diff_metric", "minute"];
    let cases: [(&str, &str, &[&str]); 4] = [
        ("visits", "page_size=100", &visits),
        ("occupancy", "page_size=100", &["store_code", "occupancy_metric", "minute"]),
        ("visits", "granularity=hour&page_size=7", &visits),
        ("occupancy", "granularity=15m", &["store_code", "occupancy_metric", "max_occupancy_metric", "minute"]),
    ];
    for (endpoint, extra, keys) in cases {
        let path = metrics_path(endpoint, gte, lte, extra);
        let rows = app.walk_rows(&path, Some(ANALYST)).await;
        assert!(rows.len() > 20, "{endpoint} {extra}: {} rows", rows.len());
        assert_eq!(csv(&app, &path).await, as_csv(&rows, keys), "{endpoint} {extra}");
        // Accept: text/csv answers the same CSV; the JSON of the same URL is not served from it.
        let accepted = app.client.get(app.url(&path)).basic_auth(ANALYST.0, Some(ANALYST.1));
        let accepted = accepted.header("Accept", "text/csv").send().await.unwrap().text().await.unwrap();
        assert_eq!(accepted, as_csv(&rows, keys));
        assert_eq!(app.get(&path, Some(ANALYST)).await.status, 200);
    }
    let path = metrics_path("summary", gte, lte, "compare=previous_period&page_size=1");
    let rows = app.walk_rows(&path, Some(ANALYST)).await;
    assert_eq!(rows.len(), 2);
    let keys = [
        "store_code",
        "in_metric",
        "out_metric",
        "peak_occupancy_metric",
        "peak_occupancy_minute",
        "busiest_hour",
        "busiest_hour_in_metric",
        "compare_in_metric",
        "compare_out_metric",
        "compare_peak_occupancy_metric",
        "in_change_percent",
    ];
    assert_eq!(csv(&app, &path).await, as_csv(&rows, &keys));
    // Compressed, as browsers ask for it: the whole export, decoded to the same bytes.
    let path = metrics_path("visits", gte, lte, "format=csv");
    let request = app.client.get(app.url(&path)).basic_auth(ANALYST.0, Some(ANALYST.1));
    let response = request.header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut decoded = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut decoded).unwrap();
    assert_eq!(decoded, csv(&app, &metrics_path("visits", gte, lte, "")).await);
    // An export of a range without rows is its header alone.
    let empty = metrics_path("visits", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", "");
    assert_eq!(csv(&app, &empty).await, as_csv(&[], &visits));
}

async fn live_occupancy_counts_pending_bins(backend: Backend) {
    let config = ServerConfig { publish_interval: Duration::from_secs(15 * 60), ..Default::default() };
    let app = TestApp::spawn_with(backend, config).await;
    // A reset twelve hours from now: the last minutes are well inside the current period.
    let now = jiff::Timestamp::now();
    let reset_hour = (now.as_second() / 3600 + 12) % 24;
    app.add_store_with_reset("116500", "UTC", &format!("{reset_hour:02}:00"));
    app.add_store("220310", "America/New_York");
    app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.add_user("limited", "pw", &["220310"]);
    let minute = |ago: i64| {
        let at = jiff::Timestamp::from_second((now.as_second() / 60 - ago) * 60).unwrap();
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    app.ingest_owned(&[("cnt-1".into(), minute(30), 10, 2), ("cnt-1".into(), minute(20), 5, 1)]);
    app.publish();
    // Pending: a replacement of a published minute and a new one.
    app.ingest_owned(&[("cnt-1".into(), minute(20), 7, 0), ("cnt-1".into(), minute(3), 1, 4)]);

    let live = app.get("/api/bi/acquisition-metrics/occupancy/live/", Some(ANALYST)).await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert_eq!(live.headers["cache-control"], "no-store");
    assert_eq!(live.body["count"], 2);
    let row = &live.results()[0];
    assert_eq!(row["store_code"], "116500");
    assert_eq!(row["occupancy_metric"], 8 + 7 + 1 - 4, "published 10-2, pending 7-0 replacing 5-1, then 1-4");
    assert_eq!(row["minute"], minute(3).replace('Z', "+00:00"));
    assert!(row["published_until"].as_str().unwrap().ends_with("+00:00"), "{row}");
    let empty = &live.results()[1];
    assert_eq!((empty["store_code"].as_str(), empty["occupancy_metric"].as_i64()), (Some("220310"), Some(0)));
    assert_eq!(empty["minute"], Value::Null);

    // The published occupancy does not move until the publication.
    let published = app.get(&metrics_path("occupancy", &minute(60), &minute(0), ""), Some(ANALYST)).await;
    assert_eq!(published.results().last().unwrap()["occupancy_metric"], 12);

    let limited = app.get("/api/bi/acquisition-metrics/occupancy/live/?page_size=1", Some(("limited", "pw"))).await;
    assert_eq!((limited.body["count"].as_u64(), limited.results().len()), (Some(1), 1));
    assert_eq!(limited.results()[0]["store_code"], "220310");
    let hidden =
        app.get("/api/bi/acquisition-metrics/occupancy/live/?store_code=116500", Some(("limited", "pw"))).await;
    assert_eq!((hidden.status, hidden.error_code()), (404, "store_code_not_found"));
    assert_eq!(app.get("/api/bi/acquisition-metrics/occupancy/live/", None).await.status, 401);
}

async fn new_parameters_refuse_unknown_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    sample_app_data(&app);
    let (gte, lte) = ("2023-10-26T00:00:00Z", "2023-10-27T00:00:00Z");
    for (endpoint, extra, code) in [
        ("visits", "granularity=year", "invalid_granularity"),
        ("occupancy", "granularity=HOUR", "invalid_granularity"),
        ("summary", "compare=last_week", "invalid_compare"),
        ("visits", "format=xml", "invalid_format"),
        ("summary", "format=yaml", "invalid_format"),
    ] {
        let response = app.get(&metrics_path(endpoint, gte, lte, extra), Some(ANALYST)).await;
        assert_eq!((response.status, response.error_code()), (400, code), "{endpoint} {extra}");
        let value = extra.split('=').nth(1).unwrap();
        assert!(response.body["detail"].as_str().unwrap().contains(value), "{}", response.body);
    }
    let summary =
        app.get("/api/bi/acquisition-metrics/summary/?datetime_gte=2023-10-26T00:00:00Z", Some(ANALYST)).await;
    assert_eq!((summary.status, summary.error_code()), (400, "required"));
    let past_the_end = app.get(&metrics_path("visits", gte, lte, "granularity=day&page=9"), Some(ANALYST)).await;
    assert_eq!((past_the_end.status, past_the_end.error_code()), (404, "invalid_page"));
    // An empty value is no granularity, as an empty filter is no filter.
    let minutes = app.get(&metrics_path("visits", gte, lte, "granularity="), Some(ANALYST)).await;
    let default = app.get(&metrics_path("visits", gte, lte, ""), Some(ANALYST)).await;
    assert_eq!(minutes.body["results"], default.body["results"]);
}

async fn the_seed_example_is_unchanged_byte_for_byte(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "s3cret", &[]);
    app.ingest(&[
        ("cnt-1", "2023-10-26T12:06:00Z", 3, 0),
        ("cnt-1", "2023-10-26T12:08:00Z", 0, 1),
        ("cnt-1", "2023-10-26T12:09:00Z", 1, 2),
    ]);
    let query = "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&store_code=116500&page_size=2";
    let expected = format!(
        "{{\"count\":3,\"next\":\"{}/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&page=2&page_size=2&store_code=116500\",\"previous\":null,\"results\":[{{\"store_code\":\"116500\",\"in_metric\":3,\"out_metric\":0,\"diff_metric\":3,\"minute\":\"2023-10-26T15:06:00+03:00\"}},{{\"store_code\":\"116500\",\"in_metric\":0,\"out_metric\":1,\"diff_metric\":-1,\"minute\":\"2023-10-26T15:08:00+03:00\"}}]}}",
        app.address
    );
    let bytes = |path: String| {
        let request = app.client.get(app.url(&path)).basic_auth("analyst", Some("s3cret"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["content-type"], "application/json");
            response.text().await.unwrap()
        }
    };
    assert_eq!(bytes(query.to_owned()).await, expected);
    let occupancy = query.replace("visits", "occupancy");
    assert_eq!(
        bytes(occupancy).await,
        expected
            .replace("visits", "occupancy")
            .replace("\"in_metric\":3,\"out_metric\":0,\"diff_metric\":3,", "\"occupancy_metric\":3,")
            .replace("\"in_metric\":0,\"out_metric\":1,\"diff_metric\":-1,", "\"occupancy_metric\":2,")
    );
    // Asking for the default explicitly changes nothing but the links, which keep the parameter.
    let explicit = bytes(format!("{query}&granularity=minute&format=json")).await;
    let body: Value = serde_json::from_str(&explicit).unwrap();
    let expected_body: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(body["results"], expected_body["results"]);
    assert_eq!(body["count"], json!(3));
}

async fn rollups_follow_a_time_zone_change_and_a_prune(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    sample_app_data(&app);
    let by_day =
        metrics_path("visits", "2023-10-20T00:00:00Z", "2023-11-01T00:00:00Z", "granularity=day&store_code=116500");
    let before = app.walk_rows(&by_day, Some(ANALYST)).await;
    assert_eq!(before.len(), 4, "three UTC days are four Athens dates: {before:?}");
    assert_eq!(before[0]["minute"], "2023-10-26T00:00:00+03:00");

    app.cli_ok(&["store", "set", "116500", "--timezone", "Asia/Tokyo"], None);
    let after = app.walk_rows(&by_day, Some(ANALYST)).await;
    assert_eq!(after[0]["minute"], "2023-10-26T00:00:00+09:00");
    let sum = |rows: &[Value]| rows.iter().map(|row| row["in_metric"].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum(&after), sum(&before), "the same minutes, other days");
    let minutes = app.walk_rows(&by_day.replace("granularity=day&", ""), Some(ANALYST)).await;
    assert_eq!(sum(&minutes), sum(&after));

    app.cli_ok(&["prune", "--before", "2023-10-28"], None);
    let pruned = app.walk_rows(&by_day, Some(ANALYST)).await;
    let minutes = app.walk_rows(&by_day.replace("granularity=day&", ""), Some(ANALYST)).await;
    assert!(pruned.len() < after.len());
    assert_eq!(sum(&pruned), sum(&minutes), "no day keeps the pruned minutes");
}
