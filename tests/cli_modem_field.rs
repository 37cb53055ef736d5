//! `smsbridge send` and `smsbridge probe`, the built binary, against simulated modems with
//! field behaviours (issue 8): an LTE-M modem whose `+CREG` never registers, a SIM
//! without SMSC, and a modem that refuses SMS commands for a while after boot.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use smsbridge::sim::{Profile, SimConfig};

const BIN: &str = env!("CARGO_BIN_EXE_smsbridge");

async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output());
    tokio::time::timeout(Duration::from_secs(90), output)
        .await
        .expect("the command finished in time")
        .expect("the command thread")
        .expect("the binary ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn simulator(link: &Path, mut config: SimConfig) -> smsbridge::sim::SimHandle {
    config.link = Some(link.to_path_buf());
    smsbridge::sim::spawn(config)
        .await
        .expect("the simulator starts")
}

async fn send(port: &str) -> Output {
    run(&[
        "send",
        "--port",
        port,
        "--to",
        "+12015550123",
        "--text",
        "code 1234",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lte_m_modem_sends_and_probe_shows_every_domain() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m0");
    let sim = simulator(&link, SimConfig::fast(Profile::Sim7080)).await;
    let port = link.to_str().unwrap();
    let probe = run(&["probe", "--port", port]).await;
    assert!(probe.status.success(), "stderr: {}", text(&probe.stderr));
    let out = text(&probe.stdout);
    assert!(out.contains("CS (2G/3G): not registered"), "{out}");
    assert!(out.contains("EPS (LTE): registered, home network"), "{out}");
    assert!(out.contains("SMSC"), "{out}");
    let output = send(port).await;
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    assert_eq!(sim.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_without_smsc_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m0");
    let mut config = SimConfig::fast(Profile::Generic);
    config.modem.smsc = String::new();
    let sim = simulator(&link, config).await;
    let port = link.to_str().unwrap();
    let probe = run(&["probe", "--port", port]).await;
    assert!(
        text(&probe.stdout).contains("none on the SIM"),
        "{}",
        text(&probe.stdout)
    );
    let output = send(port).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no SMS centre number"), "{stderr}");
    assert!(stderr.contains("[sms] smsc"), "{stderr}");
    assert!(sim.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_waits_for_a_modem_that_is_still_starting() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m0");
    let mut config = SimConfig::fast(Profile::Sim800);
    config.modem.sms_ready_delay = Duration::from_secs(2);
    let sim = simulator(&link, config).await;
    let output = send(link.to_str().unwrap()).await;
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    assert!(!stderr.contains("refuses PDU mode"), "{stderr}");
    assert_eq!(sim.received().len(), 1);
}
