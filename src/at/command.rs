//! Pure descriptions of the AT commands the modem driver sends, and typed readings of their
//! answers.
//!
//! A [`Command`] knows its text, the information-line prefixes of its answer, whether bare
//! lines are part of that answer, whether it waits for the `> ` prompt, and how long its
//! final result may take; the engine turns that into the [`Pending`] context the parser
//! needs. The answers' readers ([`SignalQuality::from_response`] and friends) take the
//! [`Response`] the engine returns. `+CME ERROR`/`+CMS ERROR` codes become [`CmeError`] and
//! [`CmsError`], errors as data with their retry class.
//!
//! Nothing here does I/O, reads the clock or imports tokio.

use std::fmt;
use std::time::Duration;

use crate::at::parse::{
    ErrorCode, Param, Pending, Registration, RegistrationKind, SimState, has_prefix, params,
    redact_line,
};

/// The final result of most commands arrives within a second; five leaves room for a busy
/// modem.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands that touch the SIM or the network (`AT+CPIN`, `AT+COPS?`, `AT+CPMS`).
pub const SLOW_TIMEOUT: Duration = Duration::from_secs(15);
/// `AT+CMGL` over a full SIM storage.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// One AT command line and what its answer looks like.
///
/// ```
/// use smsbridge::at::command::Command;
///
/// let csq = Command::signal_quality();
/// assert_eq!(csq.text(), "AT+CSQ");
/// assert_eq!(csq.pending().info_prefixes, &["+CSQ:"]);
///
/// let pin = Command::enter_pin("1234").unwrap();
/// assert_eq!(pin.text(), "AT+CPIN=\"1234\"");
/// assert_eq!(pin.display(), "AT+CPIN=\"****\"");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    text: String,
    /// The text with secrets masked, for logs and errors.
    display: String,
    info_prefixes: Vec<&'static str>,
    bare_lines: bool,
    expects_prompt: bool,
    timeout: Duration,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("text", &self.display)
            .field("info_prefixes", &self.info_prefixes)
            .field("bare_lines", &self.bare_lines)
            .field("expects_prompt", &self.expects_prompt)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A command that cannot be built from what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// TS 27.007 §8.3: a PIN is 4 to 8 digits. Anything else could also smuggle a second
    /// command into the line.
    #[error("a SIM PIN is 4 to 8 digits")]
    InvalidPin,
    #[error("a command line starts with AT and holds printable ASCII only: {0}")]
    InvalidText(String),
    #[error("a PDU length is 1 to 255 octets, got {0}")]
    InvalidLength(usize),
}

