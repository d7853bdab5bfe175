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
    for path in [
        "/api/bi/acquisition-metrics/visits/",
        "/api/bi/acquisition-metrics/occupancy/",
        "/api/bi/acquisition-metrics/summary/",
        "/api/bi/acquisition-metrics/occupancy/live/",
        "/api/stores",
        "/api/devices/health",
    ] {
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
            let Ok(status) = status.parse::<u16>() else { continue };
            let Some(json) = response.pointer("/content/application~1json") else { continue };
            // One `example`, or named `examples` (occupancy by granularity, summary with and without compare).
            let named = json["examples"].as_object().into_iter().flat_map(|examples| examples.values());
            for example in json.get("example").into_iter().chain(named.map(|example| &example["value"])) {
                schema::check(&method.to_ascii_uppercase(), &path, status, &Default::default(), example);
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "the visits, occupancy, summary, live, 400, 401 and 404 examples: {checked}");
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

backend_tests!(
    status_timestamps_are_in_one_format,
    schema_valid_correction_minutes_are_accepted,
    report_answers_match_the_document,
    device_health_answers_match_the_document
);

#[tokio::test]
async fn headers_over_the_limit_get_the_documented_431() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let request = app.client.get(app.url("/api/stores")).header("x-padding", "a".repeat(20 * 1024));
    let response = crate::helpers::Response::read("GET", request.send().await.unwrap()).await;
    assert_eq!(response.status, 431);
    assert!(response.body.is_null(), "hyper's answer has no body, as documented");
}

const METRICS: &str = "/api/bi/acquisition-metrics";

