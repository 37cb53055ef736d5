//! HTTP: the public OwnID endpoint (`public`) and the admin listener (`admin`): health,
//! readiness, Prometheus metrics, JSON status and the status page. Only this layer knows
//! JSON wire shapes; `error` maps every refusal to its status in one place.

pub mod admin;
pub mod error;
pub mod public;
pub mod serve;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::dispatch::Readiness;
use crate::metrics::Metrics;
use crate::modem::ModemHandle;
use crate::outbox::Outbox;
use crate::ownid::SharedSecret;
use crate::policy::NumberPolicy;
use crate::ratelimit::RateLimiter;
use crate::sms::SubmitOptions;

/// Everything the handlers share.
pub struct App {
    pub secret: SharedSecret,
    pub max_skew: Duration,
    pub policy: NumberPolicy,
    pub max_parts: usize,
    /// The codec options, for counting a text's parts exactly as they will be sent.
    pub sms: SubmitOptions,
    /// How long an accepted message may wait before it expires unsent.
    pub ttl: Duration,
    pub limiter: Mutex<RateLimiter>,
    pub outbox: Outbox,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    /// Wakes the dispatcher when a message was accepted.
    pub wake: Arc<Notify>,
    pub modems: Vec<ModemHandle>,
}

/// The public listener's routes: only the OwnID path answers.
pub fn public_router(app: Arc<App>, path: &str) -> Router {
    Router::new()
        .route(path, post(public::accept))
        .fallback(not_found)
        .with_state(app)
}

/// The admin listener's routes.
pub fn admin_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(admin::status_page))
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(admin::metrics))
        .route("/api/status", get(admin::status_json))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "not found" })),
    )
        .into_response()
}

/// Wall-clock time in Unix milliseconds: the unit of OwnID's timestamps and of the outbox.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
