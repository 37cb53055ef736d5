//! The listeners against hostile clients, over real loopback sockets: slowloris heads are
//! cut off at the header timeout, idle connections beyond the connection limit do not stop
//! valid requests or `/healthz`, an oversized `Content-Length` is refused before its body
//! (also under `Expect: 100-continue`), slow bodies time out, oversized heads are refused,
//! and SIGTERM finishes while a client holds a half-sent request.

// Multi-threaded runtimes: the clients here are blocking sockets, the server shares the runtime.
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smsbridge::config::Config;
use smsbridge::service::{Service, StartOptions};
use support::{SECRET_B64, body, free_port, post_signed};
use tempfile::TempDir;

/// Generous ceilings for "it happened at all"; the configured timeouts are far shorter.
const CEILING: Duration = Duration::from_secs(20);

struct Harness {
    service: Service,
    _dir: TempDir,
}

/// An in-process service with no modem (it accepts during its grace period) and `http`
/// lines added to its `[http]` table.
async fn start(http: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET_B64}\n")).unwrap();
    let config = Config::from_toml_str(&format!(
        "state_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{http}\n[ownid]\nshared_secret_file = {:?}\n",
        dir.path().join("state").display().to_string(),
        secret.display().to_string(),
    ))
    .unwrap();
    let service = smsbridge::service::start(config, StartOptions::default())
        .await
        .unwrap();
    Harness { service, _dir: dir }
}

/// Reads until the peer closes (or the ceiling passes), on a blocking thread.
async fn read_to_close(mut stream: TcpStream) -> (Vec<u8>, bool) {
    tokio::task::spawn_blocking(move || {
        stream.set_read_timeout(Some(CEILING)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
                Err(_) => return (got, false),
            }
        }
    })
    .await
    .unwrap()
}

/// Reads the first response head (up to the blank line).
fn read_head(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(CEILING)).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_cut_off_at_the_header_timeout() {
    let h = start("header_timeout_ms = 300").await;
    let mut stream = TcpStream::connect(h.service.public_addr).unwrap();
    stream
        .write_all(b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // Trickle a header line every 50 ms, as slowloris does, until the server hangs up.
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < CEILING {
        if stream.write_all(b"X-Slow: 1\r\n").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        stream.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let read = stream.read(&mut buf);
        stream.set_nonblocking(false).unwrap();
        match read {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a trickling head was kept open");
    h.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_limit_do_not_stop_valid_requests_or_healthz() {
    let h = start("header_timeout_ms = 400\nmax_connections = 8").await;
    // Far more idle connections than the limit, on both listeners.
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(TcpStream::connect(h.service.public_addr).unwrap());
        idle.push(TcpStream::connect(h.service.admin_addr).unwrap());
    }
    let client = reqwest::Client::builder().timeout(CEILING).build().unwrap();
    let health = client
        .get(format!("http://{}/healthz", h.service.admin_addr))
        .send()
        .await
        .expect("/healthz answers while idle connections are held");
    assert_eq!(health.status(), 200);
    let url = format!("http://{}/ownid/sms", h.service.public_addr);
    let accepted = post_signed(&client, &url, &body("+447400123456", "Your code is 1234")).await;
    assert_eq!(accepted.status(), 202);
    // The idle ones were closed by the server, not left to pile up.
    let (_, closed) = read_to_close(idle.remove(0)).await;
    assert!(closed, "an idle connection was never closed");
    h.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_gets_413_before_its_body_is_sent() {
    let h = start("").await;
    let mut stream = TcpStream::connect(h.service.public_addr).unwrap();
    stream
        .write_all(
            b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
        )
        .unwrap();
    // No byte of the body is ever sent: the answer can only come from the header.
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 413"), "got {head:?}");
    h.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_for_an_oversized_body_gets_the_refusal_not_100() {
    let h = start("").await;
    let mut stream = TcpStream::connect(h.service.public_addr).unwrap();
    stream
        .write_all(
            b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 413"), "got {head:?}");

    // A body within the limit is still invited with 100 Continue.
    let mut stream = TcpStream::connect(h.service.public_addr).unwrap();
    stream
        .write_all(
            b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 100"), "got {head:?}");
    stream.write_all(b"{}").unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 401"), "got {head:?}");
    h.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408() {
    let h = start("body_timeout_ms = 300").await;
    let mut stream = TcpStream::connect(h.service.public_addr).unwrap();
    stream
        .write_all(
            b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"phone",
        )
        .unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 408"), "got {head:?}");
    h.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_size_limit_is_refused() {
    let h = start("max_header_bytes = 4096").await;
    let mut stream = TcpStream::connect(h.service.public_addr).unwrap();
    let big = "a".repeat(20_000);
    let _ = stream.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    let (answer, closed) = read_to_close(stream).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed);
    assert!(answer.starts_with("HTTP/1.1 431"), "got {answer:?}");

    // A normal request on the same listener is still served.
    let health = reqwest::get(format!("http://{}/healthz", h.service.admin_addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    h.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_while_a_client_holds_a_half_sent_request() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET_B64}\n")).unwrap();
    let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("smsbridge.toml");
    // The header timeout is far longer than the drain: only the drain can end it.
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[http]\nlisten = \"{public}\"\nadmin_listen = \"{admin}\"\nheader_timeout_ms = 300000\nbody_timeout_ms = 300000\ndrain_timeout_ms = 500\n[ownid]\nshared_secret_file = {:?}\n",
            dir.path().join("state").display().to_string(),
            secret.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    support::wait_for_200(&client, &format!("http://{admin}/healthz"), CEILING).await;
    let mut stuck_head = TcpStream::connect(public).unwrap();
    stuck_head
        .write_all(b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\nX-Half")
        .unwrap();
    let mut stuck_body = TcpStream::connect(public).unwrap();
    stuck_body
        .write_all(b"POST /ownid/sms HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + CEILING;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let status = status.expect("smsbridge did not stop after SIGTERM with stuck clients");
    assert!(status.success(), "exit status {status:?}");
    drop((stuck_head, stuck_body));
}
