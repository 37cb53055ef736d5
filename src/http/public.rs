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
use crate::outbox::{NewMessage, OutboxError, RateCheck};
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
    let now_ms = app.clock.now_ms();
    // The signature's timestamp is OwnID's wall clock: judged against ours, not the
    // service's steady time.
    let wall_ms = app.clock.wall_ms();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = ownid::verify(
        &app.secret,
        &body,
        header("ownid-timestamp"),
        header("ownid-signature"),
        wall_ms,
        app.max_skew,
    )
    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;

    let payload = ownid::parse_payload(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    submit(
        app,
        Submission {
            number: &payload.phone_number,
            text: payload.message_text,
            number_field: "phoneNumber",
            text_field: "messageText",
            signature: Some(verified.signature().to_vec()),
            dedup: None,
            now_ms,
        },
    )
    .await
    .map(|_| ())
}

/// One message to accept, from any endpoint: what [`submit`] checks and stores.
pub struct Submission<'a> {
    /// The number as the request gave it (E.164 expected).
    pub number: &'a str,
    pub text: String,
    /// The request's names of the number and text fields, for error messages.
    pub number_field: &'a str,
    pub text_field: &'a str,
    /// OwnID's verified signature (replay protection), if any.
    pub signature: Option<Vec<u8>>,
    /// A dedup key (a hash) and until when it holds: a second submission with the same
    /// key in that window is answered as accepted and stores nothing.
    pub dedup: Option<([u8; 32], i64)>,
    pub now_ms: u64,
}

/// What [`submit`] stored (or found already stored, for a duplicate).
#[derive(Clone)]
pub struct Submitted {
    pub id: crate::outbox::MessageId,
    pub parts: usize,
    pub duplicate: bool,
    /// The number as stored (E.164). Never log it; mask it.
    pub number: PhoneNumber,
}

/// The pipeline every endpoint shares once a request is authentic: number syntax and
/// policy, text and part count, readiness, the per-number rate limit, the durable enqueue
/// (with dedup when asked) and the dispatcher's wake-up. Nothing is stored on a refusal.
pub async fn submit(app: &App, s: Submission<'_>) -> Result<Submitted, ApiError> {
    let now_ms = s.now_ms;
    let number = PhoneNumber::parse(s.number)
        .map_err(|e| ApiError::Unprocessable(format!("{}: {e}", s.number_field)))?;
    // From here on the number is the canonical one: validated, dialled and rate-limited alike.
    let number = app
        .policy
        .canonical(number.as_str())
        .map_err(|e| ApiError::Unprocessable(format!("{}: {e}", s.number_field)))
        .and_then(|canonical| {
            PhoneNumber::parse(&canonical)
                .map_err(|e| ApiError::Unprocessable(format!("{}: {e}", s.number_field)))
        })?;
    if s.text.trim().is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "{} is empty",
            s.text_field
        )));
    }
    let parts = crate::sms::count_parts(&s.text, &app.sms);
    if parts > app.max_parts {
        return Err(ApiError::Unprocessable(format!(
            "{} needs {parts} SMS parts; at most {} are allowed",
            s.text_field, app.max_parts
        )));
    }
    if !app.readiness.accepting(now_ms) {
        return Err(ApiError::Unavailable(
            "no modem has been ready for a while; the message was not accepted".to_owned(),
        ));
    }

    // In a fleet the store checks the limit, fleet-wide, in the transaction that stores
    // the message; a single box keeps its in-memory limiter.
    let rate = app.fleet_rate.as_ref().map(|fleet| RateCheck {
        key: crate::ratelimit::keyed_hash(&fleet.key, number.as_str()),
        limit: fleet.limit,
        window_ms: fleet.window_ms,
    });
    if rate.is_none() {
        // The guard must not live across an await: take the slot and let go at once.
        let reserved = match app.limiter.lock() {
            Ok(mut limiter) => limiter.reserve(number.as_str(), now_ms),
            Err(_) => return Err(ApiError::Internal),
        };
        if let Err(limited) = reserved {
            return rate_limited(app, s.dedup, now_ms, parts, number, limited.retry_after_ms).await;
        }
    }
    let message = NewMessage {
        to: number.as_str().to_owned(),
        text: s.text,
        parts: u8::try_from(parts).unwrap_or(u8::MAX),
        concat_ref: rand::random::<u16>(),
        created_at_ms: now_ms as i64,
        expires_at_ms: (now_ms + app.ttl.as_millis() as u64) as i64,
        signature: s.signature,
        rate,
    };
    let stored = match s.dedup {
        None => app
            .outbox
            .enqueue(message)
            .await
            .map(|id| crate::outbox::Enqueued {
                id,
                duplicate: false,
            }),
        Some((key, until_ms)) => app.outbox.enqueue_dedup(message, key, until_ms).await,
    };
    match stored {
        Ok(enqueued) if enqueued.duplicate => {
            // A platform's retry: it gets its success answer, the number keeps its slot.
            if app.fleet_rate.is_none() {
                if let Ok(mut limiter) = app.limiter.lock() {
                    limiter.release(number.as_str(), now_ms);
                }
            }
            tracing::info!(message_id = %enqueued.id, to = %crate::mask::phone(number.as_str()), "duplicate of an accepted message; nothing sent again");
            Ok(Submitted {
                id: enqueued.id,
                parts,
                duplicate: true,
                number,
            })
        }
        Ok(enqueued) => {
            let id = enqueued.id;
            tracing::info!(message_id = %id, to = %crate::mask::phone(number.as_str()), parts, "message accepted");
            Ok(Submitted {
                id,
                parts,
                duplicate: false,
                number,
            })
        }
        Err(OutboxError::RateLimited { retry_after_ms }) => {
            rate_limited(app, s.dedup, now_ms, parts, number, retry_after_ms).await
        }
        Err(error) => {
            if app.fleet_rate.is_none() {
                if let Ok(mut limiter) = app.limiter.lock() {
                    limiter.release(number.as_str(), now_ms);
                }
            }
            if matches!(error, OutboxError::Unavailable { .. })
                && app.readiness.set_store_reachable(false)
            {
                tracing::error!(%error, "the message store cannot be reached; refusing requests with 503");
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
                // PostgreSQL unreachable or the connection lost: nothing was committed.
                OutboxError::Unavailable { .. } => ApiError::Unavailable(
                    "the message store cannot be reached now; the message was not accepted"
                        .to_owned(),
                ),
                other => {
                    tracing::error!(error = %other, "storing a message failed");
                    ApiError::Internal
                }
            })
        }
    }
}

/// The answer to a number that used its allowance: `429`, unless the request is a
/// platform's retry of a message already accepted (then its success answer, nothing sent
/// again).
async fn rate_limited(
    app: &App,
    dedup: Option<([u8; 32], i64)>,
    now_ms: u64,
    parts: usize,
    number: PhoneNumber,
    retry_after_ms: u64,
) -> Result<Submitted, ApiError> {
    if let Some((key, _)) = dedup {
        if let Ok(Some(id)) = app.outbox.dedup_lookup(key, now_ms as i64).await {
            tracing::info!(message_id = %id, to = %crate::mask::phone(number.as_str()), "duplicate of an accepted message; nothing sent again");
            return Ok(Submitted {
                id,
                parts,
                duplicate: true,
                number,
            });
        }
    }
    Err(ApiError::RateLimited {
        retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
    })
}
