//! The SMS codec (pure, no I/O): GSM 03.38 alphabet, septet packing, UCS-2, splitting into
//! concatenated parts, SMS-SUBMIT encoding, and decoding of SUBMIT, DELIVER and
//! STATUS-REPORT PDUs.
//!
//! (Placeholder types: the codec issue replaces this file.)

/// One encoded SMS-SUBMIT part, ready for `AT+CMGS=<tpdu_len>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    bytes: Vec<u8>,
    tpdu_len: usize,
}

/// A decoded SMS-STATUS-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub message_reference: u8,
}
