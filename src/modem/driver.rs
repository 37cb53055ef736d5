//! The modem worker: the only code that opens a tty. One task per modem owns its port,
//! runs the initialisation, sends messages one at a time, checks the modem's health while
//! idle, resets it when it stops answering, and reopens the port with backoff when it
//! vanishes. The rest of the program sees it through a [`ModemHandle`].
//!
//! It also holds the one-shot helpers the CLI uses ([`probe`], [`send_message`]): open a
//! port, initialise, do one thing, close.
//!
//! The state machine, as published on the status channel:
//!
//! ```text
//!  Connecting ──open fails──▶ Disconnected ──backoff──▶ Connecting
//!      │ open
//!      ▼
//!  Initialising ──SIM/IMEI/registration/no answer──▶ Failing ──backoff──▶ Connecting
//!      │ registered
//!      ▼
//!    Ready ◀──▶ Sending          Ready ──registration lost──▶ Failing ──registered──▶ Ready
//!    Sending ──the modem's fault (+CMS 330, no SIM, ...)──▶ Failing ──backoff──▶ Connecting
//!      │ port lost (EIO/EOF)          │ 3 unanswered commands: AT+CFUN=1,1 / ATZ, reopen
//!      ▼                              ▼
//!  Disconnected ──backoff──▶ Connecting
//! ```
//!
//! Architecture invariant: the configured port path is opened afresh on every attempt and
//! never canonicalised or cached, so a `/dev/serial/by-id/` or udev link that now points to
//! another `ttyUSBn` is followed.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{MissedTickBehavior, interval_at, sleep};
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::at::engine::{AtEngine, AtError, EngineConfig};
use crate::at::parse::SimState;
use crate::modem::backoff::Backoff;
use crate::modem::error::{InitError, ModemError, OpenError};
use crate::modem::session::{Description, InitOptions, Session, UrcEffect, sim_state_text};
use crate::modem::{
    ModemConfig, ModemEvent, ModemHandle, ModemIdentity, ModemState, ModemStatus, Registrations,
    SendError, SendJob,
};
use crate::sms::SubmitPdu;

/// Unanswered commands in a row after which an idle modem is reset.
const SILENT_LIMIT: u32 = 3;

/// How many send requests wait in line for a busy modem.
const JOB_QUEUE: usize = 8;

/// Starts the worker of one modem and returns its handle. The worker runs until every
/// clone of the handle is dropped; it never gives up on the port by itself.
///
/// Must be called inside a Tokio runtime.
pub fn spawn(config: ModemConfig, events: mpsc::Sender<ModemEvent>) -> ModemHandle {
    let (jobs_tx, jobs) = mpsc::channel(JOB_QUEUE);
    let (status_tx, status) = watch::channel(ModemStatus::new(&config.name));
    let span = info_span!("modem", modem = %config.name);
    let name = config.name.clone();
    let worker = Worker {
        config,
        events,
        jobs,
        status: status_tx,
        pin_rejected: false,
        faulted: false,
    };
    tokio::spawn(worker.run().instrument(span));
    ModemHandle {
        name,
        jobs: jobs_tx,
        status,
    }
}

/// What `probe` found out about a modem.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub identity: ModemIdentity,
    /// The SIM's state in words (`ready`, `PIN required`, ...).
    pub sim: String,
    /// The registration in words (`registered, home network`, `searching`, ...).
    pub registration: String,
    pub operator: Option<String>,
    /// From `AT+CSQ`; `None` when unknown.
    pub signal_dbm: Option<i32>,
    /// The SIM's service centre in words (a number, or none with the fix, or unknown).
    pub smsc: String,
}

impl ProbeReport {
    /// The report as `(label, value)` lines, in the order `smsbridge probe` prints them.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let or_unknown = |value: &Option<String>| value.clone().unwrap_or_else(|| "unknown".into());
        let id = &self.identity;
        let signal = match self.signal_dbm {
            Some(dbm) => format!("{dbm} dBm ({}/4 bars)", signal_bars(dbm)),
            None => "unknown".to_owned(),
        };
        vec![
            ("manufacturer", or_unknown(&id.manufacturer)),
            ("model", or_unknown(&id.model)),
            ("firmware", or_unknown(&id.firmware)),
            ("IMEI", or_unknown(&id.imei)),
            ("IMSI", or_unknown(&id.imsi)),
            ("ICCID", or_unknown(&id.iccid)),
            ("SIM", self.sim.clone()),
            ("registration", self.registration.clone()),
            ("operator", or_unknown(&self.operator)),
            ("signal", signal),
            ("SMSC", self.smsc.clone()),
        ]
    }
}

