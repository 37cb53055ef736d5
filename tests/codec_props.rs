//! Property tests of the SMS codec: any text survives encode then decode; no part is
//! too long; the number of parts is the minimum, as counted by a brute-force search that
//! shares no code with the encoder (its own copies of the TS 23.038 tables, its own
//! capacity arithmetic, dynamic programming instead of a greedy cut); the decoders never
//! panic.

use proptest::prelude::*;
use smsbridge::sms::{
    Address, DeliveryStatus, InformationElement, NationalLanguage, Pdu, PhoneNumber, StatusReport,
    SubmitOptions, SubmitPdu, TextEncoding, Timestamp, TypeOfNumber, decode_hex, decode_pdu,
    decode_tpdu, encode_status_report, encode_submit, plan, to_hex,
};

// ---------------------------------------------------------------------------------------
// The test's own copy of the tables (TS 23.038 6.2.1, 6.2.1.1, A.2.1-A.2.3, A.3.1, A.3.3),
// written as whole 128-character strings; U+001B stands for the escape position.

const DEFAULT: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1B}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const TURKISH_LOCKING: &str = "@£$¥€éùıòÇ\nĞğ\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1B}ŞşßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
İABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§çabcdefghijklmnopqrstuvwxyzäöñüà";
const PORTUGUESE_LOCKING: &str = "@£$¥êéúíóç\nÔô\rÁáΔ_ªÇÀ∞^\\€Ó|\u{1B}ÂâÊÉ !\"#º%&'()*+,-./0123456789:;<=>?\
ÍABCDEFGHIJKLMNOPQRSTUVWXYZÃÕÚÜ§~abcdefghijklmnopqrstuvwxyzãõ`üà";
const EXTENSION: &str = "\u{0C}^{}\\[~]|€";
const TURKISH_SINGLE: &str = "ĞİŞçğış";
const SPANISH_SINGLE: &str = "çÁÍÓÚáíóú";
const PORTUGUESE_SINGLE: &str = "êçÔôÁáΦΓΩΠΨΣΘÊÀÍÓÚÃÕÂíóúãõâ";

fn locking_set(lang: Option<NationalLanguage>) -> Option<&'static str> {
    match lang {
        None => Some(DEFAULT),
        Some(NationalLanguage::Turkish) => Some(TURKISH_LOCKING),
        Some(NationalLanguage::Portuguese) => Some(PORTUGUESE_LOCKING),
        Some(NationalLanguage::Spanish) => None,
    }
}

fn single_set(lang: Option<NationalLanguage>) -> String {
    let national = match lang {
        None => "",
        Some(NationalLanguage::Turkish) => TURKISH_SINGLE,
        Some(NationalLanguage::Spanish) => SPANISH_SINGLE,
        Some(NationalLanguage::Portuguese) => PORTUGUESE_SINGLE,
    };
    format!("{EXTENSION}{national}")
}

