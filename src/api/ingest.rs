//! Device ingestion over HTTP (`POST /api/ingest/bins`) and occupancy corrections.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use crate::api::auth::hash_token;
use crate::domain::Minute;
use crate::domain::bins::Correction;
use crate::domain::catalog::{Catalog, StoreScope, UserCredentials};
use crate::domain::keys::DeviceKey;
use crate::domain::time::parse_instant;
use crate::ingest::parse_batch;
use crate::ingest::service::{self, IngestError, Permission};
use crate::publish;
use crate::server::ClientAddr;

/// Who is writing: one device (its bins only), or a user with the ingest permission (bins of the
/// devices of its stores).
pub enum Writer {
    Device(DeviceKey),
    User(UserCredentials),
}

fn forbidden(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "permission_denied", detail.into())
}

/// Authenticates a writer: `Authorization: Bearer <device token>` or Basic auth of a user allowed to
/// ingest. Returns the catalog too: for a user it comes in the same trip to the store.
pub async fn authenticate_writer(
    state: &AppState,
    client: Option<Extension<ClientAddr>>,
    headers: &HeaderMap,
) -> Result<(Writer, Arc<Catalog>), ApiError> {
    let client = client.map(|Extension(ClientAddr(address))| address.ip());
    let authorization = headers.get(header::AUTHORIZATION).map(|value| value.as_bytes());
    let bearer = authorization
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if let Some(token) = bearer {
        // Tokens have 256 bits of entropy and are looked up by their SHA-256: the lookup leaks nothing.
        return match state.storage.device_by_token_hash(&hash_token(token)).await? {
            Some(device) => Ok((Writer::Device(device), state.storage.catalog().await?)),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_failed", "Invalid device token.")),
        };
    }
    let attempt = state.authenticator.admit(authorization, client)?;
    let context = state.storage.request_context(attempt.username()).await?;
    let user = state.authenticator.check(attempt, context.user).await?;
    if !user.can_ingest {
        return Err(forbidden("This user may not ingest data."));
    }
    Ok((Writer::User(user), context.catalog))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Bins stored (replacing earlier values for the same device and minute).
    pub accepted: usize,
}

pub async fn post_bins(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let (writer, catalog) = authenticate_writer(&state, client, &headers).await?;
    let bytes = axum::body::to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The body exceeds the limit of {} bytes; send smaller batches.", state.max_body_bytes),
        )
    })?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("invalid_body", "The body is not UTF-8."))?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-ndjson"));
    let records = parse_batch(text, ndjson).map_err(|error| ApiError::bad_request("invalid_bin", error.to_string()))?;
    let accepted = records.len();
    let permission = match &writer {
        Writer::Device(device) => Permission::Device(*device),
        Writer::User(user) => Permission::Scope(&user.scope),
    };
    service::ingest(state.storage.as_ref(), &catalog, permission, records).await.map_err(|error| match error {
        IngestError::UnknownDevice { position, device_id } => {
            ApiError::bad_request("invalid_bin", format!("bins[{position}].device_id: unknown device {device_id:?}"))
        }
        IngestError::OtherDevice { position, device_id } => forbidden(format!(
            "bins[{position}].device_id: this token may only write bins of its own device, not {device_id:?}"
        )),
        IngestError::Storage(error) => error.into(),
    })?;
    Ok(Json(Accepted { accepted }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewCorrection {
    #[schema(example = "116500")]
    pub store_code: String,
    /// The minute (UTC unless an offset is given) at whose end the count applies.
    #[schema(example = "2023-10-26T12:30:00Z")]
    pub minute: String,
    /// People inside at the end of that minute.
    #[schema(example = 12, minimum = 0)]
    pub value: i32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CorrectionView {
    pub store_code: String,
    /// UTC.
    pub minute: String,
    pub value: u32,
    /// When it was recorded (UTC).
    pub created_at: String,
}

fn user_of((writer, catalog): (Writer, Arc<Catalog>)) -> Result<(UserCredentials, Arc<Catalog>), ApiError> {
    match writer {
        Writer::User(user) => Ok((user, catalog)),
        Writer::Device(_) => Err(forbidden("Device tokens cannot set occupancy.")),
    }
}

fn visible_store(catalog: &Catalog, scope: &StoreScope, code: &str) -> Result<(), ApiError> {
    catalog
        .store_by_code(code)
        .filter(|store| scope.includes(store.key))
        .map(drop)
        .ok_or_else(ApiError::store_not_found)
}

pub async fn post_correction(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CorrectionView>), ApiError> {
    let (user, catalog) = user_of(authenticate_writer(&state, client, &headers).await?)?;
    let correction: NewCorrection = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_body", format!("expected {{\"store_code\", \"minute\", \"value\"}}: {e}"))
    })?;
    visible_store(&catalog, &user.scope, &correction.store_code)?;
    let minute = parse_instant(&correction.minute)
        .map(Minute::last_at_or_before)
        .map_err(|_| ApiError::bad_request("invalid_datetime", "minute: not a valid datetime."))?;
    let store = crate::domain::StoreCode::parse(&correction.store_code).map_err(|_| ApiError::store_not_found())?;
    let created_at = jiff::Timestamp::now();
    let value = u32::try_from(correction.value)
        .map_err(|_| ApiError::bad_request("invalid_body", "value: must not be negative."))?;
    state.storage.add_correction(store, Correction { minute, value, created_at }).await?;
    publish::after_write(state.storage.as_ref(), created_at).await?;
    let view = CorrectionView {
        store_code: correction.store_code,
        minute: minute.to_string(),
        value,
        created_at: created_at.to_string(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list_corrections(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Json<Vec<CorrectionView>>, ApiError> {
    let (user, catalog) = user_of(authenticate_writer(&state, client, &headers).await?)?;
    let store_code = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "store_code")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| ApiError::bad_request("required", "store_code: this query parameter is required."))?;
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
                created_at: c.created_at.to_string(),
            })
            .collect(),
    ))
}
