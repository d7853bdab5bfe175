//! Device health of stores, for `GET /api/devices/health` and `footfall device health`: the devices'
//! bins of the last days and the stores' schedules (set, or learned from their hour rollups) turned into
//! the flags of [`crate::domain::health`].

use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

use crate::domain::Minute;
use crate::domain::buckets::{Level, SourceRange};
use crate::domain::catalog::{Catalog, Device, Store};
use crate::domain::health::{
    DayHealth, DeviceHealth, HealthSettings, LEARNING_WEEKS, Schedule, device_health, store_days,
};
use crate::domain::reads::RollupRequest;
use crate::domain::time::LocalMinuteWriter;
use crate::storage::{Result, Storage};

/// The most days a health report covers.
pub const MAX_DAYS: u32 = 31;

/// A store's health: its schedule, its days over all doors, and each active device's health.
pub struct StoreHealth<'a> {
    /// The store.
    pub store: &'a Store,
    /// When it counts as open.
    pub schedule: Schedule,
    /// Its days, oldest first, over all its doors.
    pub days: Vec<DayHealth>,
    /// Its active devices, by id.
    pub devices: Vec<(&'a Device, DeviceHealth)>,
}

/// A day's health as the API and `device health --format json` show it: shares rounded to 3 decimals.
pub fn day_json(day: &DayHealth) -> Value {
    let rounded = |share: f64| (share * 1000.0).round() / 1000.0;
    json!({
        "date": day.date.to_string(),
        "open_minutes": day.open_minutes,
        "minutes_with_data": day.minutes_with_data,
        "completeness": day.completeness().map(rounded),
        "in_metric": day.entries,
        "out_metric": day.exits,
        "balance": day.balance.map(rounded),
        "imbalanced": day.imbalanced,
    })
}

/// A device's health as the API and `device health --format json` show it, its last bin in the store's
/// local time (`minutes` writes in the store's zone).
pub fn device_json(device: &Device, health: &DeviceHealth, minutes: &mut LocalMinuteWriter) -> Value {
    json!({
        "device_id": device.device_id.as_str(),
        "last_bin": health.last_bin.map(|minute| String::from_utf8_lossy(&minutes.render(minute)).into_owned()),
        "silent": health.silent,
        "open_minutes_without_data": health.open_minutes_without_data,
        "days": health.days.iter().map(day_json).collect::<Vec<_>>(),
    })
}

/// The first minute of the local date `days - 1` days before `now`'s, in the store's zone.
fn window_start(store: &Store, now: Timestamp, days: u32) -> Minute {
    let today = now.to_zoned(store.timezone.clone()).date();
    let first = today.checked_sub((i64::from(days) - 1).days()).expect("dates in range");
    Minute::first_at_or_after(first.to_zoned(store.timezone.clone()).expect("dates in range").timestamp())
}

/// The health of `stores` over the last `days` local days (today included), as of `now`: two storage calls
/// whatever the number of stores.
pub async fn stores_health<'a>(
    storage: &dyn Storage,
    catalog: &'a Catalog,
    stores: &[&'a Store],
    days: u32,
    now: Timestamp,
    settings: &HealthSettings,
) -> Result<Vec<StoreHealth<'a>>> {
    let days = days.clamp(1, MAX_DAYS);
    let now_minute = Minute::last_at_or_before(now);
    // Stores without set hours learn them from the hours with counts of the last weeks.
    let learning: Vec<&Store> = stores.iter().copied().filter(|store| store.hours.is_none()).collect();
    let requests: Vec<RollupRequest> = learning
        .iter()
        .map(|store| {
            let today = window_start(store, now, 1);
            let from = window_start(store, now, 1 + 7 * LEARNING_WEEKS as u32);
            RollupRequest { store: store.key, range: SourceRange { level: Level::Hour, from, to: today } }
        })
        .collect();
    let pieces = if requests.is_empty() { Vec::new() } else { storage.rollups(requests).await? };
    let mut learned = std::collections::HashMap::new();
    for (store, pieces) in learning.iter().zip(pieces) {
        let hours = pieces.into_iter().filter(|(_, totals)| totals.entries + totals.exits > 0).map(|(start, _)| start);
        let today = now.to_zoned(store.timezone.clone()).date();
        learned.insert(store.key, Schedule::learn(&store.timezone, hours, today));
    }

    let devices: Vec<Vec<&Device>> = stores
        .iter()
        .map(|store| catalog.devices().iter().filter(|device| device.store == store.key && device.active).collect())
        .collect();
    let keys: Vec<_> = devices.iter().flatten().map(|device| device.key).collect();
    let first = stores.iter().map(|store| window_start(store, now, days)).min().unwrap_or(now_minute);
    let mut bins =
        if keys.is_empty() { Vec::new() } else { storage.device_bins(keys, first, now_minute).await? }.into_iter();

    let mut report = Vec::with_capacity(stores.len());
    for (store, devices) in stores.iter().zip(devices) {
        let schedule = match &store.hours {
            Some(hours) => Schedule::Set(hours.clone()),
            None => learned.remove(&store.key).expect("learned above"),
        };
        let start = window_start(store, now, days);
        let devices: Vec<(&Device, DeviceHealth)> = devices
            .into_iter()
            .map(|device| {
                let bins = bins.next().unwrap_or_default();
                (device, device_health(&store.timezone, &schedule, &bins, start, now_minute, settings))
            })
            .collect();
        let health: Vec<DeviceHealth> = devices.iter().map(|(_, health)| health.clone()).collect();
        report.push(StoreHealth { store, schedule, days: store_days(&health, settings), devices });
    }
    Ok(report)
}