/// The names of a schema's required properties.
fn required(schema: &Value) -> Vec<&str> {
    schema["required"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect()
}

/// Whether a property's `type` admits null.
fn nullable(property: &Value) -> bool {
    property["type"].as_array().is_some_and(|types| types.contains(&json!("null")))
}

#[tokio::test]
async fn the_reports_granularity_and_csv_are_documented() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = document(&app).await;
    let schemas = &document["components"]["schemas"];
    let choices = |name: &str| schemas[name]["enum"].clone();
    assert_eq!(choices("Granularity"), json!(["minute", "15m", "hour", "day", "week", "month"]));
    assert_eq!(choices("Format"), json!(["json", "csv"]));
    assert_eq!(choices("Compare"), json!(["previous_period", "previous_year"]));

    let bounds = ["store_code", "datetime_gte", "datetime_lte"];
    let cases: [(&str, Vec<&str>, &str, &str); 4] = [
        (
            "visits/",
            [&bounds[..], &["device_id", "granularity", "format", "page_size", "page"]].concat(),
            "VisitsPage",
            "VisitRow",
        ),
        (
            "occupancy/",
            [&bounds[..], &["granularity", "format", "page_size", "page"]].concat(),
            "OccupancyPage",
            "OccupancyRow",
        ),
        ("summary/", [&bounds[..], &["compare", "format", "page_size", "page"]].concat(), "SummaryPage", "SummaryRow"),
        ("occupancy/live/", vec!["store_code", "format", "page_size", "page"], "LiveOccupancyPage", "LiveOccupancyRow"),
    ];
    for (endpoint, parameters, page, row) in cases {
        let path = format!("{METRICS}/{endpoint}");
        let operation = &document["paths"][&path]["get"];
        assert!(operation.is_object(), "{path} is documented");
        let documented = operation["parameters"].as_array().unwrap();
        let names: Vec<&str> = documented.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, parameters, "{path}");
        let bounded = documented.iter().filter(|p| p["name"].as_str().unwrap().starts_with("datetime_"));
        assert!(bounded.clone().all(|p| p["required"] == true), "{path}: the bounds are required");
        assert_eq!(bounded.count(), if endpoint.ends_with("live/") { 0 } else { 2 }, "{path}");
        for parameter in documented {
            let name = parameter["name"].as_str().unwrap();
            let Some(component) = [("granularity", "Granularity"), ("format", "Format"), ("compare", "Compare")]
                .into_iter()
                .find_map(|(parameter, component)| (parameter == name).then_some(component))
            else {
                continue;
            };
            // The enum, or empty (the default, as every filter takes an empty value).
            let any_of = &parameter["schema"]["anyOf"];
            assert_eq!(any_of[0]["$ref"], format!("#/components/schemas/{component}"), "{path} {name}");
            assert_eq!(any_of[1]["enum"], json!([""]), "{path} {name}");
            assert_eq!(parameter["required"], false, "{path} {name}");
        }
        let page_size = documented.iter().find(|p| p["name"] == "page_size").unwrap();
        assert!(page_size["schema"].get("format").is_none(), "{path}: any page_size is taken, no int64 bound");

        let responses = &operation["responses"];
        let ok = &responses["200"];
        assert_eq!(ok["content"]["application/json"]["schema"]["$ref"], format!("#/components/schemas/{page}"));
        assert_eq!(schemas[page]["properties"]["results"]["items"]["$ref"], format!("#/components/schemas/{row}"));
        let csv = &ok["content"]["text/csv"];
        assert_eq!(csv["schema"]["type"], "string", "{path}: CSV is documented as text/csv");
        let example = csv["example"].as_str().unwrap_or_else(|| panic!("{path}: a CSV example"));
        // The header row is the JSON row's keys; every documented key is a column.
        let header: Vec<&str> = example.lines().next().unwrap().trim_end_matches('\r').split(',').collect();
        let mut keys: Vec<&str> = schemas[row]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut columns = header.clone();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(columns, keys, "{path}: the CSV example's header");
        assert!(
            example
                .split("\r\n")
                .skip(1)
                .filter(|line| !line.is_empty())
                .all(|line| { line.split(',').count() == header.len() })
        );
        let disposition = ok["headers"]["Content-Disposition"]["description"].as_str().unwrap();
        assert!(disposition.contains("attachment; filename="), "{path}: {disposition}");
        for status in ["400", "404"] {
            let error = &responses[status]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(error, "#/components/schemas/ErrorBody", "{path} {status}");
        }
    }
    let live = &document["paths"][format!("{METRICS}/occupancy/live/")]["get"]["responses"]["200"];
    assert!(live["headers"].get("Cache-Control").is_some(), "live answers are no-store");

    // A bucket row also carries its peak: optional, never null.
    let occupancy = &schemas["OccupancyRow"];
    assert_eq!(required(occupancy), ["store_code", "occupancy_metric", "minute"]);
    assert_eq!(occupancy["properties"]["max_occupancy_metric"]["type"], "integer");
    // The summary's figures of a store without counts are null; the comparison's are there with compare.
    let summary = &schemas["SummaryRow"];
    let always = [
        "store_code",
        "in_metric",
        "out_metric",
        "peak_occupancy_metric",
        "peak_occupancy_minute",
        "busiest_hour",
        "busiest_hour_in_metric",
    ];
    assert_eq!(required(summary), always);
    for (name, property) in summary["properties"].as_object().unwrap() {
        let expected = !["store_code", "in_metric", "out_metric", "peak_occupancy_metric"].contains(&name.as_str());
        assert_eq!(nullable(property), expected, "SummaryRow.{name}");
    }
    for name in ["compare_in_metric", "compare_out_metric", "compare_peak_occupancy_metric", "in_change_percent"] {
        assert!(summary["properties"].get(name).is_some(), "SummaryRow.{name}");
    }
    assert_eq!(summary["properties"]["in_change_percent"]["type"], json!(["number", "null"]));
    let live = &schemas["LiveOccupancyRow"];
    assert_eq!(required(live), ["store_code", "occupancy_metric", "minute", "published_until"]);
    assert!(nullable(&live["properties"]["minute"]) && nullable(&live["properties"]["published_until"]));
    assert!(!nullable(&live["properties"]["occupancy_metric"]));
}

