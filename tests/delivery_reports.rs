//! Delivery reports end to end through the running service (issue 9 item 7): the
//! simulated modem on a pty sends a status report (`+CDS`) for each part of a 3-part
//! message; the status page says `delivered` only once every part's report says so, and
//! `failed` as soon as one part's report is a permanent error.

mod support;

use std::time::Duration;

use smsbridge::sim::model::Fault;
use smsbridge::sim::profile::Profile;
use smsbridge::sim::pty::SimHandle;
use support::{
    ServiceProcess, api_status, body, eventually, post_signed, sim_at, wait_for_200, write_config,
};

const WAIT: Duration = Duration::from_secs(30);

/// A text of three GSM 7-bit parts.
fn three_part_text() -> String {
    "Your code is 123456. ".repeat(18)
}

/// The newest message's delivery summary from `/api/status`: (state, delivered, failed).
fn delivery(status: &serde_json::Value) -> Option<(String, u64, u64)> {
    let d = &status["recent_messages"][0]["delivery"];
    Some((
        d["state"].as_str()?.to_string(),
        d["parts_delivered"].as_u64()?,
        d["parts_failed"].as_u64()?,
    ))
}

/// A fast simulated modem, the service in front of it, and one 3-part message accepted.
async fn send_three_parts(
    dir: &std::path::Path,
    fault: Fault,
) -> (SimHandle, ServiceProcess, std::net::SocketAddr) {
    let link = dir.join("modem0");
    let sim = sim_at(&link, Profile::Generic, None).await;
    // Before any part is sent, so the fault is in force when the reports fall due.
    sim.set_fault(fault);
    let (config, public, admin) = write_config(dir, &[link], "");
    let client = reqwest::Client::new();
    let service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;
    let response = post_signed(
        &client,
        &format!("http://{public}/ownid/sms"),
        &body("+447400123456", &three_part_text()),
    )
    .await;
    assert_eq!(response.status(), 202);
    (sim, service, admin)
}

/// Part 3's report is held back: with parts 1 and 2 reported delivered the message is
/// still pending; once part 3's report comes it is delivered.
#[tokio::test]
async fn a_message_is_delivered_only_when_every_part_is() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _service, admin) =
        send_three_parts(dir.path(), Fault::HoldStatusReport { part: 3 }).await;
    let client = reqwest::Client::new();

    let seen = eventually(WAIT, "parts 1 and 2 reported", async || {
        let status = api_status(&client, admin).await?;
        let d = delivery(&status)?;
        (d.1 == 2).then_some((status, d))
    })
    .await;
    let (status, (state, delivered, failed)) = seen;
    assert_eq!(sim.received().len(), 3, "all three parts at the network");
    assert_eq!(status["recent_messages"][0]["state"], "sent");
    assert_eq!(
        (state.as_str(), delivered, failed),
        ("pending", 2, 0),
        "not delivered while part 3's report is missing"
    );

    sim.clear_fault(&Fault::HoldStatusReport { part: 0 });
    let (state, delivered, failed) = eventually(WAIT, "part 3 reported", async || {
        let d = delivery(&api_status(&client, admin).await?)?;
        (d.1 + d.2 == 3).then_some(d)
    })
    .await;
    assert_eq!((state.as_str(), delivered, failed), ("delivered", 3, 0));
}

/// Part 2's report is a permanent error (TP-Status 0x41, incompatible destination): the
/// message is failed even though parts 1 and 3 were delivered.
#[tokio::test]
async fn one_part_permanently_failed_makes_the_message_undelivered() {
    let dir = tempfile::tempdir().unwrap();
    let fault = Fault::StatusReportStatus {
        part: 2,
        status: 0x41,
    };
    let (sim, _service, admin) = send_three_parts(dir.path(), fault).await;
    let client = reqwest::Client::new();

    let status = eventually(WAIT, "all three parts reported", async || {
        let status = api_status(&client, admin).await?;
        let d = delivery(&status)?;
        (d.1 + d.2 == 3).then_some(status)
    })
    .await;
    assert_eq!(sim.received().len(), 3);
    let (state, delivered, failed) = delivery(&status).unwrap();
    assert_eq!((state.as_str(), delivered, failed), ("failed", 2, 1));
}
