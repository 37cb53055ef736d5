//! The pure parser of what a modem sends: bytes in, in any chunking, events out.
//!
//! It owns the framing of modem output (lines ended by CR or LF, the unterminated `> `
//! prompt of `AT+CMGS`, the two-line `+CMT`/`+CDS` unsolicited result codes) and the
//! classification of every line into a final result, an information line of the pending
//! command, the echo of that command, or an unsolicited result code ([`Urc`]). How a line is
//! classified depends on what the pending command expects, passed in as [`Pending`]:
//! `+CREG: 0,1` is the answer of `AT+CREG?` but a URC at any other time.
//!
//! It must not do I/O, read the clock or import tokio. It never fails and never panics on any
//! input: garbage, NUL bytes and invalid UTF-8 are skipped or replaced, and "need more bytes"
//! is `None`, never an error. [`parse`] takes one step over the front of a buffer and says
//! how many bytes it consumed, so the caller advances only over what was understood;
//! [`Decoder`] wraps it with a buffer for callers that receive bytes in arbitrary pieces.
//!
//! The result does not depend on how the input was cut into reads: every decision is taken
//! on complete lines (or on the two bytes of the prompt), and a decision is never revised
//! when more bytes arrive.

use std::fmt;

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::{complete, streaming},
    character::complete::{char, space0},
    combinator::{all_consuming, map},
    multi::separated_list0,
    sequence::delimited,
};

/// The longest line the parser waits for. A line still unterminated after this many bytes
/// is garbage (the longest real line, a `+CMGL` PDU line, is under 400 characters), and is
/// dropped so that a noisy port cannot make the buffer grow without bound.
pub const MAX_LINE: usize = 4096;

/// What the command currently waiting for its answer expects, so the parser can tell its
/// answer from unsolicited result codes. [`Pending::IDLE`] when no command is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending<'a> {
    /// The command line as written, without its CR: a modem with echo on (`ATE1`, the
    /// power-up default of every 3GPP modem) repeats it before answering.
    pub echo: &'a str,
    /// Prefixes of the command's information lines (e.g. `+CSQ:`), compared ignoring ASCII
    /// case. Any other `+X:`/`^X:` line is a URC.
    pub info_prefixes: &'a [&'a str],
    /// Whether lines without a `+`/`^` prefix are the command's answer (`AT+CGSN` answers
    /// `867...` bare; the PDU lines of `AT+CMGL` are bare).
    pub bare_lines: bool,
    /// Whether the `> ` prompt of `AT+CMGS` is awaited. It is recognised only then, and only
    /// at the start of a line.
    pub expects_prompt: bool,
}

impl Pending<'static> {
    /// No command is waiting: every `+X:` line is a URC.
    pub const IDLE: Pending<'static> = Pending {
        echo: "",
        info_prefixes: &[],
        bare_lines: false,
        expects_prompt: false,
    };
}

/// One thing the modem said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A final result code: the pending command is over.
    Final(Final),
    /// An information line of the pending command, trimmed (e.g. `+CSQ: 18,99`).
    Info(String),
    /// The modem repeated the pending command (echo on).
    Echo,
    /// The `> ` prompt after `AT+CMGS=<length>`: the modem waits for the PDU.
    Prompt,
    /// An unsolicited result code.
    Urc(Urc),
    /// A line nobody expects: garbage, a stray echo, text the pending command does not
    /// take. Callers log it (see [`redact_line`]) and otherwise ignore it.
    Unrecognised(String),
}

/// A final result code (ITU-T V.250 §5.7.1, TS 27.007 §9.2, TS 27.005 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    Ok,
    Error,
    /// `+CME ERROR: <err>` (TS 27.007 §9.2), after `AT+CMEE=1` (numeric) or `=2` (text).
    CmeError(ErrorCode),
    /// `+CMS ERROR: <err>` (TS 27.005 §3.2.5), for SMS commands.
    CmsError(ErrorCode),
    NoCarrier,
    Busy,
    NoAnswer,
    NoDialtone,
    /// `CONNECT` with its optional text (e.g. the speed).
    Connect(Option<String>),
    /// `COMMAND NOT SUPPORT`: Huawei E-series firmware answers unknown commands with this
    /// instead of `ERROR`.
    CommandNotSupported,
}

impl Final {
    /// Whether this is `OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Final::Ok)
    }
}

impl fmt::Display for Final {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Final::Ok => f.write_str("OK"),
            Final::Error => f.write_str("ERROR"),
            Final::CmeError(code) => write!(f, "+CME ERROR: {code}"),
            Final::CmsError(code) => write!(f, "+CMS ERROR: {code}"),
            Final::NoCarrier => f.write_str("NO CARRIER"),
            Final::Busy => f.write_str("BUSY"),
            Final::NoAnswer => f.write_str("NO ANSWER"),
            Final::NoDialtone => f.write_str("NO DIALTONE"),
            Final::Connect(None) => f.write_str("CONNECT"),
            Final::Connect(Some(text)) => write!(f, "CONNECT {text}"),
            Final::CommandNotSupported => f.write_str("COMMAND NOT SUPPORT"),
        }
    }
}

/// The `<err>` of `+CME ERROR`/`+CMS ERROR`: a number after `AT+CMEE=1`, a text after
/// `AT+CMEE=2` (verbose mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Numeric(u16),
    Text(String),
}