/// An answer that does not have the shape its command promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("no `{0}` line in the answer")]
    Missing(&'static str),
    #[error("malformed `{prefix}` answer: {line}")]
    Malformed { prefix: &'static str, line: String },
}

impl AnswerError {
    fn malformed(prefix: &'static str, line: &str) -> AnswerError {
        AnswerError::Malformed {
            prefix,
            line: redact_line(line),
        }
    }
}

impl Command {
    /// Any command line, for what the constructors below do not cover. It must start with
    /// `AT` and hold printable ASCII only (no CR, Ctrl-Z or ESC, which would end or abort it
    /// early). Its answer is taken to be the final result alone until prefixes are added.
    pub fn new(text: &str) -> Result<Command, CommandError> {
        let printable = text.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !has_prefix(text, "AT") || !printable || text.len() > 512 {
            return Err(CommandError::InvalidText(redact_line(text)));
        }
        Ok(Command::fixed(text, &[], false, DEFAULT_TIMEOUT))
    }

    /// Adds a prefix of the command's information lines (e.g. `+CSQ:`).
    pub fn with_prefix(mut self, prefix: &'static str) -> Command {
        self.info_prefixes.push(prefix);
        self
    }

    /// Makes lines without a `+`/`^` prefix part of the answer.
    pub fn with_bare_lines(mut self) -> Command {
        self.bare_lines = true;
        self
    }

    /// Sets how long the final result may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Command {
        self.timeout = timeout;
        self
    }

    /// The line as written to the modem, without its CR. May hold a PIN: log
    /// [`Command::display`] instead.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The line with secrets masked, for logs and errors.
    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn info_prefixes(&self) -> &[&'static str] {
        &self.info_prefixes
    }

    pub fn bare_lines(&self) -> bool {
        self.bare_lines
    }

    /// Whether the command waits for the `> ` prompt (`AT+CMGS`).
    pub fn expects_prompt(&self) -> bool {
        self.expects_prompt
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The parser context while this command waits for its answer.
    pub fn pending(&self) -> Pending<'_> {
        Pending {
            echo: &self.text,
            info_prefixes: &self.info_prefixes,
            bare_lines: self.bare_lines,
            expects_prompt: self.expects_prompt,
        }
    }

    fn fixed(
        text: &str,
        info_prefixes: &[&'static str],
        bare_lines: bool,
        timeout: Duration,
    ) -> Command {
        Command {
            text: text.to_owned(),
            display: text.to_owned(),
            info_prefixes: info_prefixes.to_vec(),
            bare_lines,
            expects_prompt: false,
            timeout,
        }
    }

    /// `AT`: is anybody there?
    pub fn at() -> Command {
        Command::fixed("AT", &[], false, DEFAULT_TIMEOUT)
    }

    /// `ATE0`: echo off (every 3GPP modem powers up with echo on).
    pub fn echo_off() -> Command {
        Command::fixed("ATE0", &[], false, DEFAULT_TIMEOUT)
    }

    /// `ATZ`: back to the stored profile (V.250 §6.1.1).
    pub fn reset() -> Command {
        Command::fixed("ATZ", &[], false, Duration::from_secs(10))
    }

    /// `AT+CFUN=1,1`: full functionality after a reset of the modem (TS 27.007 §8.2). The
    /// modem answers `OK`, then drops off the bus for a few seconds on USB models.
    pub fn restart() -> Command {
        Command::fixed("AT+CFUN=1,1", &[], false, SLOW_TIMEOUT)
    }

    /// `AT+CMEE=1`: `+CME ERROR: <n>` with numeric codes instead of a bare `ERROR`.
    pub fn numeric_errors() -> Command {
        Command::fixed("AT+CMEE=1", &[], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CPIN?`: the SIM's state; read it with [`SimState::from_response`].
    pub fn sim_state() -> Command {
        Command::fixed("AT+CPIN?", &["+CPIN:"], false, SLOW_TIMEOUT)
    }

    /// `AT+CPIN="<pin>"`. Its display form masks the PIN. Never retry it after
    /// [`CmeError::IncorrectPassword`]: three wrong PINs block the SIM.
    pub fn enter_pin(pin: &str) -> Result<Command, CommandError> {
        if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CommandError::InvalidPin);
        }
        let mut command = Command::fixed(&format!("AT+CPIN=\"{pin}\""), &[], false, SLOW_TIMEOUT);
        command.display = "AT+CPIN=\"****\"".to_owned();
        Ok(command)
    }

    /// `AT+CMGF=0`: PDU mode (TS 27.005 §3.2.3).
    pub fn pdu_mode() -> Command {
        Command::fixed("AT+CMGF=0", &[], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CSMS=<service>` (TS 27.005 §3.2.1): service 1 makes `+CMT`/`+CDS` wait for an
    /// `AT+CNMA` acknowledgement.
    pub fn message_service(service: u8) -> Command {
        Command::fixed(
            &format!("AT+CSMS={service}"),
            &["+CSMS:"],
            false,
            DEFAULT_TIMEOUT,
        )
    }

    /// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>` (TS 27.005 §3.4.1).
    pub fn new_message_indications(indications: NewMessageIndications) -> Command {
        let NewMessageIndications {
            mode,
            mt,
            bm,
            ds,
            bfr,
        } = indications;
        Command::fixed(
            &format!("AT+CNMI={mode},{mt},{bm},{ds},{bfr}"),
            &[],
            false,
            DEFAULT_TIMEOUT,
        )
    }

    /// `AT+CPMS="<read>","<write>","<receive>"` (TS 27.005 §3.2.2); read the counts with
    /// [`StorageUsage::from_response`].
    pub fn preferred_storage(read: Storage, write: Storage, receive: Storage) -> Command {
        Command::fixed(
            &format!(
                "AT+CPMS=\"{}\",\"{}\",\"{}\"",
                read.as_str(),
                write.as_str(),
                receive.as_str()
            ),
            &["+CPMS:"],
            false,
            SLOW_TIMEOUT,
        )
    }

    /// `AT+CREG?`, `AT+CGREG?` or `AT+CEREG?`; read with [`Registration::from_response`].
    pub fn registration(kind: RegistrationKind) -> Command {
        let (text, prefix) = match kind {
            RegistrationKind::CircuitSwitched => ("AT+CREG?", "+CREG:"),
            RegistrationKind::Gprs => ("AT+CGREG?", "+CGREG:"),
            RegistrationKind::Eps => ("AT+CEREG?", "+CEREG:"),
        };
        Command::fixed(text, &[prefix], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CREG=<n>` (or `+CGREG`, `+CEREG`): 1 reports registration changes as URCs, 2
    /// adds the location.
    pub fn registration_reports(kind: RegistrationKind, n: u8) -> Command {
        let name = match kind {
            RegistrationKind::CircuitSwitched => "CREG",
            RegistrationKind::Gprs => "CGREG",
            RegistrationKind::Eps => "CEREG",
        };
        Command::fixed(&format!("AT+{name}={n}"), &[], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CSQ`; read with [`SignalQuality::from_response`].
    pub fn signal_quality() -> Command {
        Command::fixed("AT+CSQ", &["+CSQ:"], false, DEFAULT_TIMEOUT)
    }

    /// `AT+COPS=3,0`: report the operator by its long alphanumeric name; send it before
    /// [`Command::operator`].
    pub fn operator_name_format() -> Command {
        Command::fixed("AT+COPS=3,0", &[], false, DEFAULT_TIMEOUT)
    }

    /// `AT+COPS?`; read with [`Operator::from_response`].
    pub fn operator() -> Command {
        Command::fixed("AT+COPS?", &["+COPS:"], false, SLOW_TIMEOUT)
    }

    /// `AT+CGMI`: the manufacturer; read with [`text_answer`]. Most modems answer with a
    /// bare line, some (SIMCom SIM7600) with `+CGMI:`.
    pub fn manufacturer() -> Command {
        Command::fixed("AT+CGMI", &["+CGMI:"], true, DEFAULT_TIMEOUT)
    }

    /// `AT+CGMM`: the model; read with [`text_answer`].
    pub fn model() -> Command {
        Command::fixed("AT+CGMM", &["+CGMM:"], true, DEFAULT_TIMEOUT)
    }

    /// `AT+CGMR`: the firmware revision; read with [`text_answer`].
    pub fn firmware() -> Command {
        Command::fixed("AT+CGMR", &["+CGMR:"], true, DEFAULT_TIMEOUT)
    }

    /// `AT+CGSN`: the IMEI; read with [`imei`].
    pub fn imei() -> Command {
        Command::fixed("AT+CGSN", &["+CGSN:"], true, DEFAULT_TIMEOUT)
    }

    /// `AT+CIMI`: the SIM's IMSI; read with [`imsi`].
    pub fn imsi() -> Command {
        Command::fixed("AT+CIMI", &["+CIMI:"], true, DEFAULT_TIMEOUT)
    }

    /// The ways modems tell the SIM's ICCID, none of them in TS 27.007; try them in order
    /// until one answers, and read it with [`iccid`]: `AT+CCID` (SIMCom SIM800, many
    /// others), `AT+QCCID` (Quectel), `AT+CICCID` (SIMCom SIM7600, answers `+ICCID:`),
    /// `AT^ICCID?` (Huawei).
    pub fn iccid_queries() -> [Command; 4] {
        [
            Command::fixed("AT+CCID", &["+CCID:"], true, DEFAULT_TIMEOUT),
            Command::fixed("AT+QCCID", &["+QCCID:"], false, DEFAULT_TIMEOUT),
            Command::fixed("AT+CICCID", &["+ICCID:"], false, DEFAULT_TIMEOUT),
            Command::fixed("AT^ICCID?", &["^ICCID:"], false, DEFAULT_TIMEOUT),
        ]
    }

    /// `AT+CSCA?`: the SMS service centre address stored on the SIM.
    pub fn service_centre() -> Command {
        Command::fixed("AT+CSCA?", &["+CSCA:"], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CMGL=<stat>` (TS 27.005 §3.4.2, PDU mode); read with
    /// [`StoredMessage::list_from_response`].
    pub fn list_messages(filter: ListFilter) -> Command {
        Command::fixed(
            &format!("AT+CMGL={}", filter as u8),
            &["+CMGL:"],
            true,
            LIST_TIMEOUT,
        )
    }

    /// `AT+CMGR=<index>`; read with [`StoredMessage::read_from_response`].
    pub fn read_message(index: u32) -> Command {
        Command::fixed(&format!("AT+CMGR={index}"), &["+CMGR:"], true, SLOW_TIMEOUT)
    }

    /// `AT+CMGD=<index>`.
    pub fn delete_message(index: u32) -> Command {
        Command::fixed(&format!("AT+CMGD={index}"), &[], false, SLOW_TIMEOUT)
    }

    /// `AT+CMGD=1,4`: delete every message in the read storage (`<delflag>` 4).
    pub fn delete_all_messages() -> Command {
        Command::fixed("AT+CMGD=1,4", &[], false, LIST_TIMEOUT)
    }

    /// `AT+CNMA`: acknowledge a `+CMT`/`+CDS` routed to us (needed after `AT+CSMS=1`).
    pub fn acknowledge() -> Command {
        Command::fixed("AT+CNMA", &[], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CMGS=<length>`, the first half of sending a PDU: the modem answers `> ` and
    /// waits for the PDU. The engine's `send_pdu` does both halves; this is public for
    /// tests and simulators. `tpdu_len` counts the octets after the SMSC field.
    pub fn send_message(tpdu_len: usize) -> Result<Command, CommandError> {
        if !(1..=255).contains(&tpdu_len) {
            return Err(CommandError::InvalidLength(tpdu_len));
        }
        let mut command = Command::fixed(
            &format!("AT+CMGS={tpdu_len}"),
            &["+CMGS:"],
            false,
            DEFAULT_TIMEOUT,
        );
        command.expects_prompt = true;
        Ok(command)
    }
}

/// The parameters of `AT+CNMI` (TS 27.005 §3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewMessageIndications {
    /// 2: buffer indications while the link is busy, flush them after.
    pub mode: u8,
    /// 1: store incoming messages and say `+CMTI: <mem>,<index>`; 2: route them as `+CMT`.
    pub mt: u8,
    /// Cell broadcast: 0, none.
    pub bm: u8,
    /// 1: route status reports as `+CDS`; 2: store them and say `+CDSI`.
    pub ds: u8,
    /// 0: flush buffered indications when `<mode>` 1..3 is entered.
    pub bfr: u8,
}

impl NewMessageIndications {
    /// `2,1,0,1,0`: incoming messages stored and announced with `+CMTI`, status reports
    /// routed with `+CDS` (nothing piles up in the storage for them).
    pub const STORE_AND_ROUTE_REPORTS: NewMessageIndications = NewMessageIndications {
        mode: 2,
        mt: 1,
        bm: 0,
        ds: 1,
        bfr: 0,
    };
    /// `2,1,0,2,0`: status reports stored too and announced with `+CDSI`, for modems that
    /// lose routed reports unless they are acknowledged.
    pub const STORE_ALL: NewMessageIndications = NewMessageIndications {
        mode: 2,
        mt: 1,
        bm: 0,
        ds: 2,
        bfr: 0,
    };
}

impl Default for NewMessageIndications {
    fn default() -> Self {
        NewMessageIndications::STORE_AND_ROUTE_REPORTS
    }
}

/// A message storage of `AT+CPMS` (TS 27.005 §3.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// The SIM.
    Sim,
    /// The modem's own memory.
    Modem,
    /// Both, as one (`MT`).
    Both,
    /// Status report storage.
    StatusReports,
}

impl Storage {
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Sim => "SM",
            Storage::Modem => "ME",
            Storage::Both => "MT",
            Storage::StatusReports => "SR",
        }
    }
}

/// `<stat>` of `AT+CMGL` in PDU mode (TS 27.005 §3.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ListFilter {
    ReceivedUnread = 0,
    ReceivedRead = 1,
    StoredUnsent = 2,
    StoredSent = 3,
    All = 4,
}

/// The information lines of a command that ended with `OK`, trimmed, in order. URCs that
/// arrived meanwhile are not here: the engine sends them to its URC channel.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Response {
    lines: Vec<String>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.lines.iter().map(|l| redact_line(l)))
            .finish()
    }
}

