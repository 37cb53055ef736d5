//! The OwnID signature scheme against vectors computed independently with Python's
//! `hmac`/`hashlib`/`base64`, and the payload parser.

use std::time::Duration;

use smsbridge::ownid::{
    AuthError, PayloadError, SecretFormatError, SharedSecret, parse_payload, sign, verify,
};

const SECRET: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM="; // base64 of "secret-key-for-tests"
const BODY: &[u8] = br#"{"phoneNumber":"+12015550123","messageText":"Your verification code is 1234","code":"1234"}"#;
const TS: &str = "1700000000000";
const TS_MS: u64 = 1_700_000_000_000;
const SKEW: Duration = Duration::from_secs(60);

fn secret() -> SharedSecret {
    SharedSecret::from_base64(SECRET).expect("test secret is valid")
}

/// One signing vector: secret (base64), body, timestamp, expected signature (from Python).
fn check_vector(secret_b64: &str, body: &[u8], timestamp: &str, expected: &str) {
    let secret = SharedSecret::from_base64(secret_b64).expect("vector secret is valid");
    assert_eq!(
        sign(&secret, body, timestamp),
        expected,
        "sign({timestamp})"
    );
    let now = timestamp.parse().expect("vector timestamp is decimal");
    verify(&secret, body, Some(timestamp), Some(expected), now, SKEW)
        .expect("a vector verifies against its own timestamp");
    // The timestamp read is the header's: one millisecond past the skew it is stale.
    let late = now + SKEW.as_millis() as u64 + 1;
    assert_eq!(
        verify(&secret, body, Some(timestamp), Some(expected), late, SKEW),
        Err(AuthError::StaleTimestamp {
            age_ms: SKEW.as_millis() as u64 + 1
        })
    );
}

#[test]
fn signatures_match_independent_vectors() {
    check_vector(
        SECRET,
        BODY,
        TS,
        "OipAsgjsKLuypMOKlWhVVAZbbguPgM6enWXVhs2WhN8=",
    );
    check_vector(
        SECRET,
        b"",
        TS,
        "+sA1+myl7sIKaLP0VW1UW+TFxSE2spVWFV1nSl3L1N0=",
    );
    // UTF-8 text and a trailing newline: signed byte for byte, nothing trimmed.
    check_vector(
        SECRET,
        "{\"phoneNumber\": \"+4915123456789\", \"messageText\": \"Dein Code: 987654 äöü\", \"code\": \"987654\"}\n"
            .as_bytes(),
        "1712345678901",
        "UjnVgaWM8oe25/cryRgqN1OuePt743h6ze7tKRsVS3s=",
    );
    // A key of arbitrary bytes (base64 with '+' and '/').
    check_vector(
        "+vv8/f7/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OQ==",
        br#"{"a":1}"#,
        "0",
        "o8+CnbEEtVPyd5OKUMbhPecwGy5MoqUmIbwZFm+UXOg=",
    );
    // A key longer than SHA-256's block, which HMAC hashes first.
    check_vector(
        "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA==",
        b"hello",
        "1",
        "WsZOCFFKdXxUQqm2TKpHFbwIcTJWne0Oi3EsXx45bK8=",
    );
}

#[test]
fn secret_text_is_trimmed_and_padding_is_optional() {
    let expected = "OipAsgjsKLuypMOKlWhVVAZbbguPgM6enWXVhs2WhN8=";
    for text in [
        "c2VjcmV0LWtleS1mb3ItdGVzdHM=\n",
        "  c2VjcmV0LWtleS1mb3ItdGVzdHM=\r\n",
        "c2VjcmV0LWtleS1mb3ItdGVzdHM",
    ] {
        let secret = SharedSecret::from_base64(text).expect("accepted");
        assert_eq!(sign(&secret, BODY, TS), expected, "{text:?}");
    }
}

#[test]
fn bad_secrets_are_refused_without_quoting_them() {
    let cases: &[(&str, SecretFormatError)] = &[
        ("", SecretFormatError::Empty),
        (" \n", SecretFormatError::Empty),
        ("=", SecretFormatError::NotBase64),
        ("not base64!", SecretFormatError::NotBase64),
        ("c2Vj cmV0", SecretFormatError::NotBase64),
        ("c2VjcmV0-_", SecretFormatError::NotBase64),
    ];
    for (text, expected) in cases {
        let err = SharedSecret::from_base64(text).expect_err(text);
        assert_eq!(&err, expected, "{text:?}");
        if text.len() > 3 {
            assert!(!err.to_string().contains(text), "{err}");
        }
    }
}

