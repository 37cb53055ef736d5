//! UCS-2 user data (TS 23.038 6.2.3): big-endian UTF-16, so characters outside the Basic
//! Multilingual Plane (most emoji) take a surrogate pair of two 16-bit units.
//!
//! This file owns the conversion between text and octets; `split` keeps a surrogate pair
//! within one part.

/// Appends the UTF-16BE octets of `text`.
pub(crate) fn encode_into(out: &mut Vec<u8>, text: impl IntoIterator<Item = char>) {
    let mut units = [0u16; 2];
    for c in text {
        for unit in c.encode_utf16(&mut units) {
            out.extend(unit.to_be_bytes());
        }
    }
}

/// Decodes UTF-16BE octets; `None` if their number is odd. A lone surrogate (another
/// sender may split a pair across parts) becomes U+FFFD rather than an error, so the rest
/// of the text survives.
pub(crate) fn decode(octets: &[u8]) -> Option<String> {
    if octets.len() % 2 != 0 {
        return None;
    }
    let units = octets
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    Some(
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, hex: &str) {
        let mut octets = Vec::new();
        encode_into(&mut octets, text.chars());
        assert_eq!(crate::sms::to_hex(&octets), hex, "encoding {text:?}");
        assert_eq!(decode(&octets).as_deref(), Some(text), "decoding {hex}");
    }

    #[test]
    fn round_trips() {
        check("", "");
        check("Hi", "00480069");
        check("Привет", "041F04400438043204350442");
        check("你好", "4F60597D");
        // U+1F600 is outside the BMP: the surrogate pair D83D DE00.
        check("😀", "D83DDE00");
        // A family (ZWJ sequence) and a flag (two regional indicators).
        check("👨\u{200D}👩", "D83DDC68200DD83DDC69");
        check("🇩🇪", "D83CDDE9D83CDDEA");
    }

    #[test]
    fn odd_lengths_and_lone_surrogates() {
        assert_eq!(decode(&[0x00]), None);
        assert_eq!(decode(&[0xD8, 0x3D]).as_deref(), Some("\u{FFFD}"));
        assert_eq!(
            decode(&[0xDE, 0x00, 0x00, 0x41]).as_deref(),
            Some("\u{FFFD}A")
        );
    }
}