impl Response {
    pub fn new(lines: Vec<String>) -> Response {
        Response { lines }
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text after `prefix` (trimmed) on the first line that has it.
    pub fn value<'a>(&'a self, prefix: &str) -> Option<&'a str> {
        self.lines
            .iter()
            .find_map(|line| after_prefix(line, prefix))
    }

    /// The text after `prefix` (trimmed) on every line that has it.
    pub fn values<'a>(&'a self, prefix: &str) -> impl Iterator<Item = &'a str> {
        self.lines
            .iter()
            .filter_map(move |line| after_prefix(line, prefix))
    }
}

fn after_prefix<'l>(line: &'l str, prefix: &str) -> Option<&'l str> {
    has_prefix(line, prefix).then(|| line.get(prefix.len()..).unwrap_or("").trim())
}

/// `+CSQ: <rssi>,<ber>` (TS 27.007 §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalQuality {
    pub rssi: u8,
    pub ber: u8,
}

impl SignalQuality {
    pub fn from_response(response: &Response) -> Result<SignalQuality, AnswerError> {
        const PREFIX: &str = "+CSQ:";
        let value = response.value(PREFIX).ok_or(AnswerError::Missing(PREFIX))?;
        match params(value).as_deref() {
            Some([rssi, ber]) => Some(SignalQuality {
                rssi: rssi
                    .number()
                    .ok_or_else(|| AnswerError::malformed(PREFIX, value))?,
                ber: ber
                    .number()
                    .ok_or_else(|| AnswerError::malformed(PREFIX, value))?,
            }),
            _ => None,
        }
        .ok_or_else(|| AnswerError::malformed(PREFIX, value))
    }

    /// The received signal strength in dBm; `None` when the modem does not know (99).
    pub fn dbm(self) -> Option<i32> {
        rssi_dbm(self.rssi)
    }
}

/// TS 27.007 §8.5: `<rssi>` 0 is -113 dBm or less, 1 is -111, 2..30 are -109..-53 in steps
/// of 2, 31 is -51 or better, 99 (and anything else) is not known. Huawei's `^RSSI` uses
/// the same scale.
pub fn rssi_dbm(rssi: u8) -> Option<i32> {
    (rssi <= 31).then(|| -113 + 2 * i32::from(rssi))
}

impl Registration {
    /// Reads the answer of `AT+CREG?` (or `+CGREG?`, `+CEREG?`):
    /// `+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]`. A `+CREG` URC that slipped into the
    /// answer (`<stat>` first, location quoted) is told apart by its shape and skipped.
    pub fn from_response(
        response: &Response,
        kind: RegistrationKind,
    ) -> Result<Registration, AnswerError> {
        let prefix = match kind {
            RegistrationKind::CircuitSwitched => "+CREG:",
            RegistrationKind::Gprs => "+CGREG:",
            RegistrationKind::Eps => "+CEREG:",
        };
        let mut seen = None;
        for value in response.values(prefix) {
            seen = Some(value);
            if let Some(p) = params(value)
                && let [Param::Bare(_), Param::Bare(_), ..] = p.as_slice()
                && let Some(registration) = Registration::from_params(&p[1..])
            {
                return Ok(registration);
            }
        }
        Err(match seen {
            Some(value) => AnswerError::malformed(prefix, value),
            None => AnswerError::Missing(prefix),
        })
    }
}

impl SimState {
    /// Reads the answer of `AT+CPIN?`: `+CPIN: READY`.
    pub fn from_response(response: &Response) -> Result<SimState, AnswerError> {
        const PREFIX: &str = "+CPIN:";
        let value = response.value(PREFIX).ok_or(AnswerError::Missing(PREFIX))?;
        Ok(SimState::parse(value))
    }
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]` (TS 27.007 §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operator {
    /// 0 automatic, 1 manual, 2 deregistered, ...
    pub mode: u8,
    /// 0 long alphanumeric, 1 short alphanumeric, 2 numeric (MCC and MNC).
    pub format: Option<u8>,
    /// `None` when not registered.
    pub name: Option<String>,
    pub access_technology: Option<u8>,
}

impl Operator {
    pub fn from_response(response: &Response) -> Result<Operator, AnswerError> {
        const PREFIX: &str = "+COPS:";
        let value = response.value(PREFIX).ok_or(AnswerError::Missing(PREFIX))?;
        let malformed = || AnswerError::malformed(PREFIX, value);
        let p = params(value).ok_or_else(malformed)?;
        let mode = p.first().and_then(|m| m.number()).ok_or_else(malformed)?;
        let name = p
            .get(2)
            .filter(|n| !n.is_empty())
            .map(|n| n.text().trim().to_owned());
        Ok(Operator {
            mode,
            format: p.get(1).and_then(|f| f.number()),
            name,
            access_technology: p.get(3).and_then(|a| a.number()),
        })
    }
}

/// Reads the message reference of `+CMGS: <mr>[,<scts>]` (TS 27.005 §3.5.1).
pub fn message_reference(response: &Response) -> Result<u8, AnswerError> {
    const PREFIX: &str = "+CMGS:";
    let value = response.value(PREFIX).ok_or(AnswerError::Missing(PREFIX))?;
    params(value)
        .and_then(|p| p.first().and_then(|mr| mr.number()))
        .ok_or_else(|| AnswerError::malformed(PREFIX, value))
}

/// Counts of one storage in the answer of `AT+CPMS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryUsage {
    pub used: u32,
    pub total: u32,
}

