//! `GET /api/stores`: the stores the user may see, for clients such as the dashboard.

use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::extract::Reader;
use crate::domain::Minute;
use crate::domain::scope::Visible;
use crate::domain::time::LocalMinuteWriter;

/// A store as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoreView {
    /// The store's code.
    #[schema(example = "116500")]
    pub store_code: String,
    /// Its display name.
    #[schema(example = "Athens Ermou")]
    pub name: String,
    /// IANA time zone.
    #[schema(example = "Europe/Athens")]
    pub timezone: String,
    /// Local time of day at which occupancy restarts from 0.
    #[schema(example = "00:00")]
    pub occupancy_reset: String,
    /// The store's UTC offset now.
    #[schema(example = "+02:00")]
    pub utc_offset: String,
    /// Its opening hours (OpenStreetMap `opening_hours` subset); null: learned from its counts.
    #[schema(example = "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off")]
    pub opening_hours: Option<String>,
    /// The most people it may hold; null: none set.
    #[schema(example = 250, minimum = 0)]
    pub capacity: Option<u32>,
}

/// The stores the user sees.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoreList {
    /// How many.
    pub count: usize,
    /// Ordered by store_code.
    pub results: Vec<StoreView>,
}

/// `GET /api/stores`: the stores the user sees, in store-code order.
pub async fn list(reader: Reader) -> Result<Json<StoreList>, ApiError> {
    let now = Minute::last_at_or_before(jiff::Timestamp::now());
    let results: Vec<StoreView> = Visible::new(&reader.catalog, &reader.user.scope)
        .stores()
        .map(|store| {
            let rendered = LocalMinuteWriter::new(&store.timezone).render(now);
            StoreView {
                store_code: store.code.to_string(),
                name: store.name.clone(),
                timezone: store.timezone.iana_name().unwrap_or("UTC").to_owned(),
                occupancy_reset: store.reset.to_string(),
                utc_offset: String::from_utf8_lossy(&rendered[19..]).into_owned(),
                opening_hours: store.hours.as_ref().map(ToString::to_string),
                capacity: store.capacity,
            }
        })
        .collect();
    Ok(Json(StoreList { count: results.len(), results }))
}
