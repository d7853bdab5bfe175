//! `footfall config show` through the real binary: the layering of defaults, file, environment and flags,
//! redaction of secrets, and errors that name the file, the key and the value.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `footfall ARGS` with no FOOTFALL_* variable of the caller's environment, plus `env`.
fn footfall(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_footfall"));
    for (name, _) in std::env::vars() {
        if name.starts_with("FOOTFALL_") {
            command.env_remove(name);
        }
    }
    command.args(args).envs(env.iter().copied()).output().unwrap()
}

fn show(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = footfall(&[&["config", "show"], args].concat(), env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The value of `key` in `config show`'s output, parsed as TOML.
fn value(shown: &str, key: &str) -> toml::Value {
    let table: toml::Table = shown.parse().unwrap_or_else(|error| panic!("{error}\n{shown}"));
    table.get(key).cloned().unwrap_or_else(|| panic!("no {key} in\n{shown}"))
}

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("footfall.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file_which_wins_over_the_defaults() {
    let defaults = show(&[], &[]);
    assert_eq!(value(&defaults, "listen").as_str(), Some("127.0.0.1:8000"));
    assert_eq!(value(&defaults, "publish_interval").as_str(), Some("15m"));
    assert_eq!(value(&defaults, "database_url").as_str(), Some("sqlite://footfall.db"));

    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "listen = \"0.0.0.0:9000\"\npublish_interval = \"1h\"\nmax_connections = 7\nrequest_timeout = 45\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    );
    let from_file = show(&["--config", &file], &[]);
    assert_eq!(value(&from_file, "listen").as_str(), Some("0.0.0.0:9000"));
    assert_eq!(value(&from_file, "publish_interval").as_str(), Some("1h"));
    assert_eq!(value(&from_file, "max_connections").as_integer(), Some(7));
    assert_eq!(value(&from_file, "request_timeout").as_str(), Some("45s"));
    assert_eq!(value(&from_file, "trusted_proxies").as_array().unwrap()[0].as_str(), Some("10.0.0.0/8"));
    assert_eq!(value(&from_file, "header_timeout").as_str(), Some("10s"), "unset in the file: the default");

    // FOOTFALL_CONFIG names the file as --config does; the variables override it.
    let env = [
        ("FOOTFALL_CONFIG", file.as_str()),
        ("FOOTFALL_LISTEN", "127.0.0.1:9100"),
        ("FOOTFALL_PUBLISH_INTERVAL", "30s"),
    ];
    let from_env = show(&[], &env);
    assert_eq!(value(&from_env, "listen").as_str(), Some("127.0.0.1:9100"));
    assert_eq!(value(&from_env, "publish_interval").as_str(), Some("30s"));
    assert_eq!(value(&from_env, "max_connections").as_integer(), Some(7), "the file still gives the rest");

    let from_flags = show(&["--listen", "127.0.0.1:9200"], &env);
    assert_eq!(value(&from_flags, "listen").as_str(), Some("127.0.0.1:9200"));
    assert_eq!(value(&from_flags, "publish_interval").as_str(), Some("30s"));

    // What `config show` prints is a file `--config` reads back to the same settings.
    let again = write(dir.path(), &from_flags);
    assert_eq!(show(&["--config", &again], &[]), from_flags);
}

#[test]
fn secrets_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "mqtt = \"mqtt://device:mqtt-secret@broker:1883?client_id=a\"\n");
    let shown = show(
        &["--config", &file],
        &[("FOOTFALL_DATABASE_URL", "postgres://app:db-secret@db.internal:5432/footfall?sslmode=require")],
    );
    assert!(!shown.contains("db-secret") && !shown.contains("mqtt-secret"), "{shown}");
    assert_eq!(
        value(&shown, "database_url").as_str(),
        Some("postgres://app:***@db.internal:5432/footfall?sslmode=require")
    );
    assert_eq!(value(&shown, "mqtt").as_str(), Some("mqtt://device:***@broker:1883?client_id=a"));
}

