//! Choosing how a text is encoded and splitting it into the fewest parts
//! (TS 23.040 9.2.3.24.1, TS 23.038 6.2.1.2.4).
//!
//! The rules: 7-bit with the default alphabet when every character is in it or its
//! extension table; otherwise, when national languages are enabled, the locking/single
//! shift combination that needs the fewest parts (its header elements cost room in every
//! part); otherwise UCS-2. A part never ends between an escape and its septet, or between
//! the two halves of a surrogate pair, and every part but the last is filled as far as
//! that allows, which gives the fewest parts (a greedy cut is optimal for splitting a
//! sequence into contiguous pieces of bounded size).

use super::alphabet::{NationalLanguage, Septets, Tables};
use super::pack::udh_septets;

/// The most septets in one SMS (140 octets).
pub(crate) const MAX_SEPTETS: usize = 160;
/// The most user data octets in one SMS.
pub(crate) const MAX_OCTETS: usize = 140;

/// How a text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    /// 7-bit. With both languages `None` this is the plain default alphabet, which every
    /// handset understands; otherwise the header names the national tables.
    Gsm7 {
        locking: Option<NationalLanguage>,
        single: Option<NationalLanguage>,
    },
    /// UCS-2 (UTF-16BE).
    Ucs2,
}

impl TextEncoding {
    /// The plain default alphabet.
    pub const GSM7: TextEncoding = TextEncoding::Gsm7 {
        locking: None,
        single: None,
    };

    /// The number of national language elements the header carries.
    pub(crate) fn language_elements(self) -> usize {
        match self {
            TextEncoding::Gsm7 { locking, single } => {
                usize::from(locking.is_some()) + usize::from(single.is_some())
            }
            TextEncoding::Ucs2 => 0,
        }
    }
}

/// What the encoder will do with a text: its encoding and how many parts it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Plan {
    pub encoding: TextEncoding,
    pub parts: usize,
}

/// The split text: the encoding and each part's payload (septets for 7-bit, octets for
/// UCS-2), header not included.
pub(crate) struct Split {
    pub(crate) encoding: TextEncoding,
    pub(crate) parts: Vec<Vec<u8>>,
}

/// How the text will be sent, without building the parts.
pub(crate) fn plan(text: &str, languages: &[NationalLanguage], wide_reference: bool) -> Plan {
    let choice = choose(text, languages, wide_reference);
    Plan {
        encoding: choice.encoding,
        parts: choice.parts(),
    }
}

/// Splits the text into parts.
pub(crate) fn split(text: &str, languages: &[NationalLanguage], wide_reference: bool) -> Split {
    let choice = choose(text, languages, wide_reference);
    let capacity = choice.capacity();
    let parts = match &choice.units {
        Units::Gsm7(units) => cut(units, capacity, |s| s.len())
            .into_iter()
            .map(|chunk| {
                let mut septets = Vec::with_capacity(capacity);
                chunk.iter().for_each(|s| s.push_to(&mut septets));
                septets
            })
            .collect(),
        Units::Ucs2(chars) => cut(chars, capacity, |c| c.len_utf16())
            .into_iter()
            .map(|chunk| {
                let mut octets = Vec::with_capacity(capacity * 2);
                super::ucs2::encode_into(&mut octets, chunk.iter().copied());
                octets
            })
            .collect(),
    };
    Split {
        encoding: choice.encoding,
        parts,
    }
}

/// The octets of the user data header: UDHL, a concatenation element if the text takes
/// several parts (5 octets, or 6 with a 16-bit reference), and 3 octets per national
/// language element. No elements, no header.
pub(crate) fn header_octets(
    multipart: bool,
    wide_reference: bool,
    language_elements: usize,
) -> usize {
    let concat = match (multipart, wide_reference) {
        (false, _) => 0,
        (true, false) => 5,
        (true, true) => 6,
    };
    let elements = concat + 3 * language_elements;
    if elements == 0 { 0 } else { 1 + elements }
}

/// How many septets (7-bit) or 16-bit units (UCS-2) of text fit in one part.
pub(crate) fn part_capacity(
    encoding: TextEncoding,
    multipart: bool,
    wide_reference: bool,
) -> usize {
    let header = header_octets(multipart, wide_reference, encoding.language_elements());
    match encoding {
        TextEncoding::Gsm7 { .. } => MAX_SEPTETS - udh_septets(header),
        TextEncoding::Ucs2 => (MAX_OCTETS - header) / 2,
    }
}

/// The text's characters in the chosen encoding.
enum Units {
    Gsm7(Vec<Septets>),
    Ucs2(Vec<char>),
}

struct Choice {
    encoding: TextEncoding,
    units: Units,
    single_capacity: usize,
    multi_capacity: usize,
}

impl Choice {
    fn new(encoding: TextEncoding, units: Units, wide_reference: bool) -> Choice {
        Choice {
            encoding,
            units,
            single_capacity: part_capacity(encoding, false, wide_reference),
            multi_capacity: part_capacity(encoding, true, wide_reference),
        }
    }