impl ErrorCode {
    fn parse(text: &str) -> ErrorCode {
        let text = text.trim();
        match text.parse::<u16>() {
            Ok(code) if text.bytes().all(|b| b.is_ascii_digit()) => ErrorCode::Numeric(code),
            _ => ErrorCode::Text(text.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Numeric(code) => write!(f, "{code}"),
            ErrorCode::Text(text) => f.write_str(text),
        }
    }
}

/// An unsolicited result code. Variants that carry a PDU or a phone number print only the
/// PDU's length and the masked number in their `Debug` form, so logging a `Urc` is safe.
#[derive(Clone, PartialEq, Eq)]
pub enum Urc {
    /// `+CMTI: "SM",3`: an incoming message was stored at `index` (TS 27.005 §3.4.1).
    MessageStored { storage: String, index: u32 },
    /// `+CMT: [<alpha>],<length>` and the PDU line after it: an incoming SMS-DELIVER routed
    /// straight to us (TS 27.005 §3.4.1, `AT+CNMI` `<mt>`=2).
    Message { length: usize, pdu: String },
    /// `+CDS: <length>` and the PDU line after it: an SMS-STATUS-REPORT routed straight to
    /// us (TS 27.005 §3.4.1, `AT+CNMI` `<ds>`=1).
    StatusReport { length: usize, pdu: String },
    /// `+CDSI: "SR",5`: a status report was stored at `index` (`AT+CNMI` `<ds>`=2).
    StatusReportStored { storage: String, index: u32 },
    /// `+CREG:`, `+CGREG:` or `+CEREG:` in their unsolicited form (`<stat>` first).
    Registration {
        kind: RegistrationKind,
        registration: Registration,
    },
    /// `RING`: an incoming call.
    Ring,
    /// `+CLIP: "<number>",<type>,...`: the caller of an incoming call.
    CallerId {
        number: String,
        number_type: Option<u8>,
    },
    /// `RDY`: the modem finished booting (Quectel EC25, SIMCom SIM7600, SIM800).
    Ready,
    /// `+CPIN: <code>` sent by itself after boot or a SIM change.
    SimState(SimState),
    /// `^RSSI: <rssi>` (Huawei), on the same 0..31/99 scale as `AT+CSQ`.
    Rssi(u8),
    /// `^BOOT: ...` (Huawei E3372 and E-series sticks), a periodic notification with no use
    /// to us.
    Boot,
    /// `^MODE: <sys_mode>[,<sys_submode>]` (Huawei): the radio technology changed.
    Mode { mode: u8, submode: Option<u8> },
    /// `+QIND: ...` (Quectel), its parameters as sent (e.g. `SMS DONE`).
    QuectelIndication(String),
    /// `Call Ready` (SIMCom SIM800): the modem can take calls.
    CallReady,
    /// `SMS Ready` (SIMCom SIM800): the SMS subsystem is initialised.
    SmsReady,
    /// `+CFUN: <fun>` sent by itself (SIMCom SIM800 after boot).
    Functionality(u8),
    /// A bare status line a modem prints while booting (`SMS DONE`, `PB DONE` on SIMCom
    /// SIM7600), as sent.
    BootStatus(String),
    /// `NORMAL POWER DOWN` (SIMCom) or `POWERED DOWN` (Quectel): the modem is switching off.
    PoweredDown,
    /// Any other `+X:`/`^X:` line no command was waiting for, or a known one whose
    /// parameters did not parse, kept whole.
    Other(String),
}

impl fmt::Debug for Urc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Urc::MessageStored { storage, index } => f
                .debug_struct("MessageStored")
                .field("storage", storage)
                .field("index", index)
                .finish(),
            Urc::Message { length, pdu } => f
                .debug_struct("Message")
                .field("length", length)
                .field("pdu", &HexLen(pdu.len()))
                .finish(),
            Urc::StatusReport { length, pdu } => f
                .debug_struct("StatusReport")
                .field("length", length)
                .field("pdu", &HexLen(pdu.len()))
                .finish(),
            Urc::StatusReportStored { storage, index } => f
                .debug_struct("StatusReportStored")
                .field("storage", storage)
                .field("index", index)
                .finish(),
            Urc::Registration { kind, registration } => f
                .debug_struct("Registration")
                .field("kind", kind)
                .field("registration", registration)
                .finish(),
            Urc::Ring => f.write_str("Ring"),
            Urc::CallerId {
                number,
                number_type,
            } => f
                .debug_struct("CallerId")
                .field("number", &crate::mask::phone(number))
                .field("number_type", number_type)
                .finish(),
            Urc::Ready => f.write_str("Ready"),
            Urc::SimState(state) => f.debug_tuple("SimState").field(state).finish(),
            Urc::Rssi(rssi) => f.debug_tuple("Rssi").field(rssi).finish(),
            Urc::Boot => f.write_str("Boot"),
            Urc::Mode { mode, submode } => f
                .debug_struct("Mode")
                .field("mode", mode)
                .field("submode", submode)
                .finish(),
            Urc::QuectelIndication(text) => f.debug_tuple("QuectelIndication").field(text).finish(),
            Urc::CallReady => f.write_str("CallReady"),
            Urc::SmsReady => f.write_str("SmsReady"),
            Urc::Functionality(fun) => f.debug_tuple("Functionality").field(fun).finish(),
            Urc::PoweredDown => f.write_str("PoweredDown"),
            Urc::BootStatus(line) => f.debug_tuple("BootStatus").field(line).finish(),
            Urc::Other(line) => f.debug_tuple("Other").field(&redact_line(line)).finish(),
        }
    }
}

/// Prints `<N hex chars>` in place of a PDU in `Debug` output.
struct HexLen(usize);

impl fmt::Debug for HexLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} hex chars>", self.0)
    }
}

/// Which registration a `+CREG`-family line is about (TS 27.007 §7.2, §10.1.20, §10.1.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationKind {
    /// `+CREG`: circuit-switched, the one SMS over GSM needs.
    CircuitSwitched,
    /// `+CGREG`: GPRS.
    Gprs,
    /// `+CEREG`: EPS (LTE, LTE-M, NB-IoT).
    Eps,
    /// `+C5GREG`: 5GS (TS 27.007 §10.1.61).
    FiveG,
}

impl RegistrationKind {
    /// Every domain, in the order the driver asks them.
    pub const ALL: [RegistrationKind; 4] = [
        RegistrationKind::CircuitSwitched,
        RegistrationKind::Gprs,
        RegistrationKind::Eps,
        RegistrationKind::FiveG,
    ];

    /// The command's name without `AT+`: `CREG`, `CGREG`, `CEREG`, `C5GREG`.
    pub fn name(self) -> &'static str {
        match self {
            RegistrationKind::CircuitSwitched => "CREG",
            RegistrationKind::Gprs => "CGREG",
            RegistrationKind::Eps => "CEREG",
            RegistrationKind::FiveG => "C5GREG",
        }
    }

    /// The domain in an operator's words.
    pub fn domain(self) -> &'static str {
        match self {
            RegistrationKind::CircuitSwitched => "CS (2G/3G)",
            RegistrationKind::Gprs => "PS (GPRS/3G)",
            RegistrationKind::Eps => "EPS (LTE)",
            RegistrationKind::FiveG => "5GS",
        }
    }
}

/// `<stat>` of `+CREG`/`+CGREG`/`+CEREG` (TS 27.007 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown (e.g. out of coverage).
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// 6: registered for "SMS only", home network.
    HomeSmsOnly,
    /// 7: registered for "SMS only", roaming.
    RoamingSmsOnly,
    /// 8: attached for emergency bearer services only.
    EmergencyOnly,
    /// 9: registered for "CSFB not preferred", home network.
    HomeCsfbNotPreferred,
    /// 10: registered for "CSFB not preferred", roaming.
    RoamingCsfbNotPreferred,
    /// Any other value.
    Other(u8),
}