/// Signal bars as phones show them, from 0 to 4, for a signal in dBm (the usual GSM
/// thresholds: -73 dBm and better is excellent, below -109 dBm is hardly usable).
pub fn signal_bars(dbm: i32) -> u8 {
    match dbm {
        d if d >= -73 => 4,
        d if d >= -83 => 3,
        d if d >= -93 => 2,
        d if d >= -109 => 1,
        _ => 0,
    }
}

/// Opens `config.port`, describes the modem (without waiting for registration, and without
/// failing on a locked or missing SIM), and closes the port. Enters `config.pin` if the SIM
/// asks for it.
pub async fn probe(config: &ModemConfig) -> Result<ProbeReport, ModemError> {
    let span = info_span!("modem", modem = %config.name);
    async {
        let mut session = open_session(config, discard_events())?;
        let described = session.describe(config.pin.as_deref()).await;
        session.close().await;
        let Description {
            identity,
            sim,
            registration,
            operator,
            signal,
            smsc,
        } = described?;
        let sim = match sim {
            Ok(state) => sim_state_text(&state),
            Err(InitError::PinRequired) => sim_state_text(&SimState::SimPin),
            Err(InitError::PukRequired) => sim_state_text(&SimState::SimPuk),
            Err(InitError::NoSim) => sim_state_text(&SimState::NotInserted),
            Err(other) => other.to_string(),
        };
        Ok(ProbeReport {
            identity,
            sim,
            registration: registration.to_string(),
            operator,
            signal_dbm: signal.and_then(|s| s.dbm()),
            smsc: smsc_text(smsc),
        })
    }
    .instrument(span)
    .await
}

/// Opens `config.port`, initialises the modem (waiting for registration up to
/// `config.timeouts.registration`), sends the parts of one message, and closes the port.
/// Returns each part's message reference.
pub async fn send_message(
    config: &ModemConfig,
    parts: &[SubmitPdu],
) -> Result<Vec<u8>, ModemError> {
    let span = info_span!("modem", modem = %config.name);
    async {
        let mut session = open_session(config, discard_events())?;
        let options = InitOptions {
            pin: config.pin.as_deref(),
            imei: config.imei.as_deref(),
            status_reports: config.status_reports,
            smsc_configured: config.smsc_configured,
        };
        let result = match session.init(&options).await {
            Ok(_) => session
                .send(parts, None, None)
                .await
                .map_err(ModemError::from),
            Err(error) => Err(error.into()),
        };
        session.close().await;
        result
    }
    .instrument(span)
    .await
}

/// The SIM's service centre as `probe` and the status page show it.
pub(crate) fn smsc_text(smsc: Option<Option<String>>) -> String {
    match smsc {
        Some(Some(number)) => number,
        Some(None) => NO_SMSC.to_owned(),
        None => "unknown (no answer to AT+CSCA?)".to_owned(),
    }
}

/// What an empty SMSC means and how to fix it: every send would fail with `+CMS ERROR:
/// 330` (tdelenikas/smslib-v3 PR 12; gammu issue 541).
const NO_SMSC: &str = "none on the SIM (sends fail with +CMS ERROR: 330): set `[sms] smsc`";

/// An event channel nobody reads, for the one-shot helpers.
fn discard_events() -> mpsc::Sender<ModemEvent> {
    mpsc::channel(1).0
}

/// Opens the configured path as it is now (a link is followed afresh each time).
fn open_port(path: &Path, baud: u32) -> Result<Port, OpenError> {
    tokio_serial::new(path.to_string_lossy(), baud)
        .open_native_async()
        .map(Port)
        .map_err(|error| OpenError::from_serial(path, &error))
}

