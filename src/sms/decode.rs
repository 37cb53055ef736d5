//! Decoding of SMS-DELIVER (TS 23.040 9.2.2.1), SMS-SUBMIT (9.2.2.2) and
//! SMS-STATUS-REPORT (9.2.2.3) PDUs into typed values, and the hex form modems use.
//!
//! Any input gives a value or a `PduError`, never a panic: every read goes through
//! `Reader`, which reports the field the PDU ended in.

use super::address::Address;
use super::alphabet::Tables;
use super::dcs::{Alphabet, Dcs};
use super::pack::{octets_for_septets, udh_septets, unpack};
use super::reader::Reader;
use super::status::DeliveryStatus;
use super::timestamp::Timestamp;
use super::ucs2;
use super::udh::UserDataHeader;

/// A decoded PDU. TP-MTI 0 is a DELIVER, 1 a SUBMIT, 2 a STATUS-REPORT (read in the
/// direction a modem receives them, except SUBMIT, which smsbridge decodes to check what
/// it sends); 3 is reserved and an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Submit(Submit),
    Deliver(Deliver),
    StatusReport(StatusReport),
}

/// An SMS-SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub smsc: Option<Address>,
    pub reject_duplicates: bool,
    pub status_report_request: bool,
    pub reply_path: bool,
    pub message_reference: u8,
    pub destination: Address,
    pub protocol_identifier: u8,
    pub dcs: Dcs,
    pub validity: ValidityPeriod,
    pub udh: Option<UserDataHeader>,
    pub user_data: UserData,
}

/// An SMS-DELIVER: a message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    pub smsc: Option<Address>,
    /// TP-MMS clear: the service centre has more messages waiting.
    pub more_messages_waiting: bool,
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    pub reply_path: bool,
    pub originator: Address,
    pub protocol_identifier: u8,
    pub dcs: Dcs,
    pub sc_timestamp: Timestamp,
    pub udh: Option<UserDataHeader>,
    pub user_data: UserData,
}

/// An SMS-STATUS-REPORT: what became of a message sent with TP-SRR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub smsc: Option<Address>,
    /// TP-MMS clear: the service centre has more messages waiting.
    pub more_messages_waiting: bool,
    pub loop_prevention: bool,
    /// TP-SRQ: the report is about an SMS-COMMAND rather than an SMS-SUBMIT.
    pub about_command: bool,
    /// The TP-MR of the SUBMIT this reports on (the number `+CMGS` returned).
    pub message_reference: u8,
    pub recipient: Address,
    /// When the service centre received the SUBMIT.
    pub sc_timestamp: Timestamp,
    /// When the status below was reached (delivery or final failure).
    pub discharge_time: Timestamp,
    pub status: DeliveryStatus,
    /// The optional fields after TP-PI (TS 23.040 9.2.3.27), absent in most reports.
    pub protocol_identifier: Option<u8>,
    pub dcs: Option<Dcs>,
    pub udh: Option<UserDataHeader>,
    pub user_data: Option<UserData>,
}

/// The user data after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserData {
    /// 7-bit (read with the header's shift tables) or UCS-2 text.
    Text(String),
    /// 8-bit data.
    Binary(Vec<u8>),
    /// Compressed data (TS 23.042), which smsbridge does not decompress.
    Compressed(Vec<u8>),
}

/// TP-VP of a SUBMIT, in the format TP-VPF names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityPeriod {
    None,
    /// The relative octet; see [`super::relative_validity_duration`].
    Relative(u8),
    /// The enhanced format's seven octets, as sent.
    Enhanced([u8; 7]),
    Absolute(Timestamp),
}

/// Why a PDU could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("the PDU is empty")]
    Empty,
    #[error("the PDU ends inside the {field}")]
    Truncated { field: &'static str },
    #[error("the message type indicator is 3, which TS 23.040 reserves")]
    ReservedMessageType,
    #[error("the hex PDU has {found:?} at position {position}, which is not a hex digit")]
    InvalidHex { found: char, position: usize },
    #[error("the hex PDU has an odd number of digits ({digits})")]
    OddHexLength { digits: usize },
    #[error("the {field} has a semi-octet that is not a decimal digit")]
    BadTimestamp { field: &'static str },
    #[error(
        "the user data header ({header} octets) is longer than the user data ({user_data} octets)"
    )]
    HeaderTooLong { header: usize, user_data: usize },
    #[error("an element of the user data header runs past the header's end")]
    BadHeader,
    #[error("the UCS-2 text has an odd number of octets ({octets})")]
    OddUcs2Length { octets: usize },
}