impl RegistrationStatus {
    pub fn from_code(code: u8) -> RegistrationStatus {
        match code {
            0 => RegistrationStatus::NotRegistered,
            1 => RegistrationStatus::Home,
            2 => RegistrationStatus::Searching,
            3 => RegistrationStatus::Denied,
            4 => RegistrationStatus::Unknown,
            5 => RegistrationStatus::Roaming,
            6 => RegistrationStatus::HomeSmsOnly,
            7 => RegistrationStatus::RoamingSmsOnly,
            8 => RegistrationStatus::EmergencyOnly,
            9 => RegistrationStatus::HomeCsfbNotPreferred,
            10 => RegistrationStatus::RoamingCsfbNotPreferred,
            other => RegistrationStatus::Other(other),
        }
    }

    /// Whether the modem is registered in a way that lets it send SMS: home or roaming,
    /// including the "SMS only" and "CSFB not preferred" registrations.
    pub fn is_registered(self) -> bool {
        matches!(
            self,
            RegistrationStatus::Home
                | RegistrationStatus::Roaming
                | RegistrationStatus::HomeSmsOnly
                | RegistrationStatus::RoamingSmsOnly
                | RegistrationStatus::HomeCsfbNotPreferred
                | RegistrationStatus::RoamingCsfbNotPreferred
        )
    }
}

/// A registration state with the optional location fields (`AT+CREG=2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Registration {
    pub status: RegistrationStatus,
    /// Location (or tracking) area code, sent as quoted hexadecimal.
    pub area: Option<u32>,
    /// Cell id, sent as quoted hexadecimal.
    pub cell_id: Option<u32>,
    /// `<AcT>`: the access technology (0 GSM, 2 UTRAN, 7 E-UTRAN, ...).
    pub access_technology: Option<u8>,
}

impl Registration {
    /// Reads `<stat>[,<lac>,<ci>[,<AcT>]]`, the parameters of the unsolicited form (the
    /// answer of `AT+CREG?` has `<n>` in front; drop it first).
    pub(crate) fn from_params(params: &[Param<'_>]) -> Option<Registration> {
        let status = RegistrationStatus::from_code(params.first()?.number()?);
        let hex = |i: usize| {
            params
                .get(i)
                .and_then(|p| u32::from_str_radix(p.text().trim(), 16).ok())
        };
        Some(Registration {
            status,
            area: hex(1),
            cell_id: hex(2),
            access_technology: params.get(3).and_then(|p| p.number()),
        })
    }
}

/// The SIM's state, from `+CPIN: <code>` (TS 27.007 §8.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SimState {
    /// No PIN is needed.
    Ready,
    /// The SIM waits for its PIN.
    SimPin,
    /// The SIM is blocked and waits for its PUK: an operator must act.
    SimPuk,
    PhSimPin,
    SimPin2,
    SimPuk2,
    /// `NOT INSERTED` (SIMCom SIM800, Quectel EC25).
    NotInserted,
    /// `NOT READY` (Quectel EC25 while the SIM initialises).
    NotReady,
    /// Any other code, as sent.
    Other(String),
}

impl SimState {
    /// Reads the `<code>` of `+CPIN:` (with or without quotes).
    pub fn parse(code: &str) -> SimState {
        let code = code.trim().trim_matches('"').trim();
        match code.to_ascii_uppercase().as_str() {
            "READY" => SimState::Ready,
            "SIM PIN" => SimState::SimPin,
            "SIM PUK" => SimState::SimPuk,
            "PH-SIM PIN" => SimState::PhSimPin,
            "SIM PIN2" => SimState::SimPin2,
            "SIM PUK2" => SimState::SimPuk2,
            "NOT INSERTED" | "SIM NOT INSERTED" => SimState::NotInserted,
            "NOT READY" => SimState::NotReady,
            _ => SimState::Other(code.to_owned()),
        }
    }
}

/// One step of the parser over the front of a buffer: `consumed` bytes (always at least
/// one) were understood, and produced `event`, or nothing when they were noise (line
/// endings, NUL bytes, garbage, an empty line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub consumed: usize,
    pub event: Option<Event>,
}

impl Step {
    fn skip(consumed: usize) -> Step {
        Step {
            consumed,
            event: None,
        }
    }

    fn event(consumed: usize, event: Event) -> Step {
        Step {
            consumed,
            event: Some(event),
        }
    }
}

/// Takes one step over `buf`, which starts at the beginning of a line (or wherever the
/// previous step ended). Returns `None` when more bytes are needed to decide anything; the
/// caller then keeps `buf` and appends to it. Never fails: anything it cannot make sense of
/// is skipped or returned as [`Event::Unrecognised`].
///
/// ```
/// use smsbridge::at::parse::{parse, Event, Final, Pending};
///
/// let step = parse(b"OK\r\n", &Pending::IDLE).unwrap();
/// assert_eq!((step.consumed, step.event), (3, Some(Event::Final(Final::Ok))));
/// assert_eq!(parse(b"O", &Pending::IDLE), None);
/// ```
pub fn parse(buf: &[u8], ctx: &Pending<'_>) -> Option<Step> {
    let mut noise = leading_noise(buf);
    if ctx.expects_prompt {
        // The space of `> ` may arrive in a read of its own after a bare '>' was taken for
        // the prompt; spaces are skipped like line endings then, so that no chunking of
        // the input changes the events.
        noise += leading_noise_or_space(&buf[noise..]);
    }
    if noise > 0 {
        return Some(Step::skip(noise));
    }
    if buf.is_empty() {
        return None;
    }
    if ctx.expects_prompt && buf.first() == Some(&b'>') {
        // TS 27.005 §3.5.1 says CR LF '>' SP, but real modems differ: SIMCom SIM7670G
        // frames it as CR LF '>' CR LF, others send '>' with no space (gammu issue 1176,
        // PR 1177), u-blox LARA sends '>' with no line ending before it (RIOT-OS PR 20016),
        // and some stop at a bare '>' and wait. Line endings before it were skipped as
        // noise, those after it are skipped the same way; no answer line starts with '>',
        // so a '>' at the start of a line while the prompt is awaited is the prompt.
        return Some(Step::event(1, Event::Prompt));
    }
    let window = &buf[..buf.len().min(MAX_LINE)];
    let Some((raw, first_len)) = find_line(window) else {
        // An unterminated line longer than any real one is garbage; dropping exactly
        // MAX_LINE bytes keeps the decision independent of how the input was cut.
        return (window.len() == MAX_LINE).then(|| Step::skip(MAX_LINE));
    };
    let line = clean(raw);
    match classify(&line, ctx) {
        Class::Nothing => Some(Step::skip(first_len)),
        Class::Event(event) => Some(Step::event(first_len, event)),
        Class::PduFollows(kind, length) => {
            let rest = buf.get(first_len..).unwrap_or_default();
            let window = &rest[..rest.len().min(MAX_LINE)];
            let gap = leading_noise(window);
            let after = window.get(gap..).unwrap_or_default();
            match find_line(after) {
                Some((raw_pdu, pdu_len)) => {
                    let pdu = clean(raw_pdu);
                    if is_hex(&pdu) {
                        let urc = match kind {
                            PduKind::Deliver => Urc::Message { length, pdu },
                            PduKind::StatusReport => Urc::StatusReport { length, pdu },
                        };
                        Some(Step::event(first_len + gap + pdu_len, Event::Urc(urc)))
                    } else {
                        // The modem did not send the PDU line it announced; keep the header
                        // and let the next line be parsed on its own.
                        Some(Step::event(first_len, Event::Urc(Urc::Other(line))))
                    }
                }
                None if window.len() == MAX_LINE => {
                    Some(Step::event(first_len, Event::Urc(Urc::Other(line))))
                }
                None => None,
            }
        }
    }
}

