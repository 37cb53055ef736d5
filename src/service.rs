//! `smsbridge serve`: wires the configuration, the outbox, the modem workers (or built-in
//! simulated modems), the dispatcher and the two HTTP listeners together, tells systemd
//! when the service is ready and that it still works, and shuts it all down in order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, ConfigError, SecretError};
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::http::{self, App};
use crate::metrics::Metrics;
use crate::modem::{ModemConfig, ModemHandle, ModemState, Readiness};
use crate::outbox::{Outbox, OutboxError};
use crate::policy::NumberPolicy;
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::sms::SubmitOptions;

mod fleet;

/// Why the service could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Outbox(#[from] OutboxError),
    /// Fleet mode: PostgreSQL refused this box (a bad URL, the password, permissions,
    /// TLS). `origin` names where the URL came from (`[store] url_file …`).
    #[error("{origin}: {}: {message}", problem_words(*.problem))]
    Store {
        origin: String,
        problem: crate::outbox::ConnectProblem,
        message: String,
    },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// An `[[endpoint]]` secret file could not be read or used.
    #[error("{0}")]
    Endpoint(String),
    #[error("cannot start the simulated modem: {0}")]
    Simulator(std::io::Error),
    /// A second instance, or a damaged outbox.
    #[error(transparent)]
    State(#[from] crate::statedir::StateError),
    /// A shared secret too short to be a key.
    #[error(
        "the shared secret from {origin} is only {len} bytes: that is no key; copy the Shared Secret from the OwnID console (base64 of 32 bytes) into it"
    )]
    WeakSecret {
        origin: crate::config::SecretSource,
        len: usize,
    },
}

impl StartError {
    /// Errors that a restart cannot fix (the unit stops restarting on them).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            StartError::Config(_)
                | StartError::Secret(_)
                | StartError::State(_)
                | StartError::WeakSecret { .. }
                | StartError::Endpoint(_)
        ) || matches!(
            self,
            StartError::Store { problem, .. } if *problem != crate::outbox::ConnectProblem::Other
        )
    }
}

/// What an operator reads for each way PostgreSQL refuses a box.
fn problem_words(problem: crate::outbox::ConnectProblem) -> &'static str {
    use crate::outbox::ConnectProblem;
    match problem {
        ConnectProblem::BadUrl => {
            "not a usable PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
        }
        ConnectProblem::Unreachable => "PostgreSQL cannot be reached",
        ConnectProblem::Auth => "PostgreSQL refused the role or its password",
        ConnectProblem::Permission => {
            "the role lacks a permission (it must own the database or have CREATE on it)"
        }
        ConnectProblem::Tls => "the TLS connection to PostgreSQL failed (see sslmode in the URL)",
        ConnectProblem::Other => "PostgreSQL refused to start the store",
    }
}

/// How to start: `--simulator` replaces the configured modems with simulated ones.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub simulator: bool,
    /// Replaces every modem's timeouts (tests use short ones).
    pub modem_timeouts: Option<crate::modem::ModemTimeouts>,
    /// The clock every part of the service decides by (tests pass one on tokio's paused
    /// time); the system's by default.
    pub clock: Clock,
}

/// A running service.
pub struct Service {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub app: Arc<App>,
    /// The simulated modems of `--simulator`, kept alive as long as the service.
    pub simulators: Vec<crate::sim::pty::SimHandle>,
    shutdown: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    servers: Vec<JoinHandle<()>>,
    /// `state_dir` is this service's until it is dropped.
    _state_lock: crate::statedir::StateLock,
    state_dir: PathBuf,
}

/// The codec options the configuration asks for (validated and typed by `config`).
pub fn submit_options(config: &Config) -> SubmitOptions {
    SubmitOptions {
        smsc: config.sms.smsc.clone(),
        national_languages: config.sms.national_languages.clone(),
        concat_16bit: config.sms.concat_16bit,
        ..SubmitOptions::default()
    }
}

