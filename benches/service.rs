//! The service benchmark (issue 4's targets), run with `cargo bench --bench service`.
//!
//! It starts `smsbridge serve` (release build) as a child process in front of simulated
//! modems on pseudo-terminals that live in this process, and prints:
//! 1. request → `202` latency (p50, p99) at a steady 200 requests/s, durable commit included;
//! 2. request → Ctrl-Z at an idle modem for a one-part OTP (the time the simulated modem
//!    has the whole PDU; a pty has no baud rate, so the ~6 ms a real 115200-baud line takes
//!    is not in this figure);
//! 3. sustained sends per minute with a 1.5 s simulated send latency, 1 and 4 modems, beside
//!    the ideal 60 / latency per modem;
//! 4. the service's peak RSS under that load and its CPU use while idle.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use smsbridge::sim::profile::Profile;
use smsbridge::sim::pty::{SimConfig, SimEvent, SimHandle};

const SECRET_B64: &str = "YmVuY2htYXJrLXNlY3JldC1mb3Itc21zYnJpZGdlLTEyMw==";

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_sims(n: usize, latency: Duration, dir: &Path) -> Vec<SimHandle> {
    let mut sims = Vec::new();
    for i in 0..n {
        let mut config = SimConfig::fast(Profile::Generic);
        config.modem.send_latency = latency;
        config.link = Some(dir.join(format!("sim{i}")));
        sims.push(
            smsbridge::sim::pty::spawn(config)
                .await
                .expect("simulated modem"),
        );
    }
    sims
}

async fn start_service(ports: &[PathBuf]) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET_B64).unwrap();
    let mut toml = format!(
        "state_dir = {:?}\n[http]\nlisten = \"{public}\"\nadmin_listen = \"{admin}\"\n[ownid]\nshared_secret_file = {:?}\n[limits]\nper_number_count = 1000\n",
        dir.path().join("state").display().to_string(),
        secret.display().to_string()
    );
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
    loop {
        let ready = client.get(format!("http://{admin}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the service did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let every modem finish its initialisation, not just the first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    service
}

fn number(i: usize) -> String {
    format!("+4474001{:05}", i % 100_000)
}

async fn post(client: &reqwest::Client, url: &str, i: usize) -> (u16, Duration) {
    let body = serde_json::json!({
        "phoneNumber": number(i),
        "messageText": format!("Your verification code is {:06}", i % 1_000_000),
        "code": format!("{:06}", i % 1_000_000),
    })
    .to_string();
    let secret = smsbridge::ownid::SharedSecret::from_base64(SECRET_B64).unwrap();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let signature = smsbridge::ownid::sign(&secret, body.as_bytes(), &ts);
    let started = Instant::now();
    let response = client
        .post(url)
        .header("ownid-timestamp", ts)
        .header("ownid-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 1. Open-loop load at `rate` requests/s for `duration`.
async fn accept_latency(rate: u32, duration: Duration) {
    let dir = tempfile::tempdir().unwrap();
    // Modems at a real modem's pace: four of them send under three messages a second, so
    // requests pile up in the outbox, as they would on the box.
    let sims = start_sims(4, Duration::from_millis(1500), dir.path()).await;
    let service = start_service(&sims.iter().map(|s| s.path()).collect::<Vec<_>>()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let url = format!("http://{}/ownid/sms", service.public);
    // Warm up connections and the service.
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
        "request -> 202 at {rate} req/s for {:?}: {accepted}/{total} accepted, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        duration,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
    );
    drop(service);
}

/// 2. One request at a time at an idle modem; time until the modem holds the whole PDU.
async fn request_to_ctrl_z(samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(1, Duration::from_millis(5), dir.path()).await;
    let service = start_service(&[sims[0].path()]).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/ownid/sms", service.public);
    let mut events = sims[0].events();
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        let started = Instant::now();
        let (status, _) = post(&client, &url, 500_000 + i).await;
        assert_eq!(status, 202);
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Ok(SimEvent::Received(_))) => break,
                Ok(Ok(_)) => continue,
                other => panic!("no PDU reached the modem: {other:?}"),
            }
        }
        if i >= 10 {
            latencies.push(started.elapsed());
        }
        // Let the modem answer +CMGS and go idle again.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort();
    println!(
        "request -> Ctrl-Z at an idle modem, one-part OTP, {samples} samples: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
    );
    drop(service);
}

/// 3 and 4. A backlog of messages through `modems` modems with a fixed send latency.
async fn throughput(modems: usize, latency: Duration, messages: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(modems, latency, dir.path()).await;
    let service = start_service(&sims.iter().map(|s| s.path()).collect::<Vec<_>>()).await;
    let pid = service.child.id();
    let client = reqwest::Client::new();
    let url = format!("http://{}/ownid/sms", service.public);
    let mut receivers: Vec<_> = sims.iter().map(|s| s.events()).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for mut events in receivers.drain(..) {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if matches!(event, SimEvent::Received(_)) {
                    let _ = tx.send(Instant::now());
                }
            }
        });
    }
    for i in 0..messages {
        let (status, _) = post(&client, &url, 100_000 + i).await;
        assert_eq!(status, 202);
    }
    let mut times = Vec::with_capacity(messages);
    while times.len() < messages {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(t)) => times.push(t),
            _ => panic!("sends stalled after {} of {messages}", times.len()),
        }
    }
    // Steady state: from the first Ctrl-Z to the last, (n - 1) sends per modem interval.
    let span = times[times.len() - 1] - times[0];
    let per_minute = (messages - modems) as f64 / span.as_secs_f64() * 60.0;
    let ideal = 60.0 / latency.as_secs_f64() * modems as f64;
    let rss = status_field(pid, "VmHWM:").unwrap_or_default();
    println!(
        "sustained sends, {modems} modem(s) at {:.1} s latency: {per_minute:.1}/min (ideal {ideal:.1}/min, {:.1}%); service peak RSS {rss}",
        latency.as_secs_f64(),
        per_minute / ideal * 100.0,
    );
    if modems == 1 {
        idle_cpu(pid).await;
    }
    drop(service);
}

/// CPU time the service uses over 10 s with nothing to do.
async fn idle_cpu(pid: u32) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cpu_ticks(pid);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ticks = cpu_ticks(pid) - before;
    // USER_HZ is 100 on every Linux architecture the service targets.
    let hz = 100.0;
    let cpu = ticks as f64 / hz / started.elapsed().as_secs_f64() * 100.0;
    println!(
        "idle CPU over 10 s: {ticks} ticks = {cpu:.2}% of one core; RSS {}",
        status_field(pid, "VmRSS:").unwrap_or_default()
    );
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn status_field(pid: u32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    Some(line[name.len()..].trim().to_owned())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this file without it,
    // and a minutes-long measurement has no place in the test suite.
    if !std::env::args().any(|a| a == "--bench") {
        println!("the service benchmark runs with `cargo bench --bench service`");
        return;
    }
    // A filter argument picks parts ("accept", "ctrlz", "throughput").
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if run("accept") {
            accept_latency(200, Duration::from_secs(10)).await;
        }
        if run("ctrlz") {
            request_to_ctrl_z(200).await;
        }
        if run("throughput") {
            let latency = Duration::from_millis(1500);
            throughput(1, latency, 30).await;
            throughput(4, latency, 120).await;
        }
    });
}
