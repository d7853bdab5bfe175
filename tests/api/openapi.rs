//! The served OpenAPI document: every security scheme it names is defined, every operation is tagged,
//! every example matches its schema, the error `code` enum is every code the server emits, and the
//! answers it documents (status timestamps, 431, date-time inputs) are what the server gives.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, schema};
use footfall::api::error::ErrorCode;
use footfall::app::ServerConfig;

const OPERATIONS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json", None).await;
    assert_eq!(response.status, 200);
    response.body
}

/// `(method, path, operation)` of every operation in the document.
fn operations(document: &Value) -> Vec<(&'static str, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in OPERATIONS {
            if let Some(operation) = item.get(method) {
                found.push((method, path.clone(), operation.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn every_security_scheme_named_is_defined_and_every_operation_is_tagged() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = document(&app).await;
    let schemes = document["components"]["securitySchemes"].as_object().unwrap();
    let tags: Vec<&str> = document["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for (method, path, operation) in operations(&document) {
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "{method} {path} names the undefined scheme {name}");
            }
        }
        let operation_tags = operation["tags"].as_array().unwrap_or_else(|| panic!("{method} {path} has no tags"));
        assert!(!operation_tags.is_empty(), "{method} {path} has no tags");
        for tag in operation_tags {
            assert!(tags.contains(&tag.as_str().unwrap()), "{method} {path}: tag {tag} is not declared");
        }
    }
    for (name, scheme) in [("basic", "basic"), ("device_token", "bearer"), ("api_token", "bearer")] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], scheme, "{name}");
    }
    let names = |path: &str, method: &str| -> Vec<String> {
        let security = document["paths"][path][method]["security"].as_array().unwrap();
        security.iter().flat_map(|r| r.as_object().unwrap().keys().cloned()).collect()
    };
    for path in ["/api/bi/acquisition-metrics/visits/", "/api/bi/acquisition-metrics/occupancy/", "/api/stores"] {
        assert_eq!(names(path, "get"), ["basic", "api_token"], "{path}: Basic or an API token");
    }
    assert_eq!(names("/api/ingest/bins", "post"), ["device_token", "basic"]);
}

#[tokio::test]
async fn the_ingest_body_and_the_limits_are_documented() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = document(&app).await;
    let content = &document["paths"]["/api/ingest/bins"]["post"]["requestBody"]["content"];
    assert_eq!(content["application/json"]["schema"]["$ref"], "#/components/schemas/IngestBody");
    let forms = document["components"]["schemas"]["IngestBody"]["oneOf"].as_array().unwrap();
    assert_eq!(forms.len(), 2, "an array of bins, or one bin: {forms:?}");
    assert!(content["application/x-ndjson"].is_object(), "NDJSON is documented: {content}");
    assert_eq!(document["components"]["schemas"]["IngestBin"]["properties"]["minute"]["format"], "date-time");
    assert_eq!(document["components"]["schemas"]["NewCorrection"]["properties"]["minute"]["format"], "date-time");
    for (method, path, operation) in operations(&document) {
        let responses = &operation["responses"];
        for status in ["408", "414", "431", "503"] {
            assert!(responses.get(status).is_some(), "{method} {path} lacks {status}");
        }
        if operation.get("security").is_some() {
            assert!(responses["429"]["headers"].get("Retry-After").is_some(), "{method} {path}: 429 with Retry-After");
        }
    }
    let ingest = &document["paths"]["/api/ingest/bins"]["post"]["responses"];
    assert!(ingest.get("413").is_some());
    let visits = &document["paths"]["/api/bi/acquisition-metrics/visits/"]["get"]["responses"];
    for status in ["200", "304"] {
        for header in ["ETag", "Last-Modified"] {
            assert!(visits[status]["headers"].get(header).is_some(), "visits {status} documents {header}");
        }
    }
}

