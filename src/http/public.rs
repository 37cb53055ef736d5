//! The public OwnID endpoint: signature first (over the raw bytes, before any parsing),
//! then the payload, the destination policy, the rate limit and the queue; `202` only once
//! the message is durably committed. Every refusal stores nothing.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::App;
use super::error::ApiError;
use crate::outbox::{NewMessage, OutboxError};
use crate::ownid;
use crate::sms::PhoneNumber;

/// Requests larger than this are refused with 413 before they are read whole; an OTP
/// request is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `POST <http.path>`: accept one OwnID message.
pub async fn accept(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => accept_bytes(&app, &headers, bytes).await,
        Err(_) => Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        }),
    };
    match result {
        Ok(()) => {
            app.metrics.request("accepted");
            StatusCode::ACCEPTED.into_response()
        }
        Err(error) => {
            app.metrics.request(error.outcome());
            tracing::info!(status = error.status().as_u16(), reason = %error.message(), "request refused");
            error.into_response()
        }
    }
}

async fn accept_bytes(app: &App, headers: &HeaderMap, body: Bytes) -> Result<(), ApiError> {
    let now_ms = super::now_ms();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = ownid::verify(
        &app.secret,
        &body,
        header("ownid-timestamp"),
        header("ownid-signature"),
        now_ms,
        app.max_skew,
    )
    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;

    let payload = ownid::parse_payload(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let number = PhoneNumber::parse(&payload.phone_number)
        .map_err(|e| ApiError::Unprocessable(format!("phoneNumber: {e}")))?;
    app.policy
        .check(number.as_str())
        .map_err(|e| ApiError::Unprocessable(format!("phoneNumber: {e}")))?;
    if payload.message_text.trim().is_empty() {
        return Err(ApiError::Unprocessable("messageText is empty".to_owned()));
    }
    let parts = crate::sms::count_parts(&payload.message_text, &app.sms);
    if parts > app.max_parts {
        return Err(ApiError::Unprocessable(format!(
            "messageText needs {parts} SMS parts; at most {} are allowed",
            app.max_parts
        )));
    }
    if !app.readiness.accepting(now_ms) {
        return Err(ApiError::Unavailable(
            "no modem has been ready for a while; the message was not accepted".to_owned(),
        ));
    }

    // The guard must not live across an await: take the slot and let go at once.
    let reserved = match app.limiter.lock() {
        Ok(mut limiter) => limiter.reserve(number.as_str(), now_ms),
        Err(_) => return Err(ApiError::Internal),
    };
    if let Err(limited) = reserved {
        return Err(ApiError::RateLimited {
            retry_after_secs: limited.retry_after_ms.div_ceil(1000),
        });
    }
    let message = NewMessage {
        to: number.as_str().to_owned(),
        text: payload.message_text,
        parts: u8::try_from(parts).unwrap_or(u8::MAX),
        concat_ref: rand::random::<u16>(),
        created_at_ms: now_ms as i64,
        expires_at_ms: (now_ms + app.ttl.as_millis() as u64) as i64,
        signature: Some(verified.signature().to_vec()),
    };
    match app.outbox.enqueue(message).await {
        Ok(id) => {
            tracing::info!(message_id = %id, to = %crate::mask::phone(number.as_str()), parts, "message accepted");
            app.wake.notify_one();
            Ok(())
        }
        Err(error) => {
            if let Ok(mut limiter) = app.limiter.lock() {
                limiter.release(number.as_str(), now_ms);
            }
            Err(match error {
                OutboxError::Duplicate => ApiError::Unauthorized(
                    "replayed request: this signature was already accepted".to_owned(),
                ),
                OutboxError::Full { .. } => ApiError::Unavailable(
                    "the outbox is full; the message was not accepted".to_owned(),
                ),
                // A full or failing disk passes: retry later, like any 503.
                OutboxError::Storage(error) => {
                    tracing::error!(%error, "storing a message failed");
                    ApiError::Unavailable(
                        "the message store cannot write now; the message was not accepted"
                            .to_owned(),
                    )
                }
                other => {
                    tracing::error!(error = %other, "storing a message failed");
                    ApiError::Internal
                }
            })
        }
    }
}
