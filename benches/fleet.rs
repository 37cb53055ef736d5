//! The fleet benchmark (issue 13 item 7), run with
//! `SMSBRIDGE_TEST_PG_FSYNC=on scripts/with-postgres cargo bench --bench fleet` (it needs
//! the throwaway PostgreSQL that wrapper starts, `SMSBRIDGE_TEST_POSTGRES_URL`, here with
//! fsync on so its commits are as durable as SQLite's). It starts `smsbridge serve`
//! (release build) as child processes in front of simulated modems on pseudo-terminals
//! that live in this process, each scenario on a fresh database, and prints:
//! 1. request → `202` latency (p50, p99) at a steady 200 requests/s, on SQLite and on
//!    PostgreSQL, same machine, same load (the commit is in both figures);
//! 2. request at box A → Ctrl-Z at box B's idle modem (A has no modem): the commit, the
//!    `NOTIFY`, B's claim and its encoding;
//! 3. takeover after kill -9: from the kill of the box holding a message to the Ctrl-Z of
//!    its part at another box's modem, with `lease_secs = 3` (the lease lapses, a sweep —
//!    every lease/3 — takes it over, the box's `LISTEN` hears of it).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{SECRET_B64, free_port, ms, percentile, signed_request, start_sims};

use smsbridge::sim::pty::SimEvent;

