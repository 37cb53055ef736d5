//! Address fields (TS 23.040 9.1.2.5 for TP-DA/OA/RA, TS 24.011 8.2.5.1 for the SMSC):
//! type of address, swapped semi-octet (BCD) digits with an F filler, and alphanumeric
//! addresses packed in 7-bit (type 0xD0).
//!
//! This file owns the address octets; what makes a valid destination number is `number`'s.

use std::fmt;

use super::PduError;
use super::alphabet::Tables;
use super::number::PhoneNumber;
use super::pack;
use super::reader::Reader;

/// A decoded address: an originator, destination, recipient or service centre.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub type_of_number: TypeOfNumber,
    /// The numbering plan identification (low four bits of the type octet); 1 is
    /// ISDN/E.164, 0 is unknown (always 0 for alphanumeric addresses).
    pub numbering_plan: u8,
    /// The address as text: `+` and digits for an international number (so it compares
    /// equal to [`PhoneNumber::as_str`]), the digits (with `*`, `#`, `a`, `b`, `c` for the
    /// semi-octets 0xA..0xE) for other numbers, the decoded name for an alphanumeric one.
    pub value: String,
}

/// The type of number of TS 23.040 9.1.2.5 (bits 6..4 of the type of address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeOfNumber {
    Unknown,
    International,
    National,
    NetworkSpecific,
    Subscriber,
    Alphanumeric,
    Abbreviated,
    Reserved,
}

impl TypeOfNumber {
    fn from_bits(bits: u8) -> TypeOfNumber {
        match bits & 0x07 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            5 => TypeOfNumber::Alphanumeric,
            6 => TypeOfNumber::Abbreviated,
            _ => TypeOfNumber::Reserved,
        }
    }

    fn bits(self) -> u8 {
        match self {
            TypeOfNumber::Unknown => 0,
            TypeOfNumber::International => 1,
            TypeOfNumber::National => 2,
            TypeOfNumber::NetworkSpecific => 3,
            TypeOfNumber::Subscriber => 4,
            TypeOfNumber::Alphanumeric => 5,
            TypeOfNumber::Abbreviated => 6,
            TypeOfNumber::Reserved => 7,
        }
    }

    /// A lower-case name for display (`"international"`).
    pub fn name(self) -> &'static str {
        match self {
            TypeOfNumber::Unknown => "unknown",
            TypeOfNumber::International => "international",
            TypeOfNumber::National => "national",
            TypeOfNumber::NetworkSpecific => "network-specific",
            TypeOfNumber::Subscriber => "subscriber",
            TypeOfNumber::Alphanumeric => "alphanumeric",
            TypeOfNumber::Abbreviated => "abbreviated",
            TypeOfNumber::Reserved => "reserved",
        }
    }
}

impl Address {
    /// The international (type 0x91) address of an E.164 number.
    pub fn international(number: &PhoneNumber) -> Address {
        Address {
            type_of_number: TypeOfNumber::International,
            numbering_plan: 1,
            value: number.as_str().to_owned(),
        }
    }

    /// The type of address octet: bit 7 set, type of number, numbering plan.
    pub fn type_octet(&self) -> u8 {
        0x80 | self.type_of_number.bits() << 4 | (self.numbering_plan & 0x0F)
    }

    /// Encodes a TP-DA/OA/RA field: length in useful semi-octets, type, value. `None` if
    /// the value has a character the address type cannot carry, or is too long for the
    /// field (20 semi-octets, TS 23.040 9.1.2.5).
    pub(crate) fn encode_tp(&self) -> Option<Vec<u8>> {
        if self.type_of_number == TypeOfNumber::Alphanumeric {
            let tables = Tables::DEFAULT;
            let mut septets = Vec::new();
            for c in self.value.chars() {
                tables.encode_char(c)?.push_to(&mut septets);
            }
            let mut packed = Vec::new();
            pack::pack_user_data(&mut packed, &[], &septets);
            let semi_octets = (septets.len() * 7).div_ceil(4);
            if semi_octets > 20 {
                return None;
            }
            let mut out = vec![semi_octets as u8, self.type_octet()];
            out.extend(packed);
            return Some(out);
        }
        let digits = self.digits();
        if digits.chars().count() > 20 {
            return None;
        }
        let bcd = encode_bcd(digits)?;
        let mut out = vec![digits.len() as u8, self.type_octet()];
        out.extend(bcd);
        Some(out)
    }

