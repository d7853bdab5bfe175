//! The administration commands as a new user meets them: every `list` as aligned text or JSON without
//! secrets, read-only commands that create nothing, store changes and device moves seen through the API,
//! and error messages that say what to do.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use footfall::api::auth::hash_token;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, metrics_path};

backend_tests!(
    every_list_prints_aligned_text_or_json_with_snake_case_keys_and_no_secrets,
    store_set_renames_and_a_new_zone_or_reset_republishes,
    device_move_counts_bins_from_a_minute_for_the_new_store,
);

const GTE: &str = "2023-10-26T00:00:00Z";
const LTE: &str = "2023-10-27T00:00:00Z";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the binary in `cwd` with `args` and no FOOTFALL_DATABASE_URL, so the default database applies.
fn footfall_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_footfall"))
        .current_dir(cwd)
        .env_remove("FOOTFALL_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The JSON array `footfall ARGS --format json` prints.
fn json_list(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let stdout = app.cli_ok(&[args, &["--format", "json"]].concat(), None);
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
    value.as_array().unwrap_or_else(|| panic!("{args:?}: not an array: {stdout}")).clone()
}

/// Every cell starts where its column's header starts (headers are single words or separated by two
/// spaces), so the columns line up whatever the width of the values.
fn assert_columns_line_up(text: &str) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_else(|| panic!("no header: {text:?}"));
    let starts: Vec<usize> =
        header.match_indices("  ").filter_map(|(i, _)| header[i..].find(|c| c != ' ').map(|j| i + j)).collect();
    let starts: std::collections::BTreeSet<usize> = starts.into_iter().collect();
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        for &start in &starts {
            assert!(chars.get(start).is_some_and(|c| *c != ' '), "no cell at column {start}:\n{text}");
            assert_eq!(chars[start - 1], ' ', "a cell runs into column {start}:\n{text}");
        }
    }
}

