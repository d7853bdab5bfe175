//! Demo data: stores in several time zones, two entrances each, a demo user, and days of plausible
//! traffic (opening hours, lunch and evening peaks, visitors leaving after a while), published.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::auth::{hash_password, hash_token};
use crate::domain::bins::Bin;
use crate::domain::catalog::{NewScope, NewStore, NewUser};
use crate::domain::keys::DeviceKey;
use crate::domain::{Counts, DeviceId, Minute, ResetTime, StoreCode, Username};
use crate::storage::Storage;

/// The demo's Europe/Athens store, used in the printed example queries.
pub const ATHENS_STORE: &str = "116500";
/// The demo user, who sees every store.
pub const DEMO_USER: &str = "demo";

/// (code, name, time zone, opening hour, closing hour, visitors per hour at the base rate)
const STORES: [(&str, &str, &str, u32, u32, f64); 3] = [
    (ATHENS_STORE, "Athens Ermou", "Europe/Athens", 9, 21, 90.0),
    ("220310", "New York 5th Avenue", "America/New_York", 10, 22, 140.0),
    ("330720", "Tokyo Shibuya", "Asia/Tokyo", 10, 21, 170.0),
];

/// The demo user's sign-in, printed by `footfall demo`.
pub struct DemoCredentials {
    /// The username.
    pub username: String,
    /// The generated password (shown once, stored only as an argon2 hash).
    pub password: String,
}

/// Creates the demo stores, devices and user and `days` of traffic up to `now`, published.
pub async fn create(storage: &dyn Storage, days: u32, now: Timestamp) -> anyhow::Result<DemoCredentials> {
    for (code, name, zone, ..) in STORES {
        let store = NewStore {
            code: StoreCode::parse(code).map_err(anyhow::Error::msg)?,
            name: name.into(),
            timezone: zone.into(),
            reset: ResetTime::MIDNIGHT,
            hours: None,
            capacity: None,
        };
        storage.add_store(store).await?;
        for entrance in ["a", "b"] {
            let device = DeviceId::parse(&format!("cnt-{code}-{entrance}")).map_err(anyhow::Error::msg)?;
            let token = format!("{:x}", rand::random::<u128>());
            storage.add_device(device, StoreCode::parse(code).unwrap(), hash_token(&token)).await?;
        }
    }
    let password: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(16).map(char::from).collect();
    let username = Username::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    storage
        .add_user(NewUser {
            username,
            password_hash: hash_password(&password),
            scope: NewScope::All,
            can_ingest: false,
        })
        .await?;

    let catalog = storage.catalog().await?;
    let mut bins = Vec::new();
    let mut rng = StdRng::seed_from_u64(now.as_second() as u64);
    let end = Minute::last_at_or_before(now);
    let start = end.plus_minutes(-(i64::from(days) * 24 * 60));
    for (code, _, zone, open, close, per_hour) in STORES {
        let devices =
            [format!("cnt-{code}-a"), format!("cnt-{code}-b")].map(|id| catalog.device_by_id(&id).unwrap().key);
        let timezone = TimeZone::get(zone)?;
        traffic(&mut rng, &timezone, (open, close), per_hour, devices, (start, end), &mut bins);
    }
    storage.ingest(bins, now).await?;
    storage.publish(now, None).await?;
    Ok(DemoCredentials { username: DEMO_USER.into(), password })
}

/// Visitors arrive at a rate shaped by the hour of day and weekday, enter through one of two
/// entrances, stay 5 to 60 minutes (never past closing), and leave through either.
fn traffic(
    rng: &mut StdRng,
    timezone: &TimeZone,
    (open, close): (u32, u32),
    per_hour: f64,
    devices: [DeviceKey; 2],
    (start, end): (Minute, Minute),
    bins: &mut Vec<Bin>,
) {
    let mut counts: BTreeMap<(Minute, usize), Counts> = BTreeMap::new();
    let mut minute = start;
    while minute <= end {
        let local = minute.timestamp().to_zoned(timezone.clone());
        let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
        if hour >= f64::from(open) && hour < f64::from(close) - 0.25 {
            let peak = |center: f64, width: f64| (-((hour - center) / width).powi(2)).exp();
            let weekend = if local.weekday().to_monday_one_offset() >= 6 { 1.4 } else { 1.0 };
            let rate = per_hour / 60.0 * weekend * (0.5 + 1.2 * peak(13.0, 1.2) + 1.5 * peak(18.5, 1.5));
            let closing = minute.plus_minutes(((f64::from(close) - hour) * 60.0) as i64 - 1);
            for _ in 0..poisson(rng, rate) {
                let entrance = usize::from(rng.random_bool(0.4));
                counts.entry((minute, entrance)).or_insert(Counts { entries: 0, exits: 0 }).entries += 1;
                let leaves = minute.plus_minutes(rng.random_range(5..=60)).min(closing);
                if leaves <= end {
                    let exit = usize::from(rng.random_bool(0.5));
                    counts.entry((leaves, exit)).or_insert(Counts { entries: 0, exits: 0 }).exits += 1;
                }
            }
        }
        minute = minute.plus_minutes(1);
    }
    bins.extend(counts.into_iter().map(|((minute, entrance), counts)| Bin {
        device: devices[entrance],
        minute,
        counts,
    }));
}

/// A Poisson sample by inversion; rates here are small (a few per minute).
pub fn poisson(rng: &mut StdRng, rate: f64) -> u32 {
    let limit = (-rate).exp();
    let mut product: f64 = rng.random();
    let mut count = 0;
    while product > limit {
        product *= rng.random::<f64>();
        count += 1;
    }
    count
}