/// A buffer in front of [`parse`] for bytes that arrive in arbitrary pieces.
///
/// ```
/// use smsbridge::at::parse::{Decoder, Event, Pending, Urc};
///
/// let mut decoder = Decoder::new();
/// decoder.push(b"\r\n+CMTI: \"SM\",");
/// assert_eq!(decoder.next_event(&Pending::IDLE), None);
/// decoder.push(b"3\r\n");
/// assert_eq!(
///     decoder.next_event(&Pending::IDLE),
///     Some(Event::Urc(Urc::MessageStored { storage: "SM".into(), index: 3 }))
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends bytes read from the modem.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start.min(self.buf.len()));
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next event in the buffered bytes, classified with `ctx`; `None` when more bytes
    /// are needed. Noise is consumed on the way.
    pub fn next_event(&mut self, ctx: &Pending<'_>) -> Option<Event> {
        loop {
            let rest = self.buf.get(self.start..).unwrap_or_default();
            let step = parse(rest, ctx)?;
            self.start = (self.start + step.consumed.max(1)).min(self.buf.len());
            if let Some(event) = step.event {
                return Some(event);
            }
        }
    }

    /// How many bytes wait for the rest of their line.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// Forgets everything buffered.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

/// A form of a modem line fit for a log line: a hexadecimal PDU (which carries message text
/// and codes) is replaced by its length, quoted phone numbers are masked, and the PIN of
/// `AT+CPIN="…"` is hidden.
pub fn redact_line(line: &str) -> String {
    // Any long run of hex digits is treated as a PDU, even of odd length (a truncated echo).
    if line.len() >= 16 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("<{} hex chars>", line.len());
    }
    if let Some(at) = line.to_ascii_uppercase().find("+CPIN=") {
        let head = line.get(..at + "+CPIN=".len()).unwrap_or_default();
        return format!("{head}\"****\"");
    }
    let mut out = String::with_capacity(line.len());
    let mut quoted = line.split('"');
    // Even pieces are outside quotes, odd pieces inside.
    let mut inside = false;
    for piece in quoted.by_ref() {
        if inside {
            out.push('"');
            if looks_like_number(piece) {
                out.push_str(&crate::mask::phone(piece));
            } else {
                out.push_str(piece);
            }
            out.push('"');
        } else {
            out.push_str(piece);
        }
        inside = !inside;
    }
    out
}

fn looks_like_number(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A parameter of an AT line: quoted strings keep their inner text, bare values are trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param<'a> {
    Quoted(&'a str),
    Bare(&'a str),
}

impl<'a> Param<'a> {
    pub(crate) fn text(self) -> &'a str {
        match self {
            Param::Quoted(text) | Param::Bare(text) => text,
        }
    }

    pub(crate) fn number<T: std::str::FromStr>(self) -> Option<T> {
        self.text().trim().parse().ok()
    }

    pub(crate) fn is_empty(self) -> bool {
        self.text().trim().is_empty()
    }
}

/// Splits `a,"b,c",,7` into its parameters; `None` when a quoted string is followed by
/// something other than a comma.
pub(crate) fn params(text: &str) -> Option<Vec<Param<'_>>> {
    let quoted = map(
        delimited(
            (space0, char('"')),
            complete::take_till(|c| c == '"'),
            (char('"'), space0),
        ),
        Param::Quoted,
    );
    let bare = map(complete::take_till(|c| c == ','), |s: &str| {
        Param::Bare(s.trim())
    });
    let result: IResult<&str, Vec<Param<'_>>, ()> =
        all_consuming(separated_list0(char(','), alt((quoted, bare)))).parse(text);
    result.ok().map(|(_, params)| params)
}

/// Whether `line` starts with `prefix`, ignoring ASCII case.
pub(crate) fn has_prefix(line: &str, prefix: &str) -> bool {
    line.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// What a complete line turned out to be.
enum Class {
    Nothing,
    Event(Event),
    /// A `+CMT`/`+CDS` header: the event needs the PDU line that follows.
    PduFollows(PduKind, usize),
}

#[derive(Clone, Copy)]
enum PduKind {
    Deliver,
    StatusReport,
}

/// Bytes that never start a line: line endings, NUL and other control bytes, and anything
/// outside printable ASCII (line noise, a baud-rate mismatch).
fn is_noise(byte: u8) -> bool {
    !(0x20..0x7f).contains(&byte)
}

fn is_eol(byte: u8) -> bool {
    byte == b'\r' || byte == b'\n'
}

fn leading_noise_or_space(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b' ' || is_noise(b))
        .count()
}

fn leading_noise(buf: &[u8]) -> usize {
    complete::take_while::<_, _, ()>(is_noise)(buf)
        .map(|(_, noise)| noise.len())
        .unwrap_or(0)
}

/// The bytes of the first line in `bytes` and how many bytes it takes with its line ending;
/// `None` when no line ending has arrived yet.
fn find_line(bytes: &[u8]) -> Option<(&[u8], usize)> {
    match streaming::take_till::<_, _, ()>(is_eol)(bytes) {
        Ok((_, raw)) => Some((raw, raw.len() + 1)),
        Err(_) => None,
    }
}

/// The text of a raw line: control bytes dropped (a NUL inside `OK` still leaves `OK`),
/// invalid UTF-8 dropped, surrounding spaces trimmed.
fn clean(raw: &[u8]) -> String {
    let kept: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b == b'\t' || !(b < 0x20 || b == 0x7f))
        .collect();
    String::from_utf8_lossy(&kept)
        .chars()
        .filter(|&c| c != char::REPLACEMENT_CHARACTER)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a line has the `+NAME`/`^NAME` shape of result codes.
fn is_prefixed(line: &str) -> bool {
    let mut bytes = line.bytes();
    matches!(bytes.next(), Some(b'+' | b'^'))
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
}

