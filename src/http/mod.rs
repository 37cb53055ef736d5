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

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::modem::{ModemHandle, Readiness};
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
    pub modems: Vec<ModemHandle>,
    /// The service's clock: OwnID's timestamps, rate limits and TTLs are judged by it.
    pub clock: Clock,
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
