//! The modem driver against every fault the simulated modem can play, through a real
//! pseudo-terminal opened with tokio-serial: the driver succeeds or returns a clear,
//! classified error, never waits past its timeouts (every wait here is bounded), and
//! recovers by itself once the fault is gone.

mod modem_support;

use std::time::Duration;

use modem_support::{Driver, bounded, config, parts, start_sim, start_sim_with, three_part_text};
use smsbridge::modem::{ModemState, SendError};
use smsbridge::sim::{Fault, Profile, SimConfig, SimEvent};

/// The references of the parts sent before a failure, and the failure's kind.
fn kind(error: &SendError) -> (&'static str, &[u8]) {
    (error.kind(), error.sent())
}

/// The failing text of a modem whose every domain is searching.
fn searching(last_error: Option<&str>) {
    let text = last_error.unwrap_or("");
    assert!(
        text.starts_with("not registered: CS (2G/3G): searching for a network"),
        "{text}"
    );
    assert!(!text.contains(": registered"), "{text}");
}

/// Sends a three-part message and switches `fault` on as soon as the simulator has
/// accepted the first part, so that it hits the second. The simulator's send latency
/// (300 ms) leaves the test ample time to switch the fault on before the second PDU.
async fn fail_the_second_part(code: u16) -> (Vec<u8>, SendError, Vec<u8>) {
    let mut sim_config = SimConfig::fast(Profile::Generic);
    sim_config.modem.send_latency = Duration::from_millis(300);
    let sim = start_sim_with(sim_config).await;
    let driver = Driver::spawn(config("cms", sim.path()));
    driver.wait_state(ModemState::Ready).await;
    let first = driver.send(parts("before", 1, false)).await.expect("sent");
    let mut events = sim.events();
    let (result, ()) = tokio::join!(driver.send(parts(&three_part_text(), 2, false)), async {
        loop {
            match bounded("the first part", events.recv()).await {
                Ok(SimEvent::Received(_)) => break,
                Ok(_) => {}
                Err(error) => panic!("simulator events: {error}"),
            }
        }
        sim.set_fault(Fault::CmsErrorForNextSends { code, count: 1 });
    });
    let error = result.expect_err("the second part is refused");
    // The modem is still fine: the next message goes through.
    let after = driver
        .send(parts("after", 3, false))
        .await
        .expect("sent after the error");
    assert_eq!(driver.status().state, ModemState::Ready);
    (first, error, after)
}

#[tokio::test]
async fn a_temporary_cms_error_is_temporary_with_the_references_already_sent() {
    // 42: congestion (TS 24.011 E.2), worth a retry.
    let (first, error, _) = fail_the_second_part(42).await;
    let (kind, sent) = kind(&error);
    assert_eq!(kind, "temporary", "{error}");
    assert_eq!(
        sent,
        &[first[0].wrapping_add(1)],
        "the first part's reference"
    );
    assert!(error.to_string().contains("part 2 of 3"), "{error}");
    assert!(error.to_string().contains("42"), "{error}");
}

#[tokio::test]
async fn permanent_cms_errors_are_permanent_with_the_references_already_sent() {
    // 21: short message transfer rejected; 304: invalid PDU mode parameter.
    for code in [21, 304] {
        let (first, error, _) = fail_the_second_part(code).await;
        let (kind, sent) = kind(&error);
        assert_eq!(kind, "permanent", "{error}");
        assert_eq!(sent, &[first[0].wrapping_add(1)]);
        assert!(error.to_string().contains(&code.to_string()), "{error}");
    }
}

#[tokio::test]
async fn a_cms_error_on_a_single_part_reports_nothing_sent() {
    let sim = start_sim(Profile::Ec25).await;
    let driver = Driver::spawn(config("cms1", sim.path()));
    driver.wait_state(ModemState::Ready).await;
    sim.set_fault(Fault::CmsErrorForNextSends { code: 38, count: 2 });
    for _ in 0..2 {
        let error = driver
            .send(parts("x", 1, false))
            .await
            .expect_err("refused");
        assert_eq!(kind(&error), ("temporary", &[][..]), "{error}");
    }
    driver
        .send(parts("x", 1, false))
        .await
        .expect("the fault was for two sends only");
}