fn classify(line: &str, ctx: &Pending<'_>) -> Class {
    if line.is_empty() {
        return Class::Nothing;
    }
    let echo = ctx.echo.trim();
    if !echo.is_empty() && line.eq_ignore_ascii_case(echo) {
        return Class::Event(Event::Echo);
    }
    if let Some(result) = final_result(line) {
        return Class::Event(Event::Final(result));
    }
    if ctx.info_prefixes.iter().any(|p| has_prefix(line, p)) {
        return Class::Event(Event::Info(line.to_owned()));
    }
    if let Some(class) = unsolicited(line) {
        return class;
    }
    if ctx.bare_lines {
        return Class::Event(Event::Info(line.to_owned()));
    }
    Class::Event(Event::Unrecognised(line.to_owned()))
}

fn final_result(line: &str) -> Option<Final> {
    let result = match line {
        "OK" => Final::Ok,
        "ERROR" => Final::Error,
        "NO CARRIER" => Final::NoCarrier,
        "BUSY" => Final::Busy,
        "NO ANSWER" => Final::NoAnswer,
        "NO DIALTONE" | "NO DIAL TONE" => Final::NoDialtone,
        "CONNECT" => Final::Connect(None),
        "COMMAND NOT SUPPORT" => Final::CommandNotSupported,
        _ => {
            if let Some(rest) = line.strip_prefix("+CME ERROR:") {
                Final::CmeError(ErrorCode::parse(rest))
            } else if let Some(rest) = line.strip_prefix("+CMS ERROR:") {
                Final::CmsError(ErrorCode::parse(rest))
            } else if let Some(rest) = line.strip_prefix("CONNECT ") {
                Final::Connect(Some(rest.trim().to_owned()))
            } else {
                return None;
            }
        }
    };
    Some(result)
}

/// The URC a line is, if it is one: a known bare code, a known `+X:` code with its
/// parameters, or any other `+X`/`^X` line as [`Urc::Other`].
fn unsolicited(line: &str) -> Option<Class> {
    let bare = match line {
        "RING" => Some(Urc::Ring),
        // `^SYSSTART` is the boot announcement of Cinterion/Telit modules.
        "RDY" | "^SYSSTART" => Some(Urc::Ready),
        "Call Ready" => Some(Urc::CallReady),
        "SMS Ready" => Some(Urc::SmsReady),
        // SIMCom SIM7600 says these bare at boot (Xinyuan-LilyGO/T-SIM7600X PR 41,
        // espressif/esp-protocols issue 789); they are never an answer to a command.
        "SMS DONE" | "PB DONE" => Some(Urc::BootStatus(line.to_owned())),
        "NORMAL POWER DOWN" | "POWERED DOWN" => Some(Urc::PoweredDown),
        _ => None,
    };
    if let Some(urc) = bare {
        return Some(Class::Event(Event::Urc(urc)));
    }
    if !is_prefixed(line) {
        return None;
    }
    let other = || Class::Event(Event::Urc(Urc::Other(line.to_owned())));
    let Some((name, rest)) = line.split_once(':') else {
        return Some(other());
    };
    let rest = rest.trim();
    let urc = |urc: Option<Urc>| urc.map(|u| Class::Event(Event::Urc(u)));
    let class = match name.trim().to_ascii_uppercase().as_str() {
        "+CMTI" => urc(stored(rest, |storage, index| Urc::MessageStored {
            storage,
            index,
        })),
        "+CDSI" => urc(stored(rest, |storage, index| Urc::StatusReportStored {
            storage,
            index,
        })),
        // TS 27.005 §3.4.1, PDU mode: `+CMT: [<alpha>],<length>`; text mode has more
        // parameters and no PDU line, and is left to `Other`.
        "+CMT" => params(rest).and_then(|p| match p.as_slice() {
            [length] | [_, length] => length
                .number()
                .map(|n| Class::PduFollows(PduKind::Deliver, n)),
            _ => None,
        }),
        "+CDS" => params(rest).and_then(|p| match p.as_slice() {
            [length] => length
                .number()
                .map(|n| Class::PduFollows(PduKind::StatusReport, n)),
            _ => None,
        }),
        "+CREG" => urc(registration(rest, RegistrationKind::CircuitSwitched)),
        "+CGREG" => urc(registration(rest, RegistrationKind::Gprs)),
        "+CEREG" => urc(registration(rest, RegistrationKind::Eps)),
        "+C5GREG" => urc(registration(rest, RegistrationKind::FiveG)),
        "+CLIP" => urc(params(rest).and_then(|p| {
            Some(Urc::CallerId {
                number: p.first()?.text().to_owned(),
                number_type: p.get(1).and_then(|t| t.number()),
            })
        })),
        "+CPIN" => urc(Some(Urc::SimState(SimState::parse(rest)))),
        "^RSSI" => urc(rest.parse().ok().map(Urc::Rssi)),
        "^BOOT" => urc(Some(Urc::Boot)),
        "^MODE" => urc(params(rest).and_then(|p| {
            Some(Urc::Mode {
                mode: p.first()?.number()?,
                submode: p.get(1).and_then(|s| s.number()),
            })
        })),
        "+QIND" => urc(Some(Urc::QuectelIndication(rest.to_owned()))),
        "+CFUN" => urc(rest.parse().ok().map(Urc::Functionality)),
        _ => None,
    };
    Some(class.unwrap_or_else(other))
}

fn stored(rest: &str, make: impl Fn(String, u32) -> Urc) -> Option<Urc> {
    match params(rest)?.as_slice() {
        [storage, index] => Some(make(storage.text().to_owned(), index.number()?)),
        _ => None,
    }
}

