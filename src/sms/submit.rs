//! SMS-SUBMIT encoding (TS 23.040 9.2.2.2): one PDU per part, SMSC field first, ready
//! for `AT+CMGS=<tpdu_len>` in PDU mode.
//!
//! Pure: the concatenation reference is a parameter, never drawn here, and the validity
//! period is relative, so no clock is read.

use std::time::Duration;

use super::address::{encode_destination, encode_smsc};
use super::alphabet::NationalLanguage;
use super::number::PhoneNumber;
use super::pack::pack_user_data;
use super::split::{self, Plan, TextEncoding};
use super::udh::{Concat, InformationElement, UserDataHeader};
use super::{Dcs, to_hex};

/// How messages are sent; the defaults suit one-time codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// The service centre; `None` writes the SMSC field `00` (the SIM's default SMSC).
    pub smsc: Option<PhoneNumber>,
    /// How long the network keeps trying. Encoded as a relative TP-VP rounded down to a
    /// value it can express (at least 5 minutes), so a code is never delivered later than
    /// asked.
    pub validity: Duration,
    /// Ask for a delivery report (TP-SRR).
    pub status_report: bool,
    /// National language shift tables the encoder may use; empty means none.
    pub national_languages: Vec<NationalLanguage>,
    /// Use the 16-bit concatenation reference (IEI 0x08) instead of the 8-bit one
    /// (IEI 0x00); each part then holds one septet or 16-bit unit less.
    pub concat_16bit: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            smsc: None,
            validity: Duration::from_secs(10 * 60),
            status_report: false,
            national_languages: Vec::new(),
            concat_16bit: false,
        }
    }
}

/// One encoded SMS-SUBMIT part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    bytes: Vec<u8>,
    smsc_len: usize,
}

impl SubmitPdu {
    /// The whole PDU as written after `AT+CMGS=`, SMSC field first.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The PDU in uppercase hex, as sent to the modem.
    pub fn hex(&self) -> String {
        to_hex(&self.bytes)
    }