/// Starts everything and returns once the listeners are bound, the outbox is open and the
/// modem workers are running.
pub async fn start(config: Config, options: StartOptions) -> Result<Service, StartError> {
    let clock = options.clock.clone();
    let secret = config.load_secret()?;
    tracing::info!(source = %secret.source, "shared secret loaded");
    let hygiene = crate::statedir::hygiene_warnings(&config, &secret).map_err(|weak| {
        StartError::WeakSecret {
            origin: weak.origin,
            len: weak.len,
        }
    })?;
    for warning in hygiene {
        tracing::warn!("{warning}");
    }
    let sms = submit_options(&config);
    let endpoints = config
        .endpoint
        .iter()
        .map(|e| e.load().map_err(StartError::Endpoint))
        .collect::<Result<Vec<_>, _>>()?;

    // One instance per state_dir, and a sound outbox, before anything is opened for writing.
    let state_lock = crate::statedir::lock(&config.state_dir)?;
    let node = config.node_name();
    let postgres = config.store.backend == crate::config::StoreBackend::Postgres;
    // Fleet mode binds the listeners first: they answer 503 while the database is away.
    let mut early = None;
    let outbox = if postgres {
        let mut public = bind("public listener (http.listen)", config.http.listen).await?;
        let mut admin = bind(
            "admin listener (http.admin_listen)",
            config.http.admin_listen,
        )
        .await?;
        let interim_limits = (
            listener_limits(&config, http::public::MAX_BODY_BYTES),
            http::serve::Limits {
                allowed_hosts: Some(admin_hosts(
                    &config,
                    admin.local_addr().unwrap_or(config.http.admin_listen),
                )),
                ..listener_limits(&config, 1024)
            },
        );
        let outbox =
            fleet::open_postgres(&config, &node, &mut public, &mut admin, interim_limits).await?;
        tracing::info!(node = %node, lease_s = config.store.lease.as_secs(), "fleet mode: the outbox is the shared PostgreSQL database");
        early = Some((public, admin));
        outbox
    } else {
        let outbox_path = config.outbox_path();
        let checked = outbox_path.clone();
        let took = tokio::task::spawn_blocking(move || {
            crate::statedir::check_integrity_unless_clean(&checked)
        })
        .await
        .map_err(|e| StartError::Outbox(OutboxError::Storage(e.to_string())))??;
        match took {
            Some(took) => tracing::info!(ms = took.as_millis() as u64, "outbox integrity checked"),
            None => {
                // A clean restart: the same check, in the background, on its own connection.
                let checked = outbox_path.clone();
                tokio::task::spawn_blocking(move || {
                    match crate::statedir::check_integrity(&checked) {
                        Ok(took) => tracing::info!(
                            ms = took.as_millis() as u64,
                            "outbox integrity checked in the background"
                        ),
                        Err(error) => tracing::error!(%error, "outbox integrity check failed"),
                    }
                });
            }
        }
        let options = config.outbox_options();
        tokio::task::spawn_blocking(move || Outbox::open(&outbox_path, options))
            .await
            .map_err(|e| StartError::Outbox(OutboxError::Storage(e.to_string())))??
    };
    // Messages accepted from now on are encoded as counted now, whatever a later
    // configuration says (issue 9 item 2).
    outbox.set_encoding_plan(Some(crate::dispatch::plan_of(&sms)));
    outbox.set_node_name(&node);
    let recovered = outbox.recover(clock.now_ms() as i64).await?;
    if !postgres {
        for warning in
            crate::statedir::permission_warnings(&config.state_dir, &config.outbox_path())
        {
            tracing::warn!("{warning}");
        }
    }
    if recovered.requeued > 0 || recovered.queued > 0 || recovered.completed > 0 {
        tracing::warn!(
            requeued = recovered.requeued,
            completed = recovered.completed,
            queued = recovered.queued,
            "resuming messages accepted before the last stop"
        );
    }

    let (simulators, mut modem_configs) = if options.simulator {
        start_simulators(&config).await?
    } else {
        (Vec::new(), config.modem_configs()?)
    };
    if let Some(timeouts) = &options.modem_timeouts {
        for modem in &mut modem_configs {
            modem.timeouts = timeouts.clone();
        }
    }
    if !options.simulator {
        let ports: Vec<PathBuf> = modem_configs.iter().map(|m| m.port.clone()).collect();
        for warning in crate::modemmanager::check(&ports) {
            tracing::warn!("{warning}");
        }
    }
    let (events_tx, events_rx) = mpsc::channel(256);
    let status_reports: Vec<bool> = modem_configs.iter().map(|m| m.status_reports).collect();
    let modems: Vec<ModemHandle> = modem_configs
        .into_iter()
        .map(|m| crate::modem::spawn(m, events_tx.clone()))
        .collect();
    if modems.is_empty() {
        tracing::warn!(
            "no [[modem]] is configured: requests will be refused with 503 after the grace period"
        );
    }

    let (public, admin) = match early {
        Some(bound) => bound,
        None => (
            bind("public listener (http.listen)", config.http.listen).await?,
            bind(
                "admin listener (http.admin_listen)",
                config.http.admin_listen,
            )
            .await?,
        ),
    };
    let public_addr = public.local_addr().map_err(|source| StartError::Bind {
        what: "public listener",
        addr: config.http.listen,
        source,
    })?;
    let admin_addr = admin.local_addr().map_err(|source| StartError::Bind {
        what: "admin listener",
        addr: config.http.admin_listen,
        source,
    })?;

    let metrics = Arc::new(Metrics::default());
    if postgres {
        metrics.set_node(&node);
    }
    let readiness = Arc::new(Readiness::new(config.limits.no_modem_grace, clock.now_ms()));
    let limiter = rate_limiter(&config, &secret.secret, &clock);
    // In a fleet the store counts each number's messages for every box; the number is
    // named by the same keyed hash on each (the key comes from the shared secret).
    let fleet_rate = postgres.then(|| http::FleetRate {
        key: rate_key(&secret.secret).into_bytes(),
        limit: config.limits.per_number_count,
        window_ms: config.limits.per_number_window.as_millis() as i64,
    });
    let app = Arc::new(App {
        secret: secret.secret,
        max_skew: config.ownid.max_clock_skew,
        policy: NumberPolicy {
            allowed_country_codes: config.limits.allowed_country_codes.clone(),
            allow_premium_rate: config.limits.allow_premium_rate,
            allow_non_mobile: config.limits.allow_non_mobile,
        },
        max_parts: usize::from(config.limits.max_parts),
        sms: sms.clone(),
        ttl: config.queue.ttl,
        limiter: Mutex::new(limiter),
        outbox: outbox.clone(),
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        modems: modems.clone(),
        clock: clock.clone(),
        node: node.clone(),
        fleet_rate,
    });

    let (shutdown, shutdown_rx) = watch::channel(false);
    let dispatcher = tokio::spawn(crate::dispatch::run(Dispatcher {
        outbox: outbox.clone(),
        modems: modems.clone(),
        status_reports,
        events: events_rx,
        readiness,
        metrics,
        config: DispatchConfig {
            sms,
            ..DispatchConfig::default()
        },
        clock: clock.clone(),
        shutdown: shutdown_rx.clone(),
    }));
    let servers = vec![
        serve(
            public,
            http::public_router(app.clone(), &config.http.path)
                .merge(crate::endpoint::http::router(app.clone(), endpoints)),
            listener_limits(&config, http::public::MAX_BODY_BYTES),
            shutdown_rx.clone(),
            "public",
        ),
        serve(
            admin,
            http::admin_router(app.clone()),
            // The admin endpoints are all GETs: no body worth reading.
            http::serve::Limits {
                allowed_hosts: Some(admin_hosts(&config, admin_addr)),
                ..listener_limits(&config, 1024)
            },
            shutdown_rx.clone(),
            "admin",
        ),
    ];
    spawn_maintenance(
        outbox.clone(),
        config.queue.retention,
        clock.clone(),
        shutdown_rx.clone(),
    );
    if !postgres {
        spawn_rate_saver(app.clone(), config.state_dir.clone(), shutdown_rx.clone());
    }
    if let Some(lease) = outbox.lease_duration() {
        // Only a fleet beats: a single box's page reads its modems directly, and an idle
        // box must not wake every few seconds for nothing.
        fleet::spawn_heartbeat(
            app.clone(),
            fleet::heartbeat_period(lease),
            shutdown_rx.clone(),
        );
        // SQLite expires messages from the dispatcher's timer; a fleet also takes over
        // the leases of boxes that stopped renewing them.
        fleet::spawn_sweep(
            outbox.clone(),
            app.metrics.clone(),
            app.readiness.clone(),
            fleet::sweep_period(lease),
            clock.clone(),
            shutdown_rx.clone(),
        );
    }
    tracing::info!(public = %public_addr, path = %config.http.path, admin = %admin_addr, modems = modems.len(), "smsbridge is ready");
    Ok(Service {
        public_addr,
        admin_addr,
        app,
        simulators,
        shutdown,
        dispatcher,
        servers,
        _state_lock: state_lock,
        state_dir: config.state_dir.clone(),
    })
}

