//! Every error case of the contract: status, code, the `{detail, code, error_id}` shape, and the
//! authentication rules.

use base64::Engine;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, Response, TestApp, metrics_path};

backend_tests!(
    malformed_authorization_is_not_authenticated,
    wrong_password_and_unknown_user_get_the_same_answer,
    basic_scheme_is_case_insensitive_and_the_password_is_everything_after_the_first_colon,
    a_wrong_password_fails_after_a_cached_success,
    unauthenticated_requests_are_refused_before_anything_else,
    unknown_store_is_store_code_not_found,
    unknown_device_is_device_id_not_found,
    bad_datetimes_are_400_naming_the_parameter,
    bad_page_sizes_are_400_naming_page_size,
    bad_pages_are_invalid_page,
    page_one_of_an_empty_result_is_200,
    unknown_paths_answer_a_json_404,
    endpoints_answer_with_and_without_the_trailing_slash,
);

const ENDPOINTS: [&str; 2] = ["visits", "occupancy"];

fn window(endpoint: &str, extra: &str) -> String {
    metrics_path(endpoint, "2023-10-26T12:00:00Z", "2023-10-26T13:00:00Z", extra)
}

fn basic(raw: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// The body without its error_id, which differs on every response.
fn without_error_id(response: &Response) -> Value {
    let mut body = response.body.clone();
    body.as_object_mut().unwrap().remove("error_id");
    body
}

fn assert_error(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.error_code(), code, "{}", response.body);
    let content_type = response.headers.get("content-type").expect("content-type").to_str().unwrap();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    if status == 401 {
        let challenge = response.headers.get("www-authenticate").expect("401 carries WWW-Authenticate");
        assert!(challenge.to_str().unwrap().starts_with("Basic"), "{challenge:?}");
    }
}

/// A store with one device and a few rows, and the all-stores user [`ANALYST`].
async fn app_with_data(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.ingest(&[
        ("cnt-1", "2023-10-26T12:06:00Z", 2, 0),
        ("cnt-1", "2023-10-26T12:07:00Z", 1, 1),
        ("cnt-1", "2023-10-26T12:08:00Z", 0, 1),
    ]);
    app
}

async fn malformed_authorization_is_not_authenticated(backend: Backend) {
    let app = app_with_data(backend).await;
    let good = basic("analyst:s3cret");
    let malformed = [
        "Basic".to_owned(),
        "Basic ".to_owned(),
        "Basic !!!not-base64!!!".to_owned(),
        basic("analyst-without-colon"),
        format!("{good} extra"),
        format!("{good} {}", basic("a:b").trim_start_matches("Basic ")),
        good.replace("Basic", "Digest"),
        "s3cret".to_owned(),
    ];
    for endpoint in ENDPOINTS {
        let response = app.get(&window(endpoint, ""), None).await;
        assert_error(&response, 401, "not_authenticated");
        for header in &malformed {
            let response = app.get_with_authorization(&window(endpoint, ""), header).await;
            assert_error(&response, 401, "not_authenticated");
        }
    }
    // The same good header is accepted, so the refusals above are about the malformation.
    assert_eq!(app.get_with_authorization(&window("visits", ""), &good).await.status, 200);
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let app = app_with_data(backend).await;
    for endpoint in ENDPOINTS {
        let wrong_password = app.get(&window(endpoint, ""), Some(("analyst", "S3cret"))).await;
        let unknown_user = app.get(&window(endpoint, ""), Some(("nobody", "s3cret"))).await;
        let empty = app.get(&window(endpoint, ""), Some(("", ""))).await;
        for response in [&wrong_password, &unknown_user, &empty] {
            assert_error(response, 401, "authentication_failed");
            assert_eq!(
                without_error_id(response),
                json!({"detail": "Invalid username/password.", "code": "authentication_failed"})
            );
        }
        assert_ne!(wrong_password.body["error_id"], unknown_user.body["error_id"], "a fresh error_id per error");
    }
}

async fn basic_scheme_is_case_insensitive_and_the_password_is_everything_after_the_first_colon(backend: Backend) {
    let app = app_with_data(backend).await;
    app.add_user("colons", "pa:ss:wo rd", &[]);
    let header = basic("colons:pa:ss:wo rd");
    for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
        let response = app.get_with_authorization(&window("visits", ""), &header.replace("Basic", scheme)).await;
        assert_eq!(response.status, 200, "{scheme}: {}", response.body);
        assert_eq!(response.body["count"], 3);
    }
    // Only the whole remainder is the password.
    assert_error(&app.get(&window("visits", ""), Some(("colons", "pa"))).await, 401, "authentication_failed");
    assert_error(&app.get(&window("visits", ""), Some(("colons", "pa:ss"))).await, 401, "authentication_failed");
}

