//! Several servers over one database: they answer alike, see each other's publications, and publish
//! each scheduled slot once between them. Two servers over one SQLite file behave the same way, so
//! these run on both backends; the last test checks that PostgreSQL serves exactly what SQLite serves.

use std::sync::Arc;
use std::time::Duration;

use footfall::api::auth::hash_password;
use footfall::app::ServerConfig;
use footfall::domain::bins::{Bin, Correction};
use footfall::domain::catalog::{NewScope, NewStore, NewUser};
use footfall::domain::keys::DeviceKey;
use footfall::domain::{Counts, Minute, ResetTime, StoreCode, Username};
use footfall::storage::{self, Storage};
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, postgres_available};

backend_tests!(
    two_servers_answer_every_request_identically,
    a_publication_through_one_server_is_seen_by_both,
    scheduled_publication_happens_once_per_slot_across_two_servers,
    racing_publishers_claim_a_slot_once,
    ingests_racing_publications_lose_nothing,
    no_server_answers_from_an_older_publication_a_second_after_a_newer_one,
    ingests_are_acknowledged_while_a_large_publication_runs,
);

const USER: (&str, &str) = ("analyst", "s3cret");
const VISITS: &str = "/api/bi/acquisition-metrics/visits/";
const OCCUPANCY: &str = "/api/bi/acquisition-metrics/occupancy/";

/// An interval no test outlives, so that nothing is published behind the test's back.
fn never() -> ServerConfig {
    ServerConfig { publish_interval: Duration::from_secs(365 * 86_400), ..Default::default() }
}

/// A second server over the first one's database.
async fn second_server(first: &TestApp, config: ServerConfig) -> TestApp {
    TestApp::spawn_on(first.backend, first.database_url.clone(), None, config).await
}

/// The body with the server's own address and the random error id taken out.
fn normalized(app: &TestApp, body: &Value) -> Value {
    let mut body: Value = serde_json::from_str(&body.to_string().replace(&app.address, "http://server")).unwrap();
    if let Some(object) = body.as_object_mut() {
        object.remove("error_id");
    }
    body
}

fn set_up_two_stores(app: &TestApp) {
    app.add_store("athens", "Europe/Athens");
    app.add_store("newyork", "America/New_York");
    app.add_device("ath-1", "athens");
    app.add_device("ath-2", "athens");
    app.add_device("ny-1", "newyork");
    app.add_user(USER.0, USER.1, &[]);
    app.add_user("athens-only", "pw", &["athens"]);
}

const BINS: &[(&str, &str, u32, u32)] = &[
    ("ath-1", "2023-10-26T12:06:00Z", 2, 0),
    ("ath-2", "2023-10-26T12:06:00Z", 1, 0),
    ("ath-1", "2023-10-26T12:09:00Z", 1, 3),
    ("ath-2", "2023-10-26T21:59:00Z", 4, 1),
    ("ath-2", "2023-10-26T22:00:00Z", 0, 1),
    ("ny-1", "2023-10-26T12:06:00Z", 5, 2),
    ("ny-1", "2023-10-26T13:00:00Z", 0, 4),
];

fn window(path: &str, extra: &str) -> String {
    format!("{path}?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z{extra}")
}

