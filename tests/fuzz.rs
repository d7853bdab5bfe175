//! Property targets for everything that parses untrusted input: datetimes, page parameters, the
//! Authorization header, NDJSON/CSV files, ingest bodies, and whole query strings against the real
//! server. Each runs a bounded number of cases (FUZZ_CASES, default 10000; CI keeps the default). No input
//! may panic; every bad one must get a 4xx (or a clean error), never a 5xx.

#[path = "api/helpers.rs"]
mod helpers;

use footfall::api::auth::parse_basic;
use footfall::domain::Minute;
use footfall::domain::pagination::{PageNumber, PageSize};
use footfall::domain::time::parse_instant;
use footfall::ingest::{parse_batch, parse_csv, parse_ndjson};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

/// Strings that look like the real thing, mutated: digits, separators, signs, letters, unicode.
fn datetime_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}[T t]?[0-9]{0,3}:?[0-9]{0,3}:?[0-9]{0,3}(\\.[0-9]{0,12})?(Z|z|[+-][0-9]{1,2}:?[0-9]{0,2})?",
        "[0-9TZ:+\\-. ]{0,40}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn datetimes_parse_or_fail_cleanly(text in datetime_like()) {
        if let Ok(instant) = parse_instant(&text) {
            // A parsed bound always converts to minutes, whatever its precision or range.
            prop_assert!(Minute::first_at_or_after(instant) >= Minute::last_at_or_before(instant));
        }
        let _ = Minute::parse_bin_minute(&text);
    }

    #[test]
    fn page_parameters_parse_or_fail_cleanly(text in "[0-9+\\-.a-z ]{0,30}|[0-9]{0,40}") {
        if let Ok(size) = PageSize::parse(Some(&text)) {
            prop_assert!((1..=10_000).contains(&size.get()));
        }
        if let Some(page) = PageNumber::parse(Some(&text)) {
            prop_assert!(page.get() >= 1);
        }
    }

    #[test]
    fn authorization_headers_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200), b64 in "[A-Za-z0-9+/=]{0,60}") {
        let _ = parse_basic(&bytes);
        let header = format!("Basic {b64}");
        if let Some(credentials) = parse_basic(header.as_bytes()) {
            prop_assert!(!credentials.username.contains(':'));
        }
    }

    #[test]
    fn ndjson_csv_and_bodies_parse_or_fail_cleanly(text in any::<String>(), line in "\\{\"device_id\":\"[a-z0-9-]{0,5}\",\"minute\":\"[0-9TZ:\\-]{0,22}\",\"in\":-?[0-9]{0,12},\"out\":[0-9a-z.]{0,5}\\}") {
        let _ = parse_ndjson(&text);
        let _ = parse_csv(&text);
        let _ = parse_batch(&text, false);
        let _ = parse_batch(&text, true);
        let mixed = format!("{line}\n{text}\n{line}");
        if let Err(error) = parse_ndjson(&mixed) {
            prop_assert!(error.line >= 1);
        }
        let csv = format!("device_id,minute,in,out\n{}\n", text.replace('\n', ","));
        if let Err(error) = parse_csv(&csv) {
            prop_assert!(error.line >= 1);
        }
        if let Err(error) = parse_batch(&format!("[{line},{line}]"), false) {
            prop_assert!(error.index <= 1);
        }
    }
}

/// Query strings and Authorization headers thrown at the real server: never a 5xx, always the
/// error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_any_query_with_a_4xx_or_200() {
    let app = helpers::TestApp::spawn(helpers::Backend::Sqlite).await;
    app.add_store("116500", "Europe/Athens");
    app.add_device("cnt-1", "116500");
    app.add_user("analyst", "pw", &[]);
    app.ingest(&[("cnt-1", "2023-10-26T12:06:00Z", 3, 0)]);
    let names = ["datetime_gte", "datetime_lte", "page", "page_size", "store_code", "device_id", "x"];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: cases() / 20, ..config() });
    let strategy = (
        proptest::collection::vec((0..names.len(), datetime_like()), 0..6),
        prop_oneof![Just(0), Just(1), Just(2)],
        "[ -~]{0,40}",
    );
    for _ in 0..runner.config().cases {
        let (params, auth, header) = strategy.new_tree(&mut runner).unwrap().current();
        let query: String = params
            .iter()
            .map(|(name, value)| format!("{}={}", names[*name], helpers::encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        for path in ["/api/bi/acquisition-metrics/visits/", "/api/bi/acquisition-metrics/occupancy"] {
            let mut request = app.client.get(app.url(&format!("{path}?{query}")));
            request = match auth {
                0 => request.basic_auth("analyst", Some("pw")),
                1 => request.header("Authorization", header.as_str()),
                _ => request,
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(status == 200 || (400..500).contains(&status), "{status} for {path}?{query}: {body}");
            if status != 200 {
                assert!(body["code"].is_string() && body["error_id"].is_string(), "{body}");
            }
        }
    }
}