#[tokio::test]
async fn every_example_matches_its_schema() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = document(&app).await;
    let mut checked = 0;
    for (method, path, operation) in operations(&document) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            let Some(example) = response.pointer("/content/application~1json/example") else { continue };
            let Ok(status) = status.parse::<u16>() else { continue };
            schema::check(&method.to_ascii_uppercase(), &path, status, &Default::default(), example);
            checked += 1;
        }
    }
    assert!(checked >= 6, "the visits, occupancy, 400, 401 and 404 examples: {checked}");
    let visits = &document["paths"]["/api/bi/acquisition-metrics/visits/"]["get"]["responses"]["200"];
    assert_eq!(visits["content"]["application/json"]["example"]["results"][1]["diff_metric"], -1, "the seed's example");
}

#[tokio::test]
async fn the_error_code_enum_is_every_code_the_server_emits() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = document(&app).await;
    let code = &document["components"]["schemas"]["ErrorBody"]["properties"]["code"];
    let name = code["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    let documented: Vec<&str> = document["components"]["schemas"][name]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let emitted: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(documented, emitted);
    for code in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).unwrap(), code.as_str(), "the body says what as_str says");
    }
    // Every error answer of the suite is checked against this enum (`schema::check`); a few here.
    assert_eq!(app.get("/no/such/path", None).await.error_code(), "not_found");
    assert_eq!(app.get("/api/stores", None).await.error_code(), "not_authenticated");
}

/// `YYYY-MM-DDTHH:MM:SSZ`: RFC 3339, UTC, whole seconds.
fn assert_utc_seconds(field: &str, value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("{field}: {value}"));
    assert!(text.len() == 20 && text.ends_with('Z'), "{field}: {text}");
    assert!(text.parse::<jiff::Timestamp>().is_ok(), "{field}: {text}");
}

async fn status_timestamps_are_in_one_format(backend: Backend) {
    let config = ServerConfig { publish_interval: std::time::Duration::from_secs(15 * 60), ..Default::default() };
    let app = TestApp::spawn_with(backend, config).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let before = app.get("/api/status", Some(ANALYST)).await;
    assert_eq!(before.status, 200);
    assert!(before.body["last_publication"].is_null(), "{}", before.body);
    assert_utc_seconds("next_publication", &before.body["next_publication"]);
    app.ingest(&[("cnt-1", "2023-10-26T12:06:00Z", 3, 0)]);
    app.publish(); // stored to the millisecond: written to the second
    let after = app.get("/api/status", Some(ANALYST)).await;
    assert_utc_seconds("last_publication", &after.body["last_publication"]);
    assert_utc_seconds("next_publication", &after.body["next_publication"]);
    assert!(after.body["next_publication"].as_str().unwrap().ends_with(":00Z"), "a slot: {}", after.body);
}

async fn schema_valid_correction_minutes_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.cli_ok(&["user", "add", "loader", "--password-stdin", "--all-stores", "--can-ingest"], Some("pw"));
    // A date-time with an offset and a fraction, as a schema-driven client may send it.
    let body = json!({"store_code": "116500", "minute": "2023-10-26T15:30:20.5+03:00", "value": 4});
    let request = app.client.post(app.url("/api/occupancy/corrections")).basic_auth("loader", Some("pw")).json(&body);
    let created = crate::helpers::Response::read("POST", request.send().await.unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["minute"], "2023-10-26T12:30:00Z");
    assert_utc_seconds("created_at", &created.body["created_at"]);
}

backend_tests!(status_timestamps_are_in_one_format, schema_valid_correction_minutes_are_accepted);

#[tokio::test]
async fn headers_over_the_limit_get_the_documented_431() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let request = app.client.get(app.url("/api/stores")).header("x-padding", "a".repeat(20 * 1024));
    let response = crate::helpers::Response::read("GET", request.send().await.unwrap()).await;
    assert_eq!(response.status, 431);
    assert!(response.body.is_null(), "hyper's answer has no body, as documented");
}
