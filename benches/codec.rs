//! Codec benchmarks: encoding a 1,000-character text (GSM 7-bit and UCS-2) into SMS-SUBMIT
//! parts, counting its parts, and decoding the parts back.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smsbridge::sms::{
    NationalLanguage, PhoneNumber, SubmitOptions, count_parts, decode_pdu, encode_submit,
};

/// `len` characters cycled from `pattern`.
fn text(pattern: &str, len: usize) -> String {
    pattern.chars().cycle().take(len).collect()
}

fn codec(c: &mut Criterion) {
    let to = PhoneNumber::parse("+4915123456789").unwrap();
    let plain = SubmitOptions::default();
    let national = SubmitOptions {
        national_languages: NationalLanguage::ALL.to_vec(),
        ..SubmitOptions::default()
    };
    let cases = [
        (
            "gsm7",
            text(
                "Your verification code is 4821. Do not share it! {€} ",
                1000,
            ),
            &plain,
        ),
        (
            "ucs2",
            text(
                "Ваш код подтверждения: 4821. Никому его не сообщайте 😀 ",
                1000,
            ),
            &plain,
        ),
        (
            "turkish",
            text(
                "Doğrulama kodunuz 4821. Kimseyle paylaşmayın, ğüşıöç İĞ. ",
                1000,
            ),
            &national,
        ),
    ];
    for (name, text, opts) in cases {
        assert_eq!(text.chars().count(), 1000);
        c.bench_function(&format!("encode 1000 chars {name}"), |b| {
            b.iter(|| encode_submit(black_box(&to), black_box(&text), 0x1234, opts).unwrap())
        });
        c.bench_function(&format!("count_parts 1000 chars {name}"), |b| {
            b.iter(|| count_parts(black_box(&text), opts))
        });
        let parts = encode_submit(&to, &text, 0x1234, opts).unwrap();
        c.bench_function(&format!("decode {} parts {name}", parts.len()), |b| {
            b.iter(|| {
                for part in &parts {
                    black_box(decode_pdu(black_box(part.bytes())).unwrap());
                }
            })
        });
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
