//! The `+CMS ERROR`/`+CME ERROR` code tables (TS 27.005 §3.2.5, TS 27.007 §9.2): each
//! code with its meaning, its retry class and whom it blames. Pure.

use std::fmt;

use crate::at::parse::ErrorCode;

/// Whether an error is worth trying again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retry {
    /// The condition may pass (congestion, no service, SIM busy): try again later, possibly
    /// on another modem.
    Temporary,
    /// Trying the same thing again will fail the same way (unknown subscriber, invalid PDU).
    Permanent,
}

/// Whose fault an error is, which decides what happens to the message and to the modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The message itself (unknown subscriber, invalid PDU): refused for good.
    Message,
    /// A passing condition of the network or the SIM (congestion, SIM busy): retry later.
    Passing,
    /// The modem or its SIM (no SMSC, no SIM, PIN needed, no service, memory full): the
    /// message is retried, on another modem first, and the modem is marked failing.
    Modem,
}

impl Blame {
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Message => "message",
            Blame::Passing => "passing",
            Blame::Modem => "modem",
        }
    }
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

            /// Whose fault this is. A busy SIM (or SIM toolkit) is the SIM's, but passes
            /// by itself (python-gsmmodem issues 10 and 11), so it is a passing condition.
            pub fn blame(&self) -> Blame {
                if self.is_busy() {
                    Blame::Passing
                } else if self.concerns_modem() {
                    Blame::Modem
                } else if self.is_permanent() {
                    Blame::Message
                } else {
                    Blame::Passing
                }
            }

            /// Every listed code as `(code, description, retry class, blame)`, in the
            /// table's order: what the README's table is checked against.
            pub fn table() -> Vec<(u16, &'static str, Retry, Blame)> {
                vec![ $( ($code, $text, Retry::$class, $name::$variant.blame()), )* ]
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
    // TS 24.011 §E.2: 8 and 28 are about the sender (its subscription is barred, its
    // IMSI unknown to the network), not the recipient: another SIM may get through.
    8 => OperatorDeterminedBarring, Permanent, true, "operator determined barring";
    10 => CallBarred, Permanent, false, "call barred";
    21 => ShortMessageTransferRejected, Permanent, false, "short message transfer rejected";
    22 => MemoryCapacityExceeded, Temporary, false, "memory capacity exceeded";
    27 => DestinationOutOfService, Temporary, false, "destination out of order";
    28 => UnidentifiedSubscriber, Temporary, true, "unidentified subscriber";
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
    332 => NetworkTimeout, Temporary, true, "network timeout";
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

impl CmsError {
    fn is_busy(&self) -> bool {
        matches!(self, CmsError::SimBusy | CmsError::SimToolkitBusy)
    }

    /// What the operator can do about a code that blames the modem or its SIM.
    pub fn fix(&self) -> Option<&'static str> {
        let fix = match self {
            // A SIM without an SMSC number answers every send with 330 (Huawei E220:
            // tdelenikas/smslib-v3 PR 12; gammu issue 541).
            CmsError::SmscAddressUnknown | CmsError::NoServiceCentreSubscription => {
                "set `[sms] smsc` to the operator's SMS centre number (or store it on the SIM with AT+CSCA)"
            }
            CmsError::SimNotInserted => "insert a SIM card (the modem sees none)",
            CmsError::SimPinRequired | CmsError::PhSimPinRequired => {
                "set pin_file for this modem, or remove the PIN from the SIM"
            }
            CmsError::SimPukRequired | CmsError::SimPuk2Required | CmsError::SimPin2Required => {
                "unblock the SIM in a phone, then restart smsbridge"
            }
            CmsError::SimFailure | CmsError::SimWrong => "reseat or replace the SIM card",
            CmsError::MemoryFull
            | CmsError::SimStorageFull
            | CmsError::MsMemoryCapacityExceeded
            | CmsError::NoSimStorage
            | CmsError::MemoryFailure => {
                "the modem's SMS storage is full or failing: delete stored messages (AT+CMGD=1,4) or restart the modem"
            }
            CmsError::NoNetworkService | CmsError::NetworkTimeout => {
                "the modem has no network service: check the antenna and coverage, and that the SIM's plan includes SMS (on LTE-only networks, SMS over IMS or SGs)"
            }
            CmsError::OperationNotAllowed | CmsError::OperationNotSupported => {
                "the modem refuses SMS in its current state: check that the SIM's plan includes SMS; restarting the modem often helps"
            }
            CmsError::FacilityNotSubscribed
            | CmsError::OperatorDeterminedBarring
            | CmsError::UnidentifiedSubscriber => {
                "the network refuses SMS from this SIM: check its plan and balance with the operator"
            }
            CmsError::MeFailure | CmsError::SmsServiceReserved | CmsError::ErrorInMs => {
                "the modem failed: restart it (smsbridge re-initialises it with backoff)"
            }
            CmsError::SimDataDownloadError => "reseat or replace the SIM card",
            _ => return None,
        };
        Some(fix)
    }
}

