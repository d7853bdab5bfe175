//! Device ingestion over HTTP: authentication, validation, all-or-nothing, idempotence, limits.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};
use footfall::app::ServerConfig;

backend_tests!(
    a_device_token_ingests_its_own_bins,
    bad_credentials_and_foreign_bins_are_refused,
    bad_records_are_named_and_nothing_is_stored,
    resending_a_batch_changes_nothing,
    ndjson_bodies_and_ingest_users,
    bodies_over_the_limit_get_413,
    rotating_a_token_invalidates_the_old_one_and_devices_are_listed,
);

const VISITS: &str =
    "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z";

fn bin(device: &str, minute: &str, entries: i64, exits: i64) -> Value {
    json!({"device_id": device, "minute": minute, "in": entries, "out": exits})
}

async fn setup(backend: Backend) -> (TestApp, String, String) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    let token_1 = app.add_device("cnt-1", "116500");
    let token_2 = app.add_device("cnt-2", "116500");
    app.add_user("analyst", "pw", &[]);
    (app, token_1, token_2)
}

async fn post(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let response = app.client.post(app.url("/api/ingest/bins")).bearer_auth(token).json(body).send().await.unwrap();
    let response = crate::helpers::Response::read("POST", response).await;
    (response.status, response.body)
}

async fn visits(app: &TestApp) -> Vec<(String, i64, i64)> {
    let response = app.get(VISITS, Some(("analyst", "pw"))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .results()
        .iter()
        .map(|row| {
            (
                row["minute"].as_str().unwrap().to_owned(),
                row["in_metric"].as_i64().unwrap(),
                row["out_metric"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn a_device_token_ingests_its_own_bins(backend: Backend) {
    let (app, token, _) = setup(backend).await;
    let body = json!([bin("cnt-1", "2023-10-26T12:06:00Z", 3, 0), bin("cnt-1", "2023-10-26T12:07:00Z", 1, 2)]);
    assert_eq!(post(&app, &token, &body).await, (200, json!({"accepted": 2})));
    assert_eq!(
        visits(&app).await,
        [("2023-10-26T15:06:00+03:00".to_owned(), 3, 0), ("2023-10-26T15:07:00+03:00".to_owned(), 1, 2)]
    );
    // A single object is a batch of one.
    assert_eq!(post(&app, &token, &bin("cnt-1", "2023-10-26T12:08:00Z", 1, 0)).await.0, 200);
    assert_eq!(visits(&app).await.len(), 3);
}

async fn bad_credentials_and_foreign_bins_are_refused(backend: Backend) {
    let (app, token, _) = setup(backend).await;
    let body = json!([bin("cnt-1", "2023-10-26T12:06:00Z", 3, 0)]);
    let (status, error) = post(&app, "not-a-token", &body).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("authentication_failed")));
    let response = app.client.post(app.url("/api/ingest/bins")).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let foreign = json!([bin("cnt-1", "2023-10-26T12:06:00Z", 3, 0), bin("cnt-2", "2023-10-26T12:06:00Z", 1, 0)]);
    let (status, error) = post(&app, &token, &foreign).await;
    assert_eq!(status, 403);
    assert_eq!(error["code"], "permission_denied");
    assert!(error["detail"].as_str().unwrap().contains("bins[1].device_id"), "{error}");
    assert!(visits(&app).await.is_empty(), "nothing of a refused batch is stored");
    // A user without the ingest permission may read but not write.
    let response = app
        .client
        .post(app.url("/api/ingest/bins"))
        .basic_auth("analyst", Some("pw"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

async fn bad_records_are_named_and_nothing_is_stored(backend: Backend) {
    let (app, token, _) = setup(backend).await;
    let good = bin("cnt-1", "2023-10-26T12:06:00Z", 3, 0);
    let cases = [
        (bin("cnt-1", "2023-10-26T12:07:00Z", -1, 0), "bins[1]: in"),
        (bin("cnt-1", "2023-10-26T12:07:00Z", 1, -4), "bins[1]: out"),
        (bin("cnt-1", "2023-10-26T12:07:30Z", 1, 0), "bins[1]: minute"),
        (bin("cnt-1", "yesterday", 1, 0), "bins[1]: minute"),
        (json!({"device_id": "cnt-1", "minute": "2023-10-26T12:07:00Z", "in": 1}), "bins[1]: out"),
        (json!({"device_id": "cnt-1", "minute": "2023-10-26T12:07:00Z", "in": "many", "out": 0}), "bins[1]: in"),
        (json!("just a string"), "bins[1]"),
        (bin("nobody", "2023-10-26T12:07:00Z", 1, 0), "bins[1].device_id"),
    ];
    for (bad, expected) in cases {
        let (status, error) = post(&app, &token, &json!([good, bad])).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error.as_object().unwrap().len(), 3);
        assert!(error["detail"].as_str().unwrap().starts_with(expected), "{bad}: {error}");
    }
    let response = app.client.post(app.url("/api/ingest/bins")).bearer_auth(&token).body("[{").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(visits(&app).await.is_empty(), "no batch was half stored");
}

async fn resending_a_batch_changes_nothing(backend: Backend) {
    let (app, token, _) = setup(backend).await;
    let body = json!([bin("cnt-1", "2023-10-26T12:06:00Z", 3, 0), bin("cnt-1", "2023-10-26T12:09:00Z", 0, 2)]);
    assert_eq!(post(&app, &token, &body).await.0, 200);
    let first = visits(&app).await;
    for _ in 0..3 {
        assert_eq!(post(&app, &token, &body).await, (200, json!({"accepted": 2})));
    }
    assert_eq!(visits(&app).await, first);
    let status = app.get("/api/status", Some(("analyst", "pw"))).await;
    assert_eq!(status.body["bins_published"], 2, "{}", status.body);
    assert_eq!(status.body["bins_pending"], 0);
}

async fn ndjson_bodies_and_ingest_users(backend: Backend) {
    let (app, _, _) = setup(backend).await;
    app.cli_ok(&["user", "add", "loader", "--password-stdin", "--stores", "116500", "--can-ingest"], Some("pw2"));
    let body = "{\"device_id\":\"cnt-1\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":3,\"out\":0}\n\n{\"device_id\":\"cnt-2\",\"minute\":\"2023-10-26T12:06:00Z\",\"in\":1,\"out\":1}\n";
    let response = app
        .client
        .post(app.url("/api/ingest/bins"))
        .basic_auth("loader", Some("pw2"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 2}));
    assert_eq!(visits(&app).await, [("2023-10-26T15:06:00+03:00".to_owned(), 4, 1)]);
}

async fn bodies_over_the_limit_get_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, ServerConfig { max_body_bytes: 1024, ..ServerConfig::immediate() }).await;
    app.add_store("116500", "Europe/Athens");
    let token = app.add_device("cnt-1", "116500");
    let body: Vec<Value> = (0..50).map(|m| bin("cnt-1", &format!("2023-10-26T12:{m:02}:00Z"), 1, 0)).collect();
    let (status, error) = post(&app, &token, &json!(body)).await;
    assert_eq!(status, 413);
    assert_eq!(error["code"], "payload_too_large");
    assert_eq!(post(&app, &token, &json!(body[..5])).await.0, 200);
}

async fn rotating_a_token_invalidates_the_old_one_and_devices_are_listed(backend: Backend) {
    let (app, old_token, _) = setup(backend).await;
    let body = json!([bin("cnt-1", "2023-10-26T12:06:00Z", 3, 0)]);
    assert_eq!(post(&app, &old_token, &body).await.0, 200);
    let new_token = app.cli_ok(&["device", "rotate-token", "cnt-1"], None).lines().last().unwrap().to_owned();
    assert_ne!(new_token, old_token);
    assert_eq!(post(&app, &old_token, &body).await.0, 401);
    assert_eq!(post(&app, &new_token, &body).await.0, 200);
    let listing = app.cli_ok(&["device", "list"], None);
    let line = listing.lines().find(|line| line.starts_with("cnt-1 ")).unwrap();
    assert!(line.contains("116500") && line.contains("2023-10-26T12:06:00Z"), "{listing}");
    let never = listing.lines().find(|line| line.starts_with("cnt-2 ")).unwrap();
    assert!(never.ends_with("never"), "{listing}");
    assert!(!app.cli(&["device", "rotate-token", "ghost"], None).status.success());
}