/// The septets each character costs with these tables, or `None` if one is missing.
fn septet_costs(text: &str, locking: &str, single: &str) -> Option<Vec<usize>> {
    text.chars()
        .map(|c| {
            if c != '\u{1B}' && locking.contains(c) {
                Some(1)
            } else if single.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect()
}

/// Septets left for text after a header of `octets` octets (UDHL included), header padded
/// to a septet boundary.
fn septets_after(octets: usize) -> usize {
    if octets == 0 {
        160
    } else {
        160 - (octets * 8).div_ceil(7)
    }
}

/// The fewest parts, by dynamic programming over every cut position.
fn min_parts(costs: &[usize], single: usize, multi: usize) -> usize {
    let total: usize = costs.iter().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let mut best = vec![usize::MAX; costs.len() + 1];
    best[0] = 0;
    for end in 1..=costs.len() {
        let mut size = 0;
        for start in (0..end).rev() {
            size += costs[start];
            if size > multi {
                break;
            }
            if best[start] != usize::MAX {
                best[end] = best[end].min(best[start] + 1);
            }
        }
    }
    best[costs.len()]
}

/// What the encoder must do, computed independently: (kind, parts), kind 0 = plain
/// 7-bit, 1 = 7-bit with national tables, 2 = UCS-2.
fn expected(text: &str, opts: &SubmitOptions) -> (u8, usize) {
    let concat = if opts.concat_16bit { 6 } else { 5 };
    if let Some(costs) = septet_costs(text, DEFAULT, EXTENSION) {
        return (0, min_parts(&costs, 160, septets_after(1 + concat)));
    }
    let mut best: Option<usize> = None;
    let languages =
        || std::iter::once(None).chain(opts.national_languages.iter().copied().map(Some));
    for locking in languages() {
        for single in languages() {
            if locking.is_none() && single.is_none() {
                continue;
            }
            let Some(locking_chars) = locking_set(locking) else {
                continue;
            };
            let Some(costs) = septet_costs(text, locking_chars, &single_set(single)) else {
                continue;
            };
            let elements = 3 * (usize::from(locking.is_some()) + usize::from(single.is_some()));
            let parts = min_parts(
                &costs,
                septets_after(1 + elements),
                septets_after(1 + concat + elements),
            );
            best = Some(best.map_or(parts, |b| b.min(parts)));
        }
    }
    if let Some(parts) = best {
        return (1, parts);
    }
    let units: Vec<usize> = text.chars().map(char::len_utf16).collect();
    (2, min_parts(&units, 70, (140 - 1 - concat) / 2))
}

// ---------------------------------------------------------------------------------------
// Decoding the parts back.

const TO: &str = "+4915123456789";

/// Decodes every part, checks what every part must satisfy, and returns the joined text.
fn decode_parts(
    pdus: &[SubmitPdu],
    reference: u16,
    opts: &SubmitOptions,
) -> Result<String, TestCaseError> {
    let total = pdus.len();
    let mut text = String::new();
    for (index, pdu) in pdus.iter().enumerate() {
        let bytes = pdu.bytes();
        let smsc_len = usize::from(bytes[0]) + 1;
        prop_assert_eq!(pdu.tpdu_len(), bytes.len() - smsc_len);
        prop_assert_eq!(pdu.hex(), to_hex(bytes));
        // TPDU: first octet, MR, DA (2 + 7 octets for 13 digits), PID, DCS, VP, UDL, UD.
        let user_data_octets = pdu.tpdu_len() - (1 + 1 + 9 + 3 + 1);
        prop_assert!(
            user_data_octets <= 140,
            "part {} has {} octets of user data",
            index + 1,
            user_data_octets
        );
        let submit = match decode_pdu(bytes) {
            Ok(Pdu::Submit(submit)) => submit,
            other => {
                return Err(TestCaseError::fail(format!(
                    "part {}: {other:?}",
                    index + 1
                )));
            }
        };
        prop_assert_eq!(&submit.destination.value, TO);
        prop_assert_eq!(submit.status_report_request, opts.status_report);
        let concat = submit.udh.as_ref().and_then(|udh| udh.concat());
        if total == 1 {
            prop_assert_eq!(concat, None);
        } else {
            let concat = concat.ok_or_else(|| TestCaseError::fail("no concatenation element"))?;
            prop_assert_eq!(usize::from(concat.total), total);
            prop_assert_eq!(usize::from(concat.sequence), index + 1);
            prop_assert_eq!(concat.wide_reference, opts.concat_16bit);
            let want = if opts.concat_16bit {
                reference
            } else {
                reference & 0xFF
            };
            prop_assert_eq!(concat.reference, want);
        }
        for element in submit.udh.iter().flat_map(|udh| &udh.elements) {
            if let InformationElement::SingleShift(id) | InformationElement::LockingShift(id) =
                element
            {
                let lang = NationalLanguage::from_id(*id);
                prop_assert!(
                    lang.is_some_and(|l| opts.national_languages.contains(&l)),
                    "language {}",
                    id
                );
            }
        }
        let part_text = submit
            .user_data
            .text()
            .ok_or_else(|| TestCaseError::fail("user data is not text"))?;
        text.push_str(part_text);
    }
    Ok(text)
}

fn check_text(text: &str, reference: u16, opts: &SubmitOptions) -> Result<(), TestCaseError> {
    let to = PhoneNumber::parse(TO).unwrap();
    let (kind, parts) = expected(text, opts);
    let plan = plan(text, opts);
    prop_assert_eq!(plan.parts, parts, "part count for kind {}", kind);
    let got_kind = match plan.encoding {
        TextEncoding::Gsm7 {
            locking: None,
            single: None,
        } => 0,
        TextEncoding::Gsm7 { .. } => 1,
        TextEncoding::Ucs2 => 2,
    };
    prop_assert_eq!(got_kind, kind, "encoding {:?}", plan.encoding);
    if parts == 0 || parts > 255 {
        return Ok(());
    }
    let pdus = encode_submit(&to, text, reference, opts)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(pdus.len(), parts);
    let decoded = decode_parts(&pdus, reference, opts)?;
    prop_assert_eq!(decoded, text);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Generators.

fn gsm_chars() -> Vec<char> {
    DEFAULT
        .chars()
        .filter(|&c| c != '\u{1B}')
        .chain(EXTENSION.chars())
        .collect()
}

fn national_chars() -> Vec<char> {
    let mut chars: Vec<char> = format!(
        "{TURKISH_LOCKING}{PORTUGUESE_LOCKING}{TURKISH_SINGLE}{SPANISH_SINGLE}{PORTUGUESE_SINGLE}"
    )
    .chars()
    .filter(|&c| c != '\u{1B}')
    .collect();
    chars.sort_unstable();
    chars.dedup();
    chars
}

fn text_from(chars: Vec<char>, len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(chars), len).prop_map(String::from_iter)
}

/// Mostly GSM text, with extension characters common enough to land on part boundaries.
fn gsm_heavy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => text_from(gsm_chars(), 1..700),
        1 => text_from(EXTENSION.chars().chain("ab".chars()).collect(), 1..500),
    ]
}