#[test]
fn debug_never_shows_the_key() {
    let shown = format!("{:?}", secret());
    assert_eq!(shown, "SharedSecret(<redacted>)");
}

/// One verification case: headers and clock in, expected outcome out.
fn check_verify(
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), AuthError> {
    verify(&secret(), body, timestamp, signature, now, SKEW).map(|_| ())
}

/// Name, timestamp header, signature header, body, server clock, expected outcome.
type VerifyCase<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [u8],
    u64,
    Result<(), AuthError>,
);

#[test]
fn verify_refuses_each_kind_of_bad_request() {
    let good = sign(&secret(), BODY, TS);
    let good = good.as_str();
    let tampered = {
        let mut body = BODY.to_vec();
        body[20] ^= 1; // one bit of the number changed
        body
    };
    let other_secret_sig = sign(&SharedSecret::from_base64("b3RoZXI=").unwrap(), BODY, TS);
    let truncated = &good[..good.len() - 4];

    let cases: Vec<VerifyCase> = vec![
        ("genuine", Some(TS), Some(good), BODY, TS_MS, Ok(())),
        (
            "at the edge of the window, late",
            Some(TS),
            Some(good),
            BODY,
            TS_MS + 60_000,
            Ok(()),
        ),
        (
            "at the edge of the window, early",
            Some(TS),
            Some(good),
            BODY,
            TS_MS - 60_000,
            Ok(()),
        ),
        (
            "no timestamp",
            None,
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::MissingTimestamp),
        ),
        (
            "no signature",
            Some(TS),
            None,
            BODY,
            TS_MS,
            Err(AuthError::MissingSignature),
        ),
        (
            "nothing",
            None,
            None,
            BODY,
            TS_MS,
            Err(AuthError::MissingTimestamp),
        ),
        (
            "seconds with a fraction",
            Some("1700000000.5"),
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::BadTimestamp),
        ),
        (
            "signed number",
            Some("+1700000000000"),
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::BadTimestamp),
        ),
        (
            "spaces",
            Some(" 1700000000000"),
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::BadTimestamp),
        ),
        (
            "empty timestamp",
            Some(""),
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::BadTimestamp),
        ),
        (
            "overflowing",
            Some("99999999999999999999"),
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::BadTimestamp),
        ),
        (
            "tampered body",
            Some(TS),
            Some(good),
            &tampered,
            TS_MS,
            Err(AuthError::BadSignature),
        ),
        (
            "other timestamp",
            Some("1700000000001"),
            Some(good),
            BODY,
            TS_MS,
            Err(AuthError::BadSignature),
        ),
        (
            "other secret",
            Some(TS),
            Some(&other_secret_sig),
            BODY,
            TS_MS,
            Err(AuthError::BadSignature),
        ),
        (
            "not base64",
            Some(TS),
            Some("not base64!"),
            BODY,
            TS_MS,
            Err(AuthError::BadSignature),
        ),
        (
            "truncated",
            Some(TS),
            Some(truncated),
            BODY,
            TS_MS,
            Err(AuthError::BadSignature),
        ),
        (
            "empty signature",
            Some(TS),
            Some(""),
            BODY,
            TS_MS,
            Err(AuthError::BadSignature),
        ),
        (
            "stale",
            Some(TS),
            Some(good),
            BODY,
            TS_MS + 60_001,
            Err(AuthError::StaleTimestamp { age_ms: 60_001 }),
        ),
        (
            "future",
            Some(TS),
            Some(good),
            BODY,
            TS_MS - 60_001,
            Err(AuthError::FutureTimestamp { ahead_ms: 60_001 }),
        ),
    ];
    for (name, timestamp, signature, body, now, expected) in cases {
        assert_eq!(
            check_verify(timestamp, signature, body, now),
            expected,
            "{name}"
        );
    }
}

#[test]
fn freshness_is_judged_only_for_genuine_signatures() {
    // A forged request with an old timestamp is a bad signature, not a stale timestamp.
    let forged = sign(&SharedSecret::from_base64("b3RoZXI=").unwrap(), BODY, TS);
    assert_eq!(
        check_verify(Some(TS), Some(&forged), BODY, TS_MS + 3_600_000),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn verified_carries_the_signature_bytes_for_replay_protection() {
    let signature = sign(&secret(), BODY, TS);
    let verified = verify(&secret(), BODY, Some(TS), Some(&signature), TS_MS, SKEW).unwrap();
    let decoded: Vec<u8> = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&signature)
            .unwrap()
    };
    assert_eq!(verified.signature().as_slice(), decoded.as_slice());
}