/// A serial port whose flush returns at once. A tty keeps no bytes in the process: when a
/// write returns, the kernel has them all and sends them in order. `SerialStream`'s flush
/// is `tcdrain`, which "waits until all output written has been transmitted" (POSIX): a
/// blocking `ioctl` on a runtime thread, beyond the reach of the engine's deadlines. It
/// would hold that thread, and every task on it (the HTTP listener's included), for the
/// bytes' time on the line (at 115,200 baud, about 30 ms for a long PDU's 340 hex digits),
/// and for as long as a hung modem takes no more data. Whether the modem took a command is
/// told by its answer, which is waited for with a deadline. (On the simulator's
/// pseudo-terminal it cost little: p50 16 µs, p99 43 µs under `perf trace -e ioctl`.)
struct Port(SerialStream);

impl tokio::io::AsyncRead for Port {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Port {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    /// `SerialStream`'s shutdown is its flush; the port closes when dropped.
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn open_session(
    config: &ModemConfig,
    events: mpsc::Sender<ModemEvent>,
) -> Result<Session, OpenError> {
    let port = open_port(&config.port, config.baud)?;
    debug!(port = %config.port.display(), "port open");
    let (engine, urcs) = AtEngine::spawn_with(port, engine_config(config));
    Ok(Session::new(
        engine,
        urcs,
        events,
        &config.name,
        config.timeouts.clone(),
    ))
}

/// The engine's resynchronisation after a timeout is bounded by the command timeout: each
/// `AT` waits half of it, at most a second (a modem that answers at all answers `AT` within
/// milliseconds).
fn engine_config(config: &ModemConfig) -> EngineConfig {
    let resync =
        (config.timeouts.command / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
    EngineConfig {
        label: config.name.clone(),
        resync_timeout: resync,
        settle_max: resync,
        // A port (re)opened may find the modem still in PDU entry (issue 9).
        escape_first: true,
        ..EngineConfig::default()
    }
}

/// What the worker does after a connection ends.
enum Flow {
    /// Every handle is gone: stop.
    Stop,
    /// Close the port, wait the backoff, and open it again.
    Reopen,
}

struct Worker {
    config: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    jobs: mpsc::Receiver<SendJob>,
    status: watch::Sender<ModemStatus>,
    /// The SIM refused the configured PIN once: never send it again (three wrong PINs
    /// block the SIM), whatever reconnects follow.
    pin_rejected: bool,
    /// The last send failed by the modem's fault and no send has worked since: the
    /// reconnect backoff keeps growing, and the status keeps the fault and its fix.
    faulted: bool,
}

impl Worker {
    async fn run(mut self) {
        info!(port = %self.config.port.display(), "modem worker started");
        let mut backoff = Backoff::new(
            self.config.timeouts.reconnect_min,
            self.config.timeouts.reconnect_max,
        );
        loop {
            if let Flow::Stop = self.connection(&mut backoff).await {
                break;
            }
            let delay = backoff.next_delay();
            debug!(?delay, "reopening the port after a pause");
            if rejecting(&mut self.jobs, &self.status, sleep(delay))
                .await
                .is_none()
            {
                break;
            }
        }
        info!("modem worker stopped: no handle left");
    }

    /// One connection: open, initialise, serve until the port is lost or the modem needs
    /// reopening.
    async fn connection(&mut self, backoff: &mut Backoff) -> Flow {
        self.publish(|s| s.state = ModemState::Connecting);
        let mut session = match open_session(&self.config, self.events.clone()) {
            Ok(session) => session,
            Err(error) => {
                let error_text = error.to_string();
                if self.is_new_problem(&error_text) {
                    warn!(error = %error_text, "cannot open the port; retrying with backoff");
                } else {
                    debug!(error = %error_text, "cannot open the port");
                }
                self.publish(|s| {
                    s.state = ModemState::Disconnected;
                    s.last_error = Some(error.to_string());
                });
                return Flow::Reopen;
            }
        };
        let flow = self.serve(&mut session, backoff).await;
        session.close().await;
        flow
    }

    async fn serve(&mut self, session: &mut Session, backoff: &mut Backoff) -> Flow {
        self.publish(|s| s.state = ModemState::Initialising);
        let pin = if self.pin_rejected {
            None
        } else {
            self.config.pin.as_deref()
        };
        let options = InitOptions {
            pin,
            imei: self.config.imei.as_deref(),
            status_reports: self.config.status_reports,
            smsc_configured: self.config.smsc_configured,
        };
        let initialised =
            match rejecting(&mut self.jobs, &self.status, session.init(&options)).await {
                None => return Flow::Stop,
                Some(Ok(initialised)) => initialised,
                Some(Err(mut error)) => {
                    if error == InitError::PinRejected {
                        self.pin_rejected = true;
                    } else if self.pin_rejected && error == InitError::PinRequired {
                        error = InitError::PinRejected;
                    }
                    let state = if error.is_link_lost() {
                        ModemState::Disconnected
                    } else {
                        ModemState::Failing
                    };
                    if self.is_new_problem(&error.to_string()) {
                        warn!(%error, "initialisation failed; retrying with backoff");
                    } else {
                        debug!(%error, "initialisation failed again");
                    }
                    let identity = session.identity().clone();
                    self.publish(|s| {
                        s.state = state;
                        if identity.manufacturer.is_some() || identity.imei.is_some() {
                            s.identity = identity;
                        }
                        s.last_error = Some(error.to_string());
                        s.fix = None;
                    });
                    return Flow::Reopen;
                }
            };
        match rejecting(&mut self.jobs, &self.status, session.sweep_storage()).await {
            None => return Flow::Stop,
            Some(Err(error)) => return self.link_lost(error),
            Some(Ok(())) => {}
        }
        let faulted = self.faulted;
        if !faulted {
            backoff.reset();
        }
        self.publish(|s| {
            s.state = ModemState::Ready;
            s.identity = initialised.identity.clone();
            s.operator = initialised.operator.clone();
            s.signal_dbm = initialised.signal_dbm;
            s.registration = Some(initialised.registration.to_string());
            s.smsc = Some(smsc_text(initialised.smsc.clone()));
            if !faulted {
                s.last_error = None;
                s.fix = None;
            }
        });
        self.idle(session).await
    }

    /// Ready (or failing for want of registration): takes send jobs, URCs and health
    /// checks until the port is lost or the modem has to be reopened.
    async fn idle(&mut self, session: &mut Session) -> Flow {
        let period = self
            .config
            .timeouts
            .health_interval
            .max(Duration::from_millis(10));
        let mut health = interval_at(tokio::time::Instant::now() + period, period);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = self.jobs.recv() => match job {
                    None => return Flow::Stop,
                    Some(job) => {
                        if let Some(flow) = self.send(session, job).await {
                            return flow;
                        }
                    }
                },
                urc = session.next_urc() => match urc {
                    None => {
                        let error = session.link_error().unwrap_or(AtError::Closed);
                        return self.link_lost(error);
                    }
                    Some(urc) => match session.handle_urc(urc).await {
                        Err(error) => return self.link_lost(error),
                        Ok(effect) => {
                            if let Some(flow) = self.apply(effect) {
                                return flow;
                            }
                        }
                    },
                },
                _ = health.tick() => {
                    if let Some(flow) = self.check_health(session).await {
                        return flow;
                    }
                }
            }
        }
    }