/// National-language letters mixed with GSM and, now and then, a character no 7-bit
/// table has.
fn national_heavy() -> impl Strategy<Value = String> {
    let mut chars = national_chars();
    chars.extend(gsm_chars());
    prop_oneof![
        4 => text_from(chars.clone(), 1..600),
        1 => (text_from(chars, 1..300), any::<char>()).prop_map(|(mut t, c)| {
            t.push(c);
            t
        }),
    ]
}

/// Any characters, BMP and beyond, long enough to need several parts.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<char>(), 1..300).prop_map(String::from_iter),
        text_from("ж😀👍🏽🇩🇪a€".chars().collect(), 1..300),
    ]
}

/// Texts whose length lands on or next to a part boundary of some encoding, so that one
/// septet or unit of difference in the capacity arithmetic changes the part count.
fn boundary_text() -> impl Strategy<Value = String> {
    let mut lengths = Vec::new();
    for capacity in [160, 155, 153, 152, 149, 148, 146, 145, 70, 67, 66] {
        for parts in 1..=3 {
            for delta in -2..=2 {
                lengths.push((capacity * parts) as i64 + delta);
                lengths.push((capacity * parts / 2) as i64 + delta);
            }
        }
    }
    lengths.sort_unstable();
    lengths.dedup();
    let pools: Vec<Vec<char>> = vec![
        "abcdefgh".chars().collect(),
        "abcdefgh€".chars().collect(),
        "ğışçabcd".chars().collect(),
        "ãçõêabcd".chars().collect(),
        "áíóúabcd".chars().collect(),
        "жщыabcd".chars().collect(),
        "ж😀".chars().collect(),
    ];
    let specials: Vec<char> = "€{ğçãá😀ж".chars().collect();
    (
        prop::sample::select(lengths),
        prop::sample::select(pools),
        prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(specials)),
            0..3,
        ),
    )
        .prop_flat_map(|(len, pool, inserts)| {
            prop::collection::vec(prop::sample::select(pool), len.max(1) as usize).prop_map(
                move |mut chars| {
                    for (at, c) in &inserts {
                        let at = at.index(chars.len());
                        chars[at] = *c;
                    }
                    String::from_iter(chars)
                },
            )
        })
}

