//! The CLI: ingest formats, all-or-nothing rejection of bad files, administration refusals, and the
//! small promises of its output and options. Effects are checked through the API.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, TestApp, metrics_path};

backend_tests!(
    ndjson_jsonl_and_csv_files_are_ingested,
    a_bad_record_rejects_its_whole_file_naming_the_line,
    several_files_are_all_or_nothing_per_file,
    a_dash_reads_ndjson_from_stdin,
    json_files_and_stdin_in_each_format_are_ingested,
    a_malformed_json_record_is_reported_at_one_position,
    invalid_administration_is_refused,
    the_database_option_wins_over_the_environment,
    device_add_prints_the_token_alone_on_the_last_line,
    password_stdin_strips_exactly_one_trailing_newline,
    ingest_reports_records_and_records_per_second,
);

const GTE: &str = "2023-10-26T00:00:00Z";
const LTE: &str = "2023-10-27T00:00:00Z";

/// Store S (UTC) with devices d1 and d2, and the all-stores user.
async fn app_with_store(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.add_store("S", "UTC");
    app.add_device("d1", "S");
    app.add_device("d2", "S");
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app
}

/// `(minute, in, out)` of the visits rows of the day, optionally of one device.
async fn rows(app: &TestApp, extra: &str) -> Vec<(String, i64, i64)> {
    app.walk_rows(&metrics_path("visits", GTE, LTE, extra), Some(ANALYST))
        .await
        .iter()
        .map(|row| {
            let minute = row["minute"].as_str().unwrap();
            let hhmm = minute[11..16].to_owned();
            (hhmm, row["in_metric"].as_i64().unwrap(), row["out_metric"].as_i64().unwrap())
        })
        .collect()
}

