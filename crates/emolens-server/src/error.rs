//! The server's error type and its mapping onto HTTP status codes and JSON bodies. The domain
//! crates' errors (faces, video) carry an [`ErrorKind`]; this file is the one place that maps
//! them onto the server's errors, and so onto HTTP, the way text-embeddings-inference's router
//! maps its errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use emolens_core::{CoreError, ErrorKind};
use emolens_faces::FacesError;
use emolens_video::VideoError;
use serde::Serialize;

/// Everything a request can fail with. Each variant names the input and what to do; each maps to
/// one HTTP status (see [`ServerError::status`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServerError {
    /// The request was malformed (missing field, bad JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The body or a part of it had a content type this endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An uploaded file is not an image in a supported format.
    #[error("{0}")]
    NotAnImage(String),
    /// An image was recognised but could not be decoded (e.g. truncated).
    #[error("{0}")]
    UndecodableImage(String),
    /// The body, an image, or the number of files is over a configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// No such campaign, ad, photo or route.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// No bearer token or an unknown/revoked one.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid key whose role is too low for the request (the message names the role needed).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. revoking a workspace's last admin key).
    #[error("{0}")]
    Conflict(String),
    /// The server is at its concurrency limit.
    #[error("server busy: {0}")]
    Busy(String),
    /// This key or client sent more requests than its rate or concurrency allows; retry after
    /// `retry_after_s` seconds.
    #[error("rate limited: {message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// The request body did not arrive within the body read timeout.
    #[error("{0}")]
    Timeout(String),
    /// The model failed on valid input.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServerError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::UnsupportedMediaType(_) | ServerError::NotAnImage(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ServerError::UndecodableImage(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ServerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
            ServerError::Busy(_) | ServerError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServerError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ServerError::Inference(_) | ServerError::Database(_) | ServerError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Short machine-readable code, stable across releases.
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::BadRequest(_) => "bad_request",
            ServerError::UnsupportedMediaType(_) => "unsupported_media_type",
            ServerError::NotAnImage(_) => "not_an_image",
            ServerError::UndecodableImage(_) => "undecodable_image",
            ServerError::TooLarge(_) => "too_large",
            ServerError::NotFound(_) => "not_found",
            ServerError::MethodNotAllowed(_) => "method_not_allowed",
            ServerError::Unauthorized(_) => "unauthorized",
            ServerError::Forbidden(_) => "forbidden",
            ServerError::Conflict(_) => "conflict",
            ServerError::Busy(_) => "busy",
            ServerError::RateLimited { .. } => "rate_limited",
            ServerError::Timeout(_) => "body_timeout",
            ServerError::Inference(_) => "inference_failed",
            ServerError::Database(_) => "database_error",
            ServerError::Internal(_) => "internal_error",
        }
    }
}

impl ServerError {
    /// The error for a response that no handler of ours made (the router's 405, the body
    /// limit's 413, an extractor's 400), from its status and plain-text body, so every answer
    /// has the same JSON shape. `what` names the request (`POST /health`).
    pub fn from_plain(status: StatusCode, text: &str, what: &str, allow: Option<&str>) -> Self {
        let text = text.trim();
        match status {
            StatusCode::METHOD_NOT_ALLOWED => ServerError::MethodNotAllowed(format!(
                "{what}: method not allowed here{}; see /docs for the API",
                allow
                    .filter(|a| !a.is_empty())
                    .map(|a| format!(" (allowed: {a})"))
                    .unwrap_or_default()
            )),
            StatusCode::PAYLOAD_TOO_LARGE => ServerError::TooLarge(format!(
                "{what}: request body is over the size limit (--max-body-mib); send less per request"
            )),
            StatusCode::NOT_FOUND => {
                ServerError::NotFound(format!("{what}: not found; see /docs for the API"))
            }
            StatusCode::UNAUTHORIZED => ServerError::Unauthorized(format!("{what}: {text}")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ServerError::UnsupportedMediaType(format!("{what}: {text}"))
            }
            StatusCode::TOO_MANY_REQUESTS => ServerError::Busy(format!("{what}: {text}")),
            StatusCode::REQUEST_TIMEOUT => ServerError::Timeout(format!("{what}: {text}")),
            s if s.is_server_error() => ServerError::Internal(format!("{what}: {text}")),
            _ => ServerError::BadRequest(format!("{what}: {text}")),
        }
    }
}

