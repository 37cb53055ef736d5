//! Who may receive an SMS (pure): a destination number must be valid for its country by
//! phone-number metadata, of a type that can receive SMS, not premium-rate, and within the
//! configured country allow-list. E.164 syntax is the codec's check and comes first.
//!
//! Premium-rate and non-mobile destinations are refused by default because SMS-pumping
//! fraud sends one-time codes to numbers whose owner is paid per message.

use phonenumber::Type;
use phonenumber::metadata::DATABASE;

/// The configurable part of the destination check.
#[derive(Debug, Clone, Default)]
pub struct NumberPolicy {
    /// Calling codes (1, 44, 49, ...) that may receive codes; empty means all.
    pub allowed_country_codes: Vec<u16>,
    /// Let premium-rate and shared-cost numbers through.
    pub allow_premium_rate: bool,
    /// Let numbers through whose type cannot normally receive SMS (fixed line, toll-free,
    /// pager, UAN, voicemail).
    pub allow_non_mobile: bool,
}

/// Why a destination was refused, in words fit for the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("phone number is not a valid number for its country")]
    NotValidForCountry,
    #[error("phone number country code +{0} is not allowed")]
    CountryNotAllowed(u16),
    #[error("phone number is a premium-rate number")]
    PremiumRate,
    #[error("phone number is a {0} number, which cannot receive SMS")]
    CannotReceiveSms(&'static str),
}

impl NumberPolicy {
    /// [`check`](Self::check)s the number and returns its canonical E.164 form, the one
    /// to dial, rate-limit and store: `+4407400123456` (a trunk 0 after the country code,
    /// which metadata accepts) becomes `+447400123456`.
    pub fn canonical(&self, e164: &str) -> Result<String, PolicyError> {
        let number = self.checked(e164)?;
        Ok(number.format().mode(phonenumber::Mode::E164).to_string())
    }

    /// Checks an E.164 number (already syntax-checked) against the metadata and the policy.
    pub fn check(&self, e164: &str) -> Result<(), PolicyError> {
        self.checked(e164).map(|_| ())
    }

    /// The number parsed once and checked: what both `check` and `canonical` need.
    fn checked(&self, e164: &str) -> Result<phonenumber::PhoneNumber, PolicyError> {
        let number = phonenumber::parse(None, e164).map_err(|_| PolicyError::NotValidForCountry)?;
        if !number.is_valid() {
            return Err(PolicyError::NotValidForCountry);
        }
        let code = number.code().value();
        if !self.allowed_country_codes.is_empty() && !self.allowed_country_codes.contains(&code) {
            return Err(PolicyError::CountryNotAllowed(code));
        }
        match number.number_type(&DATABASE) {
            Type::PremiumRate | Type::SharedCost if !self.allow_premium_rate => {
                Err(PolicyError::PremiumRate)
            }
            kind if !self.allow_non_mobile => match non_mobile_name(kind) {
                Some(name) => Err(PolicyError::CannotReceiveSms(name)),
                None => Ok(number),
            },
            _ => Ok(number),
        }
    }
}

/// Names the number types that cannot normally receive SMS; `None` for the ones that can
/// (mobile, fixed-line-or-mobile where metadata can't tell, personal, VoIP) or are
/// handled as premium-rate above.
fn non_mobile_name(kind: Type) -> Option<&'static str> {
    match kind {
        Type::FixedLine => Some("fixed-line"),
        Type::TollFree => Some("toll-free"),
        Type::Pager => Some("pager"),
        Type::Uan => Some("company (UAN)"),
        Type::Voicemail => Some("voicemail"),
        Type::Emergency | Type::ShortCode | Type::StandardRate | Type::Carrier => Some("service"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_drops_a_trunk_zero_after_the_country_code() {
        let policy = NumberPolicy::default();
        assert_eq!(
            policy.canonical("+4407400123456").as_deref(),
            Ok("+447400123456")
        );
        assert_eq!(
            policy.canonical("+447400123456").as_deref(),
            Ok("+447400123456")
        );
        assert_eq!(
            policy.canonical("+12015550123").as_deref(),
            Ok("+12015550123")
        );
        assert!(policy.canonical("+1555000").is_err());
    }

    fn check(policy: &NumberPolicy, number: &str, expected: Result<(), PolicyError>) {
        assert_eq!(policy.check(number), expected, "{number}");
    }

    #[test]
    fn accepts_mobile_and_ambiguous_numbers() {
        let policy = NumberPolicy::default();
        for number in [
            "+12015550123",
            "+447400123456",
            "+4915123456789",
            "+33612345678",
        ] {
            check(&policy, number, Ok(()));
        }
    }

    #[test]
    fn refuses_numbers_invalid_for_their_country() {
        let policy = NumberPolicy::default();
        check(
            &policy,
            "+15551234567",
            Err(PolicyError::NotValidForCountry),
        );
        check(&policy, "+4412", Err(PolicyError::NotValidForCountry));
    }

    #[test]
    fn refuses_premium_rate_unless_allowed() {
        let premium = "+19005550123";
        check(
            &NumberPolicy::default(),
            premium,
            Err(PolicyError::PremiumRate),
        );
        let lenient = NumberPolicy {
            allow_premium_rate: true,
            ..NumberPolicy::default()
        };
        check(&lenient, premium, Ok(()));
    }

    #[test]
    fn refuses_fixed_line_unless_allowed() {
        let landline = "+442079460000";
        check(
            &NumberPolicy::default(),
            landline,
            Err(PolicyError::CannotReceiveSms("fixed-line")),
        );
        let lenient = NumberPolicy {
            allow_non_mobile: true,
            ..NumberPolicy::default()
        };
        check(&lenient, landline, Ok(()));
    }

    #[test]
    fn applies_the_country_allow_list() {
        let policy = NumberPolicy {
            allowed_country_codes: vec![44, 49],
            ..NumberPolicy::default()
        };
        check(&policy, "+447400123456", Ok(()));
        check(
            &policy,
            "+12015550123",
            Err(PolicyError::CountryNotAllowed(1)),
        );
    }
}
