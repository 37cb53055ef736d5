//! The `[[endpoint]]` kinds end to end, in process: real HTTP over loopback signed exactly
//! as each platform signs, the real outbox on a SQLite file, the real modem driver on a
//! pseudo-terminal served by the simulated modem.

mod support;

use std::time::Duration;

use smsbridge::config::Config;
use smsbridge::endpoint::verify::{self, Keys};
use smsbridge::outbox::MessageState;
use smsbridge::service::Service;
use smsbridge::sim::pty::SimHandle;
use smsbridge::sms::{self, PhoneNumber, SubmitOptions};
use support::{eventually, in_process_config, now_ms, simulated_modems, start_in_process};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);
/// The Standard Webhooks secret as Supabase's dashboard shows it.
const SUPABASE_SECRET: &str = "v1,whsec_c3VwYWJhc2UtaG9vay1zZWNyZXQtZm9yLXRlc3Rz";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ZITADEL_KEY: &str = "zitadel-signing-key-for-tests";
const BEARER: &str = "json-bearer-token-for-tests";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-auth-token-for-tests";

struct Harness {
    service: Service,
    sims: Vec<SimHandle>,
    client: reqwest::Client,
    _dir: TempDir,
}

fn endpoints_toml(dir: &std::path::Path) -> String {
    let file = |name: &str, content: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{content}\n")).unwrap();
        path.display().to_string()
    };
    format!(
        r#"
[[endpoint]]
kind = "supabase"
path = "/hooks/supabase-sms"
secret_file = {supabase:?}
template = "Your code is {{code}}"

[[endpoint]]
kind = "standard-webhooks"
path = "/hooks/sw"
secret_file = {sw:?}
phone_pointer = "/data/phone"
template = "Code: {{code}}"
code_pointer = "/data/code"

[[endpoint]]
kind = "zitadel"
path = "/hooks/zitadel"
secret_file = {zitadel:?}

[[endpoint]]
kind = "json"
path = "/hooks/json"
bearer_token_file = {bearer:?}
phone_pointer = "/to"
text_pointer = "/message"

[[endpoint]]
kind = "twilio"
account_sid = "{ACCOUNT}"
auth_token_file = {twilio:?}
"#,
        supabase = file("supabase", SUPABASE_SECRET),
        sw = file("sw", SW_SECRET),
        zitadel = file("zitadel", ZITADEL_KEY),
        bearer = file("bearer", BEARER),
        twilio = file("twilio", AUTH_TOKEN),
    )
}

impl Harness {
    async fn start(modems: usize, tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (sims, tables) = simulated_modems(dir.path(), modems).await;
        let mut config = in_process_config(
            dir.path(),
            &format!("{tables}{}", endpoints_toml(dir.path())),
        );
        tweak(&mut config);
        let service = start_in_process(config).await;
        Harness {
            service,
            sims,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.service.public_addr)
    }

    async fn wait_ready(&self) {
        support::wait_for_200(
            &self.client,
            &format!("http://{}/readyz", self.service.admin_addr),
            WAIT,
        )
        .await;
    }

    async fn messages(&self) -> Vec<smsbridge::outbox::MessageSummary> {
        self.service.app.outbox.recent(100).await.unwrap()
    }

    async fn supabase(&self, body: &str, id: &str) -> reqwest::Response {
        let keys = Keys::standard_webhooks(SUPABASE_SECRET).unwrap();
        let ts = (now_ms() / 1000).to_string();
        let sig = verify::sign_standard_webhooks(&keys, id, &ts, body.as_bytes());
        // Supabase's client joins several signatures with ", "; one is the common case.
        self.client
            .post(self.url("/hooks/supabase-sms"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts)
            .header("webhook-signature", sig)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn standard(&self, body: &str) -> reqwest::Response {
        let keys = Keys::standard_webhooks(SW_SECRET).unwrap();
        let ts = (now_ms() / 1000).to_string();
        let id = "msg_2b5e8f0c";
        let sig = verify::sign_standard_webhooks(&keys, id, &ts, body.as_bytes());
        self.client
            .post(self.url("/hooks/sw"))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts)
            .header("webhook-signature", sig)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn zitadel(&self, body: &str) -> reqwest::Response {
        let keys = Keys::raw_lines(ZITADEL_KEY).unwrap();
        let ts = (now_ms() / 1000).to_string();
        self.client
            .post(self.url("/hooks/zitadel"))
            .header("content-type", "application/json")
            .header(
                "ZITADEL-Signature",
                verify::sign_zitadel(&keys, &ts, body.as_bytes()),
            )
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, body: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/hooks/json"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn twilio(&self, to: &str, text: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")))
            .header("authorization", verify::basic(ACCOUNT, token))
            .form(&[("To", to), ("From", "+12015550100"), ("Body", text)])
            .send()
            .await
            .unwrap()
    }
}

