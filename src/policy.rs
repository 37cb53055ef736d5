//! Who may receive an SMS (pure): a destination number must be valid for its country by
//! phone-number metadata, of a type that can receive SMS, not premium-rate, and within the
//! configured country allow-list. E.164 syntax is the codec's check and comes first.
//!
//! Premium-rate and non-mobile destinations are refused by default because SMS-pumping
//! fraud sends one-time codes to numbers whose owner is paid per message.

mod metadata;
mod pattern;

use pattern::Territory;

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

/// A number's type by the metadata (libphonenumber's classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberType {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

impl NumberPolicy {
    /// [`check`](Self::check)s the number and returns its canonical E.164 form, the one
    /// to dial, rate-limit and store: `+4407400123456` (a trunk 0 after the country code,
    /// which metadata accepts) becomes `+447400123456`.
    pub fn canonical(&self, e164: &str) -> Result<String, PolicyError> {
        let number = self.checked(e164)?;
        Ok(format!("+{}{}", number.code, number.national))
    }

    /// Checks an E.164 number (already syntax-checked) against the metadata and the policy.
    pub fn check(&self, e164: &str) -> Result<(), PolicyError> {
        self.checked(e164).map(|_| ())
    }

    /// The number parsed once and checked: what both `check` and `canonical` need. The
    /// country allow-list is applied as soon as the calling code is known, before any
    /// pattern is matched; only the patterns of the number's own calling code are read.
    fn checked(&self, e164: &str) -> Result<Parsed, PolicyError> {
        let code = calling_code(e164).ok_or(PolicyError::NotValidForCountry)?;
        if !self.allowed_country_codes.is_empty() && !self.allowed_country_codes.contains(&code) {
            return Err(PolicyError::CountryNotAllowed(code));
        }
        let number = parse(e164).ok_or(PolicyError::NotValidForCountry)?;
        if !number.is_valid() {
            return Err(PolicyError::NotValidForCountry);
        }
        match number.number_type() {
            NumberType::PremiumRate | NumberType::SharedCost if !self.allow_premium_rate => {
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
/// handled as premium-rate above. (The metadata's emergency, short-code, standard-rate and
/// carrier types are never a full number's type: those are refused as invalid.)
fn non_mobile_name(kind: NumberType) -> Option<&'static str> {
    match kind {
        NumberType::FixedLine => Some("fixed-line"),
        NumberType::TollFree => Some("toll-free"),
        NumberType::Pager => Some("pager"),
        NumberType::Uan => Some("company (UAN)"),
        NumberType::Voicemail => Some("voicemail"),
        _ => None,
    }
}

/// A number split into calling code and national significant number, as libphonenumber
/// parses E.164 (the national number keeps its leading zeros, Italian style).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    code: u16,
    national: String,
}

fn territories(code: u16) -> Option<&'static [u16]> {
    metadata::BY_CODE
        .binary_search_by_key(&code, |(c, _)| *c)
        .ok()
        .map(|i| metadata::BY_CODE[i].1)
}

fn territory(index: u16) -> &'static Territory {
    &metadata::TERRITORIES[usize::from(index)]
}

/// The calling code of `+<digits>`: the first 1 to 3 digits that are one.
fn calling_code(e164: &str) -> Option<u16> {
    let digits = e164.strip_prefix('+')?;
    if digits.len() <= 2 || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    (1..=3).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        territories(code).map(|_| code)
    })
}

/// The territory a national number belongs to among those of its calling code.
fn source_for(code: u16, national: &str) -> Option<&'static Territory> {
    let list = territories(code)?;
    if list.len() == 1 {
        return Some(territory(list[0]));
    }
    list.iter().map(|&i| territory(i)).find(|t| match t.leading_digits {
        Some(leading) => pattern::prefix_match(leading, national),
        None => number_type(t, national) != NumberType::Unknown,
    })
}

/// Parses `+<digits>` as libphonenumber does: the calling code, then the territory's
/// national prefix (and carrier code) stripped.
fn parse(e164: &str) -> Option<Parsed> {
    let code = calling_code(e164)?;
    let mut national = e164[1 + code.to_string().len()..].to_owned();
    if let Some(meta) = source_for(code, national.trim_start_matches('0')) {
        let mut potential = strip_national_prefix(meta, &national);
        if let Some(prefix) = meta.national_prefix {
            if let Some(rest) = potential.strip_prefix(prefix) {
                potential = rest.to_owned();
            }
        }
        if !too_short(meta, &potential) {
            national = potential;
        }
    }
    if national.len() < 2 || national.len() > 17 {
        return None;
    }
    // As a number, with its leading zeros counted apart: all zeros is no number.
    let zeros = national.bytes().take_while(|&b| b == b'0').count();
    let value: u64 = national[zeros..].parse().ok()?;
    if value >= 1 << 56 {
        return None;
    }
    Some(Parsed { code, national })
}