impl Pdu {
    /// The user data header, if the PDU has one.
    pub fn udh(&self) -> Option<&UserDataHeader> {
        match self {
            Pdu::Submit(s) => s.udh.as_ref(),
            Pdu::Deliver(d) => d.udh.as_ref(),
            Pdu::StatusReport(r) => r.udh.as_ref(),
        }
    }

    /// The user data, if the PDU has any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Pdu::Submit(s) => Some(&s.user_data),
            Pdu::Deliver(d) => Some(&d.user_data),
            Pdu::StatusReport(r) => r.user_data.as_ref(),
        }
    }

    /// The text, if the user data is text.
    pub fn text(&self) -> Option<&str> {
        self.user_data().and_then(UserData::text)
    }
}

impl UserData {
    pub fn text(&self) -> Option<&str> {
        match self {
            UserData::Text(text) => Some(text),
            UserData::Binary(_) | UserData::Compressed(_) => None,
        }
    }
}

/// Decodes a whole PDU as a modem shows it: the SMSC field, then the TPDU.
pub fn decode_pdu(bytes: &[u8]) -> Result<Pdu, PduError> {
    if bytes.is_empty() {
        return Err(PduError::Empty);
    }
    let mut reader = Reader::new(bytes);
    let smsc = Address::decode_smsc(&mut reader)?;
    decode(reader, smsc)
}

/// Decodes a TPDU without the SMSC field in front.
pub fn decode_tpdu(bytes: &[u8]) -> Result<Pdu, PduError> {
    if bytes.is_empty() {
        return Err(PduError::Empty);
    }
    decode(Reader::new(bytes), None)
}

/// Reads hex digits (either case) into octets, ignoring whitespace around them.
pub fn decode_hex(hex: &str) -> Result<Vec<u8>, PduError> {
    let trimmed = hex.trim();
    let offset = hex.len() - hex.trim_start().len();
    let mut nibbles = Vec::with_capacity(trimmed.len());
    for (index, c) in trimmed.char_indices() {
        let value = c.to_digit(16).ok_or(PduError::InvalidHex {
            found: c,
            position: hex[..offset + index].chars().count() + 1,
        })?;
        nibbles.push(value as u8);
    }
    if nibbles.len() % 2 != 0 {
        return Err(PduError::OddHexLength {
            digits: nibbles.len(),
        });
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect())
}

/// Octets in uppercase hex, as modems take them.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
    }
    out
}

fn decode(mut r: Reader<'_>, smsc: Option<Address>) -> Result<Pdu, PduError> {
    let first = r.u8("first octet")?;
    let udhi = first & 0x40 != 0;
    match first & 0x03 {
        0 => {
            let originator = Address::decode_tp(&mut r)?;
            let protocol_identifier = r.u8("TP-PID")?;
            let dcs = Dcs::from_octet(r.u8("TP-DCS")?);
            let sc_timestamp = Timestamp::decode(r.array("TP-SCTS")?, "TP-SCTS")?;
            let (udh, user_data) = decode_user_data(&mut r, udhi, dcs)?;
            Ok(Pdu::Deliver(Deliver {
                smsc,
                more_messages_waiting: first & 0x04 == 0,
                loop_prevention: first & 0x08 != 0,
                status_report_indication: first & 0x20 != 0,
                reply_path: first & 0x80 != 0,
                originator,
                protocol_identifier,
                dcs,
                sc_timestamp,
                udh,
                user_data,
            }))
        }
        1 => {
            let message_reference = r.u8("TP-MR")?;
            let destination = Address::decode_tp(&mut r)?;
            let protocol_identifier = r.u8("TP-PID")?;
            let dcs = Dcs::from_octet(r.u8("TP-DCS")?);
            let validity = match (first >> 3) & 0x03 {
                0 => ValidityPeriod::None,
                2 => ValidityPeriod::Relative(r.u8("TP-VP")?),
                1 => ValidityPeriod::Enhanced(r.array("TP-VP")?),
                _ => ValidityPeriod::Absolute(Timestamp::decode(r.array("TP-VP")?, "TP-VP")?),
            };
            let (udh, user_data) = decode_user_data(&mut r, udhi, dcs)?;
            Ok(Pdu::Submit(Submit {
                smsc,
                reject_duplicates: first & 0x04 != 0,
                status_report_request: first & 0x20 != 0,
                reply_path: first & 0x80 != 0,
                message_reference,
                destination,
                protocol_identifier,
                dcs,
                validity,
                udh,
                user_data,
            }))
        }
        2 => {
            let message_reference = r.u8("TP-MR")?;
            let recipient = Address::decode_tp(&mut r)?;
            let sc_timestamp = Timestamp::decode(r.array("TP-SCTS")?, "TP-SCTS")?;
            let discharge_time = Timestamp::decode(r.array("TP-DT")?, "TP-DT")?;
            let status = DeliveryStatus(r.u8("TP-ST")?);
            let mut report = StatusReport {
                smsc,
                more_messages_waiting: first & 0x04 == 0,
                loop_prevention: first & 0x08 != 0,
                about_command: first & 0x20 != 0,
                message_reference,
                recipient,
                sc_timestamp,
                discharge_time,
                status,
                protocol_identifier: None,
                dcs: None,
                udh: None,
                user_data: None,
            };
            // An error in the optional part after TP-ST drops that part only: some service
            // centres pad reports, and a padding octet read as TP-PI must not cost the
            // status, which is what the sender needs.
            if let Ok(optional) = decode_report_parameters(&mut r, udhi) {
                report.protocol_identifier = optional.0;
                report.dcs = optional.1;
                report.udh = optional.2;
                report.user_data = optional.3;
            }
            Ok(Pdu::StatusReport(report))
        }
        _ => Err(PduError::ReservedMessageType),
    }
}

