//! The simulator's own minimal SMS PDU knowledge (3GPP TS 23.040): a structural checker for
//! the SMS-SUBMIT PDUs a client writes after `AT+CMGS`, a light check of injected
//! SMS-DELIVER PDUs, and a builder for SMS-STATUS-REPORT PDUs.
//!
//! It must not use `crate::sms`: the simulator is the codec's test peer, and a checker that
//! shared the codec's code would share its bugs. It decodes no text, ever; it checks that
//! every field is where its neighbours say it is. Pure: no I/O, no clock.

/// What the checker learned from a valid SMS-SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitInfo {
    /// Octets after the SMSC field, the number `AT+CMGS=<len>` must state.
    pub tpdu_len: usize,
    /// TP-MR as written by the client (modems replace it with their own counter).
    pub tp_mr: u8,
    /// The destination, `+` and digits for an international number, digits otherwise.
    pub destination: String,
    /// TP-DA as it appears in the PDU (length, type, BCD octets), reused as TP-RA in the
    /// status report.
    pub(crate) destination_field: Vec<u8>,
    /// TP-SRR: the sender asked for a status report.
    pub status_report_requested: bool,
    /// TP-DCS.
    pub dcs: u8,
    /// TP-UDL as written (septets for the GSM 7-bit alphabet, octets otherwise).
    pub user_data_len: u8,
    /// The concatenation information element of the user data header, if any.
    pub concat: Option<Concat>,
}

/// A concatenated-message information element (TS 23.040 9.2.3.24.1 and .8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    /// The reference shared by all parts (8 or 16 bits).
    pub reference: u16,
    /// How many parts the message has.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

/// Why a PDU was refused. Every variant makes the modem answer `+CMS ERROR: 304`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("the PDU is not an even number of hex digits")]
    BadHex,
    #[error("the PDU is empty")]
    Empty,
    #[error("the SMSC field is malformed")]
    Smsc,
    #[error("AT+CMGS said {declared} octets but the TPDU has {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("the message type indicator is {0}, not SMS-SUBMIT (1)")]
    NotSubmit(u8),
    #[error("the message type indicator is {0}, not SMS-DELIVER (0)")]
    NotDeliver(u8),
    #[error("the PDU ends inside the {0} field")]
    Truncated(&'static str),
    #[error("the destination address is malformed")]
    Address,
    #[error("the protocol identifier {0:#04x} is reserved")]
    Pid(u8),
    #[error("the data coding scheme {0:#04x} is reserved or compressed")]
    Dcs(u8),
    #[error("the validity period is malformed")]
    ValidityPeriod,
    #[error("TP-UDL {udl} needs {expected} octets of user data, the PDU has {actual}")]
    UserDataLength {
        udl: u8,
        expected: usize,
        actual: usize,
    },
    #[error("TP-UDL {0} is more than the user data can hold")]
    UserDataTooLong(u8),
    #[error("the user data header is malformed")]
    Header,
}

/// The alphabet a TP-DCS selects (TS 23.038 clause 4), which decides how TP-UDL counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    Gsm7,
    EightBit,
    Ucs2,
}