fn registration(rest: &str, kind: RegistrationKind) -> Option<Urc> {
    let registration = Registration::from_params(&params(rest)?)?;
    Some(Urc::Registration { kind, registration })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PDU_CDS: &str = "0791447758100650060C9144974523190100011262000000001126200000000000";
    const PDU_CMT: &str = "07914477581006500407D0C6F2B91C0000112062000000000AC8329BFD06";
    const PDU_CMGL: &str = "07914477581006500405A101000000112062000000000AC8329BFD06";

    /// Feeds `chunks` one after another, collecting every event.
    fn feed(chunks: &[&[u8]], ctx: &Pending<'_>) -> Vec<Event> {
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(event) = decoder.next_event(ctx) {
                events.push(event);
            }
        }
        events
    }

    /// The one helper: `input` fed whole and byte by byte gives `expected`.
    fn check(input: &[u8], ctx: Pending<'_>, expected: &[Event]) {
        let whole = feed(&[input], &ctx);
        assert_eq!(
            whole,
            expected,
            "fed whole: {:?}",
            String::from_utf8_lossy(input)
        );
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let split = feed(&bytes, &ctx);
        assert_eq!(
            split,
            expected,
            "byte by byte: {:?}",
            String::from_utf8_lossy(input)
        );
    }

    fn info(line: &str) -> Event {
        Event::Info(line.to_owned())
    }

    fn urc(urc: Urc) -> Event {
        Event::Urc(urc)
    }

    const OK: Event = Event::Final(Final::Ok);

    fn pending<'a>(
        echo: &'a str,
        prefixes: &'a [&'a str],
        bare: bool,
        prompt: bool,
    ) -> Pending<'a> {
        Pending {
            echo,
            info_prefixes: prefixes,
            bare_lines: bare,
            expects_prompt: prompt,
        }
    }

    /// Transcripts from real modems with the context they arrive in and the events they
    /// must give.
    fn transcripts() -> Vec<(&'static str, Vec<u8>, Pending<'static>, Vec<Event>)> {
        let cds = format!("\r\n+CDS: 25\r\n{PDU_CDS}\r\n");
        let cmt = format!("\r\n+CMT: ,24\r\n{PDU_CMT}\r\n");
        let cmgl = format!(
            "AT+CMGL=4\r\r\n+CMGL: 1,1,,23\r\n{PDU_CMGL}\r\n\r\n+CMTI: \"SM\",2\r\n+CMGL: 2,0,,23\r\n{PDU_CMGL}\r\n\r\nOK\r\n"
        );
        vec![
            (
                "SIM800 power-up notifications",
                b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n"
                    .to_vec(),
                Pending::IDLE,
                vec![
                    urc(Urc::Ready),
                    urc(Urc::Functionality(1)),
                    urc(Urc::SimState(SimState::Ready)),
                    urc(Urc::CallReady),
                    urc(Urc::SmsReady),
                ],
            ),
            (
                "SIM800 AT+CSQ with echo on",
                b"AT+CSQ\r\r\n+CSQ: 18,0\r\n\r\nOK\r\n".to_vec(),
                pending("AT+CSQ", &["+CSQ:"], false, false),
                vec![Event::Echo, info("+CSQ: 18,0"), OK],
            ),
            (
                "Quectel EC25 power-up with +QIND",
                b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n"
                    .to_vec(),
                Pending::IDLE,
                vec![
                    urc(Urc::Ready),
                    urc(Urc::Functionality(1)),
                    urc(Urc::SimState(SimState::Ready)),
                    urc(Urc::Other("+QUSIM: 1".into())),
                    urc(Urc::QuectelIndication("SMS DONE".into())),
                    urc(Urc::QuectelIndication("PB DONE".into())),
                ],
            ),
            (
                "Quectel EC25 AT+CGSN answers bare",
                b"\r\n867698041234567\r\n\r\nOK\r\n".to_vec(),
                pending("AT+CGSN", &["+CGSN:"], true, false),
                vec![info("867698041234567"), OK],
            ),
            (
                "Quectel EC25 AT+CGMR with a URC inside the answer",
                b"AT+CGMR\r\r\nRevision: EC25EFAR06A03M4G\r\n\r\n+QIND: \"csq\",20,99\r\n\r\nOK\r\n"
                    .to_vec(),
                pending("AT+CGMR", &["+CGMR:"], true, false),
                vec![
                    Event::Echo,
                    info("Revision: EC25EFAR06A03M4G"),
                    urc(Urc::QuectelIndication("\"csq\",20,99".into())),
                    OK,
                ],
            ),
            (
                "Huawei E3372 AT+CREG? with ^RSSI/^BOOT/^MODE noise",
                b"\r\n^RSSI: 17\r\n\r\n+CREG: 0,1\r\n\r\n^BOOT:38457021,0,0,0,75\r\n\r\nOK\r\n\r\n^MODE: 5,4\r\n"
                    .to_vec(),
                pending("AT+CREG?", &["+CREG:"], false, false),
                vec![
                    urc(Urc::Rssi(17)),
                    info("+CREG: 0,1"),
                    urc(Urc::Boot),
                    OK,
                    urc(Urc::Mode {
                        mode: 5,
                        submode: Some(4),
                    }),
                ],
            ),
            (
                "Huawei E3372 answers an unknown command",
                b"\r\nCOMMAND NOT SUPPORT\r\n".to_vec(),
                pending("AT+QCCID", &["+QCCID:"], false, false),
                vec![Event::Final(Final::CommandNotSupported)],
            ),
            (
                "+CREG URC while idle",
                b"\r\n+CREG: 1,\"1A2B\",\"01C3D4E5\",7\r\n".to_vec(),
                Pending::IDLE,
                vec![urc(Urc::Registration {
                    kind: RegistrationKind::CircuitSwitched,
                    registration: Registration {
                        status: RegistrationStatus::Home,
                        area: Some(0x1A2B),
                        cell_id: Some(0x01C3_D4E5),
                        access_technology: Some(7),
                    },
                })],
            ),
            (
                "+CEREG and +CGREG URCs",
                b"\r\n+CGREG: 2\r\n\r\n+CEREG: 5,\"00C3\",\"0A1B2C3D\",7\r\n".to_vec(),
                Pending::IDLE,
                vec![
                    urc(Urc::Registration {
                        kind: RegistrationKind::Gprs,
                        registration: Registration {
                            status: RegistrationStatus::Searching,
                            area: None,
                            cell_id: None,
                            access_technology: None,
                        },
                    }),
                    urc(Urc::Registration {
                        kind: RegistrationKind::Eps,
                        registration: Registration {
                            status: RegistrationStatus::Roaming,
                            area: Some(0xC3),
                            cell_id: Some(0x0A1B_2C3D),
                            access_technology: Some(7),
                        },
                    }),
                ],
            ),
            (
                "SIM7600 AT+CMGS prompt with echo on",
                b"AT+CMGS=23\r\r\n> ".to_vec(),
                pending("AT+CMGS=23", &["+CMGS:"], false, true),
                vec![Event::Echo, Event::Prompt],
            ),
            (
                "SIM7600 PDU echo, then +CMGS and OK",
                format!("{PDU_CMGL}\x1a\r\n+CMGS: 12\r\n\r\nOK\r\n").into_bytes(),
                pending(PDU_CMGL, &["+CMGS:"], false, false),
                vec![Event::Echo, info("+CMGS: 12"), OK],
            ),
            (
                "+CMS ERROR instead of the prompt",
                b"\r\n+CMS ERROR: 304\r\n".to_vec(),
                pending("AT+CMGS=23", &["+CMGS:"], false, true),
                vec![Event::Final(Final::CmsError(ErrorCode::Numeric(304)))],
            ),
            (
                "status report with its PDU line",
                cds.into_bytes(),
                Pending::IDLE,
                vec![urc(Urc::StatusReport {
                    length: 25,
                    pdu: PDU_CDS.into(),
                })],
            ),
            (
                "incoming message with its PDU line",
                cmt.into_bytes(),
                Pending::IDLE,
                vec![urc(Urc::Message {
                    length: 24,
                    pdu: PDU_CMT.into(),
                })],
            ),
            (
                "+CMTI between an echo and the final result of AT+CMGL",
                cmgl.into_bytes(),
                pending("AT+CMGL=4", &["+CMGL:"], true, false),
                vec![
                    Event::Echo,
                    info("+CMGL: 1,1,,23"),
                    info(PDU_CMGL),
                    urc(Urc::MessageStored {
                        storage: "SM".into(),
                        index: 2,
                    }),
                    info("+CMGL: 2,0,,23"),
                    info(PDU_CMGL),
                    OK,
                ],
            ),
            (
                "stored status report, RING and caller id",
                b"\r\n+CDSI: \"SR\",5\r\n\r\nRING\r\n\r\n+CLIP: \"+447400123456\",145,\"\",0,\"\",0\r\n"
                    .to_vec(),
                Pending::IDLE,
                vec![
                    urc(Urc::StatusReportStored {
                        storage: "SR".into(),
                        index: 5,
                    }),
                    urc(Urc::Ring),
                    urc(Urc::CallerId {
                        number: "+447400123456".into(),
                        number_type: Some(145),
                    }),
                ],
            ),
            (
                "+CME ERROR numeric and verbose",
                b"\r\n+CME ERROR: 10\r\n\r\n+CME ERROR: SIM not inserted\r\n".to_vec(),
                pending("AT+CPIN?", &["+CPIN:"], false, false),
                vec![
                    Event::Final(Final::CmeError(ErrorCode::Numeric(10))),
                    Event::Final(Final::CmeError(ErrorCode::Text("SIM not inserted".into()))),
                ],
            ),
            (
                "+CPIN answer versus +CPIN URC",
                b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n".to_vec(),
                pending("AT+CPIN?", &["+CPIN:"], false, false),
                vec![info("+CPIN: SIM PIN"), OK],
            ),
            (
                "other finals",
                b"\r\nNO CARRIER\r\nBUSY\r\nNO ANSWER\r\nNO DIALTONE\r\nCONNECT\r\nCONNECT 115200\r\nERROR\r\n"
                    .to_vec(),
                Pending::IDLE,
                vec![
                    Event::Final(Final::NoCarrier),
                    Event::Final(Final::Busy),
                    Event::Final(Final::NoAnswer),
                    Event::Final(Final::NoDialtone),
                    Event::Final(Final::Connect(None)),
                    Event::Final(Final::Connect(Some("115200".into()))),
                    Event::Final(Final::Error),
                ],
            ),
            (
                "garbage, NUL bytes and invalid UTF-8 are skipped",
                b"\0\0\xff\xfe\x1b\r\n\0O\0K\0\r\n\x80\x81+CSQ: 9\xff9,99\r\n\xc3\x28\r\nOK\r\n".to_vec(),
                pending("AT+CSQ", &["+CSQ:"], false, false),
                vec![OK, info("+CSQ: 99,99"), Event::Unrecognised("(".into()), OK],
            ),
            (
                "the prompt is not a prompt when none is expected",
                b"\r\n> \r\nOK\r\n".to_vec(),
                Pending::IDLE,
                vec![Event::Unrecognised(">".into()), OK],
            ),
            (
                "unknown +X and ^X lines while idle",
                b"\r\n+CUSD: 0,\"Balance\",15\r\n^SRVST: 2\r\n+PBREADY\r\n".to_vec(),
                Pending::IDLE,
                vec![
                    urc(Urc::Other("+CUSD: 0,\"Balance\",15".into())),
                    urc(Urc::Other("^SRVST: 2".into())),
                    urc(Urc::Other("+PBREADY".into())),
                ],
            ),
            (
                "a bare line nobody expects",
                b"\r\nhello\r\n".to_vec(),
                pending("AT+CSQ", &["+CSQ:"], false, false),
                vec![Event::Unrecognised("hello".into())],
            ),
            (
                "+CDS whose next line is not a PDU keeps the next line",
                b"\r\n+CDS: 25\r\nOK\r\n".to_vec(),
                Pending::IDLE,
                vec![urc(Urc::Other("+CDS: 25".into())), OK],
            ),
            (
                "malformed known URCs are kept whole",
                b"\r\n+CMTI: \"SM\"\r\n^RSSI: high\r\n+CREG: \"x\"\r\n".to_vec(),
                Pending::IDLE,
                vec![
                    urc(Urc::Other("+CMTI: \"SM\"".into())),
                    urc(Urc::Other("^RSSI: high".into())),
                    urc(Urc::Other("+CREG: \"x\"".into())),
                ],
            ),
            (
                "power down notices",
                b"\r\nNORMAL POWER DOWN\r\n\r\nPOWERED DOWN\r\n".to_vec(),
                Pending::IDLE,
                vec![urc(Urc::PoweredDown), urc(Urc::PoweredDown)],
            ),
        ]
    }

    #[test]
    fn transcripts_give_their_events() {
        for (name, input, ctx, expected) in transcripts() {
            eprintln!("transcript: {name}");
            check(&input, ctx, &expected);
        }
    }

    #[test]
    fn the_prompt_needs_no_line_ending() {
        let ctx = pending("AT+CMGS=23", &["+CMGS:"], false, true);
        check(b"\r\n> ", ctx, &[Event::Prompt]);
        // Bytes right after the prompt in the same read do not hide it.
        check(
            b"\r\n> 0011000B9144\r\n",
            ctx,
            &[Event::Prompt, Event::Unrecognised("0011000B9144".into())],
        );
        // Only at the start of a line.
        check(b"x> \r\n", ctx, &[Event::Unrecognised("x>".into())]);
        // Only while AT+CMGS waits for it.
        check(b"\r\n> ", Pending::IDLE, &[]);
    }

    /// Every framing real modems use: `> ` (TS 27.005), `>` CR LF and CR LF `>` CR LF
    /// (SIMCom SIM7670G; gammu issue 1176 / PR 1177), `>` with no line ending before it
    /// (u-blox LARA, RIOT-OS PR 20016), and a bare `>` as the last byte received.
    #[test]
    fn every_prompt_framing_is_the_prompt() {
        let ctx = pending("AT+CMGS=23", &["+CMGS:"], false, true);
        let framings: [&[u8]; 7] = [
            b"\r\n> ",
            b"\r\n>\r\n",
            b"\r\n>",
            b">",
            b"> ",
            b">\r\n",
            b"AT+CMGS=23\r>",
        ];
        for framing in framings {
            let events = feed(&[framing], &ctx);
            let prompts = events.iter().filter(|e| **e == Event::Prompt).count();
            assert_eq!(
                prompts,
                1,
                "{:?}: {events:?}",
                String::from_utf8_lossy(framing)
            );
            // Split at every byte, the prompt is still seen exactly once.
            let bytes: Vec<&[u8]> = framing.chunks(1).collect();
            let events = feed(&bytes, &ctx);
            let prompts = events.iter().filter(|e| **e == Event::Prompt).count();
            assert_eq!(
                prompts,
                1,
                "{:?} byte by byte: {events:?}",
                String::from_utf8_lossy(framing)
            );
        }
    }

    /// SIM7600's bare boot lines (T-SIM7600X PR 41, esp-protocols issue 789) are URCs even
    /// inside an identity answer that takes bare lines.
    #[test]
    fn simcom_boot_lines_are_never_an_answer() {
        let ctx = pending("AT+CGMI", &[], true, false);
        check(
            b"\r\nSMS DONE\r\n\r\nPB DONE\r\n\r\nSIMCOM INCORPORATED\r\n\r\nOK\r\n",
            ctx,
            &[
                urc(Urc::BootStatus("SMS DONE".into())),
                urc(Urc::BootStatus("PB DONE".into())),
                Event::Info("SIMCOM INCORPORATED".into()),
                Event::Final(Final::Ok),
            ],
        );
        check(b"\r\n^SYSSTART\r\n", Pending::IDLE, &[urc(Urc::Ready)]);
    }

    #[test]
    fn a_status_report_waits_for_its_pdu_line() {
        let mut decoder = Decoder::new();
        decoder.push(b"\r\n+CDS: 25\r\n");
        assert_eq!(decoder.next_event(&Pending::IDLE), None);
        decoder.push(b"\r\n");
        assert_eq!(decoder.next_event(&Pending::IDLE), None);
        decoder.push(PDU_CDS.as_bytes());
        assert_eq!(decoder.next_event(&Pending::IDLE), None);
        decoder.push(b"\r\n");
        assert_eq!(
            decoder.next_event(&Pending::IDLE),
            Some(urc(Urc::StatusReport {
                length: 25,
                pdu: PDU_CDS.into()
            }))
        );
        assert_eq!(decoder.next_event(&Pending::IDLE), None);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn an_overlong_line_is_dropped_and_parsing_goes_on() {
        let mut input = vec![b'A'; MAX_LINE + 10];
        input.extend_from_slice(b"\r\nOK\r\n");
        check(
            &input,
            Pending::IDLE,
            &[Event::Unrecognised("A".repeat(10)), OK],
        );
        // The buffer never holds more than a line's worth.
        let mut decoder = Decoder::new();
        for _ in 0..10 {
            decoder.push(&[b'B'; MAX_LINE]);
            assert_eq!(decoder.next_event(&Pending::IDLE), None);
            assert!(decoder.buffered() < MAX_LINE);
        }
    }

    #[test]
    fn need_more_bytes_is_none() {
        for partial in [
            &b""[..],
            b"OK",
            b"+CMTI: \"SM\",3",
            b"+CDS: 25\r\n",
            b"+CDS: 25\r\n0791",
        ] {
            assert_eq!(parse(partial, &Pending::IDLE), None, "{partial:?}");
        }
    }

    #[test]
    fn params_split_on_commas_outside_quotes() {
        let p = params("1,\"a,b\",, 7 ").unwrap();
        assert_eq!(
            p,
            vec![
                Param::Bare("1"),
                Param::Quoted("a,b"),
                Param::Bare(""),
                Param::Bare("7")
            ]
        );
        assert_eq!(params("\"SM\"x,3"), None);
        assert_eq!(params(""), Some(vec![Param::Bare("")]));
    }

    #[test]
    fn redaction_hides_pdus_numbers_and_pins() {
        for (line, expected) in [
            (PDU_CDS, "<66 hex chars>"),
            (&PDU_CDS[1..], "<65 hex chars>"),
            (
                "+CLIP: \"+447400123456\",145",
                "+CLIP: \"+44********56\",145",
            ),
            ("AT+CPIN=\"1234\"", "AT+CPIN=\"****\""),
            ("+CMTI: \"SM\",3", "+CMTI: \"SM\",3"),
            ("OK", "OK"),
        ] {
            assert_eq!(redact_line(line), expected, "{line}");
        }
        let debug = format!(
            "{:?}",
            Urc::CallerId {
                number: "+447400123456".into(),
                number_type: None
            }
        );
        assert!(!debug.contains("7400123"), "{debug}");
        let debug = format!(
            "{:?}",
            Urc::StatusReport {
                length: 25,
                pdu: PDU_CDS.into()
            }
        );
        assert!(!debug.contains(PDU_CDS), "{debug}");
    }

    /// Splits `input` at the given cut points (taken modulo its length).
    fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| {
                if input.is_empty() {
                    0
                } else {
                    c % (input.len() + 1)
                }
            })
            .collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for p in points {
            chunks.push(&input[from..p]);
            from = p;
        }
        chunks.push(&input[from..]);
        chunks
    }

    /// Pieces that exercise every path of the parser, glued at random.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"> ".to_vec()),
            Just(b">".to_vec()),
            Just(b"OK".to_vec()),
            Just(b"\0".to_vec()),
            Just(b"+CDS: 25".to_vec()),
            Just(b"+CMT: ,24".to_vec()),
            Just(b"+CMTI: \"SM\",3".to_vec()),
            Just(b"+CSQ: 20,99".to_vec()),
            Just(b"AT+CSQ".to_vec()),
            Just(PDU_CDS.as_bytes().to_vec()),
            Just(b"+CME ERROR: 10".to_vec()),
            Just(vec![b'Z'; MAX_LINE / 2]),
            proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    fn contexts() -> [Pending<'static>; 3] {
        [
            Pending::IDLE,
            pending("AT+CSQ", &["+CSQ:"], false, true),
            pending("", &["+CMGL:"], true, false),
        ]
    }

    proptest! {
        #[test]
        fn any_chunking_of_a_transcript_gives_the_same_events(
            cuts in proptest::collection::vec(any::<usize>(), 0..24)
        ) {
            for (name, input, ctx, expected) in transcripts() {
                let events = feed(&split(&input, &cuts), &ctx);
                prop_assert_eq!(events, expected, "{}", name);
            }
        }

        #[test]
        fn any_chunking_of_any_input_gives_the_same_events(
            tokens in proptest::collection::vec(token(), 0..40),
            cuts in proptest::collection::vec(any::<usize>(), 0..24),
        ) {
            let input = tokens.concat();
            for ctx in contexts() {
                let whole = feed(&[&input], &ctx);
                let chunked = feed(&split(&input, &cuts), &ctx);
                prop_assert_eq!(whole, chunked);
            }
        }
    }
}