/// The answers of the reports, with buckets, nulls and comparisons, match the document (the JSON ones
/// through `schema::check` in `Response::read`), as do their errors; CSV comes as a documented type.
async fn report_answers_match_the_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("116500", "Europe/Athens");
    app.add_store("220310", "America/New_York"); // no counts: the nulls
    app.add_device("cnt-1", "116500");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.ingest(&[
        ("cnt-1", "2023-10-26T12:06:00Z", 3, 0),
        ("cnt-1", "2023-10-26T12:08:00Z", 0, 1),
        ("cnt-1", "2023-10-27T09:00:00Z", 5, 2),
    ]);
    app.publish();
    let bounds = "datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-28T00:00:00Z";
    let ok = |path: String| {
        let app = &app;
        async move {
            let response = app.get(&path, Some(ANALYST)).await;
            assert_eq!(response.status, 200, "{path}: {}", response.body);
            response
        }
    };
    for granularity in ["minute", "15m", "hour", "day", "week", "month", ""] {
        for endpoint in ["visits", "occupancy"] {
            let page = ok(format!("{METRICS}/{endpoint}/?{bounds}&granularity={granularity}&format=json")).await;
            assert!(!page.results().is_empty(), "{endpoint} {granularity}");
            let bucketed = !matches!(granularity, "minute" | "");
            let peak = page.results()[0].get("max_occupancy_metric").is_some();
            assert_eq!(peak, bucketed && endpoint == "occupancy", "{endpoint} {granularity}");
        }
    }
    for compare in ["", "&compare=previous_period", "&compare=previous_year"] {
        let page = ok(format!("{METRICS}/summary/?{bounds}{compare}")).await;
        let empty = &page.results()[1];
        assert!(empty["peak_occupancy_minute"].is_null() && empty["busiest_hour"].is_null(), "{empty}");
        assert_eq!(empty.get("compare_in_metric").is_some(), !compare.is_empty(), "{empty}");
    }
    let live = ok(format!("{METRICS}/occupancy/live/?page_size=1&page=2")).await;
    assert!(live.results()[0]["minute"].is_null(), "{}", live.body);
    for (path, code) in [
        (format!("{METRICS}/visits/?{bounds}&granularity=2h"), "invalid_granularity"),
        (format!("{METRICS}/occupancy/?{bounds}&format=xml"), "invalid_format"),
        (format!("{METRICS}/summary/?{bounds}&compare=last_week"), "invalid_compare"),
        (format!("{METRICS}/summary/?{bounds}&format=pdf"), "invalid_format"),
        (format!("{METRICS}/occupancy/live/?format=tsv"), "invalid_format"),
        (format!("{METRICS}/summary/?datetime_gte=2023-10-26T00:00:00Z"), "required"),
    ] {
        let response = app.get(&path, Some(ANALYST)).await;
        assert_eq!((response.status, response.error_code()), (400, code), "{path}");
    }

    let document = document(&app).await;
    for (endpoint, query) in [
        ("visits/", format!("{bounds}&granularity=day&format=csv")),
        ("occupancy/", format!("{bounds}&granularity=hour&format=csv")),
        ("summary/", format!("{bounds}&compare=previous_period&format=csv")),
        ("occupancy/live/", "format=csv".to_owned()),
        ("visits/", bounds.to_owned()), // by Accept
    ] {
        let request = app.client.get(app.url(&format!("{METRICS}/{endpoint}?{query}")));
        let response =
            request.basic_auth(ANALYST.0, Some(ANALYST.1)).header("accept", "text/csv").send().await.unwrap();
        assert_eq!(response.status(), 200, "{endpoint}?{query}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let media_type = content_type.split(';').next().unwrap();
        let documented = &document["paths"][format!("{METRICS}/{endpoint}")]["get"]["responses"]["200"];
        assert!(documented["content"].get(media_type).is_some(), "{endpoint}: {content_type} is documented");
        assert!(response.headers().contains_key("content-disposition"));
        assert!(documented["headers"].get("Content-Disposition").is_some(), "{endpoint}");
        let body = response.text().await.unwrap();
        assert!(body.starts_with("store_code,"), "{endpoint}: {body}");
    }
}