impl CmeError {
    fn is_busy(&self) -> bool {
        matches!(self, CmeError::SimBusy)
    }

    /// What the operator can do about a code that blames the modem or its SIM.
    pub fn fix(&self) -> Option<&'static str> {
        let fix = match self {
            CmeError::SimNotInserted => "insert a SIM card (the modem sees none)",
            CmeError::SimPinRequired | CmeError::PhSimPinRequired => {
                "set pin_file for this modem, or remove the PIN from the SIM"
            }
            CmeError::SimPukRequired
            | CmeError::SimPuk2Required
            | CmeError::SimPin2Required
            | CmeError::IncorrectPassword => "unblock the SIM in a phone, then restart smsbridge",
            CmeError::SimFailure | CmeError::SimWrong => "reseat or replace the SIM card",
            CmeError::MemoryFull | CmeError::MemoryFailure => {
                "the modem's storage is full or failing: delete stored messages or restart the modem"
            }
            CmeError::NoNetworkService | CmeError::EmergencyCallsOnly => {
                "the modem has no network service: check the antenna, coverage and the SIM's plan"
            }
            CmeError::PhoneFailure
            | CmeError::NoConnectionToPhone
            | CmeError::PhoneAdaptorLinkReserved => {
                "the modem failed: restart it (smsbridge re-initialises it with backoff)"
            }
            _ => return None,
        };
        Some(fix)
    }
}

/// What smsbridge does with a message refused with a code of this blame, in the words of
/// the README's `+CMS ERROR` table (checked against it by a test).
pub fn blame_words(blame: Blame) -> &'static str {
    match blame {
        Blame::Message => "fails the message",
        Blame::Passing => "retries later",
        Blame::Modem => "retries on another modem; this modem failing",
    }
}

#[cfg(test)]
mod readme {
    use super::*;

    /// The README's `+CMS ERROR` table, between its markers, cannot disagree with this
    /// table: each row's codes exist here with that meaning and that blame, and every code
    /// that blames the modem has a row.
    #[test]
    fn the_readme_table_matches_the_code() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("<!-- cms-table -->").expect("start marker");
        let end = readme.find("<!-- /cms-table -->").expect("end marker");
        let table = CmsError::table();
        let mut seen = Vec::new();
        let mut problems = Vec::new();
        for row in readme[start..end].lines().filter(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (codes, does) = (cells[1], cells[3]);
            if codes == "code" || codes.starts_with("512") {
                continue;
            }
            for code in codes.split([',', '–']).map(str::trim) {
                let code: u16 = code.parse().expect("a code");
                seen.push(code);
                match table.iter().find(|(c, ..)| *c == code) {
                    None => problems.push(format!("{code}: not in the code's table")),
                    Some((_, _, _, blame)) => {
                        if does != blame_words(*blame) {
                            problems.push(format!(
                                "{code}: README says {does:?}, the code {:?}",
                                blame_words(*blame)
                            ));
                        }
                    }
                }
            }
            // Rows of one code carry the code's meaning.
            if let Ok(code) = codes.parse::<u16>() {
                let meaning = CmsError::from_code(code);
                if !cells[2].eq_ignore_ascii_case(&meaning.describe().replace("(U)", "")) {
                    problems.push(format!(
                        "{code}: README meaning {:?}, the code {:?}",
                        cells[2],
                        meaning.describe()
                    ));
                }
            }
        }
        for (code, _, _, blame) in &table {
            if *blame == Blame::Modem && !seen.contains(code) {
                problems.push(format!("{code}: blames the modem but has no README row"));
            }
        }
        assert!(
            problems.is_empty(),
            "README's CMS table:\n{}",
            problems.join("\n")
        );
    }
}
