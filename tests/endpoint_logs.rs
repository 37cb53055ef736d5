//! The service's log at trace level, through every `[[endpoint]]` kind accepting, refusing
//! and deduplicating: never a code, a text or a full number.

mod support;

use std::time::Duration;

use smsbridge::endpoint::verify::{self, Keys};
use smsbridge::sim::profile::Profile;
use support::{ServiceProcess, eventually, now_ms, sim_at, wait_for_200, write_config};

const SW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ZITADEL: &str = "zitadel-key";
const BEARER: &str = "bearer-token";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token";

#[tokio::test]
async fn no_code_text_or_full_number_reaches_the_log_for_any_kind() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    let sim = sim_at(&link, Profile::Generic, None).await;
    let file = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    };
    let extra = format!(
        "[[endpoint]]\nkind = \"supabase\"\npath = \"/s\"\nsecret_file = {:?}\n\
         [[endpoint]]\nkind = \"standard-webhooks\"\npath = \"/w\"\nsecret_file = {:?}\nphone_pointer = \"/p\"\ntext_pointer = \"/t\"\n\
         [[endpoint]]\nkind = \"zitadel\"\npath = \"/z\"\nsecret_file = {:?}\n\
         [[endpoint]]\nkind = \"json\"\npath = \"/j\"\nbearer_token_file = {:?}\nphone_pointer = \"/p\"\ntemplate = \"Login code {{code}}\"\ncode_pointer = \"/c\"\n\
         [[endpoint]]\nkind = \"twilio\"\naccount_sid = \"{ACCOUNT}\"\nauth_token_file = {:?}\n",
        file("sb", &format!("v1,{SW}")),
        file("sw", SW),
        file("zk", ZITADEL),
        file("bt", BEARER),
        file("tt", TOKEN),
    );
    let (config, public, admin) = write_config(dir.path(), &[link], &extra);
    let log_path = dir.path().join("service.log");
    let mut service =
        ServiceProcess::start_logging(&config, "trace", std::fs::File::create(&log_path).unwrap());
    let client = reqwest::Client::new();
    wait_for_200(
        &client,
        &format!("http://{admin}/readyz"),
        Duration::from_secs(30),
    )
    .await;
    let url = |p: &str| format!("http://{public}{p}");
    let ts = || (now_ms() / 1000).to_string();
    let sw_keys = Keys::standard_webhooks(SW).unwrap();
    let z_keys = Keys::raw_lines(ZITADEL).unwrap();

    let sw_post = async |path: &str, body: String| {
        let t = ts();
        client
            .post(url(path))
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", &t)
            .header(
                "webhook-signature",
                verify::sign_standard_webhooks(&sw_keys, "msg_1", &t, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let supabase = |phone: &str, otp: &str| {
        serde_json::json!({"user": {"phone": phone}, "sms": {"otp": otp}}).to_string()
    };
    // Accepted, then a retry (deduplicated), then refused (premium rate).
    assert_eq!(sw_post("/s", supabase("447400123451", "735194")).await, 200);
    assert_eq!(sw_post("/s", supabase("447400123451", "735194")).await, 200);
    assert_eq!(sw_post("/s", supabase("19005550123", "930411")).await, 422);
    let sw_body =
        serde_json::json!({"p": "+4915123456782", "t": "Ihr Bestätigungscode lautet 628410"})
            .to_string();
    assert_eq!(sw_post("/w", sw_body).await, 200);
    let z_body = serde_json::json!({"contextInfo": {"recipientPhoneNumber": "+12015550123"}, "templateData": {"text": "Код подтверждения: 551903"}, "args": {"code": "551903"}}).to_string();
    let t = ts();
    let r = client
        .post(url("/z"))
        .header(
            "ZITADEL-Signature",
            verify::sign_zitadel(&z_keys, &t, z_body.as_bytes()),
        )
        .body(z_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(url("/j"))
        .header("authorization", format!("Bearer {BEARER}"))
        .body(serde_json::json!({"p": "+447400123459", "c": "204817"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = client
        .post(url(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        )))
        .header("authorization", verify::basic(ACCOUNT, TOKEN))
        .form(&[
            ("To", "+12015550124"),
            ("Body", "Your verification code is 480213"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(url(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        )))
        .header("authorization", verify::basic(ACCOUNT, TOKEN))
        .form(&[
            ("To", "+15551234567"),
            ("Body", "Your verification code is 771234"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    eventually(Duration::from_secs(20), "five messages sent", async || {
        (sim.received().len() >= 5).then_some(())
    })
    .await;
    // Give the log a moment to hold the sends' lines before the process is killed.
    eventually(Duration::from_secs(10), "the sends logged", async || {
        let log = std::fs::read_to_string(&log_path).ok()?;
        (log.matches("message sent").count() >= 5).then_some(())
    })
    .await;
    service.kill_9();

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("duplicate of an accepted message"),
        "the retry is logged:\n{log}"
    );
    assert!(
        log.contains("request refused"),
        "refusals are logged:\n{log}"
    );
    for secret in [
        "735194",
        "930411",
        "628410",
        "551903",
        "204817",
        "480213",
        "771234",
        "Bestätigungscode",
        "Код",
        "verification code",
        "Login code",
        "447400123451",
        "19005550123",
        "4915123456782",
        "12015550123",
        "447400123459",
        "12015550124",
        "15551234567",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}
