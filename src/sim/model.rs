//! The simulated modem's state machine: bytes in, bytes out, with time passed in.
//!
//! `Modem` owns everything a modem remembers (settings, SIM state, registration, message
//! storage, the message reference counter, the faults a test switched on) and answers AT
//! commands the way real modems frame them. It schedules its own timed output (boot
//! messages, the `+CMGS` answer after the send latency, registration, status reports,
//! vendor notifications) and says when it next wants to be woken.
//!
//! Architecture invariant: this module is pure. It never imports tokio, never reads the
//! clock (every method that needs time takes `now`), never does I/O, and draws randomness
//! only from a generator seeded by its configuration. It never uses `crate::at` or
//! `crate::sms`: it is their test peer and must not share their bugs.

use std::time::{Duration, Instant};

use super::command::{Arg, Cmd, Form, parse_line};
use super::pdu::{self, Concat, PduError, SubmitInfo, Timestamp};
use super::profile::{IccidCommand, Profile};

/// What the simulated modem is and how fast it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// The family of modem to imitate.
    pub profile: Profile,
    /// Time from the PDU's Ctrl-Z to the `+CMGS` answer.
    pub send_latency: Duration,
    /// Time from the `+CMGS` answer to the status report (`+CDS` / `+CDSI`).
    pub status_report_delay: Duration,
    /// Time from the SIM being ready to the network registration.
    pub registration_delay: Duration,
    /// Time after power-up or reset during which the modem hears nothing.
    pub boot_time: Duration,
    /// Period of a noisy profile's own notifications (E3372 `^RSSI`).
    pub noise_interval: Duration,
    /// Seed of the generator behind garbage bytes and notification timing.
    pub seed: u64,
    /// The SIM's PIN, if the SIM asks for one at power-up.
    pub pin: Option<String>,
    /// How many messages the message storage holds.
    pub storage_capacity: usize,
    /// Registered as roaming (stat 5) rather than home (stat 1).
    pub roaming: bool,
    /// The message reference of the first message sent.
    pub first_mr: u8,
    /// The `+CSQ` rssi once registered (0-31).
    pub rssi: u8,
    /// The service centre address the SIM holds (`AT+CSCA?`, status reports).
    pub smsc: String,
    /// Unix time at the model's creation; service centre time stamps count from it.
    pub clock_start_unix: u64,
    /// Whether a reset makes the device leave and re-enter the USB bus (the runner then
    /// closes the port and opens a new one).
    pub reenumerate_on_reset: bool,
    /// The network has no 2G/3G (an EC25 on an LTE-only network): the circuit-switched
    /// domain never registers, `+CREG` says `0,0`, SMS go over SGs or IMS
    /// (vshymanskyy/TinyGSM issue 705).
    pub lte_only: bool,
    /// SMS commands answer `ERROR` for this long after the SIM is ready, as a SIM800
    /// does before `SMS Ready` (Seeed-Studio/GPRS_SIM900 issue 39).
    pub sms_ready_delay: Duration,
    /// The modem boots into PDU entry, as if a previous client was killed at the prompt:
    /// it answers nothing until ESC or Ctrl-Z (issue 9).
    pub pdu_entry_at_boot: bool,
}

impl ModelConfig {
    /// Realistic timings for `profile`: seconds-long sends, boots and registration.
    pub fn new(profile: Profile) -> ModelConfig {
        ModelConfig {
            profile,
            send_latency: profile.default_send_latency(),
            status_report_delay: Duration::from_secs(5),
            registration_delay: Duration::from_secs(3),
            boot_time: profile.default_boot_time(),
            noise_interval: Duration::from_secs(5),
            seed: 0,
            pin: None,
            storage_capacity: 30,
            roaming: false,
            first_mr: 0,
            rssi: 21,
            smsc: "+447785016005".to_string(),
            clock_start_unix: 1_735_689_600,
            reenumerate_on_reset: profile.reenumerates_on_reset(),
            lte_only: false,
            sms_ready_delay: Duration::ZERO,
            pdu_entry_at_boot: false,
        }
    }

    /// Timings for tests: no boot time, immediate registration, sends answered after
    /// 20 ms, status reports 40 ms later, noise every second.
    pub fn fast(profile: Profile) -> ModelConfig {
        ModelConfig {
            send_latency: Duration::from_millis(20),
            status_report_delay: Duration::from_millis(40),
            registration_delay: Duration::ZERO,
            boot_time: Duration::ZERO,
            noise_interval: Duration::from_secs(1),
            ..ModelConfig::new(profile)
        }
    }
}

/// A misbehaviour a test can switch on at any time; see `Modem::set_fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next `count` valid PDUs are answered `+CMS ERROR: <code>` after the send
    /// latency, as when the network refuses them.
    CmsErrorForNextSends { code: u16, count: u32 },
    /// The modem hears nothing and says nothing, not even notifications, until cleared.
    NoAnswer,
    /// Bytes that are not text (NUL and 0x80-0xFF) arrive before every answer and
    /// notification, as from a noisy line or a modem that is still booting.
    Garbage,
    /// A notification (`+CMTI` waiting to be told, or the profile's own noise such as
    /// `^RSSI`) arrives between an answer's information lines and its final `OK`.
    UrcInsideAnswer,
    /// Registration takes this long; switched on while registered, the modem loses the
    /// network and searches for this long.
    SlowRegistration(Duration),
    /// The SIM wants this PIN; switched on while running, the SIM locks now.
    PinRequired(String),
    /// `AT+CMGS=<n>` never shows the `> ` prompt (the modem still takes the PDU).
    NoPromptOnCmgs,
    /// The PDU is accepted and sent, but the `+CMGS` answer never comes.
    NoCmgsResult,
    /// The status report for part `part` (from 1) of any concatenated message is held
    /// back, as while the SMSC is still trying to deliver it; clearing the fault sends the
    /// held reports at once.
    HoldStatusReport { part: u8 },
    /// The status report for part `part` (from 1) of any concatenated message carries
    /// TP-Status `status` instead of 0x00 (3GPP TS 23.040 §9.2.3.15: `0x40..=0x7F` are
    /// permanent errors or ones the SMSC gave up on, e.g. 0x41 incompatible destination).
    StatusReportStatus { part: u8, status: u8 },
}

/// A message the modem accepted and sent, as the simulator's log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// The whole PDU as the client wrote it (SMSC field first), upper-case hex.
    pub pdu_hex: String,
    /// The TPDU length, as `AT+CMGS=<len>` stated it.
    pub tpdu_len: usize,
    /// The message reference the modem assigned and answered with `+CMGS: <mr>`.
    pub mr: u8,
    /// TP-MR as written in the PDU.
    pub tp_mr: u8,
    /// The destination number (`+` and digits when international).
    pub destination: String,
    /// TP-SRR was set.
    pub status_report_requested: bool,
    /// TP-DCS.
    pub dcs: u8,
    /// TP-UDL.
    pub user_data_len: u8,
    /// The concatenation header, for a part of a longer message.
    pub concat: Option<Concat>,
}

/// Something the runner must know or act on, drained with `Modem::take_notices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A message was accepted for sending.
    Accepted(ReceivedSms),
    /// ESC ended a PDU entry after the prompt: nothing was sent (TS 27.005 §3.5.1).
    Cancelled,
    /// The modem reset itself (`AT+CFUN=1,1`). When `reenumerates`, it is a USB device
    /// that drops off the bus: the model is now off, and the runner closes the port, opens
    /// a new one and powers the model on (`Modem::power_on`), after which it boots for
    /// `boot_time`. Otherwise the model is already booting.
    Reset {
        reenumerates: bool,
        boot_time: Duration,
    },
}

/// Where an injected incoming message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Stored at this index (as the modem numbers it) and announced per `AT+CNMI`.
    Stored { index: usize },
    /// Shown directly with `+CMT` (`AT+CNMI` mt=2), not stored.
    Forwarded,
}

/// Why an incoming message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    #[error("not an SMS-DELIVER PDU: {0}")]
    Pdu(#[from] PduError),
    #[error("the message storage is full")]
    StorageFull,
    #[error("the modem is off, booting, or its SIM is locked")]
    NotReady,
}

