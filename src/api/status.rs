//! `GET /api/status`: what is published, what is waiting, and when the next publication is due.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use super::extract::Reader;
use crate::domain::time::utc_seconds;
use crate::publish::next_slot;

/// The answer of `GET /api/status`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    /// When data was last published (UTC, whole seconds), or null if never.
    #[schema(format = DateTime, example = "2026-12-04T10:00:13Z")]
    pub last_publication: Option<String>,
    /// When the next scheduled publication is due (UTC, whole seconds); null with `--publish-interval 0`,
    /// where data is published as soon as it is ingested.
    #[schema(format = DateTime, example = "2026-12-04T10:15:00Z")]
    pub next_publication: Option<String>,
    /// The database's publication interval, as recorded by the server started last over it; 0 when
    /// data is published as soon as it is ingested.
    pub publish_interval_seconds: u64,
    /// Bins ingested but not yet visible.
    pub bins_pending: u64,
    /// Bins visible through the API.
    pub bins_published: u64,
}

/// `GET /api/status`, for any signed-in user.
pub async fn status(State(state): State<Arc<AppState>>, _reader: Reader) -> Result<Json<Status>, ApiError> {
    let publication = state.storage.publication().await?;
    let interval = state.storage.publication_policy().await?.interval();
    let next = (!interval.is_zero()).then(|| next_slot(jiff::Timestamp::now(), interval).1);
    Ok(Json(Status {
        last_publication: publication.mark.published_at.map(utc_seconds),
        next_publication: next.map(utc_seconds),
        publish_interval_seconds: interval.as_secs(),
        bins_pending: publication.pending_bins,
        bins_published: publication.published_bins,
    }))
}