    /// Encodes an SMSC address field (TS 24.011 8.2.5.1): length in octets, type, digits.
    pub(crate) fn encode_smsc(&self) -> Option<Vec<u8>> {
        let bcd = encode_bcd(self.digits())?;
        if bcd.len() > 10 {
            return None;
        }
        let mut out = vec![bcd.len() as u8 + 1, self.type_octet()];
        out.extend(bcd);
        Some(out)
    }

    /// Decodes a TP-DA/OA/RA field.
    pub(crate) fn decode_tp(reader: &mut Reader<'_>) -> Result<Address, PduError> {
        let semi_octets = usize::from(reader.u8("address length")?);
        let type_octet = reader.u8("type of address")?;
        let octets = reader.take(semi_octets.div_ceil(2), "address")?;
        let type_of_number = TypeOfNumber::from_bits(type_octet >> 4);
        let value = if type_of_number == TypeOfNumber::Alphanumeric {
            // TS 23.040 9.1.2.5: the length counts the semi-octets the packed septets
            // occupy, so the septet count is the bits divided by 7, rounded down.
            let septets = pack::unpack(octets, 0, semi_octets * 4 / 7)
                .ok_or(PduError::Truncated { field: "address" })?;
            Tables::DEFAULT.decode(&septets)
        } else {
            decode_bcd(octets, semi_octets, type_of_number)
        };
        Ok(Address::from_parts(type_octet, value))
    }

    /// Decodes the SMSC field that precedes the TPDU; `None` when its length is 0 (the
    /// modem's default SMSC).
    pub(crate) fn decode_smsc(reader: &mut Reader<'_>) -> Result<Option<Address>, PduError> {
        let octets = usize::from(reader.u8("SMSC length")?);
        if octets == 0 {
            return Ok(None);
        }
        let type_octet = reader.u8("SMSC type of address")?;
        let digits = reader.take(octets - 1, "SMSC address")?;
        let type_of_number = TypeOfNumber::from_bits(type_octet >> 4);
        let value = decode_bcd(digits, digits.len() * 2, type_of_number);
        Ok(Some(Address::from_parts(type_octet, value)))
    }

    fn from_parts(type_octet: u8, value: String) -> Address {
        Address {
            type_of_number: TypeOfNumber::from_bits(type_octet >> 4),
            numbering_plan: type_octet & 0x0F,
            value,
        }
    }