    /// Sends one job's parts; `Some` when the connection has to end.
    async fn send(&mut self, session: &mut Session, mut job: SendJob) -> Option<Flow> {
        if job.reply.is_closed() {
            // The caller gave up before its turn; sending now could only duplicate a
            // message it will retry.
            debug!("send request abandoned by its caller; skipped");
            return None;
        }
        let state = self.status.borrow().state;
        if state != ModemState::Ready {
            reject(job, &self.status.borrow());
            return None;
        }
        self.publish(|s| s.state = ModemState::Sending);
        let result = session
            .send(&job.parts, job.progress.as_ref(), job.go.take())
            .await;
        let outcome = match &result {
            Ok(references) => format!("sent, references {references:?}"),
            Err(error) => error.to_string(),
        };
        info!(parts = job.parts.len(), %outcome, "send finished");
        // A message the network refused for good says nothing about the modem, and neither
        // does a held PDU withdrawn because the store could not commit; the other failures
        // may, so the status page shows them.
        let failed = match &result {
            _ if session.last_send_withdrawn() => None,
            Err(error @ (SendError::Temporary { .. } | SendError::Unknown { .. })) => {
                Some(error.to_string())
            }
            _ => None,
        };
        let fault = match &result {
            Err(SendError::ModemFault { reason, fix, .. }) => Some((reason.clone(), fix.clone())),
            _ => None,
        };
        if result.is_ok() && self.faulted {
            // The modem works again: its last fault is history.
            self.faulted = false;
            self.publish(|s| {
                s.last_error = None;
                s.fix = None;
            });
        }
        let _ = job.reply.send(result);
        if let Some((reason, fix)) = fault {
            // The modem's own fault: failing, with the reason and the fix, until it has been
            // initialised again (after a backoff that grows while the fault repeats).
            warn!(%reason, %fix, "the modem is at fault; initialising it again");
            self.faulted = true;
            self.publish(|s| {
                s.state = ModemState::Failing;
                s.last_error = Some(reason);
                s.fix = Some(fix);
            });
            return Some(Flow::Reopen);
        }
        if let Some(error) = session.link_error() {
            return Some(self.link_lost(error));
        }
        if session.silent_count() >= SILENT_LIMIT {
            return Some(self.recover(session).await);
        }
        self.publish(|s| {
            s.state = ModemState::Ready;
            if let Some(error) = failed {
                s.last_error = Some(error);
            }
        });
        None
    }

