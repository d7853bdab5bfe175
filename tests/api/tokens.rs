//! API tokens: `footfall token add/list/revoke`, and every read endpoint accepting
//! `Authorization: Bearer TOKEN` with the token's user's scope, without argon2.

use std::time::{Duration, Instant};

use footfall::api::auth::{hash_token, new_api_token};
use footfall::domain::tokens::NewApiToken;
use footfall::domain::{TokenName, Username};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ANALYST, Backend, Response, TestApp, metrics_path};

backend_tests!(
    a_token_reads_with_its_users_scope,
    bad_revoked_and_expired_tokens_get_a_bearer_challenge,
    a_removed_users_tokens_stop_working,
    token_list_shows_expiry_and_a_last_use_recorded_at_most_once_a_minute,
    a_token_costs_no_argon2,
    api_tokens_only_read,
);

const GTE: &str = "2023-10-26T00:00:00Z";
const LTE: &str = "2023-10-27T00:00:00Z";
const LIMITED: (&str, &str) = ("limited", "pa55word");

/// Stores A and B with a device and two rows each; `analyst` sees both, `limited` only A.
async fn app_with_two_stores(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    for code in ["A", "B"] {
        app.add_store(code, "Europe/Athens");
        app.add_device(&format!("{code}-1"), code);
    }
    app.add_user(ANALYST.0, ANALYST.1, &[]);
    app.add_user(LIMITED.0, LIMITED.1, &["A"]);
    app.ingest(&[
        ("A-1", "2023-10-26T12:00:00Z", 2, 1),
        ("A-1", "2023-10-26T12:01:00Z", 1, 0),
        ("B-1", "2023-10-26T12:00:00Z", 4, 0),
        ("B-1", "2023-10-26T12:05:00Z", 0, 3),
    ]);
    app
}

/// `token add NAME --user USER [extra]`: the token, printed alone on the last line.
fn add_token(app: &TestApp, name: &str, user: &str, extra: &[&str]) -> String {
    let stdout = app.cli_ok(&[&["token", "add", name, "--user", user][..], extra].concat(), None);
    assert!(stdout.contains(&format!("added API token {name} for user {user}")), "{stdout}");
    stdout.lines().last().unwrap().to_owned()
}

async fn get_with_token(app: &TestApp, path: &str, token: &str) -> Response {
    app.get_with_authorization(path, &format!("Bearer {token}")).await
}

fn challenge(response: &Response) -> &str {
    response.headers.get("www-authenticate").expect("a 401 carries a challenge").to_str().unwrap()
}

/// A 401 `authentication_failed` that challenges with Bearer, whose detail contains `detail`.
fn assert_bad_token(response: &Response, detail: &str) {
    assert_eq!(response.status, 401, "{}", response.body);
    assert_eq!(response.error_code(), "authentication_failed");
    assert!(challenge(response).starts_with("Bearer "), "{}", challenge(response));
    assert!(response.body["detail"].as_str().unwrap().contains(detail), "{}", response.body);
}

fn token_list(app: &TestApp) -> Vec<Value> {
    let stdout = app.cli_ok(&["token", "list", "--format", "json"], None);
    serde_json::from_str::<Value>(&stdout).unwrap().as_array().unwrap().clone()
}

