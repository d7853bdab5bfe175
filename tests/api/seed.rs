//! The two examples of the seed document, reproduced exactly.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(visits_example_of_the_seed_document, occupancy_example_of_the_seed_document);

async fn visits_example_of_the_seed_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_device("cnt-2", "116500");
    app.add_user("analyst", "s3cret", &[]);
    app.ingest(&[
        ("cnt-1", "2023-10-26T12:04:00Z", 5, 5), // before the window
        ("cnt-1", "2023-10-26T12:06:00Z", 2, 0),
        ("cnt-2", "2023-10-26T12:06:00Z", 1, 0),
        ("cnt-1", "2023-10-26T12:07:00Z", 0, 0), // an empty minute has no row
        ("cnt-2", "2023-10-26T12:08:00Z", 0, 1),
        ("cnt-1", "2023-10-26T12:09:00Z", 1, 1),
        ("cnt-2", "2023-10-26T12:09:00Z", 0, 1),
        ("cnt-1", "2023-10-26T12:10:00Z", 0, 2),
        ("cnt-1", "2023-10-26T12:20:00Z", 4, 0),
        ("cnt-2", "2023-10-26T12:30:00Z", 1, 3),
        ("cnt-2", "2023-10-26T12:31:00Z", 9, 9), // after the window
    ]);
    let query = "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&store_code=116500&page_size=4";
    let response = app.get(query, Some(("analyst", "s3cret"))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let next = format!(
        "{}/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&page=2&page_size=4&store_code=116500",
        app.address
    );
    assert_eq!(
        response.body,
        json!({
            "count": 6,
            "next": next,
            "previous": null,
            "results": [
                {"store_code": "116500", "in_metric": 3, "out_metric": 0, "diff_metric": 3, "minute": "2023-10-26T15:06:00+03:00"},
                {"store_code": "116500", "in_metric": 0, "out_metric": 1, "diff_metric": -1, "minute": "2023-10-26T15:08:00+03:00"},
                {"store_code": "116500", "in_metric": 1, "out_metric": 2, "diff_metric": -1, "minute": "2023-10-26T15:09:00+03:00"},
                {"store_code": "116500", "in_metric": 0, "out_metric": 2, "diff_metric": -2, "minute": "2023-10-26T15:10:00+03:00"}
            ]
        })
    );
    let page2 = app.get(&next.replace(&app.address, ""), Some(("analyst", "s3cret"))).await;
    assert_eq!(page2.status, 200);
    assert_eq!(page2.body["next"], json!(null));
    assert_eq!(
        page2.body["previous"],
        json!(format!(
            "{}{}",
            app.address,
            "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&page_size=4&store_code=116500"
        ))
    );
    let minutes: Vec<_> = page2.results().iter().map(|row| row["minute"].as_str().unwrap()).collect();
    assert_eq!(minutes, ["2023-10-26T15:20:00+03:00", "2023-10-26T15:30:00+03:00"]);
}

async fn occupancy_example_of_the_seed_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "s3cret", &["116500"]);
    app.ingest(&[
        ("cnt-1", "2021-05-12T09:41:00Z", 7, 0),
        ("cnt-1", "2021-05-12T09:44:00Z", 3, 1),
        ("cnt-1", "2021-05-12T09:50:00Z", 3, 0),
        ("cnt-1", "2021-05-12T09:53:00Z", 0, 1),
        ("cnt-1", "2021-05-12T09:56:00Z", 1, 1),
    ]);
    let query = "/api/bi/acquisition-metrics/occupancy?store_code=116500&datetime_gte=2021-05-12T09:40:00Z&datetime_lte=2021-05-12T10:05:00Z";
    let response = app.get(query, Some(("analyst", "s3cret"))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let row =
        |occupancy: i64, minute: &str| json!({"store_code": "116500", "occupancy_metric": occupancy, "minute": minute});
    assert_eq!(
        response.body,
        json!({
            "count": 5,
            "next": null,
            "previous": null,
            "results": [
                row(7, "2021-05-12T12:41:00+03:00"),
                row(9, "2021-05-12T12:44:00+03:00"),
                row(12, "2021-05-12T12:50:00+03:00"),
                row(11, "2021-05-12T12:53:00+03:00"),
                row(11, "2021-05-12T12:56:00+03:00"),
            ]
        })
    );
}
