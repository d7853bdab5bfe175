//! Who is asking, as axum extractors: a handler that takes a [`Reader`] or a [`Writer`] runs only for
//! an authenticated caller, and the authentication steps (Basic auth through the throttle and the
//! verification cache, an API token for readers, or a device token for writers) are written here once.
//! Each records the signed-in user in the request's span (its `user` field).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::auth::{hash_token, is_api_token, parse_bearer};
use super::error::{ApiError, ErrorCode};
use crate::domain::catalog::{Catalog, UserCredentials};
use crate::domain::keys::DeviceKey;
use crate::domain::publication::PublicationMark;
use crate::server::ClientAddr;

/// A signed-in user, with the catalog and publication mark read in the same trip to the store.
pub struct Reader {
    /// The user's account: its scope says which stores it sees.
    pub user: UserCredentials,
    /// Stores and devices.
    pub catalog: Arc<Catalog>,
    /// What is published, for ETags and Last-Modified.
    pub mark: PublicationMark,
}

/// Who writes: one device (its bins only), or a user with the ingest permission (bins of the devices of
/// its stores, and occupancy corrections).
pub enum WriterIdentity {
    /// Signed in with `Authorization: Bearer <device token>`.
    Device(DeviceKey),
    /// Signed in with Basic auth, allowed to ingest.
    User(UserCredentials),
}

/// An authenticated writer and the catalog (for a user, read in the same trip as its account).
pub struct Writer {
    /// The device or the user.
    pub identity: WriterIdentity,
    /// Stores and devices.
    pub catalog: Arc<Catalog>,
}

impl Writer {
    /// The user, for what only users may do: a device token is refused.
    pub fn into_user(self, refusal: &'static str) -> Result<(UserCredentials, Arc<Catalog>), ApiError> {
        match self.identity {
            WriterIdentity::User(user) => Ok((user, self.catalog)),
            WriterIdentity::Device(_) => Err(forbidden(refusal)),
        }
    }
}

/// 403 `permission_denied`.
pub fn forbidden(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::PermissionDenied, detail.into())
}

fn client_of(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ClientAddr>().map(|ClientAddr(address)| address.ip())
}

fn authorization_of(parts: &Parts) -> Option<&[u8]> {
    parts.headers.get(header::AUTHORIZATION).map(|value| value.as_bytes())
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme is case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|value| parse_bearer(value.as_bytes()))
}

/// The request log's `user` field, declared empty by the request span (`api::request_span`).
fn record_user(username: &str) {
    tracing::Span::current().record("user", username);
}

/// An API token (`Authorization: Bearer`): one trip to the store by its hash, no password check; or
/// Basic auth: the throttle, one trip to the store for the account, the catalog and the mark, then the
/// password check (through the verification cache).
async fn sign_in(state: &AppState, parts: &Parts) -> Result<Reader, ApiError> {
    if let Some(token) = bearer_token(&parts.headers) {
        let signed_in = state.authenticator.authenticate_token(&state.storage, token, client_of(parts)).await?;
        record_user(&format!("{} (token {})", signed_in.grant.username, signed_in.grant.name));
        return Ok(Reader { user: signed_in.user, catalog: signed_in.catalog, mark: signed_in.mark });
    }
    let attempt = state.authenticator.admit(authorization_of(parts), client_of(parts))?;
    let username = attempt.username().to_owned();
    let context = state.storage.request_context(&username).await?;
    let user = state.authenticator.check(attempt, context.user).await?;
    record_user(&username);
    Ok(Reader { user, catalog: context.catalog, mark: context.mark })
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        sign_in(state, parts).await
    }
}

impl FromRequestParts<Arc<AppState>> for Writer {
    type Rejection = ApiError;

    /// A device token, or Basic auth of a user allowed to ingest; API tokens only read.
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer_token(&parts.headers) {
            if is_api_token(token) {
                return Err(forbidden(
                    "API tokens only read; write with a device token or Basic auth of a user allowed to ingest.",
                ));
            }
            return device_writer(state, token).await;
        }
        let reader = sign_in(state, parts).await?;
        if !reader.user.can_ingest {
            return Err(forbidden("This user may not ingest data."));
        }
        Ok(Writer { identity: WriterIdentity::User(reader.user), catalog: reader.catalog })
    }
}

/// The writer of a device token. Tokens have 256 bits of entropy and are looked up by their SHA-256:
/// the lookup leaks nothing.
async fn device_writer(state: &AppState, token: &str) -> Result<Writer, ApiError> {
    let catalog = state.storage.catalog().await?;
    match catalog.device_by_token_hash(&hash_token(token)) {
        Some(device) => Ok(Writer { identity: WriterIdentity::Device(device), catalog }),
        None => {
            crate::telemetry::series::auth_failure("device_token");
            Err(ApiError::invalid_token("Invalid device token."))
        }
    }
}

/// A writer as sensors can authenticate: besides what [`Writer`] takes, the device token as the password
/// of Basic auth (any user name), as a bare `Authorization: TOKEN` or `Authentication: TOKEN` header,
/// or as `?token=TOKEN` (sensors that set no header; it ends up in proxy logs, so serve TLS).
pub struct SensorWriter(pub Writer);

impl FromRequestParts<Arc<AppState>> for SensorWriter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let query_token = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned());
        if let Some(token) = query_token {
            return device_writer(state, &token).await.map(SensorWriter);
        }
        if let Some(value) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            let value = value.trim();
            if let Some(credentials) = super::auth::parse_basic(value.as_bytes()) {
                let catalog = state.storage.catalog().await?;
                if let Some(device) = catalog.device_by_token_hash(&hash_token(&credentials.password)) {
                    return Ok(SensorWriter(Writer { identity: WriterIdentity::Device(device), catalog }));
                }
            } else if !value.contains(' ') {
                // Irisys: the token alone, no scheme.
                return device_writer(state, value).await.map(SensorWriter);
            }
            return Writer::from_request_parts(parts, state).await.map(SensorWriter);
        }
        if let Some(value) = parts.headers.get("authentication").and_then(|v| v.to_str().ok()) {
            return device_writer(state, value.trim()).await.map(SensorWriter);
        }
        Writer::from_request_parts(parts, state).await.map(SensorWriter)
    }
}
