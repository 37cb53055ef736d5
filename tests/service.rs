//! The service end to end, in process: real HTTP over loopback, the real outbox on a SQLite
//! file, the real modem driver on pseudo-terminals served by the simulated modem.

mod support;

use std::time::Duration;

use smsbridge::config::Config;
use smsbridge::outbox::MessageState;
use smsbridge::service::Service;
use smsbridge::sim::model::Fault;
use smsbridge::sim::pty::{SimEvent, SimHandle};
use smsbridge::sms::{self, Pdu, PhoneNumber, SubmitOptions};
use support::{
    body, eventually, in_process_config, now_ms, post_signed, post_with, sign, simulated_modems,
    start_in_process,
};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    service: Service,
    sims: Vec<SimHandle>,
    client: reqwest::Client,
    _dir: TempDir,
}

impl Harness {
    /// A service with `modems` simulated modems; `tweak` adjusts the configuration.
    async fn start(modems: usize, tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (sims, tables) = simulated_modems(dir.path(), modems).await;
        let mut config = in_process_config(dir.path(), &tables);
        config.queue.retry_backoff_initial = Duration::from_millis(50);
        config.queue.retry_backoff_max = Duration::from_millis(200);
        tweak(&mut config);
        let service = start_in_process(config).await;
        Harness {
            service,
            sims,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/ownid/sms", self.service.public_addr)
    }

    fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.service.admin_addr)
    }

    async fn post(&self, number: &str, text: &str) -> reqwest::StatusCode {
        post_signed(&self.client, &self.url(), &body(number, text))
            .await
            .status()
    }

    /// The admin listener's `/api/status`, or `None` while it does not answer.
    async fn status(&self) -> Option<serde_json::Value> {
        self.client
            .get(self.admin("/api/status"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Each modem's state as `/api/status` shows it, in configuration order.
    async fn modem_states(&self) -> Option<Vec<String>> {
        let status = self.status().await?;
        status["modems"]
            .as_array()?
            .iter()
            .map(|m| m["state"].as_str().map(str::to_owned))
            .collect()
    }

    async fn wait_ready(&self) {
        support::wait_for_200(&self.client, &self.admin("/readyz"), WAIT).await;
    }

    /// Messages in the outbox, newest first.
    async fn messages(&self) -> Vec<smsbridge::outbox::MessageSummary> {
        self.service.app.outbox.recent(100).await.unwrap()
    }

    async fn wait_for_state(
        &self,
        count: usize,
        state: MessageState,
    ) -> Vec<smsbridge::outbox::MessageSummary> {
        eventually(WAIT, &format!("{count} messages {state}"), async || {
            let messages = self.messages().await;
            (messages.len() == count && messages.iter().all(|m| m.state == state))
                .then_some(messages)
        })
        .await
    }
}

/// What the codec produces for `text` to `number`, as the service should have sent it.
fn expected_pdus(number: &str, text: &str, reference: u16) -> Vec<String> {
    let options = SubmitOptions {
        validity: Duration::from_secs(600),
        status_report: true,
        ..SubmitOptions::default()
    };
    let to = PhoneNumber::parse(number).unwrap();
    sms::encode_submit(&to, text, reference, &options)
        .unwrap()
        .iter()
        .map(|p| p.hex())
        .collect()
}

fn concat_reference(pdu_hex: &str) -> u16 {
    let pdu = sms::decode_pdu(&sms::decode_hex(pdu_hex).unwrap()).unwrap();
    assert!(matches!(pdu, Pdu::Submit(_)), "not a SUBMIT: {pdu:?}");
    pdu.udh()
        .and_then(|udh| udh.concat())
        .map(|c| c.reference)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_signed_request_becomes_the_expected_pdu_at_the_modem() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    let text = "Your verification code is 482910";
    assert_eq!(h.post("+447400123456", text).await, 202);

    let received = eventually(WAIT, "the PDU at the modem", async || {
        let r = h.sims[0].received();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].pdu_hex,
        expected_pdus("+447400123456", text, 0)[0]
    );
    let messages = h.wait_for_state(1, MessageState::Sent).await;
    assert_eq!(messages[0].to_masked, "+44********56");
    assert_eq!(messages[0].modem.as_deref(), Some("modem0"));
    h.service.stop().await;
}

#[tokio::test]
async fn a_long_text_goes_out_as_concatenated_parts_in_order() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    let text = "Ваш код подтверждения: 482910. Никому не сообщайте этот код, даже сотрудникам поддержки. Срок действия кода — десять минут.";
    assert_eq!(h.post("+4915123456789", text).await, 202);
    h.wait_for_state(1, MessageState::Sent).await;
    let received = h.sims[0].received();
    assert_eq!(
        received.len(),
        2,
        "{} UCS-2 characters need two parts",
        text.chars().count()
    );
    let reference = concat_reference(&received[0].pdu_hex);
    let got: Vec<String> = received.iter().map(|r| r.pdu_hex.clone()).collect();
    assert_eq!(got, expected_pdus("+4915123456789", text, reference));
    h.service.stop().await;
}

#[tokio::test]
async fn every_refusal_answers_its_status_and_stores_nothing() {
    let h = Harness::start(1, |c| c.limits.max_parts = 2).await;
    h.wait_ready().await;
    let now = now_ms().to_string();
    let good = body("+447400123456", "Your code is 123456");
    let sig = sign(&good, &now);
    let stale = (now_ms() - 61_000).to_string();
    let future = (now_ms() + 61_000).to_string();
    // (what, body, ownid-timestamp, ownid-signature, expected status)
    type Case<'a> = (&'a str, String, Option<String>, Option<String>, u16);
    let cases: Vec<Case> = vec![
        ("no signature", good.clone(), Some(now.clone()), None, 401),
        ("no timestamp", good.clone(), None, Some(sig.clone()), 401),
        (
            "wrong signature",
            good.clone(),
            Some(now.clone()),
            Some(sign("{}", &now)),
            401,
        ),
        (
            "signature not base64",
            good.clone(),
            Some(now.clone()),
            Some("***".into()),
            401,
        ),
        (
            "stale timestamp",
            good.clone(),
            Some(stale.clone()),
            Some(sign(&good, &stale)),
            401,
        ),
        (
            "future timestamp",
            good.clone(),
            Some(future.clone()),
            Some(sign(&good, &future)),
            401,
        ),
        (
            "timestamp in seconds text",
            good.clone(),
            Some("soon".into()),
            Some(sign(&good, "soon")),
            401,
        ),
        (
            "malformed JSON",
            "{\"phoneNumber\":".into(),
            None,
            None,
            400,
        ),
        (
            "missing field",
            r#"{"phoneNumber":"+447400123456","code":"1"}"#.into(),
            None,
            None,
            400,
        ),
        (
            "wrong type",
            r#"{"phoneNumber":447400123456,"messageText":"x","code":"1"}"#.into(),
            None,
            None,
            400,
        ),
        (
            "not E.164",
            body("0044 7400 123456", "Your code is 1"),
            None,
            None,
            422,
        ),
        (
            "invalid for its country",
            body("+15551234567", "Your code is 1"),
            None,
            None,
            422,
        ),
        (
            "premium rate",
            body("+19005550123", "Your code is 1"),
            None,
            None,
            422,
        ),
        (
            "fixed line",
            body("+442079460000", "Your code is 1"),
            None,
            None,
            422,
        ),
        ("empty text", body("+447400123456", ""), None, None, 422),
        (
            "too many parts",
            body("+447400123456", &"x".repeat(153 * 2 + 1)),
            None,
            None,
            422,
        ),
        (
            "too large",
            body("+447400123456", &"x".repeat(17 * 1024)),
            None,
            None,
            413,
        ),
    ];
    for (what, body, ts, sig, status) in cases {
        // Cases without explicit headers are signed correctly, so only the payload is wrong.
        let (ts, sig) = match (ts, sig) {
            (None, None) => {
                let ts = now_ms().to_string();
                let sig = sign(&body, &ts);
                (Some(ts), Some(sig))
            }
            other => other,
        };
        let response = post_with(&h.client, &h.url(), &body, ts.as_deref(), sig.as_deref()).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        let json: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: error body {json}"
        );
    }
    assert!(
        h.messages().await.is_empty(),
        "a refused request stored something"
    );
    // Instead of waiting a while for a send that should not come: a valid message after
    // the refusals goes out, and it is the only PDU the modem ever got.
    assert_eq!(h.post("+447400123456", "Your code is 9").await, 202);
    h.wait_for_state(1, MessageState::Sent).await;
    assert_eq!(h.sims[0].received().len(), 1, "a refused request was sent");
    h.service.stop().await;
}

