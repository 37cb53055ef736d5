//! Typed readings of the answers the driver gets: the [`Response`] the engine returns and
//! one reader per answer (signal, registration, SIM state, operator, storage, stored
//! messages, identities). Pure.

use std::fmt;

use super::AnswerError;
use crate::at::parse::{
    Param, Registration, RegistrationKind, SimState, has_prefix, params, redact_line,
};

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
            RegistrationKind::FiveG => "+C5GREG:",
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

/// The IMEI from the answer of `AT+CGSN`: 15 digits (TS 23.003 §6.2.1), so that a boot
/// line such as SIMCom's `SMS DONE` arriving in its place is never taken for it.
pub fn imei(response: &Response) -> Result<String, AnswerError> {
    digits_answer(response, "IMEI", 15..=15)
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

/// The service centre number from the answer of `AT+CSCA?` (TS 27.005 §3.3.1):
/// `+CSCA: "<sca>",<tosca>`. `Ok(None)` when the SIM holds none (`+CSCA: "",129`, or an
/// empty line); a `+` is added for the international type 145.
pub fn service_centre(response: &Response) -> Result<Option<String>, AnswerError> {
    const PREFIX: &str = "+CSCA:";
    let value = response.value(PREFIX).ok_or(AnswerError::Missing(PREFIX))?;
    let p = params(value).ok_or_else(|| AnswerError::malformed(PREFIX, value))?;
    let number = p.first().map(|n| n.text().trim()).unwrap_or("");
    if number.is_empty() {
        return Ok(None);
    }
    let international = p.get(1).and_then(|t| t.number::<u8>()) == Some(145);
    if international && !number.starts_with('+') {
        Ok(Some(format!("+{number}")))
    } else {
        Ok(Some(number.to_owned()))
    }
}
