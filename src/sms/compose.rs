//! Encoding of the PDUs a service centre sends to a phone: SMS-DELIVER and
//! SMS-STATUS-REPORT. smsbridge never sends these to a network; the simulated modem sends
//! them to smsbridge (`+CMT`, `+CDS`), and the tests use them to check the decoder against
//! the encoder.

use super::address::Address;
use super::alphabet::Tables;
use super::dcs::{Alphabet, Dcs};
use super::decode::{Deliver, StatusReport, UserData};
use super::pack::pack_user_data;
use super::submit::EncodeError;
use super::ucs2;
use super::udh::UserDataHeader;

/// Encodes an SMS-DELIVER, SMSC field first. The user data is written as `dcs` says:
/// text in 7-bit (with the header's shift tables) or UCS-2, bytes as they are.
pub fn encode_deliver(deliver: &Deliver) -> Result<Vec<u8>, EncodeError> {
    let mut out = smsc_field(deliver.smsc.as_ref())?;
    let mut first = 0x00;
    if !deliver.more_messages_waiting {
        first |= 0x04;
    }
    if deliver.loop_prevention {
        first |= 0x08;
    }
    if deliver.status_report_indication {
        first |= 0x20;
    }
    if deliver.udh.is_some() {
        first |= 0x40;
    }
    if deliver.reply_path {
        first |= 0x80;
    }
    out.push(first);
    out.extend(address(&deliver.originator, "originator address")?);
    out.extend([deliver.protocol_identifier, deliver.dcs.octet]);
    out.extend(deliver.sc_timestamp.encode());
    write_user_data(
        &mut out,
        deliver.udh.as_ref(),
        deliver.dcs,
        &deliver.user_data,
    )?;
    Ok(out)
}

/// Encodes an SMS-STATUS-REPORT, SMSC field first. TP-PI and the optional fields are
/// written when any of them is present.
pub fn encode_status_report(report: &StatusReport) -> Result<Vec<u8>, EncodeError> {
    let mut out = smsc_field(report.smsc.as_ref())?;
    let mut first = 0x02;
    if !report.more_messages_waiting {
        first |= 0x04;
    }
    if report.loop_prevention {
        first |= 0x08;
    }
    if report.about_command {
        first |= 0x20;
    }
    if report.udh.is_some() {
        first |= 0x40;
    }
    out.extend([first, report.message_reference]);
    out.extend(address(&report.recipient, "recipient address")?);
    out.extend(report.sc_timestamp.encode());
    out.extend(report.discharge_time.encode());
    out.push(report.status.code());
    if report.protocol_identifier.is_none() && report.dcs.is_none() && report.user_data.is_none() {
        return Ok(out);
    }
    let indicator = u8::from(report.protocol_identifier.is_some())
        | u8::from(report.dcs.is_some()) << 1
        | u8::from(report.user_data.is_some()) << 2;
    out.push(indicator);
    out.extend(report.protocol_identifier);
    out.extend(report.dcs.map(|dcs| dcs.octet));
    if let Some(user_data) = &report.user_data {
        let dcs = report.dcs.unwrap_or(Dcs::from_octet(0));
        write_user_data(&mut out, report.udh.as_ref(), dcs, user_data)?;
    }
    Ok(out)
}

fn smsc_field(smsc: Option<&Address>) -> Result<Vec<u8>, EncodeError> {
    match smsc {
        None => Ok(vec![0]),
        Some(address) => address.encode_smsc().ok_or(EncodeError::Unencodable {
            field: "SMSC address",
            reason: "it must be at most 20 digits, *, #, a, b or c",
        }),
    }
}

fn address(address: &Address, field: &'static str) -> Result<Vec<u8>, EncodeError> {
    address.encode_tp().ok_or(EncodeError::Unencodable {
        field,
        reason: "it has a character its type cannot carry, or more than 20 semi-octets",
    })
}

