//! `kill -9` of the service process while messages are queued and while one is being sent:
//! after a restart every accepted message is sent. The simulated modems live in this test
//! process, so they see every PDU across the service's restarts.

mod support;

use std::time::Duration;

use smsbridge::sim::profile::Profile;
use support::{
    ServiceProcess, api_status, body, eventually, post_signed, queue_count, sim_at, wait_for_200,
    write_config,
};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn queued_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    // No modem behind the link yet: accepted messages stay queued.
    let (config, public, admin) = write_config(dir.path(), std::slice::from_ref(&link), "");
    let client = reqwest::Client::new();
    let mut service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/healthz"), WAIT).await;
    let url = format!("http://{public}/ownid/sms");
    for i in 0..5 {
        let response = post_signed(
            &client,
            &url,
            &body(&format!("+44740012345{i}"), &format!("Code {i}")),
        )
        .await;
        assert_eq!(response.status(), 202);
    }
    service.kill_9();

    let sim = sim_at(&link, Profile::Generic, None).await;
    let _service = ServiceProcess::start(&config);
    eventually(WAIT, "5 messages sent after the restart", async || {
        let status = api_status(&client, admin).await?;
        (queue_count(&status, "sent") == 5).then_some(())
    })
    .await;
    let mut destinations: Vec<String> = sim
        .received()
        .iter()
        .map(|r| r.destination.clone())
        .collect();
    destinations.sort();
    let expected: Vec<String> = (0..5).map(|i| format!("+44740012345{i}")).collect();
    assert_eq!(
        destinations, expected,
        "each accepted message sent exactly once"
    );
}

#[tokio::test]
async fn a_message_being_sent_during_kill_9_is_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    // Slow enough that the service is killed between the PDU and the network's answer.
    let sim = sim_at(&link, Profile::Generic, Some(Duration::from_secs(3))).await;
    let (config, public, admin) = write_config(dir.path(), &[link], "");
    let client = reqwest::Client::new();
    let mut service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;
    let response = post_signed(
        &client,
        &format!("http://{public}/ownid/sms"),
        &body("+447400123456", "Code 1"),
    )
    .await;
    assert_eq!(response.status(), 202);
    eventually(WAIT, "the PDU at the modem", async || {
        (!sim.received().is_empty()).then_some(())
    })
    .await;
    service.kill_9();

    let _service = ServiceProcess::start(&config);
    eventually(WAIT, "the message sent after the restart", async || {
        let status = api_status(&client, admin).await?;
        (queue_count(&status, "sent") == 1).then_some(())
    })
    .await;
    // The interrupted send's outcome was never recorded, so it is sent again: at least once.
    let received = sim.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].destination, received[1].destination);
    assert_eq!(received[0].tpdu_len, received[1].tpdu_len);
}