fn row(hhmm: &str, entries: i64, exits: i64) -> (String, i64, i64) {
    (hhmm.to_owned(), entries, exits)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn line(device: &str, minute: &str, entries: i64, exits: i64) -> String {
    format!("{{\"device_id\":\"{device}\",\"minute\":\"{minute}\",\"in\":{entries},\"out\":{exits}}}\n")
}

async fn ndjson_jsonl_and_csv_files_are_ingested(backend: Backend) {
    let app = app_with_store(backend).await;
    let ndjson = line("d1", "2023-10-26T12:00:00Z", 1, 0) + &line("d2", "2023-10-26T12:00:00Z", 2, 0);
    assert!(app.ingest_file("a.ndjson", &ndjson).status.success());
    assert!(app.ingest_file("b.jsonl", &line("d1", "2023-10-26T12:01:00Z", 0, 4)).status.success());
    let csv = "device_id,minute,in,out\nd2,2023-10-26T12:02:00Z,5,1\nd1,2023-10-26T12:02:00Z,1,1\n";
    let output = app.ingest_file("c.csv", csv);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(rows(&app, "").await, [row("12:00", 3, 0), row("12:01", 0, 4), row("12:02", 6, 2)]);
    assert_eq!(rows(&app, "device_id=d2").await, [row("12:00", 2, 0), row("12:02", 5, 1)]);
}

async fn a_bad_record_rejects_its_whole_file_naming_the_line(backend: Backend) {
    let app = app_with_store(backend).await;
    let good = |minute: &str| line("d1", &format!("2023-10-26T12:{minute}:00Z"), 1, 0);
    let csv_good = "d1,2023-10-26T12:00:00Z,1,0\n";
    let cases: Vec<(&str, &str, String, usize)> = vec![
        ("unknown device", "bad.ndjson", good("00") + &good("01") + &line("nope", "2023-10-26T12:02:00Z", 1, 0), 3),
        ("seconds", "bad.ndjson", good("00") + &line("d1", "2023-10-26T12:01:30Z", 1, 0), 2),
        ("fraction", "bad.ndjson", good("00") + &line("d1", "2023-10-26T12:01:00.5Z", 1, 0), 2),
        ("negative in", "bad.ndjson", good("00") + &good("01") + &line("d1", "2023-10-26T12:02:00Z", -1, 0), 3),
        ("negative out", "bad.ndjson", good("00") + &line("d1", "2023-10-26T12:01:00Z", 0, -3), 2),
        ("malformed", "bad.ndjson", good("00") + &good("01") + "{\"device_id\":\"d1\",\n" + &good("03"), 3),
        ("not json", "bad.jsonl", "hello\n".to_owned() + &good("00"), 1),
        (
            "missing field",
            "bad.ndjson",
            good("00") + "{\"device_id\":\"d1\",\"minute\":\"2023-10-26T12:01:00Z\",\"in\":1}\n",
            2,
        ),
        (
            "fractional count",
            "bad.ndjson",
            good("00") + &line("d1", "2023-10-26T12:01:00Z", 1, 0).replace("\"in\":1", "\"in\":1.5"),
            2,
        ),
        ("bad minute", "bad.ndjson", good("00") + &line("d1", "2023-10-26T25:01:00Z", 1, 0), 2),
        ("csv header", "bad.csv", "device,minute,in,out\n".to_owned() + csv_good, 1),
        ("csv no header", "bad.csv", csv_good.to_owned() + csv_good, 1),
        ("csv negative", "bad.csv", format!("device_id,minute,in,out\n{csv_good}d1,2023-10-26T12:01:00Z,-1,0\n"), 3),
        (
            "csv seconds",
            "bad.csv",
            format!("device_id,minute,in,out\n{csv_good}{csv_good}d1,2023-10-26T12:01:01Z,1,0\n"),
            4,
        ),
        (
            "csv unknown device",
            "bad.csv",
            "device_id,minute,in,out\nnope,2023-10-26T12:00:00Z,1,0\n".to_owned() + csv_good,
            2,
        ),
        ("csv fields", "bad.csv", format!("device_id,minute,in,out\n{csv_good}d1,2023-10-26T12:01:00Z,1\n"), 3),
        ("csv count", "bad.csv", format!("device_id,minute,in,out\n{csv_good}d1,2023-10-26T12:01:00Z,one,0\n"), 3),
    ];
    for (what, name, content, line_number) in cases {
        let output = app.ingest_file(name, &content);
        assert!(!output.status.success(), "{what}: accepted");
        let message = stderr(&output);
        assert!(message.contains(&format!("line {line_number}")), "{what}: {message:?} should name line {line_number}");
        assert_eq!(rows(&app, "").await, [], "{what}: nothing of the file is stored");
    }
    // The same store accepts a good file, so the refusals were about the records.
    assert!(app.ingest_file("good.ndjson", &good("00")).status.success());
    assert_eq!(rows(&app, "").await, [row("12:00", 1, 0)]);
}

async fn several_files_are_all_or_nothing_per_file(backend: Backend) {
    let app = app_with_store(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let first =
        write("first.ndjson", &(line("d1", "2023-10-26T12:00:00Z", 1, 0) + &line("d2", "2023-10-26T12:00:00Z", 1, 0)));
    let bad =
        write("bad.ndjson", &(line("d1", "2023-10-26T12:01:00Z", 7, 0) + &line("d1", "2023-10-26T12:02:00Z", -7, 0)));
    let last = write("last.csv", "device_id,minute,in,out\nd2,2023-10-26T12:03:00Z,0,1\n");
    let output = app.cli(&["ingest", &first, &bad, &last], None);
    assert!(!output.status.success(), "a rejected file makes the run fail");
    assert!(stderr(&output).contains("bad.ndjson"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("first.ndjson"), "{}", stderr(&output));
    assert_eq!(rows(&app, "").await, [row("12:00", 2, 0), row("12:03", 0, 1)]);

    let missing = dir.path().join("missing.ndjson");
    let output = app.cli(
        &["ingest", missing.to_str().unwrap(), &write("more.ndjson", &line("d1", "2023-10-26T12:04:00Z", 3, 0))],
        None,
    );
    assert!(!output.status.success(), "an unreadable file makes the run fail");
    assert_eq!(rows(&app, "").await.last().unwrap(), &row("12:04", 3, 0));
}

async fn a_dash_reads_ndjson_from_stdin(backend: Backend) {
    let app = app_with_store(backend).await;
    let input = line("d1", "2023-10-26T12:00:00Z", 4, 1) + &line("d2", "2023-10-26T12:05:00Z", 0, 2);
    app.cli_ok(&["ingest", "-"], Some(&input));
    assert_eq!(rows(&app, "").await, [row("12:00", 4, 1), row("12:05", 0, 2)]);
    let output = app.cli(&["ingest", "-"], Some(&line("d1", "2023-10-26T12:06:00Z", -1, 0)));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("line 1"), "{}", stderr(&output));
    assert_eq!(rows(&app, "").await.len(), 2);
}

async fn json_files_and_stdin_in_each_format_are_ingested(backend: Backend) {
    let app = app_with_store(backend).await;
    let bin =
        |device: &str, minute: &str, entries: i64| line(device, &format!("2023-10-26T12:{minute}:00Z"), entries, 0);
    // A .json file is a request body: an array (here over several lines) or one object.
    let array = format!("[\n  {},\n  {}\n]\n", bin("d1", "00", 1).trim(), bin("d2", "00", 2).trim());
    let output = app.ingest_file("array.json", &array);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(app.ingest_file("one.JSON", &bin("d1", "01", 3)).status.success());
    app.cli_ok(&["ingest", "--format", "json", "-"], Some(&format!("[{}]", bin("d1", "02", 4).trim())));
    app.cli_ok(&["ingest", "--format", "csv", "-"], Some("device_id,minute,in,out\nd1,2023-10-26T12:03:00Z,5,0\n"));
    app.cli_ok(&["ingest", "--format", "ndjson", "-"], Some(&bin("d1", "04", 6)));
    assert_eq!(
        rows(&app, "").await,
        [row("12:00", 3, 0), row("12:01", 3, 0), row("12:02", 4, 0), row("12:03", 5, 0), row("12:04", 6, 0)]
    );

    // All or nothing, the bad record named by the line it starts on.
    let bad = format!("[\n  {},\n  {}\n]\n", bin("d1", "10", 1).trim(), bin("d1", "11", -1).trim());
    let output = app.ingest_file("bad.json", &bad);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("bad.json: rejected: line 3: in: must not be negative"), "{}", stderr(&output));
    let output =
        app.ingest_file("unknown.json", &format!("[{},{}]", bin("d1", "10", 1).trim(), bin("nope", "11", 1).trim()));
    assert!(stderr(&output).contains("line 1: ") && stderr(&output).contains("nope"), "{}", stderr(&output));
    let output = app.cli(&["ingest", "--format", "csv", "-"], Some(&bin("d1", "10", 1)));
    assert!(!output.status.success() && stderr(&output).contains("header"), "stdin is read as --format says");
    assert_eq!(rows(&app, "").await.len(), 5, "nothing of the rejected input was stored");

    let output = app.ingest_file("bins.txt", &bin("d1", "10", 1));
    assert!(stderr(&output).contains(".json"), "the unknown-type message lists .json: {}", stderr(&output));
    let output = app.cli(&["ingest", "--format", "xml", "-"], Some(""));
    assert!(!output.status.success() && stderr(&output).contains("csv"), "{}", stderr(&output));
}

async fn a_malformed_json_record_is_reported_at_one_position(backend: Backend) {
    let app = app_with_store(backend).await;
    let first = line("d1", "2023-10-26T12:00:00Z", 1, 0);
    let truncated = line("d1", "2023-10-26T12:01:00Z", 1, 0);
    let truncated = &truncated[..truncated.len() - 4];
    let output = app.ingest_file("cut.ndjson", &format!("{first}{truncated}\n"));
    assert!(!output.status.success());
    let message = stderr(&output);
    let column = truncated.chars().count();
    assert!(message.contains(&format!("line 2, column {column}: ")), "{message}");
    assert!(!message.contains("at line"), "one position, not two: {message}");

    let output = app.ingest_file("cut.json", &format!("[\n{},\n{truncated}", first.trim()));
    let message = stderr(&output);
    assert!(message.contains(&format!("line 3, column {column}: ")), "{message}");
    assert!(!message.contains("at line"), "one position, not two: {message}");
    assert_eq!(rows(&app, "").await, []);
}

async fn invalid_administration_is_refused(backend: Backend) {
    let app = app_with_store(backend).await;
    app.ingest(&[("d1", "2023-10-26T12:00:00Z", 1, 0)]);
    let refusals: &[(&str, &[&str], Option<&str>)] = &[
        ("existing store", &["store", "add", "S", "--timezone", "Europe/Athens"], None),
        ("unknown time zone", &["store", "add", "T", "--timezone", "Mars/Olympus_Mons"], None),
        ("reset 25:00", &["store", "add", "T", "--timezone", "UTC", "--occupancy-reset", "25:00"], None),
        ("reset 12:60", &["store", "add", "T", "--timezone", "UTC", "--occupancy-reset", "12:60"], None),
        ("existing device", &["device", "add", "d1", "--store", "S"], None),
        ("device for unknown store", &["device", "add", "d9", "--store", "T"], None),
        ("existing user", &["user", "add", "analyst", "--password-stdin", "--all-stores"], Some("other\n")),
        ("user for unknown store", &["user", "add", "u9", "--password-stdin", "--stores", "S,T"], Some("pw9\n")),
    ];
    for (what, args, stdin) in refusals {
        let output = app.cli(args, *stdin);
        assert!(!output.status.success(), "{what}: accepted");
        assert!(!stderr(&output).trim().is_empty(), "{what}: no message");
    }
    // Nothing of the refused commands took effect.
    assert_eq!(rows(&app, "").await, [row("12:00", 1, 0)], "S is still UTC with its data");
    let missing = app.get(&metrics_path("visits", GTE, LTE, "store_code=T"), Some(ANALYST)).await;
    assert_eq!(missing.status, 404, "no store T was created");
    assert!(!app.ingest_file("d9.ndjson", &line("d9", "2023-10-26T12:01:00Z", 1, 0)).status.success());
    assert_eq!(app.get(&metrics_path("visits", GTE, LTE, ""), Some(("analyst", "other"))).await.status, 401);
    assert_eq!(app.get(&metrics_path("visits", GTE, LTE, ""), Some(("u9", "pw9"))).await.status, 401);
}

/// Runs the binary in `cwd` with an optional `--database` and FOOTFALL_DATABASE_URL.
fn footfall(cwd: &Path, database: Option<&str>, environment: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_footfall"));
    command.current_dir(cwd).env_remove("FOOTFALL_DATABASE_URL").env("RUST_LOG", "warn");
    if let Some(database) = database {
        command.arg("--database").arg(database);
    }
    if let Some(url) = environment {
        command.env("FOOTFALL_DATABASE_URL", url);
    }
    command.args(args).stdin(Stdio::null()).output().unwrap()
}

async fn the_database_option_wins_over_the_environment(backend: Backend) {
    let app = app_with_store(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let other = format!("sqlite://{}", dir.path().join("other.db").display());
    let ok = |output: Output| {
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    ok(footfall(dir.path(), Some(&app.database_url), Some(&other), &["store", "add", "X", "--timezone", "UTC"]));
    ok(footfall(dir.path(), None, Some(&other), &["store", "add", "Y", "--timezone", "UTC"]));
    let listed = ok(footfall(dir.path(), None, Some(&other), &["store", "list"]));
    let codes: Vec<&str> = listed.lines().skip(1).filter_map(|line| line.split_whitespace().next()).collect();
    assert_eq!(codes, ["Y"], "{listed}");
    for (code, expected) in [("X", 200), ("Y", 404)] {
        let path = metrics_path("visits", GTE, LTE, &format!("store_code={code}"));
        assert_eq!(app.get(&path, Some(ANALYST)).await.status, expected, "X goes to --database, Y to the environment");
    }
    // Neither command fell back to the default database in the working directory.
    assert!(!dir.path().join("footfall.db").exists());
}

async fn device_add_prints_the_token_alone_on_the_last_line(backend: Backend) {
    let app = app_with_store(backend).await;
    let mut tokens = Vec::new();
    for device in ["t1", "t2"] {
        let output = app.cli_ok(&["device", "add", device, "--store", "S"], None);
        let last = output.lines().last().unwrap();
        assert!(output.ends_with(&format!("{last}\n")), "{output:?}");
        assert!(last.len() >= 32, "a token with real entropy: {last:?}");
        assert!(last.bytes().all(|b| b.is_ascii_graphic()), "the token alone: {last:?}");
        tokens.push(last.to_owned());
    }
    assert_ne!(tokens[0], tokens[1]);
}

async fn password_stdin_strips_exactly_one_trailing_newline(backend: Backend) {
    let app = app_with_store(backend).await;
    app.cli_ok(&["user", "add", "two-newlines", "--password-stdin", "--all-stores"], Some("pw\n\n"));
    app.cli_ok(&["user", "add", "no-newline", "--password-stdin", "--all-stores"], Some("pw"));
    app.cli_ok(&["user", "add", "spaces", "--password-stdin", "--all-stores"], Some(" p w \n"));
    let path = metrics_path("visits", GTE, LTE, "");
    for (user, good, bad) in [("two-newlines", "pw\n", "pw"), ("no-newline", "pw", "p"), ("spaces", " p w ", "p w")] {
        assert_eq!(app.get(&path, Some((user, good))).await.status, 200, "{user} with {good:?}");
        assert_eq!(app.get(&path, Some((user, bad))).await.status, 401, "{user} with {bad:?}");
    }
}

async fn ingest_reports_records_and_records_per_second(backend: Backend) {
    let app = app_with_store(backend).await;
    let content = line("d1", "2023-10-26T12:00:00Z", 1, 0)
        + &line("d2", "2023-10-26T12:00:00Z", 1, 0)
        + &line("d1", "2023-10-26T12:01:00Z", 1, 0);
    let output = app.ingest_file("three.ndjson", &content);
    assert!(output.status.success());
    let out = stdout(&output);
    let summary = out.lines().last().unwrap_or_else(|| panic!("no summary: {out:?}"));
    assert!(summary.contains("3 records"), "{summary}");
    let (before, _) = summary.split_once(" records/s").unwrap_or_else(|| panic!("no rate: {summary}"));
    let rate = before.rsplit(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap();
    assert!(rate.parse::<f64>().is_ok_and(|rate| rate > 0.0), "{summary}");
}
