//! `smsbridge send` and `smsbridge probe`, the built binary, against the simulated modem
//! served in-process on a pseudo-terminal behind a link in a temporary directory, as
//! `smsbridge simulate --link /tmp/m0` would serve it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use smsbridge::sim::{Profile, SimConfig};
use smsbridge::sms::{PhoneNumber, SubmitOptions, encode_submit};
use tokio_serial::SerialPortBuilderExt;

const BIN: &str = env!("CARGO_BIN_EXE_smsbridge");

/// Runs the binary off the runtime's thread (the simulator runs on the runtime), bounded.
async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output());
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the command finished in time")
        .expect("the command thread")
        .expect("the binary ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn simulator(link: &Path) -> smsbridge::sim::SimHandle {
    let mut config = SimConfig::fast(Profile::Sim800);
    config.link = Some(link.to_path_buf());
    smsbridge::sim::spawn(config)
        .await
        .expect("the simulator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_probe_through_the_simulated_modem() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m0");
    let sim = simulator(&link).await;
    let port = link.to_str().unwrap();

    let output = run(&[
        "send",
        "--port",
        port,
        "--to",
        "+12015550123",
        "--text",
        "Your code is 123456",
    ])
    .await;
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "sent 1 part: message reference 0\n");
    let received = sim.received();
    assert_eq!(received.len(), 1);
    // A one-part message has no concatenation header, so its PDU does not depend on the
    // random reference the command draws.
    let to = PhoneNumber::parse("+12015550123").unwrap();
    let expected = encode_submit(&to, "Your code is 123456", 0, &SubmitOptions::default()).unwrap();
    assert_eq!(received[0].pdu_hex, expected[0].hex());
    assert_eq!(received[0].destination, "+12015550123");

    let long = "Your verification code is 123456. ".repeat(6);
    let output = run(&[
        "send",
        "--port",
        port,
        "--to",
        "+447400123456",
        "--text",
        &long,
    ])
    .await;
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "sent 2 parts: message references 1, 2\n"
    );

    let output = run(&["probe", "--port", port]).await;
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for expected in [
        "manufacturer  SIMCOM_Ltd",
        "model         SIMCOM_SIM800L",
        "IMEI          ",
        "IMSI          00101",
        "ICCID         89",
        "SIM           ready",
        "registration  registered, home network",
        "operator      ",
        "signal        ",
        "dBm",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    assert!(!stdout.contains("unknown"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_unreachable_ports_give_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let missing = missing.to_str().unwrap();
    let not_a_tty = dir.path().join("plain-file");
    std::fs::write(&not_a_tty, b"").unwrap();
    let not_a_tty = not_a_tty.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["probe", "--port", missing], "does not exist"),
        (
            &[
                "send",
                "--port",
                missing,
                "--to",
                "+12015550123",
                "--text",
                "x",
            ],
            "does not exist",
        ),
        (&["probe", "--port", not_a_tty], "not a serial port"),
        (
            &[
                "send",
                "--port",
                missing,
                "--to",
                "12015550123",
                "--text",
                "x",
            ],
            "must start with +",
        ),
    ];
    for (args, expected) in cases {
        let output = run(args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m1");
    let sim = simulator(&link).await;
    sim.set_fault(smsbridge::sim::Fault::CmsErrorForNextSends { code: 21, count: 1 });
    let output = run(&[
        "send",
        "--port",
        link.to_str().unwrap(),
        "--to",
        "+12015550123",
        "--text",
        "Your code is 123456",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("permanent") && stderr.contains("+CMS ERROR: 21"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_by_another_program_is_reported_as_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m2");
    let _sim = simulator(&link).await;
    // Another program (ModemManager, a terminal) has the port open, exclusively.
    let _held = tokio_serial::new(link.to_string_lossy(), 115_200)
        .open_native_async()
        .expect("the first open succeeds");
    let output = run(&["probe", "--port", link.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("in use by another program such as ModemManager"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_that_does_not_answer_is_one_clear_line_after_the_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m3");
    let sim = simulator(&link).await;
    sim.set_fault(smsbridge::sim::Fault::NoAnswer);
    let output = run(&["probe", "--port", link.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("does not answer AT commands"), "{stderr}");
}
