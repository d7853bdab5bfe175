//! Device ingestion over HTTP (`POST /api/ingest/bins`) and occupancy corrections.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{Writer, WriterIdentity, forbidden};
use crate::domain::Minute;
use crate::domain::bins::Correction;
use crate::domain::catalog::{Catalog, StoreScope};
use crate::domain::scope::Visible;
use crate::domain::time::{parse_instant, utc_seconds};
use crate::ingest::parse_batch;
use crate::ingest::service::{self, IngestError, Permission};
use crate::publish;
use crate::telemetry::series::{self, Source};

/// The answer to an accepted ingest.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Bins stored (replacing earlier values for the same device and minute).
    pub accepted: usize,
}

/// `POST /api/ingest/bins`: a JSON array of bins, one bin, or NDJSON, stored all or nothing.
pub async fn post_bins(
    State(state): State<Arc<AppState>>,
    writer: Writer,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let bytes = axum::body::to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("The body exceeds the limit of {} bytes; send smaller batches.", state.max_body_bytes),
        )
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| rejected(ApiError::bad_request(ErrorCode::InvalidBody, "The body is not UTF-8.")))?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-ndjson"));
    let records = parse_batch(text, ndjson)
        .map_err(|error| rejected(ApiError::bad_request(ErrorCode::InvalidBin, error.to_string())))?;
    let accepted = records.len();
    let permission = match &writer.identity {
        WriterIdentity::Device(device) => Permission::Device(*device),
        WriterIdentity::User(user) => Permission::Scope(&user.scope),
    };
    let stored = service::ingest(state.storage.as_ref(), &writer.catalog, permission, records).await.map_err(
        |error| match error {
            IngestError::UnknownDevice { position, device_id } => rejected(ApiError::bad_request(
                ErrorCode::InvalidBin,
                format!("bins[{position}].device_id: unknown device {device_id:?}"),
            )),
            IngestError::OtherDevice { position, device_id } => rejected(forbidden(format!(
                "bins[{position}].device_id: this token may only write bins of its own device, not {device_id:?}"
            ))),
            IngestError::Storage(error) => error.into(),
        },
    )?;
    series::bins_ingested(Source::Http, stored);
    Ok(Json(Accepted { accepted }))
}

/// Counts a batch refused for a bad record (`/metrics`) and passes its refusal on.
fn rejected(refusal: ApiError) -> ApiError {
    series::records_rejected(Source::Http);
    refusal
}

/// An occupancy correction as posted.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewCorrection {
    /// The store.
    #[schema(example = "116500")]
    pub store_code: String,
    /// The minute (UTC unless an offset is given) at whose end the count applies; seconds are dropped.
    #[schema(format = DateTime, example = "2023-10-26T12:30:00Z")]
    pub minute: String,
    /// People inside at the end of that minute.
    #[schema(example = 12, minimum = 0)]
    pub value: i32,
}

/// A recorded occupancy correction.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CorrectionView {
    /// The store.
    pub store_code: String,
    /// The minute's start, UTC.
    #[schema(format = DateTime, example = "2023-10-26T12:30:00Z")]
    pub minute: String,
    /// People inside at the end of that minute.
    #[schema(example = 12)]
    pub value: u32,
    /// When it was recorded (UTC, whole seconds).
    #[schema(format = DateTime, example = "2023-10-26T12:41:07Z")]
    pub created_at: String,
}

/// Refused to a device token: only users correct occupancy.
const DEVICES_CANNOT_CORRECT: &str = "Device tokens cannot set occupancy.";

fn visible_store(catalog: &Catalog, scope: &StoreScope, code: &str) -> Result<(), ApiError> {
    Visible::new(catalog, scope).store(code).map(drop).ok_or_else(ApiError::store_not_found)
}

/// `POST /api/occupancy/corrections`: a manual occupancy count.
pub async fn post_correction(
    State(state): State<Arc<AppState>>,
    writer: Writer,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CorrectionView>), ApiError> {
    let (user, catalog) = writer.into_user(DEVICES_CANNOT_CORRECT)?;
    let correction: NewCorrection = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidBody,
            format!("expected {{\"store_code\", \"minute\", \"value\"}}: {e}"),
        )
    })?;
    visible_store(&catalog, &user.scope, &correction.store_code)?;
    let minute = parse_instant(&correction.minute)
        .map(Minute::last_at_or_before)
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidDatetime, "minute: not a valid datetime."))?;
    let store = crate::domain::StoreCode::parse(&correction.store_code).map_err(|_| ApiError::store_not_found())?;
    let created_at = jiff::Timestamp::now();
    let value = u32::try_from(correction.value)
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidBody, "value: must not be negative."))?;
    state.storage.add_correction(store, Correction { minute, value, created_at }).await?;
    publish::after_write(state.storage.as_ref(), &catalog, created_at).await?;
    let view = CorrectionView {
        store_code: correction.store_code,
        minute: minute.to_string(),
        value,
        created_at: utc_seconds(created_at),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/occupancy/corrections?store_code=...`: a store's corrections.
pub async fn list_corrections(
    State(state): State<Arc<AppState>>,
    writer: Writer,
    uri: axum::http::Uri,
) -> Result<Json<Vec<CorrectionView>>, ApiError> {
    let (user, catalog) = writer.into_user(DEVICES_CANNOT_CORRECT)?;
    let store_code = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "store_code")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| ApiError::bad_request(ErrorCode::Required, "store_code: this query parameter is required."))?;
    visible_store(&catalog, &user.scope, &store_code)?;
    let store = crate::domain::StoreCode::parse(&store_code).map_err(|_| ApiError::store_not_found())?;
    let corrections = state.storage.corrections(store).await?;
    Ok(Json(
        corrections
            .into_iter()
            .map(|c| CorrectionView {
                store_code: store_code.clone(),
                minute: c.minute.to_string(),
                value: c.value,
                created_at: utc_seconds(c.created_at),
            })
            .collect(),
    ))
}
