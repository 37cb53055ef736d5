//! Septet packing of TS 23.038 6.1.2.1.1: 7-bit characters packed into octets, least
//! significant bit first, and the fill bits that align the first character on a septet
//! boundary after a user data header (TS 23.040 9.2.3.24).
//!
//! This file owns bits only; which septets stand for which characters is `alphabet`'s.

/// The number of septets a user data header of `udh_octets` octets (its length octet
/// included) occupies in 7-bit user data: the header is padded with fill bits up to the
/// next septet boundary, so this is the octets' bits divided by 7, rounded up.
pub(crate) fn udh_septets(udh_octets: usize) -> usize {
    (udh_octets * 8).div_ceil(7)
}

/// The number of octets `septets` septets occupy.
pub(crate) fn octets_for_septets(septets: usize) -> usize {
    (septets * 7).div_ceil(8)
}

/// Appends the 7-bit user data after `udh` (the whole header, length octet included, or
/// empty): the header octets, the fill bits, then the packed septets. Returns the TP-UDL
/// value, counted in septets including the header and fill.
pub(crate) fn pack_user_data(out: &mut Vec<u8>, udh: &[u8], septets: &[u8]) -> usize {
    out.extend_from_slice(udh);
    let header_septets = udh_septets(udh.len());
    let fill_bits = header_septets * 7 - udh.len() * 8;
    let mut acc: u32 = 0;
    let mut bits = fill_bits;
    for &septet in septets {
        acc |= u32::from(septet & 0x7F) << bits;
        bits += 7;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    header_septets + septets.len()
}

/// Reads `count` septets from `octets`, starting `skip` septets in (past a header and its
/// fill bits). `None` if the octets end first.
pub(crate) fn unpack(octets: &[u8], skip: usize, count: usize) -> Option<Vec<u8>> {
    if octets.len() < octets_for_septets(skip.checked_add(count)?) {
        return None;
    }
    let mut septets = Vec::with_capacity(count);
    for index in skip..skip + count {
        let bit = index * 7;
        let low = u16::from(*octets.get(bit / 8)?);
        // The septet spills into the next octet only when it starts above bit 1; the last
        // septet may end exactly at the last octet's top bit, so the next octet is optional.
        let high = u16::from(octets.get(bit / 8 + 1).copied().unwrap_or(0));
        septets.push((((high << 8) | low) >> (bit % 8)) as u8 & 0x7F);
    }
    Some(septets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case: septets, header, packed octets (hex), TP-UDL.
    fn check(septets: &[u8], udh: &[u8], hex: &str, udl: usize) {
        let mut packed = Vec::new();
        assert_eq!(pack_user_data(&mut packed, udh, septets), udl, "TP-UDL");
        assert_eq!(crate::sms::to_hex(&packed), hex);
        let skip = udh_septets(udh.len());
        assert_eq!(unpack(&packed, skip, udl - skip).as_deref(), Some(septets));
    }

    fn ascii(text: &str) -> Vec<u8> {
        text.bytes().collect()
    }

    #[test]
    fn packs_without_header() {
        // The classic example: "hellohello" (all its letters sit at their ASCII codes).
        check(&ascii("hellohello"), &[], "E8329BFD4697D9EC37", 10);
        // "Hello World!", as in the widely published SMS-DELIVER example.
        check(&ascii("Hello World!"), &[], "C8329BFD065DDF72363904", 12);
        // Eight septets fill exactly seven octets.
        check(&ascii("12345678"), &[], "31D98C56B3DD70", 8);
        // Seven septets leave seven spare bits in the last octet (TS 23.038 6.1.2.3.1:
        // the receiver relies on TP-UDL, so they stay zero).
        check(&ascii("1234567"), &[], "31D98C56B3DD00", 7);
        check(&[], &[], "", 0);
    }

    #[test]
    fn fill_bits_after_the_header() {
        // 8-bit concatenation header (6 octets = 48 bits): one fill bit, text from septet 7.
        // 'h' = 0x68 is shifted left by one: 0xD0.
        check(
            &ascii("hellohello"),
            &[0x05, 0x00, 0x03, 0x2A, 0x02, 0x01],
            "0500032A0201D06536FB8D2EB3D96F",
            17,
        );
        // 16-bit concatenation header (7 octets = 56 bits): no fill bits, text from septet 8.
        check(
            &ascii("hellohello"),
            &[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01],
            "06080412340201E8329BFD4697D9EC37",
            18,
        );
        // A language shift header (4 octets = 32 bits): three fill bits.
        check(&ascii("A"), &[0x03, 0x25, 0x01, 0x01], "032501010802", 6);
    }

    #[test]
    fn header_sizes_in_septets() {
        for (octets, septets) in [
            (0, 0),
            (4, 5),
            (6, 7),
            (7, 8),
            (9, 11),
            (10, 12),
            (12, 14),
            (13, 15),
        ] {
            assert_eq!(udh_septets(octets), septets, "{octets} octets");
        }
    }

    #[test]
    fn unpack_refuses_short_input() {
        assert_eq!(unpack(&[0xE8, 0x32], 0, 3), None);
        assert_eq!(unpack(&[0xE8, 0x32], 0, 2), Some(vec![0x68, 0x65]));
        assert_eq!(unpack(&[], usize::MAX, 2), None);
    }
}
