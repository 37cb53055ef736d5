//! What `serve` refuses at start, with one line naming the fix: a second instance on the
//! same `state_dir`, a damaged outbox; and a configuration error ends the process with the
//! exit status the unit does not restart on (78).

mod support;

use std::io::{Seek, SeekFrom, Write};
use std::process::{Command, Stdio};

use smsbridge::config::Config;
use smsbridge::outbox::{NewMessage, Outbox, OutboxOptions};
use smsbridge::service::{StartError, StartOptions};
use support::SECRET_B64;

fn config(dir: &std::path::Path) -> Config {
    config_with(dir, "")
}

fn config_with(dir: &std::path::Path, extra: &str) -> Config {
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{SECRET_B64}\n")).unwrap();
    Config::from_toml_str(&format!(
        "state_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[ownid]\nshared_secret_file = {:?}\n{extra}",
        dir.join("state").display().to_string(),
        secret.display().to_string(),
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canonical_number_is_rate_limited_and_the_limit_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "[limits]\nper_number_count = 2\nper_number_window_secs = 3600\n";
    let client = reqwest::Client::new();
    let service =
        smsbridge::service::start(config_with(dir.path(), limits), StartOptions::default())
            .await
            .unwrap();
    let url = format!("http://{}/ownid/sms", service.public_addr);
    // A trunk 0 after the country code is the same number, and counts against it.
    let post = |number: &'static str, text: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            support::post_signed(&client, &url, &support::body(number, text))
                .await
                .status()
        }
    };
    assert_eq!(post("+4407400123456", "Your code is 1").await, 202);
    assert_eq!(post("+447400123456", "Your code is 2").await, 202);
    assert_eq!(post("+4407400123456", "Your code is 3").await, 429);
    service.stop().await;
    let saved = std::fs::read_to_string(
        dir.path()
            .join("state")
            .join(smsbridge::statedir::RATE_FILE),
    )
    .unwrap();
    assert!(
        !saved.contains("7400123456"),
        "a phone number reached the disk: {saved}"
    );

    let service =
        smsbridge::service::start(config_with(dir.path(), limits), StartOptions::default())
            .await
            .unwrap();
    let url = format!("http://{}/ownid/sms", service.public_addr);
    let status = support::post_signed(
        &client,
        &url,
        &support::body("+447400123456", "Your code is 4"),
    )
    .await
    .status();
    assert_eq!(status, 429, "the restart reset the per-number limit");
    let other = support::post_signed(
        &client,
        &url,
        &support::body("+4915123456789", "Your code is 5"),
    )
    .await
    .status();
    assert_eq!(other, 202);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_state_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = smsbridge::service::start(config(dir.path()), StartOptions::default())
        .await
        .unwrap();
    let second = smsbridge::service::start(config(dir.path()), StartOptions::default()).await;
    let error = second.err().expect("the second instance must not start");
    assert!(matches!(error, StartError::State(_)), "{error}");
    let line = error.to_string();
    assert!(
        line.contains("another smsbridge") && line.contains("systemctl stop"),
        "{line}"
    );
    assert!(error.is_final());

    // Once the first stops, the directory is free again.
    first.stop().await;
    let third = smsbridge::service::start(config(dir.path()), StartOptions::default())
        .await
        .expect("starts once the first instance is gone");
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_with_an_overwritten_page_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.outbox_path();
    let outbox = Outbox::open(&path, OutboxOptions::default()).unwrap();
    let now = support::now_ms() as i64;
    for i in 0..2000u32 {
        outbox
            .enqueue(NewMessage {
                to: "+447400123456".to_owned(),
                text: format!("Your code is {i:06}"),
                parts: 1,
                concat_ref: 0,
                created_at_ms: now,
                expires_at_ms: now + 600_000,
                signature: Some(format!("signature-{i:08}").into_bytes()),
                rate: None,
            })
            .await
            .unwrap();
    }
    outbox.shutdown().await.unwrap();
    drop(outbox);
    // Everything into the main file, then overwrite one page of the signature index.
    let (page, page_size) = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_messages_1'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        (root, size)
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(((page - 1) * page_size) as u64))
        .unwrap();
    file.write_all(&vec![0xA5; page_size as usize]).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let error = smsbridge::service::start(cfg, StartOptions::default())
        .await
        .err()
        .expect("a damaged outbox must stop the start");
    let line = error.to_string();
    assert!(
        line.contains("is damaged") && line.contains("move the file"),
        "{line}"
    );
    assert!(error.is_final());
}

#[test]
fn a_configuration_error_exits_78_with_the_key_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smsbridge.toml");
    std::fs::write(&config, "[http]\nlisten = \"not an address\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http.listen"), "{stderr}");
    assert!(
        stderr.contains("ERROR"),
        "not logged at error level: {stderr}"
    );

    // A passing fault (the port taken) is not final: systemd may retry it.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET_B64}\n")).unwrap();
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[http]\nlisten = \"{}\"\nadmin_listen = \"127.0.0.1:0\"\n[ownid]\nshared_secret_file = {:?}\n",
            dir.path().join("state").display().to_string(),
            busy.local_addr().unwrap(),
            secret.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
