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
    /// This box's name (`[node] name`), shown in the fleet view.
    pub node: String,
    /// Fleet mode: the per-number limit is checked by the store, fleet-wide, in the
    /// transaction that stores the message (`limiter` is then unused).
    pub fleet_rate: Option<FleetRate>,
}

/// The fleet-wide per-number limit: what [`crate::outbox::RateCheck`] carries.
pub struct FleetRate {
    /// The key of the number's hash (from the shared secret, so every box hashes alike).
    pub key: Vec<u8>,
    pub limit: u32,
    pub window_ms: i64,
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
        .route("/api/messages/{id}", get(admin::message_by_id))
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
