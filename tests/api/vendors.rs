//! Sensors pushing in their own formats (`POST /api/ingest/{vendor}`): per vendor, push, publish and read
//! exactly the expected minutes; re-sends; wrong tokens, wrong serials and malformed bodies storing
//! nothing. The bodies are the sample payloads of shared/notes/vendor-formats.md (assets/sensors, also the OpenAPI examples).

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, Response, TestApp, metrics_path};

backend_tests!(
    vendor_xovis_v5_pushes_become_the_expected_minutes,
    vendor_xovis_resends_replace_and_sub_minute_intervals_add,
    vendor_xovis_refuses_wrong_tokens_serials_and_malformed_bodies,
    vendor_sensors_authenticate_as_they_can,
    vendor_xovis_v4_and_a_dst_day,
    vendor_axis_intervals_are_not_spread,
    vendor_milesight_lines_and_resends,
    vendor_hikvision_xml_json_and_multipart,
    vendor_irisys_registers_reset_and_late_readings,
    vendor_a_removed_sensors_serial_can_be_registered_again,
    vendor_concurrent_pushes_each_land_exactly_once,
);

pub const XOVIS_A: &str = include_str!("../../assets/sensors/xovis-v5-a.json");
pub const XOVIS_B: &str = include_str!("../../assets/sensors/xovis-v5-b.json");
pub const XOVIS_C: &str = include_str!("../../assets/sensors/xovis-v5-c.json");
pub const XOVIS_V4: &str = include_str!("../../assets/sensors/xovis-v4.json");
pub const AXIS: &str = include_str!("../../assets/sensors/axis.json");
pub const AXIS_DEVICE: &str = include_str!("../../assets/sensors/axis-device.json");
pub const IRISYS: &str = include_str!("../../assets/sensors/irisys.json");
pub const MILESIGHT: &str = include_str!("../../assets/sensors/milesight.json");
pub const HIKVISION_RANGE: &str = include_str!("../../assets/sensors/hikvision-timerange.xml");
pub const HIKVISION_REALTIME: &str = include_str!("../../assets/sensors/hikvision-realtime.xml");

