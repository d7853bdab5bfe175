//! Store isolation between users: a user limited to some stores cannot see, or learn of, the others.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, Response, TestApp, metrics_path};

backend_tests!(
    limited_users_see_only_their_stores,
    a_hidden_store_looks_exactly_like_a_missing_one,
    a_device_of_a_hidden_store_is_not_found,
    all_stores_users_see_stores_added_later,
    the_store_list_shows_only_the_users_stores,
);

const GTE: &str = "2023-10-26T00:00:00Z";
const LTE: &str = "2023-10-27T00:00:00Z";
const LIMITED: (&str, &str) = ("limited", "pa55word");

/// Stores A, B and C with one device each and rows in each; `limited` sees A and C, `analyst` all.
async fn app_with_three_stores(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    for code in ["A", "B", "C"] {
        app.add_store(code, "Europe/Athens");
        app.add_device(&format!("{code}-1"), code);
    }
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.add_user(LIMITED.0, LIMITED.1, &["A", "C"]);
    let mut bins = Vec::new();
    for code in ["A", "B", "C"] {
        for minute in ["2023-10-26T12:00:00Z", "2023-10-26T12:01:00Z"] {
            bins.push((format!("{code}-1"), minute.to_owned(), 2, 1));
        }
    }
    app.ingest_owned(&bins);
    app
}

fn stores_of(rows: &[Value]) -> Vec<&str> {
    let mut stores: Vec<&str> = rows.iter().map(|row| row["store_code"].as_str().unwrap()).collect();
    stores.dedup();
    stores
}

fn without_error_id(response: &Response) -> Value {
    let mut body = response.body.clone();
    body.as_object_mut().unwrap().remove("error_id");
    body
}

async fn limited_users_see_only_their_stores(backend: Backend) {
    let app = app_with_three_stores(backend).await;
    for endpoint in ["visits", "occupancy"] {
        for page_size in ["1", "1000"] {
            let path = metrics_path(endpoint, GTE, LTE, &format!("page_size={page_size}"));
            let limited = app.walk_rows(&path, Some(LIMITED)).await;
            assert_eq!(stores_of(&limited), ["A", "C"], "{endpoint}");
            assert_eq!(limited.len(), 4);
            let everyone = app.walk_rows(&path, Some(ANALYST)).await;
            assert_eq!(stores_of(&everyone), ["A", "B", "C"], "{endpoint}");
            let visible: Vec<Value> = everyone.into_iter().filter(|row| row["store_code"] != "B").collect();
            assert_eq!(limited, visible, "the same rows as the all-stores user, minus B's");
        }
        for code in ["A", "C"] {
            let rows =
                app.walk_rows(&metrics_path(endpoint, GTE, LTE, &format!("store_code={code}")), Some(LIMITED)).await;
            assert_eq!(stores_of(&rows), [code]);
        }
    }
    let rows = app.walk_rows(&metrics_path("visits", GTE, LTE, "device_id=C-1"), Some(LIMITED)).await;
    assert_eq!(stores_of(&rows), ["C"]);
}

async fn a_hidden_store_looks_exactly_like_a_missing_one(backend: Backend) {
    let app = app_with_three_stores(backend).await;
    for endpoint in ["visits", "occupancy"] {
        let hidden = app.get(&metrics_path(endpoint, GTE, LTE, "store_code=B"), Some(LIMITED)).await;
        let missing = app.get(&metrics_path(endpoint, GTE, LTE, "store_code=Q"), Some(LIMITED)).await;
        for response in [&hidden, &missing] {
            assert_eq!(response.status, 404, "{}", response.body);
            assert_eq!(response.error_code(), "store_code_not_found");
        }
        assert_eq!(without_error_id(&hidden), without_error_id(&missing));
        let header_names = |r: &Response| {
            let mut names: Vec<String> = r.headers.keys().map(|k| k.as_str().to_owned()).collect();
            names.retain(|name| name != "date" && name != "content-length");
            names.sort();
            names
        };
        assert_eq!(header_names(&hidden), header_names(&missing));
        // The all-stores user does see B.
        let visible = app.get(&metrics_path(endpoint, GTE, LTE, "store_code=B"), Some(ANALYST)).await;
        assert_eq!((visible.status, visible.body["count"].as_u64()), (200, Some(2)));
    }
}

