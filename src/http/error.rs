//! The one place where a refusal becomes an HTTP status: every way the public endpoint can
//! say no, with the status, the JSON body `{"error": "..."}` and the metrics label.
//! Internal details (SQLite errors, file paths) are logged, never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused OwnID request. Nothing is stored when one of these is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Malformed JSON, missing fields, wrong types.
    BadRequest(String),
    /// Missing or bad signature, stale or future timestamp, replay.
    Unauthorized(String),
    /// The body is larger than the endpoint accepts.
    TooLarge { limit: usize },
    /// The request is well-formed but cannot be sent (number, text, parts).
    Unprocessable(String),
    /// The destination asked too often.
    RateLimited { retry_after_secs: u64 },
    /// The outbox is full or no modem has been ready for too long.
    Unavailable(String),
    /// Storing failed; the detail went to the log.
    Internal,
    /// No such resource (Twilio's `GET …/Messages/{Sid}.json`).
    NotFound(String),
}

impl ApiError {
    /// The label under which the outcome is counted in `smsbridge_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal => "internal_error",
            ApiError::NotFound(_) => "not_found",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }

    /// The text of the `error` field.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Unprocessable(m)
            | ApiError::Unavailable(m)
            | ApiError::NotFound(m) => m.clone(),
            ApiError::TooLarge { limit } => format!("request body is larger than {limit} bytes"),
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many messages to this phone number; try again in {retry_after_secs} s")
            }
            ApiError::Internal => "internal error; the message was not accepted".to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message() }));
        let mut response = (self.status(), body).into_response();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable(_) => Some(30),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
