//! The response cache: a page is answered again from memory, marked `Cache-Status: footfall; hit`,
//! until a publication or a catalog change; users who see the same stores share pages, others never
//! get them; with no cache bytes there is no cache.

use std::time::Duration;

use crate::backend_tests;
use crate::helpers::{Backend, Response, TestApp};
use footfall::app::ServerConfig;

backend_tests!(
    a_page_is_answered_from_the_cache_until_the_next_publication,
    users_who_see_the_same_stores_share_pages_and_no_one_else_gets_them,
    with_no_cache_bytes_nothing_is_cached,
);

fn scheduled(cache_bytes: u64) -> ServerConfig {
    ServerConfig {
        publish_interval: Duration::from_secs(15 * 60),
        response_cache_bytes: cache_bytes,
        ..Default::default()
    }
}

const DAY: &str = "datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-26T23:59:00Z";

fn cache_status(response: &Response) -> Option<&str> {
    response.headers.get("cache-status").map(|value| value.to_str().unwrap())
}

async fn visits(app: &TestApp, query: &str, user: (&str, &str)) -> Response {
    let response = app.get(&format!("/api/bi/acquisition-metrics/visits/?{query}"), Some(user)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response
}

async fn a_page_is_answered_from_the_cache_until_the_next_publication(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled(64 << 20)).await;
    app.add_store("s1", "UTC");
    app.add_device("d1", "s1");
    app.add_user("analyst", "pw", &[]);
    app.ingest(&[("d1", "2023-10-26T10:00:00Z", 3, 1)]);
    app.publish();
    let user = ("analyst", "pw");

    let first = visits(&app, DAY, user).await;
    assert_eq!(cache_status(&first), Some("footfall; fwd=miss; stored"));
    let again = visits(&app, DAY, user).await;
    assert_eq!(cache_status(&again), Some("footfall; hit"));
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers.get("etag"), first.headers.get("etag"));
    // The links repeat the parameters as sent: another order is another page.
    let reordered = "datetime_lte=2023-10-26T23:59:00Z&datetime_gte=2023-10-26T00:00:00Z";
    assert_eq!(cache_status(&visits(&app, reordered, user).await), Some("footfall; fwd=miss; stored"));

    // New bins are not seen before their publication, and are seen right after it.
    app.ingest(&[("d1", "2023-10-26T10:01:00Z", 2, 0)]);
    let pending = visits(&app, DAY, user).await;
    assert_eq!((cache_status(&pending), pending.body["count"].as_i64()), (Some("footfall; hit"), Some(1)));
    app.publish();
    let published = visits(&app, DAY, user).await;
    assert_eq!(cache_status(&published), Some("footfall; fwd=miss; stored"));
    assert_eq!(published.body["count"], 2);
    // A catalog change (the store's time zone) renders again too.
    app.cli_ok(&["store", "set", "s1", "--timezone", "Europe/Athens"], None);
    let moved = visits(&app, DAY, user).await;
    assert_eq!(cache_status(&moved), Some("footfall; fwd=miss; stored"));
    assert_eq!(moved.results()[0]["minute"], "2023-10-26T13:00:00+03:00");
}

async fn users_who_see_the_same_stores_share_pages_and_no_one_else_gets_them(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled(64 << 20)).await;
    app.add_store("s1", "UTC");
    app.add_store("s2", "UTC");
    app.add_device("d1", "s1");
    app.add_device("d2", "s2");
    app.add_user("ann", "pw", &["s1"]);
    app.add_user("bob", "pw", &["s1"]);
    app.add_user("eve", "pw", &["s2"]);
    app.ingest(&[("d1", "2023-10-26T10:00:00Z", 3, 1), ("d2", "2023-10-26T11:00:00Z", 5, 5)]);
    app.publish();

    let ann = visits(&app, DAY, ("ann", "pw")).await;
    assert_eq!(cache_status(&ann), Some("footfall; fwd=miss; stored"));
    let bob = visits(&app, DAY, ("bob", "pw")).await;
    assert_eq!((cache_status(&bob), &bob.body), (Some("footfall; hit"), &ann.body));
    let eve = visits(&app, DAY, ("eve", "pw")).await;
    assert_eq!(cache_status(&eve), Some("footfall; fwd=miss; stored"));
    let stores: Vec<&str> = eve.results().iter().map(|row| row["store_code"].as_str().unwrap()).collect();
    assert_eq!(stores, ["s2"], "another scope's page is never served");
    // A wrong password is refused before the cache is looked at.
    assert_eq!(app.get(&format!("/api/bi/acquisition-metrics/visits/?{DAY}"), Some(("bob", "no"))).await.status, 401);
}

async fn with_no_cache_bytes_nothing_is_cached(backend: Backend) {
    let app = TestApp::spawn_with(backend, scheduled(0)).await;
    app.add_store("s1", "UTC");
    app.add_user("analyst", "pw", &[]);
    for _ in 0..2 {
        assert_eq!(cache_status(&visits(&app, DAY, ("analyst", "pw")).await), None);
    }
}
