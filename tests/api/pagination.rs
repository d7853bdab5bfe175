//! Page-number pagination: traversal by `next` and `previous`, the links themselves, and page sizes.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, metrics_path};

backend_tests!(
    following_next_visits_every_row_exactly_once_in_order,
    following_previous_walks_back_through_the_same_pages,
    links_are_absolute_sorted_and_keep_the_parameters_as_sent,
    links_use_the_host_of_the_request,
    page_sizes_above_10000_are_clamped_to_10000,
    the_default_page_size_is_1000,
    walks_over_many_stores_and_days_see_every_row_once,
);

const GTE: &str = "2023-10-26T00:00:00Z";
const LTE: &str = "2023-10-27T00:00:00Z";

/// Four stores (one without data) in different zones: 33 store-minutes with counts overall.
async fn app_with_several_stores(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    for (code, zone) in [("a-store", "Europe/Athens"), ("b-store", "UTC"), ("c-store", "America/New_York")] {
        app.add_store(code, zone);
    }
    app.add_store("d-store", "Asia/Kolkata");
    for (device, store) in [("a-1", "a-store"), ("a-2", "a-store"), ("b-1", "b-store"), ("d-1", "d-store")] {
        app.add_device(device, store);
    }
    app.add_device("c-1", "c-store");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let mut bins = Vec::new();
    // a-store: 17 minutes, some from one device, some from both.
    for i in 0..17u32 {
        let minute = format!("2023-10-26T{:02}:{:02}:00Z", 8 + i / 7, (i * 13) % 60);
        bins.push(("a-1".to_owned(), minute.clone(), i % 3 + 1, i % 2));
        if i % 4 == 0 {
            bins.push(("a-2".to_owned(), minute, 2, 1));
        }
    }
    // b-store: 5 minutes; d-store: 11 minutes, deliberately sent out of order.
    for i in [4u32, 0, 3, 1, 2] {
        bins.push(("b-1".to_owned(), format!("2023-10-26T10:{:02}:00Z", i * 11), 1, 0));
    }
    for i in (0..11u32).rev() {
        bins.push(("d-1".to_owned(), format!("2023-10-26T{:02}:30:00Z", 2 + i), 3, 1));
    }
    app.ingest_owned(&bins);
    app
}

const ROWS: usize = 17 + 5 + 11;

fn instant(row: &Value) -> Timestamp {
    row["minute"].as_str().unwrap().parse().unwrap()
}

/// Asserts rows are strictly ordered by store code (bytes), then minute instant.
fn assert_ordered(rows: &[Value]) {
    for pair in rows.windows(2) {
        let key = |row: &Value| (row["store_code"].as_str().unwrap().as_bytes().to_vec(), instant(row));
        assert!(key(&pair[0]) < key(&pair[1]), "out of order: {} then {}", pair[0], pair[1]);
    }
}

async fn following_next_visits_every_row_exactly_once_in_order(backend: Backend) {
    let app = app_with_several_stores(backend).await;
    for endpoint in ["visits", "occupancy"] {
        let whole = app.get(&metrics_path(endpoint, GTE, LTE, "page_size=10000"), Some(ANALYST)).await;
        assert_eq!(whole.body["count"], json!(ROWS), "{endpoint}");
        assert_eq!(whole.body["next"], json!(null));
        let reference = whole.results().clone();
        assert_eq!(reference.len(), ROWS);
        assert_ordered(&reference);
        let stores: Vec<_> = reference.iter().map(|row| row["store_code"].as_str().unwrap()).collect();
        assert_eq!(stores.iter().filter(|s| **s == "a-store").count(), 17);
        assert_eq!(stores.iter().filter(|s| **s == "d-store").count(), 11);
        for page_size in [1usize, 2, 3, 7, 16, 32, 33, 34, 1000] {
            let pages =
                app.walk(&metrics_path(endpoint, GTE, LTE, &format!("page_size={page_size}")), Some(ANALYST)).await;
            assert_eq!(pages.len(), ROWS.div_ceil(page_size), "{endpoint} page_size={page_size}");
            for (index, page) in pages.iter().enumerate() {
                let expected = page_size.min(ROWS - index * page_size);
                assert_eq!(page.results().len(), expected, "{endpoint} page {} of size {page_size}", index + 1);
            }
            let rows: Vec<Value> = pages.iter().flat_map(|page| page.results().clone()).collect();
            assert_eq!(rows, reference, "{endpoint} walked with page_size={page_size}");
        }
        // Filters keep applying along the walk.
        let rows =
            app.walk_rows(&metrics_path(endpoint, GTE, LTE, "store_code=a-store&page_size=4"), Some(ANALYST)).await;
        let expected: Vec<Value> = reference.iter().filter(|row| row["store_code"] == "a-store").cloned().collect();
        assert_eq!(rows, expected);
    }
    let device_rows =
        app.walk_rows(&metrics_path("visits", GTE, LTE, "device_id=a-2&page_size=2"), Some(ANALYST)).await;
    assert_eq!(device_rows.len(), 5);
    assert_ordered(&device_rows);
    assert!(device_rows.iter().all(|row| row["in_metric"] == 2 && row["out_metric"] == 1));
}

