//! Exactly once through the real service and pty (issue 9): the simulated modem lives in
//! this test process and sees every part across the service's restarts; each part is
//! counted by its concatenation reference and part number, decoded from its header.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use smsbridge::sim::model::Fault;
use smsbridge::sim::profile::Profile;
use smsbridge::sim::pty::SimHandle;
use support::{
    ServiceProcess, api_status, body, eventually, post_signed, queue_count, sim_at, wait_for_200,
    write_config,
};

const WAIT: Duration = Duration::from_secs(30);

/// How many times the network got each part, keyed by (reference, part number).
fn part_counts(sim: &SimHandle) -> BTreeMap<(u16, u8), usize> {
    let mut counts = BTreeMap::new();
    for sms in sim.received() {
        let concat = sms.concat.expect("a part of a concatenated message");
        *counts.entry((concat.reference, concat.seq)).or_insert(0) += 1;
    }
    counts
}

/// A text of three GSM 7-bit parts.
fn three_part_text() -> String {
    "Your code is 123456. ".repeat(18)
}

fn parts_sent(status: &serde_json::Value) -> Option<u64> {
    status["recent_messages"][0]["parts_sent"].as_u64()
}

/// kill -9 after part 1 of 3 was accepted and while the service waits to send part 2: the
/// restarted service sends parts 2 and 3 only, under the same reference (before parts were
/// recorded one by one, the network got parts 1, 1, 2, 3).
#[tokio::test]
async fn a_kill_9_between_parts_resends_no_part() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    // Slow, so part 1 is at the modem long enough to hold part 2 back meanwhile.
    let sim = sim_at(&link, Profile::Generic, Some(Duration::from_millis(1500))).await;
    let (config, public, admin) = write_config(dir.path(), &[link], "");
    let client = reqwest::Client::new();
    let mut service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;
    let response = post_signed(
        &client,
        &format!("http://{public}/ownid/sms"),
        &body("+447400123456", &three_part_text()),
    )
    .await;
    assert_eq!(response.status(), 202);
    eventually(WAIT, "part 1 at the modem", async || {
        (!sim.received().is_empty()).then_some(())
    })
    .await;
    // Part 2's AT+CMGS gets no prompt: the service is stuck between parts.
    sim.set_fault(Fault::NoPromptOnCmgs);
    // Recorded while the send is still under way (not by the retry after part 2's prompt
    // timeout, which a crash would never reach).
    eventually(WAIT, "part 1 recorded while the send goes on", async || {
        let status = api_status(&client, admin).await?;
        let state = status["recent_messages"][0]["state"].as_str()?;
        (parts_sent(&status) == Some(1) && state == "sending").then_some(())
    })
    .await;
    assert_eq!(sim.received().len(), 1, "part 2 was not written");
    service.kill_9();
    sim.clear_faults();

    let _service = ServiceProcess::start(&config);
    eventually(WAIT, "the message sent after the restart", async || {
        let status = api_status(&client, admin).await?;
        (queue_count(&status, "sent") == 1).then_some(())
    })
    .await;
    let counts = part_counts(&sim);
    eprintln!("per-part counts at the modem: {counts:?}");
    let reference = counts.keys().next().unwrap().0;
    let expected: BTreeMap<(u16, u8), usize> = (1..=3).map(|n| ((reference, n), 1)).collect();
    assert_eq!(
        counts, expected,
        "each part exactly once, under one reference"
    );
}

/// Mounts a small tmpfs at `dir` (root only); `None` where mounting is not allowed.
fn mount_tmpfs(dir: &std::path::Path, size: &str) -> Option<()> {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .status()
        .ok()?;
    status.success().then_some(())
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `path` until a write fails with "no space".
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    // Whatever is left, byte by byte.
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
}

