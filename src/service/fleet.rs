//! Fleet mode's part of `serve` (`[store] backend = "postgres"`): opening the shared
//! PostgreSQL store (and, while the database cannot be reached at start, answering `503`
//! on both listeners until it can), the heartbeat that puts this box and its modems in the
//! fleet view, and the sweep that takes over the leases of boxes that stopped renewing
//! them. The heartbeat also runs on SQLite (it costs nothing there) so the store's view of
//! this box's modems is the same on both backends.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::StartError;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::config::Config;
use crate::http::{self, App};
use crate::metrics::Metrics;
use crate::modem::Readiness;
use crate::outbox::{ConnectProblem, Heartbeat, Outbox, OutboxError, PgOptions};

/// How often a box tells the fleet it is alive and what its modems do.
pub(super) fn heartbeat_period(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(5))
}

/// How often a box sweeps: lease/3, at most 4 s, so a dead box's messages are taken over
/// within `lease_secs` + 5 s of its death (its lease lapses at most `lease_secs` after its
/// last renewal, then the next sweep of any box takes the message over).
pub(super) fn sweep_period(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(4))
}

/// Opens the fleet's PostgreSQL store. A bad URL, a refused password, missing permissions
/// or a TLS failure stop the start with one line naming where the URL came from (a
/// configuration error: exit 78). An unreachable database is waited for: meanwhile both
/// listeners answer `503` (`/readyz` says why), and the start goes on by itself once the
/// database answers.
pub(super) async fn open_postgres(
    config: &Config,
    node: &str,
    public: &mut TcpListener,
    admin: &mut TcpListener,
    limits: (http::serve::Limits, http::serve::Limits),
) -> Result<Outbox, StartError> {
    let (url, origin) = config.load_postgres_url()?;
    let options = || PgOptions {
        node: node.to_owned(),
        lease: config.store.lease,
        // `[queue]`'s depth limit and retry schedule, as on SQLite.
        outbox: config.outbox_options(),
        ..PgOptions::default()
    };
    let mut interim: Option<Interim> = None;
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    let mut failures = 0u32;
    let opened = loop {
        match Outbox::open_postgres(&url, options()).await {
            Ok(outbox) => break outbox,
            Err(OutboxError::Connect {
                problem: ConnectProblem::Unreachable,
                message,
            }) => {
                if interim.is_none() {
                    tracing::error!(
                        "{origin}: PostgreSQL cannot be reached ({message}); requests get 503 and /readyz fails until it answers, retrying by itself"
                    );
                    interim = Some(Interim::start(public, admin, &limits, &message)?);
                } else {
                    tracing::debug!(%message, "PostgreSQL still unreachable");
                }
                tokio::time::sleep(backoff.delay(failures)).await;
                failures = failures.saturating_add(1);
            }
            Err(OutboxError::Connect { problem, message }) => {
                return Err(StartError::Store {
                    origin: origin.to_string(),
                    problem,
                    message,
                });
            }
            Err(other) => return Err(StartError::Outbox(other)),
        }
    };
    if let Some(interim) = interim {
        tracing::info!("PostgreSQL answers now; starting");
        interim.stop().await;
    }
    Ok(opened)
}

/// The listeners' answers while the database is unreachable at start.
struct Interim {
    shutdown: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Interim {
    /// Serves the `503` answers on duplicates of the two listeners (the originals stay
    /// with the caller, bound, for the service proper).
    fn start(
        public: &mut TcpListener,
        admin: &mut TcpListener,
        limits: &(http::serve::Limits, http::serve::Limits),
        why: &str,
    ) -> Result<Interim, StartError> {
        let (shutdown, rx) = watch::channel(false);
        let why = format!("starting: PostgreSQL cannot be reached yet ({why})\n");
        let readyz = {
            let why = why.clone();
            move || async move { (axum::http::StatusCode::SERVICE_UNAVAILABLE, why) }
        };
        let refuse = || async {
            http::error::ApiError::Unavailable(
                "starting: the message store cannot be reached yet; the message was not accepted"
                    .to_owned(),
            )
            .into_response()
        };
        let admin_router = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .fallback(refuse);
        let public_router = Router::new().fallback(refuse);
        let servers = vec![
            tokio::spawn(http::serve::serve(
                duplicate(public)?,
                public_router,
                limits.0.clone(),
                rx.clone(),
                "public",
            )),
            tokio::spawn(http::serve::serve(
                duplicate(admin)?,
                admin_router,
                limits.1.clone(),
                rx,
                "admin",
            )),
        ];
        Ok(Interim { shutdown, servers })
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            let _ = server.await;
        }
    }
}

/// A second handle on the same listening socket.
fn duplicate(listener: &mut TcpListener) -> Result<TcpListener, StartError> {
    let failed = |source: std::io::Error| StartError::Bind {
        what: "listener (duplicating it)",
        addr: listener
            .local_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
        source,
    };
    // tokio lends out no raw duplicate: go through the std socket and back.
    let fd = {
        use std::os::fd::AsFd;
        listener.as_fd().try_clone_to_owned().map_err(failed)?
    };
    let std_listener = std::net::TcpListener::from(fd);
    std_listener.set_nonblocking(true).map_err(failed)?;
    TcpListener::from_std(std_listener).map_err(failed)
}

/// Beats every `period`: this box's name (the store knows it) and its modems in brief,
/// and keeps `/readyz`'s "the store is reachable" current.
pub(super) fn spawn_heartbeat(
    app: Arc<App>,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            // A modem sends one message at a time: those sending are this box's messages
            // under way.
            let sending = app
                .modems
                .iter()
                .filter(|m| m.status().borrow().state == crate::modem::ModemState::Sending)
                .count() as u64;
            let beat = Heartbeat {
                modems: http::admin::modems_brief_json(&app),
                queue_local: sending,
            };
            let result = app.outbox.heartbeat(beat).await;
            note_reachability(&app.readiness, &result, "heartbeat");
        }
    });
}

/// Takes over lapsed leases and expires messages past their TTL every `period` (lease/3),
/// on every box at once: the store makes it idempotent.
pub(super) fn spawn_sweep(
    outbox: Outbox,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    period: Duration,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let result = outbox.sweep(clock.now_ms() as i64).await;
            if let Ok(swept) = &result {
                if swept.taken_over > 0 {
                    metrics.taken_over(swept.taken_over);
                    tracing::warn!(
                        taken_over = swept.taken_over,
                        "took over messages whose box stopped renewing its lease"
                    );
                }
                if swept.expired > 0 {
                    tracing::warn!(count = swept.expired, "messages expired unsent");
                }
            }
            note_reachability(&readiness, &result, "sweep");
        }
    });
}

/// Keeps readiness's "the store is reachable" from a call's result; logs each change once.
fn note_reachability<T>(readiness: &Readiness, result: &Result<T, OutboxError>, what: &str) {
    match result {
        Ok(_) => {
            if !readiness.set_store_reachable(true) {
                tracing::info!("the message store answers again");
            }
        }
        Err(error @ OutboxError::Unavailable { .. }) => {
            if readiness.set_store_reachable(false) {
                tracing::error!(%error, "the message store cannot be reached: /readyz fails and requests get 503 until it answers");
            }
        }
        Err(error) => tracing::error!(%error, "{what} failed"),
    }
}
