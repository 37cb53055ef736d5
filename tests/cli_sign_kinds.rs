//! `smsbridge sign --kind …`, run as a built binary: each kind's headers are what the
//! platform would send, checked by the service's own verifiers and by the published
//! Standard Webhooks vector.

use std::process::{Command, Output};
use std::time::Duration;

use smsbridge::endpoint::verify::{self, Credentials, Keys};

fn smsbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(args)
        .output()
        .unwrap()
}

fn lines(output: &Output) -> Vec<(String, String)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn standard_webhooks_reproduces_the_published_vector() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    let secret = secret.display().to_string();
    for kind in ["standard-webhooks", "supabase"] {
        let out = smsbridge(&[
            "sign",
            "--kind",
            kind,
            "--secret-file",
            &secret,
            "--id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "--timestamp",
            "1614265330",
            "--body",
            r#"{"test": 2432232314}"#,
        ]);
        assert_eq!(
            lines(&out),
            vec![
                (
                    "webhook-id".to_owned(),
                    "msg_p5jXN8AQM9LWM0D4loKWxJek".to_owned()
                ),
                ("webhook-timestamp".to_owned(), "1614265330".to_owned()),
                (
                    "webhook-signature".to_owned(),
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned()
                ),
            ]
        );
    }
}

#[test]
fn zitadel_json_and_twilio_headers_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "zitadel-key\n").unwrap();
    let key = key.display().to_string();
    let body = r#"{"contextInfo":{"recipientPhoneNumber":"+12015550123"}}"#;
    let out = lines(&smsbridge(&[
        "sign",
        "--kind",
        "zitadel",
        "--secret-file",
        &key,
        "--body",
        body,
    ]));
    assert_eq!(out[0].0, "ZITADEL-Signature");
    let keys = Keys::raw_lines("zitadel-key").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert_eq!(
        verify::verify_zitadel(
            &keys,
            Some(&out[0].1),
            body.as_bytes(),
            now,
            Duration::from_secs(300)
        ),
        Ok(())
    );

    let out = lines(&smsbridge(&[
        "sign",
        "--kind",
        "json",
        "--secret-file",
        &key,
    ]));
    assert_eq!(
        out,
        vec![("Authorization".to_owned(), "Bearer zitadel-key".to_owned())]
    );
    let sid = "AC0123456789abcdef0123456789abcdef";
    let out = lines(&smsbridge(&[
        "sign",
        "--kind",
        "twilio",
        "--user",
        sid,
        "--secret-file",
        &key,
    ]));
    let creds = Credentials::Basic {
        user: sid.to_owned(),
        password: "zitadel-key".to_owned(),
    };
    assert_eq!(
        verify::verify_authorization(&creds, Some(&out[0].1)),
        Ok(())
    );

    for (args, what) in [
        (
            vec![
                "sign",
                "--kind",
                "keycloak",
                "--secret-file",
                &key,
                "--body",
                "{}",
            ],
            "is not one of",
        ),
        (
            vec!["sign", "--kind", "twilio", "--secret-file", &key],
            "--user",
        ),
        (
            vec!["sign", "--kind", "zitadel", "--secret-file", &key],
            "--body",
        ),
        (
            vec![
                "sign",
                "--kind",
                "supabase",
                "--secret-file",
                &key,
                "--body",
                "{}",
            ],
            "unusable",
        ),
    ] {
        let out = smsbridge(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(what),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}