#[tokio::test]
async fn a_replayed_request_is_refused() {
    let h = Harness::start(1, |_| {}).await;
    let body = body("+447400123456", "Your code is 123456");
    let ts = now_ms().to_string();
    let sig = sign(&body, &ts);
    let first = post_with(&h.client, &h.url(), &body, Some(&ts), Some(&sig)).await;
    let replay = post_with(&h.client, &h.url(), &body, Some(&ts), Some(&sig)).await;
    assert_eq!(first.status(), 202);
    assert_eq!(replay.status(), 401);
    assert_eq!(h.messages().await.len(), 1);
    h.service.stop().await;
}

#[tokio::test]
async fn a_number_over_its_rate_limit_gets_429() {
    let h = Harness::start(0, |c| c.limits.per_number_count = 3).await;
    for i in 0..3 {
        assert_eq!(
            h.post("+447400123456", &format!("Your code is {i}")).await,
            202
        );
    }
    let response = post_signed(
        &h.client,
        &h.url(),
        &body("+447400123456", "Your code is 9"),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        h.post("+4915123456789", "Your code is 9").await,
        202,
        "other numbers are not limited"
    );
    assert_eq!(h.messages().await.len(), 4);
    h.service.stop().await;
}

#[tokio::test]
async fn a_full_outbox_answers_503() {
    let h = Harness::start(0, |c| c.queue.max_depth = 2).await;
    assert_eq!(h.post("+447400123456", "Your code is 1").await, 202);
    assert_eq!(h.post("+447400123457", "Your code is 2").await, 202);
    assert_eq!(h.post("+447400123458", "Your code is 3").await, 503);
    assert_eq!(h.messages().await.len(), 2);
    h.service.stop().await;
}

