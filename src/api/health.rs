//! `GET /api/devices/health`: per store of the user, its devices' silence, completeness and count
//! balance over the last days (`crate::health`).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::Reader;
use super::metrics::{Params, link_origin, page_of};
use crate::domain::catalog::Store;
use crate::domain::health::HealthSettings;
use crate::domain::pagination::{InvalidPage, PageLinks};
use crate::domain::scope::Visible;
use crate::domain::time::LocalMinuteWriter;
use crate::health::{MAX_DAYS, day_json, device_json, stores_health};
use crate::server::ForwardedScheme;

/// A positive whole number parameter, `default` when absent.
fn number(params: &Params, name: &str, default: i64, max: i64) -> Result<i64, ApiError> {
    match params.filter(name) {
        None => Ok(default),
        Some(text) => text.parse::<i64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidParameter,
                format!("{name}: {text:?} is not a whole number from 1 to {max}."),
            )
        }),
    }
}

/// `GET /api/devices/health`.
pub async fn device_health(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    forwarded_scheme: Option<Extension<ForwardedScheme>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri);
    let page = page_of(&params)?;
    let days = number(&params, "days", 7, i64::from(MAX_DAYS))? as u32;
    let defaults = HealthSettings::default();
    let settings = HealthSettings {
        silence_minutes: number(&params, "silence_minutes", defaults.silence_minutes, 7 * 1440)?,
        imbalance: number(&params, "imbalance_percent", (defaults.imbalance * 100.0) as i64, 100)? as f64 / 100.0,
        ..defaults
    };
    let Reader { user, catalog, .. } = reader;
    let visible = Visible::new(&catalog, &user.scope);
    let stores: Vec<&Store> = match params.filter("store_code") {
        Some(code) => vec![visible.store(code).ok_or_else(ApiError::store_not_found)?],
        None => visible.stores().collect(),
    };
    let (scheme, host) = link_origin(&state, forwarded_scheme, &headers);
    let links = PageLinks { scheme, host, path: uri.path(), params: &params.0 };
    let navigation = page.navigation(stores.len() as u64, &links).map_err(|InvalidPage| ApiError::invalid_page())?;
    let from = (page.offset() as usize).min(stores.len());
    let shown = &stores[from..(from + page.limit() as usize).min(stores.len())];
    let now = jiff::Timestamp::now();
    let report = stores_health(state.storage.as_ref(), &catalog, shown, days, now, &settings).await?;
    let results: Vec<Value> = report
        .iter()
        .map(|store| {
            let mut minutes = LocalMinuteWriter::new(&store.store.timezone);
            let devices: Vec<Value> =
                store.devices.iter().map(|(device, health)| device_json(device, health, &mut minutes)).collect();
            json!({
                "store_code": store.store.code.as_str(),
                "opening_hours": store.store.hours.as_ref().map(ToString::to_string),
                "hours_learned": store.schedule.is_learned(),
                "open_now": store.schedule.is_open(now.to_zoned(store.store.timezone.clone()).datetime()),
                "silent_devices": store.devices.iter().filter(|(_, health)| health.silent).count(),
                "days": store.days.iter().map(day_json).collect::<Vec<_>>(),
                "devices": devices,
            })
        })
        .collect();
    let body = json!({
        "count": stores.len(),
        "next": navigation.next,
        "previous": navigation.previous,
        "results": results,
    });
    Ok(axum::Json(body).into_response())
}