/// The answer of `AT+CPMS=...`: `+CPMS: <used1>,<total1>,<used2>,<total2>,<used3>,<total3>`
/// (the query form, with the storage names in front of each pair, is read too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageUsage {
    /// Read, write and receive storages, in that order.
    pub memories: Vec<MemoryUsage>,
}

impl StorageUsage {
    pub fn from_response(response: &Response) -> Result<StorageUsage, AnswerError> {
        const PREFIX: &str = "+CPMS:";
        let value = response.value(PREFIX).ok_or(AnswerError::Missing(PREFIX))?;
        let malformed = || AnswerError::malformed(PREFIX, value);
        let numbers: Vec<u32> = params(value)
            .ok_or_else(malformed)?
            .into_iter()
            .filter(|p| matches!(p, Param::Bare(_)))
            .map(|p| p.number().ok_or_else(malformed))
            .collect::<Result<_, _>>()?;
        if numbers.is_empty() || numbers.len() % 2 != 0 {
            return Err(malformed());
        }
        Ok(StorageUsage {
            memories: numbers
                .chunks_exact(2)
                .map(|pair| MemoryUsage {
                    used: pair[0],
                    total: pair[1],
                })
                .collect(),
        })
    }
}

/// `<stat>` of a stored message in PDU mode (TS 27.005 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    ReceivedUnread,
    ReceivedRead,
    StoredUnsent,
    StoredSent,
    Other(u8),
}

impl MessageStatus {
    pub fn from_code(code: u8) -> MessageStatus {
        match code {
            0 => MessageStatus::ReceivedUnread,
            1 => MessageStatus::ReceivedRead,
            2 => MessageStatus::StoredUnsent,
            3 => MessageStatus::StoredSent,
            other => MessageStatus::Other(other),
        }
    }
}

/// A message in the modem's storage, from `AT+CMGL` or `AT+CMGR`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub index: u32,
    pub status: MessageStatus,
    /// The TPDU length announced by the modem (octets after the SMSC field).
    pub length: usize,
    /// The PDU as hexadecimal, SMSC field first; `None` when the modem sent no PDU line
    /// (the entry can still be deleted by its index).
    pub pdu: Option<String>,
}

impl fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredMessage")
            .field("index", &self.index)
            .field("status", &self.status)
            .field("length", &self.length)
            .field("pdu_hex_chars", &self.pdu.as_ref().map(String::len))
            .finish()
    }
}

impl StoredMessage {
    /// Reads the answer of `AT+CMGL`: `+CMGL: <index>,<stat>,[<alpha>],<length>` lines,
    /// each followed by its PDU line. Headers that do not parse are skipped (without an
    /// index nothing can be done with them); the others are kept even without a PDU, so the
    /// driver can still delete them.
    pub fn list_from_response(response: &Response) -> Vec<StoredMessage> {
        let mut messages = Vec::new();
        let mut lines = response.lines().iter().peekable();
        while let Some(line) = lines.next() {
            if !has_prefix(line, "+CMGL:") {
                continue;
            }
            let header = line.get("+CMGL:".len()..).unwrap_or("");
            let Some((index, status, length)) = params(header).and_then(|p| match p.as_slice() {
                [index, stat, _, length] | [index, stat, length] => {
                    Some((index.number()?, stat.number()?, length.number()?))
                }
                _ => None,
            }) else {
                continue;
            };
            let pdu = lines.next_if(|next| is_pdu_line(next)).cloned();
            messages.push(StoredMessage {
                index,
                status: MessageStatus::from_code(status),
                length,
                pdu,
            });
        }
        messages
    }

    /// Reads the answer of `AT+CMGR=<index>`: `+CMGR: <stat>,[<alpha>],<length>` and the
    /// PDU line. An empty storage slot gives no `+CMGR` line at all (`Missing`).
    pub fn read_from_response(
        response: &Response,
        index: u32,
    ) -> Result<StoredMessage, AnswerError> {
        const PREFIX: &str = "+CMGR:";
        let position = response
            .lines()
            .iter()
            .position(|l| has_prefix(l, PREFIX))
            .ok_or(AnswerError::Missing(PREFIX))?;
        let line = &response.lines()[position];
        let header = line.get(PREFIX.len()..).unwrap_or("");
        let (status, length) = params(header)
            .and_then(|p| match p.as_slice() {
                [stat, _, length] | [stat, length] => Some((stat.number()?, length.number()?)),
                _ => None,
            })
            .ok_or_else(|| AnswerError::malformed(PREFIX, line))?;
        let pdu = response
            .lines()
            .get(position + 1)
            .filter(|l| is_pdu_line(l))
            .cloned();
        Ok(StoredMessage {
            index,
            status: MessageStatus::from_code(status),
            length,
            pdu,
        })
    }
}

fn is_pdu_line(line: &str) -> bool {
    !line.is_empty() && line.len() % 2 == 0 && line.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The value of a one-line identity answer (`AT+CGMI`, `AT+CGMM`, `AT+CGMR`, ...): the first
/// information line, without a `+NAME:`/`^NAME:` prefix, without Quectel's `Revision:`
/// label, without quotes.
pub fn text_answer(response: &Response) -> Result<String, AnswerError> {
    const WHAT: &str = "identity";
    let line = response
        .lines()
        .iter()
        .find(|l| !l.trim().is_empty())
        .ok_or(AnswerError::Missing(WHAT))?;
    let mut value = line.as_str();
    if value.starts_with(['+', '^'])
        && let Some((_, rest)) = value.split_once(':')
    {
        value = rest;
    }
    // Quectel EC25 answers AT+CGMR with `Revision: EC25EFAR06A03M4G`.
    if has_prefix(value.trim(), "Revision:") {
        value = value.trim().get("Revision:".len()..).unwrap_or("");
    }
    let value = value.trim().trim_matches('"').trim();
    if value.is_empty() {
        return Err(AnswerError::malformed(WHAT, line));
    }
    Ok(value.to_owned())
}

/// The IMEI from the answer of `AT+CGSN`: 15 digits (16 for an IMEISV, 14 without the
/// check digit).
pub fn imei(response: &Response) -> Result<String, AnswerError> {
    digits_answer(response, "IMEI", 14..=16)
}

/// The IMSI from the answer of `AT+CIMI`: up to 15 digits (TS 23.003 §2.2).
pub fn imsi(response: &Response) -> Result<String, AnswerError> {
    digits_answer(response, "IMSI", 6..=15)
}

/// The ICCID from the answer of one of [`Command::iccid_queries`]: 18 to 20 digits (ITU-T
/// E.118), the last one sometimes `F` padding. Huawei's `^ICCID` (and raw SIM reads) give
/// the digits nibble-swapped as stored on the SIM; every ICCID starts with the telecom
/// industry identifier 89, so one starting with 98 is swapped back.
pub fn iccid(response: &Response) -> Result<String, AnswerError> {
    const WHAT: &str = "ICCID";
    let value = text_answer(response)?;
    let malformed = || AnswerError::malformed(WHAT, &value);
    if !(18..=20).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    let digits: String = if value.starts_with("98") {
        value
            .as_bytes()
            .chunks(2)
            .flat_map(|pair| pair.iter().rev())
            .map(|&b| char::from(b))
            .collect()
    } else {
        value.clone()
    };
    let digits = digits.trim_end_matches(['F', 'f']);
    if digits.len() < 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    Ok(digits.to_owned())
}

fn digits_answer(
    response: &Response,
    what: &'static str,
    lengths: std::ops::RangeInclusive<usize>,
) -> Result<String, AnswerError> {
    let value = text_answer(response)?;
    if lengths.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value)
    } else {
        Err(AnswerError::malformed(what, &value))
    }
}

