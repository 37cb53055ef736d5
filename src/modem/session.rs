//! One open link to a modem and what the driver does over it: the initialisation sequence,
//! identity, registration, sending the parts of a message, health checks, reading and
//! deleting incoming messages, and turning status reports into events.
//!
//! A session talks through an [`AtEngine`] and never opens a port (that is `driver`'s) nor
//! decides about reconnecting or resetting: it reports what happened (errors as data, a
//! count of consecutive unanswered commands) and the driver decides.
//!
//! Never logged here: PDUs, message texts, full phone numbers (masked with
//! [`crate::mask::phone`]) and the PIN (the engine masks it in command displays).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{debug, info, warn};

use crate::at::command::{
    self, CmeError, CmsError, Command, ListFilter, NewMessageIndications, Operator, Response,
    SignalQuality, Storage, StoredMessage,
};
use crate::at::engine::{AtEngine, AtError};
use crate::at::parse::{Registration, RegistrationKind, SimState, Urc};
use crate::modem::error::{InitError, is_silence, send_error};
use crate::modem::registration::Registrations;
use crate::modem::{ModemEvent, ModemIdentity, ModemTimeouts, SendError};
use crate::sms::{Pdu, SubmitPdu, decode_hex, decode_pdu, decode_tpdu};

/// How many URCs are kept aside while the driver waits for something else (registration);
/// beyond that the oldest are dropped, so a chatty modem cannot grow the queue.
const DEFERRED_CAPACITY: usize = 64;

/// How long after a (re)initialisation the modem's refusals count as passing: SMS
/// commands are refused for a few seconds after a start (SIM800 before `SMS Ready`:
/// Seeed-Studio/GPRS_SIM900 issue 39; SIM busy: python-gsmmodem issues 10 and 11).
pub(crate) const STARTUP_GRACE: Duration = Duration::from_secs(10);

/// What the initialisation sequence needs from the configuration.
pub(crate) struct InitOptions<'a> {
    pub pin: Option<&'a str>,
    pub imei: Option<&'a str>,
    pub status_reports: bool,
    pub smsc_configured: bool,
}

/// What the initialisation sequence learnt.
#[derive(Debug, Clone)]
pub(crate) struct Initialised {
    pub identity: ModemIdentity,
    pub operator: Option<String>,
    pub signal_dbm: Option<i32>,
    pub registration: Registrations,
    /// The SIM's service centre (`AT+CSCA?`); `Some(None)` when it holds none, `None`
    /// when the modem did not say.
    pub smsc: Option<Option<String>>,
}

/// What `probe` learnt; fields stay `None` where the modem did not answer.
#[derive(Debug, Clone)]
pub(crate) struct Description {
    pub identity: ModemIdentity,
    pub sim: Result<SimState, InitError>,
    pub registration: Registrations,
    pub operator: Option<String>,
    pub signal: Option<SignalQuality>,
    /// `Some(None)`: the SIM holds no service centre number.
    pub smsc: Option<Option<String>>,
}

/// The outcome of an idle health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Health {
    pub signal_dbm: Option<i32>,
    pub registration: Registrations,
}

/// What an unsolicited result code means for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrcEffect {
    Nothing,
    /// A new signal reading (Huawei `^RSSI`).
    Signal(Option<i32>),
    /// A domain's registration changed; every domain's last status.
    Registration(Registrations),
    /// The modem rebooted or lost its SIM behind our back: its settings are gone and the
    /// initialisation has to run again.
    Reinitialise(String),
}

/// One open link to a modem.
pub(crate) struct Session {
    engine: AtEngine,
    urcs: mpsc::Receiver<Urc>,
    events: mpsc::Sender<ModemEvent>,
    name: String,
    timeouts: ModemTimeouts,
    /// `AT+CSMS` service 1 is in force: routed `+CMT`/`+CDS` must be acknowledged with
    /// `AT+CNMA` (TS 27.005 §3.4.4), or the modem stops routing them.
    acknowledge: bool,
    /// The storage `AT+CMGR`/`AT+CMGL`/`AT+CMGD` work on, as set by `AT+CPMS`.
    read_storage: Option<Storage>,
    /// Consecutive commands the modem did not answer.
    silent: u32,
    /// URCs taken off the channel while waiting for something else, handled once ready.
    deferred: VecDeque<Urc>,
    /// What the modem said about itself, filled in as the initialisation goes.
    identity: ModemIdentity,
    /// Each registration domain's last status, from answers and URCs alike.
    registrations: Registrations,
    /// The domains whose query the modem refused (a 2G module has no `AT+CEREG`, most
    /// modems no `AT+C5GREG`): not asked again on this link.
    refused_domains: Vec<RegistrationKind>,
    /// When the initialisation finished on this link.
    ready_at: Option<Instant>,
    /// The last send ended because its held PDU was not released (the commit that would
    /// have made the message durable failed): the store's trouble, not the modem's.
    withdrawn: bool,
}

impl Session {
    pub(crate) fn new(
        engine: AtEngine,
        urcs: mpsc::Receiver<Urc>,
        events: mpsc::Sender<ModemEvent>,
        name: &str,
        timeouts: ModemTimeouts,
    ) -> Session {
        Session {
            engine,
            urcs,
            events,
            name: name.to_owned(),
            timeouts,
            acknowledge: false,
            read_storage: None,
            silent: 0,
            deferred: VecDeque::new(),
            identity: ModemIdentity::default(),
            registrations: Registrations::default(),
            refused_domains: Vec::new(),
            ready_at: None,
            withdrawn: false,
        }
    }

    /// Whether the last [`Session::send`] ended with its held PDU withdrawn: nothing was
    /// sent and nothing is wrong with the modem.
    pub(crate) fn last_send_withdrawn(&self) -> bool {
        self.withdrawn
    }

    /// How many commands in a row the modem left unanswered.
    pub(crate) fn silent_count(&self) -> u32 {
        self.silent
    }

    /// Why the link is dead, or `None` while it is up.
    pub(crate) fn link_error(&self) -> Option<AtError> {
        self.engine.link_error()
    }

