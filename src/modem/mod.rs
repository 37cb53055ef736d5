//! The modem driver: initialisation, health, sending SMS, reconnecting after an unplug,
//! and the observable per-modem state. The only code that opens a tty.
//!
//! The rest of the program sees a modem through a [`ModemHandle`]: it asks it to send the
//! parts of one message and watches its [`ModemStatus`]. Status reports and incoming
//! messages arrive as [`ModemEvent`]s on the channel given to [`spawn`].
//!
//! Code map: `driver` (the worker task, the only code that opens a tty, and the CLI's
//! one-shot [`probe`] and [`send_message`]), `session` (the AT conversation over one open
//! link: initialisation, sending, health, incoming messages), `error` (errors as data and
//! the classification of send failures), `backoff` (reconnect delays, pure).
//!
//! ```no_run
//! use std::time::Duration;
//! use smsbridge::modem::{self, ModemConfig, ModemState, ModemTimeouts};
//! use smsbridge::sms::{PhoneNumber, SubmitOptions, encode_submit};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let (events, _reports) = tokio::sync::mpsc::channel(16);
//! let handle = modem::spawn(
//!     ModemConfig {
//!         name: "modem0".into(),
//!         port: "/dev/serial/by-id/usb-Quectel_EC25-if02-port0".into(),
//!         baud: 115_200,
//!         pin: None,
//!         imei: None,
//!         status_reports: true,
//!         smsc_configured: false,
//!         timeouts: ModemTimeouts::default(),
//!     },
//!     events,
//! );
//! let mut status = handle.status();
//! status.wait_for(|s| s.state == ModemState::Ready).await?;
//! let to = PhoneNumber::parse("+4915123456789")?;
//! let parts = encode_submit(&to, "Your code is 1234", 7, &SubmitOptions::default())?;
//! let references = handle.send(parts).await?;
//! println!("message references {references:?}");
//! # Ok(())
//! # }
//! ```

mod backoff;
mod driver;
mod error;
mod readiness;
mod registration;
mod session;

pub use crate::at::engine::Go;
pub use driver::{ProbeReport, probe, send_message, signal_bars, spawn};
pub use error::{InitError, ModemError, OpenError};
pub use readiness::Readiness;
pub use registration::Registrations;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// How to reach and operate one modem. Built from the `[[modem]]` configuration table.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// The operator's name for the modem, used in logs, metrics and the status page.
    pub name: String,
    /// The serial port; a `/dev/serial/by-id/` path or a udev name is followed on reconnect.
    pub port: PathBuf,
    pub baud: u32,
    /// The SIM PIN, already read from its file.
    pub pin: Option<String>,
    /// When set, the modem found on `port` must have this IMEI.
    pub imei: Option<String>,
    /// Whether to ask the network for delivery reports.
    pub status_reports: bool,
    /// Whether `[sms] smsc` is configured (every PDU then names the SMSC): a SIM without
    /// one is only a problem when it is not.
    pub smsc_configured: bool,
    pub timeouts: ModemTimeouts,
}

/// Timeouts and intervals of the driver; the defaults suit real modems.
#[derive(Debug, Clone)]
pub struct ModemTimeouts {
    /// A plain command's final result.
    pub command: Duration,
    /// The `> ` prompt after `AT+CMGS=<len>`.
    pub prompt: Duration,
    /// The `+CMGS:` answer after the PDU and Ctrl-Z (networks can take tens of seconds).
    pub submit: Duration,
    /// How long to wait for network registration before reporting the modem as failing.
    pub registration: Duration,
    /// Interval of idle health checks.
    pub health_interval: Duration,
    /// First and largest delay between attempts to reopen a vanished port.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl Default for ModemTimeouts {
    fn default() -> Self {
        ModemTimeouts {
            command: Duration::from_secs(5),
            prompt: Duration::from_secs(5),
            submit: Duration::from_secs(60),
            registration: Duration::from_secs(60),
            health_interval: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// The life cycle of a modem as the rest of the program sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModemState {
    /// Opening the port.
    Connecting,
    /// Port open; running the initialisation sequence or waiting for registration.
    Initialising,
    /// Registered and idle: can take a message.
    Ready,
    /// Sending a message.
    Sending,
    /// Open but not working (no SIM, not registered, repeated errors); being recovered.
    Failing,
    /// The port is gone; reopening with backoff.
    Disconnected,
}

impl ModemState {
    /// Ready or busy sending: the modem works and can take (or queue) a message.
    pub fn is_working(self) -> bool {
        matches!(self, ModemState::Ready | ModemState::Sending)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModemState::Connecting => "connecting",
            ModemState::Initialising => "initialising",
            ModemState::Ready => "ready",
            ModemState::Sending => "sending",
            ModemState::Failing => "failing",
            ModemState::Disconnected => "disconnected",
        }
    }
}

/// What the modem said about itself; fields stay `None` where the modem did not answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemIdentity {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
}

/// A snapshot of one modem, published on a watch channel whenever it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModemStatus {
    pub name: String,
    pub state: ModemState,
    pub identity: ModemIdentity,
    pub operator: Option<String>,
    /// Received signal strength from `AT+CSQ`, in dBm; `None` when unknown (CSQ 99).
    pub signal_dbm: Option<i32>,
    /// The last problem, in words an operator understands.
    pub last_error: Option<String>,
    /// What the operator can do about `last_error`, when the driver knows (a SIM without
    /// an SMSC: "set `[sms] smsc`").
    pub fix: Option<String>,
    /// The registration verdict and each domain's status, as `probe` shows it.
    pub registration: Option<String>,
    /// The service centre the modem uses (`AT+CSCA?`), or the configured one.
    pub smsc: Option<String>,
}