async fn every_list_prints_aligned_text_or_json_with_snake_case_keys_and_no_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.cli_ok(&["store", "add", "116500", "--timezone", "Europe/Athens", "--name", "Athens Ermou"], None);
    app.cli_ok(&["store", "add", "2", "--timezone", "UTC", "--name", "a store with a very long name indeed"], None);
    let device_token = app.add_device("entrance-north-1", "116500");
    app.add_device("d", "2");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.cli_ok(&["user", "add", "limited", "--password-stdin", "--stores", "2,116500", "--can-ingest"], Some("pw1\n"));
    let api_token = app.cli_ok(&["token", "add", "powerbi", "--user", "limited"], None);
    let api_token = api_token.lines().last().unwrap().to_owned();
    app.ingest(&[("d", "2023-10-26T12:00:00Z", 3, 1)]);
    app.cli_ok(&["occupancy", "set", "2", "--at", "2023-10-26T12:30:00Z", "--value", "12"], None);

    let webhook_secret = app.cli_ok(&["webhook", "add", "http://127.0.0.1:9/hook", "--events", "all"], None);
    let webhook_secret = webhook_secret.lines().last().unwrap().to_owned();
    let lists: [&[&str]; 6] = [
        &["store", "list"],
        &["device", "list"],
        &["user", "list"],
        &["token", "list"],
        &["occupancy", "corrections", "2"],
        &["webhook", "list"],
    ];
    let secrets =
        [device_token.clone(), hash_token(&device_token), api_token.clone(), hash_token(&api_token), webhook_secret];
    for args in lists {
        let text = app.cli_ok(args, None);
        assert_eq!(text, app.cli_ok(&[args, &["--format", "text"]].concat(), None), "{args:?}: text is the default");
        assert!(text.lines().count() >= 2, "{args:?}: a header and rows:\n{text}");
        assert_columns_line_up(&text);
        let json = app.cli_ok(&[args, &["--format", "json"]].concat(), None);
        for output in [&text, &json] {
            for secret in &secrets {
                assert!(!output.contains(secret.as_str()), "{args:?} shows a token or its hash:\n{output}");
            }
            assert!(!output.contains("$argon2") && !output.contains(ANALYST.1), "{args:?} shows a password:\n{output}");
        }
        for item in json_list(&app, args) {
            for key in item.as_object().unwrap_or_else(|| panic!("{args:?}: {item}")).keys() {
                assert!(key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{args:?}: key {key:?}");
            }
        }
    }

    let stores = json_list(&app, &["store", "list"]);
    assert_eq!(
        stores[0],
        serde_json::json!({"store_code": "116500", "name": "Athens Ermou", "timezone": "Europe/Athens", "occupancy_reset": "00:00", "opening_hours": null, "capacity": null})
    );
    assert_eq!(stores.len(), 2);
    let devices = json_list(&app, &["device", "list"]);
    let d = devices.iter().find(|device| device["device_id"] == "d").unwrap();
    assert_eq!(
        (&d["store_code"], &d["active"], &d["last_bin_minute"]),
        (&"2".into(), &true.into(), &"2023-10-26T12:00:00Z".into())
    );
    assert!(d["last_seen_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{d}");
    let users = json_list(&app, &["user", "list"]);
    assert_eq!(
        users,
        [
            serde_json::json!({"username": "analyst", "all_stores": true, "stores": [], "can_ingest": false}),
            serde_json::json!({"username": "limited", "all_stores": false, "stores": ["116500", "2"], "can_ingest": true}),
        ]
    );
    let user_text = app.cli_ok(&["user", "list"], None);
    assert!(user_text.lines().any(|line| line.split_whitespace().eq(["limited", "116500,2", "yes"])), "{user_text}");
    let tokens = json_list(&app, &["token", "list"]);
    assert_eq!((tokens.len(), &tokens[0]["name"], &tokens[0]["user"]), (1, &"powerbi".into(), &"limited".into()));
    let corrections = json_list(&app, &["occupancy", "corrections", "2"]);
    assert_eq!((&corrections[0]["minute"], &corrections[0]["value"]), (&"2023-10-26T12:30:00Z".into(), &12.into()));

    let output = app.cli(&["store", "list", "--format", "yaml"], None);
    assert!(!output.status.success() && stderr(&output).contains("json"), "{}", stderr(&output));
}

/// `(local minute, occupancy)` of store `code` on 2023-10-26 (UTC).
async fn occupancy(app: &TestApp, code: &str) -> Vec<(String, i64)> {
    let path = metrics_path("occupancy", GTE, LTE, &format!("store_code={code}"));
    let rows = app.walk_rows(&path, Some(ANALYST)).await;
    rows.iter()
        .map(|row| (row["minute"].as_str().unwrap().to_owned(), row["occupancy_metric"].as_i64().unwrap()))
        .collect()
}

async fn store_set_renames_and_a_new_zone_or_reset_republishes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("S", "UTC");
    app.add_device("d", "S");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.ingest(&[("d", "2023-10-26T03:59:00Z", 5, 0), ("d", "2023-10-26T04:00:00Z", 1, 0)]);
    let minute = |text: &str| text.to_owned();
    assert_eq!(
        occupancy(&app, "S").await,
        [(minute("2023-10-26T03:59:00+00:00"), 5), (minute("2023-10-26T04:00:00+00:00"), 6)]
    );

    let said = app.cli_ok(&["store", "set", "S", "--occupancy-reset", "04:00"], None);
    assert!(said.contains("store-days recomputed"), "{said}");
    assert_eq!(
        occupancy(&app, "S").await,
        [(minute("2023-10-26T03:59:00+00:00"), 5), (minute("2023-10-26T04:00:00+00:00"), 1)],
        "occupancy restarts at the new reset, already published"
    );

    app.cli_ok(&["store", "set", "S", "--timezone", "Europe/Athens", "--name", "Athens"], None);
    assert_eq!(
        occupancy(&app, "S").await,
        [(minute("2023-10-26T06:59:00+03:00"), 5), (minute("2023-10-26T07:00:00+03:00"), 6)],
        "local minutes in the new zone; 04:00 Athens is 01:00 UTC, so both minutes are one store-day"
    );
    let stores = app.get("/api/stores", Some(ANALYST)).await;
    assert_eq!(
        (&stores.body["results"][0]["name"], &stores.body["results"][0]["occupancy_reset"]),
        (&"Athens".into(), &"04:00".into())
    );
    assert!(app.cli_ok(&["check"], None).starts_with("ok"));

    let refusals: [(&str, &[&str]); 5] = [
        ("nothing to change", &["store", "set", "S"]),
        ("unknown store", &["store", "set", "T", "--name", "x"]),
        ("unknown zone", &["store", "set", "S", "--timezone", "Mars/Olympus_Mons"]),
        ("bad reset", &["store", "set", "S", "--occupancy-reset", "25:00"]),
        ("bad code", &["store", "set", "", "--name", "x"]),
    ];
    for (what, args) in refusals {
        let output = app.cli(args, None);
        assert!(!output.status.success(), "{what}: accepted");
        assert!(!stderr(&output).trim().is_empty(), "{what}: no message");
    }
    let listed = app.cli_ok(&["store", "list"], None);
    assert!(
        listed.lines().nth(1).unwrap().split_whitespace().eq(["S", "Athens", "Europe/Athens", "04:00", "learned", "-"]),
        "{listed}"
    );
}

/// `(local minute, in)` of the visits of store `code` on 2023-10-26.
async fn visits(app: &TestApp, code: &str) -> Vec<(String, i64)> {
    let path = metrics_path("visits", GTE, LTE, &format!("store_code={code}"));
    let rows = app.walk_rows(&path, Some(ANALYST)).await;
    rows.iter()
        .map(|row| (row["minute"].as_str().unwrap()[11..16].to_owned(), row["in_metric"].as_i64().unwrap()))
        .collect()
}