/// Issue 12: at an idle modem, an accept's claim reaches the modem before its commit, so
/// `AT+CMGS` and the prompt overlap the fsync and the PDU waits for the commit. A commit
/// that fails (the WAL cannot grow) ends the entry with ESC: the caller gets 503, no PDU
/// reaches the modem, nothing is stored, and the modem sends the next message.
#[tokio::test]
async fn a_commit_that_fails_after_the_prompt_sends_nothing() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    let mut events = h.sims[0].events();
    assert_eq!(h.post("+447400123456", "Your code is 1").await, 202);
    h.wait_for_state(1, MessageState::Sent).await;
    let outbox = &h.service.app.outbox;
    // The modem is offered as idle again once its send is recorded; an accept before that
    // is queued, not claimed (and refused just the same). So: until one was claimed and
    // the modem saw its entry cancelled.
    let mut cancelled = false;
    for attempt in 0..20 {
        outbox.inject_commit_failure(true);
        let status = h
            .post(&format!("+4474001235{attempt:02}"), "Your code is 2")
            .await;
        outbox.inject_commit_failure(false);
        assert_eq!(status, 503, "a failed commit is a passing refusal");
        loop {
            match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
                Ok(Ok(SimEvent::Received(sms))) if sms.destination == "+447400123456" => {}
                Ok(Ok(SimEvent::Cancelled)) => cancelled = true,
                Ok(other) => panic!("nothing else may reach the modem: {other:?}"),
                Err(_) => break,
            }
        }
        if cancelled {
            break;
        }
    }
    assert!(cancelled, "no accept found the modem idle");
    assert_eq!(
        h.sims[0].received().len(),
        1,
        "no PDU after the failed commit"
    );
    assert_eq!(h.messages().await.len(), 1, "nothing stored");
    // The store's trouble is not the modem's: its status shows no error for it.
    let status = h.status().await.expect("the status page answers");
    let modem = &status["modems"][0];
    assert_eq!(modem["state"], "ready", "{modem}");
    assert!(modem["last_error"].is_null(), "{modem}");

    assert_eq!(h.post("+447400123457", "Your code is 3").await, 202);
    h.wait_for_state(2, MessageState::Sent).await;
    let destinations: Vec<String> = h.sims[0]
        .received()
        .into_iter()
        .map(|r| r.destination)
        .collect();
    assert_eq!(destinations, ["+447400123456", "+447400123457"]);
    h.service.stop().await;
}