#[test]
fn errors_name_the_file_the_key_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "listen = \"127.0.0.1:1\"\npublish_interval = \"soon\"\n");
    let output = footfall(&["config", "show", "--config", &file], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file) && stderr.contains("publish_interval") && stderr.contains("\"soon\""), "{stderr}");

    let file = write(dir.path(), "lisen = \"127.0.0.1:1\"\n");
    let output = footfall(&["serve", "--config", &file], &[]);
    assert!(!output.status.success(), "serve refuses an unknown key too");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file) && stderr.contains("unknown key `lisen`"), "{stderr}");

    let file = write(dir.path(), "max_connections = \"many\"\n");
    let stderr = String::from_utf8_lossy(&footfall(&["config", "show", "--config", &file], &[]).stderr).into_owned();
    assert!(stderr.contains("max_connections = \"many\""), "{stderr}");
}

#[test]
fn minute_retention_is_off_by_default_and_layered_like_the_rest() {
    let defaults = show(&[], &[]);
    assert!(defaults.contains("# retention.minute_days is not set"), "{defaults}");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[retention]\nminute_days = 90\n");
    let from_file = show(&["--config", &file], &[]);
    assert_eq!(value(&from_file, "retention").get("minute_days").and_then(toml::Value::as_integer), Some(90));
    let from_env = show(&["--config", &file], &[("FOOTFALL_RETENTION_MINUTE_DAYS", "30")]);
    assert_eq!(value(&from_env, "retention")["minute_days"].as_integer(), Some(30));
    let from_flag =
        show(&["--config", &file, "--retention-minute-days", "7"], &[("FOOTFALL_RETENTION_MINUTE_DAYS", "30")]);
    assert_eq!(value(&from_flag, "retention")["minute_days"].as_integer(), Some(7));

    let zero = footfall(&["config", "show", "--config", &write(dir.path(), "retention.minute_days = 0\n")], &[]);
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert!(!zero.status.success() && stderr.contains("retention.minute_days = 0: must be at least 1"), "{stderr}");
    let unknown = footfall(&["config", "show", "--config", &write(dir.path(), "retention.hour_days = 5\n")], &[]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success() && stderr.contains("unknown key `retention.hour_days`"), "{stderr}");
    let flag = footfall(&["config", "show", "--retention-minute-days", "0"], &[]);
    assert!(!flag.status.success() && String::from_utf8_lossy(&flag.stderr).contains("--retention-minute-days"));
}

#[test]
fn cors_origins_come_from_the_file_the_environment_or_flags_and_are_off_by_default() {
    let origins = |shown: &str| -> Vec<String> {
        let cors = value(shown, "cors");
        let list = cors["allowed_origins"].as_array().unwrap_or_else(|| panic!("{shown}"));
        list.iter().map(|origin| origin.as_str().unwrap().to_owned()).collect()
    };
    assert!(origins(&show(&[], &[])).is_empty(), "off by default");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "cors.allowed_origins = [\"https://BI.example.com/\"]\n");
    assert_eq!(origins(&show(&["--config", &file], &[])), ["https://bi.example.com"], "normalised as browsers send it");
    let env = [("FOOTFALL_CORS_ALLOWED_ORIGINS", "https://a.example,http://localhost:3000")];
    assert_eq!(origins(&show(&["--config", &file], &env)), ["https://a.example", "http://localhost:3000"]);
    let flag = ["--config", &file, "--cors-allowed-origin", "https://b.example"];
    assert_eq!(origins(&show(&flag, &env)), ["https://b.example"]);

    let bad = write(dir.path(), "[cors]\nallowed_origins = [\"*\"]\n");
    let output = footfall(&["config", "show", "--config", &bad], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("cors.allowed_origins") && stderr.contains("\"*\""),
        "{stderr}"
    );
}