#[test]
fn auth_error_messages_reveal_nothing_secret() {
    let errors = [
        AuthError::MissingTimestamp,
        AuthError::MissingSignature,
        AuthError::BadTimestamp,
        AuthError::StaleTimestamp { age_ms: 123_456 },
        AuthError::FutureTimestamp { ahead_ms: 654_321 },
        AuthError::BadSignature,
    ];
    let expected_signature = sign(&secret(), BODY, TS);
    for err in errors {
        let message = err.to_string();
        assert!(!message.contains(&expected_signature), "{message}");
        assert!(
            !message.contains("123456") && !message.contains("654321"),
            "{message}"
        );
        assert!(!message.contains(SECRET), "{message}");
        assert!(!err.reason().is_empty());
    }
}

/// One payload case: body in, expected fields or error out. `Malformed` and `Invalid`
/// carry the JSON parser's own wording, so only their kind is compared.
fn check_payload(body: &str, expected: Result<[&str; 3], PayloadError>) {
    let got = parse_payload(body.as_bytes()).map(|p| [p.phone_number, p.message_text, p.code]);
    match (got, expected) {
        (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{body}"),
        (Err(got), Err(expected)) => match expected {
            PayloadError::Malformed(_) | PayloadError::Invalid(_) => assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&expected),
                "{body}: {got}"
            ),
            _ => assert_eq!(got, expected, "{body}"),
        },
        (got, expected) => panic!("{body}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn payloads_parse_or_name_the_problem() {
    let ok = Ok(["+12015550123", "Your code is 1234", "1234"]);
    check_payload(
        r#"{"phoneNumber":"+12015550123","messageText":"Your code is 1234","code":"1234"}"#,
        ok.clone(),
    );
    // Unknown extra fields are accepted, in any position.
    check_payload(
        r#"{"loginId":"x","phoneNumber":"+12015550123","messageText":"Your code is 1234","code":"1234","extra":{"a":[1,2]}}"#,
        ok,
    );
    let malformed = || Err(PayloadError::Malformed(String::new()));
    let invalid = || Err(PayloadError::Invalid(String::new()));
    check_payload("", malformed());
    check_payload("{", malformed());
    check_payload(r#"{"phoneNumber":"+1"#, malformed());
    check_payload(
        r#"{"phoneNumber":"+12015550123","messageText":"t","code":"1"} x"#,
        malformed(),
    );
    check_payload("[1,2]", invalid());
    check_payload(r#""text""#, invalid());
    check_payload(
        r#"{"phoneNumber":"+12015550123","phoneNumber":"+447400123456","messageText":"t","code":"1"}"#,
        invalid(),
    );
    check_payload(
        r#"{"messageText":"t","code":"1"}"#,
        Err(PayloadError::MissingField("phoneNumber")),
    );
    check_payload(
        r#"{"phoneNumber":"+12015550123","code":"1"}"#,
        Err(PayloadError::MissingField("messageText")),
    );
    check_payload(
        r#"{"phoneNumber":"+12015550123","messageText":"t"}"#,
        Err(PayloadError::MissingField("code")),
    );
    check_payload(
        r#"{"phoneNumber":12015550123,"messageText":"t","code":"1"}"#,
        Err(PayloadError::WrongType("phoneNumber")),
    );
    check_payload(
        r#"{"phoneNumber":"+12015550123","messageText":null,"code":"1"}"#,
        Err(PayloadError::WrongType("messageText")),
    );
    check_payload(
        r#"{"phoneNumber":"+12015550123","messageText":"t","code":1234}"#,
        Err(PayloadError::WrongType("code")),
    );
}

#[test]
fn payload_errors_name_the_field() {
    let missing = parse_payload(br#"{"phoneNumber":"+12015550123","code":"1"}"#).unwrap_err();
    assert_eq!(missing.to_string(), "missing field \"messageText\"");
    let wrong = parse_payload(br#"{"phoneNumber":[],"messageText":"t","code":"1"}"#).unwrap_err();
    assert_eq!(wrong.to_string(), "field \"phoneNumber\" must be a string");
    let not_object = parse_payload(b"42").unwrap_err();
    assert!(
        not_object.to_string().contains("a JSON object"),
        "{not_object}"
    );
}

#[test]
fn payload_debug_hides_the_code_and_masks_the_number() {
    let payload = parse_payload(
        br#"{"phoneNumber":"+12015550123","messageText":"Your code is 918273","code":"918273"}"#,
    )
    .unwrap();
    let shown = format!("{payload:?}");
    assert!(!shown.contains("918273"), "{shown}");
    assert!(!shown.contains("+12015550123"), "{shown}");
    assert!(shown.contains("+12*******23"), "{shown}");
}