#[tokio::test]
async fn the_device_health_endpoint_and_the_stores_hours_are_documented() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = document(&app).await;
    let schemas = &document["components"]["schemas"];
    let operation = &document["paths"]["/api/devices/health"]["get"];
    assert!(operation.is_object(), "GET /api/devices/health is documented");
    assert_eq!(operation["tags"], json!(["devices"]));
    let documented = operation["parameters"].as_array().unwrap();
    let names: Vec<&str> = documented.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["store_code", "days", "silence_minutes", "imbalance_percent", "page_size", "page"]);
    assert!(documented.iter().all(|p| p["in"] == "query" && p["required"] == false), "all optional: {documented:?}");
    for (name, maximum, default) in [("days", 31, 7), ("silence_minutes", 10080, 30), ("imbalance_percent", 100, 10)] {
        let schema = &documented.iter().find(|p| p["name"] == name).unwrap()["schema"];
        assert_eq!(schema["type"], "integer", "{name}");
        assert_eq!((schema["minimum"].clone(), schema["maximum"].clone()), (json!(1), json!(maximum)), "{name}");
        assert_eq!(schema["default"], default, "{name}");
    }
    let page_size = documented.iter().find(|p| p["name"] == "page_size").unwrap();
    assert!(page_size["schema"].get("format").is_none(), "any page_size is taken, no int64 bound");

    let responses = &operation["responses"];
    let ok = &responses["200"]["content"]["application/json"];
    assert_eq!(ok["schema"]["$ref"], "#/components/schemas/DeviceHealthPage");
    assert!(ok["example"]["results"][0]["devices"][1]["silent"] == true, "the example shows a silent device");
    for status in ["400", "401", "404"] {
        let error = &responses[status]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(error, "#/components/schemas/ErrorBody", "{status}");
    }
    assert_eq!(responses["400"]["content"]["application/json"]["example"]["code"], "invalid_parameter");
    for code in ["invalid_parameter", "invalid_page_size"] {
        assert!(responses["400"]["description"].as_str().unwrap().contains(code), "400 names {code}");
    }
    for code in ["store_code_not_found", "invalid_page"] {
        assert!(responses["404"]["description"].as_str().unwrap().contains(code), "404 names {code}");
    }

    let page = &schemas["DeviceHealthPage"];
    assert_eq!(page["properties"]["results"]["items"]["$ref"], "#/components/schemas/StoreHealthRow");
    let store = &schemas["StoreHealthRow"];
    assert_eq!(
        required(store),
        ["store_code", "opening_hours", "hours_learned", "open_now", "silent_devices", "days", "devices"]
    );
    assert_eq!(store["properties"]["days"]["items"]["$ref"], "#/components/schemas/DayHealth");
    assert_eq!(store["properties"]["devices"]["items"]["$ref"], "#/components/schemas/DeviceHealthRow");
    for (name, property) in store["properties"].as_object().unwrap() {
        assert_eq!(nullable(property), name == "opening_hours", "StoreHealthRow.{name}");
    }
    for flag in ["hours_learned", "open_now"] {
        assert_eq!(store["properties"][flag]["type"], "boolean", "{flag}");
        let description = store["properties"][flag]["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "StoreHealthRow.{flag} is explained");
    }
    let hours_learned = store["properties"]["hours_learned"]["description"].as_str().unwrap();
    assert!(hours_learned.contains("3 of the last 4"), "{hours_learned}");

    let device = &schemas["DeviceHealthRow"];
    assert_eq!(required(device), ["device_id", "last_bin", "silent", "open_minutes_without_data", "days"]);
    assert_eq!(device["properties"]["last_bin"]["type"], json!(["string", "null"]));
    assert_eq!(device["properties"]["last_bin"]["format"], "date-time");
    assert_eq!(device["properties"]["days"]["items"]["$ref"], "#/components/schemas/DayHealth");
    let silent = device["properties"]["silent"]["description"].as_str().unwrap();
    assert!(silent.contains("silence_minutes") && silent.contains("open"), "{silent}");

    let day = &schemas["DayHealth"];
    let fields = [
        "date",
        "open_minutes",
        "minutes_with_data",
        "completeness",
        "in_metric",
        "out_metric",
        "balance",
        "imbalanced",
    ];
    assert_eq!(required(day), fields);
    assert_eq!(day["properties"]["date"]["format"], "date");
    for (name, property) in day["properties"].as_object().unwrap() {
        assert_eq!(nullable(property), ["completeness", "balance"].contains(&name.as_str()), "DayHealth.{name}");
        assert!(property["description"].as_str().is_some_and(|d| !d.is_empty()), "DayHealth.{name} is explained");
    }
    for share in ["completeness", "balance"] {
        assert_eq!(day["properties"][share]["type"], json!(["number", "null"]), "{share}");
    }
    let imbalanced = day["properties"]["imbalanced"]["description"].as_str().unwrap();
    assert!(imbalanced.contains("imbalance_percent") && imbalanced.contains("100"), "{imbalanced}");

    // /api/stores: a store's opening hours and capacity, always there, null when unset.
    let stores = &document["paths"]["/api/stores"]["get"]["responses"]["200"]["content"]["application/json"];
    assert_eq!(stores["schema"]["$ref"], "#/components/schemas/StoreList");
    assert_eq!(schemas["StoreList"]["properties"]["results"]["items"]["$ref"], "#/components/schemas/StoreView");
    let view = &schemas["StoreView"];
    for name in ["opening_hours", "capacity"] {
        assert!(required(view).contains(&name), "StoreView.{name} is always sent");
        assert!(nullable(&view["properties"][name]), "StoreView.{name} is null when unset");
    }
    assert_eq!(view["properties"]["capacity"]["type"], json!(["integer", "null"]));
}