/// The simulated modem.
#[derive(Debug)]
pub struct Modem {
    cfg: ModelConfig,
    origin: Instant,
    rng: Rng,
    power: Power,
    mode: Mode,
    line: Vec<u8>,
    line_overflow: bool,
    held_input: Vec<u8>,
    /// Status reports held back by `Fault::HoldStatusReport`: (mr, recipient, submitted, part).
    held_reports: Vec<(u8, Vec<u8>, Instant, Option<u8>)>,
    out: Vec<u8>,
    held_urcs: Vec<Vec<u8>>,
    answering: bool,
    after_answer: Vec<(Vec<u8>, bool)>,
    settings: Settings,
    cfun: u8,
    sim: Sim,
    reg: Reg,
    /// Each domain's own `<stat>` (CS, PS, EPS): the radio's state says what the network
    /// offers, each domain what it makes of it, so one value never answers them all.
    domains: [u8; 3],
    /// SMS commands are refused until then.
    sms_ready_at: Option<Instant>,
    reg_epoch: u64,
    rssi: u8,
    smsc: String,
    next_mr: u8,
    storage: Vec<Option<Stored>>,
    received: Vec<ReceivedSms>,
    faults: Vec<Fault>,
    timers: Vec<Timer>,
    timer_seq: u64,
    notices: Vec<Notice>,
    boots: u64,
    noise_ticks: u64,
    last_rejection: Option<PduError>,
}

/// Longest command line kept; longer lines are answered `ERROR`.
const MAX_LINE: usize = 560;
/// Longest PDU kept, in hex digits (an SMSC field and the longest TPDU, with room).
const MAX_PDU_HEX: usize = 2 * (12 + 180);
/// Longest `AT+CMGS=<len>` accepted.
const MAX_TPDU: i64 = 180;
/// Most input bytes kept while a send is in progress.
const MAX_HELD_INPUT: usize = 4096;
/// Most notifications held back before the oldest are dropped.
const MAX_HELD_URCS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Off,
    Booting,
    On,
}

#[derive(Debug)]
enum Mode {
    Command,
    Pdu {
        declared: usize,
        hex: Vec<u8>,
        overflow: bool,
    },
    Sending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sim {
    Ready,
    Pin { pin: String, wrong: u8 },
    Puk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    Idle,
    Searching,
    Registered,
}

#[derive(Debug, Clone)]
struct Settings {
    echo: bool,
    cmee: u8,
    cmgf: u8,
    cscs: String,
    cnmi: [u8; 5],
    creg: u8,
    cgreg: u8,
    cereg: u8,
    cops_format: u8,
    csmp: [i64; 4],
    csms: u8,
    mem: [String; 3],
}

impl Settings {
    fn defaults(profile: Profile) -> Settings {
        Settings {
            // V.250 6.2.4: echo is on after power-up and after ATZ / AT&F.
            echo: true,
            cmee: profile.default_cmee(),
            cmgf: 0,
            cscs: if profile == Profile::Ec25 {
                "GSM"
            } else {
                "IRA"
            }
            .to_string(),
            cnmi: [2, 1, 0, 0, 0],
            creg: 0,
            cgreg: 0,
            cereg: 0,
            cops_format: 0,
            csmp: [17, 167, 0, 0],
            csms: 0,
            mem: ["SM".to_string(), "SM".to_string(), "SM".to_string()],
        }
    }
}

#[derive(Debug, Clone)]
struct Stored {
    stat: u8,
    pdu: Vec<u8>,
}

#[derive(Debug)]
struct Timer {
    at: Instant,
    seq: u64,
    event: Event,
}

#[derive(Debug)]
enum Event {
    BootDone,
    Registered {
        epoch: u64,
    },
    SendDone(SendResult),
    StatusReport {
        mr: u8,
        recipient: Vec<u8>,
        submitted: Instant,
        /// The part number, for a part of a concatenated message.
        part: Option<u8>,
    },
    Noise,
}

#[derive(Debug, Clone, Copy)]
enum SendResult {
    Sent(u8),
    Cms(u16),
}

/// The result of one command of a line.
enum Reply {
    Lines(Vec<String>),
    Prompt { declared: usize },
    Reboot,
}

/// A final result other than `OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Error,
    Cme(u16),
    Cms(u16),
}

type Outcome = Result<Reply, Failure>;

fn ok() -> Outcome {
    Ok(Reply::Lines(Vec::new()))
}

fn info(s: impl Into<String>) -> Outcome {
    Ok(Reply::Lines(vec![s.into()]))
}

impl Modem {
    /// Powers a modem up at `now`: it boots for `config.boot_time`, then speaks.
    pub fn new(config: ModelConfig, now: Instant) -> Modem {
        let mut modem = Modem {
            origin: now,
            rng: Rng(config.seed),
            power: Power::Off,
            mode: Mode::Command,
            line: Vec::new(),
            line_overflow: false,
            held_input: Vec::new(),
            held_reports: Vec::new(),
            out: Vec::new(),
            held_urcs: Vec::new(),
            answering: false,
            after_answer: Vec::new(),
            settings: Settings::defaults(config.profile),
            cfun: 1,
            sim: Sim::Ready,
            reg: Reg::Idle,
            domains: [0; 3],
            sms_ready_at: None,
            reg_epoch: 0,
            rssi: config.rssi,
            smsc: config.smsc.clone(),
            next_mr: config.first_mr,
            storage: vec![None; config.storage_capacity],
            received: Vec::new(),
            faults: Vec::new(),
            timers: Vec::new(),
            timer_seq: 0,
            notices: Vec::new(),
            boots: 0,
            noise_ticks: 0,
            last_rejection: None,
            cfg: config,
        };
        modem.power_on(now);
        modem
    }

    /// Bytes from the client. Any chunking gives the same result: a command may arrive
    /// split over many calls, several commands may arrive in one.
    pub fn input(&mut self, bytes: &[u8], now: Instant) {
        self.advance(now);
        self.feed(bytes, now);
    }

    /// Everything the modem has said by `now`.
    pub fn take_output(&mut self, now: Instant) -> Vec<u8> {
        self.advance(now);
        std::mem::take(&mut self.out)
    }