type ReportParameters = (
    Option<u8>,
    Option<Dcs>,
    Option<UserDataHeader>,
    Option<UserData>,
);

/// TP-PI and the fields it announces (TS 23.040 9.2.3.27): bit 0 TP-PID, bit 1 TP-DCS,
/// bit 2 TP-UDL (and TP-UD); bit 7 says another TP-PI octet follows, whose bits no
/// release defines yet.
fn decode_report_parameters(r: &mut Reader<'_>, udhi: bool) -> Result<ReportParameters, PduError> {
    if r.is_empty() {
        return Ok((None, None, None, None));
    }
    let indicator = r.u8("TP-PI")?;
    let mut extension = indicator;
    while extension & 0x80 != 0 {
        extension = r.u8("TP-PI")?;
    }
    let protocol_identifier = if indicator & 0x01 != 0 {
        Some(r.u8("TP-PID")?)
    } else {
        None
    };
    let dcs = if indicator & 0x02 != 0 {
        Some(Dcs::from_octet(r.u8("TP-DCS")?))
    } else {
        None
    };
    if indicator & 0x04 == 0 {
        return Ok((protocol_identifier, dcs, None, None));
    }
    // Without TP-DCS the user data is in the default alphabet (9.2.3.27).
    let (udh, user_data) = decode_user_data(r, udhi, dcs.unwrap_or(Dcs::from_octet(0)))?;
    Ok((protocol_identifier, dcs, udh, Some(user_data)))
}

