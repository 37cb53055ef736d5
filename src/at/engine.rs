//! The AT engine: the I/O glue that runs one AT command at a time over a byte stream.
//!
//! [`AtEngine::spawn`] hands the stream (a tokio-serial `SerialStream` in production, a
//! pseudo-terminal or an in-memory pipe in tests) to one task that owns it. That task reads
//! all the time, so unsolicited result codes reach the URC channel whatever the timing, also
//! while no command runs; it writes one command at a time, classifies lines with the running
//! command's context (the pure [`super::parse`] module does the classifying), and
//! enforces every timeout itself, so no call waits past its deadline. `AT+CMGS` is done in
//! its two steps by [`AtEngine::send_pdu`]: the command, the `> ` prompt, then the PDU and
//! Ctrl-Z (TS 27.005 §3.5.1).
//!
//! It knows nothing of modem models, SIMs or messages: what to send and what the answers
//! mean belongs to the driver (`modem`) and to [`super::command`].
//! Traffic is logged at debug level only, with PDUs reduced to their length and the PIN
//! masked, since PDUs carry the codes being sent.
//!
//! ```no_run
//! use std::time::Duration;
//! use smsbridge::at::command::{Command, SignalQuality};
//! use smsbridge::at::engine::AtEngine;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let port = tokio_serial::SerialStream::open(&tokio_serial::new("/dev/ttyUSB2", 115200))?;
//! let (engine, mut urcs) = AtEngine::spawn(port);
//! engine.run(&Command::echo_off()).await?;
//! let csq = SignalQuality::from_response(&engine.run(&Command::signal_quality()).await?)?;
//! println!("signal: {:?} dBm", csq.dbm());
//! let reference = engine
//!     .send_pdu(23, "0011000B915121551532F40000AA0AE8329BFD4697D9EC37", Duration::from_secs(5), Duration::from_secs(60))
//!     .await?;
//! println!("message reference {reference}");
//! while let Some(urc) = urcs.recv().await {
//!     println!("{urc:?}");
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, debug, warn};

use crate::at::command::{self, CmeError, CmsError, Command, Response};
use crate::at::parse::{Decoder, Event, Final, Pending, Urc, redact_line};

/// Ctrl-Z: ends the PDU after the prompt (TS 27.005 §3.5.1).
const CTRL_Z: u8 = 0x1a;
/// ESC: abandons the PDU entry after the prompt without sending (TS 27.005 §3.5.1).
const ESC: u8 = 0x1b;

/// What [`AtEngine::send_pdu_when`] waits for between the `> ` prompt and the PDU: `true`
/// lets the PDU go out, `false` abandons the entry with ESC. It lets a caller overlap the
/// command and its prompt with whatever decides whether the message may go at all (the
/// outbox's commit of the claim: issue 12).
pub type Go = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// Tuning of an engine; the defaults suit real modems.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names the engine in log lines (the modem's configured name).
    pub label: String,
    /// URCs buffered for a driver busy elsewhere; beyond that they are dropped with a
    /// warning rather than stalling the port.
    pub urc_capacity: usize,
    /// How many times `AT` is sent to find the modem again after a timeout.
    pub resync_attempts: u32,
    /// How long each of those `AT` waits for `OK`.
    pub resync_timeout: Duration,
    /// After the resynchronising `OK`, output is drained until the port has been quiet
    /// this long, so a late answer of the timed-out command cannot pass for the answer of
    /// the next one.
    pub settle_quiet: Duration,
    /// The longest that draining lasts on a chatty port.
    pub settle_max: Duration,
    /// Send ESC and drain before the first command: a modem left waiting for a PDU (a
    /// kill -9 at the prompt, or an ESC that could not be written) answers nothing else
    /// until it gets ESC or Ctrl-Z. Outside PDU entry modems ignore ESC.
    pub escape_first: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            label: "modem".to_owned(),
            urc_capacity: 64,
            resync_attempts: 3,
            resync_timeout: Duration::from_secs(1),
            settle_quiet: Duration::from_millis(100),
            settle_max: Duration::from_secs(1),
            escape_first: false,
        }
    }
}

/// Why a command or a send did not succeed. `command` is the command line with secrets
/// masked (`AT+CPIN="****"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    /// `ERROR` (or Huawei's `COMMAND NOT SUPPORT`).
    #[error("{command}: ERROR")]
    Error { command: String },
    #[error("{command}: +CME ERROR: {error}")]
    Cme { command: String, error: CmeError },
    /// For `send_pdu`, the modem refused the message: it was not sent.
    #[error("{command}: +CMS ERROR: {error}")]
    Cms { command: String, error: CmsError },
    /// A final result this command does not end with (`NO CARRIER`, `BUSY`, or `OK` in
    /// place of the `> ` prompt, in which case the PDU was not sent).
    #[error("{command}: unexpected final result {result}")]
    Unexpected { command: String, result: Final },
    /// No final result in time. The engine resynchronises with `AT` before the next
    /// command.
    #[error("{command}: no final result within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// No `> ` prompt in time (or the command line could not be written in time): ESC was
    /// sent and no byte of the PDU was written. Safe to retry.
    #[error("{command}: prompt: no `>` prompt within {timeout:?}; the PDU was not sent")]
    PromptTimeout { command: String, timeout: Duration },
    /// [`AtEngine::send_pdu_when`]'s go said no (or did not say within the prompt
    /// timeout) after the prompt: ESC was sent and no byte of the PDU was written.
    #[error("{command}: held back after the prompt; the PDU was not sent")]
    Withdrawn { command: String },
    /// The PDU could not be written in time after the prompt (a stalled port): some of it,
    /// perhaps with the Ctrl-Z, may have reached the modem, so the SMS may or may not have
    /// been sent. ESC was sent where it could be.
    #[error(
        "{command}: write: the PDU could not be written within {timeout:?}; the SMS may or may not have been sent"
    )]
    WriteTimeout { command: String, timeout: Duration },
    /// The PDU and Ctrl-Z went out but no `+CMGS` came back in time: the SMS may or may
    /// not have been sent.
    #[error(
        "{command}: confirmation: no answer within {timeout:?} after the PDU; the SMS may or may not have been sent"
    )]
    SubmitTimeout { command: String, timeout: Duration },
    /// The PDU and Ctrl-Z went out, then the link failed before the answer: the SMS may or
    /// may not have been sent. The link is dead, as with [`AtError::Io`].
    #[error(
        "{command}: the link failed after the PDU was written ({reason}); the SMS may or may not have been sent"
    )]
    SubmitInterrupted { command: String, reason: String },
    /// The command ended with `OK` but its answer lacks what it promises (`+CMGS: <mr>`
    /// after a send, in which case the SMS was most likely sent).
    #[error("{command}: bad answer: {reason}")]
    BadAnswer { command: String, reason: String },
    /// After an earlier timeout the modem did not answer `AT`; the command was not sent.
    #[error("{command}: the modem does not answer AT; command not sent")]
    NotResponding { command: String },
    /// `send_pdu` was given something that is not a PDU of the given length; nothing was
    /// written.
    #[error("invalid PDU: {reason}")]
    InvalidPdu { reason: String },
    /// The stream ended (or the engine was shut down): reopen the port.
    #[error("the modem link is closed")]
    Closed,
    /// Reading or writing failed (EIO when a USB modem or a pty vanishes): reopen the port.
    #[error("modem link I/O error ({kind}): {message}")]
    Io {
        kind: io::ErrorKind,
        message: String,
    },
}