impl ModemStatus {
    /// The status of a modem whose worker just started: connecting, nothing known yet.
    pub fn new(name: &str) -> ModemStatus {
        ModemStatus {
            name: name.to_owned(),
            state: ModemState::Connecting,
            identity: ModemIdentity::default(),
            operator: None,
            signal_dbm: None,
            last_error: None,
            fix: None,
            registration: None,
            smsc: None,
        }
    }
}

/// Why a send did not complete. `sent` holds the message references of the parts that the
/// network did accept before the failure, so a retry sends only the remaining parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The network refused the message for good (e.g. unknown subscriber, invalid PDU).
    #[error("permanent failure: {reason}")]
    Permanent { reason: String, sent: Vec<u8> },
    /// Try again later, possibly on another modem (congestion, no network service,
    /// modem not ready, port lost before the PDU went out).
    #[error("temporary failure: {reason}")]
    Temporary { reason: String, sent: Vec<u8> },
    /// The PDU went out but no `+CMGS` came back: the SMS may or may not have been sent.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String, sent: Vec<u8> },
    /// The modem or its SIM is at fault, not the message (`+CMS ERROR: 330`, no SIM, no
    /// service, memory full): retry the message, on another modem first. The worker marks
    /// the modem failing with `reason` and `fix` and re-initialises it with backoff.
    #[error("the modem's fault: {reason} (fix: {fix})")]
    ModemFault {
        reason: String,
        fix: String,
        sent: Vec<u8>,
    },
}

impl SendError {
    /// The message references of the parts the network accepted before the failure.
    pub fn sent(&self) -> &[u8] {
        match self {
            SendError::Permanent { sent, .. }
            | SendError::Temporary { sent, .. }
            | SendError::Unknown { sent, .. }
            | SendError::ModemFault { sent, .. } => sent,
        }
    }

    /// A word for metrics and tests: `permanent`, `temporary`, `unknown`, `modem_fault`.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::Permanent { .. } => "permanent",
            SendError::Temporary { .. } => "temporary",
            SendError::Unknown { .. } => "unknown",
            SendError::ModemFault { .. } => "modem_fault",
        }
    }
}

/// Something the modem reported by itself.
#[derive(Debug, Clone, PartialEq)]
pub enum ModemEvent {
    /// A delivery report for a part this modem sent earlier.
    StatusReport {
        modem: String,
        report: crate::sms::StatusReport,
    },
}

/// A request to send the encoded parts of one message, in order.
pub struct SendJob {
    pub parts: Vec<crate::sms::SubmitPdu>,
    pub reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, SendError>>,
    /// Told `(index in parts, message reference)` as each part is confirmed, so the caller
    /// can record it before the next part goes out (see `ModemHandle::send_tracked`).
    pub progress: Option<mpsc::UnboundedSender<(usize, u8)>>,
    /// If set, the first part's `AT+CMGS` and prompt go ahead, and its PDU waits for this
    /// (see [`crate::at::engine::AtEngine::send_pdu_when`]).
    pub go: Option<Go>,
}

impl std::fmt::Debug for SendJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendJob")
            .field("parts", &self.parts.len())
            .field("held", &self.go.is_some())
            .finish_non_exhaustive()
    }
}

/// The rest of the program's view of one modem worker.
#[derive(Clone)]
pub struct ModemHandle {
    pub name: String,
    jobs: mpsc::Sender<SendJob>,
    status: watch::Receiver<ModemStatus>,
}

impl ModemHandle {
    /// Sends the parts of one message in order and returns each part's message reference.
    /// Fails with `Temporary` at once when the modem is not ready.
    pub async fn send(&self, parts: Vec<crate::sms::SubmitPdu>) -> Result<Vec<u8>, SendError> {
        self.send_tracked(parts, None).await
    }

    /// Like [`send`](Self::send), and also tells `progress` each part's index and message
    /// reference as soon as the modem confirms it, so a crash mid-message loses no record
    /// of the parts the network already has.
    pub async fn send_tracked(
        &self,
        parts: Vec<crate::sms::SubmitPdu>,
        progress: Option<mpsc::UnboundedSender<(usize, u8)>>,
    ) -> Result<Vec<u8>, SendError> {
        self.send_when(parts, progress, None).await
    }

    /// Like [`send_tracked`](Self::send_tracked); with `go`, the first part's command and
    /// prompt go ahead while `go` is pending, and its PDU is written only once `go` says
    /// `true` (else nothing is sent and the error is temporary). The caller overlaps the
    /// prompt's round trip with the commit that allows the message out (issue 12).
    pub async fn send_when(
        &self,
        parts: Vec<crate::sms::SubmitPdu>,
        progress: Option<mpsc::UnboundedSender<(usize, u8)>>,
        go: Option<Go>,
    ) -> Result<Vec<u8>, SendError> {
        {
            // A request behind a send in progress waits its turn; in any other state the
            // modem cannot take it now, and the caller should not wait to hear so. The
            // worker checks again when the request reaches it.
            let status = self.status.borrow();
            if !status.state.is_working() {
                return Err(driver::not_ready(&status));
            }
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || SendError::Temporary {
            reason: format!("modem {} worker has stopped", self.name),
            sent: Vec::new(),
        };
        self.jobs
            .send(SendJob {
                parts,
                reply,
                progress,
                go,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// The modem's current status, updated whenever it changes.
    pub fn status(&self) -> watch::Receiver<ModemStatus> {
        self.status.clone()
    }
}
