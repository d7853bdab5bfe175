//! Every JSON body the suite receives through `helpers::Response` is checked against the OpenAPI
//! document the server serves, so the served JSON and the documented schemas cannot drift apart.
//!
//! Objects in the document are closed (`additionalProperties: false` unless it says otherwise), so a
//! field served but not documented fails as surely as a documented field that is missing. Formats
//! (`date-time`) are asserted, and the headers a client relies on (validators, `Retry-After`,
//! `WWW-Authenticate`) must be documented on every response that carries them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;
use utoipa::OpenApi;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let mut document = serde_json::to_value(footfall::api::openapi::ApiDoc::openapi()).expect("the document is JSON");
    close_objects(&mut document["components"]);
    document
});

static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = LazyLock::new(Default::default);

/// The response headers whose presence the document must declare.
const DOCUMENTED_HEADERS: [&str; 4] = ["etag", "last-modified", "retry-after", "www-authenticate"];

/// Panics unless `body`, and the [`DOCUMENTED_HEADERS`] among `headers`, are what the document declares
/// for `method` on `path` answering `status`. Paths the document does not list (the dashboard, unknown
/// paths) are not checked.
pub fn check(method: &str, path: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &Value) {
    let Some((template, operation)) = operation(method, path) else { return };
    let responses = &operation["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("{method} {template}: status {status} is not in the OpenAPI document ({body})"));
    let documented: Vec<String> = response["headers"]
        .as_object()
        .map(|headers| headers.keys().map(|name| name.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    for name in DOCUMENTED_HEADERS.iter().filter(|name| headers.contains_key(**name)) {
        assert!(
            documented.iter().any(|d| d == name),
            "{method} {template} {status}: header {name} is sent but not documented"
        );
    }
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        assert!(body.is_null(), "{method} {template} {status}: the document declares no body, got {body}");
        return;
    };
    let key = format!("{method} {template} {status}");
    let validator = VALIDATORS
        .lock()
        .unwrap()
        .entry(key.clone())
        .or_insert_with(|| {
            // The response schema as the root, with the components its `$ref`s point into.
            let mut root = schema.clone();
            root["components"] = DOCUMENT["components"].clone();
            let validator = jsonschema::options().should_validate_formats(true).build(&root);
            Arc::new(validator.unwrap_or_else(|error| panic!("{key}: bad schema: {error}")))
        })
        .clone();
    let problems: Vec<String> =
        validator.iter_errors(body).map(|error| format!("{}: {error}", error.instance_path())).collect();
    assert!(problems.is_empty(), "{key}: the body does not match the OpenAPI document: {problems:?}\nbody: {body}");
}

/// The document's operation for a request path (with or without its trailing slash, as routed).
fn operation(method: &str, path: &str) -> Option<(&'static str, &'static Value)> {
    let paths = DOCUMENT["paths"].as_object()?;
    let method = method.to_ascii_lowercase();
    paths
        .iter()
        .find(|(template, _)| template.as_str() == path || template.trim_end_matches('/') == path)
        .and_then(|(template, item)| item.get(&method).map(|operation| (template.as_str(), operation)))
}

fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

#[test]
fn a_body_off_the_document_is_caught() {
    let page = serde_json::json!({"count": 0, "next": null, "previous": null, "results": []});
    let none = reqwest::header::HeaderMap::new();
    check("GET", "/api/bi/acquisition-metrics/visits/", 200, &none, &page);
    let mut extra = page.clone();
    extra["surprise"] = Value::Bool(true);
    let caught = std::panic::catch_unwind(|| check("GET", "/api/bi/acquisition-metrics/visits", 200, &none, &extra));
    assert!(caught.is_err(), "an undocumented field must fail the check");
    let row = serde_json::json!({"count": 1, "next": null, "previous": null,
        "results": [{"store_code": "1", "in_metric": 1, "out_metric": 0, "minute": "2023-10-26T15:06:00+03:00"}]});
    let caught = std::panic::catch_unwind(|| check("GET", "/api/bi/acquisition-metrics/visits/", 200, &none, &row));
    assert!(caught.is_err(), "a missing diff_metric must fail the check");
    let mut bad_minute = row.clone();
    bad_minute["results"][0]["diff_metric"] = 1.into();
    check("GET", "/api/bi/acquisition-metrics/visits/", 200, &none, &bad_minute);
    bad_minute["results"][0]["minute"] = "26/10/2023 15:06".into();
    let caught =
        std::panic::catch_unwind(|| check("GET", "/api/bi/acquisition-metrics/visits/", 200, &none, &bad_minute));
    assert!(caught.is_err(), "a minute that is no date-time must fail the check");
    let mut unknown_code = serde_json::json!({"detail": "x", "code": "no_such_code", "error_id": "0123456789abcdef"});
    let caught = std::panic::catch_unwind(|| check("GET", "/api/stores", 401, &none, &unknown_code));
    assert!(caught.is_err(), "a code outside the enum must fail the check");
    unknown_code["code"] = "not_authenticated".into();
    check("GET", "/api/stores", 401, &none, &unknown_code);
    let mut etag = reqwest::header::HeaderMap::new();
    etag.insert("etag", "\"x\"".parse().unwrap());
    let caught = std::panic::catch_unwind(|| {
        check("GET", "/api/stores", 200, &etag, &serde_json::json!({"count": 0, "results": []}))
    });
    assert!(caught.is_err(), "an undocumented ETag must fail the check");
}