fn write_user_data(
    out: &mut Vec<u8>,
    udh: Option<&UserDataHeader>,
    dcs: Dcs,
    data: &UserData,
) -> Result<(), EncodeError> {
    let header = udh.map(UserDataHeader::to_bytes).unwrap_or_default();
    let mismatch = EncodeError::Unencodable {
        field: "user data",
        reason: "it does not match the data coding scheme",
    };
    let too_long = EncodeError::Unencodable {
        field: "user data",
        reason: "it does not fit in 140 octets",
    };
    let mut user_data = Vec::with_capacity(140);
    let udl = match (data, dcs.is_compressed(), dcs.alphabet()) {
        (UserData::Compressed(bytes), true, _)
        | (UserData::Binary(bytes), false, Alphabet::EightBit) => {
            user_data.extend(header);
            user_data.extend_from_slice(bytes);
            user_data.len()
        }
        (UserData::Text(text), false, Alphabet::Ucs2) => {
            user_data.extend(header);
            ucs2::encode_into(&mut user_data, text.chars());
            user_data.len()
        }
        (UserData::Text(text), false, Alphabet::Gsm7) => {
            let (locking, single) = udh.map(UserDataHeader::languages).unwrap_or_default();
            let tables = Tables::for_languages(locking, single);
            let mut septets = Vec::with_capacity(160);
            for c in text.chars() {
                tables
                    .encode_char(c)
                    .ok_or(EncodeError::Unencodable {
                        field: "user data",
                        reason: "the text has a character the 7-bit tables lack",
                    })?
                    .push_to(&mut septets);
            }
            let udl = pack_user_data(&mut user_data, &header, &septets);
            if udl > 160 {
                return Err(too_long);
            }
            udl
        }
        _ => return Err(mismatch),
    };
    if user_data.len() > 140 {
        return Err(too_long);
    }
    out.push(udl as u8);
    out.extend(user_data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{Pdu, decode_hex, decode_pdu, to_hex};

    /// One case: a DELIVER or STATUS-REPORT PDU that must encode back to itself.
    fn check(hex: &str) {
        let bytes = decode_hex(hex).unwrap();
        let encoded = match decode_pdu(&bytes) {
            Ok(Pdu::Deliver(d)) => encode_deliver(&d),
            Ok(Pdu::StatusReport(r)) => encode_status_report(&r),
            other => panic!("{hex}: {other:?}"),
        };
        assert_eq!(encoded.map(|b| to_hex(&b)).as_deref(), Ok(hex));
    }

    #[test]
    fn decoded_pdus_encode_back() {
        const OA: &str = "0B911346610089F6";
        const TS: &str = "52117021437032";
        for hex in [
            format!("0004{OA}0000{TS}061BD4A6BC4901"),
            format!("0044{OA}0000{TS}0C050003CC0202AE6F399B0C"),
            format!("0044{OA}0000{TS}0C032501015830381D20F800"),
            format!("0044{OA}0004{TS}0E0B05040B8423F00003A803010102"),
            format!("0044{OA}0008{TS}0C0500030102010416D83DDE00"),
            format!("0004{OA}0020{TS}03AABBCC"),
            format!("0024{OA}00F1{TS}05C8329BFD06"),
            "00040BD0C7F7FBCC2E030008521170214370320C041F04400438043204350442".to_owned(),
            "0006000B912110550521F3521170214370325211702143803200".to_owned(),
            "07911326040000F0062A0B912110550521F3521170214370325211702143803246".to_owned(),
            "0006000B912110550521F352117021437032521170214380320007000005C8329BFD06".to_owned(),
            "0026000B912110550521F3521170214370325211702143803221".to_owned(),
        ] {
            check(&hex);
        }
    }

    #[test]
    fn minus_zero_zone_encodes_as_plus_zero() {
        // The published DELIVER's zone octet 08 is "-0 quarters"; it comes back as 00.
        let bytes = decode_hex(
            "07911326040000F0040B911346610089F60000208062917314080CC8329BFD065DDF72363904",
        )
        .unwrap();
        let Ok(Pdu::Deliver(d)) = decode_pdu(&bytes) else {
            panic!("not a DELIVER");
        };
        assert_eq!(
            encode_deliver(&d).map(|b| to_hex(&b)).as_deref(),
            Ok("07911326040000F0040B911346610089F60000208062917314000CC8329BFD065DDF72363904")
        );
    }

    #[test]
    fn mismatched_user_data_is_an_error() {
        let bytes =
            decode_hex("0006000B912110550521F352117021437032521170214380320007000005C8329BFD06")
                .unwrap();
        let Ok(Pdu::StatusReport(mut r)) = decode_pdu(&bytes) else {
            panic!("not a report");
        };
        r.user_data = Some(UserData::Text("Ж".into()));
        assert!(matches!(
            encode_status_report(&r),
            Err(EncodeError::Unencodable {
                field: "user data",
                ..
            })
        ));
        r.user_data = Some(UserData::Binary(vec![1]));
        assert!(matches!(
            encode_status_report(&r),
            Err(EncodeError::Unencodable {
                field: "user data",
                ..
            })
        ));
    }
}
