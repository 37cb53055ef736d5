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
//! Code map: this file (the commands), `read` (the answers' readers), `cms` (the
//! `+CMS ERROR`/`+CME ERROR` tables).
//!
//! Nothing here does I/O, reads the clock or imports tokio.

use std::fmt;
use std::time::Duration;

use crate::at::parse::{Pending, RegistrationKind, has_prefix, redact_line};

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

    /// `AT+CREG?`, `AT+CGREG?`, `AT+CEREG?` or `AT+C5GREG?`; read with
    /// [`Registration::from_response`].
    pub fn registration(kind: RegistrationKind) -> Command {
        let name = kind.name();
        let prefix: &'static str = match kind {
            RegistrationKind::CircuitSwitched => "+CREG:",
            RegistrationKind::Gprs => "+CGREG:",
            RegistrationKind::Eps => "+CEREG:",
            RegistrationKind::FiveG => "+C5GREG:",
        };
        Command::fixed(&format!("AT+{name}?"), &[prefix], false, DEFAULT_TIMEOUT)
    }

    /// `AT+CREG=<n>` (or `+CGREG`, `+CEREG`, `+C5GREG`): 1 reports registration changes
    /// as URCs, 2 adds the location.
    pub fn registration_reports(kind: RegistrationKind, n: u8) -> Command {
        let name = kind.name();
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

mod cms;
mod read;

pub use cms::{Blame, CmeError, CmsError, Retry, blame_words};
pub use read::*;

#[cfg(test)]
mod tests;