    /// The digits of a numeric address, without the `+` of an international one.
    fn digits(&self) -> &str {
        self.value.strip_prefix('+').unwrap_or(&self.value)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// The TP-DA field for an E.164 number: digit count, type 0x91, swapped BCD digits.
pub(crate) fn encode_destination(number: &PhoneNumber) -> Vec<u8> {
    let digits = number.digits();
    let mut out = vec![digits.len() as u8, 0x91];
    // A `PhoneNumber` holds 2 to 15 ASCII digits, all of which have a semi-octet.
    out.extend(encode_bcd(digits).unwrap_or_default());
    out
}

/// The SMSC field for an E.164 number: octet count, type 0x91, swapped BCD digits.
pub(crate) fn encode_smsc(number: &PhoneNumber) -> Vec<u8> {
    Address::international(number)
        .encode_smsc()
        .unwrap_or_else(|| vec![0])
}

/// Swapped semi-octets: the first digit in the low nibble, an F filling an odd count.
fn encode_bcd(digits: &str) -> Option<Vec<u8>> {
    let mut nibbles = Vec::with_capacity(digits.len() + 1);
    for c in digits.chars() {
        nibbles.push(match c {
            '0'..='9' => c as u8 - b'0',
            '*' => 0xA,
            '#' => 0xB,
            'a' => 0xC,
            'b' => 0xD,
            'c' => 0xE,
            _ => return None,
        });
    }
    if nibbles.len() % 2 == 1 {
        nibbles.push(0xF);
    }
    Some(
        nibbles
            .chunks(2)
            .map(|pair| pair.iter().rev().fold(0, |acc, n| acc << 4 | n))
            .collect(),
    )
}

/// Reads `count` semi-octets (low nibble first). An F is a filler and is skipped wherever
/// it appears, since some networks pad with it inside SMSC fields.
fn decode_bcd(octets: &[u8], count: usize, type_of_number: TypeOfNumber) -> String {
    let mut value = String::with_capacity(count + 1);
    if type_of_number == TypeOfNumber::International {
        value.push('+');
    }
    let nibbles = octets.iter().flat_map(|&octet| [octet & 0x0F, octet >> 4]);
    for nibble in nibbles.take(count) {
        match nibble {
            0..=9 => value.push(char::from(b'0' + nibble)),
            0xA => value.push('*'),
            0xB => value.push('#'),
            0xC => value.push('a'),
            0xD => value.push('b'),
            0xE => value.push('c'),
            _ => {}
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One TP address field case: hex, the decoded address, whether it encodes back.
    fn check(hex: &str, type_of_number: TypeOfNumber, numbering_plan: u8, value: &str) {
        let bytes = crate::sms::decode_hex(hex).unwrap();
        let mut reader = Reader::new(&bytes);
        let address = Address::decode_tp(&mut reader).unwrap();
        assert!(reader.is_empty(), "{hex}: octets left over");
        let want = Address {
            type_of_number,
            numbering_plan,
            value: value.to_owned(),
        };
        assert_eq!(address, want, "{hex}");
        assert_eq!(
            address
                .encode_tp()
                .map(|b| crate::sms::to_hex(&b))
                .as_deref(),
            Some(hex),
            "encoding {value}"
        );
    }

    #[test]
    fn numeric_addresses() {
        // An odd digit count ends with an F filler in the high nibble.
        check(
            "0B911346610089F6",
            TypeOfNumber::International,
            1,
            "+31641600986",
        );
        check(
            "0D91947101325476F8",
            TypeOfNumber::International,
            1,
            "+4917102345678",
        );
        check(
            "0C91444704103254",
            TypeOfNumber::International,
            1,
            "+447440012345",
        );
        check("0A811032547698", TypeOfNumber::Unknown, 1, "0123456789");
        check("05A11032F4", TypeOfNumber::National, 1, "01234");
        check("04811A1B", TypeOfNumber::Unknown, 1, "*1#1");
    }

    #[test]
    fn alphanumeric_addresses() {
        // "Google" in 7-bit: 6 septets = 42 bits = 11 semi-octets (10.5 rounded up).
        check("0BD0C7F7FBCC2E03", TypeOfNumber::Alphanumeric, 0, "Google");
        // Seven septets fill 49 bits: 13 semi-octets; 8 septets fill 14 exactly.
        check(
            "0DD0D432BBBC7EB701",
            TypeOfNumber::Alphanumeric,
            0,
            "Telekom",
        );
        check(
            "0ED0C261B0250CBBD7",
            TypeOfNumber::Alphanumeric,
            0,
            "BCA-Bank",
        );
    }

    #[test]
    fn destination_of_a_phone_number() {
        let number = PhoneNumber::parse("+4915123456789").unwrap();
        assert_eq!(
            crate::sms::to_hex(&encode_destination(&number)),
            "0D91945121436587F9"
        );
        let number = PhoneNumber::parse("+447400123456").unwrap();
        assert_eq!(
            crate::sms::to_hex(&encode_destination(&number)),
            "0C91444700214365"
        );
    }

    #[test]
    fn smsc_field() {
        let bytes = crate::sms::decode_hex("07911326040000F0").unwrap();
        let smsc = Address::decode_smsc(&mut Reader::new(&bytes))
            .unwrap()
            .unwrap();
        assert_eq!(smsc.value, "+31624000000");
        assert_eq!(smsc.type_octet(), 0x91);
        let number = PhoneNumber::parse("+31624000000").unwrap();
        assert_eq!(
            crate::sms::to_hex(&encode_smsc(&number)),
            "07911326040000F0"
        );
        assert_eq!(Address::decode_smsc(&mut Reader::new(&[0])).unwrap(), None);
        assert_eq!(
            Address::decode_smsc(&mut Reader::new(&[7, 0x91, 0x13])),
            Err(PduError::Truncated {
                field: "SMSC address"
            })
        );
    }

    #[test]
    fn truncated_addresses_are_errors() {
        assert_eq!(
            Address::decode_tp(&mut Reader::new(&[0x0B, 0x91, 0x13])),
            Err(PduError::Truncated { field: "address" })
        );
        assert_eq!(
            Address::decode_tp(&mut Reader::new(&[0x0B])),
            Err(PduError::Truncated {
                field: "type of address"
            })
        );
    }
}
