//! Sensors pushing in their own formats: `POST /api/ingest/{vendor}` for Xovis, Axis, Irisys,
//! Milesight and Hikvision. The body is parsed by `ingest::vendors`, the sensor found by the serial the
//! payload carries, and the push stored by `ingest::vendors::push`, all or nothing.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{SensorWriter, WriterIdentity, forbidden};
use crate::domain::sensors::Vendor;
use crate::ingest::vendors::{self, PushError, Pusher};
use crate::telemetry::series::{self, Source};

/// The answer to a stored push.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SensorAccepted {
    /// Intervals and register readings of the sensor's in and out counts in the push.
    #[schema(example = 1)]
    pub observations: usize,
    /// Minute bins of the device written (recomputed) by the push.
    #[schema(example = 1)]
    pub bins: u64,
}

/// `POST /api/ingest/{vendor}`: one push as the sensor sends it.
pub async fn post_vendor(
    State(state): State<Arc<AppState>>,
    Extension(vendor): Extension<Vendor>,
    SensorWriter(writer): SensorWriter,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SensorAccepted>, ApiError> {
    let bytes = axum::body::to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("The body exceeds the limit of {} bytes.", state.max_body_bytes),
        )
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let payload = vendors::parse(vendor, &bytes, content_type).map_err(|message| {
        series::records_rejected(Source::Vendor(vendor.as_str()));
        ApiError::bad_request(ErrorCode::InvalidPayload, message)
    })?;
    let pusher = match &writer.identity {
        WriterIdentity::Device(device) => Pusher::Device(*device),
        WriterIdentity::User(user) => Pusher::Scope(&user.scope),
    };
    let pushed =
        vendors::push(state.storage.as_ref(), &writer.catalog, pusher, vendor, payload).await.map_err(|error| {
            match error {
                PushError::UnknownSerial { .. } => {
                    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::SensorNotFound, error.to_string())
                }
                PushError::NotYours(_) => forbidden(error.to_string()),
                PushError::Invalid(message) => {
                    series::records_rejected(Source::Vendor(vendor.as_str()));
                    ApiError::bad_request(ErrorCode::InvalidPayload, message)
                }
                PushError::Storage(error) => error.into(),
            }
        })?;
    series::bins_ingested(Source::Vendor(vendor.as_str()), pushed.bins);
    Ok(Json(SensorAccepted { observations: pushed.observations, bins: pushed.bins }))
}