    /// The TPDU length in octets (the SMSC field excluded): the number `AT+CMGS=` takes.
    pub fn tpdu_len(&self) -> usize {
        self.bytes.len() - self.smsc_len
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Why a text cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the message text is empty")]
    EmptyText,
    /// The concatenation element numbers parts with one octet (TS 23.040 9.2.3.24.1).
    #[error("the message needs {parts} parts, more than the 255 an SMS can be split into")]
    TooManyParts { parts: usize },
    #[error("the {field} cannot be encoded: {reason}")]
    Unencodable {
        field: &'static str,
        reason: &'static str,
    },
}

/// The most parts a concatenated message can have.
pub const MAX_PARTS: usize = 255;

/// Encodes `text` for `to` as one SMS-SUBMIT per part, in order.
///
/// `reference` is the concatenation reference shared by the parts; the caller changes it
/// from message to message. With an 8-bit reference only its low octet is used. A text
/// that fits one part gets no concatenation header and ignores it.
pub fn encode_submit(
    to: &PhoneNumber,
    text: &str,
    reference: u16,
    opts: &SubmitOptions,
) -> Result<Vec<SubmitPdu>, EncodeError> {
    if text.is_empty() {
        return Err(EncodeError::EmptyText);
    }
    let split = split::split(text, &opts.national_languages, opts.concat_16bit);
    let total = split.parts.len();
    if total > MAX_PARTS {
        return Err(EncodeError::TooManyParts { parts: total });
    }
    let smsc = opts.smsc.as_ref().map_or_else(|| vec![0], encode_smsc);
    let destination = encode_destination(to);
    let validity = relative_validity(opts.validity);
    let pdus = split
        .parts
        .iter()
        .enumerate()
        .map(|(index, payload)| {
            let mut elements = Vec::new();
            if total > 1 {
                elements.push(InformationElement::Concatenation(Concat {
                    reference: if opts.concat_16bit {
                        reference
                    } else {
                        reference & 0xFF
                    },
                    total: total as u8,
                    sequence: index as u8 + 1,
                    wide_reference: opts.concat_16bit,
                }));
            }
            if let TextEncoding::Gsm7 { locking, single } = split.encoding {
                elements.extend(single.map(|lang| InformationElement::SingleShift(lang.id())));
                elements.extend(locking.map(|lang| InformationElement::LockingShift(lang.id())));
            }
            let udh = if elements.is_empty() {
                Vec::new()
            } else {
                UserDataHeader { elements }.to_bytes()
            };
            // TP-MTI 01 (SUBMIT), TP-VPF 10 (relative), TP-SRR, TP-UDHI.
            let mut first = 0x01 | 0x10;
            if opts.status_report {
                first |= 0x20;
            }
            if !udh.is_empty() {
                first |= 0x40;
            }
            let mut bytes = Vec::with_capacity(smsc.len() + destination.len() + 6 + 140);
            bytes.extend_from_slice(&smsc);
            // TP-MR 0: the modem assigns the message reference and reports it in +CMGS.
            bytes.extend([first, 0x00]);
            bytes.extend_from_slice(&destination);
            let dcs = match split.encoding {
                TextEncoding::Gsm7 { .. } => Dcs::GSM7,
                TextEncoding::Ucs2 => Dcs::UCS2,
            };
            // TP-PID 0 (plain SME-to-SME), TP-DCS, TP-VP.
            bytes.extend([0x00, dcs, validity]);
            let mut user_data = Vec::with_capacity(140);
            let udl = match split.encoding {
                TextEncoding::Gsm7 { .. } => pack_user_data(&mut user_data, &udh, payload),
                TextEncoding::Ucs2 => {
                    user_data.extend_from_slice(&udh);
                    user_data.extend_from_slice(payload);
                    user_data.len()
                }
            };
            bytes.push(udl as u8);
            bytes.extend(user_data);
            SubmitPdu {
                bytes,
                smsc_len: smsc.len(),
            }
        })
        .collect();
    Ok(pdus)
}

/// The number of parts [`encode_submit`] makes of `text` (0 for an empty text), without
/// encoding it. It may exceed [`MAX_PARTS`], which `encode_submit` refuses.
pub fn count_parts(text: &str, opts: &SubmitOptions) -> usize {
    plan(text, opts).parts
}

/// The encoding and the number of parts [`encode_submit`] would use for `text`.
pub fn plan(text: &str, opts: &SubmitOptions) -> Plan {
    split::plan(text, &opts.national_languages, opts.concat_16bit)
}

/// The relative TP-VP (TS 23.040 9.2.3.12.1) for a validity period, rounded down to the
/// nearest value the octet can express, with 5 minutes as the floor:
/// 0..=143 are 5-minute steps up to 12 hours, 144..=167 half hours up to 24 hours,
/// 168..=196 days up to 30 days, 197..=255 weeks up to 63 weeks.
pub fn relative_validity(validity: Duration) -> u8 {
    let minutes = validity.as_secs() / 60;
    let value = match minutes {
        0..=719 => (minutes / 5).saturating_sub(1),
        720..=1439 => 143 + (minutes - 720) / 30,
        1440..=2879 => 167,
        2880..=43_199 => 166 + minutes / 1440,
        43_200..=50_399 => 196,
        _ => (192 + minutes / 10_080).min(255),
    };
    value as u8
}

/// The validity period a relative TP-VP stands for.
pub fn relative_validity_duration(value: u8) -> Duration {
    let minutes = match value {
        0..=143 => (u64::from(value) + 1) * 5,
        144..=167 => 720 + (u64::from(value) - 143) * 30,
        168..=196 => (u64::from(value) - 166) * 1440,
        _ => (u64::from(value) - 192) * 10_080,
    };
    Duration::from_secs(minutes * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{Pdu, decode_pdu};

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    /// One case: destination, text, reference, options, the expected PDUs in hex.
    fn check(to: &str, text: &str, reference: u16, opts: &SubmitOptions, want: &[&str]) {
        let pdus = encode_submit(&number(to), text, reference, opts).unwrap();
        let hex: Vec<String> = pdus.iter().map(SubmitPdu::hex).collect();
        assert_eq!(hex, want, "{text:?}");
        for pdu in &pdus {
            let smsc_len = usize::from(pdu.bytes()[0]) + 1;
            assert_eq!(pdu.tpdu_len(), pdu.bytes().len() - smsc_len);
            assert!(matches!(decode_pdu(pdu.bytes()), Ok(Pdu::Submit(_))));
        }
    }

    #[test]
    fn single_part_messages() {
        let opts = SubmitOptions::default();
        // 00 SMSC; 11 SUBMIT+VPF relative; 00 MR; DA 0D91 945121436587F9; PID 00; DCS 00;
        // VP 01 (10 minutes); UDL 0A; "hellohello".
        check(
            "+4915123456789",
            "hellohello",
            0,
            &opts,
            &["0011000D91945121436587F90000010AE8329BFD4697D9EC37"],
        );
        // UCS-2: DCS 08, UDL 4 octets.
        check(
            "+12015550123",
            "Жж",
            0,
            &opts,
            &["0011000B912110550521F30008010404160436"],
        );
        // Extension characters count two septets: "€1" = 1B 65 31 = 3 septets.
        check(
            "+12015550123",
            "€1",
            0,
            &opts,
            &["0011000B912110550521F3000001039B720C"],
        );
    }

    #[test]
    fn options() {
        let opts = SubmitOptions {
            smsc: Some(number("+31624000000")),
            validity: Duration::from_secs(24 * 3600),
            status_report: true,
            ..SubmitOptions::default()
        };
        // SMSC 07 91 1326040000F0; 31 = SUBMIT + VPF relative + SRR; VP A7 = 24 hours.
        check(
            "+4915123456789",
            "hi",
            0,
            &opts,
            &["07911326040000F031000D91945121436587F90000A702E834"],
        );
    }

    #[test]
    fn two_part_message_with_8_and_16_bit_references() {
        let text = "a".repeat(161);
        let pdus = encode_submit(
            &number("+12015550123"),
            &text,
            0x1234,
            &SubmitOptions::default(),
        )
        .unwrap();
        assert_eq!(pdus.len(), 2);
        // 51 = SUBMIT + VPF + UDHI; UDL A0 = 160 septets (7 header + 153 text); the header
        // 050003 34 02 01 uses the reference's low octet.
        assert!(
            pdus[0]
                .hex()
                .starts_with("0051000B912110550521F3000001A0050003340201")
        );
        assert_eq!(pdus[0].tpdu_len(), 14 + 140);
        // Part 2: 8 letters = 7 header septets + 8 = 15 septets (0F).
        assert!(
            pdus[1]
                .hex()
                .starts_with("0051000B912110550521F30000010F050003340202")
        );
        let wide = SubmitOptions {
            concat_16bit: true,
            ..SubmitOptions::default()
        };
        let pdus = encode_submit(&number("+12015550123"), &text, 0x1234, &wide).unwrap();
        // UDL A0 = 8 header septets + 152; the header 06 08 04 1234 02 01 has no fill bits.
        assert!(
            pdus[0]
                .hex()
                .starts_with("0051000B912110550521F3000001A006080412340201")
        );
        assert!(
            pdus[1]
                .hex()
                .starts_with("0051000B912110550521F30000011106080412340202")
        );
    }

    #[test]
    fn national_language_headers() {
        let opts = SubmitOptions {
            national_languages: vec![NationalLanguage::Turkish],
            ..SubmitOptions::default()
        };
        // "ğ" with the Turkish single shift: header 03 24 01 01 (4 octets = 5 septets,
        // 3 fill bits), then 1B 67: UDL 7.
        let pdus = encode_submit(&number("+12015550123"), "ğ", 0, &opts).unwrap();
        assert_eq!(
            pdus[0].hex(),
            "0051000B912110550521F30000010703240101D89C01"
        );
    }

    #[test]
    fn errors() {
        let to = number("+12015550123");
        let opts = SubmitOptions::default();
        assert_eq!(
            encode_submit(&to, "", 0, &opts),
            Err(EncodeError::EmptyText)
        );
        let long = "a".repeat(153 * 255 + 1);
        assert_eq!(
            encode_submit(&to, &long, 0, &opts),
            Err(EncodeError::TooManyParts { parts: 256 })
        );
        assert_eq!(count_parts(&long, &opts), 256);
        assert_eq!(
            encode_submit(&to, &"a".repeat(153 * 255), 0, &opts).map(|p| p.len()),
            Ok(255)
        );
        assert_eq!(count_parts("", &opts), 0);
    }

    #[test]
    fn validity_rounds_down() {
        let check = |minutes: u64, value: u8, effective_minutes: u64| {
            let got = relative_validity(Duration::from_secs(minutes * 60));
            assert_eq!(got, value, "{minutes} minutes");
            assert_eq!(
                relative_validity_duration(got),
                Duration::from_secs(effective_minutes * 60)
            );
        };
        check(0, 0, 5);
        check(4, 0, 5);
        check(5, 0, 5);
        check(9, 0, 5);
        check(10, 1, 10);
        check(14, 1, 10);
        check(720, 143, 720);
        check(749, 143, 720);
        check(750, 144, 750);
        check(1440, 167, 1440);
        check(2879, 167, 1440);
        check(2880, 168, 2880);
        check(30 * 1440, 196, 30 * 1440);
        check(35 * 1440 - 1, 196, 30 * 1440);
        check(35 * 1440, 197, 35 * 1440);
        check(63 * 10_080, 255, 63 * 10_080);
        check(100 * 10_080, 255, 63 * 10_080);
        // Seconds round down too: 10 minutes minus a second is 5 minutes.
        assert_eq!(relative_validity(Duration::from_secs(599)), 0);
        assert_eq!(relative_validity(Duration::MAX), 255);
        // No value is ever later than asked (beyond the 5-minute floor).
        for minutes in 5..70_000 {
            let value = relative_validity(Duration::from_secs(minutes * 60));
            assert!(
                relative_validity_duration(value) <= Duration::from_secs(minutes * 60),
                "{minutes}"
            );
        }
    }
}