#[tokio::test]
async fn a_silent_modem_fails_within_the_timeouts_then_recovers_by_reset_and_reopen() {
    let sim = start_sim(Profile::Sim800).await;
    let driver = Driver::spawn(config("silent", sim.path()));
    driver.wait_state(ModemState::Ready).await;
    sim.set_fault(Fault::NoAnswer);

    // No prompt ever comes: the PDU did not go out.
    let error = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("no answer");
    assert_eq!(kind(&error).0, "temporary", "{error}");
    assert!(error.to_string().contains("prompt"), "{error}");

    // Idle health checks go unanswered; the driver resets the modem and reopens the port.
    let failing = driver.wait_state(ModemState::Failing).await;
    assert!(failing.last_error.is_some(), "{failing:?}");
    let refused = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("not ready");
    assert_eq!(kind(&refused).0, "temporary");
    assert!(refused.to_string().contains("failing"), "{refused}");

    sim.clear_faults();
    let ready = driver.wait_state(ModemState::Ready).await;
    assert_eq!(ready.last_error, None);
    let states = driver.states();
    let failing_at = states
        .iter()
        .position(|s| *s == ModemState::Failing)
        .unwrap();
    assert!(
        states[failing_at..].contains(&ModemState::Initialising),
        "reopened and initialised again: {states:?}"
    );
    driver
        .send(parts("x", 1, false))
        .await
        .expect("sent after recovery");
    assert_eq!(sim.received().len(), 1);
}

#[tokio::test]
async fn garbage_bytes_do_not_disturb_initialisation_or_sends() {
    for profile in [Profile::Generic, Profile::E3372] {
        let sim = start_sim(profile).await;
        sim.set_fault(Fault::Garbage);
        let driver = Driver::spawn(config("garbage", sim.path()));
        driver.wait_state(ModemState::Ready).await;
        let three = parts(&three_part_text(), 4, false);
        driver
            .send(three.clone())
            .await
            .expect("sent through the garbage");
        let received: Vec<String> = sim.received().into_iter().map(|r| r.pdu_hex).collect();
        let sent: Vec<String> = three.iter().map(|p| p.hex()).collect();
        assert_eq!(received, sent, "{profile}");
    }
}

#[tokio::test]
async fn a_notification_inside_an_answer_does_not_disturb() {
    for profile in [Profile::Ec25, Profile::E3372] {
        let sim = start_sim(profile).await;
        sim.set_fault(Fault::UrcInsideAnswer);
        let driver = Driver::spawn(config("noise", sim.path()));
        let ready = driver.wait_state(ModemState::Ready).await;
        assert!(ready.identity.imei.is_some(), "{profile}: {ready:?}");
        let references = driver
            .send(parts(&three_part_text(), 5, false))
            .await
            .expect("sent");
        assert_eq!(references.len(), 3);
        assert_eq!(sim.received().len(), 3);
        // Health checks run through the noise too.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(driver.status().state, ModemState::Ready);
    }
}

#[tokio::test]
async fn slow_registration_stays_initialising_until_registered_then_ready() {
    let sim = start_sim(Profile::Generic).await;
    // The modem loses the network and searches for a while (less than the driver's
    // registration timeout of 5 s).
    sim.set_fault(Fault::SlowRegistration(Duration::from_millis(1500)));
    let driver = Driver::spawn(config("slowreg", sim.path()));
    driver.wait_state(ModemState::Initialising).await;
    let refused = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("not ready yet");
    assert_eq!(kind(&refused).0, "temporary", "{refused}");
    driver.wait_state(ModemState::Ready).await;
    let states = driver.states();
    assert!(!states.contains(&ModemState::Failing), "{states:?}");
    assert_eq!(states.last(), Some(&ModemState::Ready));
    driver
        .send(parts("x", 1, false))
        .await
        .expect("sent once registered");
}

#[tokio::test]
async fn registration_slower_than_the_timeout_is_failing_then_ready_by_itself() {
    let sim = start_sim(Profile::Ec25).await;
    sim.set_fault(Fault::SlowRegistration(Duration::from_secs(2)));
    let mut cfg = config("noreg", sim.path());
    cfg.timeouts.registration = Duration::from_millis(500);
    let driver = Driver::spawn(cfg);
    let failing = driver.wait_state(ModemState::Failing).await;
    searching(failing.last_error.as_deref());
    driver.wait_state(ModemState::Ready).await;
    driver
        .send(parts("x", 1, false))
        .await
        .expect("sent once registered");
}