impl Service {
    /// Stops accepting requests, lets the sends under way finish (they are recorded, not
    /// left half-done), and closes the outbox.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        if self.app.fleet_rate.is_some() {
            // A fleet's windows live in the database.
        } else if let Ok(limiter) = self.app.limiter.lock() {
            if let Err(error) = crate::statedir::save_rate_windows(
                &self.state_dir,
                &limiter,
                self.app.clock.now_ms(),
            ) {
                tracing::warn!(%error, "saving the rate-limit windows failed");
            }
        }
        let _ = self.dispatcher.await;
        if let Err(error) = self.app.outbox.shutdown().await {
            tracing::error!(%error, "closing the outbox failed");
        }
        for sim in self.simulators {
            sim.shutdown().await;
        }
    }

    /// One line for systemd's `STATUS=`: how many modems are ready and the queue depth.
    pub fn status_line(&self) -> String {
        let states: Vec<ModemState> = self
            .app
            .modems
            .iter()
            .map(|m| m.status().borrow().state)
            .collect();
        let ready = states.iter().filter(|s| s.is_working()).count();
        format!(
            "{ready}/{} modems ready; {} messages waiting",
            states.len(),
            self.app.outbox.counts().depth()
        )
    }

    /// The watchdog's check that the service really works: the outbox writer answers and
    /// the dispatcher is running.
    pub async fn healthy(&self) -> bool {
        let outbox_answers = tokio::time::timeout(
            Duration::from_secs(5),
            self.app.outbox.next_due_at(self.app.clock.now_ms() as i64),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        // An outcome the store refused is held until it is recorded: not healthy meanwhile.
        outbox_answers
            && self.app.readiness.store_reachable()
            && !self.dispatcher.is_finished()
            && self.app.readiness.outcomes_pending() == 0
            && self.app.outbox.writable()
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

/// The `Host:` names the admin listener answers to.
fn admin_hosts(config: &Config, bound: SocketAddr) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    hosts.push(bound.ip().to_string());
    hosts.push(config.http.admin_listen.ip().to_string());
    hosts.extend(config.http.admin_hosts.iter().cloned());
    hosts
}

/// One listener's limits from `[http]`.
fn listener_limits(config: &Config, max_body_bytes: usize) -> http::serve::Limits {
    let l = &config.http.limits;
    http::serve::Limits {
        header_timeout: l.header_timeout,
        body_timeout: l.body_timeout,
        max_header_bytes: l.max_header_bytes,
        max_body_bytes,
        max_connections: l.max_connections,
        drain: l.drain_timeout,
        allowed_hosts: None,
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: http::serve::Limits,
    shutdown: watch::Receiver<bool>,
    what: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(http::serve::serve(listener, router, limits, shutdown, what))
}

/// The per-number limiter, keyed by a hash derived from the shared secret (no number is
/// written to the disk) and holding the windows saved before the last stop.
fn rate_limiter(
    config: &Config,
    secret: &crate::ownid::SharedSecret,
    clock: &crate::clock::Clock,
) -> RateLimiter {
    let key = rate_key(secret);
    let mut limiter = RateLimiter::keyed(
        RateLimit {
            count: config.limits.per_number_count,
            window_ms: config.limits.per_number_window.as_millis() as u64,
        },
        key.as_bytes(),
    );
    let restored =
        crate::statedir::load_rate_windows(&config.state_dir, &mut limiter, clock.now_ms());
    if restored > 0 {
        tracing::info!(numbers = restored, "rate-limit windows restored");
    }
    limiter
}

/// The key of the numbers' hashes in the rate-limit windows (saved ones, and a fleet's
/// shared table): derived from the shared secret, so every box of a fleet has the same.
fn rate_key(secret: &crate::ownid::SharedSecret) -> String {
    crate::ownid::sign(secret, b"smsbridge rate-limit windows", "1")
}

/// Saves the rate-limit windows every 10 s and at stop, so a restart (even kill -9, within
/// 10 s) does not reset the per-number limits.
fn spawn_rate_saver(app: Arc<App>, dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // Service::stop saves them a last time, once no request can change them.
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let saved = match app.limiter.lock() {
                Ok(limiter) => {
                    crate::statedir::save_rate_windows(&dir, &limiter, app.clock.now_ms())
                }
                Err(_) => return,
            };
            if let Err(error) = saved {
                tracing::warn!(%error, "saving the rate-limit windows failed");
            }
        }
    });
}