    /// Closes the link and waits until the port is released.
    pub(crate) async fn close(self) {
        self.engine.shutdown().await;
    }

    /// The next URC: first those kept aside during initialisation, then the channel's.
    /// `None` when the link is dead.
    pub(crate) async fn next_urc(&mut self) -> Option<Urc> {
        if let Some(urc) = self.deferred.pop_front() {
            return Some(urc);
        }
        self.urcs.recv().await
    }

    /// The initialisation sequence, from a port just opened to a modem registered and
    /// ready to send.
    pub(crate) async fn init(
        &mut self,
        options: &InitOptions<'_>,
    ) -> Result<Initialised, InitError> {
        self.wake().await?;
        // Every 3GPP modem powers up with echo on; the engine copes with echo, so a modem
        // refusing ATE0 is not a reason to stop.
        self.optional(&Command::echo_off()).await?;
        self.optional(&self.plain(Command::numeric_errors()))
            .await?;
        // The modem's identity first: the status page can then say which modem is failing,
        // and a modem bound by IMEI is checked before the configured PIN goes to its SIM.
        self.modem_identity().await?;
        if let Some(expected) = options.imei {
            let found = self
                .identity
                .imei
                .as_deref()
                .unwrap_or("unknown (no answer to AT+CGSN)");
            if found != expected.trim() {
                return Err(InitError::WrongImei {
                    found: found.to_owned(),
                    expected: expected.trim().to_owned(),
                });
            }
        }
        self.unlock_sim(options.pin).await?;
        self.pdu_mode().await?;
        self.message_indications(options.status_reports).await?;
        self.storage().await?;
        self.sim_identity().await?;
        let smsc = self.service_centre().await?;
        if smsc == Some(None) && !options.smsc_configured {
            return Err(InitError::NoSmsc);
        }
        // Registration changes as URCs, so the wait below and the idle loop hear of them
        // at once; polling covers modems that refuse this.
        self.enable_registration_reports().await?;
        let registration = self.wait_registration().await?;
        let operator = self.operator().await?;
        let signal_dbm = self.signal().await?.and_then(SignalQuality::dbm);
        // What the modem said while booting and initialising (`RDY`, `+CPIN: READY`,
        // `SMS Ready`, ...) is history now; only announced messages are kept.
        while let Ok(urc) = self.urcs.try_recv() {
            self.defer(urc);
        }
        self.ready_at = Some(Instant::now());
        let identity = self.identity.clone();
        info!(
            manufacturer = identity.manufacturer.as_deref().unwrap_or("?"),
            model = identity.model.as_deref().unwrap_or("?"),
            operator = operator.as_deref().unwrap_or("?"),
            signal_dbm,
            "modem ready"
        );
        Ok(Initialised {
            identity,
            operator,
            signal_dbm,
            registration,
            smsc,
        })
    }

    /// What the modem said about itself so far (also after a failed initialisation).
    pub(crate) fn identity(&self) -> &ModemIdentity {
        &self.identity
    }

    /// What `probe` shows: identity, SIM, registration, operator and signal, without
    /// waiting for registration and without failing on a locked or missing SIM.
    pub(crate) async fn describe(&mut self, pin: Option<&str>) -> Result<Description, InitError> {
        self.wake().await?;
        self.optional(&Command::echo_off()).await?;
        self.optional(&self.plain(Command::numeric_errors()))
            .await?;
        self.modem_identity().await?;
        let sim = match self.unlock_sim(pin).await {
            Ok(()) => Ok(SimState::Ready),
            Err(error @ (InitError::LinkLost(_) | InitError::NotResponding)) => return Err(error),
            Err(error) => Err(error),
        };
        self.sim_identity().await?;
        let identity = self.identity.clone();
        let registration = self.registration().await?;
        let operator = self.operator().await?;
        let signal = self.signal().await?;
        let smsc = self.service_centre().await?;
        Ok(Description {
            identity,
            sim,
            registration,
            operator,
            signal,
            smsc,
        })
    }

    /// Sends the parts of one message in order with the engine's two-step `AT+CMGS`, and
    /// returns their message references. Stops at the first failure, which carries the
    /// references of the parts sent before it. `progress`, if given, hears of each part as
    /// it is confirmed; `go`, if given, holds the first part's PDU after its prompt (see
    /// [`crate::at::engine::AtEngine::send_pdu_when`]).
    pub(crate) async fn send(
        &mut self,
        parts: &[SubmitPdu],
        progress: Option<&tokio::sync::mpsc::UnboundedSender<(usize, u8)>>,
        mut go: Option<super::Go>,
    ) -> Result<Vec<u8>, SendError> {
        let mut sent = Vec::with_capacity(parts.len());
        self.withdrawn = false;
        for (index, part) in parts.iter().enumerate() {
            let answer = self
                .engine
                .send_pdu_when(
                    part.tpdu_len(),
                    &part.hex(),
                    self.timeouts.prompt,
                    self.timeouts.submit,
                    // Only the first part waits: once it is out, the message is allowed.
                    go.take(),
                )
                .await;
            match answer {
                Ok(reference) => {
                    self.silent = 0;
                    debug!(part = index + 1, of = parts.len(), reference, "part sent");
                    sent.push(reference);
                    if let Some(progress) = progress {
                        let _ = progress.send((index, reference));
                    }
                }
                Err(error @ AtError::Withdrawn { .. }) => {
                    self.note(&error);
                    self.withdrawn = true;
                    debug!(%error, "held PDU withdrawn");
                    return Err(send_error(&error, index, parts.len(), sent, false));
                }
                Err(error) => {
                    self.note(&error);
                    warn!(part = index + 1, of = parts.len(), %error, "part not sent");
                    let starting = self.ready_at.is_some_and(|at| at.elapsed() < STARTUP_GRACE);
                    return Err(send_error(&error, index, parts.len(), sent, starting));
                }
            }
        }
        Ok(sent)
    }