struct Service {
    child: Child,
    public: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let start = base.find("://").map_or(0, |i| i + 3);
    let end = base[start..].find('/').map_or(base.len(), |j| start + j);
    let mut out = format!("{}/{database}", &base[..end]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn fresh_database(url: &str, tag: &str) -> String {
    let name = format!(
        "bench_{tag}_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let status = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .stdout(Stdio::null())
        .status()
        .expect("psql runs");
    assert!(status.success(), "CREATE DATABASE {name} failed");
    with_database(url, &name)
}

/// `store`: `None` for SQLite, else the database URL; `node` names the box.
async fn start_service(
    ports: &[PathBuf],
    store: Option<&str>,
    node: &str,
    extra: &str,
    wait_ready: bool,
) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET_B64).unwrap();
    let mut toml = format!(
        "state_dir = {:?}\n[http]\nlisten = \"{public}\"\nadmin_listen = \"{admin}\"\n[ownid]\nshared_secret_file = {:?}\n[limits]\nper_number_count = 1000\nno_modem_grace_secs = 3600\n",
        dir.path().join("state").display().to_string(),
        secret.display().to_string()
    );
    if let Some(url) = store {
        let url_file = dir.path().join("postgres-url");
        std::fs::write(&url_file, url).unwrap();
        toml.push_str(&format!(
            "[store]\nbackend = \"postgres\"\nurl_file = {:?}\nlease_secs = 3\n[node]\nname = \"{node}\"\n",
            url_file.display().to_string()
        ));
    }
    toml.push_str(extra);
    for (i, port) in ports.iter().enumerate() {
        toml.push_str(&format!(
            "[[modem]]\nname = \"modem{i}\"\nport = {:?}\n",
            port.display().to_string()
        ));
    }
    let config = dir.path().join("smsbridge.toml");
    std::fs::write(&config, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smsbridge serve");
    let service = Service {
        child,
        public,
        _dir: dir,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = if wait_ready { "readyz" } else { "healthz" };
    loop {
        let ready = client.get(format!("http://{admin}/{path}")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the service did not get ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if wait_ready {
        // Let every modem finish its initialisation, not just the first.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    service
}

fn number(i: usize) -> String {
    format!("+4474001{:05}", i % 100_000)
}

async fn post(client: &reqwest::Client, url: &str, i: usize) -> (u16, Duration) {
    let built = signed_request(client, url, &number(i), i);
    let started = Instant::now();
    let response = built.send().await.expect("request");
    (response.status().as_u16(), started.elapsed())
}

/// Waits for the next PDU at any of `sims`; when it came.
async fn next_pdu(events: &mut tokio::sync::broadcast::Receiver<SimEvent>) -> Instant {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(SimEvent::Received(_))) => return Instant::now(),
            Ok(Ok(_)) => continue,
            other => panic!("no PDU reached the modem: {other:?}"),
        }
    }
}

/// 1. Open-loop load at `rate` requests/s for `duration` against one box.
async fn accept_latency(store: Option<&str>, rate: u32, duration: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(4, Duration::from_millis(1500), dir.path(), "sim-accept-").await;
    let ports: Vec<PathBuf> = sims.iter().map(|s| s.path()).collect();
    let service = start_service(&ports, store, "bench-a", "", true).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let url = format!("http://{}/ownid/sms", service.public);
    for i in 0..50 {
        post(&client, &url, 900_000 + i).await;
    }
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move { post(&client, &url, i).await }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut accepted = 0;
    for task in tasks {
        let (status, latency) = task.await.unwrap();
        accepted += usize::from(status == 202);
        latencies.push(latency);
    }
    latencies.sort();
    println!(
        "request -> 202 on {} at {rate} req/s for {:?}: {accepted}/{total} accepted, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if store.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        duration,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
    );
}

/// 2. Box A (no modem) accepts; box B's idle modem gets the PDU.
async fn across_boxes(url: &str, samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(1, Duration::from_millis(5), dir.path(), "sim-b-").await;
    let a = start_service(&[], Some(url), "bench-a", "", false).await;
    let _b = start_service(&[sims[0].path()], Some(url), "bench-b", "", true).await;
    let client = reqwest::Client::new();
    let target = format!("http://{}/ownid/sms", a.public);
    let mut events = sims[0].events();
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        let started = Instant::now();
        let (status, _) = post(&client, &target, 300_000 + i).await;
        assert_eq!(status, 202);
        let at = next_pdu(&mut events).await;
        if i >= 10 {
            latencies.push(at - started);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort();
    println!(
        "request at box A -> Ctrl-Z at box B's idle modem, {samples} samples: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
    );
    drop(a);
}

/// 3. From kill -9 of the box sending a message to its resend at another box's modem.
async fn takeover(server: &str, samples: usize) {
    let mut times = Vec::new();
    for sample in 0..samples {
        let url = fresh_database(server, "takeover");
        let dir = tempfile::tempdir().unwrap();
        // The holder's modem takes 60 s to answer: the message is in flight when killed.
        let slow = start_sims(1, Duration::from_secs(60), dir.path(), "sim-a-").await;
        let idle = start_sims(1, Duration::from_millis(5), dir.path(), "sim-b-").await;
        let mut holder = start_service(&[slow[0].path()], Some(&url), "bench-a", "", true).await;
        let client = reqwest::Client::new();
        let mut at_slow = slow[0].events();
        let (status, _) = post(
            &client,
            &format!("http://{}/ownid/sms", holder.public),
            700_000 + sample,
        )
        .await;
        assert_eq!(status, 202);
        next_pdu(&mut at_slow).await;
        let _taker = start_service(&[idle[0].path()], Some(&url), "bench-b", "", true).await;
        let mut at_idle = idle[0].events();
        let killed = Instant::now();
        let _ = holder.child.kill();
        let _ = holder.child.wait();
        let resent = next_pdu(&mut at_idle).await;
        times.push(resent - killed);
    }
    times.sort();
    println!(
        "takeover after kill -9 (lease_secs = 3), {samples} samples: min {:.2} s, median {:.2} s, max {:.2} s",
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this file without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("the fleet benchmark runs with `scripts/with-postgres cargo bench --bench fleet`");
        return;
    }
    let Some(server) = std::env::var("SMSBRIDGE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "the fleet benchmark needs PostgreSQL: run it as `SMSBRIDGE_TEST_PG_FSYNC=on scripts/with-postgres cargo bench --bench fleet`"
        );
        std::process::exit(2);
    };
    // A filter argument picks parts ("accept", "across", "takeover").
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if run("accept") {
            accept_latency(None, 200, Duration::from_secs(10)).await;
            let url = fresh_database(&server, "accept");
            accept_latency(Some(&url), 200, Duration::from_secs(10)).await;
        }
        if run("across") {
            let url = fresh_database(&server, "across");
            across_boxes(&url, 100).await;
        }
        if run("takeover") {
            takeover(&server, 3).await;
        }
    });
}
