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
