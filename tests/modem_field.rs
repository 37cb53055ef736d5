//! Field behaviours of real modems (issue 8), each reproduced by a simulator profile or
//! option that cites its source, against the driver through a real pseudo-terminal:
//! LTE-M and LTE-only registration, every prompt framing, SIM7600 boot lines, a SIM
//! without SMSC, SMS refused right after boot, a modem left in PDU entry, and two modems
//! of which one is at fault.

mod modem_support;

use std::sync::Arc;
use std::time::Duration;

use modem_support::{Driver, bounded, config, parts, start_sim_with};
use smsbridge::clock::Clock;
use smsbridge::dispatch::{self, DispatchConfig, Dispatcher};
use smsbridge::metrics::Metrics;
use smsbridge::modem::Readiness;
use smsbridge::modem::{self, ModemState, SendError};
use smsbridge::outbox::{MessageState, NewMessage, Outbox, OutboxOptions, RetryPolicy};
use smsbridge::sim::{Fault, Profile, SimConfig};
use tokio::sync::{mpsc, watch};

/// Initialises a driver on `sim_config` and sends one message; returns the driver.
async fn ready_and_send(sim_config: SimConfig) -> Driver {
    let profile = sim_config.modem.profile;
    let sim = start_sim_with(sim_config).await;
    let driver = Driver::spawn(config(profile.name(), sim.path()));
    let ready = driver.wait_state(ModemState::Ready).await;
    assert!(
        ready
            .registration
            .as_deref()
            .is_some_and(|r| r.starts_with("registered")),
        "{profile}: {ready:?}"
    );
    driver
        .send(parts("hello", 1, false))
        .await
        .unwrap_or_else(|e| panic!("{profile}: {e}"));
    assert_eq!(sim.received().len(), 1, "{profile}");
    // The simulator stays alive as long as the driver uses it.
    std::mem::forget(sim);
    driver
}

/// LTE-M/NB-IoT (SIM7080: `+CREG: 0,0`, botletics/SIM7000-LTE-Shield issues 50, 103, 150)
/// and an EC25 on an LTE-only network (TinyGSM issue 705): ready on EPS, and the SMS goes.
#[tokio::test]
async fn lte_m_and_lte_only_modems_register_and_send() {
    let driver = ready_and_send(SimConfig::fast(Profile::Sim7080)).await;
    let status = driver.status();
    let registration = status.registration.unwrap_or_default();
    assert!(
        registration.contains("CS (2G/3G): not registered"),
        "{registration}"
    );
    assert!(
        registration.contains("EPS (LTE): registered"),
        "{registration}"
    );

    let mut lte_only = SimConfig::fast(Profile::Ec25);
    lte_only.modem.lte_only = true;
    ready_and_send(lte_only).await;
}

/// Every prompt framing: SIM7670G's CR LF `>` CR LF (gammu issue 1176 / PR 1177), u-blox
/// LARA's bare `>` with no line ending before it (RIOT-OS PR 20016), and `> ` (TS 27.005).
#[tokio::test]
async fn every_prompt_framing_sends() {
    for profile in [Profile::Sim7670, Profile::Lara, Profile::Generic] {
        ready_and_send(SimConfig::fast(profile)).await;
    }
}

/// SIM7600's bare `SMS DONE`/`PB DONE` boot lines (T-SIM7600X PR 41, esp-protocols 789)
/// are never taken for the identity: with an IMEI binding the modem starts.
#[tokio::test]
async fn sim7600_boot_lines_are_not_the_identity() {
    let mut sim_config = SimConfig::fast(Profile::Sim7600);
    // Booting while the driver already talks: the boot lines arrive amid its commands.
    sim_config.modem.boot_time = Duration::from_millis(300);
    let sim = start_sim_with(sim_config).await;
    let mut cfg = config("sim7600", sim.path());
    cfg.imei = Some("860000000000025".to_owned());
    let driver = Driver::spawn(cfg);
    let ready = driver.wait_state(ModemState::Ready).await;
    assert_eq!(
        ready.identity.manufacturer.as_deref(),
        Some("SIMCOM INCORPORATED")
    );
    assert_eq!(ready.identity.model.as_deref(), Some("SIMCOM_SIM7600G-H"));
    assert_eq!(ready.identity.imei.as_deref(), Some("860000000000025"));
    driver.send(parts("x", 1, false)).await.expect("sent");
}

