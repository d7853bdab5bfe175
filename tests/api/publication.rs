//! Publication made observable: late data, occupancy corrections, ETag/Last-Modified/304, status.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};
use footfall::app::ServerConfig;

backend_tests!(
    late_bins_give_the_occupancy_they_would_have_given_on_time,
    corrections_set_occupancy_and_later_minutes_continue_from_them,
    unchanged_data_answers_304_until_the_next_publication,
    status_reports_pending_and_published_bins,
);

fn scheduled() -> ServerConfig {
    ServerConfig { publish_interval: Duration::from_secs(15 * 60), ..Default::default() }
}

fn occupancy_query(store: &str) -> String {
    format!(
        "/api/bi/acquisition-metrics/occupancy/?store_code={store}&datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-26T23:59:00Z"
    )
}

async fn occupancy(app: &TestApp, store: &str) -> Vec<(String, i64)> {
    let response = app.get(&occupancy_query(store), Some(("analyst", "pw"))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .results()
        .iter()
        .map(|row| (row["minute"].as_str().unwrap().to_owned(), row["occupancy_metric"].as_i64().unwrap()))
        .collect()
}

async fn post_bins(app: &TestApp, token: &str, bins: &[(&str, &str, u32, u32)]) {
    let body: Vec<Value> =
        bins.iter().map(|(d, m, i, o)| json!({"device_id": d, "minute": m, "in": i, "out": o})).collect();
    let response = app.client.post(app.url("/api/ingest/bins")).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

async fn late_bins_give_the_occupancy_they_would_have_given_on_time(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled()).await;
    for store in ["late", "ontime"] {
        app.add_store(store, "Europe/Athens");
    }
    let late_token = app.add_device("late-1", "late");
    let ontime_token = app.add_device("ontime-1", "ontime");
    app.add_user("analyst", "pw", &[]);
    let day = [("2023-10-26T08:00:00Z", 10, 0), ("2023-10-26T08:30:00Z", 0, 4), ("2023-10-26T09:00:00Z", 2, 9)];
    let late = ("2023-10-26T08:10:00Z", 5, 0);

    let bins = |device, items: &[(&'static str, u32, u32)]| {
        items.iter().map(|&(m, i, o)| (device, m, i, o)).collect::<Vec<_>>()
    };
    post_bins(&app, &late_token, &bins("late-1", &day)).await;
    app.publish();
    assert_eq!(occupancy(&app, "late").await.iter().map(|r| r.1).collect::<Vec<_>>(), [10, 6, 0]);

    // The late bin is accepted but invisible until the next publication.
    post_bins(&app, &late_token, &bins("late-1", &[late])).await;
    assert_eq!(occupancy(&app, "late").await.len(), 3);
    app.publish();

    let mut all = day.to_vec();
    all.push(late);
    post_bins(&app, &ontime_token, &bins("ontime-1", &all)).await;
    app.publish();
    let after = occupancy(&app, "late").await;
    assert_eq!(after.iter().map(|r| r.1).collect::<Vec<_>>(), [10, 15, 11, 4]);
    assert_eq!(after, occupancy(&app, "ontime").await);
}

async fn corrections_set_occupancy_and_later_minutes_continue_from_them(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled()).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "pw", &[]);
    app.cli_ok(&["user", "add", "manager", "--password-stdin", "--stores", "116500", "--can-ingest"], Some("mpw"));
    app.ingest(&[
        ("cnt-1", "2023-10-26T08:00:00Z", 10, 0),
        ("cnt-1", "2023-10-26T08:30:00Z", 2, 1),
        ("cnt-1", "2023-10-26T09:00:00Z", 0, 3),
        ("cnt-1", "2023-10-27T08:00:00Z", 1, 0), // the next day starts from zero again
    ]);
    app.publish();
    let visits_before = app
        .get(
            "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-28T00:00:00Z",
            Some(("analyst", "pw")),
        )
        .await
        .body;

    let said = app.cli_ok(&["occupancy", "set", "116500", "--at", "2023-10-26T08:15:00Z", "--value", "20"], None);
    assert!(said.contains("visible after the next publication"), "{said}");
    assert_eq!(occupancy(&app, "116500").await.iter().map(|r| r.1).collect::<Vec<_>>(), [10, 11, 8], "unpublished");
    app.publish();
    assert_eq!(occupancy(&app, "116500").await.iter().map(|r| r.1).collect::<Vec<_>>(), [10, 21, 18]);

    // The same over HTTP, at a minute with counts: that minute shows the correction.
    let response = app
        .client
        .post(app.url("/api/occupancy/corrections"))
        .basic_auth("manager", Some("mpw"))
        .json(&json!({"store_code": "116500", "minute": "2023-10-26T11:30:00+03:00", "value": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    app.publish();
    assert_eq!(occupancy(&app, "116500").await.iter().map(|r| r.1).collect::<Vec<_>>(), [10, 5, 2]);
    let next_day = app
        .get("/api/bi/acquisition-metrics/occupancy/?datetime_gte=2023-10-27T00:00:00Z&datetime_lte=2023-10-27T23:00:00Z", Some(("analyst", "pw")))
        .await;
    assert_eq!(next_day.results()[0]["occupancy_metric"], 1);

    let visits_after = app
        .get(
            "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-28T00:00:00Z",
            Some(("analyst", "pw")),
        )
        .await
        .body;
    assert_eq!(visits_before, visits_after, "corrections leave visits unchanged");

    let listing = app.cli_ok(&["occupancy", "corrections", "116500"], None);
    assert!(listing.contains("2023-10-26T08:15:00Z") && listing.contains("20"), "{listing}");
    assert!(listing.contains("2023-10-26T08:30:00Z"), "{listing}");
    let listed = app
        .client
        .get(app.url("/api/occupancy/corrections?store_code=116500"))
        .basic_auth("manager", Some("mpw"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // Read-only users cannot correct.
    let refused = app
        .client
        .post(app.url("/api/occupancy/corrections"))
        .basic_auth("analyst", Some("pw"))
        .json(&json!({"store_code": "116500", "minute": "2023-10-26T08:30:00Z", "value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
}

async fn unchanged_data_answers_304_until_the_next_publication(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled()).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "pw", &[]);
    app.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0)]);
    app.publish();
    let query = occupancy_query("116500");
    let first = app.get(&query, Some(("analyst", "pw"))).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    assert!(first.headers.contains_key("last-modified"));

    let conditional = |tag: String| {
        let request = app.client.get(app.url(&query)).basic_auth("analyst", Some("pw")).header("If-None-Match", tag);
        async move { request.send().await.unwrap() }
    };
    let unchanged = conditional(etag.clone()).await;
    assert_eq!(unchanged.status().as_u16(), 304);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), etag);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    assert_eq!(conditional(format!("\"other\", {etag}")).await.status().as_u16(), 304);
    // Another query has another tag.
    let other = app.get(&query.replace("23:59", "23:58"), Some(("analyst", "pw"))).await;
    assert_ne!(other.headers["etag"], first.headers["etag"]);

    // Ingesting alone changes nothing visible; publishing does.
    app.ingest(&[("cnt-1", "2023-10-26T09:00:00Z", 1, 0)]);
    assert_eq!(conditional(etag.clone()).await.status().as_u16(), 304);
    app.publish();
    let changed = conditional(etag.clone()).await;
    assert_eq!(changed.status().as_u16(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
}

async fn status_reports_pending_and_published_bins(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled()).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "pw", &[]);
    assert_eq!(app.get("/api/status", None).await.status, 401);
    let empty = app.get("/api/status", Some(("analyst", "pw"))).await.body;
    assert_eq!(empty["last_publication"], Value::Null);
    assert_eq!(empty["publish_interval_seconds"], 900);
    let next: jiff::Timestamp = empty["next_publication"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.as_second() % 900, 0, "aligned to the quarter hour");

    app.ingest(&[("cnt-1", "2023-10-26T08:00:00Z", 10, 0), ("cnt-1", "2023-10-26T08:01:00Z", 1, 0)]);
    let pending = app.get("/api/status", Some(("analyst", "pw"))).await.body;
    assert_eq!((pending["bins_pending"].as_u64(), pending["bins_published"].as_u64()), (Some(2), Some(0)));
    app.publish();
    app.ingest(&[("cnt-1", "2023-10-26T08:01:00Z", 2, 0), ("cnt-1", "2023-10-26T08:02:00Z", 1, 0)]);
    let status = app.get("/api/status", Some(("analyst", "pw"))).await.body;
    assert_eq!((status["bins_pending"].as_u64(), status["bins_published"].as_u64()), (Some(2), Some(2)), "{status}");
    assert!(status["last_publication"].is_string());
    app.publish();
    let status = app.get("/api/status", Some(("analyst", "pw"))).await.body;
    assert_eq!((status["bins_pending"].as_u64(), status["bins_published"].as_u64()), (Some(0), Some(3)));
}