#[tokio::test]
async fn no_ready_modem_for_too_long_answers_503() {
    let h = Harness::start(0, |c| c.limits.no_modem_grace = Duration::ZERO).await;
    assert_eq!(h.post("+447400123456", "Your code is 1").await, 503);
    assert!(h.messages().await.is_empty());
    let ready = h.client.get(h.admin("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    h.service.stop().await;
}

#[tokio::test]
async fn a_message_not_sent_within_its_ttl_expires_and_is_never_sent() {
    // The modem answers nothing, so the message cannot go out before it expires.
    let h = Harness::start(1, |c| c.queue.ttl = Duration::from_millis(1500)).await;
    h.wait_ready().await;
    h.sims[0].set_fault(Fault::NoAnswer);
    assert_eq!(h.post("+447400123456", "Your code is 1").await, 202);
    h.wait_for_state(1, MessageState::Expired).await;
    h.sims[0].clear_faults();
    // The modem works again: a later message goes out, the expired one never does.
    assert_eq!(h.post("+447400123457", "Your code is 2").await, 202);
    eventually(WAIT, "the later message sent", async || {
        let messages = h.messages().await;
        messages
            .iter()
            .any(|m| m.state == MessageState::Sent)
            .then_some(())
    })
    .await;
    let messages = h.messages().await;
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.state == MessageState::Expired)
            .count(),
        1,
        "{messages:?}"
    );
    assert_eq!(h.sims[0].received().len(), 1, "an expired message was sent");
    h.service.stop().await;
}

#[tokio::test]
async fn temporary_errors_are_retried_until_the_message_is_sent() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    h.sims[0].set_fault(Fault::CmsErrorForNextSends { code: 42, count: 2 });
    assert_eq!(h.post("+447400123456", "Your code is 1").await, 202);
    let messages = h.wait_for_state(1, MessageState::Sent).await;
    assert_eq!(
        messages[0].attempts, 3,
        "two congestion errors, then success"
    );
    h.service.stop().await;
}

#[tokio::test]
async fn a_permanent_error_fails_the_message_without_retrying() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    h.sims[0].set_fault(Fault::CmsErrorForNextSends { code: 21, count: 5 });
    assert_eq!(h.post("+447400123456", "Your code is 1").await, 202);
    let messages = h.wait_for_state(1, MessageState::Failed).await;
    assert_eq!(messages[0].attempts, 1);
    assert!(
        messages[0]
            .last_error
            .as_deref()
            .is_some_and(|e| !e.is_empty())
    );
    h.service.stop().await;
}

#[tokio::test]
async fn messages_fail_over_to_the_modem_that_works() {
    let h = Harness::start(2, |_| {}).await;
    eventually(WAIT, "both modems ready", async || {
        let states = h.modem_states().await?;
        states.iter().all(|state| state == "ready").then_some(())
    })
    .await;
    h.sims[0].set_fault(Fault::CmsErrorForNextSends {
        code: 42,
        count: 1000,
    });
    for i in 0..4 {
        assert_eq!(
            h.post(&format!("+44740012345{i}"), &format!("Your code is {i}"))
                .await,
            202
        );
    }
    let messages = h.wait_for_state(4, MessageState::Sent).await;
    assert!(
        messages
            .iter()
            .all(|m| m.modem.as_deref() == Some("modem1")),
        "{messages:?}"
    );
    assert!(h.sims[0].received().is_empty());
    assert_eq!(h.sims[1].received().len(), 4);
    h.service.stop().await;
}

#[tokio::test]
async fn messages_wait_for_an_unplugged_modem_and_go_out_when_it_returns() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    h.sims[0].unplug().await;
    for i in 0..3 {
        assert_eq!(
            h.post(&format!("+44740012345{i}"), &format!("Your code is {i}"))
                .await,
            202
        );
    }
    // The worker has noticed: the modem is not ready, and nothing went out meanwhile.
    eventually(WAIT, "the unplugged modem not ready", async || {
        let states = h.modem_states().await?;
        (states.first()? != "ready").then_some(())
    })
    .await;
    assert!(h.sims[0].received().is_empty());
    h.sims[0].replug().await.unwrap();
    h.wait_for_state(3, MessageState::Sent).await;
    assert_eq!(h.sims[0].received().len(), 3);
    h.service.stop().await;
}