    fn total(&self) -> usize {
        match &self.units {
            Units::Gsm7(units) => units.iter().map(|s| s.len()).sum(),
            Units::Ucs2(chars) => chars.iter().map(|c| c.len_utf16()).sum(),
        }
    }

    /// The capacity of each part: all in one part if it fits, else the multipart room.
    fn capacity(&self) -> usize {
        if self.total() <= self.single_capacity {
            self.single_capacity
        } else {
            self.multi_capacity
        }
    }

    fn parts(&self) -> usize {
        let capacity = self.capacity();
        match &self.units {
            Units::Gsm7(units) => count(units.iter().map(|s| s.len()), capacity),
            Units::Ucs2(chars) => count(chars.iter().map(|c| c.len_utf16()), capacity),
        }
    }
}

fn choose(text: &str, languages: &[NationalLanguage], wide_reference: bool) -> Choice {
    if let Some(units) = gsm7_units(text, Tables::DEFAULT) {
        return Choice::new(TextEncoding::GSM7, Units::Gsm7(units), wide_reference);
    }
    let mut best: Option<((usize, usize), Choice)> = None;
    for encoding in shift_combinations(languages) {
        let TextEncoding::Gsm7 { locking, single } = encoding else {
            continue;
        };
        let Some(units) = gsm7_units(text, Tables::for_languages(locking, single)) else {
            continue;
        };
        let candidate = Choice::new(encoding, Units::Gsm7(units), wide_reference);
        // Fewest parts first; on a tie, fewer header elements (fewer handsets to confuse).
        let key = (candidate.parts(), encoding.language_elements());
        if best.as_ref().is_none_or(|(best_key, _)| key < *best_key) {
            best = Some((key, candidate));
        }
    }
    match best {
        Some((_, choice)) => choice,
        None => Choice::new(
            TextEncoding::Ucs2,
            Units::Ucs2(text.chars().collect()),
            wide_reference,
        ),
    }
}

/// Every locking/single shift combination the enabled languages allow, the plain default
/// alphabet excluded, in the order the languages were given.
fn shift_combinations(languages: &[NationalLanguage]) -> Vec<TextEncoding> {
    let mut unique: Vec<NationalLanguage> = Vec::new();
    for &lang in languages {
        if !unique.contains(&lang) {
            unique.push(lang);
        }
    }
    let lockings = std::iter::once(None).chain(
        unique
            .iter()
            .filter(|lang| lang.locking_table().is_some())
            .map(|&lang| Some(lang)),
    );
    let mut out = Vec::new();
    for locking in lockings {
        for single in std::iter::once(None).chain(unique.iter().map(|&lang| Some(lang))) {
            if locking.is_some() || single.is_some() {
                out.push(TextEncoding::Gsm7 { locking, single });
            }
        }
    }
    out
}

fn gsm7_units(text: &str, tables: Tables) -> Option<Vec<Septets>> {
    text.chars().map(|c| tables.encode_char(c)).collect()
}