async fn a_token_reads_with_its_users_scope(backend: Backend) {
    let app = app_with_two_stores(backend).await;
    let token = add_token(&app, "reporting", LIMITED.0, &[]);
    for endpoint in ["visits", "occupancy"] {
        let path = metrics_path(endpoint, GTE, LTE, "");
        let with_token = get_with_token(&app, &path, &token).await;
        let with_password = app.get(&path, Some(LIMITED)).await;
        assert_eq!(with_token.status, 200, "{}", with_token.body);
        assert_eq!(with_token.body, with_password.body, "a token reads what its user reads");
        assert_eq!(with_token.body["count"], 2, "only store A: {}", with_token.body);
        let hidden = get_with_token(&app, &metrics_path(endpoint, GTE, LTE, "store_code=B"), &token).await;
        assert_eq!((hidden.status, hidden.error_code()), (404, "store_code_not_found"));
    }
    let device = get_with_token(&app, &metrics_path("visits", GTE, LTE, "device_id=B-1"), &token).await;
    assert_eq!((device.status, device.error_code()), (404, "device_id_not_found"));
    let stores = get_with_token(&app, "/api/stores", &token).await;
    assert_eq!(stores.status, 200);
    assert_eq!(stores.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(stores.body["results"][0]["store_code"], "A");
    let status = get_with_token(&app, "/api/status", &token).await;
    assert_eq!((status.status, status.body["bins_published"].as_u64()), (200, Some(4)));
    // The scheme name is case-insensitive, as Basic's is.
    let lower = app.get_with_authorization("/api/stores", &format!("bearer {token}")).await;
    assert_eq!(lower.status, 200);

    let everything = add_token(&app, "everything", ANALYST.0, &[]);
    let all = get_with_token(&app, &metrics_path("visits", GTE, LTE, ""), &everything).await;
    assert_eq!(all.body["count"], 4, "{}", all.body);
}

async fn bad_revoked_and_expired_tokens_get_a_bearer_challenge(backend: Backend) {
    let app = app_with_two_stores(backend).await;
    let visits = metrics_path("visits", GTE, LTE, "");
    let device_token = app.add_device("A-2", "A");
    for bad in [new_api_token(), device_token, "not-a-token".to_owned(), String::new()] {
        for path in [visits.as_str(), "/api/stores", "/api/status"] {
            assert_bad_token(&get_with_token(&app, path, &bad).await, "Invalid API token.");
        }
    }

    let token = add_token(&app, "soon-revoked", ANALYST.0, &[]);
    assert_eq!(get_with_token(&app, &visits, &token).await.status, 200);
    let stdout = app.cli_ok(&["token", "revoke", "soon-revoked"], None);
    assert!(stdout.contains("revoked API token soon-revoked"), "{stdout}");
    assert_bad_token(&get_with_token(&app, &visits, &token).await, "Invalid API token.");
    let again = app.cli(&["token", "revoke", "soon-revoked"], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("API token soon-revoked does not exist"));

    let short = add_token(&app, "short-lived", ANALYST.0, &["--expires", "2s"]);
    let long = add_token(&app, "long-lived", ANALYST.0, &["--expires", "90d"]);
    assert_eq!(get_with_token(&app, &visits, &long).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_bad_token(&get_with_token(&app, &visits, &short).await, "The API token has expired.");
    assert_eq!(get_with_token(&app, &visits, &long).await.status, 200);

    // Without credentials the challenge stays Basic (browsers and the dashboard sign in with it).
    let none = app.get(&visits, None).await;
    assert_eq!((none.status, none.error_code()), (401, "not_authenticated"));
    assert!(challenge(&none).starts_with("Basic "));
}

async fn a_removed_users_tokens_stop_working(backend: Backend) {
    let app = app_with_two_stores(backend).await;
    let token = add_token(&app, "limited-bi", LIMITED.0, &[]);
    let other = add_token(&app, "analyst-bi", ANALYST.0, &[]);
    assert_eq!(get_with_token(&app, "/api/stores", &token).await.status, 200);
    app.cli_ok(&["user", "remove", LIMITED.0], None);
    assert_bad_token(&get_with_token(&app, "/api/stores", &token).await, "Invalid API token.");
    assert_eq!(get_with_token(&app, "/api/stores", &other).await.status, 200, "other users' tokens still work");
    let tokens = token_list(&app);
    let names: Vec<&str> = tokens.iter().map(|token| token["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["analyst-bi"], "a removed user's tokens go with it");

    let unknown = app.cli(&["token", "add", "orphan", "--user", LIMITED.0], None);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("user limited does not exist"));
    let duplicate = app.cli(&["token", "add", "analyst-bi", "--user", ANALYST.0], None);
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("API token analyst-bi already exists"));
    let bad_expiry = app.cli(&["token", "add", "x", "--user", ANALYST.0, "--expires", "soon"], None);
    assert!(String::from_utf8_lossy(&bad_expiry.stderr).contains("\"soon\" is not a lifetime"));
    assert_eq!(token_list(&app).len(), 1, "refused adds add nothing");
}

async fn token_list_shows_expiry_and_a_last_use_recorded_at_most_once_a_minute(backend: Backend) {
    let app = app_with_two_stores(backend).await;
    let token = add_token(&app, "powerbi", ANALYST.0, &["--expires", "90d"]);
    add_token(&app, "forever", LIMITED.0, &[]);
    let tokens = token_list(&app);
    assert_eq!(tokens.len(), 2);
    let (forever, powerbi) = (&tokens[0], &tokens[1]);
    assert_eq!((forever["name"].as_str(), forever["user"].as_str()), (Some("forever"), Some("limited")));
    assert!(forever["expires_at"].is_null() && forever["last_used_at"].is_null(), "{forever}");
    let created: jiff::Timestamp = powerbi["created_at"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = powerbi["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.duration_since(created).as_hours(), 90 * 24, "{powerbi}");
    assert_eq!(powerbi["expired"], false);

    assert_eq!(get_with_token(&app, "/api/stores", &token).await.status, 200);
    // The use is recorded off the request's path: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first_use = loop {
        let powerbi = token_list(&app).into_iter().find(|t| t["name"] == "powerbi").unwrap();
        if let Some(at) = powerbi["last_used_at"].as_str() {
            break at.to_owned();
        }
        assert!(Instant::now() < deadline, "the token's use was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let used: jiff::Timestamp = first_use.parse().unwrap();
    assert!(used >= created, "used {used} before it was created {created}");
    // More reads within the minute write nothing.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..20 {
        assert_eq!(get_with_token(&app, "/api/stores", &token).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let powerbi = token_list(&app).into_iter().find(|t| t["name"] == "powerbi").unwrap();
    assert_eq!(powerbi["last_used_at"].as_str(), Some(first_use.as_str()), "at most one write a minute");

    let text = app.cli_ok(&["token", "list"], None);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("name") && header.contains("last used") && header.contains("expires"), "{text}");
    let line = lines.find(|line| line.starts_with("powerbi ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(" analyst ") && line.contains(&first_use), "{text}");
    assert_eq!(line.find(" analyst "), header.find(" user "), "columns line up:\n{text}");
}

async fn a_token_costs_no_argon2(backend: Backend) {
    let app = app_with_two_stores(backend).await;
    let median = |mut durations: Vec<Duration>| {
        durations.sort();
        durations[durations.len() / 2]
    };
    // A wrong password is never cached: each costs a full argon2 verification.
    let mut wrong = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(app.get("/api/stores", Some((ANALYST.0, "wrong"))).await.status, 401);
        wrong.push(started.elapsed());
    }
    // Each token used for the first time: nothing cached could hide a verification.
    let mut tokens = Vec::new();
    for index in 0..20 {
        let token = new_api_token();
        let new = NewApiToken {
            name: TokenName::parse(&format!("client-{index}")).unwrap(),
            username: Username::parse(ANALYST.0).unwrap(),
            token_hash: hash_token(&token),
            created_at: jiff::Timestamp::now(),
            expires_at: None,
        };
        app.storage.add_api_token(new).await.unwrap();
        tokens.push(token);
    }
    let mut first_uses = Vec::new();
    for token in &tokens {
        let started = Instant::now();
        assert_eq!(get_with_token(&app, "/api/stores", token).await.status, 200);
        first_uses.push(started.elapsed());
    }
    let (argon2, token) = (median(wrong), median(first_uses));
    assert!(token * 3 < argon2, "a first use of a token took {token:?}, an argon2 verification {argon2:?}");
}

async fn api_tokens_only_read(backend: Backend) {
    let app = app_with_two_stores(backend).await;
    let token = add_token(&app, "reader", ANALYST.0, &[]);
    let bins = serde_json::json!([{"device_id": "A-1", "minute": "2023-10-26T13:00:00Z", "in": 1, "out": 0}]);
    let post = |token: String| {
        let request = app.client.post(app.url("/api/ingest/bins")).bearer_auth(token).json(&bins);
        async move { Response::read("POST", request.send().await.unwrap()).await }
    };
    let refused = post(token).await;
    assert_eq!((refused.status, refused.error_code()), (403, "permission_denied"));
    assert!(refused.body["detail"].as_str().unwrap().contains("API tokens only read"), "{}", refused.body);
    let bad_device = post("0".repeat(64)).await;
    assert_bad_token(&bad_device, "Invalid device token.");
    let rows = app.get(&metrics_path("visits", GTE, LTE, ""), Some(ANALYST)).await;
    assert_eq!(rows.body["count"], 4, "nothing was written");
}