async fn following_previous_walks_back_through_the_same_pages(backend: Backend) {
    let app = app_with_several_stores(backend).await;
    for endpoint in ["visits", "occupancy"] {
        for page_size in [1, 5, 10, 32] {
            let first = metrics_path(endpoint, GTE, LTE, &format!("page_size={page_size}"));
            let forward = app.walk(&first, Some(ANALYST)).await;
            let mut backward = vec![app.follow(&last_page_url(&app, &first, &forward), Some(ANALYST)).await];
            while let Some(previous) = backward.last().unwrap().body["previous"].as_str().map(str::to_owned) {
                let page = app.follow(&previous, Some(ANALYST)).await;
                assert_eq!(page.status, 200, "{previous}");
                backward.push(page);
            }
            backward.reverse();
            let bodies = |pages: &[crate::helpers::Response]| pages.iter().map(|p| p.body.clone()).collect::<Vec<_>>();
            assert_eq!(bodies(&backward), bodies(&forward), "{endpoint} page_size={page_size}");
        }
    }
}

/// The URL of the last page of a walk: the `next` link of the page before it (or the first request).
fn last_page_url(app: &TestApp, first: &str, pages: &[crate::helpers::Response]) -> String {
    match pages.len() {
        1 => app.url(first),
        n => pages[n - 2].body["next"].as_str().unwrap().to_owned(),
    }
}

async fn links_are_absolute_sorted_and_keep_the_parameters_as_sent(backend: Backend) {
    let app = app_with_several_stores(backend).await;
    let query = "?store_code=a-store&page_size=2&zeta=z+z&datetime_lte=2023-10-26T13:00:00%2B03:00&datetime_gte=2023-10-26T08:00:00&page=2";
    for endpoint in ["visits", "occupancy"] {
        let path = format!("/api/bi/acquisition-metrics/{endpoint}/");
        let response = app.get(&format!("{path}{query}"), Some(ANALYST)).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let base = format!(
            "{}{path}?datetime_gte=2023-10-26T08%3A00%3A00&datetime_lte=2023-10-26T13%3A00%3A00%2B03%3A00",
            app.address
        );
        assert_eq!(response.body["next"], json!(format!("{base}&page=3&page_size=2&store_code=a-store&zeta=z+z")));
        // The link to page 1 carries no page parameter at all.
        assert_eq!(response.body["previous"], json!(format!("{base}&page_size=2&store_code=a-store&zeta=z+z")));
        let page3 = app.follow(response.body["next"].as_str().unwrap(), Some(ANALYST)).await;
        assert_eq!(page3.body["previous"], json!(format!("{base}&page=2&page_size=2&store_code=a-store&zeta=z+z")));
        let page1 = app.follow(response.body["previous"].as_str().unwrap(), Some(ANALYST)).await;
        assert_eq!(page1.body["previous"], json!(null));
        assert_eq!(page1.body["next"], json!(format!("{base}&page=2&page_size=2&store_code=a-store&zeta=z+z")));
    }
    // Without the trailing slash the links keep the path as requested.
    let response = app.get(&format!("/api/bi/acquisition-metrics/visits{query}"), Some(ANALYST)).await;
    let next = response.body["next"].as_str().unwrap();
    assert!(next.starts_with(&format!("{}/api/bi/acquisition-metrics/visits?", app.address)), "{next}");
}

async fn links_use_the_host_of_the_request(backend: Backend) {
    let app = app_with_several_stores(backend).await;
    let path = metrics_path("visits", GTE, LTE, "page_size=10&page=2");
    let response = app
        .client
        .get(app.url(&path))
        .basic_auth(ANALYST.0, Some(ANALYST.1))
        .header("Host", "footfall.example:8443")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    for link in ["next", "previous"] {
        let url = body[link].as_str().unwrap();
        assert!(url.starts_with("http://footfall.example:8443/api/bi/acquisition-metrics/visits/?"), "{url}");
    }
}

/// One store with `rows` consecutive minutes of data.
async fn app_with_one_big_store(backend: Backend, rows: u32) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.add_store("big", "UTC");
    app.add_device("big-1", "big");
    app.add_user(ANALYST.0, ANALYST.1, &["big"]);
    let start: Timestamp = "2023-01-01T00:00:00Z".parse().unwrap();
    let bins: Vec<_> = (0..rows)
        .map(|i| {
            let minute = start + jiff::SignedDuration::from_mins(i64::from(i));
            ("big-1".to_owned(), minute.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), 1, 0)
        })
        .collect();
    app.ingest_owned(&bins);
    app
}