fn expected_pdu(number: &str, text: &str) -> String {
    let options = SubmitOptions {
        validity: Duration::from_secs(600),
        status_report: true,
        ..SubmitOptions::default()
    };
    let to = PhoneNumber::parse(number).unwrap();
    sms::encode_submit(&to, text, 0, &options).unwrap()[0].hex()
}

fn supabase_body(phone: &str, otp: &str) -> String {
    // As Supabase Auth's Send SMS hook posts it: the user (phone stored without "+") and
    // the sms object with the OTP.
    serde_json::json!({
        "user": {
            "id": "8f5b1c9e-3b5b-4f7e-9d7a-0c6d7b7f1a2e", "aud": "authenticated",
            "role": "authenticated", "email": "", "phone": phone,
            "app_metadata": {"provider": "phone", "providers": ["phone"]},
            "user_metadata": {}, "identities": [], "is_anonymous": false,
            "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"
        },
        "sms": { "otp": otp }
    })
    .to_string()
}

fn zitadel_body(phone: &str, text: &str, code: &str) -> String {
    serde_json::json!({
        "contextInfo": {
            "eventType": "user.human.phone.code.added",
            "provider": {"id": "287567125453554593", "description": "smsbridge"},
            "recipientPhoneNumber": phone
        },
        "templateData": {"title": "", "preHeader": "", "subject": "", "greeting": "", "text": text, "buttonText": "", "footerText": ""},
        "args": {"code": code, "expiry": "5m0s"}
    })
    .to_string()
}