async fn a_wrong_password_fails_after_a_cached_success(backend: Backend) {
    let app = app_with_data(backend).await;
    for _ in 0..2 {
        assert_eq!(app.get(&window("visits", ""), Some(ANALYST)).await.status, 200);
        for wrong in ["s3cre", "s3cret ", "s3cretX", ""] {
            let response = app.get(&window("visits", ""), Some(("analyst", wrong))).await;
            assert_error(&response, 401, "authentication_failed");
        }
    }
    assert_eq!(app.get(&window("occupancy", ""), Some(ANALYST)).await.status, 200);
}

async fn unauthenticated_requests_are_refused_before_anything_else(backend: Backend) {
    // Without valid credentials nothing about stores, devices or parameters is revealed.
    let app = app_with_data(backend).await;
    for path in [
        window("visits", "store_code=missing"),
        window("visits", "device_id=missing"),
        window("occupancy", "page=99"),
        "/api/bi/acquisition-metrics/visits/?datetime_gte=nonsense".to_owned(),
    ] {
        assert_error(&app.get(&path, None).await, 401, "not_authenticated");
        assert_error(&app.get(&path, Some(("analyst", "wrong"))).await, 401, "authentication_failed");
    }
}

async fn unknown_store_is_store_code_not_found(backend: Backend) {
    let app = app_with_data(backend).await;
    for endpoint in ENDPOINTS {
        for code in ["missing", "11650", "116500x"] {
            let response =
                app.get(&window(endpoint, &format!("store_code={}", code.replace(' ', "+"))), Some(ANALYST)).await;
            assert_error(&response, 404, "store_code_not_found");
            assert_eq!(
                without_error_id(&response),
                json!({"detail": "Store with this store_code not found.", "code": "store_code_not_found"})
            );
        }
        let known = app.get(&window(endpoint, "store_code=116500"), Some(ANALYST)).await;
        assert_eq!(known.status, 200, "{}", known.body);
    }
}

async fn unknown_device_is_device_id_not_found(backend: Backend) {
    let app = app_with_data(backend).await;
    for extra in ["device_id=cnt-9", "device_id=cnt-9&store_code=116500"] {
        let response = app.get(&window("visits", extra), Some(ANALYST)).await;
        assert_error(&response, 404, "device_id_not_found");
    }
    let known = app.get(&window("visits", "device_id=cnt-1"), Some(ANALYST)).await;
    assert_eq!((known.status, known.body["count"].clone()), (200, json!(3)));
}

async fn bad_datetimes_are_400_naming_the_parameter(backend: Backend) {
    let app = app_with_data(backend).await;
    let good = "2023-10-26T12:00:00Z";
    let bad = ["yesterday", "2023-13-01T00:00:00Z", "2023-10-26T25:00:00Z", "", "2023-02-30T00:00:00Z"];
    for endpoint in ENDPOINTS {
        let path = format!("/api/bi/acquisition-metrics/{endpoint}/");
        for (name, other) in [("datetime_gte", "datetime_lte"), ("datetime_lte", "datetime_gte")] {
            let missing = app.get(&format!("{path}?{other}={good}"), Some(ANALYST)).await;
            assert_eq!(missing.status, 400, "{name} missing: {}", missing.body);
            missing.error_code();
            assert!(missing.body["detail"].as_str().unwrap().contains(name), "{}", missing.body);
            for value in bad {
                let query = format!("{path}?{other}={good}&{name}={}", crate::helpers::encode(value));
                let response = app.get(&query, Some(ANALYST)).await;
                assert_eq!(response.status, 400, "{query}: {}", response.body);
                response.error_code();
                let detail = response.body["detail"].as_str().unwrap();
                assert!(detail.contains(name) && !detail.contains(other), "{query}: {detail}");
            }
        }
        let inverted = metrics_path(endpoint, "2023-10-26T12:00:00.001Z", "2023-10-26T12:00:00Z", "");
        let response = app.get(&inverted, Some(ANALYST)).await;
        assert_eq!(response.status, 400, "{}", response.body);
        response.error_code();
        assert!(response.body["detail"].as_str().unwrap().contains("datetime_"), "{}", response.body);
    }
}