/// How a push authenticates.
pub enum Auth<'a> {
    Bearer(&'a str),
    BasicPassword(&'a str),
    Bare(&'a str),
    Authentication(&'a str),
    Query(&'a str),
    User(&'a str, &'a str),
    None,
}

/// Adds a store `s1` in `zone` and the user `analyst` who reads everything.
pub async fn app_with_store(backend: Backend, zone: &str) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.add_store("s1", zone);
    app.add_user("analyst", "pw", &[]);
    app
}

/// `footfall device add ID --store STORE ARGS...`; returns the token.
pub fn add_sensor(app: &TestApp, id: &str, store: &str, args: &[&str]) -> String {
    let mut all = vec!["device", "add", id, "--store", store];
    all.extend_from_slice(args);
    app.cli_ok(&all, None).lines().last().unwrap().to_owned()
}

pub async fn push_as(app: &TestApp, vendor: &str, auth: Auth<'_>, body: &str, content_type: &str) -> Response {
    let mut url = app.url(&format!("/api/ingest/{vendor}"));
    let mut request = app.client.post(&url).header("content-type", content_type);
    match auth {
        Auth::Bearer(token) => request = request.bearer_auth(token),
        Auth::BasicPassword(token) => request = request.basic_auth("sensor", Some(token)),
        Auth::Bare(token) => request = request.header("Authorization", token),
        Auth::Authentication(token) => request = request.header("Authentication", token),
        Auth::Query(token) => {
            url = format!("{url}?token={token}");
            request = app.client.post(&url).header("content-type", content_type);
        }
        Auth::User(user, password) => request = request.basic_auth(user, Some(password)),
        Auth::None => {}
    }
    Response::read("POST", request.body(body.to_owned()).send().await.unwrap()).await
}

pub async fn push(app: &TestApp, vendor: &str, token: &str, body: &str) -> Response {
    push_as(app, vendor, Auth::Bearer(token), body, "application/json").await
}

/// The store's visit rows (local minute, in, out) between two instants.
pub async fn visits(app: &TestApp, gte: &str, lte: &str) -> Vec<(String, i64, i64)> {
    let response = app.get(&metrics_path("visits", gte, lte, ""), Some(("analyst", "pw"))).await;
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

pub fn rows(expected: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
    expected.iter().map(|(m, i, o)| ((*m).to_owned(), *i, *o)).collect()
}

fn xovis_record(logic: i64, from_ms: i64, to_ms: i64, fw: i64, bw: i64) -> Value {
    json!({"from": from_ms, "to": to_ms, "samples": 1, "samples_expected": 1,
           "counts": [{"id": 8, "name": "fw", "value": fw}, {"id": 9, "name": "bw", "value": bw}],
           "logic": logic})
}

fn xovis_package(serial: &str, id: i64, logics: Vec<(i64, Vec<Value>)>) -> String {
    let logics: Vec<Value> = logics
        .into_iter()
        .map(|(logic, records)| {
            json!({"id": logic, "name": "Line", "info": "XLT_LINE_IN_OUT_COUNT",
                                        "geometries": [], "records": records})
        })
        .collect();
    json!({"logics_data": {"package_info": {"version": "5.0", "id": id, "agent_id": 1003},
                           "sensor_info": {"serial_number": serial, "type": "SINGLE_SENSOR"},
                           "logics": logics}})
    .to_string()
}

const DAY_2023: (&str, &str) = ("2023-05-17T00:00:00Z", "2023-05-17T23:59:00Z");

async fn vendor_xovis_v5_pushes_become_the_expected_minutes(backend: Backend) {
    let app = app_with_store(backend, "Europe/Zurich").await;
    let token = add_sensor(&app, "pc2s-1", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:D3:27:CA"]);
    let response = push(&app, "xovis", &token, XOVIS_A).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, json!({"observations": 1, "bins": 1}));
    assert_eq!(visits(&app, DAY_2023.0, DAY_2023.1).await, rows(&[("2023-05-17T14:09:00+02:00", 1, 0)]));

    // Sample B has no sensor_info: the token names the sensor. The zone logic's balance is not a count.
    let token_b = add_sensor(&app, "pc2s-2", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:00:00:02"]);
    let response = push(&app, "xovis", &token_b, XOVIS_B).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, json!({"observations": 4, "bins": 4}));
    assert_eq!(
        visits(&app, "2022-02-25T00:00:00Z", "2022-02-25T23:59:00Z").await,
        rows(&[("2022-02-25T13:41:00+01:00", 1, 0), ("2022-02-25T13:42:00+01:00", 3, 1)])
    );

    // Sample C, with --reverse: bw is in.
    let token_c =
        add_sensor(&app, "pc2s-3", "s1", &["--vendor", "xovis", "--serial", "80:1f:12:d5:30:dc", "--reverse"]);
    assert_eq!(push(&app, "xovis", &token_c, XOVIS_C).await.status, 200);
    assert_eq!(
        visits(&app, "2026-07-08T00:00:00Z", "2026-07-08T23:59:00Z").await,
        rows(&[("2026-07-08T09:54:00+02:00", 1, 0)])
    );
    let listing = app.cli_ok(&["device", "list"], None);
    let line = listing.lines().find(|line| line.starts_with("pc2s-1 ")).unwrap();
    assert!(line.contains("xovis") && line.contains("80:1F:12:D3:27:CA"), "{listing}");
}

async fn vendor_xovis_resends_replace_and_sub_minute_intervals_add(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    let serial = "80:1F:12:00:00:10";
    let token = add_sensor(&app, "x-1", "s1", &["--vendor", "xovis", "--serial", serial, "--line", "1"]);
    let t = 1_684_325_340_000; // 2023-05-17T12:09:00Z
    // 5-second bins: three in the 12:09 minute, one in 12:10; logic 2 is not a selected line.
    let package = xovis_package(
        serial,
        1,
        vec![
            (
                1,
                vec![
                    xovis_record(1, t, t + 5_000, 1, 0),
                    xovis_record(1, t + 5_000, t + 10_000, 2, 1),
                    xovis_record(1, t + 55_000, t + 60_000, 1, 0),
                    xovis_record(1, t + 60_000, t + 65_000, 0, 2),
                ],
            ),
            (2, vec![xovis_record(2, t, t + 5_000, 50, 50)]),
        ],
    );
    assert_eq!(push(&app, "xovis", &token, &package).await.status, 200);
    let expected = rows(&[("2023-05-17T12:09:00+00:00", 4, 1), ("2023-05-17T12:10:00+00:00", 0, 2)]);
    assert_eq!(visits(&app, DAY_2023.0, DAY_2023.1).await, expected);
    // The same package again (a retry): nothing changes.
    assert_eq!(push(&app, "xovis", &token, &package).await.status, 200);
    assert_eq!(visits(&app, DAY_2023.0, DAY_2023.1).await, expected);
    // A later package re-sends one bin with a new value and adds another: the bin is replaced.
    let later = xovis_package(
        serial,
        4,
        vec![(1, vec![xovis_record(1, t + 5_000, t + 10_000, 5, 1), xovis_record(1, t + 120_000, t + 125_000, 1, 1)])],
    );
    assert_eq!(push(&app, "xovis", &token, &later).await.status, 200);
    assert_eq!(
        visits(&app, DAY_2023.0, DAY_2023.1).await,
        rows(&[
            ("2023-05-17T12:09:00+00:00", 7, 1),
            ("2023-05-17T12:10:00+00:00", 0, 2),
            ("2023-05-17T12:11:00+00:00", 1, 1)
        ])
    );
    // Packages 2 and 3 were skipped: device list shows the gap.
    let listing = app.cli_ok(&["device", "list"], None);
    let line = listing.lines().find(|line| line.starts_with("x-1 ")).unwrap();
    assert!(line.trim_end().ends_with(" 2"), "{listing}");
}

async fn vendor_xovis_refuses_wrong_tokens_serials_and_malformed_bodies(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    let token = add_sensor(&app, "pc-a", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:D3:27:CA"]);
    let other = add_sensor(&app, "pc-b", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:00:00:0B"]);
    let plain = app.add_device("plain-1", "s1");

    let response = push(&app, "xovis", "not-a-token", XOVIS_A).await;
    assert_eq!((response.status, response.error_code()), (401, "authentication_failed"));
    let response = push_as(&app, "xovis", Auth::None, XOVIS_A, "application/json").await;
    assert_eq!((response.status, response.error_code()), (401, "not_authenticated"));
    // Another sensor's token, and a device that is no sensor.
    for wrong in [&other, &plain] {
        let response = push(&app, "xovis", wrong, XOVIS_A).await;
        assert_eq!((response.status, response.error_code()), (403, "permission_denied"), "{}", response.body);
    }
    // An unregistered serial: 404, and listed for the installer.
    let response = push(&app, "xovis", &token, XOVIS_C).await;
    assert_eq!((response.status, response.error_code()), (404, "sensor_not_found"), "{}", response.body);
    push(&app, "xovis", &token, XOVIS_C).await;
    let unknown = app.cli_ok(&["device", "unknown"], None);
    let line = unknown.lines().find(|line| line.contains("80:1F:12:D5:30:DC")).expect("listed");
    assert!(line.starts_with("xovis") && line.trim_end().ends_with(" 2"), "{unknown}");
    // The same serial pushed to another vendor's path is not that vendor's sensor.
    assert_eq!(push(&app, "axis", &token, XOVIS_A).await.status, 400);
    // A malformed record in a package stores none of it.
    let t = 1_684_325_340_000_i64;
    let mut bad: Value = serde_json::from_str(&xovis_package(
        "80:1F:12:D3:27:CA",
        1,
        vec![(3, vec![xovis_record(3, t, t + 60_000, 1, 0), xovis_record(3, t + 60_000, t + 120_000, 1, 0)])],
    ))
    .unwrap();
    bad["logics_data"]["logics"][0]["records"].as_array_mut().unwrap().push(json!({"from": "soon", "counts": []}));
    let response = push(&app, "xovis", &token, &bad.to_string()).await;
    assert_eq!((response.status, response.error_code()), (400, "invalid_payload"));
    let detail = response.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("logics_data.logics[0].records[2].from: "), "{detail}");
    let response = push(&app, "xovis", &token, "{\"logics_data\": [").await;
    assert_eq!((response.status, response.error_code()), (400, "invalid_payload"));
    bad["logics_data"]["logics"][0]["records"][1]["counts"][0]["value"] = json!(-1);
    let response = push(&app, "xovis", &token, &bad.to_string()).await;
    let detail = response.body["detail"].as_str().unwrap();
    assert_eq!(detail, "logics_data.logics[0].records[1].counts[0].value: must not be negative, got -1");
    assert!(visits(&app, DAY_2023.0, DAY_2023.1).await.is_empty(), "nothing of a refused push is stored");
    assert!(!app.cli_ok(&["device", "list"], None).lines().any(|l| l.starts_with("pc-a ") && l.contains("2023")));
    // An unknown vendor is an unknown path.
    let response = push(&app, "acme", &token, XOVIS_A).await;
    assert_eq!((response.status, response.error_code()), (404, "not_found"));
    let response = app.get("/api/ingest/acme", None).await;
    assert_eq!((response.status, response.error_code()), (404, "not_found"));
}

async fn vendor_sensors_authenticate_as_they_can(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    app.add_store("s2", "UTC");
    let token = add_sensor(&app, "pc-a", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:D3:27:CA"]);
    app.cli_ok(&["user", "add", "loader", "--password-stdin", "--stores", "s1", "--can-ingest"], Some("lpw"));
    app.cli_ok(&["user", "add", "other", "--password-stdin", "--stores", "s2", "--can-ingest"], Some("opw"));
    app.cli_ok(&["user", "add", "reader", "--password-stdin", "--stores", "s1"], Some("rpw"));
    for auth in [
        Auth::BasicPassword(&token),
        Auth::Bare(&token),
        Auth::Authentication(&token),
        Auth::Query(&token),
        Auth::User("loader", "lpw"),
    ] {
        let response = push_as(&app, "xovis", auth, XOVIS_A, "application/json").await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    let response = push_as(&app, "xovis", Auth::User("other", "opw"), XOVIS_A, "application/json").await;
    assert_eq!((response.status, response.error_code()), (404, "sensor_not_found"));
    let response = push_as(&app, "xovis", Auth::User("reader", "rpw"), XOVIS_A, "application/json").await;
    assert_eq!(response.status, 403);
    let response = push_as(&app, "xovis", Auth::Query("wrong"), XOVIS_A, "application/json").await;
    assert_eq!(response.status, 401);
    let response = push_as(&app, "xovis", Auth::BasicPassword("wrong"), XOVIS_A, "application/json").await;
    assert_eq!(response.status, 401);
    assert_eq!(visits(&app, DAY_2023.0, DAY_2023.1).await, rows(&[("2023-05-17T12:09:00+00:00", 1, 0)]));
}

async fn vendor_xovis_v4_and_a_dst_day(backend: Backend) {
    let app = app_with_store(backend, "Europe/Zurich").await;
    let token = add_sensor(&app, "pc4", "s1", &["--vendor", "xovis", "--serial", "80:1F:12:D5:30:DC"]);
    let response = push(&app, "xovis", &token, XOVIS_V4).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        visits(&app, "2021-09-23T00:00:00Z", "2021-09-23T23:59:00Z").await,
        rows(&[("2021-09-23T10:20:00+02:00", 1, 0)])
    );
    // 2024-10-27 in Zurich: 02:30 happens at +02:00 and again at +01:00. With offsets both are kept
    // apart; a local time without offset (Axis localFrom only) is the earlier one.
    let mut body: Value = serde_json::from_str(XOVIS_V4).unwrap();
    let element = &mut body["content"]["element"][0];
    let measurement = element["measurement"][0].clone();
    let at = |from: &str, fw: i64| {
        let mut m = measurement.clone();
        m["from"] = json!(from);
        m["value"][0]["value"] = json!(fw);
        m
    };
    element["measurement"] = json!([at("2024-10-27T02:30:00+02:00", 2), at("2024-10-27T02:30:00+01:00", 3)]);
    assert_eq!(push(&app, "xovis", &token, &body.to_string()).await.status, 200);
    let axis_token = add_sensor(&app, "ax", "s1", &["--vendor", "axis", "--serial", "b8a44fa89c85"]);
    let mut axis: Value = serde_json::from_str(AXIS_DEVICE).unwrap();
    let m = &mut axis["data"]["measurements"][0];
    m.as_object_mut().unwrap().remove("utcFrom");
    m["localFrom"] = json!("2024-10-27T02:45:00");
    assert_eq!(push(&app, "axis", &axis_token, &axis.to_string()).await.status, 200);
    assert_eq!(
        visits(&app, "2024-10-26T22:00:00Z", "2024-10-27T03:00:00Z").await,
        rows(&[
            ("2024-10-27T02:30:00+02:00", 2, 0),
            ("2024-10-27T02:45:00+02:00", 1, 2),
            ("2024-10-27T02:30:00+01:00", 3, 0)
        ])
    );
}

async fn vendor_axis_intervals_are_not_spread(backend: Backend) {
    let app = app_with_store(backend, "Europe/Zurich").await;
    let token = add_sensor(&app, "ax", "s1", &["--vendor", "axis", "--serial", "B8A44FA89C85"]);
    let response = push(&app, "axis", &token, AXIS_DEVICE).await;
    assert_eq!((response.status, &response.body), (200, &json!({"observations": 1, "bins": 1})));
    // A 15-minute interval lands whole at its start's minute.
    let mut body: Value = serde_json::from_str(AXIS_DEVICE).unwrap();
    let m = &mut body["data"]["measurements"][0];
    m["utcFrom"] = json!("2025-05-22T08:15:00Z");
    m["utcTo"] = json!("2025-05-22T08:30:00Z");
    m["items"][0]["count"] = json!(7);
    body["sensor"]["timezone"] = body["sensor"]["timeZone"].take();
    assert_eq!(push(&app, "axis", &token, &body.to_string()).await.status, 200);
    let day = ("2025-05-22T00:00:00Z", "2025-05-22T23:59:00Z");
    let expected = rows(&[("2025-05-22T10:14:00+02:00", 1, 2), ("2025-05-22T10:15:00+02:00", 7, 2)]);
    assert_eq!(visits(&app, day.0, day.1).await, expected);
    assert_eq!(push(&app, "axis", &token, AXIS_DEVICE).await.status, 200);
    assert_eq!(visits(&app, day.0, day.1).await, expected, "a re-send changes nothing");
    // The official sample's sensor is not registered; a count that is not a number is named.
    assert_eq!(push(&app, "axis", &token, AXIS).await.status, 404);
    body["data"]["measurements"][0]["items"][1]["count"] = json!("many");
    let response = push(&app, "axis", &token, &body.to_string()).await;
    assert_eq!(response.body["detail"], "data.measurements[0].items[1].count: must be a count, got \"many\"");
}

fn milesight(start: &str, lines: &[(u32, i64, i64)]) -> String {
    let mut body: Value = serde_json::from_str(MILESIGHT).unwrap();
    body["time_info"]["start_time"] = json!(start);
    let template = body["line_periodic_data"][0].clone();
    body["line_periodic_data"] = lines
        .iter()
        .map(|(line, i, o)| {
            let mut l = template.clone();
            l["line"] = json!(line);
            l["total"] = json!({"in": i, "out": o});
            l
        })
        .collect();
    body.to_string()
}

async fn vendor_milesight_lines_and_resends(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    let token =
        add_sensor(&app, "vs125", "s1", &["--vendor", "milesight", "--serial", "6537F28545220003", "--line", "1"]);
    let response = push(&app, "milesight", &token, MILESIGHT).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let first = milesight("2026-07-31T23:12:00-00:00", &[(1, 3, 1), (2, 9, 9)]);
    assert_eq!(push(&app, "milesight", &token, &first).await.status, 200);
    assert_eq!(push(&app, "milesight", &token, &first).await.status, 200);
    let second = milesight("2026-07-31T23:13:00+00:00", &[(1, 0, 2)]);
    assert_eq!(push(&app, "milesight", &token, &second).await.status, 200);
    assert_eq!(
        visits(&app, "2026-07-31T00:00:00Z", "2026-07-31T23:59:00Z").await,
        rows(&[("2026-07-31T23:12:00+00:00", 3, 1), ("2026-07-31T23:13:00+00:00", 0, 2)])
    );
    let response = push(&app, "milesight", &token, "{\"device_info\": {}}").await;
    assert_eq!(response.body["detail"], "device_info.device_sn: missing");
}

async fn vendor_hikvision_xml_json_and_multipart(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    let token = add_sensor(&app, "cam", "s1", &["--vendor", "hikvision", "--serial", "44:47:CC:50:00:C1"]);
    let xml =
        HIKVISION_RANGE.replace("<enter>0</enter>", "<enter>4</enter>").replace("<exit>0</exit>", "<exit>2</exit>");
    let response = push_as(&app, "hikvision", Auth::Query(&token), &xml, "application/xml").await;
    assert_eq!(response.status, 200, "{}", response.body);
    // The next period as JSON, then as the XML part of a multipart body.
    let json_body = json!({"ipAddress": "10.60.108.22", "macAddress": "44:47:cc:50:00:c1", "channelID": 1,
        "dateTime": "2020-04-19T19:37:00+02:00", "eventType": "PeopleCounting",
        "peopleCounting": {"statisticalMethods": "timeRange",
            "TimeRange": {"startTime": "2020-04-19T19:35:00+02:00", "endTime": "2020-04-19T19:37:00+02:00"},
            "enter": 1, "exit": 0, "pass": 3}});
    let response = push_as(&app, "hikvision", Auth::Query(&token), &json_body.to_string(), "application/json").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let part = xml.replace("19:33:00", "19:37:00").replace("<enter>4</enter>", "<enter>5</enter>");
    let multipart = format!(
        "--MIME_boundary\r\nContent-Disposition: form-data; name=\"PeopleCounting\"\r\nContent-Type: application/xml\r\n\r\n{part}\r\n--MIME_boundary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\u{1}\u{2}\r\n--MIME_boundary--\r\n"
    );
    let response =
        push_as(&app, "hikvision", Auth::Query(&token), &multipart, "multipart/form-data; boundary=MIME_boundary")
            .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        visits(&app, "2020-04-19T00:00:00Z", "2020-04-19T23:59:00Z").await,
        rows(&[
            ("2020-04-19T17:33:00+00:00", 4, 2),
            ("2020-04-19T17:35:00+00:00", 1, 0),
            ("2020-04-19T17:37:00+00:00", 5, 2)
        ])
    );
    // A retransmission of the first period changes nothing; a broken element is named.
    assert_eq!(push_as(&app, "hikvision", Auth::Query(&token), &xml, "application/xml").await.status, 200);
    let broken = xml.replace("<enter>4</enter>", "<enter>four</enter>");
    let response = push_as(&app, "hikvision", Auth::Query(&token), &broken, "application/xml").await;
    assert_eq!(response.status, 400);
    assert_eq!(response.body["detail"], "EventNotificationAlert.peopleCounting.enter: must be a count, got \"four\"");
    let response =
        push_as(&app, "hikvision", Auth::Query(&token), "<EventNotificationAlert><a>", "application/xml").await;
    assert_eq!(response.status, 400);
    assert_eq!(visits(&app, "2020-04-19T00:00:00Z", "2020-04-19T23:59:00Z").await.len(), 3);

    // realTime statistics are running totals: cumulative registers named enter and exit.
    let live = add_sensor(&app, "cam-2", "s1", &["--vendor", "hikvision", "--serial", "84:9a:40:ec:f1:6d"]);
    let response = push_as(&app, "hikvision", Auth::BasicPassword(&live), HIKVISION_REALTIME, "text/xml").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let later = HIKVISION_REALTIME
        .replace("<time>2020-07-09T12:07:07+08:00", "<time>2020-07-09T12:09:30+08:00")
        .replace("<enter>70</enter>", "<enter>72</enter>");
    assert_eq!(push_as(&app, "hikvision", Auth::BasicPassword(&live), &later, "text/xml").await.status, 200);
    assert_eq!(
        visits(&app, "2020-07-09T00:00:00Z", "2020-07-09T23:59:00Z").await,
        rows(&[("2020-07-09T04:07:00+00:00", 2, 0)])
    );
}

fn irisys(at: &str, line_1: i64, line_2: i64) -> String {
    let mut body: Value = serde_json::from_str(IRISYS).unwrap();
    let log = &mut body["CountLogs"][0];
    log["Timestamp"] = json!(at);
    log["Counts"][0]["Value"] = json!(line_1);
    log["Counts"][1]["Value"] = json!(line_2);
    body.to_string()
}

async fn vendor_irisys_registers_reset_and_late_readings(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    let token = add_sensor(
        &app,
        "v4d",
        "s1",
        &["--vendor", "irisys", "--serial", "V4D-17020025", "--in", "Line 1", "--out", "1"],
    );
    let send = |body: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = push_as(app, "irisys", Auth::Bare(&token), &body, "application/json").await;
            assert_eq!(response.status, 200, "{}", response.body);
        }
    };
    let day = ("2018-12-03T00:00:00Z", "2018-12-03T23:59:00Z");
    send(IRISYS.to_owned()).await; // 121 / 127 at 14:21: the baseline
    assert!(visits(&app, day.0, day.1).await.is_empty(), "the first reading only sets the baseline");
    send(irisys("2018-12-03T14:36:00Z", 130, 128)).await;
    assert_eq!(visits(&app, day.0, day.1).await, rows(&[("2018-12-03T14:21:00+00:00", 9, 1)]));
    send(irisys("2018-12-03T14:51:00Z", 3, 0)).await; // a power cycle: the registers restarted
    send(irisys("2018-12-03T14:36:00Z", 130, 128)).await; // re-sent: nothing changes
    assert_eq!(
        visits(&app, day.0, day.1).await,
        rows(&[("2018-12-03T14:21:00+00:00", 9, 1), ("2018-12-03T14:36:00+00:00", 3, 0)])
    );
    send(irisys("2018-12-03T14:29:00Z", 125, 127)).await; // late: splits [14:21, 14:36)
    assert_eq!(
        visits(&app, day.0, day.1).await,
        rows(&[
            ("2018-12-03T14:21:00+00:00", 4, 0),
            ("2018-12-03T14:29:00+00:00", 5, 1),
            ("2018-12-03T14:36:00+00:00", 3, 0)
        ])
    );
    let response =
        push_as(&app, "irisys", Auth::Authentication(&token), &irisys("yesterday", 1, 1), "application/json").await;
    assert_eq!(response.status, 400);
    assert!(response.body["detail"].as_str().unwrap().starts_with("CountLogs[0].Timestamp: "), "{}", response.body);

    // Pruning the day removes its readings but each register's last one, the baseline of the next.
    let pruned = app.cli_ok(&["prune", "--before", "2018-12-04"], None);
    assert!(pruned.contains(", and 6 sensor intervals and register readings"), "{pruned}");
    assert!(visits(&app, day.0, day.1).await.is_empty());
    send(irisys("2018-12-03T15:06:00Z", 5, 1)).await;
    assert_eq!(visits(&app, day.0, day.1).await, rows(&[("2018-12-03T14:51:00+00:00", 2, 1)]));
}

async fn vendor_a_removed_sensors_serial_can_be_registered_again(backend: Backend) {
    let app = app_with_store(backend, "Europe/Zurich").await;
    let serial = ["--vendor", "xovis", "--serial", "80:1F:12:D3:27:CA"];
    let old_token = add_sensor(&app, "pc2s-old", "s1", &serial);
    assert_eq!(push(&app, "xovis", &old_token, XOVIS_A).await.status, 200);
    app.cli_ok(&["device", "remove", "pc2s-old"], None);

    // The replacement sensor takes the serial; the removed device's token no longer pushes.
    let new_token = add_sensor(&app, "pc2s-new", "s1", &serial);
    assert_eq!(push(&app, "xovis", &old_token, XOVIS_A).await.status, 401);
    let response = push(&app, "xovis", &new_token, XOVIS_A).await;
    assert_eq!(response.status, 200, "{}", response.body);
    // The removed device's bin stays and the new one's is added beside it: two devices, one minute.
    assert_eq!(visits(&app, DAY_2023.0, DAY_2023.1).await, rows(&[("2023-05-17T14:09:00+02:00", 2, 0)]));
    assert!(app.cli_ok(&["check"], None).starts_with("ok"));
}

/// Pushes arriving together are written in shared transactions (group commit on SQLite): each is
/// answered once stored, and a refused one among them does not hold up the others.
async fn vendor_concurrent_pushes_each_land_exactly_once(backend: Backend) {
    let app = app_with_store(backend, "UTC").await;
    let sensors: Vec<(String, String)> = (0..4)
        .map(|n| {
            let serial = format!("80:1F:12:00:01:0{n}");
            let token = add_sensor(&app, &format!("pc-{n}"), "s1", &["--vendor", "xovis", "--serial", &serial]);
            (serial, token)
        })
        .collect();
    let t = 1_684_325_340_000_i64; // 2023-05-17T12:09:00Z
    let mut pushes = Vec::new();
    for (n, (serial, token)) in sensors.iter().enumerate() {
        for minute in 0..10_i64 {
            let from = t + minute * 60_000;
            let body =
                xovis_package(serial, minute + 1, vec![(1, vec![xovis_record(1, from, from + 60_000, 1, n as i64)])]);
            pushes.push((token.clone(), body));
        }
    }
    // One refused push in the crowd: its record's count is negative.
    let mut bad: Value = serde_json::from_str(&pushes[0].1).unwrap();
    bad["logics_data"]["logics"][0]["records"][0]["counts"][0]["value"] = json!(-5);
    pushes.push((sensors[0].1.clone(), bad.to_string()));
    let statuses =
        futures_util::future::join_all(pushes.iter().map(|(token, body)| push(&app, "xovis", token, body))).await;
    let statuses: Vec<u16> = statuses.iter().map(|response| response.status).collect();
    assert_eq!(statuses.iter().filter(|&&status| status == 200).count(), 40, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&400));
    let expected: Vec<(String, i64, i64)> =
        (0..10).map(|m| (format!("2023-05-17T12:{:02}:00+00:00", 9 + m), 4, 6)).collect();
    assert_eq!(visits(&app, DAY_2023.0, DAY_2023.1).await, expected);
}