#[tokio::test]
async fn every_kind_reaches_the_modem_as_the_expected_pdu() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;

    let r = h
        .supabase(&supabase_body("447400123456", "561166"), "msg_1")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{}");

    let r = h
        .standard(r#"{"type":"otp","data":{"phone":"+4915123456789","code":"735194"}}"#)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");

    let r = h
        .zitadel(&zitadel_body(
            "+12015550123",
            "Your ZITADEL code is 551903",
            "551903",
        ))
        .await;
    assert_eq!(r.status(), 200);

    let r = h
        .json(
            r#"{"to":"+447400123457","message":"Your login code: 628410"}"#,
            BEARER,
        )
        .await;
    assert_eq!(r.status(), 202);
    let id: serde_json::Value = r.json().await.unwrap();
    assert!(id["id"].as_str().is_some_and(|s| !s.is_empty()), "{id}");

    let r = h
        .twilio("+12015550124", "Your code is 930411", AUTH_TOKEN)
        .await;
    assert_eq!(r.status(), 201);
    let resource: serde_json::Value = r.json().await.unwrap();
    let sid = resource["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(resource["status"], "queued");
    assert_eq!(resource["to"], "+12015550124");
    assert_eq!(resource["num_segments"], "1");
    assert_eq!(resource["account_sid"], ACCOUNT);
    assert_eq!(
        resource["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json")
    );
    assert!(
        resource["date_created"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );

    let expected = [
        expected_pdu("+447400123456", "Your code is 561166"),
        expected_pdu("+4915123456789", "Code: 735194"),
        expected_pdu("+12015550123", "Your ZITADEL code is 551903"),
        expected_pdu("+447400123457", "Your login code: 628410"),
        expected_pdu("+12015550124", "Your code is 930411"),
    ];
    let received = eventually(WAIT, "five PDUs at the modem", async || {
        let r = h.sims[0].received();
        (r.len() >= 5).then_some(r)
    })
    .await;
    let mut got: Vec<String> = received.iter().map(|r| r.pdu_hex.clone()).collect();
    let mut want = expected.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // Twilio's GET reports the outbox's status.
    let status = eventually(WAIT, "Twilio status sent", async || {
        let v: serde_json::Value = h
            .client
            .get(h.url(&format!(
                "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
            )))
            .header("authorization", verify::basic(ACCOUNT, AUTH_TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        matches!(v["status"].as_str(), Some("sent" | "delivered")).then_some(v)
    })
    .await;
    assert_eq!(status["sid"], sid.as_str());
    let metrics = h.service.app.metrics.clone();
    for name in ["supabase", "standard-webhooks", "zitadel", "json", "twilio"] {
        assert_eq!(metrics.endpoint_requests(name, "accepted"), 1, "{name}");
    }
    h.service.stop().await;
}

#[tokio::test]
async fn twilio_status_needs_credentials_and_a_real_sid() {
    let h = Harness::start(0, |c| c.limits.no_modem_grace = Duration::from_secs(600)).await;
    let r = h
        .twilio("+12015550124", "Your code is 930411", AUTH_TOKEN)
        .await;
    assert_eq!(r.status(), 201);
    let sid = r.json::<serde_json::Value>().await.unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = async |sid: &str, token: &str| {
        h.client
            .get(h.url(&format!(
                "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
            )))
            .header("authorization", verify::basic(ACCOUNT, token))
            .send()
            .await
            .unwrap()
    };
    let ok = get(&sid, AUTH_TOKEN).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<serde_json::Value>().await.unwrap()["status"],
        "queued"
    );
    let wrong_token = get(&sid, "nope").await;
    assert_eq!(wrong_token.status(), 401);
    assert_eq!(
        wrong_token.json::<serde_json::Value>().await.unwrap()["code"],
        20003
    );
    // The same id with a forged tag is not found.
    let forged = format!("SM{}{}", "0".repeat(16), &sid[18..]);
    assert_eq!(get(&forged, AUTH_TOKEN).await.status(), 404);
    assert_eq!(get("SMnot-a-sid", AUTH_TOKEN).await.status(), 404);
    h.service.stop().await;
}

#[tokio::test]
async fn every_refusal_stores_and_sends_nothing() {
    let h = Harness::start(1, |c| c.limits.max_parts = 1).await;
    h.wait_ready().await;
    let good = supabase_body("447400123456", "561166");
    let keys = Keys::standard_webhooks(SUPABASE_SECRET).unwrap();
    let ts = (now_ms() / 1000).to_string();
    let stale = (now_ms() / 1000 - 301).to_string();
    let sig = verify::sign_standard_webhooks(&keys, "msg_1", &ts, good.as_bytes());
    let stale_sig = verify::sign_standard_webhooks(&keys, "msg_1", &stale, good.as_bytes());
    let post_sw = async |body: &str, id: Option<&str>, ts: Option<&str>, sig: Option<&str>| {
        let mut r = h
            .client
            .post(h.url("/hooks/supabase-sms"))
            .body(body.to_owned());
        if let Some(v) = id {
            r = r.header("webhook-id", v);
        }
        if let Some(v) = ts {
            r = r.header("webhook-timestamp", v);
        }
        if let Some(v) = sig {
            r = r.header("webhook-signature", v);
        }
        r.send().await.unwrap()
    };
    let mut answers = vec![
        (
            "no signature",
            post_sw(&good, Some("msg_1"), Some(&ts), None).await,
            401,
        ),
        (
            "empty v1,",
            post_sw(&good, Some("msg_1"), Some(&ts), Some("v1,")).await,
            401,
        ),
        (
            "truncated",
            post_sw(&good, Some("msg_1"), Some(&ts), Some(&sig[..sig.len() - 4])).await,
            401,
        ),
        (
            "other id",
            post_sw(&good, Some("msg_2"), Some(&ts), Some(&sig)).await,
            401,
        ),
        (
            "stale",
            post_sw(&good, Some("msg_1"), Some(&stale), Some(&stale_sig)).await,
            401,
        ),
        (
            "body changed",
            post_sw(
                &supabase_body("447400123456", "561167"),
                Some("msg_1"),
                Some(&ts),
                Some(&sig),
            )
            .await,
            401,
        ),
    ];
    // Signed correctly, but the payload is wrong.
    for (what, body, status) in [
        ("not JSON", "{\"user\":".to_owned(), 400),
        (
            "no otp",
            r#"{"user":{"phone":"447400123456"},"sms":{}}"#.to_owned(),
            400,
        ),
        ("premium rate", supabase_body("19005550123", "1"), 422),
        ("invalid number", supabase_body("15551234567", "1"), 422),
    ] {
        answers.push((what, h.supabase(&body, "msg_x").await, status));
    }
    answers.push((
        "zitadel unsigned",
        h.client
            .post(h.url("/hooks/zitadel"))
            .body(zitadel_body("+12015550123", "c 1", "1"))
            .send()
            .await
            .unwrap(),
        401,
    ));
    answers.push((
        "zitadel text too long",
        h.zitadel(&zitadel_body("+12015550123", &"x".repeat(161), "1"))
            .await,
        422,
    ));
    answers.push((
        "json wrong token",
        h.json(r#"{"to":"+447400123457","message":"x"}"#, "wrong")
            .await,
        401,
    ));
    answers.push((
        "json missing pointer",
        h.json(r#"{"message":"x"}"#, BEARER).await,
        400,
    ));
    answers.push((
        "standard wrong key",
        {
            let keys = Keys::standard_webhooks(SUPABASE_SECRET).unwrap();
            let body = r#"{"data":{"phone":"+4915123456789","code":"1"}}"#;
            let ts = (now_ms() / 1000).to_string();
            h.client
                .post(h.url("/hooks/sw"))
                .header("webhook-id", "m")
                .header("webhook-timestamp", &ts)
                .header(
                    "webhook-signature",
                    verify::sign_standard_webhooks(&keys, "m", &ts, body.as_bytes()),
                )
                .body(body)
                .send()
                .await
                .unwrap()
        },
        401,
    ));
    for (what, response, status) in answers {
        assert_eq!(response.status().as_u16(), status, "{what}");
        let json: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {json}"
        );
    }
    // Twilio's refusals are Twilio-shaped, with Twilio's codes.
    for (what, to, text, token, status, code) in [
        ("bad credentials", "+12015550124", "hi", "wrong", 401, 20003),
        ("invalid To", "+15551234567", "hi", AUTH_TOKEN, 422, 21211),
        ("missing To", "", "hi", AUTH_TOKEN, 400, 21604),
        ("missing Body", "+12015550124", "", AUTH_TOKEN, 400, 21602),
    ] {
        let r = h.twilio(to, text, token).await;
        assert_eq!(r.status().as_u16(), status, "{what}");
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(json["code"], code, "{what}: {json}");
        assert_eq!(json["status"], status, "{what}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert_eq!(
            json["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
    }
    assert!(
        h.messages().await.is_empty(),
        "a refused request stored something"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.sims[0].received().is_empty(),
        "a refused request was sent"
    );
    h.service.stop().await;
}

#[tokio::test]
async fn a_platform_retry_gets_the_success_answer_and_no_second_sms() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    let body = supabase_body("447400123456", "561166");
    // Supabase retries with a new webhook-id each time.
    for id in ["msg_a", "msg_b", "msg_c"] {
        let r = h.supabase(&body, id).await;
        assert_eq!(r.status(), 200, "{id}");
        assert_eq!(r.text().await.unwrap(), "{}");
    }
    // Another code to the same number is a new message.
    assert_eq!(
        h.supabase(&supabase_body("447400123456", "561167"), "msg_d")
            .await
            .status(),
        200
    );
    // The same text through Twilio (no code): deduplicated by text.
    for _ in 0..2 {
        assert_eq!(
            h.twilio("+12015550124", "Your code is 1", AUTH_TOKEN)
                .await
                .status(),
            201
        );
    }
    eventually(WAIT, "three messages sent", async || {
        let m = h.messages().await;
        (m.len() == 3 && m.iter().all(|m| m.state == MessageState::Sent)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.sims[0].received().len(), 3);
    assert_eq!(
        h.service
            .app
            .metrics
            .endpoint_requests("supabase", "duplicate"),
        2
    );
    assert_eq!(
        h.service
            .app
            .metrics
            .endpoint_requests("twilio", "duplicate"),
        1
    );
    h.service.stop().await;
}

#[tokio::test]
async fn the_rate_limit_counts_across_endpoints() {
    let h = Harness::start(0, |c| {
        c.limits.per_number_count = 3;
        c.limits.no_modem_grace = Duration::from_secs(600);
    })
    .await;
    let number = "+447400123456";
    assert_eq!(
        h.supabase(&supabase_body("447400123456", "1"), "m1")
            .await
            .status(),
        200
    );
    assert_eq!(
        h.json(
            &format!(r#"{{"to":"{number}","message":"code 2"}}"#),
            BEARER
        )
        .await
        .status(),
        202
    );
    assert_eq!(
        support::post_signed(
            &h.client,
            &h.url("/ownid/sms"),
            &support::body(number, "code 3")
        )
        .await
        .status(),
        202
    );
    let limited = h.twilio(number, "code 4", AUTH_TOKEN).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        limited.json::<serde_json::Value>().await.unwrap()["code"],
        20429
    );
    let limited = h.zitadel(&zitadel_body(number, "code 5", "5")).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Supabase's retry of the first code (a new webhook-id) is not a new message: the
    // number's slots are used up, but the retry still gets the success answer.
    let retry = h
        .supabase(&supabase_body("447400123456", "1"), "m1-retry")
        .await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.text().await.unwrap(), "{}");
    assert_eq!(h.messages().await.len(), 3);
    h.service.stop().await;
}
