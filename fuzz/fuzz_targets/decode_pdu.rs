//! Fuzzes the SMS PDU decoder: any bytes must decode to a value or an error, never a
//! panic, with and without the SMSC field, and as hex text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsbridge::sms::{Pdu, decode_hex, decode_pdu, decode_tpdu, encode_deliver, encode_status_report};

fuzz_target!(|data: &[u8]| {
    for decoded in [decode_pdu(data), decode_tpdu(data)] {
        // What decodes must also encode without panicking (it may refuse).
        match decoded {
            Ok(Pdu::Deliver(deliver)) => drop(encode_deliver(&deliver)),
            Ok(Pdu::StatusReport(report)) => drop(encode_status_report(&report)),
            Ok(Pdu::Submit(_)) | Err(_) => {}
        }
    }
    if let Ok(hex) = std::str::from_utf8(data) {
        if let Ok(bytes) = decode_hex(hex) {
            let _ = decode_pdu(&bytes);
        }
    }
});