#[tokio::test]
async fn losing_the_network_while_ready_is_failing_until_registered_again() {
    let sim = start_sim(Profile::Sim800).await;
    let driver = Driver::spawn(config("lost", sim.path()));
    driver.wait_state(ModemState::Ready).await;
    sim.set_fault(Fault::SlowRegistration(Duration::from_millis(1500)));
    let failing = driver.wait_state(ModemState::Failing).await;
    searching(failing.last_error.as_deref());
    let refused = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("not registered");
    assert_eq!(kind(&refused).0, "temporary", "{refused}");
    driver.wait_state(ModemState::Ready).await;
    driver
        .send(parts("x", 1, false))
        .await
        .expect("sent once registered again");
}

#[tokio::test]
async fn a_sim_pin_is_entered_from_the_configuration() {
    for profile in [Profile::Sim800, Profile::E3372] {
        let sim = start_sim(profile).await;
        sim.set_fault(Fault::PinRequired("2468".into()));
        let mut cfg = config("pin", sim.path());
        cfg.pin = Some("2468".into());
        let driver = Driver::spawn(cfg);
        let ready = driver.wait_state(ModemState::Ready).await;
        assert!(ready.identity.imsi.is_some(), "{profile}: {ready:?}");
        driver.send(parts("x", 1, false)).await.expect("sent");
    }
}

#[tokio::test]
async fn a_sim_pin_without_a_configured_pin_is_failing_with_a_clear_error() {
    let sim = start_sim(Profile::Ec25).await;
    sim.set_fault(Fault::PinRequired("2468".into()));
    let driver = Driver::spawn(config("nopin", sim.path()));
    let failing = driver.wait_state(ModemState::Failing).await;
    let error = failing.last_error.unwrap_or_default();
    assert!(
        error.contains("PIN") && error.contains("pin_file"),
        "{error}"
    );
    // The modem is known even though it cannot send.
    assert!(failing.identity.imei.is_some(), "{:?}", failing.identity);
    let refused = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("failing");
    assert!(refused.to_string().contains("PIN"), "{refused}");
}

