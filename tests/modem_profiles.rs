//! The modem driver against every simulator profile, through a real pseudo-terminal: the
//! driver opens the pty's path with tokio-serial exactly as it opens a USB modem's tty.
//!
//! For each profile: initialisation reaches Ready with the identity filled in, and a
//! one-part and a three-part message reach the simulated network as exactly the PDUs the
//! codec produced, with increasing message references. Also: delivery reports become
//! events, and incoming messages are read and deleted so the storage never fills.

mod modem_support;

use modem_support::{
    DELIVER, Driver, bounded, config, parts, start_sim, start_sim_with, three_part_text,
};
use smsbridge::modem::{ModemEvent, ModemState};
use smsbridge::sim::{InjectError, Profile, SimConfig};
use smsbridge::sms::SubmitPdu;

/// What each profile says about itself, as `AT+CGMI` answers it, and whether it has an
/// ICCID command (the generic 3GPP modem has none: TS 27.007 defines no such command).
fn expected_identity(profile: Profile) -> (&'static str, bool) {
    match profile {
        Profile::Generic => ("smsbridge", false),
        Profile::Sim800 => ("SIMCOM_Ltd", true),
        Profile::Ec25 => ("Quectel", true),
        Profile::E3372 => ("huawei", true),
        Profile::Sim7080 | Profile::Sim7600 | Profile::Sim7670 => ("SIMCOM INCORPORATED", true),
        Profile::Lara => ("u-blox", false),
    }
}

/// Asserts that the simulator received exactly `parts`, with the references `references`,
/// as its last entries.
fn assert_received(sim: &smsbridge::sim::SimHandle, parts: &[SubmitPdu], references: &[u8]) {
    let received = sim.received();
    assert!(received.len() >= parts.len(), "{} received", received.len());
    let last = &received[received.len() - parts.len()..];
    for ((got, part), reference) in last.iter().zip(parts).zip(references) {
        assert_eq!(got.pdu_hex, part.hex());
        assert_eq!(got.tpdu_len, part.tpdu_len());
        assert_eq!(got.mr, *reference);
    }
}

async fn check_profile(profile: Profile) {
    let sim = start_sim(profile).await;
    let driver = Driver::spawn(config(profile.name(), sim.path()));
    let ready = driver.wait_state(ModemState::Ready).await;

    let (manufacturer, has_iccid) = expected_identity(profile);
    let id = &ready.identity;
    assert_eq!(id.manufacturer.as_deref(), Some(manufacturer), "{profile}");
    assert!(id.model.is_some(), "{profile}: {id:?}");
    assert!(id.firmware.is_some(), "{profile}: {id:?}");
    let imei = id.imei.as_deref().unwrap_or_default();
    assert!(
        imei.len() == 15 && imei.bytes().all(|b| b.is_ascii_digit()),
        "{profile}: {id:?}"
    );
    assert!(
        id.imsi
            .as_deref()
            .is_some_and(|imsi| imsi.starts_with("00101")),
        "{profile}: {id:?}"
    );
    assert_eq!(id.iccid.is_some(), has_iccid, "{profile}: {id:?}");
    assert!(
        id.iccid
            .as_deref()
            .is_none_or(|iccid| iccid.starts_with("89")),
        "{profile}: {id:?}"
    );
    assert!(ready.operator.is_some(), "{profile}: {ready:?}");
    assert!(ready.signal_dbm.is_some(), "{profile}: {ready:?}");
    assert_eq!(ready.last_error, None);

    let one = parts("Your code is 123456", 1, false);
    assert_eq!(one.len(), 1);
    let first = driver
        .send(one.clone())
        .await
        .expect("the one-part message is sent");
    assert_eq!(first.len(), 1);
    assert_received(&sim, &one, &first);

    let three = parts(&three_part_text(), 2, false);
    assert_eq!(three.len(), 3);
    let references = driver
        .send(three.clone())
        .await
        .expect("the three-part message is sent");
    let expected: Vec<u8> = (1..=3).map(|i| first[0].wrapping_add(i)).collect();
    assert_eq!(references, expected, "{profile}: references increase");
    assert_received(&sim, &three, &references);
    assert_eq!(sim.received().len(), 4);
    assert_eq!(driver.status().state, ModemState::Ready);
    let states = driver.states();
    assert!(
        states.contains(&ModemState::Sending),
        "{profile}: {states:?}"
    );
    assert!(
        !states.contains(&ModemState::Failing),
        "{profile}: {states:?}"
    );
}

