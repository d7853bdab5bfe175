//! Timing equality of failed sign-ins, in a test binary of its own: cargo runs test binaries one at a
//! time, so no other test competes for the CPU while this one measures.

#[path = "api/helpers.rs"]
mod helpers;

use std::time::Instant;

use footfall::app::ServerConfig;
use helpers::{Backend, TestApp};

const VISITS: &str =
    "/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T00:00:00Z&datetime_lte=2023-10-27T00:00:00Z";

#[tokio::test]
async fn an_unknown_user_costs_the_same_as_a_wrong_password() {
    // As the binary runs. Without it, whether argon2's 19 MiB come warm from the allocator's heaps or
    // as fresh pages to fault in (19 or 29 ms here) varies from thread to thread, for both kinds alike,
    // and the medians can land in different modes.
    footfall::memory::return_large_blocks_to_the_os();
    let app = TestApp::spawn_with(Backend::Sqlite, ServerConfig::immediate()).await;
    app.add_store("116500", "Europe/Athens");
    // Each sample from its own loopback address and name, so that no throttle kicks in; medians of
    // interleaved samples, so that load on the machine hits both alike.
    const SAMPLES: usize = 25;
    for round in 0..SAMPLES {
        app.add_user(&format!("user{round}"), "right", &[]);
    }
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..SAMPLES {
        let mut pair = [(format!("user{round}"), &mut wrong), (format!("nobody{round}"), &mut unknown)];
        if round % 2 == 1 {
            pair.reverse(); // neither kind always goes first
        }
        for (username, samples) in pair {
            let source = std::net::IpAddr::from([127, 0, 1 + (samples.len() % 2) as u8, 2 + round as u8]);
            let client = reqwest::Client::builder().local_address(source).build().unwrap();
            let request = client.get(app.url(VISITS)).basic_auth(&username, Some("wrong"));
            let started = Instant::now();
            assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
            samples.push(started.elapsed());
        }
    }
    wrong.sort();
    unknown.sort();
    eprintln!("wrong password ms: {:?}", wrong.iter().map(|d| d.as_millis()).collect::<Vec<_>>());
    eprintln!("unknown user ms: {:?}", unknown.iter().map(|d| d.as_millis()).collect::<Vec<_>>());
    let (wrong, unknown) = (wrong[SAMPLES / 2].as_secs_f64(), unknown[SAMPLES / 2].as_secs_f64());
    let ratio = unknown / wrong;
    assert!((0.8..=1.2).contains(&ratio), "unknown user {unknown:.4}s vs wrong password {wrong:.4}s");
}