    /// When the modem next has something to do (timed output), if ever.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.timers.iter().map(|t| t.at).min()
    }

    /// Switches a fault on (replacing one of the same kind).
    pub fn set_fault(&mut self, fault: Fault, now: Instant) {
        self.advance(now);
        self.faults
            .retain(|f| std::mem::discriminant(f) != std::mem::discriminant(&fault));
        match &fault {
            Fault::SlowRegistration(delay) if self.reg != Reg::Idle => {
                self.search_network(now, *delay);
            }
            Fault::PinRequired(pin) if self.power == Power::On && self.sim == Sim::Ready => {
                self.sim = Sim::Pin {
                    pin: pin.clone(),
                    wrong: 0,
                };
                self.set_reg(Reg::Idle);
                for l in self.cfg.profile.sim_locked_lines() {
                    self.urc(&l, false);
                }
            }
            _ => {}
        }
        self.faults.push(fault);
    }

    /// Switches every fault off.
    pub fn clear_faults(&mut self, now: Instant) {
        self.remove_faults(|_| true, now);
    }

    /// Switches off the faults of the same kind as `fault` (its fields are ignored).
    pub fn clear_fault(&mut self, fault: &Fault, now: Instant) {
        let kind = std::mem::discriminant(fault);
        self.remove_faults(|f| std::mem::discriminant(f) == kind, now);
    }

    /// The faults switched on.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Every message accepted for sending, in order.
    pub fn received(&self) -> &[ReceivedSms] {
        &self.received
    }

    /// Why the last refused PDU was refused, for tests and logs.
    pub fn last_rejection(&self) -> Option<&PduError> {
        self.last_rejection.as_ref()
    }

    /// What happened since the last call that the runner must know.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The profile being imitated.
    pub fn profile(&self) -> Profile {
        self.cfg.profile
    }

    /// How many storage slots hold a message.
    pub fn storage_used(&self) -> usize {
        self.storage.iter().filter(|s| s.is_some()).count()
    }

    /// An incoming SMS-DELIVER (hex, SMSC field first) from the network: stored and
    /// announced with `+CMTI`, or shown with `+CMT`, as `AT+CNMI` asks.
    pub fn inject_incoming(
        &mut self,
        pdu_hex: &str,
        now: Instant,
    ) -> Result<Delivery, InjectError> {
        self.advance(now);
        let (bytes, tpdu_len) = pdu::check_deliver(pdu_hex.trim().as_bytes())?;
        if self.power != Power::On || self.sim != Sim::Ready {
            return Err(InjectError::NotReady);
        }
        let mt = self.settings.cnmi.get(1).copied().unwrap_or(0);
        if mt == 2 {
            let frame = format!("\r\n+CMT: ,{tpdu_len}\r\n{}\r\n", pdu::encode_hex(&bytes));
            self.urc_frame(frame.into_bytes(), true);
            return Ok(Delivery::Forwarded);
        }
        let Some(index) = self.store(bytes) else {
            // Huawei sticks announce a full store (^SMMEMFULL); the others stay silent
            // and the network keeps the message for later.
            if self.cfg.profile == Profile::E3372 {
                let mem = self.settings.mem[2].clone();
                self.urc(&format!("^SMMEMFULL: \"{mem}\""), true);
            }
            return Err(InjectError::StorageFull);
        };
        if mt == 1 || mt == 3 {
            let mem = self.settings.mem[2].clone();
            self.urc(&format!("+CMTI: \"{mem}\",{index}"), true);
        }
        Ok(Delivery::Stored { index })
    }

    /// Cuts the power (the runner's unplug): everything not on the SIM is forgotten,
    /// including output not yet taken.
    pub fn power_off(&mut self) {
        self.shut_down();
        self.out.clear();
    }

    /// Whether the modem has power (it may still be booting).
    pub fn is_powered(&self) -> bool {
        self.power != Power::Off
    }

    fn shut_down(&mut self) {
        self.timers.clear();
        self.reset_io();
        self.power = Power::Off;
        self.reg = Reg::Idle;
        self.domains = [0; 3];
        self.sms_ready_at = None;
        self.reg_epoch += 1;
    }

    /// Powers up (after `power_off`, or to reboot): deaf for the boot time, then the
    /// profile's boot messages. Settings return to their defaults; the SIM's contents
    /// (messages, service centre, message reference) stay.
    pub fn power_on(&mut self, now: Instant) {
        self.timers.clear();
        self.reset_io();
        self.settings = Settings::defaults(self.cfg.profile);
        self.cfun = 1;
        self.sim = self.locked_sim();
        self.reg = Reg::Idle;
        self.domains = [0; 3];
        self.sms_ready_at = None;
        self.reg_epoch += 1;
        self.power = Power::Booting;
        self.boots += 1;
        self.schedule(after(now, self.cfg.boot_time), Event::BootDone);
    }

    fn reset_io(&mut self) {
        self.mode = Mode::Command;
        self.line.clear();
        self.line_overflow = false;
        self.held_input.clear();
        self.held_urcs.clear();
        self.after_answer.clear();
    }

    fn locked_sim(&self) -> Sim {
        let pin = self
            .faults
            .iter()
            .find_map(|f| match f {
                Fault::PinRequired(pin) => Some(pin.clone()),
                _ => None,
            })
            .or_else(|| self.cfg.pin.clone());
        match pin {
            Some(pin) => Sim::Pin { pin, wrong: 0 },
            None => Sim::Ready,
        }
    }

    fn has_fault(&self, wanted: &Fault) -> bool {
        let kind = std::mem::discriminant(wanted);
        self.faults
            .iter()
            .any(|f| std::mem::discriminant(f) == kind)
    }

    fn remove_faults(&mut self, pred: impl Fn(&Fault) -> bool, now: Instant) {
        self.advance(now);
        let removed: Vec<Fault> = self.faults.iter().filter(|f| pred(f)).cloned().collect();
        self.faults.retain(|f| !pred(f));
        for fault in removed {
            match fault {
                Fault::PinRequired(_)
                    if self.power == Power::On
                        && self.sim != Sim::Ready
                        && self.cfg.pin.is_none() =>
                {
                    self.sim_unlocked(now);
                }
                Fault::SlowRegistration(_) if self.reg == Reg::Searching => {
                    self.search_network(now, self.cfg.registration_delay);
                }
                Fault::UrcInsideAnswer if matches!(self.mode, Mode::Command) => {
                    self.flush_held();
                }
                Fault::HoldStatusReport { .. } => {
                    for (mr, recipient, submitted, part) in std::mem::take(&mut self.held_reports) {
                        self.schedule(
                            now,
                            Event::StatusReport {
                                mr,
                                recipient,
                                submitted,
                                part,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
    }

    // ----- time -----

    fn schedule(&mut self, at: Instant, event: Event) {
        self.timer_seq += 1;
        self.timers.push(Timer {
            at,
            seq: self.timer_seq,
            event,
        });
    }

    /// Fires every timer due by `now`, in time order.
    fn advance(&mut self, now: Instant) {
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.at <= now)
                .min_by_key(|(_, t)| (t.at, t.seq))
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let timer = self.timers.swap_remove(i);
            self.fire(timer.event, timer.at);
        }
    }

    fn fire(&mut self, event: Event, at: Instant) {
        match event {
            Event::BootDone => self.boot_done(at),
            Event::Registered { epoch } => {
                if epoch == self.reg_epoch && self.reg == Reg::Searching {
                    self.set_reg(Reg::Registered);
                    if self.cfg.profile == Profile::E3372 {
                        self.urc("^MODE:5,4", false);
                    }
                }
            }
            Event::SendDone(result) => {
                let (lines, failure) = match result {
                    SendResult::Sent(mr) => (vec![format!("+CMGS: {mr}")], None),
                    SendResult::Cms(code) => (vec![], Some(Failure::Cms(code))),
                };
                self.emit_answer(lines.into_iter().map(|l| vec![l]).collect(), failure, at);
                self.mode = Mode::Command;
                self.flush_held();
                let input = std::mem::take(&mut self.held_input);
                self.feed(&input, at);
            }
            Event::StatusReport {
                mr,
                recipient,
                submitted,
                part,
            } => self.status_report(mr, recipient, submitted, part, at),
            Event::Noise => {
                for l in self.noise_lines() {
                    self.urc(&l, false);
                }
                self.schedule(after(at, self.noise_period()), Event::Noise);
            }
        }
    }

    fn timestamp(&self, at: Instant) -> Timestamp {
        let elapsed = at.saturating_duration_since(self.origin).as_secs();
        Timestamp::from_unix(self.cfg.clock_start_unix.saturating_add(elapsed))
    }

    // ----- output -----

    /// Puts a frame on the line, with garbage in front when that fault is on.
    fn emit(&mut self, frame: &[u8]) {
        if self.power == Power::Off || self.has_fault(&Fault::NoAnswer) {
            return;
        }
        if self.has_fault(&Fault::Garbage) {
            let n = 1 + self.rng.below(6);
            for _ in 0..n {
                let b = if self.rng.below(3) == 0 {
                    0x00
                } else {
                    0x80 | (self.rng.next() as u8 & 0x7F)
                };
                self.out.push(b);
            }
        }
        self.out.extend_from_slice(frame);
    }

    /// An answer: information blocks, then the final result (`None` = `OK`).
    fn emit_answer(&mut self, blocks: Vec<Vec<String>>, failure: Option<Failure>, now: Instant) {
        let mut frame = Vec::new();
        for block in &blocks {
            frame.extend_from_slice(b"\r\n");
            frame.extend_from_slice(block.join("\r\n").as_bytes());
            frame.extend_from_slice(b"\r\n");
        }
        if !blocks.is_empty() {
            if self.has_fault(&Fault::UrcInsideAnswer) {
                for held in std::mem::take(&mut self.held_urcs) {
                    frame.extend_from_slice(&held);
                }
                let noise = self.cfg.profile.noise_line(self.current_rssi());
                frame.extend_from_slice(format!("\r\n{noise}\r\n").as_bytes());
            } else if let Some(lines) = self.noise_due_inside(now) {
                // Huawei sticks send ^RSSI whenever the signal moves, also in the
                // middle of an answer: a tick due within a quarter period is sent now,
                // between the information and the final result.
                for l in lines {
                    frame.extend_from_slice(format!("\r\n{l}\r\n").as_bytes());
                }
            }
        }
        frame.extend_from_slice(self.final_text(failure).as_bytes());
        self.emit(&frame);
    }

    fn final_text(&self, failure: Option<Failure>) -> String {
        match failure {
            None => "\r\nOK\r\n".to_string(),
            Some(Failure::Error) => "\r\nERROR\r\n".to_string(),
            // TS 27.007 9.1: AT+CMEE selects plain ERROR, numeric or verbose codes.
            Some(Failure::Cme(code)) => match self.settings.cmee {
                0 => "\r\nERROR\r\n".to_string(),
                2 => match cme_text(code) {
                    Some(text) => format!("\r\n+CME ERROR: {text}\r\n"),
                    None => format!("\r\n+CME ERROR: {code}\r\n"),
                },
                _ => format!("\r\n+CME ERROR: {code}\r\n"),
            },
            // TS 27.005 3.2.5: +CMS ERROR is a final result of its own; modems report it
            // even with AT+CMEE=0, and verbosely with AT+CMEE=2.
            Some(Failure::Cms(code)) => match (self.settings.cmee, cms_text(code)) {
                (2, Some(text)) => format!("\r\n+CMS ERROR: {text}\r\n"),
                _ => format!("\r\n+CMS ERROR: {code}\r\n"),
            },
        }
    }

    /// An unsolicited result code of one line.
    fn urc(&mut self, text: &str, important: bool) {
        self.urc_frame(format!("\r\n{text}\r\n").into_bytes(), important);
    }

    /// An unsolicited frame. While the client is typing a PDU the link is reserved and
    /// notifications wait (TS 27.005 3.4.1, AT+CNMI mode 1/2); while a command line is
    /// being answered they follow the answer; with the "inside an answer" fault the
    /// important ones (messages, reports) wait for the next answer with information.
    fn urc_frame(&mut self, frame: Vec<u8>, important: bool) {
        if self.power != Power::On {
            return;
        }
        if self.answering {
            self.after_answer.push((frame, important));
        } else if matches!(self.mode, Mode::Pdu { .. })
            || (important && self.has_fault(&Fault::UrcInsideAnswer))
        {
            if self.held_urcs.len() >= MAX_HELD_URCS {
                self.held_urcs.remove(0);
            }
            self.held_urcs.push(frame);
        } else {
            self.emit(&frame);
        }
    }

    fn flush_held(&mut self) {
        if self.has_fault(&Fault::UrcInsideAnswer) {
            return;
        }
        for frame in std::mem::take(&mut self.held_urcs) {
            self.emit(&frame);
        }
    }

    // ----- input -----

    fn feed(&mut self, bytes: &[u8], now: Instant) {
        for (i, &b) in bytes.iter().enumerate() {
            if self.power != Power::On || self.has_fault(&Fault::NoAnswer) {
                continue;
            }
            match self.mode {
                Mode::Sending => {
                    // A modem busy with a send reads nothing until it answers; the
                    // bytes wait in its UART buffer, and what overflows it is lost.
                    let rest = bytes.get(i..).unwrap_or_default();
                    let room = MAX_HELD_INPUT.saturating_sub(self.held_input.len());
                    self.held_input
                        .extend_from_slice(rest.get(..room.min(rest.len())).unwrap_or_default());
                    return;
                }
                Mode::Command => self.command_byte(b, now),
                Mode::Pdu { .. } => self.pdu_byte(b, now),
            }
            // Timers that fell due at `now` fire between bytes, so that the chunking of
            // the input never changes what the modem says.
            self.advance(now);
        }
    }

    fn echo(&mut self, b: u8) {
        if self.settings.echo {
            self.out.push(b);
        }
    }

    fn command_byte(&mut self, b: u8, now: Instant) {
        match b {
            b'\r' => {
                self.echo(b);
                let line = std::mem::take(&mut self.line);
                let overflow = std::mem::take(&mut self.line_overflow);
                self.execute_line(&line, overflow, now);
            }
            // ESC outside PDU entry does nothing: drivers send it before their first
            // command to end a PDU entry left open (gammu does at every connect).
            0x1B => {}
            // S4 (line feed) only follows S3; a modem ignores it on input.
            b'\n' => self.echo(b),
            // S5, backspace, removes the last character (V.250 6.2.3).
            0x08 | 0x7F => {
                self.echo(b);
                self.line.pop();
            }
            _ => {
                self.echo(b);
                if self.line.len() < MAX_LINE {
                    self.line.push(b);
                } else {
                    self.line_overflow = true;
                }
            }
        }
    }

    fn pdu_byte(&mut self, b: u8, now: Instant) {
        match b {
            0x1A => self.submit(now),
            0x1B => {
                // TS 27.005 3.5.1: ESC cancels the send.
                self.mode = Mode::Command;
                self.notices.push(Notice::Cancelled);
                self.emit_answer(Vec::new(), None, now);
                self.flush_held();
            }
            b'\r' | b'\n' | b' ' => {}
            _ => {
                self.echo(b);
                if let Mode::Pdu { hex, overflow, .. } = &mut self.mode {
                    if hex.len() < MAX_PDU_HEX {
                        hex.push(b);
                    } else {
                        *overflow = true;
                    }
                }
            }
        }
    }

    fn execute_line(&mut self, line: &[u8], overflow: bool, now: Instant) {
        let cmds = match parse_line(line) {
            None => return,
            Some(Err(_)) => {
                self.emit_answer(Vec::new(), Some(Failure::Error), now);
                return;
            }
            Some(Ok(_)) if overflow => {
                self.emit_answer(Vec::new(), Some(Failure::Error), now);
                return;
            }
            Some(Ok(cmds)) => cmds,
        };
        self.answering = true;
        let mut blocks = Vec::new();
        let mut end: Option<Result<Reply, Failure>> = None;
        for cmd in cmds {
            match self.exec(cmd, now) {
                Ok(Reply::Lines(lines)) => {
                    if !lines.is_empty() {
                        blocks.push(lines);
                    }
                }
                other => {
                    end = Some(other);
                    break;
                }
            }
        }
        self.answering = false;
        match end {
            None => self.emit_answer(blocks, None, now),
            Some(Err(failure)) => self.emit_answer(blocks, Some(failure), now),
            Some(Ok(Reply::Prompt { declared })) => {
                for block in &blocks {
                    let text = format!("\r\n{}\r\n", block.join("\r\n"));
                    self.emit(text.as_bytes());
                }
                self.mode = Mode::Pdu {
                    declared,
                    hex: Vec::new(),
                    overflow: false,
                };
                if !self.has_fault(&Fault::NoPromptOnCmgs) {
                    // The profile's framing; TS 27.005 3.5.1 says "> " after a line
                    // break, but not every modem does.
                    self.emit(self.cfg.profile.prompt());
                }
            }
            Some(Ok(Reply::Reboot)) => {
                self.emit_answer(blocks, None, now);
                self.after_answer.clear();
                self.notices.push(Notice::Reset {
                    reenumerates: self.cfg.reenumerate_on_reset,
                    boot_time: self.cfg.boot_time,
                });
                if self.cfg.reenumerate_on_reset {
                    // The device leaves the bus; it boots when the runner plugs it back.
                    self.shut_down();
                } else {
                    self.power_on(now);
                }
                return;
            }
            Some(Ok(Reply::Lines(_))) => {}
        }
        for (frame, important) in std::mem::take(&mut self.after_answer) {
            self.urc_frame(frame, important);
        }
    }

    // ----- commands -----

    fn exec(&mut self, cmd: Cmd, now: Instant) -> Outcome {
        match cmd {
            Cmd::Basic {
                ampersand: false,
                letter,
                value,
            } => self.basic(letter, value),
            Cmd::Basic {
                ampersand: true,
                letter,
                ..
            } => match letter {
                'F' => {
                    self.settings = Settings::defaults(self.cfg.profile);
                    ok()
                }
                // &W (store profile), &D (DTR), &C (DCD), &K (flow control): accepted.
                'W' | 'D' | 'C' | 'K' => ok(),
                _ => Err(Failure::Error),
            },
            Cmd::SRegister { value, .. } => match value {
                Some(_) => ok(),
                None => info("000"),
            },
            Cmd::Extended { name, form } => self.extended(&name, form, now),
        }
    }

    fn basic(&mut self, letter: char, value: Option<u32>) -> Outcome {
        let value = value.unwrap_or(0);
        match letter {
            'E' if value <= 1 => {
                self.settings.echo = value == 1;
                ok()
            }
            // Numeric result codes (V0) and quiet mode (Q1) are not simulated.
            'V' if value == 1 => ok(),
            'Q' if value == 0 => ok(),
            'Z' => {
                // V.250 6.1.1: ATZ restores the stored profile; it does not reboot.
                self.settings = Settings::defaults(self.cfg.profile);
                ok()
            }
            'I' => Ok(Reply::Lines(self.cfg.profile.ati())),
            'X' | 'H' | 'L' | 'M' => ok(),
            _ => Err(Failure::Error),
        }
    }

    fn extended(&mut self, name: &str, form: Form, now: Instant) -> Outcome {
        let profile = self.cfg.profile;
        // Before its SMS service is up, a SIM800 answers SMS commands with a plain ERROR
        // (Seeed-Studio/GPRS_SIM900 issue 39: AT+CMGF fails until `SMS Ready`).
        let sms_command = matches!(
            name,
            "+CMGF" | "+CNMI" | "+CPMS" | "+CSMS" | "+CMGS" | "+CSCA" | "+CMGL" | "+CMGR" | "+CMGD"
        );
        if sms_command && self.sms_ready_at.is_some_and(|at| now < at) {
            return Err(Failure::Error);
        }
        match name {
            "+CFUN" => self.cfun_cmd(form, now),
            "+CMEE" => {
                let cmee = &mut self.settings.cmee;
                numeric_setting(form, "+CMEE", cmee, 2, "(0-2)")
            }
            "+CPIN" => self.cpin_cmd(form, now),
            "+CMGF" => {
                let cmgf = &mut self.settings.cmgf;
                numeric_setting(form, "+CMGF", cmgf, 1, "(0,1)")
            }
            "+CSCS" => self.cscs_cmd(form),
            "+CNMI" => self.cnmi_cmd(form),
            "+CPMS" => self.cpms_cmd(form),
            "+CREG" | "+CGREG" => self.reg_cmd(name, form),
            "+CEREG" if profile.supports_cereg() => self.reg_cmd(name, form),
            "+CSQ" => match form {
                Form::Exec => info(format!("+CSQ: {},99", self.current_rssi())),
                Form::Test => info("+CSQ: (0-31,99),(0-7,99)"),
                _ => Err(Failure::Error),
            },
            "+COPS" => self.cops_cmd(form, now),
            "+CGMI" | "+GMI" => identity(form, profile.manufacturer()),
            "+CGMM" | "+GMM" => identity(form, profile.model()),
            "+CGMR" | "+GMR" => identity(form, profile.revision()),
            "+CGSN" | "+GSN" => identity(form, profile.imei()),
            "+CIMI" => {
                self.sim_ready_cme()?;
                identity(form, profile.imsi())
            }
            // The ICCID is readable without the PIN (TS 51.011: EF ICCID is "always").
            "+CCID" if profile.iccid_command() == IccidCommand::Ccid => match form {
                Form::Exec | Form::Read => info(profile.iccid()),
                Form::Test => ok(),
                Form::Set(_) => Err(Failure::Error),
            },
            "+QCCID" if profile.iccid_command() == IccidCommand::Qccid => match form {
                Form::Exec => info(format!("+QCCID: {}", profile.iccid())),
                Form::Test => ok(),
                _ => Err(Failure::Error),
            },
            "^ICCID" if profile.iccid_command() == IccidCommand::HuaweiIccid => match form {
                Form::Read => info(format!("^ICCID: {}", profile.iccid())),
                Form::Test => ok(),
                _ => Err(Failure::Error),
            },
            "+CPAS" => info("+CPAS: 0"),
            "+GCAP" => info("+GCAP: +CGSM"),
            "+CSCA" => self.csca_cmd(form),
            "+CSMP" => self.csmp_cmd(form),
            "+CSMS" => match form {
                Form::Read => info(format!("+CSMS: {},1,1,1", self.settings.csms)),
                Form::Test => info("+CSMS: (0,1)"),
                Form::Set(args) => match args.first().and_then(Arg::int) {
                    Some(n @ 0..=1) => {
                        self.settings.csms = n as u8;
                        info("+CSMS: 1,1,1")
                    }
                    _ => Err(Failure::Cms(303)),
                },
                Form::Exec => Err(Failure::Error),
            },
            "+CMGS" => self.cmgs_cmd(form),
            "+CMGR" => self.cmgr_cmd(form),
            "+CMGL" => self.cmgl_cmd(form),
            "+CMGD" => self.cmgd_cmd(form),
            _ => Err(Failure::Error),
        }
    }

    fn sim_ready_cme(&self) -> Result<(), Failure> {
        match self.sim {
            Sim::Ready => Ok(()),
            Sim::Pin { .. } => Err(Failure::Cme(11)),
            Sim::Puk => Err(Failure::Cme(12)),
        }
    }

    fn sim_ready_cms(&self) -> Result<(), Failure> {
        match self.sim {
            Sim::Ready => Ok(()),
            Sim::Pin { .. } => Err(Failure::Cms(311)),
            Sim::Puk => Err(Failure::Cms(316)),
        }
    }

    fn cfun_cmd(&mut self, form: Form, now: Instant) -> Outcome {
        match form {
            Form::Read => info(format!("+CFUN: {}", self.cfun)),
            Form::Test => info("+CFUN: (0,1,4),(0,1)"),
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => {
                let fun = args.first().and_then(Arg::int);
                let rst = match args.get(1) {
                    None | Some(Arg::Empty) => Some(0),
                    Some(a) => a.int(),
                };
                match (fun, rst) {
                    (Some(0 | 1 | 4), Some(1)) => Ok(Reply::Reboot),
                    (Some(fun @ (0 | 4)), Some(0)) => {
                        self.cfun = fun as u8;
                        self.set_reg(Reg::Idle);
                        self.refresh_domains();
                        ok()
                    }
                    (Some(1), Some(0)) => {
                        self.cfun = 1;
                        if self.reg == Reg::Idle {
                            self.start_registration(now);
                        }
                        ok()
                    }
                    _ => Err(Failure::Error),
                }
            }
        }
    }

    fn cpin_cmd(&mut self, form: Form, now: Instant) -> Outcome {
        match form {
            Form::Read => info(match self.sim {
                Sim::Ready => "+CPIN: READY",
                Sim::Pin { .. } => "+CPIN: SIM PIN",
                Sim::Puk => "+CPIN: SIM PUK",
            }),
            Form::Test => ok(),
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => {
                let Some(given) = args.first().and_then(Arg::text) else {
                    return Err(Failure::Error);
                };
                let blocked = match &mut self.sim {
                    // TS 27.007 8.3: with no password pending the command is refused.
                    Sim::Ready => return Err(Failure::Cme(3)),
                    Sim::Puk => return Err(Failure::Cme(16)),
                    Sim::Pin { pin, wrong } => {
                        if given == *pin {
                            None
                        } else {
                            *wrong += 1;
                            // Three wrong PINs block the SIM (GSM 11.11 / TS 31.102).
                            Some(*wrong >= 3)
                        }
                    }
                };
                match blocked {
                    None => {
                        self.sim_unlocked(now);
                        ok()
                    }
                    Some(blocked) => {
                        if blocked {
                            self.sim = Sim::Puk;
                        }
                        Err(Failure::Cme(16))
                    }
                }
            }
        }
    }

    fn sim_unlocked(&mut self, now: Instant) {
        self.sim = Sim::Ready;
        self.sms_ready_at = Some(after(now, self.cfg.sms_ready_delay));
        for l in self.cfg.profile.sim_ready_lines() {
            self.urc(&l, false);
        }
        self.start_registration(now);
    }

    fn cscs_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Read => info(format!("+CSCS: \"{}\"", self.settings.cscs)),
            Form::Test => info("+CSCS: (\"GSM\",\"IRA\",\"UCS2\")"),
            Form::Set(args) => match args.first().and_then(Arg::text) {
                Some(cs) if ["GSM", "IRA", "UCS2", "HEX"].contains(&cs.to_uppercase().as_str()) => {
                    self.settings.cscs = cs.to_uppercase();
                    ok()
                }
                _ => Err(Failure::Error),
            },
            Form::Exec => Err(Failure::Error),
        }
    }

    fn cnmi_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Read => {
                let [a, b, c, d, e] = self.settings.cnmi;
                info(format!("+CNMI: {a},{b},{c},{d},{e}"))
            }
            Form::Test => info("+CNMI: (0-3),(0-3),(0-3),(0-2),(0,1)"),
            Form::Exec => ok(),
            Form::Set(args) => {
                const MAX: [i64; 5] = [3, 3, 3, 2, 1];
                if args.len() > 5 {
                    return Err(Failure::Cms(303));
                }
                let mut cnmi = self.settings.cnmi;
                for (i, arg) in args.iter().enumerate() {
                    match (arg, cnmi.get_mut(i), MAX.get(i)) {
                        (Arg::Empty, _, _) => {}
                        (Arg::Int(v), Some(slot), Some(&max)) if (0..=max).contains(v) => {
                            *slot = *v as u8;
                        }
                        _ => return Err(Failure::Cms(303)),
                    }
                }
                self.settings.cnmi = cnmi;
                ok()
            }
        }
    }

    fn cpms_cmd(&mut self, form: Form) -> Outcome {
        let used = self.storage_used();
        let total = self.storage.len();
        match form {
            Form::Read => {
                self.sim_ready_cms()?;
                let [m1, m2, m3] = &self.settings.mem;
                info(format!(
                    "+CPMS: \"{m1}\",{used},{total},\"{m2}\",{used},{total},\"{m3}\",{used},{total}"
                ))
            }
            Form::Test => {
                info("+CPMS: (\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\")")
            }
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => {
                self.sim_ready_cms()?;
                if args.is_empty() || args.len() > 3 {
                    return Err(Failure::Error);
                }
                let mut mem = self.settings.mem.clone();
                for (i, arg) in args.iter().enumerate() {
                    let name = arg.text().map(|s| s.to_uppercase());
                    match (name, mem.get_mut(i)) {
                        (Some(n), Some(slot)) if ["SM", "ME", "MT"].contains(&n.as_str()) => {
                            *slot = n;
                        }
                        _ => return Err(Failure::Cms(302)),
                    }
                }
                // One store backs every name; the names are remembered for answers.
                self.settings.mem = mem;
                info(format!(
                    "+CPMS: {used},{total},{used},{total},{used},{total}"
                ))
            }
        }
    }

    fn reg_cmd(&mut self, name: &str, form: Form) -> Outcome {
        let (current, domain) = match name {
            "+CGREG" => (self.settings.cgreg, 1),
            "+CEREG" => (self.settings.cereg, 2),
            _ => (self.settings.creg, 0),
        };
        match form {
            Form::Read => {
                let stat = self.domains[domain];
                if current == 2 && matches!(stat, 1 | 5) {
                    info(format!(
                        "{name}: 2,{stat},\"1A2B\",\"{}\"",
                        self.cfg.profile.cell_id()
                    ))
                } else {
                    info(format!("{name}: {current},{stat}"))
                }
            }
            Form::Test => info(format!("{name}: (0-2)")),
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => match args.first().and_then(Arg::int) {
                Some(n @ 0..=2) => {
                    let n = n as u8;
                    match name {
                        "+CGREG" => self.settings.cgreg = n,
                        "+CEREG" => self.settings.cereg = n,
                        _ => self.settings.creg = n,
                    }
                    ok()
                }
                _ => Err(Failure::Error),
            },
        }
    }

    fn cops_cmd(&mut self, form: Form, now: Instant) -> Outcome {
        match form {
            Form::Read => {
                if self.stat() == 1 || self.stat() == 5 {
                    let fmt = self.settings.cops_format;
                    let name = match fmt {
                        1 => "TEST",
                        2 => "00101",
                        _ => "Test Network",
                    };
                    match self.cfg.profile.cops_act() {
                        Some(act) => info(format!("+COPS: 0,{fmt},\"{name}\",{act}")),
                        None => info(format!("+COPS: 0,{fmt},\"{name}\"")),
                    }
                } else {
                    info("+COPS: 0")
                }
            }
            Form::Test => {
                info("+COPS: (2,\"Test Network\",\"TEST\",\"00101\",7),,(0,1,2,3,4),(0,1,2)")
            }
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => match (args.first().and_then(Arg::int), args.get(1)) {
                (Some(3), Some(Arg::Int(fmt @ 0..=2))) => {
                    self.settings.cops_format = *fmt as u8;
                    ok()
                }
                (Some(0), _) => {
                    if self.reg == Reg::Idle && self.cfun == 1 {
                        self.start_registration(now);
                    }
                    ok()
                }
                (Some(2), _) => {
                    self.set_reg(Reg::Idle);
                    ok()
                }
                (Some(1 | 4), Some(_)) => ok(),
                _ => Err(Failure::Error),
            },
        }
    }

    fn csca_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Read => {
                self.sim_ready_cms()?;
                let toa = if self.smsc.starts_with('+') { 145 } else { 129 };
                info(format!("+CSCA: \"{}\",{toa}", self.smsc))
            }
            Form::Test => ok(),
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => {
                self.sim_ready_cms()?;
                match args.first() {
                    Some(Arg::Str(number))
                        if !number.is_empty()
                            && number
                                .trim_start_matches('+')
                                .bytes()
                                .all(|b| b.is_ascii_digit()) =>
                    {
                        self.smsc = number.clone();
                        ok()
                    }
                    _ => Err(Failure::Cms(304)),
                }
            }
        }
    }

    fn csmp_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Read => {
                let [a, b, c, d] = self.settings.csmp;
                info(format!("+CSMP: {a},{b},{c},{d}"))
            }
            Form::Test => ok(),
            Form::Exec => Err(Failure::Error),
            Form::Set(args) => {
                let mut csmp = self.settings.csmp;
                for (i, arg) in args.iter().enumerate() {
                    match (arg, csmp.get_mut(i)) {
                        (Arg::Empty, Some(_)) => {}
                        (Arg::Int(v @ 0..=255), Some(slot)) => *slot = *v,
                        _ => return Err(Failure::Cms(305)),
                    }
                }
                self.settings.csmp = csmp;
                ok()
            }
        }
    }

    fn cmgs_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Test => ok(),
            Form::Set(args) => {
                if self.settings.cmgf == 1 {
                    // Text-mode sending is not simulated: PDU mode is what matters.
                    return Err(Failure::Cms(303));
                }
                self.sim_ready_cms()?;
                match args.as_slice() {
                    [Arg::Int(n)] | [Arg::Int(n), Arg::Empty] if (1..=MAX_TPDU).contains(n) => {
                        Ok(Reply::Prompt {
                            declared: *n as usize,
                        })
                    }
                    _ => Err(Failure::Cms(304)),
                }
            }
            Form::Exec | Form::Read => Err(Failure::Error),
        }
    }

    fn slot(&self, index: i64) -> Option<usize> {
        let base = self.cfg.profile.index_base() as i64;
        let slot = usize::try_from(index - base).ok()?;
        (slot < self.storage.len()).then_some(slot)
    }

    fn display_index(&self, slot: usize) -> usize {
        slot + self.cfg.profile.index_base()
    }

    fn index_range(&self) -> String {
        let base = self.cfg.profile.index_base();
        format!("({}-{})", base, base + self.storage.len().saturating_sub(1))
    }

    fn cmgr_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Test => ok(),
            Form::Set(args) => {
                self.sim_ready_cms()?;
                if self.settings.cmgf == 1 {
                    return Err(Failure::Cms(303));
                }
                let index = args.first().and_then(Arg::int).ok_or(Failure::Cms(304))?;
                let slot = self.slot(index).ok_or(Failure::Cms(321))?;
                let Some(Some(stored)) = self.storage.get_mut(slot) else {
                    // SIM800 answers a bare OK for an empty slot.
                    return ok();
                };
                let lines = vec![
                    format!("+CMGR: {},,{}", stored.stat, pdu::tpdu_len(&stored.pdu)),
                    pdu::encode_hex(&stored.pdu),
                ];
                if stored.stat == 0 {
                    stored.stat = 1;
                }
                Ok(Reply::Lines(lines))
            }
            Form::Exec | Form::Read => Err(Failure::Error),
        }
    }

    fn cmgl_cmd(&mut self, form: Form) -> Outcome {
        let wanted = match form {
            Form::Test => return info("+CMGL: (0-4)"),
            Form::Read => return Err(Failure::Error),
            // TS 27.005 3.4.2: the default is "received unread".
            Form::Exec => 0,
            Form::Set(args) => match args.first() {
                Some(Arg::Int(s @ 0..=4)) => *s as u8,
                _ => return Err(Failure::Cms(304)),
            },
        };
        self.sim_ready_cms()?;
        if self.settings.cmgf == 1 {
            return Err(Failure::Cms(303));
        }
        let base = self.cfg.profile.index_base();
        let mut lines = Vec::new();
        for (slot, entry) in self.storage.iter_mut().enumerate() {
            let Some(stored) = entry else { continue };
            if wanted != 4 && stored.stat != wanted {
                continue;
            }
            lines.push(format!(
                "+CMGL: {},{},,{}",
                slot + base,
                stored.stat,
                pdu::tpdu_len(&stored.pdu)
            ));
            lines.push(pdu::encode_hex(&stored.pdu));
            if stored.stat == 0 {
                stored.stat = 1;
            }
        }
        Ok(Reply::Lines(lines))
    }

    fn cmgd_cmd(&mut self, form: Form) -> Outcome {
        match form {
            Form::Test => info(format!("+CMGD: {},(0-4)", self.index_range())),
            Form::Set(args) => {
                self.sim_ready_cms()?;
                let index = args.first().and_then(Arg::int).ok_or(Failure::Cms(304))?;
                let flag = match args.get(1) {
                    None | Some(Arg::Empty) => 0,
                    Some(Arg::Int(f @ 0..=4)) => *f,
                    Some(_) => return Err(Failure::Cms(304)),
                };
                if flag == 0 {
                    let slot = self.slot(index).ok_or(Failure::Cms(321))?;
                    if let Some(entry) = self.storage.get_mut(slot) {
                        *entry = None;
                    }
                    return ok();
                }
                // TS 27.005 3.5.4: with a flag the index is ignored; 1 = read, 2 = read
                // and sent, 3 = read, sent and unsent, 4 = all.
                let doomed: &[u8] = match flag {
                    1 => &[1],
                    2 => &[1, 3],
                    3 => &[1, 2, 3],
                    _ => &[0, 1, 2, 3],
                };
                for entry in &mut self.storage {
                    if entry.as_ref().is_some_and(|s| doomed.contains(&s.stat)) {
                        *entry = None;
                    }
                }
                ok()
            }
            Form::Exec | Form::Read => Err(Failure::Error),
        }
    }

    fn store(&mut self, pdu: Vec<u8>) -> Option<usize> {
        let slot = self.storage.iter().position(Option::is_none)?;
        if let Some(entry) = self.storage.get_mut(slot) {
            *entry = Some(Stored { stat: 0, pdu });
        }
        Some(self.display_index(slot))
    }

    // ----- sending -----

    fn submit(&mut self, now: Instant) {
        let Mode::Pdu {
            declared,
            hex,
            overflow,
        } = std::mem::replace(&mut self.mode, Mode::Command)
        else {
            return;
        };
        let checked = if overflow {
            Err(PduError::LengthMismatch {
                declared,
                actual: hex.len() / 2,
            })
        } else {
            pdu::check_submit(&hex, declared)
        };
        let info = match checked {
            Ok(info) => info,
            Err(err) => {
                // Real modems refuse a malformed PDU at once with 304 (TS 27.005 3.2.5).
                self.last_rejection = Some(err);
                self.emit_answer(Vec::new(), Some(Failure::Cms(304)), now);
                self.flush_held();
                return;
            }
        };
        let registered = self.cfun == 1 && matches!(self.stat(), 1 | 5);
        // A PDU that leaves the SMSC to the SIM (its first octet 00), on a SIM that holds
        // none: 330, as a Huawei E220 answers (tdelenikas/smslib-v3 PR 12; gammu 541).
        let no_smsc = hex.starts_with(b"00") && self.smsc.is_empty();
        let result = if !registered {
            SendResult::Cms(331)
        } else if no_smsc {
            SendResult::Cms(330)
        } else if self.has_fault(&Fault::NoCmgsResult) {
            self.accept(info, &hex, now);
            self.flush_held();
            return;
        } else if let Some(code) = self.take_cms_fault() {
            // The modem numbered the message before the network refused it.
            self.next_mr = self.next_mr.wrapping_add(1);
            SendResult::Cms(code)
        } else {
            SendResult::Sent(self.accept(info, &hex, now))
        };
        self.mode = Mode::Sending;
        self.flush_held();
        self.schedule(after(now, self.cfg.send_latency), Event::SendDone(result));
    }

    fn take_cms_fault(&mut self) -> Option<u16> {
        let pos = self
            .faults
            .iter()
            .position(|f| matches!(f, Fault::CmsErrorForNextSends { count, .. } if *count > 0))?;
        let Some(Fault::CmsErrorForNextSends { code, count }) = self.faults.get_mut(pos) else {
            return None;
        };
        let code = *code;
        *count -= 1;
        if *count == 0 {
            self.faults.remove(pos);
        }
        Some(code)
    }

    /// Records an accepted message, numbers it, and schedules its status report.
    fn accept(&mut self, info: SubmitInfo, hex: &[u8], now: Instant) -> u8 {
        let mr = self.next_mr;
        self.next_mr = mr.wrapping_add(1);
        let sms = ReceivedSms {
            pdu_hex: String::from_utf8_lossy(hex).to_uppercase(),
            tpdu_len: info.tpdu_len,
            mr,
            tp_mr: info.tp_mr,
            destination: info.destination.clone(),
            status_report_requested: info.status_report_requested,
            dcs: info.dcs,
            user_data_len: info.user_data_len,
            concat: info.concat,
        };
        self.received.push(sms.clone());
        self.notices.push(Notice::Accepted(sms));
        if info.status_report_requested {
            let submitted = after(now, self.cfg.send_latency);
            self.schedule(
                after(submitted, self.cfg.status_report_delay),
                Event::StatusReport {
                    mr,
                    recipient: info.destination_field,
                    submitted,
                    part: info.concat.map(|c| c.seq),
                },
            );
        }
        mr
    }

    fn status_report(
        &mut self,
        mr: u8,
        recipient: Vec<u8>,
        submitted: Instant,
        part: Option<u8>,
        at: Instant,
    ) {
        if self.power != Power::On {
            return;
        }
        let held = part.is_some()
            && self
                .faults
                .iter()
                .any(|f| matches!(f, Fault::HoldStatusReport { part: p } if Some(*p) == part));
        if held {
            self.held_reports.push((mr, recipient, submitted, part));
            return;
        }
        let status = self
            .faults
            .iter()
            .find_map(|f| match f {
                Fault::StatusReportStatus { part: p, status } if Some(*p) == part => Some(*status),
                _ => None,
            })
            .unwrap_or(0x00);
        let report = pdu::status_report(
            &self.smsc,
            mr,
            &recipient,
            self.timestamp(submitted),
            self.timestamp(at),
            status,
        );
        // TS 27.005 3.4.1 AT+CNMI <ds>: 1 = show with +CDS, 2 = store and show +CDSI.
        match self.settings.cnmi.get(3).copied().unwrap_or(0) {
            1 => {
                let frame = format!(
                    "\r\n+CDS: {}\r\n{}\r\n",
                    pdu::tpdu_len(&report),
                    pdu::encode_hex(&report)
                );
                self.urc_frame(frame.into_bytes(), true);
            }
            2 => {
                if let Some(index) = self.store(report) {
                    let mem = self.settings.mem[2].clone();
                    self.urc(&format!("+CDSI: \"{mem}\",{index}"), true);
                }
            }
            _ => {}
        }
    }

    // ----- network -----

    fn stat(&self) -> u8 {
        if self.cfun != 1 {
            return 0;
        }
        match self.reg {
            Reg::Idle => 0,
            Reg::Searching => 2,
            Reg::Registered if self.cfg.roaming => 5,
            Reg::Registered => 1,
        }
    }

    fn current_rssi(&self) -> u8 {
        if self.reg == Reg::Registered && self.cfun == 1 {
            self.rssi
        } else {
            99
        }
    }

    fn start_registration(&mut self, now: Instant) {
        if self.power != Power::On || self.sim != Sim::Ready || self.cfun != 1 {
            return;
        }
        let delay = self
            .faults
            .iter()
            .find_map(|f| match f {
                Fault::SlowRegistration(d) => Some(*d),
                _ => None,
            })
            .unwrap_or(self.cfg.registration_delay);
        self.search_network(now, delay);
    }

    fn search_network(&mut self, now: Instant, delay: Duration) {
        self.reg_epoch += 1;
        self.set_reg(Reg::Searching);
        let epoch = self.reg_epoch;
        self.schedule(after(now, delay), Event::Registered { epoch });
    }

    /// Changes the registration state and says so to whoever asked (`AT+CREG=1|2`...).
    fn set_reg(&mut self, reg: Reg) {
        if reg == self.reg {
            return;
        }
        self.reg = reg;
        if reg == Reg::Idle {
            self.reg_epoch += 1;
        }
        self.refresh_domains();
    }

    /// Whether a domain (0 CS, 1 PS, 2 EPS) exists on this radio and network.
    fn serves(&self, domain: usize) -> bool {
        match domain {
            0 => self.cfg.profile.has_cs_domain() && !self.cfg.lte_only,
            2 => self.cfg.profile.supports_cereg(),
            _ => true,
        }
    }

    /// Works out each domain's `<stat>` from the radio's state, and tells whoever asked
    /// (`AT+CREG=1|2`...) about the domains that changed, and only those.
    fn refresh_domains(&mut self) {
        let radio = self.stat();
        let cell = self.cfg.profile.cell_id();
        let names = [
            ("+CREG", self.settings.creg),
            ("+CGREG", self.settings.cgreg),
            ("+CEREG", self.settings.cereg),
        ];
        for (domain, (name, n)) in names.into_iter().enumerate() {
            // A domain the radio or the network lacks is "not registered, not
            // searching" whatever the radio does (SIM7080's `+CREG: 0,0`).
            let stat = if self.serves(domain) { radio } else { 0 };
            if self.domains[domain] == stat {
                continue;
            }
            self.domains[domain] = stat;
            if domain == 2 && !self.cfg.profile.supports_cereg() {
                continue;
            }
            match n {
                1 => self.urc(&format!("{name}: {stat}"), false),
                2 if matches!(stat, 1 | 5) => {
                    self.urc(&format!("{name}: {stat},\"1A2B\",\"{cell}\""), false)
                }
                2 => self.urc(&format!("{name}: {stat}"), false),
                _ => {}
            }
        }
    }

    fn boot_done(&mut self, at: Instant) {
        self.power = Power::On;
        let profile = self.cfg.profile;
        for l in profile.boot_lines(self.boots) {
            self.urc(&l, false);
        }
        if self.cfg.pdu_entry_at_boot {
            self.mode = Mode::Pdu {
                declared: 23,
                hex: Vec::new(),
                overflow: false,
            };
        }
        if self.sim == Sim::Ready {
            self.sms_ready_at = Some(after(at, self.cfg.sms_ready_delay));
            for l in profile.sim_ready_lines() {
                self.urc(&l, false);
            }
            self.start_registration(at);
        } else {
            for l in profile.sim_locked_lines() {
                self.urc(&l, false);
            }
        }
        if profile.is_noisy() {
            self.schedule(after(at, self.noise_period()), Event::Noise);
        }
    }

    /// One tick of a noisy profile's own notifications (E3372): the signal moves a little
    /// and is reported; now and then a ^BOOT and a ^MODE line go by as well.
    fn noise_lines(&mut self) -> Vec<String> {
        if self.power != Power::On {
            return Vec::new();
        }
        self.noise_ticks += 1;
        let step = self.rng.below(5) as i16 - 2;
        self.rssi = (i16::from(self.rssi) + step).clamp(10, 28) as u8;
        let mut lines = vec![self.cfg.profile.noise_line(self.current_rssi())];
        if self.noise_ticks % 4 == 0 {
            lines.push(format!("^BOOT:{},0,0,0,72", 20_392_483 + self.boots));
        }
        if self.noise_ticks % 6 == 0 && self.reg == Reg::Registered {
            lines.push("^MODE:5,4".to_string());
        }
        lines
    }

    /// The period of the noise ticks, never so short that they would never end.
    fn noise_period(&self) -> Duration {
        self.cfg.noise_interval.max(Duration::from_millis(10))
    }

    /// The next noise tick, taken early, if it is due within a quarter period of `now`.
    fn noise_due_inside(&mut self, now: Instant) -> Option<Vec<String>> {
        let window = self.noise_period() / 4;
        let pos = self
            .timers
            .iter()
            .position(|t| matches!(t.event, Event::Noise) && t.at <= after(now, window))?;
        self.timers.swap_remove(pos);
        self.schedule(after(now, self.noise_period()), Event::Noise);
        Some(self.noise_lines())
    }
}