#[tokio::test]
async fn generic_3gpp_modem() {
    check_profile(Profile::Generic).await;
}

#[tokio::test]
async fn simcom_sim800() {
    check_profile(Profile::Sim800).await;
}

#[tokio::test]
async fn quectel_ec25() {
    check_profile(Profile::Ec25).await;
}

#[tokio::test]
async fn huawei_e3372_with_its_notification_noise() {
    check_profile(Profile::E3372).await;
}

/// LTE-M: no CS domain, `+CREG: 0,0` (botletics/SIM7000-LTE-Shield issues 50, 103, 150).
#[tokio::test]
async fn simcom_sim7080_on_lte_m() {
    check_profile(Profile::Sim7080).await;
}

/// Bare `SMS DONE`/`PB DONE` at boot (T-SIM7600X PR 41, esp-protocols issue 789).
#[tokio::test]
async fn simcom_sim7600_with_its_boot_lines() {
    check_profile(Profile::Sim7600).await;
}

/// The prompt framed CR LF `>` CR LF (gammu issue 1176 / PR 1177).
#[tokio::test]
async fn simcom_sim7670g_with_its_prompt() {
    check_profile(Profile::Sim7670).await;
}

/// A bare `>` prompt with no line ending before it (RIOT-OS PR 20016).
#[tokio::test]
async fn ublox_lara_with_its_bare_prompt() {
    check_profile(Profile::Lara).await;
}

#[tokio::test]
async fn a_status_report_arrives_as_an_event_with_the_reference_of_its_part() {
    for profile in [Profile::Generic, Profile::Ec25] {
        let sim = start_sim(profile).await;
        let mut cfg = config(profile.name(), sim.path());
        cfg.status_reports = true;
        let mut driver = Driver::spawn(cfg);
        driver.wait_state(ModemState::Ready).await;
        // A message before, so the reference asked about is not the first one.
        driver.send(parts("warm-up", 1, false)).await.expect("sent");
        let references = driver
            .send(parts("Your code is 123456", 2, true))
            .await
            .expect("sent");
        let event = bounded("a status report", driver.events.recv()).await;
        let Some(ModemEvent::StatusReport { modem, report }) = event else {
            panic!("{profile}: no status report: {event:?}");
        };
        assert_eq!(modem, profile.name());
        assert_eq!(report.message_reference, references[0], "{profile}");
        assert!(
            report.status.is_delivered(),
            "{profile}: {:?}",
            report.status
        );
        assert_eq!(report.recipient.value, modem_support::TO);
    }
}

/// Injects `DELIVER` until the simulator takes it: with a storage of one message, that
/// happens only once the driver has read and deleted the previous one.
async fn inject_when_room(sim: &smsbridge::sim::SimHandle) {
    bounded("room in the message storage", async {
        loop {
            match sim.inject_incoming(DELIVER) {
                Ok(_) => return,
                Err(InjectError::StorageFull) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(error) => panic!("cannot inject: {error}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn incoming_messages_are_read_and_deleted_so_the_storage_never_fills() {
    for profile in [Profile::Sim800, Profile::E3372] {
        let mut sim_config = SimConfig::fast(profile);
        sim_config.modem.storage_capacity = 1;
        let sim = start_sim_with(sim_config).await;
        // A message waiting in the storage before the driver starts is swept at start.
        sim.inject_incoming(DELIVER).expect("stored");
        assert_eq!(sim.inject_incoming(DELIVER), Err(InjectError::StorageFull));
        let driver = Driver::spawn(config(profile.name(), sim.path()));
        driver.wait_state(ModemState::Ready).await;
        // Each of these is announced with +CMTI; the next fits only after a delete.
        for _ in 0..4 {
            inject_when_room(&sim).await;
        }
        // Sending still works, and nothing was sent in reply.
        driver
            .send(parts("Your code is 123456", 1, false))
            .await
            .expect("sent");
        assert_eq!(sim.received().len(), 1);
    }
}