impl From<CoreError> for ServerError {
    fn from(e: CoreError) -> Self {
        let msg = e.to_string();
        match e {
            CoreError::EmptyImage { .. } => ServerError::BadRequest(msg),
            CoreError::UnknownFormat { .. } => ServerError::NotAnImage(msg),
            CoreError::Decode { .. } => ServerError::UndecodableImage(msg),
            CoreError::TooLarge { .. } => ServerError::TooLarge(msg),
            CoreError::Inference(_) | CoreError::Meta(_) => ServerError::Inference(msg),
            CoreError::Io { .. } => ServerError::Internal(msg),
        }
    }
}

/// A photo's face analysis error as an answer: a photo that is not an image is 415, one that
/// was recognised but does not decode 422, one over the limits 413; failures of ours 500.
impl From<FacesError> for ServerError {
    fn from(e: FacesError) -> Self {
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::TooLarge => ServerError::TooLarge(msg),
            ErrorKind::Unsupported => ServerError::NotAnImage(msg),
            ErrorKind::InvalidInput => ServerError::UndecodableImage(msg),
            ErrorKind::Cancelled | ErrorKind::Internal => ServerError::Inference(msg),
        }
    }
}

impl ServerError {
    /// A video error as an answer, with `message` (the error's text naming the uploaded file;
    /// see `jobs::video_message`): checks made while an upload request is open, and the status
    /// a failed job records. Not a video 415, over a limit 413, empty or corrupt 400.
    pub fn from_video(e: &VideoError, message: String) -> Self {
        match e.kind() {
            ErrorKind::Unsupported => ServerError::UnsupportedMediaType(message),
            ErrorKind::TooLarge => ServerError::TooLarge(message),
            ErrorKind::InvalidInput => ServerError::BadRequest(message),
            ErrorKind::Cancelled | ErrorKind::Internal => ServerError::Internal(message),
        }
    }

    /// The stable code of a video error, for job records.
    pub fn video_code(e: &VideoError) -> &'static str {
        match e {
            VideoError::NotAVideo { .. } => "not_a_video",
            VideoError::AudioOnly { .. } => "audio_only",
            VideoError::NoDecodableStream { .. } => "undecodable_video",
            VideoError::Empty { .. } => "empty_video",
            VideoError::Corrupt { .. } => "corrupt_video",
            VideoError::TooLarge { .. } => "too_large",
            VideoError::Faces { .. } => "analysis_failed",
            VideoError::Cancelled { .. } => "cancelled",
            VideoError::Config(_) | VideoError::Io { .. } | VideoError::Encode { .. } => {
                "internal_error"
            }
        }
    }
}

impl From<sqlx::Error> for ServerError {
    fn from(e: sqlx::Error) -> Self {
        ServerError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for ServerError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        ServerError::Database(format!("migration failed: {e}"))
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ServerError::RateLimited { retry_after_s, .. } => (*retry_after_s).max(1),
            _ => 1,
        };
        let timed_out = matches!(self, ServerError::Timeout(_));
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: self.to_string(),
            code: self.code().to_string(),
            retry_after_s: (status == StatusCode::TOO_MANY_REQUESTS).then_some(retry_after),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(retry_after));
        }
        if timed_out {
            // The rest of the body may still be on its way: this connection is done.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// The body of every error answer (the TF-Serving endpoints' own errors aside).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do, naming the input.
    pub error: String,
    /// Stable machine-readable code, e.g. `bad_request`, `too_large`, `busy` (a pool is full),
    /// `rate_limited` (this key's or client's rate or in-flight limit), `body_timeout` (408).
    pub code: String,
    /// On 429: seconds to wait before retrying (as the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// 429, as every admitted route may answer it.
#[derive(utoipa::ToResponse)]
#[response(
    description = "Refused before any work: this key's or client address's rate or in-flight limit (`rate_limited`), its pool full (`busy`), or no analysis slot or decode memory within the queue timeout (`busy`; nothing was stored). The body of a refused request is read first, so the client gets this answer.",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))
)]
pub struct TooManyRequests(#[allow(dead_code)] ErrorBody);

/// 408, as every route with a request body may answer it.
#[derive(utoipa::ToResponse)]
#[response(
    description = "The request body did not arrive within the body read timeout (`body_timeout`); the connection is closed."
)]
pub struct RequestTimeout(#[allow(dead_code)] ErrorBody);

/// Result alias for handlers.
pub type ServerResult<T> = Result<T, ServerError>;