/// `t + d`, or as late as can be said when a configured delay is absurdly long.
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(t)
}

/// A setting that is one small number: `AT+X?`, `AT+X=?`, `AT+X=<n>`.
fn numeric_setting(form: Form, name: &str, value: &mut u8, max: u8, range: &str) -> Outcome {
    match form {
        Form::Read => info(format!("{name}: {value}")),
        Form::Test => info(format!("{name}: {range}")),
        Form::Set(args) => match args.first().and_then(Arg::int) {
            Some(n) if (0..=i64::from(max)).contains(&n) => {
                *value = n as u8;
                ok()
            }
            _ => Err(Failure::Error),
        },
        Form::Exec => Err(Failure::Error),
    }
}

/// An identity command (`AT+CGMI` and friends): the bare value on a line.
fn identity(form: Form, value: &str) -> Outcome {
    match form {
        Form::Exec => info(value),
        Form::Test => ok(),
        _ => Err(Failure::Error),
    }
}

/// Verbose texts for the TS 27.007 9.2 codes the simulator uses.
fn cme_text(code: u16) -> Option<&'static str> {
    Some(match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        16 => "incorrect password",
        30 => "no network service",
        100 => "unknown",
        _ => return None,
    })
}

/// Verbose texts for TS 27.005 3.2.5 codes and the common TS 24.011 network causes.
fn cms_text(code: u16) -> Option<&'static str> {
    Some(match code {
        1 => "Unassigned (unallocated) number",
        8 => "Operator determined barring",
        10 => "Call barred",
        21 => "Short message transfer rejected",
        27 => "Destination out of service",
        28 => "Unidentified subscriber",
        29 => "Facility rejected",
        30 => "Unknown subscriber",
        38 => "Network out of order",
        41 => "Temporary failure",
        42 => "Congestion",
        47 => "Resources unavailable, unspecified",
        50 => "Requested facility not subscribed",
        69 => "Requested facility not implemented",
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        316 => "SIM PUK required",
        320 => "memory failure",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        500 => "unknown error",
        _ => return None,
    })
}

/// SplitMix64: a tiny, well-distributed generator, so runs with the same seed are the
/// same run.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