/// The device health answers, with set and learned hours, nulls, pages and errors, match the document
/// (through `schema::check` in `Response::read`).
async fn device_health_answers_match_the_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.cli_ok(
        &["store", "add", "116500", "--timezone", "Europe/Athens", "--hours", "24/7", "--capacity", "120"],
        None,
    );
    app.add_store("220310", "America/New_York"); // learned hours, no counts: the nulls
    app.add_store("330001", "UTC"); // no devices: no days
    app.add_device("cnt-1", "116500");
    app.add_device("cnt-2", "116500");
    app.add_device("nyc-1", "220310");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    let now = jiff::Timestamp::now();
    let minute = |ago: i64| {
        let at = jiff::Timestamp::from_second((now.as_second() / 60 - ago) * 60).unwrap();
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    let bins: Vec<(String, String, u32, u32)> = (0..5)
        .map(|ago| ("cnt-1".to_owned(), minute(ago), 40, 10))
        .chain([("cnt-2".to_owned(), minute(90), 1, 1)])
        .collect();
    app.ingest_owned(&bins);

    let path = "/api/devices/health";
    let health = app.get(&format!("{path}?days=2&silence_minutes=60&imbalance_percent=25"), Some(ANALYST)).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["count"], 3);
    let results = health.results();
    assert_eq!(results[0]["opening_hours"], "24/7");
    assert_eq!((results[1]["opening_hours"].clone(), results[1]["hours_learned"].clone()), (Value::Null, json!(true)));
    assert!(results[1]["devices"][0]["last_bin"].is_null(), "{}", results[1]);
    assert_eq!(results[2]["days"], json!([]), "a store without devices has no days");
    let stores = app.get("/api/stores", Some(ANALYST)).await;
    assert_eq!(
        (stores.results()[0]["capacity"].clone(), stores.results()[1]["capacity"].clone()),
        (json!(120), Value::Null)
    );

    for query in ["", "?store_code=116500&days=31", "?days=&silence_minutes=", "?page_size=1&page=3"] {
        let response = app.get(&format!("{path}{query}"), Some(ANALYST)).await;
        assert_eq!(response.status, 200, "{query}: {}", response.body);
    }
    for (query, status, code) in [
        ("?days=0", 400, "invalid_parameter"),
        ("?days=32", 400, "invalid_parameter"),
        ("?silence_minutes=10081", 400, "invalid_parameter"),
        ("?imbalance_percent=101", 400, "invalid_parameter"),
        ("?imbalance_percent=ten", 400, "invalid_parameter"),
        ("?page_size=0", 400, "invalid_page_size"),
        ("?page=9", 404, "invalid_page"),
        ("?store_code=nope", 404, "store_code_not_found"),
    ] {
        let response = app.get(&format!("{path}{query}"), Some(ANALYST)).await;
        assert_eq!((response.status, response.error_code()), (status, code), "{query}: {}", response.body);
    }
    let anonymous = app.get(path, None).await;
    assert_eq!((anonymous.status, anonymous.error_code()), (401, "not_authenticated"));
}