    /// An idle health check: the signal, and whether the modem is still registered.
    /// Errors only when the modem does not answer (or the link is gone).
    pub(crate) async fn health(&mut self) -> Result<Health, AtError> {
        let signal_dbm = match self.run(&self.plain(Command::signal_quality())).await {
            Ok(answer) => SignalQuality::from_response(&answer)
                .ok()
                .and_then(SignalQuality::dbm),
            Err(error) if is_silence(&error) || error.is_link_down() => return Err(error),
            Err(error) => {
                debug!(%error, "AT+CSQ refused");
                None
            }
        };
        let registration = self.query_registrations().await?;
        Ok(Health {
            signal_dbm,
            registration,
        })
    }

    /// Sweeps the message storage once, after initialisation: messages that arrived while
    /// nobody listened are read (status reports become events) and deleted, so the
    /// storage never fills.
    pub(crate) async fn sweep_storage(&mut self) -> Result<(), AtError> {
        let list = self.slow(Command::list_messages(ListFilter::All), 6);
        let answer = match self.run(&list).await {
            Ok(answer) => answer,
            Err(error) if error.is_link_down() => return Err(error),
            Err(error) => {
                warn!(%error, "cannot list stored messages");
                return Ok(());
            }
        };
        let messages = StoredMessage::list_from_response(&answer);
        if !messages.is_empty() {
            info!(count = messages.len(), "stored messages found at start");
        }
        for message in messages {
            if let Some(pdu) = &message.pdu {
                self.take_pdu(pdu, message.length, "stored").await;
            }
            self.delete(message.index).await?;
        }
        Ok(())
    }

    /// Acts on one URC: reads and deletes announced messages, turns status reports into
    /// events, and tells the driver about signal, registration and reboots. Errors only
    /// when the link died meanwhile.
    pub(crate) async fn handle_urc(&mut self, urc: Urc) -> Result<UrcEffect, AtError> {
        match urc {
            Urc::MessageStored { storage, index } | Urc::StatusReportStored { storage, index } => {
                self.take_stored(&storage, index).await?;
                Ok(UrcEffect::Nothing)
            }
            Urc::Message { length, pdu } => {
                self.take_pdu(&pdu, length, "routed").await;
                self.acknowledge().await?;
                Ok(UrcEffect::Nothing)
            }
            Urc::StatusReport { length, pdu } => {
                self.take_pdu(&pdu, length, "routed").await;
                self.acknowledge().await?;
                Ok(UrcEffect::Nothing)
            }
            Urc::Registration { kind, registration } => {
                self.registrations.set(kind, Some(registration.status));
                Ok(UrcEffect::Registration(self.registrations))
            }
            Urc::Rssi(rssi) => Ok(UrcEffect::Signal(command::rssi_dbm(rssi))),
            // Quectel EC25 and SIMCom say RDY after booting; `+CFUN`/power-down notices
            // likewise mean the modem restarted or is going away: echo, PDU mode and the
            // indications are back to their defaults.
            Urc::Ready | Urc::PoweredDown => Ok(UrcEffect::Reinitialise(
                "the modem restarted by itself".to_owned(),
            )),
            Urc::SimState(SimState::Ready) => Ok(UrcEffect::Nothing),
            Urc::SimState(state) => Ok(UrcEffect::Reinitialise(format!(
                "the SIM changed state: {}",
                sim_state_text(&state)
            ))),
            other => {
                debug!(urc = ?other, "URC ignored");
                Ok(UrcEffect::Nothing)
            }
        }
    }

    /// Resets a modem that stopped answering: `AT+CFUN=1,1` (TS 27.007 §8.2), or `ATZ` if
    /// that fails. The driver closes and reopens the port afterwards either way.
    pub(crate) async fn reset(&mut self) {
        let restart = self.slow(Command::restart(), 3);
        match self.run(&restart).await {
            Ok(_) => {
                info!("modem restarted with AT+CFUN=1,1");
                return;
            }
            Err(error) if error.is_link_down() => return,
            Err(error) => warn!(%error, "AT+CFUN=1,1 failed; trying ATZ"),
        }
        match self.run(&self.plain(Command::reset())).await {
            Ok(_) => info!("modem reset with ATZ"),
            Err(error) => warn!(%error, "ATZ failed too"),
        }
    }

    // ---- initialisation steps ----