async fn device_move_counts_bins_from_a_minute_for_the_new_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_store("A", "UTC");
    app.add_store("B", "UTC");
    let token = app.add_device("d", "A");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.ingest(&[
        ("d", "2023-10-26T12:00:00Z", 1, 0),
        ("d", "2023-10-26T12:01:00Z", 2, 0),
        ("d", "2023-10-26T12:02:00Z", 3, 0),
    ]);

    let said = app.cli_ok(&["device", "move", "d", "--store", "B", "--from", "2023-10-26T12:01:00Z"], None);
    assert!(said.contains("2 published bins changed store"), "{said}");
    let hhmm = |text: &str, count: i64| (text.to_owned(), count);
    assert_eq!(visits(&app, "A").await, [hhmm("12:00", 1)]);
    assert_eq!(visits(&app, "B").await, [hhmm("12:01", 2), hhmm("12:02", 3)]);
    // The device keeps its id and token: its next bins count for B.
    let bins = serde_json::json!([{"device_id": "d", "minute": "2023-10-26T12:03:00Z", "in": 4, "out": 0}]);
    let posted = app.client.post(app.url("/api/ingest/bins")).bearer_auth(&token).json(&bins).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(visits(&app, "B").await.last(), Some(&hhmm("12:03", 4)));
    let devices = json_list(&app, &["device", "list"]);
    let active: Vec<&Value> = devices.iter().filter(|device| device["active"] == true).collect();
    assert_eq!((active.len(), &active[0]["store_code"]), (1, &"B".into()), "{devices:?}");
    let listed = app.cli_ok(&["device", "list"], None);
    let earlier = listed
        .lines()
        .find(|line| line.starts_with("d  ") && line.contains(" A "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(earlier.ends_with("(moved)"), "the row of the earlier store says moved, not removed:\n{listed}");
    assert!(app.cli_ok(&["check"], None).starts_with("ok"));

    let refusals: [(&str, &[&str]); 4] = [
        ("within a minute", &["device", "move", "d", "--store", "A", "--from", "2023-10-26T12:02:30Z"]),
        ("unknown store", &["device", "move", "d", "--store", "C", "--from", "2023-10-26T12:02:00Z"]),
        ("unknown device", &["device", "move", "e", "--store", "A", "--from", "2023-10-26T12:02:00Z"]),
        ("same store", &["device", "move", "d", "--store", "B", "--from", "2023-10-26T12:02:00Z"]),
    ];
    for (what, args) in refusals {
        let output = app.cli(args, None);
        assert!(!output.status.success(), "{what}: accepted");
        assert!(!stderr(&output).trim().is_empty(), "{what}: no message");
    }
    assert_eq!(visits(&app, "A").await, [hhmm("12:00", 1)], "nothing refused took effect");
}

#[test]
fn read_only_commands_create_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let lists: [&[&str]; 7] = [
        &["store", "list"],
        &["device", "list"],
        &["user", "list"],
        &["token", "list"],
        &["occupancy", "corrections", "S"],
        &["check"],
        &["--database", "sqlite://footfall.db?mode=ro", "store", "list"],
    ];
    for args in lists {
        let output = footfall_in(dir.path(), args);
        assert!(!output.status.success(), "{args:?}: succeeded on no database");
        assert!(stderr(&output).contains("does not exist"), "{args:?}: {}", stderr(&output));
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert!(created.is_empty(), "{args:?} created {created:?}");
    }
    // A command that adds creates it, and the lists then read it.
    assert!(footfall_in(dir.path(), &["store", "add", "S", "--timezone", "UTC"]).status.success());
    let listed = footfall_in(dir.path(), &["--database", "sqlite://footfall.db?mode=ro", "store", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\nS "), "{}", stderr(&listed));
}

#[test]
fn user_add_without_a_scope_says_which_flags_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = footfall_in(dir.path(), &["user", "add", "x", "--password-stdin"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("--stores <CODE,...>") && message.contains("--all-stores"), "{message}");
    assert!(message.lines().any(|line| line.starts_with("Usage:") && line.contains("--stores")), "{message}");
}

#[test]
fn a_postgres_connection_failure_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    let output = footfall_in(dir.path(), &["--database", "postgres://postgres@127.0.0.1:1/footfall", "store", "list"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("127.0.0.1:1/footfall"), "{message}");
    assert_eq!(message.matches("refused").count(), 1, "{message}");
    assert!(!message.contains("error connecting to server: error connecting"), "{message}");
}

#[test]
fn the_dashboard_doc_says_the_picker_uses_the_store_list() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboard.md")).unwrap();
    assert!(!doc.contains("has no store list"), "docs/dashboard.md says the API has no store list");
    assert!(doc.contains("`GET /api/stores`"));
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/dashboard/api.js")).unwrap();
    assert!(dashboard.contains("'/api/stores'"), "the doc describes what the dashboard does");
}
