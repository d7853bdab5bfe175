//! The one error type of the HTTP layer: renders `{detail, code, error_id}` and logs the error with its
//! id, so an operator can find what a client reports.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::StorageError;

/// Declares [`ErrorCode`] and its wire names once: the OpenAPI document's enum, the JSON bodies and
/// [`ErrorCode::ALL`] all come from this list, so a code cannot be emitted without being documented.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal,)+) => {
        /// The stable machine-readable `code` of an error body.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
        // utoipa ignores the variants' `rename`: the names are also the variants in snake case, which a
        // test of the served document checks.
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ #[serde(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as it appears in the body.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }
        }
    };
}

error_codes! {
    /// 400: a bin of an ingest body is invalid.
    InvalidBin = "invalid_bin",
    /// 400: a request body is not what the endpoint takes.
    InvalidBody = "invalid_body",
    /// 400: a sensor's payload (`/api/ingest/{vendor}`) is malformed; the detail names the JSON path
    /// or XML element.
    InvalidPayload = "invalid_payload",
    /// 400: a datetime parameter or field is not a datetime.
    InvalidDatetime = "invalid_datetime",
    /// 400: `datetime_gte` is later than `datetime_lte`.
    InvalidRange = "invalid_range",
    /// 400: `page_size` is not a positive integer.
    InvalidPageSize = "invalid_page_size",
    /// 400: `granularity` is not one of minute, 15m, hour, day, week, month.
    InvalidGranularity = "invalid_granularity",
    /// 400: `compare` is not previous_period or previous_year.
    InvalidCompare = "invalid_compare",
    /// 400: `format` is not json or csv.
    InvalidFormat = "invalid_format",
    /// 400: a numeric parameter is out of its range; the detail names it.
    InvalidParameter = "invalid_parameter",
    /// 400: a required parameter is missing.
    Required = "required",
    /// 401: no usable credentials were sent.
    NotAuthenticated = "not_authenticated",
    /// 401: the credentials or the token are wrong.
    AuthenticationFailed = "authentication_failed",
    /// 403: the caller may not do this.
    PermissionDenied = "permission_denied",
    /// 404: no such store, or one outside the user's scope.
    StoreCodeNotFound = "store_code_not_found",
    /// 404: no such device, or one outside the user's scope.
    DeviceIdNotFound = "device_id_not_found",
    /// 404: no sensor of this vendor is registered with the payload's serial.
    SensorNotFound = "sensor_not_found",
    /// 404: the page is past the last one.
    InvalidPage = "invalid_page",
    /// 404: no such path.
    NotFound = "not_found",
    /// 405: the path does not take this method.
    MethodNotAllowed = "method_not_allowed",
    /// 408: the request took longer than the request timeout.
    RequestTimeout = "request_timeout",
    /// 413: the body is over the limit.
    PayloadTooLarge = "payload_too_large",
    /// 414: the query string is over the limit.
    QueryTooLong = "query_too_long",
    /// 429: too many failed sign-ins; retry after `Retry-After` seconds.
    Throttled = "throttled",
    /// 500: an internal error, logged with the error id.
    InternalError = "internal_error",
    /// 503: the server is at its connection limit (written by `server`, which cannot import this type).
    TooManyConnections = "too_many_connections",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets callers compare a code with its wire name.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A refused or failed request: the status, the stable code and the detail the client sees.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code (`code` in the body).
    pub code: ErrorCode,
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
    pub code: ErrorCode,
    /// 16 lowercase hex digits, also logged by the server with the error.
    #[schema(example = "2ac759de3d9b62d4", pattern = "^[0-9a-f]{16}$")]
    pub error_id: String,
}

impl ApiError {
    /// An error with this status, code and detail.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError { status, code, detail: detail.into(), cause: None, retry_after: None, bearer: false }
    }

    /// 401: no credentials were sent.
    pub fn not_authenticated() -> ApiError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::NotAuthenticated,
            "Authentication credentials were not provided.",
        )
    }

    /// 401: the credentials are wrong (the same answer for an unknown user and a wrong password).
    pub fn authentication_failed() -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::AuthenticationFailed, "Invalid username/password.")
    }

    /// 401 `authentication_failed` for a bearer token (API or device) that is unknown, revoked or
    /// expired, with a `WWW-Authenticate: Bearer` challenge (RFC 6750).
    pub fn invalid_token(detail: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError { bearer: true, ..Self::new(StatusCode::UNAUTHORIZED, ErrorCode::AuthenticationFailed, detail) }
    }

    /// 404: no such path (also what `/metrics` answers to anyone it does not serve).
    pub fn not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "Not found.")
    }

    /// 404: the store does not exist or is outside the user's scope (one answer, so scope leaks nothing).
    pub fn store_not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::StoreCodeNotFound, "Store with this store_code not found.")
    }

    /// 404: no such device.
    pub fn device_not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::DeviceIdNotFound, "Device with this device_id not found.")
    }

    /// 404: the page is past the last one.
    pub fn invalid_page() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::InvalidPage, "Invalid page.")
    }

    /// 400 with this code and detail.
    pub fn bad_request(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 500: the cause is logged with the error id, never shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: ErrorCode::InternalError,
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
        ApiError {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Throttled, detail)
        }
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
            tracing::error!(%error_id, code = self.code.as_str(), cause = self.cause.as_deref().unwrap_or(""), "request failed");
        } else {
            tracing::info!(%error_id, status = self.status.as_u16(), code = self.code.as_str(), detail = %self.detail, "request refused");
        }
        let (retry_after, bearer) = (self.retry_after, self.bearer);
        let body = ErrorBody { detail: self.detail.into_owned(), code: self.code, error_id };
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
