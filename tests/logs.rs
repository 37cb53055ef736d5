//! What the service writes to its log: at the most verbose level, through accepted, refused,
//! sent, multi-part and failed messages, never an OTP code, a message text or a full phone
//! number.

mod support;

use std::time::Duration;

use smsbridge::sim::model::Fault;
use smsbridge::sim::profile::Profile;
use support::{
    ServiceProcess, api_status, body, eventually, post_signed, queue_count, sim_at, wait_for_200,
    write_config,
};

#[tokio::test]
async fn no_code_text_or_full_number_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    let sim = sim_at(&link, Profile::E3372, None).await;
    let (config, public, admin) = write_config(dir.path(), &[link], "");
    let log_path = dir.path().join("service.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut service = ServiceProcess::start_logging(&config, "trace", log);
    let client = reqwest::Client::new();
    wait_for_200(
        &client,
        &format!("http://{admin}/readyz"),
        Duration::from_secs(30),
    )
    .await;
    let url = format!("http://{public}/ownid/sms");

    let messages = [
        ("+447400123451", "Your verification code is 735194"),
        (
            "+4915123456782",
            "Ihr Bestätigungscode lautet 628410. Geben Sie ihn niemandem weiter, auch nicht unserem Support, der Sie niemals danach fragen wird. Gültig zehn Minuten. Wenn Sie diese Anmeldung nicht angefordert haben, ignorieren Sie diese Nachricht.",
        ),
        ("+12015550123", "Код подтверждения: 551903"),
    ];
    for (number, text) in messages {
        assert_eq!(
            post_signed(&client, &url, &body(number, text))
                .await
                .status(),
            202
        );
    }
    // A refused request (premium rate) and a failed send (unknown subscriber) are logged too.
    assert_eq!(
        post_signed(&client, &url, &body("+19005550123", "Your code is 930411"))
            .await
            .status(),
        422
    );
    eventually(Duration::from_secs(20), "three messages sent", async || {
        (sim.received().len() >= 4).then_some(())
    })
    .await;
    sim.set_fault(Fault::CmsErrorForNextSends { code: 1, count: 1 });
    assert_eq!(
        post_signed(&client, &url, &body("+447400123459", "Your code is 204817"))
            .await
            .status(),
        202
    );
    eventually(
        Duration::from_secs(20),
        "the failure recorded",
        async || {
            let status = api_status(&client, admin).await?;
            (queue_count(&status, "failed") == 1).then_some(())
        },
    )
    .await;
    service.kill_9();

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("message sent"),
        "the log has the sends at all:\n{log}"
    );
    let mut secrets: Vec<&str> = vec![
        "735194",
        "628410",
        "551903",
        "930411",
        "204817",
        "Bestätigungscode",
        "Код",
        "verification code",
        "447400123451",
        "4915123456782",
        "12015550123",
        "19005550123",
        "447400123459",
    ];
    // The numbers' swapped-BCD form, as they appear inside a PDU.
    secrets.extend(["444700214315", "945121436587F2"]);
    for secret in secrets {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}
