//! The SMS codec: any text to SMS-SUBMIT PDU parts and back, as 3GPP TS 23.038 and
//! TS 23.040 define them.
//!
//! It owns the GSM 7-bit alphabets (default, extension and national language shift
//! tables), septet packing, UCS-2, the choice of encoding, splitting into concatenated
//! parts, SMS-SUBMIT encoding, decoding of SUBMIT, DELIVER and STATUS-REPORT PDUs, and
//! E.164 number syntax.
//!
//! Architecture invariant: this module is pure. It does no I/O, never reads the clock and
//! draws no random numbers (the concatenation reference is a parameter), and it never
//! panics on any input: malformed PDUs are `PduError` values.
//!
//! ```
//! use smsbridge::sms::{PhoneNumber, SubmitOptions, Pdu, decode_pdu, encode_submit};
//!
//! let to = PhoneNumber::parse("+4915123456789").unwrap();
//! let parts = encode_submit(&to, "Your code is 1234", 7, &SubmitOptions::default()).unwrap();
//! assert_eq!(parts.len(), 1);
//! // AT+CMGS=<tpdu_len>, then the hex, SMSC field first.
//! assert_eq!(parts[0].tpdu_len(), parts[0].bytes().len() - 1);
//! let Ok(Pdu::Submit(submit)) = decode_pdu(parts[0].bytes()) else { panic!() };
//! assert_eq!(submit.user_data.text(), Some("Your code is 1234"));
//! ```
//!
//! Files: `alphabet` (character ↔ septet tables), `pack` (septets ↔ octets), `ucs2`,
//! `number` (E.164 syntax), `address` (address fields), `timestamp`, `dcs`, `udh`,
//! `status` (TP-ST), `split` (encoding choice and parts), `submit` (SMS-SUBMIT
//! encoding), `decode` (all decoding and hex), `compose` (DELIVER and STATUS-REPORT
//! encoding, for the simulated modem and tests), `reader` (bounds-checked reads).

mod address;
mod alphabet;
mod compose;
mod dcs;
mod decode;
mod number;
mod pack;
mod reader;
mod split;
mod status;
mod submit;
mod timestamp;
mod ucs2;
mod udh;

pub use address::{Address, TypeOfNumber};
pub use alphabet::{NationalLanguage, UnknownLanguage};
pub use compose::{encode_deliver, encode_status_report};
pub use dcs::{Alphabet, Dcs, DcsGroup, Indication, MessageClass};
pub use decode::{
    Deliver, Pdu, PduError, StatusReport, Submit, UserData, ValidityPeriod, decode_hex, decode_pdu,
    decode_tpdu, to_hex,
};
pub use number::{NumberError, PhoneNumber};
pub use split::{Plan, TextEncoding};
pub use status::{DeliveryStatus, StatusCategory};
pub use submit::{
    EncodeError, MAX_PARTS, SubmitOptions, SubmitPdu, count_parts, encode_submit, plan,
    relative_validity, relative_validity_duration,
};
pub use timestamp::Timestamp;
pub use udh::{Concat, InformationElement, Ports, UserDataHeader};