/// Checks an SMS-SUBMIT PDU (hex digits, SMSC field first) against the length the client
/// announced with `AT+CMGS=<declared_len>`.
pub fn check_submit(hex: &[u8], declared_len: usize) -> Result<SubmitInfo, PduError> {
    let bytes = decode_hex(hex).ok_or(PduError::BadHex)?;
    let tpdu = split_smsc(&bytes)?;
    if tpdu.len() != declared_len {
        return Err(PduError::LengthMismatch {
            declared: declared_len,
            actual: tpdu.len(),
        });
    }
    let mut r = Reader {
        bytes: tpdu,
        pos: 0,
    };
    let first = r.octet("first octet")?;
    let mti = first & 0x03;
    if mti != 0x01 {
        return Err(PduError::NotSubmit(mti));
    }
    let vpf = (first >> 3) & 0x03;
    let srr = first & 0x20 != 0;
    let udhi = first & 0x40 != 0;
    let tp_mr = r.octet("TP-MR")?;

    let da_start = r.pos;
    let digits = r.octet("TP-DA")?;
    let toa = r.octet("TP-DA")?;
    let octets = r.take(usize::from(digits).div_ceil(2), "TP-DA")?;
    let destination = address_digits(digits, toa, octets).ok_or(PduError::Address)?;
    let destination_field = tpdu.get(da_start..r.pos).unwrap_or_default().to_vec();

    let pid = r.octet("TP-PID")?;
    // TS 23.040 9.2.3.9: bits 7-6 = 10 are reserved.
    if pid & 0xC0 == 0x80 {
        return Err(PduError::Pid(pid));
    }
    let dcs = r.octet("TP-DCS")?;
    let alphabet = alphabet(dcs).ok_or(PduError::Dcs(dcs))?;
    match vpf {
        0 => {}
        // Relative: one octet (TS 23.040 9.2.3.12.1).
        2 => {
            r.octet("TP-VP")?;
        }
        // Absolute: a time stamp in semi-octets (9.2.3.12.2).
        3 => {
            let vp = r.take(7, "TP-VP")?;
            if !timestamp_is_valid(vp) {
                return Err(PduError::ValidityPeriod);
            }
        }
        // Enhanced: seven octets whose first says how to read the rest (9.2.3.12.3).
        _ => {
            let vp = r.take(7, "TP-VP")?;
            if vp.first().is_some_and(|f| f & 0x07 > 4) {
                return Err(PduError::ValidityPeriod);
            }
        }
    }
    let udl = r.octet("TP-UDL")?;
    let ud = r.rest();
    let expected = match alphabet {
        Alphabet::Gsm7 => {
            if udl > 160 {
                return Err(PduError::UserDataTooLong(udl));
            }
            (usize::from(udl) * 7).div_ceil(8)
        }
        Alphabet::EightBit | Alphabet::Ucs2 => {
            if udl > 140 {
                return Err(PduError::UserDataTooLong(udl));
            }
            usize::from(udl)
        }
    };
    if ud.len() != expected {
        return Err(PduError::UserDataLength {
            udl,
            expected,
            actual: ud.len(),
        });
    }
    let concat = if udhi {
        let udhl = usize::from(*ud.first().ok_or(PduError::Header)?);
        let header_octets = udhl + 1;
        let fits = match alphabet {
            Alphabet::Gsm7 => usize::from(udl) * 7 >= header_octets * 8,
            Alphabet::EightBit | Alphabet::Ucs2 => usize::from(udl) >= header_octets,
        };
        if !fits || header_octets > ud.len() {
            return Err(PduError::Header);
        }
        check_header(ud.get(1..header_octets).unwrap_or_default())?
    } else {
        None
    };
    Ok(SubmitInfo {
        tpdu_len: tpdu.len(),
        tp_mr,
        destination,
        destination_field,
        status_report_requested: srr,
        dcs,
        user_data_len: udl,
        concat,
    })
}

/// Checks an SMS-DELIVER PDU (hex digits, SMSC field first) given to the simulator as an
/// incoming message; returns its octets and the TPDU length.
pub fn check_deliver(hex: &[u8]) -> Result<(Vec<u8>, usize), PduError> {
    let bytes = decode_hex(hex).ok_or(PduError::BadHex)?;
    let tpdu = split_smsc(&bytes)?;
    let first = *tpdu.first().ok_or(PduError::Truncated("first octet"))?;
    let mti = first & 0x03;
    if mti != 0x00 {
        return Err(PduError::NotDeliver(mti));
    }
    let len = tpdu.len();
    Ok((bytes, len))
}