async fn bad_page_sizes_are_400_naming_page_size(backend: Backend) {
    let app = app_with_data(backend).await;
    for endpoint in ENDPOINTS {
        for value in ["0", "-1", "abc", "1.5", "2x"] {
            let response = app.get(&window(endpoint, &format!("page_size={value}")), Some(ANALYST)).await;
            assert_eq!(response.status, 400, "page_size={value}: {}", response.body);
            response.error_code();
            assert!(response.body["detail"].as_str().unwrap().contains("page_size"), "{}", response.body);
        }
        let response = app.get(&window(endpoint, "page_size=1"), Some(ANALYST)).await;
        assert_eq!((response.status, response.results().len()), (200, 1));
    }
}

async fn bad_pages_are_invalid_page(backend: Backend) {
    let app = app_with_data(backend).await;
    for endpoint in ENDPOINTS {
        // Three rows in pages of two: pages 1 and 2 exist.
        for page in ["1", "2"] {
            let response = app.get(&window(endpoint, &format!("page_size=2&page={page}")), Some(ANALYST)).await;
            assert_eq!(response.status, 200, "page {page}: {}", response.body);
        }
        for page in ["0", "-1", "abc", "3", "1.0", "99999999999999999999999"] {
            let response = app.get(&window(endpoint, &format!("page_size=2&page={page}")), Some(ANALYST)).await;
            assert_error(&response, 404, "invalid_page");
        }
        let empty_window = metrics_path(endpoint, "2023-10-27T00:00:00Z", "2023-10-28T00:00:00Z", "page=2");
        assert_error(&app.get(&empty_window, Some(ANALYST)).await, 404, "invalid_page");
    }
}

async fn page_one_of_an_empty_result_is_200(backend: Backend) {
    let app = app_with_data(backend).await;
    app.add_store("empty", "UTC");
    for endpoint in ENDPOINTS {
        for path in [
            metrics_path(endpoint, "2023-10-27T00:00:00Z", "2023-10-28T00:00:00Z", ""),
            metrics_path(endpoint, "2023-10-27T00:00:00Z", "2023-10-28T00:00:00Z", "page=1"),
            window(endpoint, "store_code=empty"),
            // A window too narrow to contain the start of any minute.
            metrics_path(endpoint, "2023-10-26T12:06:00.5Z", "2023-10-26T12:06:59Z", ""),
        ] {
            let response = app.get(&path, Some(ANALYST)).await;
            assert_eq!(response.status, 200, "{path}: {}", response.body);
            assert_eq!(response.body, json!({"count": 0, "next": null, "previous": null, "results": []}), "{path}");
        }
    }
}

async fn unknown_paths_answer_a_json_404(backend: Backend) {
    let app = app_with_data(backend).await;
    for path in [
        "/dashboard",
        "/nope",
        "/api/bi/acquisition-metrics/",
        "/api/bi/acquisition-metrics/visitors/",
        "/api/bi/acquisition-metrics/visits/extra",
        "/api/bi/acquisition-metrics/visits//",
        "/API/bi/acquisition-metrics/visits/",
    ] {
        for credentials in [Some(ANALYST), None] {
            let response = app.get(path, credentials).await;
            assert_eq!(response.status, 404, "{path}: {}", response.body);
            response.error_code();
            let content_type = response.headers.get("content-type").unwrap().to_str().unwrap();
            assert!(content_type.starts_with("application/json"), "{path}: {content_type}");
        }
    }
}

async fn endpoints_answer_with_and_without_the_trailing_slash(backend: Backend) {
    let app = app_with_data(backend).await;
    for endpoint in ENDPOINTS {
        let with_slash = app.get(&window(endpoint, ""), Some(ANALYST)).await;
        let without = app.get(&window(endpoint, "").replacen("/?", "?", 1), Some(ANALYST)).await;
        assert_eq!(with_slash.status, 200, "{}", with_slash.body);
        assert_eq!(without.status, 200, "{}", without.body);
        assert_eq!(with_slash.body["count"], 3);
        assert_eq!(with_slash.body["results"], without.body["results"]);
        // Errors are the same on both forms too.
        let missing = app.get(&window(endpoint, "store_code=x").replacen("/?", "?", 1), Some(ANALYST)).await;
        assert_error(&missing, 404, "store_code_not_found");
        assert_error(&app.get(&window(endpoint, "").replacen("/?", "?", 1), None).await, 401, "not_authenticated");
    }
}
