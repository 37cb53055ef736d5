//! Destination numbers in E.164 syntax: `+` followed by 2 to 15 digits, the first not 0.
//!
//! This file owns the syntax check only. Whether a number is valid for its country is the
//! service's check (phone-number metadata), not the codec's.

use std::fmt;
use std::str::FromStr;

/// A phone number in E.164 syntax, e.g. `+4915123456789`. It exists only after
/// [`PhoneNumber::parse`] accepted it, so the encoder never sees a malformed number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// Why a string is not a number in E.164 syntax. The messages name the problem and where it
/// is, never the whole number (numbers are sensitive and error messages reach logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the phone number is empty")]
    Empty,
    #[error("the phone number must start with + (E.164 form, e.g. +4915123456789)")]
    MissingPlus,
    #[error("the phone number contains {} at position {position}, only digits may follow the +", describe_char(*.found))]
    InvalidCharacter { found: char, position: usize },
    #[error("the phone number has {digits} digit{}, at least 2", if *.digits == 1 { "" } else { "s" })]
    TooShort { digits: usize },
    #[error("the phone number has {digits} digits, at most 15")]
    TooLong { digits: usize },
    #[error("the phone number's country code cannot start with 0")]
    LeadingZero,
}

impl PhoneNumber {
    /// The most digits E.164 allows after the `+` (ITU-T E.164 clause 6.1).
    pub const MAX_DIGITS: usize = 15;

    /// Checks E.164 syntax: `+`, then 2 to 15 ASCII digits, the first not 0. Positions in
    /// the error count characters from 1 (the `+` is position 1).
    pub fn parse(input: &str) -> Result<PhoneNumber, NumberError> {
        let Some(digits) = input.strip_prefix('+') else {
            return Err(if input.is_empty() {
                NumberError::Empty
            } else {
                NumberError::MissingPlus
            });
        };
        if let Some((index, found)) = digits
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(NumberError::InvalidCharacter {
                found,
                position: index + 2,
            });
        }
        let count = digits.len();
        if count < 2 {
            return Err(NumberError::TooShort { digits: count });
        }
        if count > Self::MAX_DIGITS {
            return Err(NumberError::TooLong { digits: count });
        }
        if digits.starts_with('0') {
            return Err(NumberError::LeadingZero);
        }
        Ok(PhoneNumber(input.to_owned()))
    }

    /// The number with its `+`, e.g. `+4915123456789`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits after the `+`.
    pub fn digits(&self) -> &str {
        self.0.get(1..).unwrap_or_default()
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = NumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

/// Names a character so that invisible ones are readable in an error message.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '+' => "a second +".to_owned(),
        c if c.is_ascii_alphabetic() => format!("the letter {c:?}"),
        c if c.is_ascii_graphic() => format!("{c:?}"),
        c => format!("the character U+{:04X}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = PhoneNumber::parse(input);
        match (got, expected) {
            (Ok(number), Ok(want)) => {
                assert_eq!(number.as_str(), want, "input {input:?}");
                assert_eq!(number.to_string(), want);
                assert_eq!(number.digits(), &want[1..]);
            }
            (Err(err), Err(want)) => assert_eq!(err.to_string(), want, "input {input:?}"),
            (got, want) => panic!("input {input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn accepts_e164_numbers() {
        check("+4915123456789", Ok("+4915123456789"));
        check("+12015550123", Ok("+12015550123"));
        check("+447400123456", Ok("+447400123456"));
        check("+12", Ok("+12"));
        check("+123456789012345", Ok("+123456789012345"));
    }

    #[test]
    fn rejects_with_a_reason() {
        check("", Err("the phone number is empty"));
        check(
            "4915123456789",
            Err("the phone number must start with + (E.164 form, e.g. +4915123456789)"),
        );
        check(
            "+49 151 23456789",
            Err("the phone number contains a space at position 4, only digits may follow the +"),
        );
        check(
            "+49-151",
            Err("the phone number contains '-' at position 4, only digits may follow the +"),
        );
        check(
            "+4915a",
            Err(
                "the phone number contains the letter 'a' at position 6, only digits may follow the +",
            ),
        );
        check(
            "++49",
            Err("the phone number contains a second + at position 2, only digits may follow the +"),
        );
        check(
            "+49\u{0663}",
            Err(
                "the phone number contains the character U+0663 at position 4, only digits may follow the +",
            ),
        );
        check("+", Err("the phone number has 0 digits, at least 2"));
        check("+1", Err("the phone number has 1 digit, at least 2"));
        check(
            "+1234567890123456",
            Err("the phone number has 16 digits, at most 15"),
        );
        check(
            "+0491512345678",
            Err("the phone number's country code cannot start with 0"),
        );
    }

    #[test]
    fn from_str_is_parse() {
        assert_eq!(
            "+12015550123".parse::<PhoneNumber>(),
            PhoneNumber::parse("+12015550123")
        );
    }
}