/// Whether an error is worth trying again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retry {
    /// The condition may pass (congestion, no service, SIM busy): try again later, possibly
    /// on another modem.
    Temporary,
    /// Trying the same thing again will fail the same way (unknown subscriber, invalid PDU).
    Permanent,
}

/// Defines an error enum from one table of `code => Variant, retry class, whether the
/// modem itself (not the message) is at fault, text`, so the number, the class and the
/// description of a code cannot drift apart.
macro_rules! error_table {
    (
        $(#[$meta:meta])*
        pub enum $name:ident;
        $( $code:literal => $variant:ident, $class:ident, $modem:literal, $text:literal; )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!(stringify!($code), ": ", $text, ".")]
                $variant,
            )*
            /// A code not listed: treated as temporary, since a wrong "temporary" costs a
            /// retry while a wrong "permanent" loses a message.
            Unknown(u16),
            /// A verbose (`AT+CMEE=2`) text not listed, as sent; treated as temporary.
            Other(String),
        }

        impl $name {
            pub fn from_code(code: u16) -> $name {
                match code {
                    $( $code => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }

            /// Reads a verbose (`AT+CMEE=2`) text by its description, ignoring case; a
            /// number in text form is read as a code.
            pub fn from_text(text: &str) -> $name {
                let text = text.trim();
                if let Ok(code) = text.parse::<u16>() {
                    return $name::from_code(code);
                }
                $(
                    if text.eq_ignore_ascii_case($text) {
                        return $name::$variant;
                    }
                )*
                $name::Other(text.to_owned())
            }

            /// The numeric code; `None` for an unlisted verbose text.
            pub fn code(&self) -> Option<u16> {
                match self {
                    $( $name::$variant => Some($code), )*
                    $name::Unknown(code) => Some(*code),
                    $name::Other(_) => None,
                }
            }

            /// What the code means, in the words of the specification.
            pub fn describe(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unknown(_) => "unlisted error code",
                    $name::Other(text) => text,
                }
            }

            pub fn retry(&self) -> Retry {
                match self {
                    $( $name::$variant => Retry::$class, )*
                    $name::Unknown(_) | $name::Other(_) => Retry::Temporary,
                }
            }

            pub fn is_temporary(&self) -> bool {
                self.retry() == Retry::Temporary
            }

            pub fn is_permanent(&self) -> bool {
                self.retry() == Retry::Permanent
            }

            /// Whether the fault lies with this modem or its SIM rather than with the
            /// message (no SIM, PIN needed, no service, SMSC unknown): the driver should
            /// mark the modem as failing, and the message may go through another modem.
            pub fn concerns_modem(&self) -> bool {
                match self {
                    $( $name::$variant => $modem, )*
                    $name::Unknown(_) | $name::Other(_) => false,
                }
            }
        }

        impl From<&ErrorCode> for $name {
            fn from(code: &ErrorCode) -> $name {
                match code {
                    ErrorCode::Numeric(n) => $name::from_code(*n),
                    ErrorCode::Text(text) => $name::from_text(text),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.code() {
                    Some(code) => write!(f, "{code} ({})", self.describe()),
                    None => f.write_str(self.describe()),
                }
            }
        }
    };
}

error_table! {
    /// `+CMS ERROR: <err>` (TS 27.005 §3.2.5): 0..127 are RP cause values of TS 24.011
    /// §E.2 (network causes of a failed submit), 128..255 TP-FCS values of TS 23.040
    /// §9.2.3.22 (the service centre refused the TPDU), 300..500 errors of the modem,
    /// 512 and up manufacturer specific. TS 24.011 asks to treat unlisted cause values as
    /// 41 "temporary failure", and so do we.
    pub enum CmsError;
    1 => UnassignedNumber, Permanent, false, "unassigned (unallocated) number";
    8 => OperatorDeterminedBarring, Permanent, false, "operator determined barring";
    10 => CallBarred, Permanent, false, "call barred";
    21 => ShortMessageTransferRejected, Permanent, false, "short message transfer rejected";
    22 => MemoryCapacityExceeded, Temporary, false, "memory capacity exceeded";
    27 => DestinationOutOfService, Temporary, false, "destination out of service";
    28 => UnidentifiedSubscriber, Permanent, false, "unidentified subscriber";
    29 => FacilityRejected, Permanent, false, "facility rejected";
    30 => UnknownSubscriber, Permanent, false, "unknown subscriber";
    38 => NetworkOutOfOrder, Temporary, false, "network out of order";
    41 => TemporaryFailure, Temporary, false, "temporary failure";
    42 => Congestion, Temporary, false, "congestion";
    47 => ResourcesUnavailable, Temporary, false, "resources unavailable, unspecified";
    50 => FacilityNotSubscribed, Permanent, true, "requested facility not subscribed";
    69 => FacilityNotImplemented, Permanent, false, "requested facility not implemented";
    81 => InvalidTransferReference, Temporary, false, "invalid short message transfer reference value";
    95 => SemanticallyIncorrectMessage, Permanent, false, "semantically incorrect message";
    96 => InvalidMandatoryInformation, Permanent, false, "invalid mandatory information";
    97 => MessageTypeNonExistent, Permanent, false, "message type non-existent or not implemented";
    98 => MessageNotCompatible, Permanent, false, "message not compatible with short message protocol state";
    99 => InformationElementNonExistent, Permanent, false, "information element non-existent or not implemented";
    111 => ProtocolError, Temporary, false, "protocol error, unspecified";
    127 => Interworking, Temporary, false, "interworking, unspecified";
    128 => TelematicInterworkingNotSupported, Permanent, false, "telematic interworking not supported";
    129 => ShortMessageType0NotSupported, Permanent, false, "short message type 0 not supported";
    130 => CannotReplaceShortMessage, Permanent, false, "cannot replace short message";
    143 => UnspecifiedPidError, Permanent, false, "unspecified TP-PID error";
    144 => DataCodingSchemeNotSupported, Permanent, false, "data coding scheme (alphabet) not supported";
    145 => MessageClassNotSupported, Permanent, false, "message class not supported";
    159 => UnspecifiedDcsError, Permanent, false, "unspecified TP-DCS error";
    160 => CommandCannotBeActioned, Permanent, false, "command cannot be actioned";
    161 => CommandUnsupported, Permanent, false, "command unsupported";
    175 => UnspecifiedCommandError, Permanent, false, "unspecified TP-Command error";
    176 => TpduNotSupported, Permanent, false, "TPDU not supported";
    192 => ServiceCentreBusy, Temporary, false, "SC busy";
    193 => NoServiceCentreSubscription, Permanent, true, "no SC subscription";
    194 => ServiceCentreFailure, Temporary, false, "SC system failure";
    195 => InvalidSmeAddress, Permanent, false, "invalid SME address";
    196 => DestinationSmeBarred, Permanent, false, "destination SME barred";
    197 => DuplicateRejected, Permanent, false, "SM rejected-duplicate SM";
    198 => ValidityPeriodFormatNotSupported, Permanent, false, "TP-VPF not supported";
    199 => ValidityPeriodNotSupported, Permanent, false, "TP-VP not supported";
    208 => SimStorageFull, Temporary, true, "(U)SIM SMS storage full";
    209 => NoSimStorage, Temporary, true, "no SMS storage capability in (U)SIM";
    210 => ErrorInMs, Temporary, true, "error in MS";
    211 => MsMemoryCapacityExceeded, Temporary, true, "memory capacity exceeded in MS";
    212 => SimToolkitBusy, Temporary, true, "(U)SIM application toolkit busy";
    213 => SimDataDownloadError, Temporary, true, "(U)SIM data download error";
    255 => UnspecifiedFailureCause, Temporary, false, "unspecified error cause";
    300 => MeFailure, Temporary, true, "ME failure";
    301 => SmsServiceReserved, Temporary, true, "SMS service of ME reserved";
    302 => OperationNotAllowed, Permanent, true, "operation not allowed";
    303 => OperationNotSupported, Permanent, true, "operation not supported";
    304 => InvalidPduModeParameter, Permanent, false, "invalid PDU mode parameter";
    305 => InvalidTextModeParameter, Permanent, false, "invalid text mode parameter";
    310 => SimNotInserted, Temporary, true, "(U)SIM not inserted";
    311 => SimPinRequired, Temporary, true, "(U)SIM PIN required";
    312 => PhSimPinRequired, Temporary, true, "PH-(U)SIM PIN required";
    313 => SimFailure, Temporary, true, "(U)SIM failure";
    314 => SimBusy, Temporary, true, "(U)SIM busy";
    315 => SimWrong, Temporary, true, "(U)SIM wrong";
    316 => SimPukRequired, Temporary, true, "(U)SIM PUK required";
    317 => SimPin2Required, Temporary, true, "(U)SIM PIN2 required";
    318 => SimPuk2Required, Temporary, true, "(U)SIM PUK2 required";
    320 => MemoryFailure, Temporary, true, "memory failure";
    321 => InvalidMemoryIndex, Permanent, false, "invalid memory index";
    322 => MemoryFull, Temporary, true, "memory full";
    330 => SmscAddressUnknown, Permanent, true, "SMSC address unknown";
    331 => NoNetworkService, Temporary, true, "no network service";
    332 => NetworkTimeout, Temporary, false, "network timeout";
    340 => NoCnmaExpected, Permanent, false, "no +CNMA acknowledgement expected";
    500 => UnknownError, Temporary, false, "unknown error";
}