/// A calendar time for TP-SCTS / TP-DT, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp {
    pub year: u64,
    pub month: u64,
    pub day: u64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl Timestamp {
    /// The calendar time `unix_secs` seconds after 1970-01-01 00:00:00 UTC.
    pub(crate) fn from_unix(unix_secs: u64) -> Timestamp {
        let mut days = unix_secs / 86_400;
        let rem = unix_secs % 86_400;
        let mut year = 1970;
        loop {
            let len = if is_leap(year) { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let mut month = 1;
        loop {
            let len = month_len(year, month);
            if days < len {
                break;
            }
            days -= len;
            month += 1;
        }
        Timestamp {
            year,
            month,
            day: days + 1,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// The seven semi-octets of TS 23.040 9.2.3.11, time zone 0.
    fn octets(self) -> [u8; 7] {
        [
            semi_octets(self.year % 100),
            semi_octets(self.month),
            semi_octets(self.day),
            semi_octets(self.hour),
            semi_octets(self.minute),
            semi_octets(self.second),
            0x00,
        ]
    }
}

/// Builds an SMS-STATUS-REPORT (TS 23.040 9.2.2.3), SMSC field first, reporting that the
/// message `mr` to `recipient_field` (a TP-DA as sent) ended with TP-Status `status`
/// (TS 23.040 9.2.3.15; 0x00 delivered).
pub(crate) fn status_report(
    smsc: &str,
    mr: u8,
    recipient_field: &[u8],
    submitted: Timestamp,
    discharged: Timestamp,
    status: u8,
) -> Vec<u8> {
    let mut pdu = encode_address_field(smsc);
    // MTI = 10 (status report); bit 2 (TP-MMS) set: no more messages waiting.
    pdu.push(0x06);
    pdu.push(mr);
    pdu.extend_from_slice(recipient_field);
    pdu.extend_from_slice(&submitted.octets());
    pdu.extend_from_slice(&discharged.octets());
    pdu.push(status);
    pdu
}

/// The length of the TPDU of a PDU whose first octet is the SMSC field length.
pub(crate) fn tpdu_len(pdu: &[u8]) -> usize {
    let smsc = pdu.first().map_or(0, |&n| usize::from(n) + 1);
    pdu.len().saturating_sub(smsc)
}

/// Upper-case hex, as modems print PDUs.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

/// Decodes hex digits (either case); `None` for an odd count or a non-hex character.
pub(crate) fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn octet(&mut self, field: &'static str) -> Result<u8, PduError> {
        let b = *self.bytes.get(self.pos).ok_or(PduError::Truncated(field))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let s = self
            .bytes
            .get(self.pos..self.pos + n)
            .ok_or(PduError::Truncated(field))?;
        self.pos += n;
        Ok(s)
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

/// Splits off the SMSC field (TS 27.005 3.1: a length octet, then type and BCD digits;
/// `00` means the SIM's default SMSC) and returns the TPDU.
fn split_smsc(bytes: &[u8]) -> Result<&[u8], PduError> {
    let len = usize::from(*bytes.first().ok_or(PduError::Empty)?);
    if len == 0 {
        return Ok(bytes.get(1..).unwrap_or_default());
    }
    // A type octet and at most ten octets of digits (TS 24.011 8.2.5.1).
    if !(2..=11).contains(&len) {
        return Err(PduError::Smsc);
    }
    let field = bytes.get(1..1 + len).ok_or(PduError::Smsc)?;
    let toa = *field.first().ok_or(PduError::Smsc)?;
    if toa & 0x80 == 0 {
        return Err(PduError::Smsc);
    }
    let digits = field.get(1..).unwrap_or_default();
    if !bcd_is_valid(digits, digits.len() * 2) {
        // The last octet may carry the filler instead of a digit.
        if !bcd_is_valid(digits, digits.len() * 2 - 1) {
            return Err(PduError::Smsc);
        }
    }
    Ok(bytes.get(1 + len..).unwrap_or_default())
}

/// The destination as text, if its length, type and digits are consistent: the type octet
/// has bit 7 set (TS 23.040 9.1.2.5), the numbering type is not alphanumeric (which a
/// submit to a phone number never is), and the semi-octets are decimal digits with a
/// filler `F` completing an odd count.
fn address_digits(count: u8, toa: u8, octets: &[u8]) -> Option<String> {
    if count == 0 || count > 20 || toa & 0x80 == 0 || (toa >> 4) & 0x07 == 0x05 {
        return None;
    }
    let count = usize::from(count);
    if !bcd_is_valid(octets, count) {
        return None;
    }
    let mut s = String::with_capacity(count + 1);
    if (toa >> 4) & 0x07 == 0x01 {
        s.push('+');
    }
    for i in 0..count {
        let octet = octets.get(i / 2)?;
        let nibble = if i % 2 == 0 { octet & 0x0F } else { octet >> 4 };
        s.push(char::from_digit(u32::from(nibble), 10)?);
    }
    Some(s)
}

/// Whether `octets` hold exactly `count` decimal semi-octets, low nibble first, with the
/// high nibble of the last octet `F` when `count` is odd.
fn bcd_is_valid(octets: &[u8], count: usize) -> bool {
    if octets.len() != count.div_ceil(2) {
        return false;
    }
    (0..octets.len() * 2).all(|i| {
        let Some(octet) = octets.get(i / 2) else {
            return false;
        };
        let nibble = if i % 2 == 0 { octet & 0x0F } else { octet >> 4 };
        if i < count {
            nibble <= 9
        } else {
            nibble == 0x0F
        }
    })
}

/// The alphabet of a TP-DCS (TS 23.038 clause 4); `None` for reserved groups and for
/// compressed text, which no SMS gateway sends and whose length can't be checked.
fn alphabet(dcs: u8) -> Option<Alphabet> {
    match dcs >> 4 {
        // General data coding (00xx) and automatic deletion (01xx): bit 5 = compressed,
        // bits 3-2 = alphabet.
        0x0..=0x7 => {
            if dcs & 0x20 != 0 {
                return None;
            }
            match (dcs >> 2) & 0x03 {
                0 => Some(Alphabet::Gsm7),
                1 => Some(Alphabet::EightBit),
                2 => Some(Alphabet::Ucs2),
                _ => None,
            }
        }
        // Message waiting indication, discard or store: GSM 7-bit.
        0xC | 0xD => Some(Alphabet::Gsm7),
        // Message waiting indication, store, UCS-2.
        0xE => Some(Alphabet::Ucs2),
        // Data coding / message class: bit 2 picks 8-bit over GSM 7-bit.
        0xF => Some(if dcs & 0x04 != 0 {
            Alphabet::EightBit
        } else {
            Alphabet::Gsm7
        }),
        _ => None,
    }
}

/// Walks the information elements of a user data header (TS 23.040 9.2.3.24); each must
/// fit, and a concatenation element must be well formed.
fn check_header(header: &[u8]) -> Result<Option<Concat>, PduError> {
    let mut concat = None;
    let mut pos = 0;
    while pos < header.len() {
        let iei = *header.get(pos).ok_or(PduError::Header)?;
        let len = usize::from(*header.get(pos + 1).ok_or(PduError::Header)?);
        let data = header.get(pos + 2..pos + 2 + len).ok_or(PduError::Header)?;
        match (iei, data) {
            (0x00, &[reference, total, seq]) => {
                concat = Some(check_concat(u16::from(reference), total, seq)?);
            }
            (0x08, &[hi, lo, total, seq]) => {
                concat = Some(check_concat(u16::from_be_bytes([hi, lo]), total, seq)?);
            }
            (0x00 | 0x08, _) => return Err(PduError::Header),
            _ => {}
        }
        pos += 2 + len;
    }
    Ok(concat)
}

fn check_concat(reference: u16, total: u8, seq: u8) -> Result<Concat, PduError> {
    if total == 0 || seq == 0 || seq > total {
        return Err(PduError::Header);
    }
    Ok(Concat {
        reference,
        total,
        seq,
    })
}

/// Whether seven octets are a plausible TS 23.040 9.2.3.11 time stamp: decimal
/// semi-octets, except the sign bit of the time zone.
fn timestamp_is_valid(octets: &[u8]) -> bool {
    octets.iter().enumerate().all(|(i, &o)| {
        let o = if i == 6 { o & 0xF7 } else { o };
        o & 0x0F <= 9 && o >> 4 <= 9
    })
}

/// An address field (length in octets, type, BCD digits) for an SMSC number such as
/// `+447785016005`; international when it starts with `+`.
fn encode_address_field(number: &str) -> Vec<u8> {
    let international = number.starts_with('+');
    let digits: Vec<u8> = number
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    let mut field = vec![0, if international { 0x91 } else { 0x81 }];
    for pair in digits.chunks(2) {
        let lo = pair.first().copied().unwrap_or(0x0F);
        let hi = pair.get(1).copied().unwrap_or(0x0F);
        field.push(hi << 4 | lo);
    }
    let len = u8::try_from(field.len() - 1).unwrap_or(0);
    if let Some(first) = field.first_mut() {
        *first = len;
    }
    field
}

fn semi_octets(value: u64) -> u8 {
    let v = u8::try_from(value % 100).unwrap_or(0);
    (v % 10) << 4 | (v / 10)
}

fn is_leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn month_len(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-known SMS-SUBMIT: default SMSC, VPF relative, to +46708251358, GSM 7-bit
    /// "hellohello" (10 septets in 9 octets). TPDU = 1+1+1+1+6+1+1+1+1+9 = 23 octets.
    const HELLO: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";

    fn check(hex: &str, declared: usize, expected: Result<(&str, Option<Concat>), PduError>) {
        let got = check_submit(hex.as_bytes(), declared)
            .map(|info| (info.destination.clone(), info.concat));
        let expected = expected.map(|(d, c)| (d.to_string(), c));
        assert_eq!(got, expected, "PDU {hex}");
    }

    #[test]
    fn accepts_valid_submits() {
        check(HELLO, 23, Ok(("+46708251358", None)));
        check(&HELLO.to_lowercase(), 23, Ok(("+46708251358", None)));
        // An explicit SMSC field (+447785016005) in front of the same TPDU.
        check(
            "079144775810065011000B916407281553F80000AA0AE8329BFD4697D9EC37",
            23,
            Ok(("+46708251358", None)),
        );
        // No validity period (VPF 0), national number (type 0x81), 8-bit data AA BB.
        check("00010004812143000402AABB", 11, Ok(("1234", None)));
        // UCS-2 part 1 of 2 with an 8-bit concatenation header (050003 2A 02 01) and "Hi".
        check(
            "0051000B916407281553F80008AA0A0500032A020100480069",
            24,
            Ok((
                "+46708251358",
                Some(Concat {
                    reference: 0x2A,
                    total: 2,
                    seq: 1,
                }),
            )),
        );
        // GSM 7-bit part 2 of 3 with a 16-bit reference header (06080412340302): 7 octets
        // of header = 56 bits = 8 septets, then "A" (1 septet): UDL 9, 8 octets of UD.
        check(
            "0051000B916407281553F80000AA090608041234030241",
            22,
            Ok((
                "+46708251358",
                Some(Concat {
                    reference: 0x1234,
                    total: 3,
                    seq: 2,
                }),
            )),
        );
    }

    #[test]
    fn refuses_malformed_submits() {
        check(
            "0011000B916407281553F80000AA0AE8329BFD4697D9EC3",
            23,
            Err(PduError::BadHex),
        );
        check(
            "0011000B916407281553F80000AA0AE8329BFD4697D9EC3G",
            23,
            Err(PduError::BadHex),
        );
        check("", 0, Err(PduError::Empty));
        check(
            HELLO,
            24,
            Err(PduError::LengthMismatch {
                declared: 24,
                actual: 23,
            }),
        );
        // An SMSC field longer than TS 24.011 allows, and one whose type lacks bit 7.
        check("0C914477581006501100", 0, Err(PduError::Smsc));
        check(
            "0311447711000B916407281553F80000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::Smsc),
        );
        // MTI 00 (a DELIVER) instead of a SUBMIT.
        check(
            "0010000B916407281553F80000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::NotSubmit(0)),
        );
        // An odd digit count whose last octet has no F filler.
        check(
            "0011000B916407281553380000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::Address),
        );
        // A destination digit that isn't decimal.
        check(
            "0011000B916407281553FA0000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::Address),
        );
        // A type-of-address octet without bit 7.
        check(
            "0011000B116407281553F80000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::Address),
        );
        // A reserved PID.
        check(
            "0011000B916407281553F88000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::Pid(0x80)),
        );
        // A reserved DCS group (1000xxxx).
        check(
            "0011000B916407281553F80080AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::Dcs(0x80)),
        );
        // UDL says 11 septets (10 octets) but 9 octets follow.
        check(
            "0011000B916407281553F80000AA0BE8329BFD4697D9EC37",
            23,
            Err(PduError::UserDataLength {
                udl: 11,
                expected: 10,
                actual: 9,
            }),
        );
        // VPF absolute (0x19) but only one VP octet: the fields shift, UDL no longer fits.
        check(
            "0019000B916407281553F80000AA0AE8329BFD4697D9EC37",
            23,
            Err(PduError::ValidityPeriod),
        );
        // UDHI set, UDH length 10 does not fit in UDL 10 octets.
        check(
            "0051000B916407281553F80008AA0A0A00032A020100480069",
            24,
            Err(PduError::Header),
        );
        // Concatenation element with part 3 of 2.
        check(
            "0051000B916407281553F80008AA0A0500032A020300480069",
            24,
            Err(PduError::Header),
        );
        // Truncated inside the destination.
        check("0011000B9164", 5, Err(PduError::Truncated("TP-DA")));
    }

    #[test]
    fn builds_status_reports() {
        let info = check_submit(HELLO.as_bytes(), 23).expect("valid");
        let t = Timestamp::from_unix(1_735_689_600); // 2025-01-01 00:00:00
        let d = Timestamp::from_unix(1_735_689_600 + 86_400 + 3661); // 2025-01-02 01:01:01
        let pdu = status_report("+447785016005", 7, &info.destination_field, t, d, 0x00);
        assert_eq!(
            encode_hex(&pdu),
            "07914477581006500607\
             0B916407281553F8\
             52101000000000\
             52102010101000\
             00"
        );
        assert_eq!(tpdu_len(&pdu), 25);
    }

    #[test]
    fn converts_unix_time_to_calendar() {
        assert_eq!(
            Timestamp::from_unix(951_782_400),
            Timestamp {
                year: 2000,
                month: 2,
                day: 29,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        assert_eq!(
            Timestamp::from_unix(1_709_251_199),
            Timestamp {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 59
            }
        );
    }
}