fn options() -> impl Strategy<Value = SubmitOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(NationalLanguage::ALL.to_vec(), 0..=3),
    )
        .prop_map(
            |(concat_16bit, status_report, national_languages)| SubmitOptions {
                concat_16bit,
                status_report,
                national_languages,
                ..SubmitOptions::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn any_text_round_trips(text in any_text(), reference in any::<u16>(), opts in options()) {
        check_text(&text, reference, &opts)?;
    }

    #[test]
    fn gsm_text_round_trips(text in gsm_heavy(), reference in any::<u16>(), opts in options()) {
        check_text(&text, reference, &opts)?;
    }

    #[test]
    fn national_text_round_trips(text in national_heavy(), reference in any::<u16>(), opts in options()) {
        check_text(&text, reference, &opts)?;
    }

    #[test]
    fn boundary_text_round_trips(text in boundary_text(), reference in any::<u16>(), opts in options()) {
        check_text(&text, reference, &opts)?;
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_pdu(&bytes);
        let _ = decode_tpdu(&bytes);
        if let Ok(hex) = std::str::from_utf8(&bytes) {
            let _ = decode_hex(hex);
        }
    }

    /// Damaged versions of real PDUs reach deeper into the decoder than random bytes.
    #[test]
    fn damaged_pdus_never_panic(
        text in any_text(),
        opts in options(),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let to = PhoneNumber::parse(TO).unwrap();
        if let Ok(pdus) = encode_submit(&to, &text, 1, &opts) {
            for pdu in pdus {
                let bytes = pdu.into_bytes();
                let _ = decode_pdu(&bytes[..cut.index(bytes.len() + 1)]);
                let mut flipped = bytes.clone();
                let at = flip.0.index(flipped.len());
                flipped[at] ^= flip.1;
                let _ = decode_pdu(&flipped);
            }
        }
    }

    #[test]
    fn status_reports_round_trip(
        reference in any::<u8>(),
        digits in "[1-9][0-9]{1,14}",
        times in any::<[(u8, u8, u8, u8, u8, u8, i8); 2]>(),
        status in any::<u8>(),
        about_command in any::<bool>(),
    ) {
        let timestamp = |(y, mo, d, h, mi, s, tz): (u8, u8, u8, u8, u8, u8, i8)| Timestamp {
            year: y % 100,
            month: mo % 100,
            day: d % 100,
            hour: h % 100,
            minute: mi % 100,
            second: s % 100,
            tz_quarters: tz % 80,
        };
        let report = StatusReport {
            smsc: None,
            more_messages_waiting: false,
            loop_prevention: false,
            about_command,
            message_reference: reference,
            recipient: Address {
                type_of_number: TypeOfNumber::International,
                numbering_plan: 1,
                value: format!("+{digits}"),
            },
            sc_timestamp: timestamp(times[0]),
            discharge_time: timestamp(times[1]),
            status: DeliveryStatus(status),
            protocol_identifier: None,
            dcs: None,
            udh: None,
            user_data: None,
        };
        let bytes = encode_status_report(&report).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_pdu(&bytes), Ok(Pdu::StatusReport(report)));
    }
}

/// The brute-force count itself, on cases worked by hand.
#[test]
fn brute_force_counts_known_cases() {
    assert_eq!(min_parts(&[1; 160], 160, 153), 1);
    assert_eq!(min_parts(&[1; 161], 160, 153), 2);
    assert_eq!(min_parts(&[1; 307], 160, 153), 3);
    // 76 pairs fill 152 septets; 81 pairs need a second part.
    assert_eq!(min_parts(&[2; 81], 160, 153), 2);
    assert_eq!(septets_after(6), 153);
    assert_eq!(septets_after(7), 152);
    assert_eq!(septets_after(4), 155);
    assert_eq!(DEFAULT.chars().count(), 128);
    assert_eq!(TURKISH_LOCKING.chars().count(), 128);
    assert_eq!(PORTUGUESE_LOCKING.chars().count(), 128);
}