async fn a_device_of_a_hidden_store_is_not_found(backend: Backend) {
    let app = app_with_three_stores(backend).await;
    let hidden = app.get(&metrics_path("visits", GTE, LTE, "device_id=B-1"), Some(LIMITED)).await;
    let missing = app.get(&metrics_path("visits", GTE, LTE, "device_id=Q-1"), Some(LIMITED)).await;
    let hidden_in_a_visible_store =
        app.get(&metrics_path("visits", GTE, LTE, "device_id=B-1&store_code=A"), Some(LIMITED)).await;
    for response in [&hidden, &missing, &hidden_in_a_visible_store] {
        assert_eq!(response.status, 404, "{}", response.body);
        assert_eq!(response.error_code(), "device_id_not_found");
    }
    assert_eq!(without_error_id(&hidden), without_error_id(&missing));
    let visible = app.get(&metrics_path("visits", GTE, LTE, "device_id=B-1"), Some(ANALYST)).await;
    assert_eq!((visible.status, visible.body["count"].as_u64()), (200, Some(2)));
}

async fn all_stores_users_see_stores_added_later(backend: Backend) {
    let app = app_with_three_stores(backend).await;
    // Warm whatever the server caches (credentials, catalog) before the new store appears.
    assert_eq!(app.get(&metrics_path("visits", GTE, LTE, ""), Some(ANALYST)).await.body["count"], 6);
    assert_eq!(app.get(&metrics_path("visits", GTE, LTE, ""), Some(LIMITED)).await.body["count"], 4);
    app.add_store("D", "UTC");
    app.add_device("D-1", "D");
    app.ingest(&[("D-1", "2023-10-26T12:00:00Z", 1, 0)]);
    for endpoint in ["visits", "occupancy"] {
        let everyone = app.walk_rows(&metrics_path(endpoint, GTE, LTE, ""), Some(ANALYST)).await;
        assert_eq!(stores_of(&everyone), ["A", "B", "C", "D"], "{endpoint}");
        let d = app.get(&metrics_path(endpoint, GTE, LTE, "store_code=D"), Some(ANALYST)).await;
        assert_eq!((d.status, d.body["count"].as_u64()), (200, Some(1)));
        let limited = app.walk_rows(&metrics_path(endpoint, GTE, LTE, ""), Some(LIMITED)).await;
        assert_eq!(stores_of(&limited), ["A", "C"], "{endpoint}");
        let hidden = app.get(&metrics_path(endpoint, GTE, LTE, "store_code=D"), Some(LIMITED)).await;
        assert_eq!(hidden.status, 404);
        assert_eq!(hidden.error_code(), "store_code_not_found");
    }
    let device = app.get(&metrics_path("visits", GTE, LTE, "device_id=D-1"), Some(ANALYST)).await;
    assert_eq!(device.body["count"], 1);
}

async fn the_store_list_shows_only_the_users_stores(backend: Backend) {
    let app = app_with_three_stores(backend).await;
    let limited = app.get("/api/stores", Some(LIMITED)).await;
    assert_eq!(limited.status, 200);
    assert_eq!(limited.body["count"], 2);
    let codes: Vec<&str> = limited.results().iter().map(|s| s["store_code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["A", "C"]);
    let athens = &limited.results()[0];
    assert_eq!(athens["timezone"], "Europe/Athens");
    assert_eq!(athens["occupancy_reset"], "00:00");
    assert!(["+02:00", "+03:00"].contains(&athens["utc_offset"].as_str().unwrap()), "{athens}");
    assert_eq!(app.get("/api/stores", Some(ANALYST)).await.body["count"], 3);
    assert_eq!(app.get("/api/stores", None).await.status, 401);
}