async fn visible_rows(app: &TestApp) -> u64 {
    let response = app.get(&window(VISITS, ""), Some(USER)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["count"].as_u64().unwrap()
}

async fn two_servers_answer_every_request_identically(backend: Backend) {
    let first =
        TestApp::spawn_with(backend, ServerConfig { publish_interval: Duration::from_secs(2), ..Default::default() })
            .await;
    let second =
        second_server(&first, ServerConfig { publish_interval: Duration::from_secs(2), ..Default::default() }).await;
    set_up_two_stores(&first);
    first.ingest(BINS);
    first.publish();
    let requests = [
        (window(VISITS, "&page_size=2"), Some(USER)),
        (window(VISITS, "&page_size=2&page=3"), Some(USER)),
        (window(VISITS, "&page_size=2&page=9"), Some(USER)),
        (window(VISITS, "&store_code=athens"), Some(USER)),
        (window(VISITS, "&device_id=ath-2"), Some(USER)),
        (window(VISITS, "&store_code=newyork"), Some(("athens-only", "pw"))),
        (window(VISITS, ""), Some(("athens-only", "pw"))),
        (window(OCCUPANCY, "&page_size=3&page=2"), Some(USER)),
        (window(OCCUPANCY, "&store_code=athens"), Some(USER)),
        (window(VISITS, ""), Some((USER.0, "wrong"))),
        (window(VISITS, ""), None),
        (format!("{VISITS}?datetime_gte=yesterday&datetime_lte=2023-10-27T00:00:00Z"), Some(USER)),
        ("/nowhere".to_owned(), Some(USER)),
    ];
    let mut answered_rows = 0;
    for (request, credentials) in &requests {
        let (one, two) = (first.get(request, *credentials).await, second.get(request, *credentials).await);
        assert_eq!(one.status, two.status, "{request}");
        assert_eq!(normalized(&first, &one.body), normalized(&second, &two.body), "{request}");
        if one.status == 200 {
            answered_rows += one.results().len();
        }
    }
    assert!(answered_rows >= 10, "the requests returned data: {answered_rows} rows");
}

async fn a_publication_through_one_server_is_seen_by_both(backend: Backend) {
    let first = TestApp::spawn_with(backend, never()).await;
    let second = second_server(&first, never()).await;
    set_up_two_stores(&first);
    first.ingest(&BINS[..3]);
    assert_eq!((visible_rows(&first).await, visible_rows(&second).await), (0, 0), "nothing published yet");

    // Through the first server's storage...
    first.storage.publish(Timestamp::now(), None).await.unwrap().unwrap();
    second.storage.catch_up().await.unwrap();
    assert_eq!((visible_rows(&first).await, visible_rows(&second).await), (2, 2));

    // ...and through the CLI.
    first.ingest(&BINS[3..]);
    assert_eq!(visible_rows(&second).await, 2);
    first.publish();
    second.storage.catch_up().await.unwrap();
    assert_eq!((visible_rows(&first).await, visible_rows(&second).await), (6, 6));
    let marks = (first.storage.publication_mark().await.unwrap(), second.storage.publication_mark().await.unwrap());
    assert_eq!(marks.0, marks.1);
    assert_eq!(marks.0.generation, 2);
}

/// Polls `app` until it answers with `rows` visible rows; fails if that takes a second from `committed`.
async fn seen_within_a_second(app: &TestApp, rows: u64, committed: std::time::Instant) -> Duration {
    loop {
        if visible_rows(app).await == rows {
            return committed.elapsed();
        }
        assert!(committed.elapsed() < Duration::from_secs(1), "still answering from the older publication after 1 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Both servers hold the older publication in their caches when another process publishes a newer
/// one: within a second neither answers from the older one.
async fn no_server_answers_from_an_older_publication_a_second_after_a_newer_one(backend: Backend) {
    let first = TestApp::spawn_with(backend, never()).await;
    let second = second_server(&first, never()).await;
    set_up_two_stores(&first);
    let publisher = storage::open(&first.database_url).await.unwrap();
    for (round, (batch, rows)) in [(&BINS[..3], 2), (&BINS[3..], 6)].into_iter().enumerate() {
        first.ingest(batch);
        for app in [&first, &second] {
            // Twice: the second answer comes from the cache and the shared request context.
            visible_rows(app).await;
            visible_rows(app).await;
        }
        publisher.publish(Timestamp::now(), None).await.unwrap().unwrap();
        let committed = std::time::Instant::now();
        for app in [&first, &second] {
            let waited = seen_within_a_second(app, rows, committed).await;
            eprintln!("publication {round}: seen after {waited:?}");
        }
    }

    if backend == Backend::Postgres {
        // A change committed without the notice (by hand, say) is caught by the periodic check.
        let etag_before = second.get(&window(VISITS, ""), Some(USER)).await.headers["etag"].clone();
        let (client, connection) = tokio_postgres::connect(&first.database_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute("UPDATE meta SET value = value + 1 WHERE key = 'publication_generation'").await.unwrap();
        let committed = std::time::Instant::now();
        loop {
            let etag = second.get(&window(VISITS, ""), Some(USER)).await.headers["etag"].clone();
            if etag != etag_before {
                break;
            }
            assert!(committed.elapsed() < Duration::from_secs(1), "a change without a notice unseen after 1 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A backlog large enough that its publication lasts a while, then small batches arriving during it:
/// each is acknowledged before the publication ends, none is published by it, and the next one
/// publishes them all.
async fn ingests_are_acknowledged_while_a_large_publication_runs(backend: Backend) {
    let app = TestApp::spawn_with(backend, never()).await;
    set_up_two_stores(&app);
    let catalog = app.storage.catalog().await.unwrap();
    let [backlog_device, pushing_device] = ["ath-1", "ny-1"].map(|id| catalog.device_by_id(id).unwrap().key);
    let base = Minute::parse_bin_minute("2023-01-01T00:00:00Z").unwrap();
    let bin = |device, minute| Bin { device, minute, counts: Counts { entries: 2, exits: 1 } };
    let backlog: Vec<Bin> = (0..300_000).map(|i| bin(backlog_device, base.plus_minutes(i))).collect();
    app.storage.ingest(backlog, Timestamp::now()).await.unwrap();

    let publication = {
        let storage = app.storage.clone();
        tokio::spawn(async move { storage.publish(Timestamp::now(), None).await.unwrap().unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = base.plus_minutes(400_000);
    let mut acknowledged_during = 0;
    for batch in 0..5 {
        let bins = (0..10).map(|i| bin(pushing_device, late.plus_minutes(batch * 10 + i))).collect();
        app.storage.ingest(bins, Timestamp::now()).await.unwrap();
        if !publication.is_finished() {
            acknowledged_during += 1;
        }
    }
    let summary = publication.await.unwrap();
    assert!(acknowledged_during > 0, "no ingest was acknowledged before the publication ended");
    assert_eq!(summary.bins, 300_000, "the publication took only the backlog");
    let state = app.storage.publication().await.unwrap();
    assert_eq!((state.pending_bins, state.published_bins), (50, 300_000));
    let devices = app.storage.device_statuses().await.unwrap();
    let pushing = devices.iter().find(|device| device.device_id.as_str() == "ny-1").unwrap();
    assert_eq!(pushing.last_bin_minute, Some(late.plus_minutes(49)), "the pushing device's last bin is recorded");

    app.storage.publish(Timestamp::now(), None).await.unwrap().unwrap();
    let state = app.storage.publication().await.unwrap();
    assert_eq!((state.pending_bins, state.published_bins), (0, 300_050));
}

/// Sleeps until the middle of a slot of `interval` and returns that slot's number: a second away from
/// both of its edges, where every publication of its start has committed.
async fn middle_of_a_slot(interval: Duration) -> i64 {
    let step = interval.as_millis() as i64;
    let now = Timestamp::now().as_millisecond();
    let slot = now.div_euclid(step);
    let middle = slot * step + step / 2;
    let (slot, middle) = if now <= middle { (slot, middle) } else { (slot + 1, middle + step) };
    tokio::time::sleep(Duration::from_millis((middle - now) as u64)).await;
    slot
}

async fn scheduled_publication_happens_once_per_slot_across_two_servers(backend: Backend) {
    let interval = Duration::from_secs(2);
    let first = TestApp::spawn_with(backend, ServerConfig { publish_interval: interval, ..Default::default() }).await;
    let second = second_server(&first, ServerConfig { publish_interval: interval, ..Default::default() }).await;
    set_up_two_stores(&first);
    let slot = middle_of_a_slot(interval).await;
    let before = first.storage.publication_mark().await.unwrap().generation;
    first.ingest(BINS);
    let mut later = middle_of_a_slot(interval).await;
    while later < slot + 3 {
        later = middle_of_a_slot(interval).await;
    }
    let after = first.storage.publication_mark().await.unwrap().generation;
    // One publication per slot started in between, by one of the two servers: not two per slot.
    assert_eq!(after - before, later - slot, "generations over {} slots", later - slot);
    assert_eq!((visible_rows(&first).await, visible_rows(&second).await), (6, 6), "published on schedule");
    assert!(!first.storage.has_pending().await.unwrap());
}

async fn racing_publishers_claim_a_slot_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, never()).await;
    set_up_two_stores(&app);
    app.ingest(BINS);
    let mut handles: Vec<Arc<dyn Storage>> = Vec::new();
    for _ in 0..4 {
        handles.push(storage::open(&app.database_url).await.unwrap());
    }
    let slot = Timestamp::now().as_second();
    for (round, slot) in [slot, slot + 1].into_iter().enumerate() {
        let racers = handles.iter().map(|storage| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.publish(Timestamp::now(), Some(slot)).await.unwrap() })
        });
        let results = futures_util::future::join_all(racers).await;
        let winners = results.into_iter().filter(|result| result.as_ref().unwrap().is_some()).count();
        assert_eq!(winners, 1, "slot {slot} published by exactly one racer");
        assert_eq!(app.storage.publication_mark().await.unwrap().generation, round as i64 + 1);
    }
    assert!(handles[0].publish(Timestamp::now(), Some(slot + 1)).await.unwrap().is_none(), "a slot is claimed once");
    assert!(handles[1].publish(Timestamp::now(), Some(slot)).await.unwrap().is_none(), "earlier slots stay claimed");
    assert_eq!(visible_rows(&app).await, 6);
}

async fn ingests_racing_publications_lose_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, never()).await;
    set_up_two_stores(&app);
    let catalog = app.storage.catalog().await.unwrap();
    let devices: Vec<DeviceKey> =
        ["ath-1", "ath-2", "ny-1"].iter().map(|id| catalog.device_by_id(id).unwrap().key).collect();
    let base = Minute::parse_bin_minute("2023-10-26T00:00:00Z").unwrap();
    // Each writer sends its own minutes, in batches small and large (the large ones take the COPY path).
    let batches: Vec<Vec<Bin>> = (0..12)
        .map(|batch: i64| {
            let size = if batch % 4 == 3 { 2_500 } else { 40 };
            let first = batch * 3_000;
            (0..size)
                .map(|i| Bin {
                    device: devices[(batch % 3) as usize],
                    minute: base.plus_minutes(first + i),
                    counts: Counts { entries: 1, exits: 0 },
                })
                .collect()
        })
        .collect();
    let total: usize = batches.iter().map(Vec::len).sum();
    let mut writers = Vec::new();
    for chunk in batches.chunks(4) {
        let storage = storage::open(&app.database_url).await.unwrap();
        let chunk = chunk.to_vec();
        writers.push(tokio::spawn(async move {
            for batch in chunk {
                storage.ingest(batch, Timestamp::now()).await.unwrap();
            }
        }));
    }
    let publisher = storage::open(&app.database_url).await.unwrap();
    let mut publications = 0;
    while writers.iter().any(|writer| !writer.is_finished()) {
        publisher.publish(Timestamp::now(), None).await.unwrap().unwrap();
        publications += 1;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    publisher.publish(Timestamp::now(), None).await.unwrap().unwrap();
    let state = app.storage.publication().await.unwrap();
    assert_eq!((state.pending_bins, state.published_bins), (0, total as u64), "after {publications} publications");
    let response = app
        .get(
            &format!("{VISITS}?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-11-30T00:00:00Z&page_size=10000"),
            Some(USER),
        )
        .await;
    assert_eq!(response.body["count"].as_u64(), Some(total as u64));
}

/// Same data, same corrections, same publications: PostgreSQL serves byte-for-byte what SQLite serves,
/// across time zones with DST changes, resets other than midnight, re-sent and zeroed bins, and both
/// ingest paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serves_what_sqlite_serves() {
    if !postgres_available().await {
        return;
    }
    let sqlite = TestApp::spawn_with(Backend::Sqlite, never()).await;
    let postgres = TestApp::spawn_with(Backend::Postgres, never()).await;
    let apps = [&sqlite, &postgres];
    let stores = [
        ("athens", "Europe/Athens", 4 * 60),
        ("kolkata", "Asia/Kolkata", 3 * 60 + 30),
        ("newyork", "America/New_York", 0),
        ("utc", "UTC", 23 * 60 + 59),
    ];
    for app in apps {
        for (code, timezone, reset) in stores {
            let store = NewStore {
                code: StoreCode::parse(code).unwrap(),
                name: code.to_owned(),
                timezone: timezone.to_owned(),
                reset: ResetTime::from_minutes(reset).unwrap(),
                hours: None,
                capacity: None,
            };
            app.storage.add_store(store).await.unwrap();
            for entrance in ["a", "b"] {
                let device = footfall::domain::DeviceId::parse(&format!("{code}-{entrance}")).unwrap();
                app.storage
                    .add_device(device, StoreCode::parse(code).unwrap(), format!("{code}{entrance}"))
                    .await
                    .unwrap();
            }
        }
        let user = NewUser {
            username: Username::parse(USER.0).unwrap(),
            password_hash: hash_password(USER.1),
            scope: NewScope::All,
            can_ingest: false,
        };
        app.storage.add_user(user).await.unwrap();
    }
    // Around the end of DST in New York (2023-11-05) and in Europe (2023-10-29).
    let start = Minute::parse_bin_minute("2023-10-28T00:00:00Z").unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let devices: Vec<String> =
        stores.iter().flat_map(|(code, ..)| [format!("{code}-a"), format!("{code}-b")]).collect();
    let random_bins = |count: usize, rng: &mut StdRng| -> Vec<(String, Minute, Counts)> {
        (0..count)
            .map(|_| {
                let device = devices[rng.random_range(0..devices.len())].clone();
                let minute = start.plus_minutes(rng.random_range(0..12 * 1440));
                let zero = rng.random_bool(0.1);
                let counts = if zero {
                    Counts { entries: 0, exits: 0 }
                } else {
                    Counts { entries: rng.random_range(0..6), exits: rng.random_range(0..6) }
                };
                (device, minute, counts)
            })
            .collect()
    };
    let rounds = [random_bins(30_000, &mut rng), random_bins(1_500, &mut rng), random_bins(6_000, &mut rng)];
    for (round, bins) in rounds.iter().enumerate() {
        for app in apps {
            let catalog = app.storage.catalog().await.unwrap();
            let resolved = bins
                .iter()
                .map(|(device, minute, counts)| Bin {
                    device: catalog.device_by_id(device).unwrap().key,
                    minute: *minute,
                    counts: *counts,
                })
                .collect();
            app.storage.ingest(resolved, Timestamp::now()).await.unwrap();
            if round > 0 {
                for (code, minute, value) in
                    [("athens", 2 * 1440 + 600, 7), ("newyork", 8 * 1440 + 300 * round as i64, 0)]
                {
                    let correction = Correction {
                        minute: start.plus_minutes(minute),
                        value,
                        created_at: Timestamp::from_second(1_700_000_000).unwrap(),
                    };
                    app.storage.add_correction(StoreCode::parse(code).unwrap(), correction).await.unwrap();
                }
            }
            app.storage.publish(Timestamp::now(), None).await.unwrap().unwrap();
        }
        let (one, two) = (sqlite.storage.publication().await.unwrap(), postgres.storage.publication().await.unwrap());
        assert_eq!((one.pending_bins, one.published_bins), (two.pending_bins, two.published_bins));
        compare_all_answers(&sqlite, &postgres).await;
    }
}

async fn compare_all_answers(sqlite: &TestApp, postgres: &TestApp) {
    let windows = [
        ("2023-10-28T00:00:00Z", "2023-11-09T00:00:00Z"),
        ("2023-10-29T01:17:00Z", "2023-11-05T07:41:30Z"),
        ("2023-11-05T05:00:00Z", "2023-11-05T05:00:00Z"),
    ];
    let mut compared = 0;
    for (gte, lte) in windows {
        let bounds = format!("datetime_gte={gte}&datetime_lte={lte}");
        let mut queries =
            vec![format!("{VISITS}?{bounds}&page_size=997"), format!("{OCCUPANCY}?{bounds}&page_size=2000")];
        for code in ["athens", "kolkata", "newyork", "utc"] {
            queries.push(format!("{VISITS}?{bounds}&store_code={code}&page_size=600"));
            queries.push(format!("{OCCUPANCY}?{bounds}&store_code={code}&page_size=10000"));
        }
        queries.push(format!("{VISITS}?{bounds}&device_id=newyork-b&page_size=700"));
        for query in queries {
            // Walk every page on both, following each server's own links.
            let (mut one, mut two) = (Some(query.clone()), Some(query));
            while let (Some(a), Some(b)) = (one.take(), two.take()) {
                let (x, y) = (sqlite.get(&a, Some(USER)).await, postgres.get(&b, Some(USER)).await);
                assert_eq!(x.status, 200, "{a}: {}", x.body);
                assert_same_page(&normalized(sqlite, &x.body), &normalized(postgres, &y.body), &a);
                compared += x.results().len();
                let next = |app: &TestApp, body: &Value| body["next"].as_str().map(|url| url.replace(&app.address, ""));
                (one, two) = (next(sqlite, &x.body), next(postgres, &y.body));
            }
            assert!(one.is_none() && two.is_none());
        }
    }
    assert!(compared > 10_000, "compared {compared} rows");
}

/// Equal pages, reporting the first differing row rather than two pages of JSON.
fn assert_same_page(sqlite: &Value, postgres: &Value, query: &str) {
    for key in ["count", "next", "previous"] {
        assert_eq!(sqlite[key], postgres[key], "{key} of {query}");
    }
    let (one, two) = (sqlite["results"].as_array().unwrap(), postgres["results"].as_array().unwrap());
    for (index, (a, b)) in one.iter().zip(two).enumerate() {
        assert_eq!(a, b, "row {index} of {query}");
    }
    assert_eq!(one.len(), two.len(), "rows of {query}");
    assert_eq!(sqlite, postgres, "{query}");
}