    /// Sends `AT` until `OK`: a modem that just booted (or a USB stick just plugged in)
    /// needs a few tries before it answers.
    async fn wake(&mut self) -> Result<(), InitError> {
        let attempt = self.timeouts.command.min(Duration::from_secs(1));
        let deadline = Instant::now() + (self.timeouts.command * 3).max(attempt);
        loop {
            let at = Command::at().with_timeout(attempt);
            match self.run(&at).await {
                Ok(_) => return Ok(()),
                Err(error) if error.is_link_down() => return Err(InitError::LinkLost(error)),
                Err(error) => debug!(%error, "no OK to AT yet"),
            }
            if Instant::now() >= deadline {
                return Err(InitError::NotResponding);
            }
            // A modem answering ERROR (or not at all) gets a moment before the next try.
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads the SIM's state and enters the PIN when it asks for it.
    async fn unlock_sim(&mut self, pin: Option<&str>) -> Result<(), InitError> {
        match self.sim_state().await? {
            SimState::Ready => Ok(()),
            SimState::SimPin => {
                let Some(pin) = pin else {
                    return Err(InitError::PinRequired);
                };
                let enter = Command::enter_pin(pin)
                    .map_err(|_| InitError::InvalidPin)?
                    .with_timeout(self.timeouts.command * 3);
                match self.run(&enter).await {
                    Ok(_) => info!("SIM PIN accepted"),
                    Err(error) if error.cme() == Some(&CmeError::IncorrectPassword) => {
                        return Err(InitError::PinRejected);
                    }
                    Err(error) if is_silence(&error) || error.is_link_down() => {
                        return Err(InitError::from_at(error));
                    }
                    Err(error) => return Err(self.refused("the SIM refused the PIN", error)),
                }
                // The SIM takes a moment to come up after its PIN.
                match self.sim_state().await? {
                    SimState::Ready => Ok(()),
                    other => Err(sim_error(other)),
                }
            }
            other => Err(sim_error(other)),
        }
    }

    /// `AT+CPIN?`, waiting out a SIM that is still starting (`NOT READY`, SIM busy) for up
    /// to three command timeouts.
    async fn sim_state(&mut self) -> Result<SimState, InitError> {
        let deadline = Instant::now() + self.timeouts.command * 3;
        let query = self.slow(Command::sim_state(), 3);
        loop {
            let state = match self.run(&query).await {
                Ok(answer) => match SimState::from_response(&answer) {
                    Ok(state) => state,
                    Err(error) => SimState::Other(error.to_string()),
                },
                Err(error) if is_silence(&error) || error.is_link_down() => {
                    return Err(InitError::from_at(error));
                }
                // With AT+CMEE=1 the SIM's problems come as +CME ERROR codes.
                Err(error) => match error.cme() {
                    Some(CmeError::SimNotInserted) => SimState::NotInserted,
                    Some(CmeError::SimPinRequired) => SimState::SimPin,
                    Some(CmeError::SimPukRequired) => SimState::SimPuk,
                    Some(CmeError::SimBusy) => SimState::NotReady,
                    Some(other) => SimState::Other(other.to_string()),
                    None => return Err(self.refused("the modem cannot tell the SIM state", error)),
                },
            };
            if state != SimState::NotReady || Instant::now() >= deadline {
                return Ok(state);
            }
            sleep(Duration::from_millis(250)).await;
        }
    }

    /// `AT+CNMI`: incoming messages stored and announced with `+CMTI`, status reports
    /// routed with `+CDS` or, on modems refusing that, stored and announced with `+CDSI`.
    /// Some older modems (SIMCom SIM800 firmwares) take only `<mode>` 1.
    async fn message_indications(&mut self, status_reports: bool) -> Result<(), InitError> {
        let ds_choices: &[u8] = if status_reports { &[1, 2] } else { &[0] };
        let mut accepted = None;
        'modes: for mode in [2, 1] {
            for &ds in ds_choices {
                let indications = NewMessageIndications {
                    mode,
                    ds,
                    ..NewMessageIndications::STORE_AND_ROUTE_REPORTS
                };
                let command = self.plain(Command::new_message_indications(indications));
                if self.optional(&command).await?.is_some() {
                    accepted = Some(indications);
                    break 'modes;
                }
            }
        }
        match accepted {
            Some(indications) => debug!(?indications, "new-message indications on"),
            None => warn!(
                "the modem refuses every AT+CNMI setting: incoming messages are swept only at start"
            ),
        }
        // TS 27.005 §3.2.1: with service 1, routed messages and reports wait for AT+CNMA.
        let csms = Command::new("AT+CSMS?")
            .map(|c| c.with_prefix("+CSMS:"))
            .map(|c| self.plain(c));
        if let Ok(csms) = csms
            && let Some(answer) = self.optional(&csms).await?
        {
            self.acknowledge = answer
                .value("+CSMS:")
                .and_then(|v| v.split(',').next())
                .is_some_and(|service| service.trim() == "1");
            debug!(acknowledge = self.acknowledge, "message service");
        }
        Ok(())
    }

    /// `AT+CPMS`: the SIM for everything, or the modem's memory where the SIM's cannot be
    /// chosen.
    async fn storage(&mut self) -> Result<(), InitError> {
        for storage in [Storage::Sim, Storage::Modem] {
            let command = self.slow(Command::preferred_storage(storage, storage, storage), 3);
            if let Some(answer) = self.optional(&command).await? {
                self.read_storage = Some(storage);
                if let Ok(usage) = command::StorageUsage::from_response(&answer) {
                    debug!(storage = storage.as_str(), memories = ?usage.memories, "message storage");
                }
                return Ok(());
            }
        }
        warn!("the modem refuses AT+CPMS; using its default message storage");
        Ok(())
    }

    /// Maker, model, firmware and IMEI, each where the modem answers.
    async fn modem_identity(&mut self) -> Result<(), InitError> {
        let text = |answer: Option<Response>| answer.and_then(|a| command::text_answer(&a).ok());
        self.identity.manufacturer =
            text(self.optional(&self.plain(Command::manufacturer())).await?);
        self.identity.model = text(self.optional(&self.plain(Command::model())).await?);
        self.identity.firmware = text(self.optional(&self.plain(Command::firmware())).await?);
        self.identity.imei = self
            .optional(&self.plain(Command::imei()))
            .await?
            .and_then(|a| command::imei(&a).ok());
        Ok(())
    }

    /// The SIM's IMSI and ICCID (readable once the SIM is unlocked), by whichever ICCID
    /// command the modem answers.
    async fn sim_identity(&mut self) -> Result<(), InitError> {
        self.identity.imsi = self
            .optional(&self.plain(Command::imsi()))
            .await?
            .and_then(|a| command::imsi(&a).ok());
        self.identity.iccid = None;
        for query in Command::iccid_queries() {
            let query = self.plain(query);
            if let Some(answer) = self.optional(&query).await?
                && let Ok(value) = command::iccid(&answer)
            {
                self.identity.iccid = Some(value);
                break;
            }
        }
        Ok(())
    }

    /// `AT+CMGF=0`. Right after a start, SMS commands are refused until the SMS service is
    /// up (SIM800 answers `ERROR` until it says `SMS Ready`: Seeed-Studio/GPRS_SIM900
    /// issue 39; a busy SIM: python-gsmmodem issues 10 and 11): refusals are retried for
    /// up to `timeouts.registration`, saying what is awaited, before PDU mode is blamed.
    async fn pdu_mode(&mut self) -> Result<(), InitError> {
        let deadline = Instant::now() + self.timeouts.registration;
        let pdu_mode = self.plain(Command::pdu_mode());
        let mut waited = false;
        loop {
            let error = match self.run(&pdu_mode).await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if is_silence(&error) || error.is_link_down() || Instant::now() >= deadline {
                let what = if waited {
                    "the modem's SMS service did not start (AT+CMGF=0 still refused after waiting)"
                } else {
                    "the modem refuses PDU mode (AT+CMGF=0)"
                };
                return Err(self.refused(what, error));
            }
            if !waited {
                info!(%error, "waiting for the modem's SMS service to start");
                waited = true;
            }
            sleep(Duration::from_millis(500)).await;
        }
    }

    /// `AT+CSCA?`: `Some(None)` when the SIM holds no service centre number, `None` when
    /// the modem does not say.
    async fn service_centre(&mut self) -> Result<Option<Option<String>>, InitError> {
        Ok(self
            .optional(&self.plain(Command::service_centre()))
            .await?
            .and_then(|answer| command::service_centre(&answer).ok()))
    }

    /// Turns on registration URCs in every domain the modem accepts: `=2` (with the
    /// location), falling back to `=1`. A refusal is normal (a 2G module has no `+CEREG`,
    /// most modems no `+C5GREG`); polling covers modems that refuse them all.
    async fn enable_registration_reports(&mut self) -> Result<(), InitError> {
        for kind in RegistrationKind::ALL {
            for n in [2, 1] {
                let reports = self.plain(Command::registration_reports(kind, n));
                if self.optional(&reports).await?.is_some() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Waits until any domain says registered, for up to `timeouts.registration`, polling
    /// every domain and listening for their URCs.
    async fn wait_registration(&mut self) -> Result<Registrations, InitError> {
        let deadline = Instant::now() + self.timeouts.registration;
        let poll =
            (self.timeouts.command / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            let registrations = self.registration().await?;
            if registrations.is_registered() {
                return Ok(registrations);
            }
            if Instant::now() >= deadline {
                return Err(InitError::NotRegistered(self.registrations.domains_text()));
            }
            let wake_at = (Instant::now() + poll).min(deadline);
            loop {
                let urc = tokio::select! {
                    urc = self.urcs.recv() => urc,
                    () = sleep_until(wake_at) => break,
                };
                match urc {
                    None => {
                        let error = self.engine.link_error().unwrap_or(AtError::Closed);
                        return Err(InitError::LinkLost(error));
                    }
                    Some(Urc::Registration { kind, registration }) => {
                        self.registrations.set(kind, Some(registration.status));
                        if self.registrations.is_registered() {
                            return Ok(self.registrations);
                        }
                    }
                    Some(other) => self.defer(other),
                }
            }
        }
    }

    /// Every domain's registration once; domains the modem refuses stay unknown.
    async fn registration(&mut self) -> Result<Registrations, InitError> {
        self.query_registrations().await.map_err(InitError::from_at)
    }

    /// Asks every domain not refused before; errors only when the modem does not answer
    /// (or the link is gone).
    async fn query_registrations(&mut self) -> Result<Registrations, AtError> {
        for kind in RegistrationKind::ALL {
            if self.refused_domains.contains(&kind) {
                continue;
            }
            let query = self.plain(Command::registration(kind));
            match self.run(&query).await {
                Ok(answer) => {
                    let status = Registration::from_response(&answer, kind)
                        .ok()
                        .map(|r| r.status);
                    self.registrations.set(kind, status);
                }
                Err(error) if is_silence(&error) || error.is_link_down() => return Err(error),
                Err(error) => {
                    debug!(%error, "registration query refused; not asked again");
                    self.refused_domains.push(kind);
                    self.registrations.set(kind, None);
                }
            }
        }
        Ok(self.registrations)
    }

    /// The operator's long name (`AT+COPS=3,0`, then `AT+COPS?`).
    async fn operator(&mut self) -> Result<Option<String>, InitError> {
        self.optional(&self.plain(Command::operator_name_format()))
            .await?;
        let query = self.slow(Command::operator(), 3);
        Ok(self
            .optional(&query)
            .await?
            .and_then(|answer| Operator::from_response(&answer).ok())
            .and_then(|operator| operator.name))
    }

    async fn signal(&mut self) -> Result<Option<SignalQuality>, InitError> {
        Ok(self
            .optional(&self.plain(Command::signal_quality()))
            .await?
            .and_then(|answer| SignalQuality::from_response(&answer).ok()))
    }

    // ---- incoming messages and status reports ----

    /// Reads the message at `index` of `storage`, then deletes it.
    async fn take_stored(&mut self, storage: &str, index: u32) -> Result<(), AtError> {
        // The announcement names the storage (`"SR"` for +CDSI on Quectel); switch the
        // read storage to it when it is not the one in use, and back afterwards.
        let wanted = storage_from_name(storage);
        let switch = wanted.filter(|w| Some(*w) != self.read_storage);
        if let Some(other) = switch {
            self.set_read_storage(other).await?;
        }
        let read = self.slow(Command::read_message(index), 3);
        match self.run(&read).await {
            Ok(answer) => match StoredMessage::read_from_response(&answer, index) {
                Ok(message) => match &message.pdu {
                    Some(pdu) => self.take_pdu(pdu, message.length, "stored").await,
                    None => warn!(index, "stored message without a PDU"),
                },
                Err(error) => debug!(index, %error, "nothing stored at the announced index"),
            },
            Err(error) if error.is_link_down() => return Err(error),
            Err(error) => warn!(index, %error, "cannot read a stored message"),
        }
        self.delete(index).await?;
        if switch.is_some()
            && let Some(previous) = self.read_storage
        {
            self.set_read_storage(previous).await?;
        }
        Ok(())
    }

    /// `AT+CPMS="<storage>"`: changes only the storage read and deleted from.
    async fn set_read_storage(&mut self, storage: Storage) -> Result<(), AtError> {
        let Ok(command) = Command::new(&format!("AT+CPMS=\"{}\"", storage.as_str())) else {
            return Ok(());
        };
        let command = self.slow(command.with_prefix("+CPMS:"), 3);
        match self.run(&command).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_link_down() => Err(error),
            Err(error) => {
                warn!(storage = storage.as_str(), %error, "cannot switch the read storage");
                Ok(())
            }
        }
    }

    async fn delete(&mut self, index: u32) -> Result<(), AtError> {
        let delete = self.slow(Command::delete_message(index), 3);
        match self.run(&delete).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_link_down() => Err(error),
            Err(error) => {
                warn!(index, %error, "cannot delete a stored message");
                Ok(())
            }
        }
    }

    /// Decodes one received PDU: an incoming SMS is logged (masked sender and length
    /// only) and dropped; a status report becomes a [`ModemEvent::StatusReport`].
    async fn take_pdu(&mut self, hex: &str, tpdu_len: usize, how: &'static str) {
        let decoded = decode_hex(hex).and_then(|bytes| {
            // TS 27.005 §3.4.1 gives the PDU with the SMSC field first, and `<length>`
            // counts the octets after it; a modem sending the TPDU alone (length equal to
            // the octets received) is read as such.
            if bytes.len() == tpdu_len {
                decode_tpdu(&bytes)
            } else {
                decode_pdu(&bytes)
            }
        });
        match decoded {
            Ok(Pdu::Deliver(deliver)) => info!(
                from = %crate::mask::phone(&deliver.originator.value),
                chars = deliver.user_data.text().map_or(0, |t| t.chars().count()),
                how,
                "incoming SMS read and dropped (smsbridge only sends)"
            ),
            Ok(Pdu::StatusReport(report)) => {
                info!(
                    reference = report.message_reference,
                    status = report.status.code(),
                    "status report"
                );
                let event = ModemEvent::StatusReport {
                    modem: self.name.clone(),
                    report,
                };
                match timeout(self.timeouts.command, self.events.send(event)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => debug!("nobody listens for status reports"),
                    Err(_) => warn!("status report dropped: the event channel stayed full"),
                }
            }
            Ok(Pdu::Submit(_)) => debug!(how, "an outgoing message was in the storage"),
            Err(error) => warn!(%error, how, "undecodable PDU from the modem"),
        }
    }

    /// `AT+CNMA` after a routed message or report, when the modem wants it.
    async fn acknowledge(&mut self) -> Result<(), AtError> {
        if !self.acknowledge {
            return Ok(());
        }
        match self.run(&self.plain(Command::acknowledge())).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_link_down() => Err(error),
            Err(error) => {
                // 340: the modem did not expect one after all.
                if error.cms() == Some(&CmsError::NoCnmaExpected) {
                    self.acknowledge = false;
                }
                warn!(%error, "AT+CNMA refused");
                Ok(())
            }
        }
    }

    // ---- plumbing ----

    /// Keeps a URC for later, dropping what only mattered at the moment it came.
    fn defer(&mut self, urc: Urc) {
        let keep = matches!(
            urc,
            Urc::MessageStored { .. }
                | Urc::Message { .. }
                | Urc::StatusReport { .. }
                | Urc::StatusReportStored { .. }
        );
        if !keep {
            return;
        }
        if self.deferred.len() >= DEFERRED_CAPACITY {
            self.deferred.pop_front();
        }
        self.deferred.push_back(urc);
    }

    /// Runs a command, counting consecutive unanswered ones.
    async fn run(&mut self, command: &Command) -> Result<Response, AtError> {
        let result = self.engine.run(command).await;
        match &result {
            Ok(_) => self.silent = 0,
            Err(error) => self.note(error),
        }
        result
    }

    fn note(&mut self, error: &AtError) {
        if is_silence(error) {
            self.silent += 1;
        } else if !error.is_link_down() {
            // The modem answered, even if with an error.
            self.silent = 0;
        }
    }

    /// Runs a command the driver can do without: `Ok(None)` when the modem refuses it or
    /// lets one attempt time out; `Err` when the link is gone or the modem stopped
    /// answering altogether.
    async fn optional(&mut self, command: &Command) -> Result<Option<Response>, InitError> {
        match self.run(command).await {
            Ok(answer) => Ok(Some(answer)),
            Err(error) if error.is_link_down() => Err(InitError::LinkLost(error)),
            Err(error @ AtError::NotResponding { .. }) => Err(InitError::from_at(error)),
            Err(error) => {
                debug!(command = command.display(), %error, "optional command failed");
                Ok(None)
            }
        }
    }

    fn refused(&self, what: &'static str, error: AtError) -> InitError {
        if is_silence(&error) || error.is_link_down() {
            InitError::from_at(error)
        } else {
            InitError::Refused { what, error }
        }
    }

    /// A command with the configured plain-command timeout.
    fn plain(&self, command: Command) -> Command {
        command.with_timeout(self.timeouts.command)
    }

    /// A command that may take `factor` times longer (SIM, network, storage).
    fn slow(&self, command: Command, factor: u32) -> Command {
        command.with_timeout(self.timeouts.command * factor)
    }
}

/// The init error for a SIM state that stops the modem.
fn sim_error(state: SimState) -> InitError {
    match state {
        SimState::Ready => InitError::Sim("ready".to_owned()),
        SimState::SimPin => InitError::PinRequired,
        SimState::SimPuk => InitError::PukRequired,
        SimState::NotInserted => InitError::NoSim,
        other => InitError::Sim(sim_state_text(&other)),
    }
}

/// A storage named in a `+CMTI`/`+CDSI` announcement.
fn storage_from_name(name: &str) -> Option<Storage> {
    match name.trim().trim_matches('"').to_ascii_uppercase().as_str() {
        "SM" => Some(Storage::Sim),
        "ME" => Some(Storage::Modem),
        "MT" => Some(Storage::Both),
        "SR" => Some(Storage::StatusReports),
        _ => None,
    }
}

/// The SIM state in words.
pub(crate) fn sim_state_text(state: &SimState) -> String {
    match state {
        SimState::Ready => "ready".to_owned(),
        SimState::SimPin => "PIN required".to_owned(),
        SimState::SimPuk => "blocked, PUK required".to_owned(),
        SimState::PhSimPin => "phone-to-SIM PIN required (SIM lock)".to_owned(),
        SimState::SimPin2 => "PIN2 required".to_owned(),
        SimState::SimPuk2 => "PUK2 required".to_owned(),
        SimState::NotInserted => "not inserted".to_owned(),
        SimState::NotReady => "not ready".to_owned(),
        SimState::Other(code) => code.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A status report (TP-MR 42, delivered), SMSC field first; its TPDU is 25 octets.
    const REPORT: &str = "07911326040000F0062A0B912110550521F3521170214370325211702143803246";

    /// The answers of a healthy, registered modem.
    fn healthy(command: &str) -> String {
        let info = |line: &str| format!("\r\n{line}\r\n\r\nOK\r\n");
        match command {
            "AT+CPIN?" => info("+CPIN: READY"),
            "AT+CREG?" => info("+CREG: 1,1"),
            "AT+CSQ" => info("+CSQ: 17,99"),
            "AT+COPS?" => info("+COPS: 0,0,\"Test Network\",7"),
            "AT+CGMI" => info("ACME"),
            "AT+CGMM" => info("M1"),
            "AT+CGMR" => info("1.0"),
            "AT+CGSN" => info("490154203237518"),
            "AT+CIMI" => info("001010123456789"),
            "AT+CCID" => info("89001010123456789015"),
            "AT+CSMS?" => info("+CSMS: 0,1,1,1"),
            c if c.starts_with("AT+CPMS=") => info("+CPMS: 0,30,0,30,0,30"),
            _ => "\r\nOK\r\n".to_owned(),
        }
    }

    /// A session on a fake modem that answers each command line with `answer(line)` and
    /// logs the lines it got.
    fn fake_modem(
        answer: impl Fn(&str) -> String + Send + 'static,
    ) -> (Session, Arc<Mutex<Vec<String>>>, mpsc::Receiver<ModemEvent>) {
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        tokio::spawn(async move {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while theirs.read_exact(&mut byte).await.is_ok() {
                if byte[0] != b'\r' {
                    line.push(byte[0]);
                    continue;
                }
                let command = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                let reply = answer(&command);
                seen.lock().unwrap().push(command);
                if theirs.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let (engine, urcs) = AtEngine::spawn(ours);
        let (events, reports) = mpsc::channel(4);
        let timeouts = ModemTimeouts {
            registration: Duration::from_secs(2),
            ..ModemTimeouts::default()
        };
        let session = Session::new(engine, urcs, events, "fake", timeouts);
        (session, log, reports)
    }

    const OPTIONS: InitOptions<'static> = InitOptions {
        pin: None,
        imei: None,
        status_reports: true,
        smsc_configured: false,
    };

    #[tokio::test(start_paused = true)]
    async fn the_initialisation_sequence() {
        let (mut session, log, _) = fake_modem(healthy);
        let ready = session.init(&OPTIONS).await.expect("initialised");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "AT",
                "ATE0",
                "AT+CMEE=1",
                "AT+CGMI",
                "AT+CGMM",
                "AT+CGMR",
                "AT+CGSN",
                "AT+CPIN?",
                "AT+CMGF=0",
                "AT+CNMI=2,1,0,1,0",
                "AT+CSMS?",
                "AT+CPMS=\"SM\",\"SM\",\"SM\"",
                "AT+CIMI",
                "AT+CCID",
                "AT+CSCA?",
                "AT+CREG=2",
                "AT+CGREG=2",
                "AT+CEREG=2",
                "AT+C5GREG=2",
                "AT+CREG?",
                "AT+CGREG?",
                "AT+CEREG?",
                "AT+C5GREG?",
                "AT+COPS=3,0",
                "AT+COPS?",
                "AT+CSQ",
            ]
        );
        assert_eq!(ready.identity.manufacturer.as_deref(), Some("ACME"));
        assert_eq!(
            ready.identity.iccid.as_deref(),
            Some("89001010123456789015")
        );
        assert_eq!(ready.operator.as_deref(), Some("Test Network"));
        assert_eq!(ready.signal_dbm, Some(-79));
    }

    #[tokio::test(start_paused = true)]
    async fn a_modem_refusing_routed_reports_gets_stored_ones() {
        let (mut session, log, _) = fake_modem(|command| match command {
            "AT+CNMI=2,1,0,1,0" => "\r\n+CMS ERROR: 303\r\n".to_owned(),
            other => healthy(other),
        });
        session.init(&OPTIONS).await.expect("initialised");
        let log = log.lock().unwrap();
        let cnmi: Vec<&String> = log.iter().filter(|c| c.starts_with("AT+CNMI")).collect();
        assert_eq!(cnmi, ["AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0"]);
    }

    #[tokio::test(start_paused = true)]
    async fn sim_states_that_stop_the_modem_end_the_initialisation() {
        let cases: [(&str, InitError); 4] = [
            ("\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n", InitError::PukRequired),
            ("\r\n+CME ERROR: 10\r\n", InitError::NoSim),
            ("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n", InitError::PinRequired),
            (
                "\r\n+CPIN: PH-SIM PIN\r\n\r\nOK\r\n",
                InitError::Sim("phone-to-SIM PIN required (SIM lock)".into()),
            ),
        ];
        for (answer, expected) in cases {
            let (mut session, log, _) = fake_modem(move |command| match command {
                "AT+CPIN?" => answer.to_owned(),
                other => healthy(other),
            });
            assert_eq!(session.init(&OPTIONS).await.unwrap_err(), expected);
            assert!(!log.lock().unwrap().iter().any(|c| c == "AT+CMGF=0"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_pin_is_entered_once_and_a_refusal_is_final() {
        let unlocked = Arc::new(Mutex::new(false));
        let state = unlocked.clone();
        let (mut session, log, _) = fake_modem(move |command| match command {
            "AT+CPIN?" if !*state.lock().unwrap() => "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n".to_owned(),
            "AT+CPIN=\"2468\"" => {
                *state.lock().unwrap() = true;
                "\r\nOK\r\n".to_owned()
            }
            "AT+CPIN=\"1111\"" => "\r\n+CME ERROR: 16\r\n".to_owned(),
            other => healthy(other),
        });
        let wrong = InitOptions {
            pin: Some("1111"),
            ..OPTIONS
        };
        assert_eq!(
            session.init(&wrong).await.unwrap_err(),
            InitError::PinRejected
        );
        let right = InitOptions {
            pin: Some("2468"),
            ..OPTIONS
        };
        session.init(&right).await.expect("unlocked");
        assert!(*unlocked.lock().unwrap());
        let log = log.lock().unwrap();
        let pins = log.iter().filter(|c| c.starts_with("AT+CPIN=")).count();
        assert_eq!(pins, 2, "one attempt per initialisation");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stored_status_report_is_read_from_its_storage_deleted_and_surfaced() {
        let (mut session, log, mut reports) = fake_modem(|command| match command {
            "AT+CMGR=3" => format!("\r\n+CMGR: 0,,25\r\n{REPORT}\r\n\r\nOK\r\n"),
            other => healthy(other),
        });
        session.read_storage = Some(Storage::Sim);
        let urc = Urc::StatusReportStored {
            storage: "SR".into(),
            index: 3,
        };
        assert_eq!(session.handle_urc(urc).await, Ok(UrcEffect::Nothing));
        assert_eq!(
            *log.lock().unwrap(),
            ["AT+CPMS=\"SR\"", "AT+CMGR=3", "AT+CMGD=3", "AT+CPMS=\"SM\""]
        );
        let Some(ModemEvent::StatusReport { modem, report }) = reports.recv().await else {
            panic!("no event");
        };
        assert_eq!(modem, "fake");
        assert_eq!(report.message_reference, 42);
    }

    #[tokio::test(start_paused = true)]
    async fn routed_reports_are_acknowledged_only_under_service_1() {
        for (service, acknowledged) in [("0", false), ("1", true)] {
            let (mut session, log, mut reports) = fake_modem(move |command| match command {
                "AT+CSMS?" => format!("\r\n+CSMS: {service},1,1,1\r\n\r\nOK\r\n"),
                other => healthy(other),
            });
            session.init(&OPTIONS).await.expect("initialised");
            log.lock().unwrap().clear();
            let urc = Urc::StatusReport {
                length: 25,
                pdu: REPORT.into(),
            };
            assert_eq!(session.handle_urc(urc).await, Ok(UrcEffect::Nothing));
            assert!(matches!(
                reports.recv().await,
                Some(ModemEvent::StatusReport { .. })
            ));
            let sent_cnma = log.lock().unwrap().iter().any(|c| c == "AT+CNMA");
            assert_eq!(sent_cnma, acknowledged, "service {service}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reboot_or_a_lost_sim_calls_for_a_new_initialisation() {
        let (mut session, _, _) = fake_modem(healthy);
        for urc in [
            Urc::Ready,
            Urc::PoweredDown,
            Urc::SimState(SimState::NotInserted),
        ] {
            assert!(matches!(
                session.handle_urc(urc).await,
                Ok(UrcEffect::Reinitialise(_))
            ));
        }
        for urc in [
            Urc::Boot,
            Urc::SimState(SimState::Ready),
            Urc::Other("^SIMST:1".into()),
        ] {
            assert_eq!(session.handle_urc(urc).await, Ok(UrcEffect::Nothing));
        }
        assert_eq!(
            session.handle_urc(Urc::Rssi(17)).await,
            Ok(UrcEffect::Signal(Some(-79)))
        );
    }

    #[test]
    fn announced_storages_are_recognised() {
        for (name, expected) in [
            ("SM", Some(Storage::Sim)),
            ("\"SR\"", Some(Storage::StatusReports)),
            ("me", Some(Storage::Modem)),
            ("MT", Some(Storage::Both)),
            ("BM", None),
            ("", None),
        ] {
            assert_eq!(storage_from_name(name), expected, "{name}");
        }
    }

    #[test]
    fn sim_states_that_stop_the_modem_become_clear_errors() {
        for (state, expected) in [
            (SimState::SimPin, InitError::PinRequired),
            (SimState::SimPuk, InitError::PukRequired),
            (SimState::NotInserted, InitError::NoSim),
            (
                SimState::PhSimPin,
                InitError::Sim("phone-to-SIM PIN required (SIM lock)".to_owned()),
            ),
        ] {
            assert_eq!(sim_error(state), expected);
        }
    }

    /// An LTE-M/NB-IoT module (SIM7080-like) or an LTE-only network: `+CREG` never says
    /// registered, `+CEREG` does, and SMS work (botletics/SIM7000-LTE-Shield issues 50,
    /// 103, 150; TinyGSM issue 705). A refused domain is normal and not asked again; the
    /// registration is lost only when every domain says so.
    #[tokio::test(start_paused = true)]
    async fn registration_in_any_domain_is_registration() {
        let eps = Arc::new(Mutex::new("1"));
        let eps_now = eps.clone();
        let (mut session, log, _) = fake_modem(move |command| {
            let info = |line: String| format!("\r\n{line}\r\n\r\nOK\r\n");
            match command {
                "AT+CREG?" => info("+CREG: 2,0".to_owned()),
                "AT+CGREG?" => info("+CGREG: 2,4".to_owned()),
                "AT+CEREG?" => info(format!("+CEREG: 2,{}", eps_now.lock().unwrap())),
                "AT+C5GREG=2" | "AT+C5GREG=1" | "AT+C5GREG?" | "AT+CREG=2" => {
                    "\r\nERROR\r\n".to_owned()
                }
                other => healthy(other),
            }
        });
        let ready = session.init(&OPTIONS).await.expect("registered on EPS");
        assert!(ready.registration.is_registered());
        assert_eq!(
            ready.registration.get(RegistrationKind::CircuitSwitched),
            Some(crate::at::parse::RegistrationStatus::NotRegistered)
        );
        let text = ready.registration.to_string();
        assert!(
            text.starts_with("registered, home network (CS (2G/3G): not registered"),
            "{text}"
        );
        assert!(
            text.contains("EPS (LTE): registered, home network"),
            "{text}"
        );
        {
            let log = log.lock().unwrap();
            // `=2` refused, `=1` tried; the refused C5GREG query is not repeated.
            assert!(log.iter().any(|c| c == "AT+CREG=1"), "{log:?}");
            assert_eq!(
                log.iter().filter(|c| *c == "AT+C5GREG?").count(),
                1,
                "{log:?}"
            );
        }
        let health = session.health().await.expect("answered");
        assert!(health.registration.is_registered());
        *eps.lock().unwrap() = "2";
        let health = session.health().await.expect("answered");
        assert!(!health.registration.is_registered());
        assert!(health.registration.any_known());
        assert_eq!(
            log.lock()
                .unwrap()
                .iter()
                .filter(|c| *c == "AT+C5GREG?")
                .count(),
            1
        );
    }
}