/// A SIM without an SMSC (Huawei E220: smslib-v3 PR 12; gammu issue 541): `probe` shows
/// it with the fix; without `[sms] smsc` the modem is failing with the fix; a send that
/// gets 330 is the modem's fault, with the fix.
#[tokio::test]
async fn a_sim_without_smsc_is_the_modems_fault() {
    let mut sim_config = SimConfig::fast(Profile::Generic);
    sim_config.modem.smsc = String::new();
    let sim = start_sim_with(sim_config).await;
    let cfg = config("nosmsc", sim.path());
    let report = bounded("probe", modem::probe(&cfg)).await.expect("probed");
    let smsc = report
        .lines()
        .into_iter()
        .find(|(label, _)| *label == "SMSC")
        .map(|(_, v)| v)
        .unwrap_or_default();
    assert!(smsc.contains("set `[sms] smsc`"), "{smsc}");

    // Without `[sms] smsc` the modem cannot send at all: failing, with the fix.
    let driver = Driver::spawn(cfg.clone());
    let failing = driver.wait_state(ModemState::Failing).await;
    let error = failing.last_error.unwrap_or_default();
    assert!(error.contains("set `[sms] smsc`"), "{error}");
    drop(driver);

    // With `[sms] smsc` configured the modem is ready; a PDU that still leaves the SMSC to
    // the SIM is refused with 330: the modem's fault, with the fix, and the modem failing.
    let mut cfg = cfg;
    cfg.smsc_configured = true;
    let driver = Driver::spawn(cfg);
    let ready = driver.wait_state(ModemState::Ready).await;
    assert!(
        ready
            .smsc
            .as_deref()
            .is_some_and(|s| s.contains("[sms] smsc"))
    );
    let error = driver
        .send(parts("x", 1, false))
        .await
        .expect_err("no SMSC");
    let SendError::ModemFault { reason, fix, .. } = &error else {
        panic!("the modem's fault: {error:?}");
    };
    assert!(reason.contains("+CMS ERROR: 330"), "{reason}");
    assert!(fix.contains("[sms] smsc"), "{fix}");
    let failing = driver.wait_state(ModemState::Failing).await;
    assert!(
        failing
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("[sms] smsc"))
    );
    assert!(sim.received().is_empty());
}

/// SMS commands refused for seconds after boot (SIM800 before `SMS Ready`:
/// Seeed-Studio/GPRS_SIM900 issue 39): the driver waits, the modem becomes ready, the
/// message goes. `probe` on the same modem does not blame PDU mode.
#[tokio::test]
async fn sms_refused_right_after_boot_is_waited_out() {
    let mut sim_config = SimConfig::fast(Profile::Sim800);
    sim_config.modem.sms_ready_delay = Duration::from_millis(1500);
    ready_and_send(sim_config).await;
}

/// Issue 9: a modem left waiting in PDU entry at start (a kill -9 at the prompt) answers
/// nothing but ESC; the driver sends ESC and a drain first, so it comes up and sends.
#[tokio::test]
async fn a_modem_left_in_pdu_entry_comes_back() {
    let mut sim_config = SimConfig::fast(Profile::Generic);
    sim_config.modem.pdu_entry_at_boot = true;
    ready_and_send(sim_config).await;
}

/// Two modems, one answering `+CMS ERROR: 330` to every send: every message is sent by
/// the other one, none fails, and the faulty modem shows the reason and the fix.
#[tokio::test]
async fn with_two_modems_the_faulty_ones_messages_go_through_the_other() {
    let good = start_sim_with(SimConfig::fast(Profile::Ec25)).await;
    let bad = start_sim_with(SimConfig::fast(Profile::Generic)).await;
    bad.set_fault(Fault::CmsErrorForNextSends {
        code: 330,
        count: u32::MAX,
    });
    let (events_tx, events) = mpsc::channel(16);
    let good_modem = modem::spawn(config("good", good.path()), events_tx.clone());
    let bad_modem = modem::spawn(config("bad", bad.path()), events_tx);
    for handle in [&good_modem, &bad_modem] {
        let mut status = handle.status();
        bounded(
            "both ready",
            status.wait_for(|s| s.state == ModemState::Ready),
        )
        .await
        .expect("status");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let options = OutboxOptions {
        retry: RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
        },
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open(&dir.path().join("outbox.db"), options).expect("outbox");
    let clock = Clock::system();
    let now = clock.now_ms() as i64;
    let mut ids = Vec::new();
    for i in 0..6 {
        let id = outbox
            .enqueue(NewMessage {
                to: modem_support::TO.to_owned(),
                text: format!("code {i}"),
                parts: 1,
                concat_ref: i,
                created_at_ms: now,
                expires_at_ms: now + 600_000,
                signature: None,
                rate: None,
            })
            .await
            .expect("enqueued");
        ids.push(id);
    }
    let readiness = Arc::new(Readiness::new(Duration::ZERO, now as u64));
    let metrics = Arc::new(Metrics::default());
    let (stop, shutdown) = watch::channel(false);
    // The messages were enqueued before the dispatcher ran: the outbox announced them, and
    // the dispatcher looks for due work when it starts.
    let dispatcher = tokio::spawn(dispatch::run(Dispatcher {
        outbox: outbox.clone(),
        modems: vec![bad_modem.clone(), good_modem.clone()],
        status_reports: vec![false, false],
        events,
        readiness,
        metrics,
        config: DispatchConfig::default(),
        clock,
        shutdown,
    }));
    bounded("every message sent", async {
        loop {
            let mut all_sent = true;
            for id in &ids {
                let summary = outbox.message(*id).await.expect("read").expect("exists");
                assert_ne!(summary.state, MessageState::Failed, "{summary:?}");
                all_sent &= summary.state == MessageState::Sent;
            }
            if all_sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    for id in &ids {
        let summary = outbox.message(*id).await.expect("read").expect("exists");
        assert_eq!(summary.modem.as_deref(), Some("good"), "{summary:?}");
    }
    assert_eq!(good.received().len(), ids.len());
    assert!(bad.received().is_empty());
    let status = bad_modem.status().borrow().clone();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("+CMS ERROR: 330")),
        "{status:?}"
    );
    assert!(
        status
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("[sms] smsc")),
        "{status:?}"
    );
    let _ = stop.send(true);
    let _ = bounded("dispatcher stops", dispatcher).await;
}