/// The disk holding the outbox fills while an SMS is at the modem: the outcome is kept and
/// recorded once space returns (never sent again), new requests get 503 with Retry-After
/// meanwhile, `/readyz` says the store cannot write, and a message accepted before the
/// disk filled is picked up by itself once it writes again.
#[tokio::test]
async fn an_outcome_is_recorded_after_the_disk_fills_and_never_resent() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    if mount_tmpfs(&state, "8m").is_none() {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _unmount = Unmount(state.clone());
    let link = dir.path().join("modem0");
    let sim = sim_at(&link, Profile::Generic, Some(Duration::from_millis(1500))).await;
    let (config, public, admin) = write_config(dir.path(), &[link], "");
    let client = reqwest::Client::new();
    let service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;
    let url = format!("http://{public}/ownid/sms");
    let response = post_signed(&client, &url, &body("+447400123456", "Code 1")).await;
    assert_eq!(response.status(), 202);
    // Queued behind the first while the modem is busy: claimed only after the disk fills.
    let response = post_signed(&client, &url, &body("+447400123458", "Code 3")).await;
    assert_eq!(response.status(), 202);
    eventually(WAIT, "the SMS at the modem", async || {
        (!sim.received().is_empty()).then_some(())
    })
    .await;
    let filler = state.join("filler");
    fill(&filler);

    eventually(
        WAIT,
        "/readyz refusing while the store cannot write",
        async || {
            let response = client
                .get(format!("http://{admin}/readyz"))
                .send()
                .await
                .ok()?;
            (response.status() == 503).then_some(())
        },
    )
    .await;
    let refused = post_signed(&client, &url, &body("+447400123457", "Code 2")).await;
    assert_eq!(refused.status(), 503, "a full disk is a passing refusal");
    assert!(
        refused.headers().get("retry-after").is_some(),
        "503 says when to retry"
    );

    std::fs::remove_file(&filler).unwrap();
    // No new request wakes the dispatcher: it retries the store by itself.
    eventually(
        WAIT,
        "both recorded and sent once space returned",
        async || {
            let status = api_status(&client, admin).await?;
            (queue_count(&status, "sent") == 2 && queue_count(&status, "sending") == 0)
                .then_some(())
        },
    )
    .await;
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;
    drop(service);
    // A restart finds nothing to resend.
    let _service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;
    let status = api_status(&client, admin).await.unwrap();
    assert_eq!(queue_count(&status, "sent"), 2);
    assert_eq!(queue_count(&status, "queued"), 0);
    let mut destinations: Vec<String> = sim.received().into_iter().map(|r| r.destination).collect();
    destinations.sort();
    assert_eq!(
        destinations,
        ["+447400123456", "+447400123458"],
        "each SMS reached the network once"
    );
}

/// A Turkish text accepted as 3 UCS-2 parts stays 3 parts after the configuration allows
/// the Turkish shift tables (which would make it 2) and the service restarts: the plan is
/// fixed at acceptance. (Before: 2 parts sent, the outcome unrecordable, the message left
/// `sending` and sent whole again at each start.)
#[tokio::test]
async fn a_configuration_change_does_not_replan_a_queued_message() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    // No modem yet: the message stays queued.
    let (config, public, admin) = write_config(dir.path(), std::slice::from_ref(&link), "");
    let client = reqwest::Client::new();
    let mut service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/healthz"), WAIT).await;
    let text = "Doğrulama kodunuz: 123456. ".repeat(7);
    let response = post_signed(
        &client,
        &format!("http://{public}/ownid/sms"),
        &body("+905321234567", &text),
    )
    .await;
    assert_eq!(response.status(), 202);
    let status = api_status(&client, admin).await.unwrap();
    assert_eq!(status["recent_messages"][0]["parts"].as_u64(), Some(3));
    service.kill_9();

    let (config, _, admin) = write_config(
        dir.path(),
        std::slice::from_ref(&link),
        "[sms]\nnational_languages = [\"turkish\"]\n",
    );
    let sim = sim_at(&link, Profile::Generic, None).await;
    let _service = ServiceProcess::start(&config);
    eventually(
        WAIT,
        "the message sent under the new configuration",
        async || {
            let status = api_status(&client, admin).await?;
            (queue_count(&status, "sent") == 1).then_some(())
        },
    )
    .await;
    let counts = part_counts(&sim);
    eprintln!("per-part counts at the modem: {counts:?}");
    let reference = counts.keys().next().unwrap().0;
    let expected: BTreeMap<(u16, u8), usize> = (1..=3).map(|n| ((reference, n), 1)).collect();
    assert_eq!(counts, expected, "3 parts as accepted, each once");
    let status = api_status(&client, admin).await.unwrap();
    assert_eq!(queue_count(&status, "sending"), 0);
}