error_table! {
    /// `+CME ERROR: <err>` (TS 27.007 §9.2.1), with the verbose texts of that clause.
    pub enum CmeError;
    0 => PhoneFailure, Temporary, true, "phone failure";
    1 => NoConnectionToPhone, Temporary, true, "no connection to phone";
    2 => PhoneAdaptorLinkReserved, Temporary, true, "phone-adaptor link reserved";
    3 => OperationNotAllowed, Permanent, false, "operation not allowed";
    4 => OperationNotSupported, Permanent, false, "operation not supported";
    5 => PhSimPinRequired, Temporary, true, "PH-SIM PIN required";
    6 => PhFsimPinRequired, Temporary, true, "PH-FSIM PIN required";
    7 => PhFsimPukRequired, Temporary, true, "PH-FSIM PUK required";
    10 => SimNotInserted, Temporary, true, "SIM not inserted";
    11 => SimPinRequired, Temporary, true, "SIM PIN required";
    12 => SimPukRequired, Temporary, true, "SIM PUK required";
    13 => SimFailure, Temporary, true, "SIM failure";
    14 => SimBusy, Temporary, true, "SIM busy";
    15 => SimWrong, Temporary, true, "SIM wrong";
    16 => IncorrectPassword, Permanent, true, "incorrect password";
    17 => SimPin2Required, Temporary, true, "SIM PIN2 required";
    18 => SimPuk2Required, Temporary, true, "SIM PUK2 required";
    20 => MemoryFull, Temporary, true, "memory full";
    21 => InvalidIndex, Permanent, false, "invalid index";
    22 => NotFound, Permanent, false, "not found";
    23 => MemoryFailure, Temporary, true, "memory failure";
    24 => TextStringTooLong, Permanent, false, "text string too long";
    25 => InvalidCharactersInText, Permanent, false, "invalid characters in text string";
    26 => DialStringTooLong, Permanent, false, "dial string too long";
    27 => InvalidCharactersInDialString, Permanent, false, "invalid characters in dial string";
    30 => NoNetworkService, Temporary, true, "no network service";
    31 => NetworkTimeout, Temporary, false, "network timeout";
    32 => EmergencyCallsOnly, Temporary, true, "network not allowed - emergency calls only";
    40 => NetworkPersonalisationPinRequired, Temporary, true, "network personalization PIN required";
    100 => UnknownError, Temporary, false, "unknown";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::parse::RegistrationStatus;

    fn response(lines: &[&str]) -> Response {
        Response::new(lines.iter().map(|l| l.to_string()).collect())
    }

    /// The one helper for the answer readers: `read` over `lines` gives `expected`.
    fn check<T: fmt::Debug + PartialEq>(read: impl Fn(&Response) -> T, cases: &[(&[&str], T)]) {
        for (lines, expected) in cases {
            assert_eq!(&read(&response(lines)), expected, "answer {lines:?}");
        }
    }

    #[test]
    fn command_texts_and_contexts() {
        let cases: Vec<(Command, &str, &[&str], bool)> = vec![
            (Command::at(), "AT", &[], false),
            (Command::echo_off(), "ATE0", &[], false),
            (Command::reset(), "ATZ", &[], false),
            (Command::restart(), "AT+CFUN=1,1", &[], false),
            (Command::numeric_errors(), "AT+CMEE=1", &[], false),
            (Command::sim_state(), "AT+CPIN?", &["+CPIN:"], false),
            (Command::pdu_mode(), "AT+CMGF=0", &[], false),
            (
                Command::new_message_indications(NewMessageIndications::default()),
                "AT+CNMI=2,1,0,1,0",
                &[],
                false,
            ),
            (
                Command::preferred_storage(Storage::Sim, Storage::Sim, Storage::Both),
                "AT+CPMS=\"SM\",\"SM\",\"MT\"",
                &["+CPMS:"],
                false,
            ),
            (
                Command::registration(RegistrationKind::CircuitSwitched),
                "AT+CREG?",
                &["+CREG:"],
                false,
            ),
            (
                Command::registration(RegistrationKind::Eps),
                "AT+CEREG?",
                &["+CEREG:"],
                false,
            ),
            (
                Command::registration_reports(RegistrationKind::Gprs, 2),
                "AT+CGREG=2",
                &[],
                false,
            ),
            (Command::signal_quality(), "AT+CSQ", &["+CSQ:"], false),
            (Command::operator_name_format(), "AT+COPS=3,0", &[], false),
            (Command::operator(), "AT+COPS?", &["+COPS:"], false),
            (Command::manufacturer(), "AT+CGMI", &["+CGMI:"], true),
            (Command::model(), "AT+CGMM", &["+CGMM:"], true),
            (Command::firmware(), "AT+CGMR", &["+CGMR:"], true),
            (Command::imei(), "AT+CGSN", &["+CGSN:"], true),
            (Command::imsi(), "AT+CIMI", &["+CIMI:"], true),
            (
                Command::list_messages(ListFilter::All),
                "AT+CMGL=4",
                &["+CMGL:"],
                true,
            ),
            (Command::read_message(7), "AT+CMGR=7", &["+CMGR:"], true),
            (Command::delete_message(7), "AT+CMGD=7", &[], false),
            (Command::delete_all_messages(), "AT+CMGD=1,4", &[], false),
            (Command::acknowledge(), "AT+CNMA", &[], false),
            (Command::message_service(1), "AT+CSMS=1", &["+CSMS:"], false),
            (Command::service_centre(), "AT+CSCA?", &["+CSCA:"], false),
        ];
        for (command, text, prefixes, bare) in cases {
            assert_eq!(command.text(), text);
            assert_eq!(command.display(), text);
            assert_eq!(command.info_prefixes(), prefixes, "{text}");
            assert_eq!(command.bare_lines(), bare, "{text}");
            assert!(!command.expects_prompt(), "{text}");
            assert!(command.timeout() >= DEFAULT_TIMEOUT, "{text}");
        }
        let iccid: Vec<String> = Command::iccid_queries()
            .iter()
            .map(|c| c.text().to_owned())
            .collect();
        assert_eq!(iccid, ["AT+CCID", "AT+QCCID", "AT+CICCID", "AT^ICCID?"]);
        let cmgs = Command::send_message(23).unwrap();
        assert_eq!(cmgs.text(), "AT+CMGS=23");
        assert!(cmgs.expects_prompt());
        assert!(cmgs.pending().expects_prompt);
    }

    #[test]
    fn bad_input_gives_no_command() {
        for pin in ["", "123", "123456789", "12a4", "1234\"\r"] {
            assert_eq!(
                Command::enter_pin(pin),
                Err(CommandError::InvalidPin),
                "{pin:?}"
            );
        }
        for text in ["", "CSQ", "AT+CSQ\rATZ", "AT+CMGS=1\x1a", "AT\u{e9}"] {
            assert!(Command::new(text).is_err(), "{text:?}");
        }
        assert!(Command::new("at+csq").is_ok());
        for len in [0, 256] {
            assert_eq!(
                Command::send_message(len),
                Err(CommandError::InvalidLength(len))
            );
        }
    }

    #[test]
    fn the_pin_is_masked_everywhere_but_on_the_wire() {
        let command = Command::enter_pin("9876").unwrap();
        assert_eq!(command.text(), "AT+CPIN=\"9876\"");
        assert_eq!(command.display(), "AT+CPIN=\"****\"");
        assert!(!format!("{command:?}").contains("9876"));
    }

    #[test]
    fn signal_quality_in_dbm() {
        for (rssi, dbm) in [
            (0, Some(-113)),
            (1, Some(-111)),
            (2, Some(-109)),
            (15, Some(-83)),
            (30, Some(-53)),
            (31, Some(-51)),
            (32, None),
            (99, None),
        ] {
            assert_eq!(rssi_dbm(rssi), dbm, "rssi {rssi}");
        }
        check(
            SignalQuality::from_response,
            &[
                (&["+CSQ: 18,0"], Ok(SignalQuality { rssi: 18, ber: 0 })),
                (&["+CSQ: 99,99"], Ok(SignalQuality { rssi: 99, ber: 99 })),
                (&[], Err(AnswerError::Missing("+CSQ:"))),
                (
                    &["+CSQ: x"],
                    Err(AnswerError::Malformed {
                        prefix: "+CSQ:",
                        line: "x".into(),
                    }),
                ),
            ],
        );
    }

    #[test]
    fn registration_answers() {
        let home = |area, cell_id, access_technology| {
            Ok(Registration {
                status: RegistrationStatus::Home,
                area,
                cell_id,
                access_technology,
            })
        };
        check(
            |r| Registration::from_response(r, RegistrationKind::CircuitSwitched),
            &[
                (&["+CREG: 0,1"], home(None, None, None)),
                (
                    &["+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7"],
                    home(Some(0x1A2B), Some(0x01C3_D4E5), Some(7)),
                ),
                // A URC (stat first) that slipped into the answer is skipped.
                (
                    &["+CREG: 1,\"1A2B\",\"01C3D4E5\"", "+CREG: 0,5"],
                    Ok(Registration {
                        status: RegistrationStatus::Roaming,
                        area: None,
                        cell_id: None,
                        access_technology: None,
                    }),
                ),
                (&["+CGREG: 0,1"], Err(AnswerError::Missing("+CREG:"))),
                (
                    &["+CREG: 1"],
                    Err(AnswerError::Malformed {
                        prefix: "+CREG:",
                        line: "1".into(),
                    }),
                ),
            ],
        );
        assert!(RegistrationStatus::from_code(6).is_registered());
        assert!(!RegistrationStatus::from_code(2).is_registered());
        assert!(!RegistrationStatus::from_code(3).is_registered());
    }

    #[test]
    fn sim_state_operator_and_message_reference() {
        check(
            SimState::from_response,
            &[
                (&["+CPIN: READY"], Ok(SimState::Ready)),
                (&["+CPIN: SIM PIN"], Ok(SimState::SimPin)),
                (&["+CPIN: SIM PUK"], Ok(SimState::SimPuk)),
                (&["+CPIN: NOT INSERTED"], Ok(SimState::NotInserted)),
                (&[], Err(AnswerError::Missing("+CPIN:"))),
            ],
        );
        check(
            Operator::from_response,
            &[
                (
                    &["+COPS: 0,0,\"Vodafone UK\",7"],
                    Ok(Operator {
                        mode: 0,
                        format: Some(0),
                        name: Some("Vodafone UK".into()),
                        access_technology: Some(7),
                    }),
                ),
                (
                    &["+COPS: 0"],
                    Ok(Operator {
                        mode: 0,
                        format: None,
                        name: None,
                        access_technology: None,
                    }),
                ),
            ],
        );
        check(
            message_reference,
            &[
                (&["+CMGS: 12"], Ok(12)),
                (&["+CMGS: 255,\"24/01/01,12:00:00+00\""], Ok(255)),
                (
                    &["+CMGS: 256"],
                    Err(AnswerError::Malformed {
                        prefix: "+CMGS:",
                        line: "256".into(),
                    }),
                ),
                (&[], Err(AnswerError::Missing("+CMGS:"))),
            ],
        );
    }

    #[test]
    fn storage_usage() {
        let usage = |pairs: &[(u32, u32)]| {
            Ok(StorageUsage {
                memories: pairs
                    .iter()
                    .map(|&(used, total)| MemoryUsage { used, total })
                    .collect(),
            })
        };
        check(
            StorageUsage::from_response,
            &[
                (
                    &["+CPMS: 3,30,3,30,0,30"],
                    usage(&[(3, 30), (3, 30), (0, 30)]),
                ),
                (
                    &["+CPMS: \"SM\",3,30,\"SM\",3,30,\"SM\",3,30"],
                    usage(&[(3, 30), (3, 30), (3, 30)]),
                ),
                (
                    &["+CPMS: 3"],
                    Err(AnswerError::Malformed {
                        prefix: "+CPMS:",
                        line: "3".into(),
                    }),
                ),
            ],
        );
    }

    #[test]
    fn stored_messages() {
        const PDU: &str = "07914477581006500405A101000000112062000000000AC8329BFD06";
        let message = |index, status, pdu: Option<&str>| StoredMessage {
            index,
            status,
            length: 23,
            pdu: pdu.map(str::to_owned),
        };
        check(
            StoredMessage::list_from_response,
            &[
                (&[], vec![]),
                (
                    &["+CMGL: 1,1,,23", PDU, "+CMGL: 4,0,\"a,b\",23", PDU],
                    vec![
                        message(1, MessageStatus::ReceivedRead, Some(PDU)),
                        message(4, MessageStatus::ReceivedUnread, Some(PDU)),
                    ],
                ),
                // A header without its PDU line is kept; a malformed header is skipped.
                (
                    &["+CMGL: 2,0,,23", "+CMGL: x", "+CMGL: 3,1,,23", PDU],
                    vec![
                        message(2, MessageStatus::ReceivedUnread, None),
                        message(3, MessageStatus::ReceivedRead, Some(PDU)),
                    ],
                ),
            ],
        );
        check(
            |r| StoredMessage::read_from_response(r, 9),
            &[
                (
                    &["+CMGR: 0,,23", PDU],
                    Ok(message(9, MessageStatus::ReceivedUnread, Some(PDU))),
                ),
                (&[], Err(AnswerError::Missing("+CMGR:"))),
            ],
        );
    }

    #[test]
    fn identity_answers() {
        check(
            text_answer,
            &[
                (&["SIMCOM_Ltd"], Ok("SIMCOM_Ltd".to_owned())),
                (
                    &["+CGMI: SIMCOM INCORPORATED"],
                    Ok("SIMCOM INCORPORATED".to_owned()),
                ),
                (
                    &["Revision: EC25EFAR06A03M4G"],
                    Ok("EC25EFAR06A03M4G".to_owned()),
                ),
                (
                    &["+CGMR: \"LE11B08SIM7600M22\""],
                    Ok("LE11B08SIM7600M22".to_owned()),
                ),
                (&[], Err(AnswerError::Missing("identity"))),
            ],
        );
        check(
            imei,
            &[
                (&["867698041234567"], Ok("867698041234567".to_owned())),
                (
                    &["+CGSN: 867698041234567"],
                    Ok("867698041234567".to_owned()),
                ),
                (
                    &["86769804"],
                    Err(AnswerError::Malformed {
                        prefix: "IMEI",
                        line: "86769804".into(),
                    }),
                ),
            ],
        );
        check(
            imsi,
            &[(&["234150123456789"], Ok("234150123456789".to_owned()))],
        );
        check(
            iccid,
            &[
                (
                    &["89441000301234567890"],
                    Ok("89441000301234567890".to_owned()),
                ),
                (
                    &["+QCCID: 8944100030123456789F"],
                    Ok("8944100030123456789".to_owned()),
                ),
                (
                    &["+ICCID: 89860113908901324233"],
                    Ok("89860113908901324233".to_owned()),
                ),
                // Huawei gives the SIM's nibble-swapped digits.
                (
                    &["^ICCID: 98681031099810232433"],
                    Ok("89860113908901324233".to_owned()),
                ),
                (
                    &["^ICCID: 12"],
                    Err(AnswerError::Malformed {
                        prefix: "ICCID",
                        line: "12".into(),
                    }),
                ),
            ],
        );
    }

    #[test]
    fn cms_errors_are_classified() {
        use CmsError as E;
        // (code, variant, permanent, concerns the modem)
        let cases = [
            (1, E::UnassignedNumber, true, false),
            (8, E::OperatorDeterminedBarring, true, false),
            (10, E::CallBarred, true, false),
            (21, E::ShortMessageTransferRejected, true, false),
            (27, E::DestinationOutOfService, false, false),
            (28, E::UnidentifiedSubscriber, true, false),
            (29, E::FacilityRejected, true, false),
            (30, E::UnknownSubscriber, true, false),
            (38, E::NetworkOutOfOrder, false, false),
            (41, E::TemporaryFailure, false, false),
            (42, E::Congestion, false, false),
            (47, E::ResourcesUnavailable, false, false),
            (96, E::InvalidMandatoryInformation, true, false),
            (97, E::MessageTypeNonExistent, true, false),
            (98, E::MessageNotCompatible, true, false),
            (99, E::InformationElementNonExistent, true, false),
            (300, E::MeFailure, false, true),
            (302, E::OperationNotAllowed, true, true),
            (303, E::OperationNotSupported, true, true),
            (304, E::InvalidPduModeParameter, true, false),
            (310, E::SimNotInserted, false, true),
            (311, E::SimPinRequired, false, true),
            (320, E::MemoryFailure, false, true),
            (321, E::InvalidMemoryIndex, true, false),
            (322, E::MemoryFull, false, true),
            (330, E::SmscAddressUnknown, true, true),
            (331, E::NoNetworkService, false, true),
            (332, E::NetworkTimeout, false, false),
            (340, E::NoCnmaExpected, true, false),
            (500, E::UnknownError, false, false),
            (512, E::Unknown(512), false, false),
            (77, E::Unknown(77), false, false),
        ];
        for (code, variant, permanent, modem) in cases {
            let error = E::from_code(code);
            assert_eq!(error, variant, "{code}");
            assert_eq!(error.code(), Some(code));
            assert_eq!(error.is_permanent(), permanent, "{code}");
            assert_eq!(error.is_temporary(), !permanent, "{code}");
            assert_eq!(error.concerns_modem(), modem, "{code}");
            assert!(!error.describe().is_empty());
        }
        assert_eq!(E::from_code(38).to_string(), "38 (network out of order)");
        assert_eq!(
            E::from(&ErrorCode::Text("SMSC address unknown".into())),
            E::SmscAddressUnknown
        );
        assert_eq!(
            E::from(&ErrorCode::Text("304".into())),
            E::InvalidPduModeParameter
        );
        let other = E::from(&ErrorCode::Text("Vendor says no".into()));
        assert_eq!(other, E::Other("Vendor says no".into()));
        assert!(other.is_temporary());
        assert_eq!(other.to_string(), "Vendor says no");
    }

    #[test]
    fn cme_errors_are_classified() {
        use CmeError as E;
        let cases = [
            (10, E::SimNotInserted, false, true),
            (11, E::SimPinRequired, false, true),
            (12, E::SimPukRequired, false, true),
            (13, E::SimFailure, false, true),
            (14, E::SimBusy, false, true),
            (16, E::IncorrectPassword, true, true),
            (30, E::NoNetworkService, false, true),
            (100, E::UnknownError, false, false),
            (999, E::Unknown(999), false, false),
        ];
        for (code, variant, permanent, modem) in cases {
            let error = E::from_code(code);
            assert_eq!(error, variant, "{code}");
            assert_eq!(error.is_permanent(), permanent, "{code}");
            assert_eq!(error.concerns_modem(), modem, "{code}");
        }
        assert_eq!(
            E::from(&ErrorCode::Text("sim not inserted".into())),
            E::SimNotInserted
        );
        assert_eq!(
            E::from(&ErrorCode::Text("incorrect password".into())),
            E::IncorrectPassword
        );
    }
}