    /// Applies what a URC said; `Some` when the connection has to end.
    fn apply(&mut self, effect: UrcEffect) -> Option<Flow> {
        match effect {
            UrcEffect::Nothing => None,
            UrcEffect::Signal(dbm) => {
                self.publish(|s| s.signal_dbm = dbm);
                None
            }
            UrcEffect::Registration(registrations) => {
                self.registration_changed(&registrations);
                None
            }
            UrcEffect::Reinitialise(why) => {
                warn!(%why, "initialising the modem again");
                self.publish(|s| {
                    s.state = ModemState::Initialising;
                    s.last_error = Some(why);
                });
                Some(Flow::Reopen)
            }
        }
    }

    async fn check_health(&mut self, session: &mut Session) -> Option<Flow> {
        match session.health().await {
            Ok(health) => {
                self.publish(|s| s.signal_dbm = health.signal_dbm);
                if health.registration.any_known() {
                    self.registration_changed(&health.registration);
                }
                None
            }
            Err(error) if error.is_link_down() => Some(self.link_lost(error)),
            Err(error) => {
                warn!(%error, silent = session.silent_count(), "health check unanswered");
                if session.silent_count() >= SILENT_LIMIT {
                    Some(self.recover(session).await)
                } else {
                    None
                }
            }
        }
    }

    /// Ready while registered; failing, with the reason, while not.
    fn registration_changed(&mut self, registrations: &Registrations) {
        let registered = registrations.is_registered();
        let text = registrations.to_string();
        let domains = registrations.domains_text();
        self.publish(|s| s.registration = Some(text.clone()));
        let state = self.status.borrow().state;
        match (state, registered) {
            (ModemState::Failing, true) if !self.faulted => {
                info!("registered again");
                self.publish(|s| {
                    s.state = ModemState::Ready;
                    s.last_error = None;
                });
            }
            (ModemState::Ready, false) => {
                warn!(registration = %text, "registration lost in every domain");
                self.publish(|s| {
                    s.state = ModemState::Failing;
                    s.last_error = Some(format!("not registered: {domains}"));
                });
            }
            _ => {}
        }
    }

    /// The modem stopped answering: reset it and reopen the port.
    async fn recover(&mut self, session: &mut Session) -> Flow {
        warn!("the modem stopped answering; resetting it and reopening the port");
        self.publish(|s| {
            s.state = ModemState::Failing;
            s.last_error = Some("the modem stopped answering; resetting it".to_owned());
        });
        match rejecting(&mut self.jobs, &self.status, session.reset()).await {
            None => Flow::Stop,
            Some(()) => Flow::Reopen,
        }
    }