#[tokio::test]
async fn the_admin_listener_reports_health_metrics_and_status() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    assert_eq!(h.post("+447400123456", "Your code is 123456").await, 202);
    h.wait_for_state(1, MessageState::Sent).await;
    let get = |path: &'static str| {
        let client = h.client.clone();
        let url = h.admin(path);
        async move { client.get(url).send().await.unwrap() }
    };
    assert_eq!(get("/healthz").await.status(), 200);
    let metrics = get("/metrics").await.text().await.unwrap();
    for line in [
        "smsbridge_requests_total{outcome=\"accepted\"} 1",
        "smsbridge_sends_total{modem=\"modem0\",outcome=\"sent\"} 1",
        "smsbridge_send_latency_seconds_count 1",
        "smsbridge_modem_state{modem=\"modem0\",state=\"ready\"} 1",
        "smsbridge_queue_messages{state=\"sent\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
    // The accept (claimed in its own commit) and the outcome: at least two commits.
    let commits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("smsbridge_outbox_commits_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no commit counter in\n{metrics}"));
    assert!(commits >= 2, "{commits} commits for an accept and its send");
    // Each of them timed: the histogram's count is the commit counter (one scrape).
    let timed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("smsbridge_outbox_commit_seconds_count "))
        .unwrap_or_else(|| panic!("no commit histogram in\n{metrics}"));
    assert_eq!(timed, commits.to_string(), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("smsbridge_outbox_commit_seconds_bucket{le=\"0.0005\"} ")),
        "{metrics}"
    );
    let status: serde_json::Value = get("/api/status").await.json().await.unwrap();
    assert_eq!(status["queue"]["sent"], 1);
    assert_eq!(status["recent_messages"][0]["to"], "+44********56");
    assert!(
        status["modems"][0]["imei"]
            .as_str()
            .is_some_and(|i| i.len() == 15)
    );
    let page = get("/").await.text().await.unwrap();
    assert!(page.contains("+44********56") && !page.contains("+447400123456"));
    assert!(
        !page.contains("123456</"),
        "the code must not appear on the page"
    );
    h.service.stop().await;
}

/// Debian's Chromium, installed by `scripts/install-test-deps`.
const CHROMIUM: &str = "/usr/bin/chromium";

async fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output();
    match tokio::time::timeout(Duration::from_secs(60), output).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("cannot run {CHROMIUM} ({error}): run scripts/install-test-deps"),
        Err(_) => panic!("{CHROMIUM} did not finish within 60 s"),
    }
}

#[tokio::test]
async fn the_status_page_renders_in_headless_chromium() {
    let h = Harness::start(1, |_| {}).await;
    h.wait_ready().await;
    for i in 0..3 {
        assert_eq!(
            h.post(
                &format!("+44740012345{i}"),
                &format!("Your code is 99887{i}")
            )
            .await,
            202
        );
    }
    h.wait_for_state(3, MessageState::Sent).await;
    let url = h.admin("/");

    // The DOM as Chromium built it: the modem, the queue, masked numbers, no codes.
    let dom = chromium(&["--dump-dom", &url]).await;
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<h2>Modems</h2>"), "{dom}");
    assert!(
        dom.contains("class=\"ready\">ready<"),
        "the modem shows as ready"
    );
    assert!(
        dom.contains("SIMULATED-3GPP"),
        "the modem's identity is shown"
    );
    assert!(dom.contains("sent: <b>3</b>"), "the queue counts are shown");
    assert!(
        dom.contains("+44********50") && !dom.contains("+447400123450"),
        "numbers are masked"
    );
    assert!(!dom.contains("998870"), "no code on the page");
    assert!(dom.contains("<svg"), "the sends chart is there");
    assert!(
        dom.contains("<th>Accepted</th><th>Sent</th>") && dom.contains("Rendered "),
        "times are shown"
    );
    assert!(
        !dom.contains("class=\"banner\""),
        "no refusal banner while ready"
    );

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&[
        "--window-size=1280,900",
        &format!("--screenshot={}", shot.display()),
        &url,
    ])
    .await;
    let png = std::fs::read(&shot).expect("Chromium saved a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot at {}",
        shot.display()
    );
    h.service.stop().await;
}
