//! The one error type of the HTTP layer: renders `{detail, code, error_id}` and logs the error with its
//! id, so an operator can find what a client reports.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::StorageError;

/// A refused or failed request: the status, the stable code and the detail the client sees.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code (`code` in the body).
    pub code: &'static str,
    /// What went wrong, for a person (`detail` in the body).
    pub detail: Cow<'static, str>,
    /// The cause of a 5xx: logged, never shown.
    cause: Option<String>,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
    /// A 401 about a bearer token: it challenges with `Bearer`, not `Basic`.
    bearer: bool,
}

/// The JSON body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    #[schema(example = "Store with this store_code not found.")]
    pub detail: String,
    /// A stable machine-readable code.
    #[schema(example = "store_code_not_found")]
    pub code: String,
    /// 16 lowercase hex digits, also logged by the server with the error.
    #[schema(example = "2ac759de3d9b62d4", pattern = "^[0-9a-f]{16}$")]
    pub error_id: String,
}

impl ApiError {
    /// An error with this status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError { status, code, detail: detail.into(), cause: None, retry_after: None, bearer: false }
    }

    /// 401: no credentials were sent.
    pub fn not_authenticated() -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "not_authenticated", "Authentication credentials were not provided.")
    }

    /// 401: the credentials are wrong (the same answer for an unknown user and a wrong password).
    pub fn authentication_failed() -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_failed", "Invalid username/password.")
    }

    /// 401 `authentication_failed` for a bearer token (API or device) that is unknown, revoked or
    /// expired, with a `WWW-Authenticate: Bearer` challenge (RFC 6750).
    pub fn invalid_token(detail: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError { bearer: true, ..Self::new(StatusCode::UNAUTHORIZED, "authentication_failed", detail) }
    }

    /// 404: no such path (also what `/metrics` answers to anyone it does not serve).
    pub fn not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }

    /// 404: the store does not exist or is outside the user's scope (one answer, so scope leaks nothing).
    pub fn store_not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "store_code_not_found", "Store with this store_code not found.")
    }

    /// 404: no such device.
    pub fn device_not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "device_id_not_found", "Device with this device_id not found.")
    }

    /// 404: the page is past the last one.
    pub fn invalid_page() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "invalid_page", "Invalid page.")
    }

    /// 400 with this code and detail.
    pub fn bad_request(code: &'static str, detail: impl Into<Cow<'static, str>>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 500: the cause is logged with the error id, never shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            detail: "Internal server error.".into(),
            cause: Some(cause.to_string()),
            retry_after: None,
            bearer: false,
        }
    }

    /// 429 with `Retry-After`: too many failed sign-ins from this client.
    pub fn throttled(retry_after: std::time::Duration) -> ApiError {
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let detail = format!("Too many failed sign-in attempts; retry in {seconds} s.");
        ApiError { retry_after: Some(seconds), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", detail) }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        ApiError::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error_id = crate::telemetry::new_error_id();
        tracing::Span::current().record("error_id", &error_id);
        if self.status.is_server_error() {
            tracing::error!(%error_id, code = self.code, cause = self.cause.as_deref().unwrap_or(""), "request failed");
        } else {
            tracing::info!(%error_id, status = self.status.as_u16(), code = self.code, detail = %self.detail, "request refused");
        }
        let (retry_after, bearer) = (self.retry_after, self.bearer);
        let body = ErrorBody { detail: self.detail.into_owned(), code: self.code.to_owned(), error_id };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge =
                if bearer { "Bearer realm=\"footfall\", error=\"invalid_token\"" } else { "Basic realm=\"footfall\"" };
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