    fn link_lost(&mut self, error: AtError) -> Flow {
        warn!(%error, "modem port lost");
        self.publish(|s| {
            s.state = ModemState::Disconnected;
            s.last_error = Some(format!("port lost: {error}"));
        });
        Flow::Reopen
    }

    /// Whether `problem` differs from the last one published: a modem that fails the same
    /// way at every retry is logged once at warning level, not every few seconds.
    fn is_new_problem(&self, problem: &str) -> bool {
        self.status.borrow().last_error.as_deref() != Some(problem)
    }

    /// Changes the published status, notifying watchers only when something changed.
    fn publish(&self, change: impl FnOnce(&mut ModemStatus)) {
        self.status.send_if_modified(|status| {
            let before = status.clone();
            change(status);
            if status.state != before.state {
                info!(
                    state = status.state.as_str(),
                    last_error = status.last_error.as_deref(),
                    "state"
                );
            }
            *status != before
        });
    }
}

/// Runs `work` while answering every send request that arrives meanwhile with a temporary
/// failure, so callers never wait for a modem that is not ready. `None` when every handle
/// is gone (the work is abandoned).
async fn rejecting<F: Future>(
    jobs: &mut mpsc::Receiver<SendJob>,
    status: &watch::Sender<ModemStatus>,
    work: F,
) -> Option<F::Output> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Some(output),
            job = jobs.recv() => match job {
                None => return None,
                Some(job) => reject(job, &status.borrow()),
            },
        }
    }
}

fn reject(job: SendJob, status: &ModemStatus) {
    reply(job.reply, Err(not_ready(status)));
}

fn reply(reply: oneshot::Sender<Result<Vec<u8>, SendError>>, result: Result<Vec<u8>, SendError>) {
    // The caller may have given up waiting; nothing to do then.
    let _ = reply.send(result);
}

/// The temporary failure for a request to a modem that cannot take it now.
pub(crate) fn not_ready(status: &ModemStatus) -> SendError {
    let mut reason = format!("modem {} is {}", status.name, status.state.as_str());
    if let Some(error) = &status.last_error {
        reason.push_str(": ");
        reason.push_str(error);
    }
    SendError::Temporary {
        reason,
        sent: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_the_usual_thresholds() {
        for (dbm, bars) in [
            (-51, 4),
            (-73, 4),
            (-75, 3),
            (-83, 3),
            (-91, 2),
            (-101, 1),
            (-109, 1),
            (-111, 0),
            (-113, 0),
        ] {
            assert_eq!(signal_bars(dbm), bars, "{dbm} dBm");
        }
    }

    #[test]
    fn a_probe_report_prints_every_field_in_order() {
        let report = ProbeReport {
            identity: ModemIdentity {
                manufacturer: Some("Quectel".into()),
                model: Some("EC25".into()),
                firmware: Some("EC25EFAR06A03M4G".into()),
                imei: Some("867698041234567".into()),
                imsi: None,
                iccid: None,
            },
            sim: "ready".into(),
            registration: "registered, home network".into(),
            operator: Some("Example Telecom".into()),
            signal_dbm: Some(-75),
            smsc: smsc_text(Some(None)),
        };
        let labels: Vec<&str> = report.lines().iter().map(|(l, _)| *l).collect();
        assert_eq!(
            labels,
            [
                "manufacturer",
                "model",
                "firmware",
                "IMEI",
                "IMSI",
                "ICCID",
                "SIM",
                "registration",
                "operator",
                "signal",
                "SMSC"
            ]
        );
        assert!(report.lines()[10].1.contains("set `[sms] smsc`"));
        let lines = report.lines();
        assert_eq!(lines[4].1, "unknown");
        assert_eq!(lines[9].1, "-75 dBm (3/4 bars)");
    }

    #[test]
    fn not_ready_says_why() {
        let mut status = ModemStatus::new("modem0");
        status.state = ModemState::Failing;
        status.last_error = Some("no SIM card is inserted".into());
        let SendError::Temporary { reason, sent } = not_ready(&status) else {
            panic!("not ready is temporary");
        };
        assert_eq!(reason, "modem modem0 is failing: no SIM card is inserted");
        assert!(sent.is_empty());
    }
}