/// The national prefix for parsing (and its transform rule) applied.
fn strip_national_prefix(meta: &Territory, national: &str) -> String {
    let Some(parsing) = meta.prefix_for_parsing else {
        if let Some(prefix) = meta.national_prefix {
            if let Some(rest) = national.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
        return national.to_owned();
    };
    let Some(caps) = pattern::captures(parsing, national) else {
        return national.to_owned();
    };
    let viable = meta.general.is_match(national);
    let last = caps.get(national, caps.len() - 1);
    match meta.transform {
        Some(transform) if last.is_some() => {
            let transformed = caps.replace(national, transform);
            if viable && !meta.general.is_match(&transformed) {
                return national.to_owned();
            }
            transformed
        }
        _ => national[caps.end()..].to_owned(),
    }
}

/// libphonenumber's length check for the general description says "too short".
fn too_short(meta: &Territory, national: &str) -> bool {
    let possible = meta.general.lengths;
    let length = national.len() as u16;
    if possible.is_empty() || meta.general.local.contains(&length) {
        return false;
    }
    length < possible[0]
}

impl Parsed {
    /// The national number without its leading zeros.
    fn value(&self) -> &str {
        self.national.trim_start_matches('0')
    }

    fn is_valid(&self) -> bool {
        source_for(self.code, &self.national)
            .is_some_and(|meta| number_type(meta, &self.national) != NumberType::Unknown)
    }

    fn number_type(&self) -> NumberType {
        match source_for(self.code, self.value()) {
            Some(meta) => number_type(meta, self.value()),
            None => NumberType::Unknown,
        }
    }
}

/// libphonenumber's classification, in its order of precedence.
fn number_type(meta: &Territory, value: &str) -> NumberType {
    if !meta.general.is_match(value) {
        return NumberType::Unknown;
    }
    let is = |desc: &Option<pattern::Desc>| desc.as_ref().is_some_and(|d| d.is_match(value));
    let ordered = [
        (&meta.premium_rate, NumberType::PremiumRate),
        (&meta.toll_free, NumberType::TollFree),
        (&meta.shared_cost, NumberType::SharedCost),
        (&meta.voip, NumberType::Voip),
        (&meta.personal_number, NumberType::PersonalNumber),
        (&meta.pager, NumberType::Pager),
        (&meta.uan, NumberType::Uan),
        (&meta.voicemail, NumberType::Voicemail),
    ];
    if let Some((_, kind)) = ordered.iter().find(|(desc, _)| is(desc)) {
        return *kind;
    }
    if is(&meta.fixed_line) {
        if meta.fixed_line_is_mobile || is(&meta.mobile) {
            return NumberType::FixedLineOrMobile;
        }
        return NumberType::FixedLine;
    }
    if is(&meta.mobile) {
        return NumberType::Mobile;
    }
    NumberType::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision the policy made with the `phonenumber` crate before the compact table:
    /// the reference the table is tested against.
    fn crate_decision(policy: &NumberPolicy, e164: &str) -> Result<String, PolicyError> {
        use phonenumber::Type;
        use phonenumber::metadata::DATABASE;
        let number = phonenumber::parse(None, e164).map_err(|_| PolicyError::NotValidForCountry)?;
        if !number.is_valid() {
            return Err(PolicyError::NotValidForCountry);
        }
        let code = number.code().value();
        if !policy.allowed_country_codes.is_empty() && !policy.allowed_country_codes.contains(&code) {
            return Err(PolicyError::CountryNotAllowed(code));
        }
        let kind = number.number_type(&DATABASE);
        let refused = |name| Err(PolicyError::CannotReceiveSms(name));
        match kind {
            Type::PremiumRate | Type::SharedCost if !policy.allow_premium_rate => {
                return Err(PolicyError::PremiumRate);
            }
            Type::FixedLine if !policy.allow_non_mobile => return refused("fixed-line"),
            Type::TollFree if !policy.allow_non_mobile => return refused("toll-free"),
            Type::Pager if !policy.allow_non_mobile => return refused("pager"),
            Type::Uan if !policy.allow_non_mobile => return refused("company (UAN)"),
            Type::Voicemail if !policy.allow_non_mobile => return refused("voicemail"),
            Type::Emergency | Type::ShortCode | Type::StandardRate | Type::Carrier
                if !policy.allow_non_mobile =>
            {
                return refused("service");
            }
            _ => {}
        }
        Ok(number.format().mode(phonenumber::Mode::E164).to_string())
    }

    /// Numbers to compare on, grouped by calling code: every example number of every type
    /// of every territory with variations (a digit changed, one dropped, one added, a
    /// trunk 0 or the national prefix inserted), and pseudo-random digits of every length.
    fn comparison_numbers() -> Vec<String> {
        let mut numbers = Vec::new();
        let mut seed: u64 = 0x5eed_1234_abcd_0001;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        let mut codes: Vec<u16> = metadata::BY_CODE.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        for code in codes {
            let metas = phonenumber::metadata::DATABASE.by_code(&code).unwrap_or_default();
            for meta in metas {
                let d = meta.descriptors();
                let examples = [
                    d.general(), d.fixed_line().unwrap_or(d.general()),
                    d.mobile().unwrap_or(d.general()), d.toll_free().unwrap_or(d.general()),
                    d.premium_rate().unwrap_or(d.general()), d.shared_cost().unwrap_or(d.general()),
                    d.personal_number().unwrap_or(d.general()), d.voip().unwrap_or(d.general()),
                    d.pager().unwrap_or(d.general()), d.uan().unwrap_or(d.general()),
                    d.voicemail().unwrap_or(d.general()),
                ];
                for example in examples.iter().filter_map(|d| d.example()) {
                    let n = example.to_owned();
                    numbers.push(format!("+{code}{n}"));
                    numbers.push(format!("+{code}0{n}"));
                    if let Some(prefix) = meta.national_prefix() {
                        numbers.push(format!("+{code}{prefix}{n}"));
                    }
                    numbers.push(format!("+{code}{}", &n[..n.len() - 1]));
                    numbers.push(format!("+{code}{n}{}", next() % 10));
                    let mut changed = n.clone().into_bytes();
                    let at = next() % changed.len();
                    changed[at] = b'0' + (next() % 10) as u8;
                    numbers.push(format!("+{code}{}", String::from_utf8(changed).unwrap()));
                }
            }
            for _ in 0..60 {
                let len = 1 + next() % 14;
                let digits: String = (0..len).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
                numbers.push(format!("+{code}{digits}"));
            }
        }
        // Digits that start with no calling code, or too few.
        numbers.extend(["+28123456789", "+999123456", "+12", "+123", "+4400000000"].map(String::from));
        numbers.retain(|n| n.len() <= 16);
        numbers
    }

    #[test]
    fn the_compact_table_decides_as_the_phonenumber_crate_does() {
        let policies = [
            NumberPolicy::default(),
            NumberPolicy { allow_premium_rate: true, allow_non_mobile: true, ..NumberPolicy::default() },
        ];
        let numbers = comparison_numbers();
        assert!(numbers.len() > 15_000, "{} numbers", numbers.len());
        let mut accepted = 0;
        for number in &numbers {
            for policy in &policies {
                let expected = crate_decision(policy, number);
                accepted += usize::from(expected.is_ok());
                assert_eq!(policy.canonical(number), expected, "{number} with {policy:?}");
            }
        }
        // The comparison must cover both answers, not only refusals.
        assert!(accepted > 5_000, "{accepted} accepted");
    }

    #[test]
    fn every_pattern_of_the_table_compiles() {
        for t in metadata::TERRITORIES {
            let descs = [
                Some(&t.general), t.fixed_line.as_ref(), t.mobile.as_ref(), t.toll_free.as_ref(),
                t.premium_rate.as_ref(), t.shared_cost.as_ref(), t.personal_number.as_ref(),
                t.voip.as_ref(), t.pager.as_ref(), t.uan.as_ref(), t.voicemail.as_ref(),
            ];
            for d in descs.into_iter().flatten() {
                assert!(pattern::compiles(d.pattern), "{}: {}", t.id, d.pattern);
            }
            for p in [t.leading_digits, t.prefix_for_parsing].into_iter().flatten() {
                assert!(pattern::compiles(p), "{}: {p}", t.id);
            }
        }
    }

    #[test]
    fn the_allow_list_is_checked_before_validation() {
        let policy = NumberPolicy {
            allowed_country_codes: vec![44],
            ..NumberPolicy::default()
        };
        // Invalid for its country, but refused for the country first.
        check(&policy, "+15551234567", Err(PolicyError::CountryNotAllowed(1)));
    }

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