/// The greedy part count for units of the given sizes.
fn count(sizes: impl Iterator<Item = usize>, capacity: usize) -> usize {
    let mut parts = 0;
    let mut used = capacity;
    for size in sizes {
        if used + size > capacity {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    parts
}

/// Cuts units into chunks of at most `capacity`, each filled as far as it goes.
fn cut<T>(units: &[T], capacity: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (index, unit) in units.iter().enumerate() {
        let len = size(unit);
        if used + len > capacity && index > start {
            chunks.push(&units[start..index]);
            start = index;
            used = 0;
        }
        used += len;
    }
    if start < units.len() {
        chunks.push(&units[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use NationalLanguage::*;

    /// One case: text, enabled languages, 16-bit reference, expected encoding and parts.
    fn check(
        text: &str,
        languages: &[NationalLanguage],
        wide: bool,
        encoding: TextEncoding,
        parts: usize,
    ) {
        let got = plan(text, languages, wide);
        assert_eq!(
            got,
            Plan { encoding, parts },
            "{} chars: {:?}",
            text.chars().count(),
            text.get(..40)
        );
        let split = split(text, languages, wide);
        assert_eq!(split.parts.len(), parts);
        assert_eq!(split.encoding, encoding);
    }

    fn gsm(single: Option<NationalLanguage>, locking: Option<NationalLanguage>) -> TextEncoding {
        TextEncoding::Gsm7 { locking, single }
    }

    #[test]
    fn capacities() {
        let gsm7 = TextEncoding::GSM7;
        assert_eq!(part_capacity(gsm7, false, false), 160);
        assert_eq!(part_capacity(gsm7, true, false), 153);
        assert_eq!(part_capacity(gsm7, true, true), 152);
        assert_eq!(part_capacity(TextEncoding::Ucs2, false, false), 70);
        assert_eq!(part_capacity(TextEncoding::Ucs2, true, false), 67);
        assert_eq!(part_capacity(TextEncoding::Ucs2, true, true), 66);
        let one = gsm(Some(Turkish), None);
        let two = gsm(Some(Turkish), Some(Turkish));
        // UDH 4 octets = 5 septets; 7 octets = 8; 9 = 11 (5 fill bits); 12 = 14; 10 = 12; 13 = 15.
        assert_eq!(part_capacity(one, false, false), 155);
        assert_eq!(part_capacity(two, false, false), 152);
        assert_eq!(part_capacity(one, true, false), 149);
        assert_eq!(part_capacity(two, true, false), 146);
        assert_eq!(part_capacity(one, true, true), 148);
        assert_eq!(part_capacity(two, true, true), 145);
    }

    #[test]
    fn boundary_lengths() {
        let gsm7 = TextEncoding::GSM7;
        let ucs2 = TextEncoding::Ucs2;
        check(&"a".repeat(160), &[], false, gsm7, 1);
        check(&"a".repeat(161), &[], false, gsm7, 2);
        check(&"a".repeat(306), &[], false, gsm7, 2);
        check(&"a".repeat(307), &[], false, gsm7, 3);
        check(&"a".repeat(304), &[], true, gsm7, 2);
        check(&"a".repeat(305), &[], true, gsm7, 3);
        check(&"ж".repeat(70), &[], false, ucs2, 1);
        check(&"ж".repeat(71), &[], false, ucs2, 2);
        check(&"ж".repeat(134), &[], false, ucs2, 2);
        check(&"ж".repeat(135), &[], false, ucs2, 3);
        check(&"ж".repeat(132), &[], true, ucs2, 2);
        check(&"ж".repeat(133), &[], true, ucs2, 3);
        check("", &[], false, gsm7, 0);
    }

    #[test]
    fn escapes_and_surrogates_stay_whole() {
        // 152 letters then "€": the escape pair would straddle septets 153/154.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let split = split(&text, &[], false);
        assert_eq!(
            split.parts.iter().map(Vec::len).collect::<Vec<_>>(),
            [152, 12]
        );
        assert_eq!(split.parts[1][..2], [0x1B, 0x65]);
        // 80 "€" = 160 septets: one part; 81 need two (76 + 5 pairs, never 76.5).
        check(&"€".repeat(80), &[], false, TextEncoding::GSM7, 1);
        let split = super::split(&"€".repeat(81), &[], false);
        assert_eq!(
            split.parts.iter().map(Vec::len).collect::<Vec<_>>(),
            [152, 10]
        );
        // 66 "ж" then an emoji: the pair would straddle units 67/68.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        let split = super::split(&text, &[], false);
        assert_eq!(
            split.parts.iter().map(Vec::len).collect::<Vec<_>>(),
            [132, 24]
        );
        // 35 emoji = 70 units: one part.
        check(&"😀".repeat(35), &[], false, TextEncoding::Ucs2, 1);
        check(&"😀".repeat(36), &[], false, TextEncoding::Ucs2, 2);
    }

    #[test]
    fn national_languages() {
        let turkish = "Şifreniz 1234. Lütfen kimseyle paylaşmayın, ğ ı İ ç.";
        // Off: UCS-2.
        check(turkish, &[], false, TextEncoding::Ucs2, 1);
        // On: one part either way; on the tie the single shift alone wins (one element).
        check(turkish, &[Turkish], false, gsm(Some(Turkish), None), 1);
        // Long Turkish text where the locking table saves parts.
        let long = "ğışçĞİŞ ".repeat(40);
        // Single shift only: 600 septets, 5 parts of 149; locking only: 320 septets, 3
        // parts of 149; both: 3 parts of 146. The tie goes to the single element.
        check(&long, &[Turkish], false, gsm(None, Some(Turkish)), 3);
        // A text the default alphabet covers stays plain even when languages are enabled.
        check(
            "Your code is 1234",
            &[Turkish, Portuguese],
            false,
            TextEncoding::GSM7,
            1,
        );
        // Spanish: single shift only.
        check(
            "Código: 1234. Válido 10 minutos.",
            &[Spanish],
            false,
            gsm(Some(Spanish), None),
            1,
        );
        // The Portuguese locking table has "ç" and "ã" in one septet each.
        // "ção " x 100: 600 septets with the single shift (5 parts), 400 with the locking
        // table (3 parts).
        check(
            &"ção ".repeat(100),
            &[Portuguese],
            false,
            gsm(None, Some(Portuguese)),
            3,
        );
        check(
            "Atenção: válida por 10 min.",
            &[Portuguese],
            false,
            gsm(Some(Portuguese), None),
            1,
        );
        // A character no table has: UCS-2 despite the languages.
        check("Şifre 1234 😀", &[Turkish], false, TextEncoding::Ucs2, 1);
    }

    #[test]
    fn combination_order_and_dedup() {
        assert_eq!(shift_combinations(&[]), []);
        assert_eq!(
            shift_combinations(&[Spanish, Turkish, Spanish]),
            [
                gsm(Some(Spanish), None),
                gsm(Some(Turkish), None),
                gsm(None, Some(Turkish)),
                gsm(Some(Spanish), Some(Turkish)),
                gsm(Some(Turkish), Some(Turkish)),
            ]
        );
    }
}