impl AtError {
    /// Whether an SMS may have been sent although the send failed: the driver records the
    /// outcome as unknown instead of retrying blindly.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            AtError::SubmitTimeout { .. }
                | AtError::WriteTimeout { .. }
                | AtError::SubmitInterrupted { .. }
                | AtError::BadAnswer { .. }
        )
    }

    /// Whether the link is dead and the port must be reopened.
    pub fn is_link_down(&self) -> bool {
        matches!(
            self,
            AtError::Closed | AtError::Io { .. } | AtError::SubmitInterrupted { .. }
        )
    }

    /// The `+CMS ERROR` code, if that is what this is.
    pub fn cms(&self) -> Option<&CmsError> {
        match self {
            AtError::Cms { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The `+CME ERROR` code, if that is what this is.
    pub fn cme(&self) -> Option<&CmeError> {
        match self {
            AtError::Cme { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A handle on the task that owns one modem's stream. Cheap to clone; commands from all
/// clones are queued and run one at a time. The task stops, releasing the stream, when the
/// link fails, on [`AtEngine::shutdown`], or when every handle is dropped.
#[derive(Clone)]
pub struct AtEngine {
    requests: mpsc::Sender<Request>,
    link: watch::Receiver<LinkState>,
}

impl fmt::Debug for AtEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtEngine")
            .field("link", &*self.link.borrow())
            .finish()
    }
}

impl AtEngine {
    /// Starts the engine on `stream` with the default configuration. Returns the handle and
    /// the channel on which every unsolicited result code arrives. Must be called inside a
    /// Tokio runtime (it spawns the engine's task).
    pub fn spawn<S>(stream: S) -> (AtEngine, mpsc::Receiver<Urc>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        AtEngine::spawn_with(stream, EngineConfig::default())
    }

    /// Starts the engine on `stream` with `config`; see [`AtEngine::spawn`].
    pub fn spawn_with<S>(stream: S, config: EngineConfig) -> (AtEngine, mpsc::Receiver<Urc>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (urc_tx, urc_rx) = mpsc::channel(config.urc_capacity.max(1));
        let (request_tx, mut request_rx) = mpsc::channel(16);
        let (link_tx, link_rx) = watch::channel(LinkState::Open);
        let span = tracing::debug_span!("at", modem = %config.label);
        let (reader, writer) = tokio::io::split(stream);
        let escape_pending = config.escape_first;
        let actor = Actor {
            reader,
            writer,
            decoder: Decoder::new(),
            urcs: urc_tx,
            config,
            needs_resync: false,
            escape_pending,
            dead: None,
            dropped_urcs: 0,
            read_buf: vec![0; 1024],
        };
        tokio::spawn(
            async move {
                // The actor owns the stream and drops it when it returns, so by the time
                // the link state says "closed" the port is free to be reopened.
                let state = actor.serve(&mut request_rx).await;
                debug!(?state, "engine stopped");
                link_tx.send_replace(state);
                drop(request_rx);
            }
            .instrument(span),
        );
        (
            AtEngine {
                requests: request_tx,
                link: link_rx,
            },
            urc_rx,
        )
    }

    /// Runs one command and returns its information lines when it ends with `OK`. `ERROR`,
    /// `+CME ERROR` and `+CMS ERROR` are errors. Returns within the command's timeout once
    /// the engine starts it (commands from other callers run first; after an earlier
    /// timeout, resynchronising counts against the same timeout). Use
    /// [`AtEngine::send_pdu`] for `AT+CMGS`.
    pub async fn run(&self, command: &Command) -> Result<Response, AtError> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Run {
            command: command.clone(),
            reply,
        };
        if self.requests.send(request).await.is_err() {
            return Err(self.dead());
        }
        answer.await.unwrap_or_else(|_| Err(self.dead()))
    }

    /// Sends one SMS-SUBMIT PDU with `AT+CMGS` and returns its message reference (TP-MR).
    ///
    /// `pdu_hex` is the whole PDU as hexadecimal, SMSC field first (`00` for the SIM's
    /// default); `tpdu_len` counts the octets after the SMSC field. The engine writes
    /// `AT+CMGS=<tpdu_len>` and waits up to `prompt_timeout` for `> `; then writes the PDU
    /// and Ctrl-Z and waits up to `result_timeout` for `+CMGS: <mr>` and `OK`.
    ///
    /// Errors tell what happened to the message: [`AtError::PromptTimeout`], `Cms`,
    /// `Closed`/`Io` and the other errors before the PDU went out mean it was not sent;
    /// [`AtError::outcome_unknown`] is true when it may have been.
    pub async fn send_pdu(
        &self,
        tpdu_len: usize,
        pdu_hex: &str,
        prompt_timeout: Duration,
        result_timeout: Duration,
    ) -> Result<u8, AtError> {
        self.send_pdu_when(tpdu_len, pdu_hex, prompt_timeout, result_timeout, None)
            .await
    }

    /// Like [`send_pdu`](Self::send_pdu), but with `go` the PDU waits after the prompt
    /// until `go` resolves (at most `prompt_timeout` more): `true` writes it, `false` or
    /// the timeout sends ESC and fails with [`AtError::Withdrawn`], nothing sent. The
    /// command and its prompt round trip are then out of the way before the message is
    /// allowed to go.
    pub async fn send_pdu_when(
        &self,
        tpdu_len: usize,
        pdu_hex: &str,
        prompt_timeout: Duration,
        result_timeout: Duration,
        go: Option<Go>,
    ) -> Result<u8, AtError> {
        check_pdu(tpdu_len, pdu_hex)?;
        let (reply, answer) = oneshot::channel();
        let request = Request::SendPdu {
            tpdu_len,
            pdu_hex: pdu_hex.to_owned(),
            prompt_timeout,
            result_timeout,
            go,
            reply,
        };
        if self.requests.send(request).await.is_err() {
            return Err(self.dead());
        }
        answer.await.unwrap_or_else(|_| Err(self.dead()))
    }

    /// Whether the link is dead (stream ended, I/O error, or shut down): every call fails at
    /// once and the port must be reopened with a new engine.
    pub fn is_closed(&self) -> bool {
        self.link.borrow().error().is_some()
    }

    /// Why the link is dead, or `None` while it is up.
    pub fn link_error(&self) -> Option<AtError> {
        self.link.borrow().error()
    }

    /// Resolves when the link dies, with the reason. By then the engine has released the
    /// stream.
    pub async fn closed(&self) -> AtError {
        let mut link = self.link.clone();
        loop {
            if let Some(error) = link.borrow_and_update().error() {
                return error;
            }
            if link.changed().await.is_err() {
                return link.borrow().error().unwrap_or(AtError::Closed);
            }
        }
    }

    /// Stops the engine after the command in progress, if any, and waits until it has
    /// released the stream.
    pub async fn shutdown(&self) {
        // If the engine is already gone, there is nothing to stop.
        let _ = self.requests.send(Request::Shutdown).await;
        self.closed().await;
    }

    fn dead(&self) -> AtError {
        self.link.borrow().error().unwrap_or(AtError::Closed)
    }
}

/// Checks that `pdu_hex` is hexadecimal and that its SMSC length octet and `tpdu_len` add up
/// to its length; a mismatch would make the modem wait for more octets or reject it.
fn check_pdu(tpdu_len: usize, pdu_hex: &str) -> Result<(), AtError> {
    let invalid = |reason: String| Err(AtError::InvalidPdu { reason });
    if let Err(error) = Command::send_message(tpdu_len) {
        return invalid(error.to_string());
    }
    if pdu_hex.is_empty()
        || pdu_hex.len() % 2 != 0
        || !pdu_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return invalid("not an even number of hexadecimal digits".to_owned());
    }
    let smsc_len = pdu_hex
        .get(..2)
        .and_then(|octet| usize::from_str_radix(octet, 16).ok())
        .unwrap_or(0);
    let octets = pdu_hex.len() / 2;
    if 1 + smsc_len + tpdu_len != octets {
        return invalid(format!(
            "{octets} octets, but the SMSC field ({smsc_len}+1) and the TPDU length ({tpdu_len}) add up to {}",
            1 + smsc_len + tpdu_len
        ));
    }
    Ok(())
}

enum Request {
    Run {
        command: Command,
        reply: oneshot::Sender<Result<Response, AtError>>,
    },
    SendPdu {
        tpdu_len: usize,
        pdu_hex: String,
        prompt_timeout: Duration,
        result_timeout: Duration,
        go: Option<Go>,
        reply: oneshot::Sender<Result<u8, AtError>>,
    },
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkState {
    Open,
    Closed,
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
}

impl LinkState {
    fn failed(error: &io::Error) -> LinkState {
        LinkState::Failed {
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    fn error(&self) -> Option<AtError> {
        match self {
            LinkState::Open => None,
            LinkState::Closed => Some(AtError::Closed),
            LinkState::Failed { kind, message } => Some(AtError::Io {
                kind: *kind,
                message: message.clone(),
            }),
        }
    }
}

/// Why waiting for the modem stopped.
enum Wait {
    Timeout,
    Link(LinkState),
}

impl Wait {
    /// The error for a command that was cut off by this.
    fn into_error(self, timeout: AtError) -> AtError {
        match self {
            Wait::Timeout => timeout,
            Wait::Link(state) => state.error().unwrap_or(AtError::Closed),
        }
    }
}

/// The task that owns the stream.
struct Actor<S> {
    reader: ReadHalf<S>,
    writer: WriteHalf<S>,
    decoder: Decoder,
    urcs: mpsc::Sender<Urc>,
    config: EngineConfig,
    /// Set after a timeout: the modem may still be answering the old command.
    needs_resync: bool,
    /// ESC and a drain are due before the next command (see `EngineConfig::escape_first`).
    escape_pending: bool,
    /// Set when the link failed; the task stops after answering the current request.
    dead: Option<LinkState>,
    dropped_urcs: u64,
    read_buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Actor<S> {
    /// Serves requests and reads URCs until the link fails, a shutdown is asked for, or all
    /// handles are gone. Returns the final state of the link.
    async fn serve(mut self, requests: &mut mpsc::Receiver<Request>) -> LinkState {
        loop {
            self.drain_idle();
            if let Some(state) = self.dead.take() {
                return state;
            }
            tokio::select! {
                request = requests.recv() => match request {
                    None | Some(Request::Shutdown) => return LinkState::Closed,
                    Some(request) if self.escape_pending => {
                        self.escape_pending = false;
                        self.escape().await;
                        // A link that died meanwhile fails the request on its first write.
                        self.handle(request).await;
                    }
                    Some(request) => self.handle(request).await,
                },
                read = self.reader.read(&mut self.read_buf) => {
                    // The state is recorded in `self.dead`, checked at the top of the loop.
                    let _ = self.took(read);
                }
            }
        }
    }

    /// Answers one request.
    async fn handle(&mut self, request: Request) {
        match request {
            Request::Shutdown => {}
            Request::Run { command, reply } => {
                // A caller that gave up before its turn does not get its command run.
                if !reply.is_closed() {
                    let result = self.run_command(&command).await;
                    let _ = reply.send(result);
                }
            }
            Request::SendPdu {
                tpdu_len,
                pdu_hex,
                prompt_timeout,
                result_timeout,
                go,
                reply,
            } => {
                if !reply.is_closed() {
                    let result = self
                        .send_pdu(tpdu_len, &pdu_hex, prompt_timeout, result_timeout, go)
                        .await;
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// ESC, then a drain until the port is quiet: brings a modem left in PDU entry back to
    /// command mode without sending anything (TS 27.005 §3.5.1), and drops what it says.
    async fn escape(&mut self) {
        debug!("-> ESC (port just opened)");
        let deadline = Instant::now() + self.config.resync_timeout;
        if self.write(&[ESC], deadline).await.is_err() {
            // A write that cannot finish now: the next command resynchronises first.
            self.needs_resync = true;
            return;
        }
        let _ = self.settle(Instant::now() + self.config.settle_max).await;
    }

    /// Handles the outcome of one read.
    fn took(&mut self, read: io::Result<usize>) -> Result<(), Wait> {
        let state = match read {
            Ok(0) => LinkState::Closed,
            Ok(n) => {
                let bytes = self.read_buf.get(..n).unwrap_or_default();
                self.decoder.push(bytes);
                return Ok(());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(error) => LinkState::failed(&error),
        };
        debug!(?state, "link lost");
        self.dead = Some(state.clone());
        Err(Wait::Link(state))
    }

    /// Reads once more into the decoder, giving up at `deadline`.
    async fn fill(&mut self, deadline: Instant) -> Result<(), Wait> {
        match timeout_at(deadline, self.reader.read(&mut self.read_buf)).await {
            Err(_) => Err(Wait::Timeout),
            Ok(read) => self.took(read),
        }
    }

    /// Writes `bytes` whole, giving up at `deadline`.
    async fn write(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), Wait> {
        let writer = &mut self.writer;
        let write = async {
            writer.write_all(bytes).await?;
            writer.flush().await
        };
        match timeout_at(deadline, write).await {
            Err(_) => Err(Wait::Timeout),
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                let state = LinkState::failed(&error);
                debug!(?state, "write failed");
                self.dead = Some(state.clone());
                Err(Wait::Link(state))
            }
        }
    }

    /// Forwards the URCs among the buffered events while no command runs, and drops the
    /// rest (a late answer of a command that timed out).
    fn drain_idle(&mut self) {
        while let Some(event) = self.decoder.next_event(&Pending::IDLE) {
            match event {
                Event::Urc(urc) => self.forward(urc),
                other => log_stray(&other),
            }
        }
    }

    /// The next event of the running command under `ctx`: URCs are forwarded, echoes and
    /// unrecognised lines dropped on the way.
    async fn next_event(&mut self, ctx: &Pending<'_>, deadline: Instant) -> Result<Event, Wait> {
        loop {
            while let Some(event) = self.decoder.next_event(ctx) {
                match event {
                    Event::Urc(urc) => self.forward(urc),
                    Event::Echo => debug!("<- (echo)"),
                    Event::Unrecognised(line) => {
                        debug!(line = %redact_line(&line), "<- unrecognised line")
                    }
                    Event::Info(line) => {
                        debug!(line = %redact_line(&line), "<- info");
                        return Ok(Event::Info(line));
                    }
                    Event::Final(result) => {
                        debug!(%result, "<- final");
                        return Ok(Event::Final(result));
                    }
                    Event::Prompt => {
                        debug!("<- prompt");
                        return Ok(Event::Prompt);
                    }
                }
            }
            self.fill(deadline).await?;
        }
    }

    fn forward(&mut self, urc: Urc) {
        debug!(?urc, "<- urc");
        match self.urcs.try_send(urc) {
            Ok(()) => {}
            Err(TrySendError::Full(urc)) => {
                self.dropped_urcs += 1;
                warn!(
                    ?urc,
                    dropped = self.dropped_urcs,
                    "URC channel full; URC dropped"
                );
            }
            // Nobody listens for URCs; that is the caller's choice.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    async fn run_command(&mut self, command: &Command) -> Result<Response, AtError> {
        let shown = command.display();
        let deadline = Instant::now() + command.timeout();
        let timeout = || AtError::Timeout {
            command: shown.to_owned(),
            timeout: command.timeout(),
        };
        self.resync_if_needed(shown, deadline).await?;
        debug!(command = %shown, "-> command");
        let line = format!("{}\r", command.text());
        if let Err(wait) = self.write(line.as_bytes(), deadline).await {
            self.needs_resync = true;
            return Err(wait.into_error(timeout()));
        }
        let ctx = command.pending();
        let mut lines = Vec::new();
        loop {
            match self.next_event(&ctx, deadline).await {
                Ok(Event::Info(line)) => lines.push(line),
                Ok(Event::Final(Final::Ok)) => return Ok(Response::new(lines)),
                Ok(Event::Final(result)) => return Err(final_error(shown, result)),
                Ok(Event::Prompt) => {
                    // Only a command built to expect the prompt gets here; without a PDU
                    // to give, abandon the entry and let the modem finish the command.
                    debug!("-> ESC (run() does not send PDUs; use send_pdu)");
                    if let Err(wait) = self.write(&[ESC], deadline).await {
                        return Err(wait.into_error(timeout()));
                    }
                }
                Ok(_) => {}
                Err(wait) => {
                    self.needs_resync = true;
                    return Err(wait.into_error(timeout()));
                }
            }
        }
    }

    async fn send_pdu(
        &mut self,
        tpdu_len: usize,
        pdu_hex: &str,
        prompt_timeout: Duration,
        result_timeout: Duration,
        go: Option<Go>,
    ) -> Result<u8, AtError> {
        let command = Command::send_message(tpdu_len)
            .map_err(|e| AtError::InvalidPdu {
                reason: e.to_string(),
            })?
            .with_timeout(prompt_timeout);
        let shown = command.display();
        let prompt_deadline = Instant::now() + prompt_timeout;
        let prompt_timed_out = || AtError::PromptTimeout {
            command: shown.to_owned(),
            timeout: prompt_timeout,
        };
        self.resync_if_needed(shown, prompt_deadline).await?;

        // Step 1: the command, then the prompt.
        debug!(command = %shown, "-> command");
        let line = format!("{}\r", command.text());
        match self.write(line.as_bytes(), prompt_deadline).await {
            Ok(()) => {}
            Err(Wait::Timeout) => return Err(self.abort_pdu_entry(prompt_timed_out()).await),
            Err(wait) => return Err(wait.into_error(prompt_timed_out())),
        }
        let ctx = command.pending();
        loop {
            match self.next_event(&ctx, prompt_deadline).await {
                Ok(Event::Prompt) => break,
                Ok(Event::Final(result)) => return Err(final_error(shown, result)),
                Ok(_) => {}
                Err(Wait::Timeout) => return Err(self.abort_pdu_entry(prompt_timed_out()).await),
                Err(wait) => return Err(wait.into_error(prompt_timed_out())),
            }
        }
        if let Some(go) = go {
            // The modem waits in PDU entry meanwhile; a modem keeps no timer there (TS
            // 27.005 §3.5.1 names none), the bound is ours.
            let released = timeout_at(Instant::now() + prompt_timeout, go)
                .await
                .unwrap_or(false);
            if !released {
                let withdrawn = AtError::Withdrawn {
                    command: shown.to_owned(),
                };
                return Err(self.abort_pdu_entry(withdrawn).await);
            }
        }

        // Step 2: the PDU and Ctrl-Z, then `+CMGS: <mr>` and `OK`. If writing fails, the
        // Ctrl-Z (the last byte) did not go out, so the modem cannot have sent anything.
        debug!(pdu_hex_chars = pdu_hex.len(), "-> PDU and Ctrl-Z");
        let submit_deadline = Instant::now() + result_timeout;
        let mut payload = Vec::with_capacity(pdu_hex.len() + 1);
        payload.extend_from_slice(pdu_hex.as_bytes());
        payload.push(CTRL_Z);
        let write_deadline = Instant::now() + prompt_timeout;
        match self.write(&payload, write_deadline).await {
            Ok(()) => {}
            // Some of the PDU, perhaps all of it with the Ctrl-Z, may be in the kernel or
            // the modem already: the SMS may go out.
            Err(Wait::Timeout) => {
                return self
                    .after_write_timeout(shown, pdu_hex, prompt_timeout)
                    .await;
            }
            Err(Wait::Link(state)) => {
                return Err(AtError::SubmitInterrupted {
                    command: shown.to_owned(),
                    reason: format!(
                        "writing the PDU: {}",
                        state
                            .error()
                            .map_or_else(|| "link closed".to_owned(), |e| e.to_string())
                    ),
                });
            }
        }
        let prefixes = ["+CMGS:"];
        // With echo on, the modem repeats the PDU (SIMCom SIM800, SIM7600).
        let ctx = Pending {
            echo: pdu_hex,
            info_prefixes: &prefixes,
            bare_lines: false,
            expects_prompt: false,
        };
        let mut lines = Vec::new();
        loop {
            match self.next_event(&ctx, submit_deadline).await {
                Ok(Event::Info(line)) => lines.push(line),
                Ok(Event::Final(Final::Ok)) => {
                    return command::message_reference(&Response::new(lines)).map_err(|e| {
                        AtError::BadAnswer {
                            command: shown.to_owned(),
                            reason: e.to_string(),
                        }
                    });
                }
                Ok(Event::Final(result)) => return Err(final_error(shown, result)),
                Ok(_) => {}
                Err(Wait::Timeout) => {
                    // ESC in case the modem still waits in PDU entry (a lost Ctrl-Z); a
                    // modem that took the PDU ignores it.
                    debug!("-> ESC (no confirmation)");
                    let esc_deadline = Instant::now() + self.config.resync_timeout;
                    let _ = self.write(&[ESC], esc_deadline).await;
                    self.needs_resync = true;
                    return Err(AtError::SubmitTimeout {
                        command: shown.to_owned(),
                        timeout: result_timeout,
                    });
                }
                Err(Wait::Link(state)) => {
                    return Err(AtError::SubmitInterrupted {
                        command: shown.to_owned(),
                        reason: state
                            .error()
                            .map_or_else(|| "link closed".to_owned(), |e| e.to_string()),
                    });
                }
            }
        }
    }

    /// The PDU write did not finish in time. ESC abandons the entry if the Ctrl-Z did not
    /// reach the modem; what the modem says next decides: `+CMGS` means sent, an error
    /// means not sent, anything else (or nothing) leaves the outcome unknown.
    async fn after_write_timeout(
        &mut self,
        shown: &str,
        pdu_hex: &str,
        timeout: Duration,
    ) -> Result<u8, AtError> {
        self.needs_resync = true;
        let unknown = || AtError::WriteTimeout {
            command: shown.to_owned(),
            timeout,
        };
        debug!("-> ESC (PDU write timed out)");
        let deadline = Instant::now() + self.config.resync_timeout;
        match self.write(&[ESC], deadline).await {
            Ok(()) => {}
            Err(Wait::Timeout) => return Err(unknown()),
            Err(Wait::Link(state)) => {
                return Err(AtError::SubmitInterrupted {
                    command: shown.to_owned(),
                    reason: state
                        .error()
                        .map_or_else(|| "link closed".to_owned(), |e| e.to_string()),
                });
            }
        }
        let prefixes = ["+CMGS:"];
        let ctx = Pending {
            echo: pdu_hex,
            info_prefixes: &prefixes,
            bare_lines: false,
            expects_prompt: false,
        };
        let mut lines = Vec::new();
        loop {
            match self.next_event(&ctx, deadline).await {
                Ok(Event::Info(line)) => lines.push(line),
                Ok(Event::Final(Final::Ok)) => {
                    return match command::message_reference(&Response::new(lines)) {
                        Ok(reference) => Ok(reference),
                        // OK without +CMGS: the ESC was taken, or the answer is partial.
                        Err(_) => Err(unknown()),
                    };
                }
                Ok(Event::Final(result)) => return Err(final_error(shown, result)),
                Ok(_) => {}
                Err(_) => return Err(unknown()),
            }
        }
    }

    /// Abandons PDU entry with ESC and resynchronises, then returns `error` (or the link
    /// error if the link died meanwhile).
    async fn abort_pdu_entry(&mut self, error: AtError) -> AtError {
        debug!("-> ESC");
        self.needs_resync = true;
        let budget =
            self.config.resync_timeout * (self.config.resync_attempts + 1) + self.config.settle_max;
        let deadline = Instant::now() + budget;
        let esc_deadline = Instant::now() + self.config.resync_timeout;
        if let Err(Wait::Link(state)) = self.write(&[ESC], esc_deadline).await {
            return state.error().unwrap_or(AtError::Closed);
        }
        match self.resync(deadline).await {
            Err(state) => state.error().unwrap_or(AtError::Closed),
            Ok(_) => error,
        }
    }

    /// Resynchronises before a command if an earlier one timed out; fails the command
    /// (unsent) when the modem does not answer.
    async fn resync_if_needed(&mut self, shown: &str, deadline: Instant) -> Result<(), AtError> {
        if !self.needs_resync {
            return Ok(());
        }
        match self.resync(deadline).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AtError::NotResponding {
                command: shown.to_owned(),
            }),
            Err(state) => Err(state.error().unwrap_or(AtError::Closed)),
        }
    }

    /// Sends `AT` until the modem answers `OK`, at most `resync_attempts` times and never
    /// past `deadline`, then drains what is left of the old command's answer. Returns
    /// whether the modem answered; `Err` when the link died.
    async fn resync(&mut self, deadline: Instant) -> Result<bool, LinkState> {
        let at = Command::at();
        for attempt in 1..=self.config.resync_attempts {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let attempt_deadline = (now + self.config.resync_timeout).min(deadline);
            debug!(attempt, "-> AT (resynchronising)");
            match self.write(b"AT\r", attempt_deadline).await {
                Ok(()) => {}
                Err(Wait::Timeout) => continue,
                Err(Wait::Link(state)) => return Err(state),
            }
            loop {
                match self.next_event(&at.pending(), attempt_deadline).await {
                    Ok(Event::Final(Final::Ok)) => {
                        self.settle(deadline).await?;
                        self.needs_resync = false;
                        return Ok(true);
                    }
                    // A late answer of the old command, or an ERROR to a half-written line.
                    Ok(_) => {}
                    Err(Wait::Timeout) => break,
                    Err(Wait::Link(state)) => return Err(state),
                }
            }
        }
        Ok(false)
    }

    /// Reads until the port has been quiet for `settle_quiet` (or `settle_max` passed),
    /// forwarding URCs and dropping everything else.
    async fn settle(&mut self, deadline: Instant) -> Result<(), LinkState> {
        let end = (Instant::now() + self.config.settle_max).min(deadline);
        loop {
            self.drain_idle();
            let quiet = (Instant::now() + self.config.settle_quiet).min(end);
            match self.fill(quiet).await {
                Ok(()) => {}
                Err(Wait::Timeout) => {
                    self.drain_idle();
                    return Ok(());
                }
                Err(Wait::Link(state)) => return Err(state),
            }
        }
    }
}

fn final_error(command: &str, result: Final) -> AtError {
    let command = command.to_owned();
    match result {
        Final::Error | Final::CommandNotSupported => AtError::Error { command },
        Final::CmeError(code) => AtError::Cme {
            command,
            error: CmeError::from(&code),
        },
        Final::CmsError(code) => AtError::Cms {
            command,
            error: CmsError::from(&code),
        },
        result => AtError::Unexpected { command, result },
    }
}

fn log_stray(event: &Event) {
    match event {
        Event::Info(line) | Event::Unrecognised(line) => {
            debug!(line = %redact_line(line), "<- stray line while idle")
        }
        Event::Final(result) => debug!(%result, "<- stray final result while idle"),
        Event::Echo => debug!("<- stray echo while idle"),
        Event::Prompt => debug!("<- stray prompt while idle"),
        Event::Urc(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::command::{Command, SignalQuality};
    use crate::at::parse::Urc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const PDU: &str = "0011000B915121551532F40000AA0AE8329BFD4697D9EC37";
    const TPDU_LEN: usize = 23;

    /// The modem's end of the pipe, scripted by each test.
    struct Peer {
        io: DuplexStream,
    }

    impl Peer {
        /// Reads exactly `expected.len()` bytes and checks they are `expected`.
        async fn expect(&mut self, expected: &[u8]) {
            let mut got = vec![0; expected.len()];
            self.io
                .read_exact(&mut got)
                .await
                .expect("engine closed the pipe");
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(expected)
            );
        }

        async fn say(&mut self, bytes: &[u8]) {
            self.io
                .write_all(bytes)
                .await
                .expect("engine closed the pipe");
        }

        /// Checks that the engine writes nothing for a while (virtual time).
        async fn expect_silence(&mut self) {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(1), self.io.read(&mut byte)).await;
            assert!(read.is_err(), "engine wrote {:?}", read);
        }
    }

    fn start() -> (AtEngine, mpsc::Receiver<Urc>, Peer) {
        let (engine_end, peer_end) = tokio::io::duplex(4096);
        let (engine, urcs) = AtEngine::spawn(engine_end);
        (engine, urcs, Peer { io: peer_end })
    }

    #[tokio::test(start_paused = true)]
    async fn a_command_returns_its_information_lines() {
        let (engine, _urcs, mut peer) = start();
        let cmd = Command::signal_quality();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CSQ\r").await;
            peer.say(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n").await;
        });
        let answer = answer.unwrap();
        assert_eq!(answer.lines(), ["+CSQ: 20,99"]);
        let csq = SignalQuality::from_response(&answer).unwrap();
        assert_eq!(csq.dbm(), Some(-73));
    }

    #[tokio::test(start_paused = true)]
    async fn a_urc_while_idle_reaches_the_channel() {
        let (_engine, mut urcs, mut peer) = start();
        peer.say(b"\r\n+CMTI: \"SM\",").await;
        peer.say(b"3\r\n").await;
        assert_eq!(
            urcs.recv().await,
            Some(Urc::MessageStored {
                storage: "SM".into(),
                index: 3
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_report_split_over_reads_reaches_the_channel() {
        let (_engine, mut urcs, mut peer) = start();
        let pdu = "0791447758100650060C9144974523190100011262000000001126200000000000";
        peer.say(b"\r\n+CDS: 25\r\n").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.say(format!("{pdu}\r\n").as_bytes()).await;
        assert_eq!(
            urcs.recv().await,
            Some(Urc::StatusReport {
                length: 25,
                pdu: pdu.into()
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_urc_inside_an_answer_goes_to_the_channel_not_the_answer() {
        let (engine, mut urcs, mut peer) = start();
        let cmd = Command::signal_quality();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CSQ\r").await;
            peer.say(b"\r\n^RSSI: 17\r\n\r\n+CSQ: 17,99\r\n\r\n+CMTI: \"SM\",4\r\n\r\nOK\r\n")
                .await;
        });
        assert_eq!(answer.unwrap().lines(), ["+CSQ: 17,99"]);
        assert_eq!(urcs.recv().await, Some(Urc::Rssi(17)));
        assert_eq!(
            urcs.recv().await,
            Some(Urc::MessageStored {
                storage: "SM".into(),
                index: 4
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_echoed_command_is_skipped() {
        let (engine, _urcs, mut peer) = start();
        let cmd = Command::imei();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CGSN\r").await;
            peer.say(b"AT+CGSN\r\r\n867698041234567\r\n\r\nOK\r\n")
                .await;
        });
        assert_eq!(answer.unwrap().lines(), ["867698041234567"]);
    }

    #[tokio::test(start_paused = true)]
    async fn final_errors_are_classified() {
        let (engine, _urcs, mut peer) = start();
        let cmd = Command::sim_state();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CPIN?\r").await;
            peer.say(b"\r\n+CME ERROR: 10\r\n").await;
        });
        assert_eq!(
            answer,
            Err(AtError::Cme {
                command: "AT+CPIN?".into(),
                error: CmeError::SimNotInserted
            })
        );
        let cmd = Command::pdu_mode();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CMGF=0\r").await;
            peer.say(b"\r\nERROR\r\n").await;
        });
        assert_eq!(
            answer,
            Err(AtError::Error {
                command: "AT+CMGF=0".into()
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_in_time_and_the_next_command_works() {
        let (engine, _urcs, mut peer) = start();
        let command = Command::signal_quality().with_timeout(Duration::from_secs(2));
        let started = Instant::now();
        let (answer, ()) = tokio::join!(engine.run(&command), async {
            peer.expect(b"AT+CSQ\r").await;
        });
        assert_eq!(
            answer,
            Err(AtError::Timeout {
                command: "AT+CSQ".into(),
                timeout: Duration::from_secs(2)
            })
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));

        // The next command first finds the modem again with AT; the late answer of the
        // timed-out command arrives meanwhile and must not pass for the new one's.
        let (answer, ()) = tokio::join!(engine.run(&command), async {
            peer.expect(b"AT\r").await;
            peer.say(b"\r\n+CSQ: 5,99\r\n\r\nOK\r\n").await;
            peer.say(b"\r\nOK\r\n").await;
            peer.expect(b"AT+CSQ\r").await;
            peer.say(b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n").await;
        });
        assert_eq!(answer.unwrap().lines(), ["+CSQ: 21,99"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stays_silent_fails_the_next_command_unsent() {
        let (engine, _urcs, mut peer) = start();
        let command = Command::signal_quality().with_timeout(Duration::from_secs(2));
        let (answer, ()) = tokio::join!(engine.run(&command), peer.expect(b"AT+CSQ\r"));
        assert!(matches!(answer, Err(AtError::Timeout { .. })));
        let started = Instant::now();
        let (answer, ()) = tokio::join!(engine.run(&command), async {
            peer.expect(b"AT\rAT\r").await;
        });
        assert_eq!(
            answer,
            Err(AtError::NotResponding {
                command: "AT+CSQ".into()
            })
        );
        assert!(started.elapsed() <= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pin_never_appears_in_errors() {
        let (engine, _urcs, mut peer) = start();
        let command = Command::enter_pin("2468").unwrap();
        let (answer, ()) = tokio::join!(engine.run(&command), async {
            peer.expect(b"AT+CPIN=\"2468\"\r").await;
            peer.say(b"\r\n+CME ERROR: 16\r\n").await;
        });
        let error = answer.unwrap_err();
        assert_eq!(error.cme(), Some(&CmeError::IncorrectPassword));
        assert!(!error.to_string().contains("2468"), "{error}");
        assert!(!format!("{error:?}").contains("2468"), "{error:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn cmgs_writes_the_pdu_only_after_the_prompt() {
        let (engine, _urcs, mut peer) = start();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.expect_silence().await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
                peer.say(b"\r\n+CMGS: 42\r\n\r\nOK\r\n").await;
            }
        );
        assert_eq!(answer, Ok(42));
    }

    #[tokio::test(start_paused = true)]
    async fn cmgs_with_echo_on() {
        let (engine, _urcs, mut peer) = start();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"AT+CMGS=23\r\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
                peer.say(format!("{PDU}\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n").as_bytes())
                    .await;
            }
        );
        assert_eq!(answer, Ok(7));
    }

    /// The test PDU, sent with `go` holding it after the prompt (5 s prompt timeout).
    async fn held_send(engine: &AtEngine, go: Go) -> Result<u8, AtError> {
        engine
            .send_pdu_when(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60),
                Some(go),
            )
            .await
    }

    /// Issue 12: the command and its prompt go before the go; the PDU only after it.
    #[tokio::test(start_paused = true)]
    async fn a_held_pdu_goes_out_only_once_released() {
        let (engine, _urcs, mut peer) = start();
        let (release, released) = oneshot::channel::<bool>();
        let go: Go = Box::pin(async move { released.await.unwrap_or(false) });
        let (answer, ()) = tokio::join!(held_send(&engine, go), async {
            peer.expect(b"AT+CMGS=23\r").await;
            peer.say(b"\r\n> ").await;
            // Prompted, not released: nothing may follow.
            peer.expect_silence().await;
            release.send(true).unwrap();
            peer.expect(format!("{PDU}\x1a").as_bytes()).await;
            peer.say(b"\r\n+CMGS: 9\r\n\r\nOK\r\n").await;
        });
        assert_eq!(answer, Ok(9));
    }

    /// Issue 12: a go that says no, or says nothing in time, leaves the entry with ESC and
    /// no byte of the PDU; the engine is in step with the modem afterwards.
    #[tokio::test(start_paused = true)]
    async fn a_held_pdu_refused_or_never_released_is_escaped_unsent() {
        let (engine, _urcs, mut peer) = start();
        let refused: Go = Box::pin(async { false });
        let never: Go = Box::pin(std::future::pending());
        for (go, waits) in [(refused, false), (never, true)] {
            let started = Instant::now();
            let (answer, ()) = tokio::join!(held_send(&engine, go), async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(b"\x1bAT\r").await;
                peer.say(b"\r\nOK\r\n").await;
            });
            let error = answer.unwrap_err();
            assert_eq!(
                error,
                AtError::Withdrawn {
                    command: "AT+CMGS=23".into()
                }
            );
            assert!(!error.outcome_unknown());
            assert_eq!(started.elapsed() >= Duration::from_secs(5), waits);
            let cmd = Command::at();
            let (answer, ()) = tokio::join!(engine.run(&cmd), async {
                peer.expect(b"AT\r").await;
                peer.say(b"\r\nOK\r\n").await;
            });
            assert!(answer.is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_prompt_sends_esc_and_resynchronises() {
        let (engine, _urcs, mut peer) = start();
        let started = Instant::now();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                // No prompt: the next bytes must be ESC then AT, never the PDU.
                peer.expect(b"\x1bAT\r").await;
                peer.say(b"\r\nOK\r\n").await;
            }
        );
        let error = answer.unwrap_err();
        assert_eq!(
            error,
            AtError::PromptTimeout {
                command: "AT+CMGS=23".into(),
                timeout: Duration::from_secs(5)
            }
        );
        assert!(!error.outcome_unknown());
        let config = EngineConfig::default();
        assert!(
            started.elapsed()
                <= Duration::from_secs(5)
                    + config.resync_timeout * (config.resync_attempts + 2)
                    + config.settle_max
        );
        // The engine is in step with the modem again.
        let cmd = Command::at();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT\r").await;
            peer.say(b"\r\nOK\r\n").await;
        });
        assert!(answer.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cms_error_instead_of_the_prompt_fails_at_once() {
        let (engine, _urcs, mut peer) = start();
        let started = Instant::now();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n+CMS ERROR: 304\r\n").await;
                peer.expect_silence().await;
            }
        );
        let error = answer.unwrap_err();
        assert_eq!(error.cms(), Some(&CmsError::InvalidPduModeParameter));
        assert!(error.cms().unwrap().is_permanent());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cms_error_after_the_pdu_is_classified() {
        let (engine, _urcs, mut peer) = start();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
                peer.say(b"\r\n+CMS ERROR: 38\r\n").await;
            }
        );
        let error = answer.unwrap_err();
        assert_eq!(error.cms(), Some(&CmsError::NetworkOutOfOrder));
        assert!(error.cms().unwrap().is_temporary());
        assert!(!error.outcome_unknown());
    }

    /// A stream whose flush never completes once the PDU's Ctrl-Z has been written, the
    /// first `stalls` times: the bytes are in the pipe (the kernel, the USB adapter), but
    /// the engine cannot know they left. Everything else passes through.
    struct StallingFlush {
        inner: DuplexStream,
        saw_ctrl_z: bool,
        stalling: bool,
        stalls: u32,
    }

    impl tokio::io::AsyncRead for StallingFlush {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl tokio::io::AsyncWrite for StallingFlush {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            if buf.contains(&CTRL_Z) {
                self.saw_ctrl_z = true;
            }
            // Each write from the Ctrl-Z on uses up one stall: its flush hangs.
            self.stalling = self.saw_ctrl_z && self.stalls > 0;
            if self.stalling {
                self.stalls -= 1;
            }
            std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if self.stalling {
                // Never woken: only the engine's deadline ends this flush.
                return std::task::Poll::Pending;
            }
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    fn start_stalling(stalls: u32) -> (AtEngine, Peer) {
        let (engine_end, peer_end) = tokio::io::duplex(4096);
        let stream = StallingFlush {
            inner: engine_end,
            saw_ctrl_z: false,
            stalling: false,
            stalls,
        };
        let (engine, _urcs) = AtEngine::spawn(stream);
        (engine, Peer { io: peer_end })
    }

    /// Issue 9: once the PDU may have left, a write that does not finish is `unknown`,
    /// never "not sent, safe to retry", and its reason names the write stage.
    #[tokio::test(start_paused = true)]
    async fn a_pdu_write_whose_flush_never_completes_is_an_unknown_outcome() {
        // Every flush after the Ctrl-Z stalls, the ESC's too.
        let (engine, mut peer) = start_stalling(u32::MAX);
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
            }
        );
        let error = answer.unwrap_err();
        assert!(matches!(error, AtError::WriteTimeout { .. }), "{error:?}");
        assert!(error.outcome_unknown(), "{error}");
        assert!(error.to_string().contains(": write: "), "{error}");
        assert!(!error.to_string().contains("prompt"), "{error}");
    }

    /// When the modem answers an error after a stalled write, the SMS surely did not go
    /// out: the error is the outcome, not `unknown`.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_answered_with_an_error_is_that_error() {
        let (engine, mut peer) = start_stalling(1);
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
                peer.expect(b"\x1b").await;
                peer.say(b"\r\n+CMS ERROR: 330\r\n").await;
            }
        );
        let error = answer.unwrap_err();
        assert_eq!(
            error.cms(),
            Some(&CmsError::SmscAddressUnknown),
            "{error:?}"
        );
        assert!(!error.outcome_unknown());
    }

    /// Issue 9: no `+CMGS` after the PDU sends ESC (a modem that lost the Ctrl-Z would
    /// wait in PDU entry for ever), then resynchronises before the next command.
    #[tokio::test(start_paused = true)]
    async fn no_confirmation_sends_esc_before_the_next_command() {
        let (engine, _urcs, mut peer) = start();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
                peer.expect(b"\x1b").await;
            }
        );
        let error = answer.unwrap_err();
        assert!(error.to_string().contains(": confirmation: "), "{error}");
        let at = Command::at();
        let (answer, ()) = tokio::join!(engine.run(&at), async {
            peer.expect(b"AT\r").await;
            peer.say(b"\r\nOK\r\n").await;
            peer.expect(b"AT\r").await;
            peer.say(b"\r\nOK\r\n").await;
        });
        answer.expect("resynchronised, then run");
    }

    /// Issue 9: with `escape_first`, the first bytes on a fresh port are ESC, then a
    /// drain, then the command: a modem left in PDU entry is back in command mode.
    #[tokio::test(start_paused = true)]
    async fn escape_first_sends_esc_and_drains_before_the_first_command() {
        let (engine_end, peer_end) = tokio::io::duplex(4096);
        let config = EngineConfig {
            escape_first: true,
            ..EngineConfig::default()
        };
        let (engine, _urcs) = AtEngine::spawn_with(engine_end, config);
        let mut peer = Peer { io: peer_end };
        let at = Command::at();
        let (answer, ()) = tokio::join!(engine.run(&at), async {
            peer.expect(b"\x1b").await;
            // What a modem says when ESC ends its PDU entry is drained, not taken for
            // the answer of the command that follows.
            peer.say(b"\r\n+CMS ERROR: 304\r\n").await;
            peer.expect(b"AT\r").await;
            peer.say(b"\r\nOK\r\n").await;
        });
        answer.expect("AT answered after the drain");
        // Only once per port.
        let at = Command::at();
        let (answer, ()) = tokio::join!(engine.run(&at), async {
            peer.expect(b"AT\r").await;
            peer.say(b"\r\nOK\r\n").await;
        });
        answer.expect("second AT");
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_after_the_pdu_is_an_unknown_outcome() {
        let (engine, _urcs, mut peer) = start();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
            }
        );
        let error = answer.unwrap_err();
        assert_eq!(
            error,
            AtError::SubmitTimeout {
                command: "AT+CMGS=23".into(),
                timeout: Duration::from_secs(60)
            }
        );
        assert!(error.outcome_unknown());
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_pdu_is_refused_without_writing() {
        let (engine, _urcs, mut peer) = start();
        for (len, hex) in [
            (TPDU_LEN, "0011"),
            (TPDU_LEN, "zz"),
            (TPDU_LEN, &PDU[1..]),
            (0, PDU),
            (TPDU_LEN + 1, PDU),
        ] {
            let answer = engine
                .send_pdu(len, hex, Duration::from_secs(5), Duration::from_secs(5))
                .await;
            assert!(
                matches!(answer, Err(AtError::InvalidPdu { .. })),
                "{len} {hex}: {answer:?}"
            );
        }
        peer.expect_silence().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_peer_fails_calls_fast() {
        let (engine, _urcs, mut peer) = start();
        let cmd = Command::signal_quality();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CSQ\r").await;
            peer.say(b"\r\n+CSQ: 1").await;
            drop(peer);
        });
        assert_eq!(answer, Err(AtError::Closed));
        assert_eq!(engine.closed().await, AtError::Closed);
        assert!(engine.is_closed());
        assert_eq!(engine.link_error(), Some(AtError::Closed));
        let started = Instant::now();
        assert_eq!(engine.run(&Command::at()).await, Err(AtError::Closed));
        assert_eq!(
            engine
                .send_pdu(
                    TPDU_LEN,
                    PDU,
                    Duration::from_secs(5),
                    Duration::from_secs(5)
                )
                .await,
            Err(AtError::Closed)
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_closing_while_idle_is_noticed() {
        let (engine, mut urcs, peer) = start();
        assert!(!engine.is_closed());
        drop(peer);
        assert_eq!(engine.closed().await, AtError::Closed);
        assert_eq!(urcs.recv().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_link_failing_after_the_pdu_is_an_unknown_outcome() {
        let (engine, _urcs, mut peer) = start();
        let (answer, ()) = tokio::join!(
            engine.send_pdu(
                TPDU_LEN,
                PDU,
                Duration::from_secs(5),
                Duration::from_secs(60)
            ),
            async {
                peer.expect(b"AT+CMGS=23\r").await;
                peer.say(b"\r\n> ").await;
                peer.expect(format!("{PDU}\x1a").as_bytes()).await;
                drop(peer);
            }
        );
        let error = answer.unwrap_err();
        assert!(
            matches!(error, AtError::SubmitInterrupted { .. }),
            "{error:?}"
        );
        assert!(error.outcome_unknown());
        assert!(error.is_link_down());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_releases_the_stream() {
        let (engine, _urcs, mut peer) = start();
        engine.shutdown().await;
        assert_eq!(engine.link_error(), Some(AtError::Closed));
        let mut byte = [0u8; 1];
        assert_eq!(peer.io.read(&mut byte).await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_urc_channel_drops_urcs_but_keeps_commands_running() {
        let (engine_end, peer_end) = tokio::io::duplex(4096);
        let config = EngineConfig {
            urc_capacity: 2,
            ..EngineConfig::default()
        };
        let (engine, mut urcs) = AtEngine::spawn_with(engine_end, config);
        let mut peer = Peer { io: peer_end };
        let cmd = Command::signal_quality();
        let (answer, ()) = tokio::join!(engine.run(&cmd), async {
            peer.expect(b"AT+CSQ\r").await;
            for rssi in 10..15 {
                peer.say(format!("\r\n^RSSI: {rssi}\r\n").as_bytes()).await;
            }
            peer.say(b"\r\n+CSQ: 14,99\r\n\r\nOK\r\n").await;
        });
        assert!(answer.is_ok());
        assert_eq!(urcs.recv().await, Some(Urc::Rssi(10)));
        assert_eq!(urcs.recv().await, Some(Urc::Rssi(11)));
        assert!(urcs.try_recv().is_err());
    }
}
