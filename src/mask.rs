//! Masking of sensitive values for logs and status pages: phone numbers keep their first
//! three and last two characters (`+12******90`).

/// Masks a phone number for display: `+12015550123` becomes `+12*******23`.
///
/// Numbers of five characters or fewer are masked whole, since keeping five characters
/// of them would reveal them.
pub fn phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..3].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - 5));
    out.extend(&chars[chars.len() - 2..]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_the_middle_of_a_number() {
        assert_eq!(super::phone("+12015550123"), "+12*******23");
        assert_eq!(super::phone("+447400123456"), "+44********56");
    }

    #[test]
    fn masks_short_values_whole() {
        assert_eq!(super::phone("+1234"), "*****");
        assert_eq!(super::phone(""), "");
    }
}