/// TP-UDL and TP-UD (TS 23.040 9.2.3.16, 9.2.3.24). Octets after the user data are
/// ignored: some modems pad the PDUs they list.
fn decode_user_data(
    r: &mut Reader<'_>,
    udhi: bool,
    dcs: Dcs,
) -> Result<(Option<UserDataHeader>, UserData), PduError> {
    let udl = usize::from(r.u8("TP-UDL")?);
    let alphabet = dcs.alphabet();
    // Compressed user data is counted in octets whatever the alphabet (9.2.3.16).
    if alphabet != Alphabet::Gsm7 || dcs.is_compressed() {
        let octets = r.take(udl, "user data")?;
        let (udh, body) = if udhi {
            let (udh, len) = UserDataHeader::parse(octets)?;
            (Some(udh), octets.get(len..).unwrap_or_default())
        } else {
            (None, octets)
        };
        let user_data = if dcs.is_compressed() {
            UserData::Compressed(body.to_vec())
        } else if alphabet == Alphabet::Ucs2 {
            UserData::Text(
                ucs2::decode(body).ok_or(PduError::OddUcs2Length { octets: body.len() })?,
            )
        } else {
            UserData::Binary(body.to_vec())
        };
        return Ok((udh, user_data));
    }
    let octets = r.take(octets_for_septets(udl), "user data")?;
    let (udh, skip) = if udhi {
        let (udh, len) = UserDataHeader::parse(octets)?;
        let skip = udh_septets(len);
        if skip > udl {
            return Err(PduError::HeaderTooLong {
                header: len,
                user_data: octets.len(),
            });
        }
        (Some(udh), skip)
    } else {
        (None, 0)
    };
    let septets =
        unpack(octets, skip, udl - skip).ok_or(PduError::Truncated { field: "user data" })?;
    let (locking, single) = udh
        .as_ref()
        .map(UserDataHeader::languages)
        .unwrap_or_default();
    let text = Tables::for_languages(locking, single).decode(&septets);
    Ok((udh, UserData::Text(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{
        Concat, DcsGroup, Indication, InformationElement, MessageClass, Ports, TypeOfNumber,
        relative_validity_duration,
    };

    fn pdu(hex: &str) -> Pdu {
        match decode_hex(hex).and_then(|bytes| decode_pdu(&bytes)) {
            Ok(pdu) => pdu,
            Err(err) => panic!("{hex}: {err}"),
        }
    }

    fn deliver(hex: &str) -> Deliver {
        match pdu(hex) {
            Pdu::Deliver(d) => d,
            other => panic!("{hex}: not a DELIVER: {other:?}"),
        }
    }

    fn report(hex: &str) -> StatusReport {
        match pdu(hex) {
            Pdu::StatusReport(r) => r,
            other => panic!("{hex}: not a STATUS-REPORT: {other:?}"),
        }
    }

    /// The published SMS-DELIVER example, checked field by field (and by hand: "Hello
    /// World!" is 12 septets, C8 = 'H' | 'e' bit 0 << 7, and so on).
    #[test]
    fn published_deliver() {
        let d =
            deliver("07911326040000F0040B911346610089F60000208062917314080CC8329BFD065DDF72363904");
        assert_eq!(
            d.smsc.as_ref().map(|a| a.value.as_str()),
            Some("+31624000000")
        );
        assert!(!d.more_messages_waiting);
        assert!(!d.status_report_indication);
        assert_eq!(d.originator.value, "+31641600986");
        assert_eq!(d.originator.type_of_number, TypeOfNumber::International);
        assert_eq!(d.protocol_identifier, 0);
        assert_eq!(d.dcs.alphabet(), Alphabet::Gsm7);
        assert_eq!(d.sc_timestamp.to_string(), "2002-08-26T19:37:41+00:00");
        assert_eq!(d.udh, None);
        assert_eq!(d.user_data, UserData::Text("Hello World!".into()));
    }

    const OA: &str = "0B911346610089F6";
    const TS: &str = "52117021437032";

    /// One DELIVER case: first octet, DCS, TP-UDL and TP-UD (hex), the expected header
    /// and user data. The originator and time stamp are fixed.
    fn check(
        first: &str,
        dcs: &str,
        ud: &str,
        udh: Option<Vec<InformationElement>>,
        user_data: UserData,
    ) {
        let hex = format!("00{first}{OA}00{dcs}{TS}{ud}");
        let d = deliver(&hex);
        assert_eq!(d.udh.map(|h| h.elements), udh, "{hex}");
        assert_eq!(d.user_data, user_data, "{hex}");
    }

    fn text(s: &str) -> UserData {
        UserData::Text(s.to_owned())
    }

    #[test]
    fn deliver_user_data() {
        // Extension characters: "{€}" = 1B 28 1B 65 1B 29, six septets.
        check("04", "00", "061BD4A6BC4901", None, text("{€}"));
        // Part 2 of 2, 8-bit reference 0xCC: header 6 octets, one fill bit, "World".
        check(
            "44",
            "00",
            "0C050003CC0202AE6F399B0C",
            Some(vec![InformationElement::Concatenation(Concat {
                reference: 0xCC,
                total: 2,
                sequence: 2,
                wide_reference: false,
            })]),
            text("World"),
        );
        // Turkish locking shift: the septets 0B 0C 1C 1D 40 60 07 are "ĞğŞşİçı" (the
        // default alphabet would give "ØøÆæ¡¿ì").
        check(
            "44",
            "00",
            "0C032501015830381D20F800",
            Some(vec![InformationElement::LockingShift(1)]),
            text("ĞğŞşİçı"),
        );
        // 8-bit data with 16-bit application ports (WAP push) and concatenation.
        check(
            "44",
            "04",
            "0E0B05040B8423F00003A803010102",
            Some(vec![
                InformationElement::ApplicationPorts(Ports {
                    destination: 2948,
                    originator: 9200,
                    wide: true,
                }),
                InformationElement::Concatenation(Concat {
                    reference: 0xA8,
                    total: 3,
                    sequence: 1,
                    wide_reference: false,
                }),
            ]),
            UserData::Binary(vec![1, 2]),
        );
        // UCS-2 with an 8-bit concatenation header: the header counts in TP-UDL octets.
        check(
            "44",
            "08",
            "0C0500030102010416D83DDE00",
            Some(vec![InformationElement::Concatenation(Concat {
                reference: 1,
                total: 2,
                sequence: 1,
                wide_reference: false,
            })]),
            text("Ж😀"),
        );
        // Compressed data is kept as sent; TP-UDL counts octets.
        check(
            "04",
            "20",
            "03AABBCC",
            None,
            UserData::Compressed(vec![0xAA, 0xBB, 0xCC]),
        );
        // A reserved coding group is read as 7-bit.
        check("04", "80", "05C8329BFD06", None, text("Hello"));
        check("04", "00", "00", None, text(""));
    }

    #[test]
    fn deliver_dcs_groups() {
        let flash = deliver(&format!("0004{OA}0010{TS}05C8329BFD06"));
        assert_eq!(flash.dcs.class(), Some(MessageClass::Class0));
        assert_eq!(flash.user_data, text("Hello"));
        let waiting = deliver(&format!("0004{OA}00C8{TS}05C8329BFD06"));
        assert_eq!(
            waiting.dcs.group,
            DcsGroup::MessageWaiting {
                store: false,
                alphabet: Alphabet::Gsm7,
                active: true,
                indication: Indication::Voicemail,
            }
        );
        let data_class = deliver(&format!("0004{OA}00F6{TS}020102"));
        assert_eq!(data_class.user_data, UserData::Binary(vec![1, 2]));
        assert_eq!(data_class.dcs.class(), Some(MessageClass::Class2));
    }

    #[test]
    fn alphanumeric_sender() {
        let d = deliver("00040BD0C7F7FBCC2E030008521170214370320C041F04400438043204350442");
        assert_eq!(d.originator.type_of_number, TypeOfNumber::Alphanumeric);
        assert_eq!(d.originator.value, "Google");
        assert_eq!(d.user_data, text("Привет"));
        assert_eq!(d.sc_timestamp.to_string(), "2025-11-07T12:34:07+05:45");
    }

    #[test]
    fn status_reports() {
        // Delivered: MR 0, recipient +12015550123, received 12:34:07, delivered 12:34:08.
        let r = report("0006000B912110550521F3521170214370325211702143803200");
        assert_eq!(r.message_reference, 0);
        assert_eq!(r.recipient.value, "+12015550123");
        assert_eq!(r.sc_timestamp.to_string(), "2025-11-07T12:34:07+05:45");
        assert_eq!(r.discharge_time.to_string(), "2025-11-07T12:34:08+05:45");
        assert!(r.status.is_delivered());
        assert!(!r.about_command);
        assert_eq!(
            (r.protocol_identifier, r.dcs, r.user_data),
            (None, None, None)
        );
        // With an SMSC, MR 42 and status 0x46 (validity period expired).
        let r = report(
            "07911326040000F006 2A0B912110550521F3 52117021437032 52117021438032 46"
                .replace(' ', "")
                .as_str(),
        );
        assert_eq!(r.smsc.map(|a| a.value), Some("+31624000000".to_owned()));
        assert_eq!(r.message_reference, 42);
        assert!(r.status.is_failed());
        assert_eq!(r.status.describe(), "SM validity period expired");
        // Pending (0x21, SME busy).
        assert!(
            report("0006000B912110550521F3521170214370325211702143803221")
                .status
                .is_pending()
        );
        // TP-PI 07: TP-PID 00, TP-DCS 00, TP-UDL 5 and "Hello".
        let r = report("0006000B912110550521F352117021437032521170214380320007000005C8329BFD06");
        assert_eq!(r.protocol_identifier, Some(0));
        assert_eq!(r.dcs, Some(Dcs::from_octet(0)));
        assert_eq!(r.user_data, Some(text("Hello")));
        // Padding after TP-ST read as TP-PI leads nowhere; the report keeps its status.
        let r = report("0006000B912110550521F3521170214370325211702143803200FF");
        assert!(r.status.is_delivered());
        assert_eq!(r.user_data, None);
    }

    #[test]
    fn submit_validity_formats() {
        let submit = |hex: &str| match pdu(hex) {
            Pdu::Submit(s) => s,
            other => panic!("{hex}: not a SUBMIT: {other:?}"),
        };
        const DA: &str = "0B912110550521F3";
        let none = submit(&format!("00012A{DA}000002E834"));
        assert_eq!(none.validity, ValidityPeriod::None);
        assert_eq!(none.message_reference, 42);
        assert_eq!(none.user_data, text("hi"));
        let relative = submit(&format!("003500{DA}0000A702E834"));
        assert_eq!(relative.validity, ValidityPeriod::Relative(0xA7));
        assert_eq!(relative_validity_duration(0xA7).as_secs(), 24 * 3600);
        assert!(relative.status_report_request);
        assert!(relative.reject_duplicates);
        let absolute = submit(&format!("001900{DA}0000{TS}02E834"));
        let ValidityPeriod::Absolute(until) = absolute.validity else {
            panic!("not absolute: {:?}", absolute.validity);
        };
        assert_eq!(until.to_string(), "2025-11-07T12:34:07+05:45");
        let enhanced = submit(&format!("000900{DA}00004200000000000002E834"));
        assert_eq!(
            enhanced.validity,
            ValidityPeriod::Enhanced([0x42, 0, 0, 0, 0, 0, 0])
        );
        assert_eq!(enhanced.user_data, text("hi"));
    }

    #[test]
    fn errors() {
        let err = |hex: &str| decode_hex(hex).and_then(|b| decode_pdu(&b)).unwrap_err();
        assert_eq!(err(""), PduError::Empty);
        assert_eq!(
            err("00"),
            PduError::Truncated {
                field: "first octet"
            }
        );
        assert_eq!(err("0003"), PduError::ReservedMessageType);
        assert_eq!(err("0011"), PduError::Truncated { field: "TP-MR" });
        assert_eq!(
            err("0G"),
            PduError::InvalidHex {
                found: 'G',
                position: 2
            }
        );
        assert_eq!(err("001"), PduError::OddHexLength { digits: 3 });
        assert_eq!(
            err(&format!("0004{OA}0000{TS}0AE8329BFD")),
            PduError::Truncated { field: "user data" }
        );
        assert_eq!(
            err(&format!("0004{OA}0000{TS}")),
            PduError::Truncated { field: "TP-UDL" }
        );
        assert_eq!(
            err(&format!("0004{OA}0000521170")),
            PduError::Truncated { field: "TP-SCTS" }
        );
        assert_eq!(
            err(&format!("0004{OA}0008{TS}03000000")),
            PduError::OddUcs2Length { octets: 3 }
        );
        // UDHI set, TP-UDL 2 septets, but the header claims 5 octets.
        assert_eq!(
            err(&format!("0044{OA}0000{TS}020500")),
            PduError::HeaderTooLong {
                header: 6,
                user_data: 2
            }
        );
        // A 7-bit header of 6 octets is 7 septets; TP-UDL 6 cannot hold it.
        assert_eq!(
            err(&format!("0044{OA}0000{TS}06050003CC0201")),
            PduError::HeaderTooLong {
                header: 6,
                user_data: 6
            }
        );
        assert_eq!(
            err(&format!("0004{OA}0000F211702143703200")),
            PduError::BadTimestamp { field: "TP-SCTS" }
        );
        assert_eq!(decode_tpdu(&[]), Err(PduError::Empty));
    }

    #[test]
    fn tpdu_without_smsc() {
        let bytes = decode_hex(&format!("04{OA}0000{TS}05C8329BFD06")).unwrap();
        assert_eq!(
            decode_tpdu(&bytes).map(|p| p.text().map(str::to_owned)),
            Ok(Some("Hello".to_owned()))
        );
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex(" 0aFf\n"), Ok(vec![0x0A, 0xFF]));
        assert_eq!(decode_hex(""), Ok(vec![]));
        assert_eq!(to_hex(&[0x0A, 0xFF, 0x00]), "0AFF00");
        assert_eq!(
            decode_hex("  é"),
            Err(PduError::InvalidHex {
                found: 'é',
                position: 3
            })
        );
        assert_eq!(
            decode_hex("00 11"),
            Err(PduError::InvalidHex {
                found: ' ',
                position: 3
            })
        );
    }
}
