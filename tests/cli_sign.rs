//! `smsbridge sign`, run as a built binary: its headers must verify with `ownid::verify`,
//! match an independently computed vector, and its errors must be clear.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smsbridge::ownid::{AuthError, SharedSecret, verify};

const SECRET_B64: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";
const BODY: &str = r#"{"phoneNumber":"+12015550123","messageText":"Your verification code is 1234","code":"1234"}"#;

fn smsbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(args)
        .output()
        .unwrap()
}

fn secret_file(dir: &Path, content: &str) -> String {
    let path = dir.join("shared-secret");
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// The two header values printed, in order.
fn headers(output: &Output) -> (String, String) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let timestamp = lines[0]
        .strip_prefix("ownid-timestamp: ")
        .expect("timestamp line");
    let signature = lines[1]
        .strip_prefix("ownid-signature: ")
        .expect("signature line");
    (timestamp.to_owned(), signature.to_owned())
}

fn check(body: &[u8], timestamp: &str, signature: &str, now_ms: u64) -> Result<(), AuthError> {
    let secret = SharedSecret::from_base64(SECRET_B64).unwrap();
    verify(
        &secret,
        body,
        Some(timestamp),
        Some(signature),
        now_ms,
        Duration::from_secs(60),
    )
    .map(|_| ())
}

#[test]
fn signs_a_body_given_inline() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &format!("{SECRET_B64}\n"));
    let output = smsbridge(&[
        "sign",
        "--secret-file",
        &secret,
        "--timestamp",
        "1700000000000",
        "--body",
        BODY,
    ]);
    assert_eq!(
        String::from_utf8(output.stdout.clone()).unwrap(),
        "ownid-timestamp: 1700000000000\nownid-signature: OipAsgjsKLuypMOKlWhVVAZbbguPgM6enWXVhs2WhN8=\n",
        "the vector computed with Python"
    );
    let (timestamp, signature) = headers(&output);
    assert_eq!(
        check(BODY.as_bytes(), &timestamp, &signature, 1_700_000_000_000),
        Ok(())
    );
}

#[test]
fn signs_a_body_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), SECRET_B64);
    let body_path = dir.path().join("body.json");
    let body = format!("{BODY}\n");
    std::fs::write(&body_path, &body).unwrap();
    let output = smsbridge(&[
        "sign",
        "--secret-file",
        &secret,
        "--timestamp",
        "1700000000000",
        "--body-file",
        &body_path.display().to_string(),
    ]);
    let (timestamp, signature) = headers(&output);
    assert_eq!(
        check(body.as_bytes(), &timestamp, &signature, 1_700_000_000_000),
        Ok(())
    );
    // The newline is part of what was signed.
    assert_eq!(
        check(BODY.as_bytes(), &timestamp, &signature, 1_700_000_000_000),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn the_timestamp_defaults_to_now() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), SECRET_B64);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (timestamp, signature) = headers(&smsbridge(&[
        "sign",
        "--secret-file",
        &secret,
        "--body",
        BODY,
    ]));
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ts: u64 = timestamp.parse().unwrap();
    assert!(
        (before..=after).contains(&ts),
        "{before} <= {ts} <= {after}"
    );
    assert_eq!(
        check(BODY.as_bytes(), &timestamp, &signature, after),
        Ok(())
    );
}

/// One failing invocation: exit status not zero, nothing on stdout, `what` on stderr.
fn check_error(args: &[&str], what: &str) {
    let output = smsbridge(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(
        output.stdout.is_empty(),
        "{args:?} printed {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains(what),
        "{args:?}: {stderr:?} does not say {what:?}"
    );
}

#[test]
fn errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let good = secret_file(dir.path(), SECRET_B64);
    let missing = dir.path().join("nope").display().to_string();
    check_error(
        &["sign", "--secret-file", &missing, "--body", "{}"],
        &format!("cannot read the secret file {missing}"),
    );
    let bad_path = dir.path().join("bad-secret");
    std::fs::write(&bad_path, "not base64!\n").unwrap();
    let bad = bad_path.display().to_string();
    check_error(
        &["sign", "--secret-file", &bad, "--body", "{}"],
        &format!("the secret file {bad} is unusable: the shared secret is not valid base64"),
    );
    let empty_path = dir.path().join("empty-secret");
    std::fs::write(&empty_path, "\n").unwrap();
    let empty = empty_path.display().to_string();
    check_error(
        &["sign", "--secret-file", &empty, "--body", "{}"],
        "the shared secret is empty",
    );
    check_error(
        &[
            "sign",
            "--secret-file",
            &good,
            "--timestamp",
            "1.7e12",
            "--body",
            "{}",
        ],
        "--timestamp \"1.7e12\" is not Unix time in milliseconds",
    );
    check_error(
        &["sign", "--secret-file", &good, "--body-file", &missing],
        &format!("cannot read the body file {missing}"),
    );
    check_error(&["sign", "--secret-file", &good], "--body");
    check_error(
        &[
            "sign",
            "--secret-file",
            &good,
            "--body",
            "{}",
            "--body-file",
            &missing,
        ],
        "cannot be used with",
    );
}