/// Deletes final messages past the retention period, hourly.
fn spawn_maintenance(
    outbox: Outbox,
    retention: Duration,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = hourly.tick() => {}
                _ = shutdown.changed() => return,
            }
            let cutoff = clock.now_ms() as i64 - retention.as_millis() as i64;
            match outbox.purge(cutoff).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "old messages deleted"),
                Err(error) => tracing::error!(%error, "purging old messages failed"),
            }
        }
    });
}

/// Starts the simulated modems of `--simulator` on pseudo-terminals under the state
/// directory and returns the modem configurations that point at them.
async fn start_simulators(
    config: &Config,
) -> Result<(Vec<crate::sim::pty::SimHandle>, Vec<ModemConfig>), StartError> {
    let dir = config.state_dir.join("simulator");
    std::fs::create_dir_all(&dir).map_err(StartError::Simulator)?;
    let profile = config.simulator.profile;
    let mut sims = Vec::new();
    let mut modems = Vec::new();
    for i in 0..config.simulator.modems {
        let name = format!("sim{i}");
        let link = dir.join(&name);
        let mut modem = crate::sim::model::ModelConfig::new(profile);
        modem.send_latency = config.simulator.send_latency;
        modem.seed = u64::from(i);
        let sim = crate::sim::pty::spawn(crate::sim::pty::SimConfig {
            link: Some(link.clone()),
            modem,
        })
        .await
        .map_err(StartError::Simulator)?;
        tracing::info!(modem = %name, port = %link.display(), profile = %config.simulator.profile, "simulated modem attached");
        modems.push(ModemConfig {
            name,
            port: link,
            baud: 115_200,
            pin: None,
            imei: None,
            status_reports: true,
            smsc_configured: false,
            timeouts: Default::default(),
        });
        sims.push(sim);
    }
    Ok((sims, modems))
}
