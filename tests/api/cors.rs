//! CORS: off by default; with `cors_allowed_origins`, preflights and answers carry the headers for the
//! listed origins only.

use crate::helpers::{ANALYST, Backend, Response, TestApp};
use footfall::app::ServerConfig;

const BI: &str = "https://bi.example.com";
const STORES: &str = "/api/stores";

async fn app_allowing(origins: &[&str]) -> TestApp {
    let config = ServerConfig {
        cors_allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
        ..ServerConfig::immediate()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app
}

async fn preflight(app: &TestApp, origin: &str) -> Response {
    let request = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(STORES))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization");
    Response::read("OPTIONS", request.send().await.unwrap()).await
}

async fn get_from(app: &TestApp, origin: &str) -> Response {
    let request = app.client.get(app.url(STORES)).basic_auth(ANALYST.0, Some(ANALYST.1)).header("Origin", origin);
    Response::read("GET", request.send().await.unwrap()).await
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers.get(name).map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn a_listed_origin_gets_the_cors_headers() {
    let app = app_allowing(&[BI, "http://localhost:3000"]).await;
    let answered = preflight(&app, BI).await;
    assert_eq!(answered.status, 200);
    assert_eq!(header(&answered, "access-control-allow-origin"), Some(BI));
    assert_eq!(header(&answered, "access-control-allow-credentials"), Some("true"));
    let allowed_headers = header(&answered, "access-control-allow-headers").unwrap();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
    assert!(header(&answered, "access-control-allow-methods").unwrap().contains("GET"));

    let read = get_from(&app, BI).await;
    assert_eq!(read.status, 200);
    assert_eq!(header(&read, "access-control-allow-origin"), Some(BI));
    assert_eq!(header(&read, "access-control-allow-credentials"), Some("true"));
    let exposed = header(&read, "access-control-expose-headers").unwrap();
    for name in ["etag", "last-modified", "x-request-id"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    let refused = app.client.get(app.url(STORES)).header("Origin", BI).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], BI, "errors reach the page's script too");
}

#[tokio::test]
async fn another_origin_gets_none() {
    let app = app_allowing(&[BI]).await;
    for origin in ["https://evil.example.com", "https://bi.example.com.evil.example", "http://bi.example.com"] {
        let answered = preflight(&app, origin).await;
        assert_eq!(header(&answered, "access-control-allow-origin"), None, "{origin}");
        let read = get_from(&app, origin).await;
        assert_eq!(read.status, 200, "the request itself is served; the browser hides it from the page");
        assert_eq!(header(&read, "access-control-allow-origin"), None, "{origin}");
    }
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let answered = preflight(&app, BI).await;
    assert_eq!(answered.status, 405, "no preflight is answered");
    assert_eq!(header(&answered, "access-control-allow-origin"), None);
    let read = get_from(&app, BI).await;
    assert_eq!(read.status, 200);
    assert!(read.headers.keys().all(|name| !name.as_str().starts_with("access-control-")), "{:?}", read.headers);
}