#[tokio::test]
async fn a_wrong_pin_is_sent_once_and_never_again() {
    let sim = start_sim(Profile::Sim800).await;
    sim.set_fault(Fault::PinRequired("2468".into()));
    let mut cfg = config("wrongpin", sim.path());
    cfg.pin = Some("1111".into());
    let driver = Driver::spawn(cfg);
    let failing = driver.wait_state(ModemState::Failing).await;
    let error = failing.last_error.unwrap_or_default();
    assert!(error.contains("refused"), "{error}");
    // Several reconnects later the SIM has still seen only one wrong PIN: three would
    // have blocked it (PUK).
    driver
        .wait_for("three more initialisations", |_| {
            driver
                .states()
                .iter()
                .filter(|s| **s == ModemState::Initialising)
                .count()
                >= 4
        })
        .await;
    bounded("the status to settle", async {
        loop {
            let status = driver.status();
            if status.state == ModemState::Failing {
                let error = status.last_error.unwrap_or_default();
                assert!(
                    error.contains("refused") && !error.contains("PUK"),
                    "{error}"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn no_prompt_is_temporary_and_the_modem_keeps_working() {
    let sim = start_sim(Profile::Generic).await;
    let driver = Driver::spawn(config("noprompt", sim.path()));
    driver.wait_state(ModemState::Ready).await;
    sim.set_fault(Fault::NoPromptOnCmgs);
    let error = driver
        .send(parts(&three_part_text(), 6, false))
        .await
        .expect_err("no prompt");
    assert_eq!(kind(&error), ("temporary", &[][..]), "{error}");
    assert!(error.to_string().contains("prompt"), "{error}");
    assert!(sim.received().is_empty(), "the PDU did not go out");
    sim.clear_faults();
    assert_eq!(driver.status().state, ModemState::Ready);
    let one = parts("x", 7, false);
    driver
        .send(one.clone())
        .await
        .expect("sent after the missing prompt");
    let received = sim.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].pdu_hex, one[0].hex());
}

#[tokio::test]
async fn no_cmgs_result_is_an_unknown_outcome() {
    let sim = start_sim(Profile::Ec25).await;
    let driver = Driver::spawn(config("nocmgs", sim.path()));
    driver.wait_state(ModemState::Ready).await;
    sim.set_fault(Fault::NoCmgsResult);
    let error = driver
        .send(parts("x", 8, false))
        .await
        .expect_err("no +CMGS");
    assert_eq!(kind(&error), ("unknown", &[][..]), "{error}");
    // It did go out: this is why the outcome is unknown rather than temporary.
    assert_eq!(sim.received().len(), 1);
    sim.clear_faults();
    driver
        .send(parts("x", 9, false))
        .await
        .expect("sent afterwards");
    assert_eq!(sim.received().len(), 2);
}

#[tokio::test]
async fn a_modem_with_another_imei_is_refused() {
    let sim = start_sim(Profile::Generic).await;
    let driver = Driver::spawn(config("probe", sim.path()));
    let imei = driver
        .wait_state(ModemState::Ready)
        .await
        .identity
        .imei
        .expect("an IMEI");
    drop(driver);

    let mut cfg = config("bound", sim.path());
    cfg.imei = Some("490154203237518".into());
    let wrong = Driver::spawn(cfg);
    let failing = wrong.wait_state(ModemState::Failing).await;
    let error = failing.last_error.unwrap_or_default();
    assert!(
        error.contains("490154203237518") && error.contains(&imei),
        "{error}"
    );
    drop(wrong);

    let mut cfg = config("bound", sim.path());
    cfg.imei = Some(imei);
    Driver::spawn(cfg).wait_state(ModemState::Ready).await;
}

#[tokio::test]
async fn an_unplugged_modem_comes_back_under_another_tty_by_itself() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let link = dir.path().join("gsm-modem0");
    let mut sim_config = SimConfig::fast(Profile::E3372);
    sim_config.link = Some(link.clone());
    let sim = start_sim_with(sim_config).await;
    let driver = Driver::spawn(config("usb", link));
    driver.wait_state(ModemState::Ready).await;
    let before = sim.tty_path().expect("plugged in");

    bounded("the unplug", sim.unplug()).await;
    let lost = driver.wait_state(ModemState::Disconnected).await;
    assert!(lost.last_error.is_some(), "{lost:?}");
    let refused = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("unplugged");
    assert_eq!(kind(&refused).0, "temporary", "{refused}");

    let after = bounded("the replug", sim.replug())
        .await
        .expect("replugged");
    assert_ne!(after, before, "the modem came back under another tty name");
    driver.wait_state(ModemState::Ready).await;
    driver
        .send(parts("x", 1, false))
        .await
        .expect("sent after the replug");
    assert_eq!(sim.received().len(), 1);
}

#[tokio::test]
async fn an_unplug_after_the_pdu_went_out_is_an_unknown_outcome() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let link = dir.path().join("gsm-modem1");
    let mut sim_config = SimConfig::fast(Profile::Ec25);
    sim_config.link = Some(link.clone());
    sim_config.modem.send_latency = Duration::from_millis(300);
    let sim = start_sim_with(sim_config).await;
    let driver = Driver::spawn(config("usb", link));
    driver.wait_state(ModemState::Ready).await;
    let mut events = sim.events();
    let (result, ()) = tokio::join!(driver.send(parts("x", 1, false)), async {
        loop {
            if let Ok(SimEvent::Received(_)) = bounded("the PDU", events.recv()).await {
                break;
            }
        }
        // The PDU is with the network; the +CMGS answer is 300 ms away.
        bounded("the unplug", sim.unplug()).await;
    });
    let error = result.expect_err("the port vanished before the answer");
    assert_eq!(kind(&error), ("unknown", &[][..]), "{error}");
    driver.wait_state(ModemState::Disconnected).await;
    bounded("the replug", sim.replug())
        .await
        .expect("replugged");
    driver.wait_state(ModemState::Ready).await;
}
