//! Operators' foot-guns said aloud at start: a world-readable secret file, a short key, an
//! admin listener off loopback, loose state-file permissions (warnings naming the fix), a
//! 1-byte key (refused); the admin listener refuses unexpected `Host:` values (DNS
//! rebinding); SIGHUP does not kill the service.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{SECRET_B64, free_port};

/// Runs `serve` until its admin listener answers (or it exits), then SIGTERMs it and
/// returns its stderr and exit code.
async fn run(
    dir: &std::path::Path,
    secret: &str,
    admin: &str,
    then: impl FnOnce(&str, i32),
) -> (String, Option<i32>) {
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, secret).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.join("smsbridge.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[http]\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"{admin}\"\n[ownid]\nshared_secret_file = {:?}\n",
            dir.join("state").display().to_string(),
            free_port(),
            secret_file.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("JOURNAL_STREAM")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{admin}/healthz");
    let mut up = false;
    for _ in 0..400 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if up {
        then(admin, child.id() as i32);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_secret_short_key_and_public_admin_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    // 12 bytes: short, but not absurd.
    let short = base64_of(b"twelve bytes");
    let admin = format!("0.0.0.0:{}", free_port());
    let (stderr, code) = run(dir.path(), &short, &admin, |_, _| {}).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("readable by other users") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(stderr.contains("only 12 bytes"), "{stderr}");
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("127.0.0.1:"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_byte_key_is_refused_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let (stderr, code) = run(dir.path(), &base64_of(b"x"), &admin, |_, _| {}).await;
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("only 1 bytes") && stderr.contains("OwnID console"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_refuses_foreign_hosts_and_sighup_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let (stderr, code) = run(dir.path(), SECRET_B64, &admin, |admin, pid| {
        let ask = |host: &str| {
            let mut s = std::net::TcpStream::connect(admin).unwrap();
            write!(
                s,
                "GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        };
        assert!(ask("evil.example:9090").starts_with("HTTP/1.1 421"));
        assert!(ask("localhost:9090").starts_with("HTTP/1.1 200"));
        assert!(ask(admin).starts_with("HTTP/1.1 200"));
        assert!(ask("[::1]:9090").starts_with("HTTP/1.1 200"));
        // SIGHUP: logged, and the service still answers.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            ask("localhost").starts_with("HTTP/1.1 200"),
            "SIGHUP stopped the service"
        );
    })
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("SIGHUP ignored"), "{stderr}");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn state_files_with_loose_permissions_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let outbox = state.join("outbox.sqlite3");
    std::fs::write(&outbox, b"").unwrap();
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warnings = smsbridge::statedir::permission_warnings(&state, &outbox);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("chmod 700")));
    assert!(warnings.iter().any(|w| w.contains("chmod 600")));
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(smsbridge::statedir::permission_warnings(&state, &outbox).is_empty());
}