const BIG_GTE: &str = "2023-01-01T00:00:00Z";
const BIG_LTE: &str = "2023-02-01T00:00:00Z";

async fn page_sizes_above_10000_are_clamped_to_10000(backend: Backend) {
    let app = app_with_one_big_store(backend, 10_050).await;
    for endpoint in ["visits", "occupancy"] {
        for page_size in ["20000", "10001", "99999999999999999999"] {
            let path = metrics_path(endpoint, BIG_GTE, BIG_LTE, &format!("page_size={page_size}"));
            let first = app.get(&path, Some(ANALYST)).await;
            assert_eq!(first.status, 200, "{}", first.body);
            assert_eq!(first.body["count"], 10_050);
            assert_eq!(first.results().len(), 10_000, "{endpoint} page_size={page_size}");
            // The clamped value stays as sent in the links.
            let next = first.body["next"].as_str().unwrap();
            assert!(next.ends_with(&format!("&page=2&page_size={page_size}")), "{next}");
            let second = app.follow(next, Some(ANALYST)).await;
            assert_eq!(second.results().len(), 50);
            assert_eq!(second.body["next"], json!(null));
            assert_eq!(second.body["previous"], json!(app.url(&path)));
            assert_eq!(second.results()[0]["minute"], "2023-01-07T22:40:00+00:00", "row 10001 comes next");
        }
        let exact = app.get(&metrics_path(endpoint, BIG_GTE, BIG_LTE, "page_size=10000"), Some(ANALYST)).await;
        assert_eq!(exact.results().len(), 10_000);
    }
}

async fn the_default_page_size_is_1000(backend: Backend) {
    let app = app_with_one_big_store(backend, 2_345).await;
    for endpoint in ["visits", "occupancy"] {
        let path = metrics_path(endpoint, BIG_GTE, BIG_LTE, "");
        let pages = app.walk(&path, Some(ANALYST)).await;
        let sizes: Vec<_> = pages.iter().map(|page| page.results().len()).collect();
        assert_eq!(sizes, [1000, 1000, 345], "{endpoint}");
        assert_eq!(pages[0].body["next"], json!(format!("{}&page=2", app.url(&path))));
        let rows: Vec<Value> = pages.iter().flat_map(|page| page.results().clone()).collect();
        assert_ordered(&rows);
        assert_eq!(rows.last().unwrap()["minute"], "2023-01-02T15:04:00+00:00");
    }
}

/// More than 16 stores over more than 3 days: the storage finds the periods of such a query store by
/// store; fewer stores or a shorter span take the other path. Both must give every row once, in order.
async fn walks_over_many_stores_and_days_see_every_row_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let zones = ["Europe/Athens", "America/New_York", "UTC", "Asia/Kolkata"];
    let mut bins = Vec::new();
    let mut expected = Vec::new();
    for store in 0..20 {
        let code = format!("S{store:02}");
        app.add_store(&code, zones[store % zones.len()]);
        app.add_device(&format!("{code}-a"), &code);
        for day in 0..5 {
            for slot in 0..(1 + (store + day) % 4) {
                let minute = format!("2023-10-{:02}T{:02}:{:02}:00Z", 20 + day, 6 + slot * 3, store);
                bins.push((format!("{code}-a"), minute.clone(), (store + day + slot) as u32 + 1, 0));
                expected.push((code.clone(), minute.parse::<Timestamp>().unwrap()));
            }
        }
    }
    app.ingest_owned(&bins);
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    expected.sort();
    for (gte, lte) in
        [("2023-10-19T00:00:00Z", "2023-10-26T00:00:00Z"), ("2023-10-21T07:00:00Z", "2023-10-23T07:30:00Z")]
    {
        let wanted: Vec<_> = expected
            .iter()
            .filter(|(_, at)| *at >= gte.parse::<Timestamp>().unwrap() && *at <= lte.parse::<Timestamp>().unwrap())
            .cloned()
            .collect();
        for page_size in [7, 50, 1000] {
            let rows = app
                .walk_rows(&metrics_path("visits", gte, lte, &format!("page_size={page_size}")), Some(ANALYST))
                .await;
            let got: Vec<_> = rows
                .iter()
                .map(|row| {
                    (
                        row["store_code"].as_str().unwrap().to_owned(),
                        row["minute"].as_str().unwrap().parse::<Timestamp>().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, wanted, "{gte}..{lte} in pages of {page_size}");
        }
    }
}
