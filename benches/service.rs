//! The service benchmark (issue 12's figures, each beside its floor measured in the same
//! run), run with `cargo bench --bench service`.
//!
//! It starts `smsbridge serve` (release build) as a child process in front of simulated
//! modems on pseudo-terminals that live in this process, and prints:
//!
//! - the floors: an HTTP `202` with no disk (a minimal hyper server on its own thread in
//!   this process, the same client, the same open-loop rate), and write + fsync of a small
//!   record on the state directory's file system;
//! - request → Ctrl-Z at an idle modem, one-part OTP, p50 / p99 (a pty has no baud rate:
//!   the ~6 ms a real 115200-baud line takes is not in this figure);
//! - request → `202` at 1,000 requests/s, open loop, with four modems at a real modem's
//!   pace (1.5 s a part, so the queue grows), p50 / p99 / p99.9, and the highest rate at
//!   which p99 stays at or under 5 ms;
//! - the drain rate through one modem that answers at once (messages/s) and the service's
//!   host CPU per send (`/proc/<pid>/stat`);
//! - VmHWM after 1,000 accepted messages to 40+ countries and to one country, idle RSS,
//!   CPU ticks in 60 s idle, service CPU per accepted many-country request;
//! - start with 1,000,000 final rows in the outbox: time to ready and RSS, beside the same
//!   for an empty outbox. The big outbox is built once by SQL into a copy of the schema and
//!   cached under `target/bench-cache/` (rebuilt when the schema version changes).
//!
//! `SMSBRIDGE_BENCH_QUICK=1` shortens every part (for development; figures are noisier).
//! `SMSBRIDGE_BENCH_SERVICE=<path>` runs another `smsbridge` binary as the service (an
//! older build, for comparisons interleaved run by run) instead of this build's.
//! A filter argument picks parts by name: `floor`, `ctrlz`, `accept`, `drain`, `memory`,
//! `history`, `legacy` (issue 4's sends per minute, not in the default run).

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{SECRET_B64, free_port, ms, percentile, signed_request, start_sims};

use smsbridge::sim::pty::{SimEvent, SimHandle};

/// Another `smsbridge` binary to run as the service, from `SMSBRIDGE_BENCH_SERVICE`.
fn service_override() -> Option<PathBuf> {
    std::env::var_os("SMSBRIDGE_BENCH_SERVICE")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// The `smsbridge` binary the benchmark runs as the service.
fn service_binary() -> PathBuf {
    service_override().unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smsbridge")))
}

fn quick() -> bool {
    std::env::var_os("SMSBRIDGE_BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
}

/// `full` normally, `short` in quick mode.
fn pick<T>(full: T, short: T) -> T {
    if quick() { short } else { full }
}

struct Service {
    child: Child,
    public: SocketAddr,
    admin: SocketAddr,
    /// From spawning the process to the first `200` from `/healthz`.
    healthy_after: Duration,
    dir: Option<tempfile::TempDir>,
}

impl Service {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self) -> String {
        format!("http://{}/ownid/sms", self.public)
    }

    /// SIGTERM and wait: an orderly stop (the outbox is checkpointed and closed). Returns
    /// the temp dir holding the state dir.
    fn stop(mut self) -> tempfile::TempDir {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        self.dir.take().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn paths(sims: &[SimHandle]) -> Vec<PathBuf> {
    sims.iter().map(|s| s.path()).collect()
}

/// Starts `smsbridge serve` in front of `ports`. `extra` is appended to its configuration;
/// `dir` (if given) is the temp dir whose `state/` is used, so an outbox can be prepared.
/// `wait_ready` waits for `/readyz` (a modem ready) and a settling half second.
async fn start_service(
    ports: &[PathBuf],
    extra: &str,
    dir: Option<tempfile::TempDir>,
    wait_ready: bool,
) -> Service {
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET_B64).unwrap();
    let mut toml = format!(
        "state_dir = {:?}\n[http]\nlisten = \"{public}\"\nadmin_listen = \"{admin}\"\n[ownid]\nshared_secret_file = {:?}\n[limits]\nper_number_count = 1000\n{extra}\n",
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
    let spawned = Instant::now();
    let child = Command::new(service_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smsbridge serve");
    let mut service = Service {
        child,
        public,
        admin,
        healthy_after: Duration::ZERO,
        dir: Some(dir),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let healthy = client.get(format!("http://{admin}/healthz")).send().await;
        if healthy.is_ok_and(|r| r.status() == 200) {
            service.healthy_after = spawned.elapsed();
            break;
        }
        assert!(Instant::now() < deadline, "the service did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if wait_ready {
        loop {
            let ready = client
                .get(format!("http://{}/readyz", service.admin))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "the service did not get ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let every modem finish its initialisation, not just the first.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    service
}

fn uk_number(i: usize) -> String {
    format!("+4474001{:05}", i % 100_000)
}

async fn post(client: &reqwest::Client, url: &str, number: &str, i: usize) -> (u16, Duration) {
    let built = signed_request(client, url, number, i);
    let started = Instant::now();
    let response = built.send().await.expect("request");
    (response.status().as_u16(), started.elapsed())
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}x", a / b)
    } else {
        "-".to_owned()
    }
}

struct Latencies {
    sorted: Vec<Duration>,
    accepted: usize,
    /// Each request's start on the monotonic clock (ns) and its latency, in sending order;
    /// filled by [`open_loop`] only.
    stamped: Vec<(u64, Duration)>,
}

/// The monotonic clock in ns: the clock `perf record -k CLOCK_MONOTONIC` stamps its events
/// with, so that a slow request can be found in a scheduling profile of the same run.
fn monotonic_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

impl Latencies {
    fn p(&self, p: f64) -> f64 {
        ms(percentile(&self.sorted, p))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap()
}

/// Open-loop load: request `i` is sent at `start + i / rate` whatever the answers do.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    rate: u32,
    duration: Duration,
    offset: usize,
) -> Latencies {
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let client = client.clone();
        let url = url.to_owned();
        let n = offset + i;
        tasks.push(tokio::spawn(async move {
            let at = monotonic_ns();
            let (status, latency) = post(&client, &url, &uk_number(n), n).await;
            (status, latency, at)
        }));
    }
    let mut sorted = Vec::with_capacity(total);
    let mut stamped = Vec::with_capacity(total);
    let mut accepted = 0;
    for task in tasks {
        let (status, latency, at) = task.await.unwrap();
        accepted += usize::from(status == 202);
        sorted.push(latency);
        stamped.push((at, latency));
    }
    sorted.sort();
    Latencies {
        sorted,
        accepted,
        stamped,
    }
}

/// Warms up `parallel` keep-alive connections.
async fn warm_up(client: &reqwest::Client, url: &str, parallel: usize) {
    let mut tasks = Vec::new();
    for i in 0..parallel {
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            for j in 0..5 {
                let n = 990_000 + i * 5 + j;
                post(&client, &url, &uk_number(n), n).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Floors

/// A minimal HTTP/1 server that reads the body and answers `202`, nothing stored, on its
/// own thread and runtime (like the service, which is its own process).
fn floor_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            use http_body_util::BodyExt;
                            let _ = req.into_body().collect().await;
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(202)
                                    .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                                    .unwrap(),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

/// How long the Ctrl-Z run leaves the service idle between two requests (after the PDU).
const CTRL_Z_PAUSE: Duration = Duration::from_millis(50);

/// write + fsync of a small record, on the file system of the state directory, each after
/// `gap` of idleness: back to back, or paced like the Ctrl-Z run's requests (this VM's disk
/// answers an fsync after 10 ms or more of quiet in about four times the back-to-back time).
fn fsync_floor(dir: &Path, samples: usize, gap: Duration) -> Latencies {
    use std::io::Write;
    let path = dir.join("fsync-floor");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let record = [0x5au8; 200];
    let mut sorted = Vec::with_capacity(samples);
    for _ in 0..samples {
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let started = Instant::now();
        file.write_all(&record).unwrap();
        file.sync_data().unwrap();
        sorted.push(started.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    sorted.sort();
    Latencies {
        sorted,
        accepted: samples,
        stamped: Vec::new(),
    }
}

struct Floors {
    http_1k: Latencies,
    fsync: Latencies,
    /// One request at a time, each after [`CTRL_Z_PAUSE`], as the Ctrl-Z run sends them.
    http_paced: Latencies,
    /// Each after [`CTRL_Z_PAUSE`] of quiet.
    fsync_paced: Latencies,
}

/// One request at a time to `url`, each after [`CTRL_Z_PAUSE`].
async fn paced(client: &reqwest::Client, url: &str, samples: usize) -> Latencies {
    let mut sorted = Vec::with_capacity(samples);
    let mut accepted = 0;
    for i in 0..samples {
        tokio::time::sleep(CTRL_Z_PAUSE).await;
        let (status, latency) = post(client, url, &uk_number(800_000 + i), 800_000 + i).await;
        accepted += usize::from(status == 202);
        sorted.push(latency);
    }
    sorted.sort();
    Latencies {
        sorted,
        accepted,
        stamped: Vec::new(),
    }
}

async fn floors() -> Floors {
    let addr = floor_server();
    let url = format!("http://{addr}/ownid/sms");
    let client = client();
    warm_up(&client, &url, 32).await;
    let http_1k = open_loop(
        &client,
        &url,
        1000,
        pick(Duration::from_secs(10), Duration::from_secs(3)),
        0,
    )
    .await;
    let http_paced = paced(&client, &url, pick(200, 40)).await;
    let dir = tempfile::tempdir().unwrap();
    let fsync = fsync_floor(dir.path(), pick(2000, 300), Duration::ZERO);
    let fsync_paced = fsync_floor(dir.path(), pick(200, 40), CTRL_Z_PAUSE);
    println!(
        "floor: HTTP 202 with no disk at 1000 req/s: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms",
        http_1k.p(0.5),
        http_1k.p(0.99),
        http_1k.p(0.999)
    );
    println!(
        "floor: write + fsync of a 200-byte record ({}): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms",
        dir.path().display(),
        fsync.p(0.5),
        fsync.p(0.99),
        fsync.p(0.999)
    );
    println!(
        "floor, paced like the Ctrl-Z run (one every {} ms): HTTP 202 with no disk p50 {:.3} ms, p99 {:.3} ms; write + fsync p50 {:.3} ms, p99 {:.3} ms",
        CTRL_Z_PAUSE.as_millis(),
        http_paced.p(0.5),
        http_paced.p(0.99),
        fsync_paced.p(0.5),
        fsync_paced.p(0.99)
    );
    Floors {
        http_1k,
        fsync,
        http_paced,
        fsync_paced,
    }
}

// ---------------------------------------------------------------------------------------
// Request -> Ctrl-Z

async fn request_to_ctrl_z(floors: &Option<Floors>) {
    let samples = pick(300, 60);
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(1, Duration::from_millis(5), dir.path(), "sim").await;
    let service = start_service(&paths(&sims), "", None, true).await;
    let client = reqwest::Client::new();
    let url = service.url();
    let mut events = sims[0].events();
    let mut latencies = Vec::with_capacity(samples);
    let mut to_202 = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        let built = signed_request(&client, &url, &uk_number(500_000 + i), 500_000 + i);
        let started = Instant::now();
        let status = built.send().await.expect("request").status();
        let answered = started.elapsed();
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
            to_202.push(answered);
        }
        // Let the modem answer +CMGS and its status report, and go idle again.
        tokio::time::sleep(CTRL_Z_PAUSE).await;
    }
    latencies.sort();
    to_202.sort();
    let p50 = ms(percentile(&latencies, 0.50));
    let p99 = ms(percentile(&latencies, 0.99));
    let floor = floors
        .as_ref()
        .map(|f| {
            // What an accept at an idle service cannot go below: its HTTP exchange and one
            // fsync, both paced as these requests are.
            let durable = f.http_paced.p(0.5) + f.fsync_paced.p(0.5);
            format!(
                ", ratio to the HTTP floor's p50 {}; to the paced floors' sum (HTTP + fsync, p50 {durable:.2} ms) {}",
                ratio(p50, f.http_1k.p(0.5)),
                ratio(p50, durable)
            )
        })
        .unwrap_or_default();
    println!(
        "request -> Ctrl-Z at an idle modem, one-part OTP, {samples} samples: p50 {p50:.2} ms, p99 {p99:.2} ms (targets 0.8 / 2 ms; its 202 p50 {:.2} ms){floor}",
        ms(percentile(&to_202, 0.50)),
    );
    drop(service);
}

// ---------------------------------------------------------------------------------------
// Accept latency at 1,000 req/s and the highest rate with p99 <= 5 ms

async fn accept_latency(floors: &Option<Floors>) {
    let dir = tempfile::tempdir().unwrap();
    // Modems at a real modem's pace: four of them send under three messages a second, so
    // requests pile up in the outbox, as they would on the box.
    let sims = start_sims(4, Duration::from_millis(1500), dir.path(), "sim").await;
    let service = start_service(&paths(&sims), "[queue]\nmax_depth = 1000000\n", None, true).await;
    let client = client();
    let url = service.url();
    warm_up(&client, &url, 32).await;
    let duration = pick(Duration::from_secs(10), Duration::from_secs(3));
    let wal = WalWatch::start(&service);
    let at_1k = open_loop(&client, &url, 1000, duration, 0).await;
    let wal = wal.finish().await;
    let (p50, p99, p999) = (at_1k.p(0.5), at_1k.p(0.99), at_1k.p(0.999));
    let slow = |ms: u64| {
        at_1k
            .sorted
            .iter()
            .filter(|l| **l > Duration::from_millis(ms))
            .count()
    };
    let floor = floors
        .as_ref()
        .map(|f| {
            format!(
                "; HTTP floor {:.3} / {:.3} / {:.3} ms, ratio {} / {} / {}; fsync floor p99 {:.3} ms",
                f.http_1k.p(0.5),
                f.http_1k.p(0.99),
                f.http_1k.p(0.999),
                ratio(p50, f.http_1k.p(0.5)),
                ratio(p99, f.http_1k.p(0.99)),
                ratio(p999, f.http_1k.p(0.999)),
                f.fsync.p(0.99)
            )
        })
        .unwrap_or_default();
    println!(
        "request -> 202 at 1000 req/s open loop for {duration:?}, queue growing: {}/{} accepted, p50 {p50:.3} ms, p99 {p99:.3} ms, p99.9 {p999:.3} ms (targets p99 1 ms, p99.9 3 ms){floor}",
        at_1k.accepted,
        at_1k.sorted.len(),
    );
    println!("  over 5 ms: {}, over 20 ms: {}; {wal}", slow(5), slow(20));
    // For a scheduling profile of this run (scripts/profile-accept-tails): every request's
    // start on the monotonic clock and its latency, and the service's and the benchmark's process ids.
    if let Some(path) = std::env::var_os("SMSBRIDGE_BENCH_REQUEST_LOG") {
        let mut log = format!(
            "# service pid {} benchmark pid {}\n",
            service.pid(),
            std::process::id()
        );
        for (at, latency) in &at_1k.stamped {
            log.push_str(&format!("{at} {}\n", latency.as_nanos()));
        }
        std::fs::write(&path, log).unwrap();
    }
    // The highest rate whose p99 stays at or under 5 ms.
    let mut best = None;
    let mut offset = 200_000;
    for rate in [1000u32, 1500, 2000, 3000, 4000] {
        let step = pick(Duration::from_secs(3), Duration::from_secs(2));
        let run = open_loop(&client, &url, rate, step, offset).await;
        offset += run.sorted.len();
        let p99 = run.p(0.99);
        println!(
            "  at {rate} req/s for {step:?}: {}/{} accepted, p50 {:.3} ms, p99 {p99:.3} ms, p99.9 {:.3} ms",
            run.accepted,
            run.sorted.len(),
            run.p(0.5),
            run.p(0.999)
        );
        if p99 <= 5.0 && run.accepted == run.sorted.len() {
            best = Some(rate);
        } else {
            break;
        }
    }
    match best {
        Some(rate) => println!("highest rate tried with p99 <= 5 ms: {rate} req/s"),
        None => println!("highest rate tried with p99 <= 5 ms: none (even 1000 req/s is above)"),
    }
    drop(service);
}

// ---------------------------------------------------------------------------------------
// Drain rate with a modem that answers at once

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Puts `n` queued one-part messages into a stopped service's outbox, as accepted ones
/// look (the plan the service stores included).
fn preload_queued(state_dir: &Path, n: usize) {
    let conn = rusqlite::Connection::open(state_dir.join("outbox.sqlite3")).unwrap();
    let plan = smsbridge::dispatch::plan_of(&smsbridge::sms::SubmitOptions::default());
    let now = now_ms();
    conn.execute(
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?1)
         INSERT INTO messages (recipient, body, parts, concat_ref, state, created_at,
                               expires_at, next_attempt_at, signature, plan)
         SELECT printf('+4474001%05d', x), printf('Your verification code is %06d', x), 1,
                x % 65536, 'queued', ?2, ?2 + 600000, ?2, randomblob(32), ?3
         FROM c",
        rusqlite::params![n as i64, now, plan],
    )
    .unwrap();
}

async fn drain_rate() {
    let n = pick(5000, 1000);
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(1, Duration::ZERO, dir.path(), "sim").await;
    // First start: the schema; then the queue is filled while the service is stopped.
    let service = start_service(&paths(&sims), "[queue]\nmax_depth = 1000000\n", None, false).await;
    let state = service.stop();
    preload_queued(&state.path().join("state"), n);
    let mut events = sims[0].events();
    let (tx, rx) = tokio::sync::oneshot::channel::<(u32, SocketAddr)>();
    let watcher = tokio::spawn(async move {
        let (pid, admin) = rx.await.unwrap();
        let mut first = None;
        let mut first_commits = None;
        let mut count = 0usize;
        loop {
            match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                Ok(Ok(SimEvent::Received(_))) => {
                    count += 1;
                    if first.is_none() {
                        first = Some((Instant::now(), cpu_ticks(pid), thread_ticks(pid)));
                        first_commits = outbox_commits(admin).await;
                    }
                    if count == n {
                        let last = (Instant::now(), cpu_ticks(pid), thread_ticks(pid));
                        let commits = outbox_commits(admin)
                            .await
                            .zip(first_commits)
                            .map(|(b, a)| b.saturating_sub(a));
                        return Some((first.unwrap(), last, commits));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(k))) => {
                    count += k as usize;
                }
                _ => return None,
            }
        }
    });
    let service = start_service(
        &paths(&sims),
        "[queue]\nmax_depth = 1000000\n",
        Some(state),
        false,
    )
    .await;
    let wal = WalWatch::start(&service);
    tx.send((service.pid(), service.admin)).unwrap();
    let drained = watcher.await.unwrap();
    let wal = wal.finish().await;
    match drained {
        Some(((t0, c0, threads0), (t1, c1, threads1), commits)) => {
            let span = t1 - t0;
            let rate = (n - 1) as f64 / span.as_secs_f64();
            let cpu_ms = (c1 - c0) as f64 * 10.0;
            let commits = commits
                .map(|c| {
                    format!(
                        "; {:.2} WAL-syncing commits per send",
                        c as f64 / (n - 1) as f64
                    )
                })
                .unwrap_or_default();
            println!(
                "drain, 1 modem answering at once, {n} one-part messages: {rate:.0} msg/s (target 3000); service CPU {:.3} ms per send (target 0.3){commits}",
                cpu_ms / (n - 1) as f64
            );
            println!(
                "  service CPU per send by thread, ms: {}",
                thread_split(&threads0, &threads1, n - 1)
            );
            println!("  {wal}");
        }
        None => println!("drain: the sends stalled"),
    }
    drop(service);
}

/// The service's `smsbridge_outbox_commits_total`, from its admin listener.
async fn outbox_commits(admin: SocketAddr) -> Option<u64> {
    let text = metrics_text(admin).await?;
    metric(&text, "smsbridge_outbox_commits_total").map(|v| v as u64)
}

/// The service's `/metrics` page.
async fn metrics_text(admin: SocketAddr) -> Option<String> {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// One unlabelled sample from a `/metrics` page.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
        .parse()
        .ok()
}

/// Watches the outbox's `-wal` file while a run goes on: the largest size seen, sampled
/// every 20 ms (a `stat`, so it measures binaries without the WAL metrics too).
struct WalWatch {
    largest: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    admin: SocketAddr,
}

impl WalWatch {
    fn start(service: &Service) -> WalWatch {
        let state_dir = service.dir.as_ref().unwrap().path().join("state");
        let wal = state_dir.join("outbox.sqlite3-wal");
        let largest = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&largest);
        let task = tokio::spawn(async move {
            loop {
                if let Ok(meta) = std::fs::metadata(&wal) {
                    seen.fetch_max(meta.len(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        WalWatch {
            largest,
            task,
            admin: service.admin,
        }
    }

    /// Stops watching; the report line: the largest WAL and, where the service has them,
    /// its WAL counters.
    async fn finish(self) -> String {
        self.task.abort();
        let largest = self.largest.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
        let text = metrics_text(self.admin).await.unwrap_or_default();
        let counters = match (
            metric(&text, "smsbridge_outbox_wal_truncations_total"),
            metric(&text, "smsbridge_outbox_wal_truncation_seconds_total"),
            metric(&text, "smsbridge_outbox_wal_truncation_longest_seconds"),
            metric(&text, "smsbridge_outbox_wal_tail_copies_total"),
        ) {
            (Some(n), Some(total), Some(longest), Some(copies)) => format!(
                "; {n} truncations, {:.1} ms in all, longest {:.1} ms; {copies} tail copies",
                total * 1e3,
                longest * 1e3
            ),
            _ => "; (no WAL metrics from this binary)".to_owned(),
        };
        format!("largest WAL {largest:.1} MiB{counters}")
    }
}

// ---------------------------------------------------------------------------------------
// Memory and CPU of accepting

/// Example mobile numbers of `count` countries from the phone-number metadata.
fn many_country_numbers(count: usize) -> Vec<String> {
    let mut out: Vec<(u16, String)> = phonenumber::metadata::DATABASE
        .iter()
        .filter_map(|meta| {
            let example = meta.descriptors().mobile()?.example()?.to_owned();
            let number = format!("+{}{}", meta.country_code(), example);
            let parsed = phonenumber::parse(None, &number).ok()?;
            let mobile = matches!(
                parsed.number_type(&phonenumber::metadata::DATABASE),
                phonenumber::Type::Mobile | phonenumber::Type::FixedLineOrMobile
            );
            (mobile && parsed.is_valid()).then_some((meta.country_code(), number))
        })
        .collect();
    out.sort();
    out.dedup_by_key(|(code, _)| *code);
    out.into_iter().take(count).map(|(_, n)| n).collect()
}

/// Sends `numbers.len()` requests, `parallel` at a time; returns how many got `202`.
async fn send_all(
    client: &reqwest::Client,
    url: &str,
    numbers: Vec<String>,
    parallel: usize,
) -> usize {
    let numbers = Arc::new(numbers);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (client, url, numbers, next) = (
            client.clone(),
            url.to_owned(),
            numbers.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(number) = numbers.get(i) else { break };
                let (status, _) = post(&client, &url, number, 700_000 + i).await;
                ok += usize::from(status == 202);
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok
}

async fn memory() {
    let countries = many_country_numbers(60);
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(1, Duration::from_millis(1500), dir.path(), "sim").await;
    let extra = "[queue]\nmax_depth = 1000000\n";

    // Idle first, then one country.
    let service = start_service(&paths(&sims), extra, None, true).await;
    let pid = service.pid();
    let idle_rss = status_kib(pid, "VmRSS:");
    let idle_hwm = status_kib(pid, "VmHWM:");
    // What the idle RSS is: heap and stacks, mapped files (the binary's pages), shared.
    println!(
        "idle RSS by kind: anonymous {:.1} MiB, file-backed {:.1} MiB, shared memory {:.1} MiB; {} threads",
        mib(status_kib(pid, "RssAnon:")),
        mib(status_kib(pid, "RssFile:")),
        mib(status_kib(pid, "RssShmem:")),
        status_kib(pid, "Threads:")
    );
    let idle_secs = pick(60, 10);
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_ticks = cpu_ticks(pid) - before;
    println!(
        "idle: RSS {:.1} MiB (HWM {:.1} MiB; target 9), {idle_ticks} CPU ticks in {idle_secs} s",
        mib(idle_rss),
        mib(idle_hwm)
    );
    let client = client();
    let one: Vec<String> = (0..1000).map(uk_number).collect();
    let before = cpu_ticks(pid);
    let ok = send_all(&client, &service.url(), one, 4).await;
    let ticks = cpu_ticks(pid) - before;
    let hwm = status_kib(pid, "VmHWM:");
    println!(
        "1000 requests to one country: {ok} accepted, VmHWM {:.1} MiB (target 12; {} idle RSS), service CPU {:.3} ms per request",
        mib(hwm),
        ratio(hwm as f64, idle_rss as f64),
        ticks as f64 * 10.0 / 1000.0
    );
    drop(service);

    let service = start_service(&paths(&sims), extra, None, true).await;
    let pid = service.pid();
    let numbers: Vec<String> = (0..1000)
        .map(|i| countries[i % countries.len()].clone())
        .collect();
    let before = cpu_ticks(pid);
    let ok = send_all(&client, &service.url(), numbers, 4).await;
    let ticks = cpu_ticks(pid) - before;
    let hwm = status_kib(pid, "VmHWM:");
    println!(
        "1000 requests to {} countries: {ok} accepted, VmHWM {:.1} MiB (target 16; {} idle RSS), service CPU {:.3} ms per request (target 0.5)",
        countries.len(),
        mib(hwm),
        ratio(hwm as f64, idle_rss as f64),
        ticks as f64 * 10.0 / 1000.0
    );
    drop(service);
}

// ---------------------------------------------------------------------------------------
// Start with 1,000,000 final rows

const HISTORY_ROWS: i64 = 1_000_000;

/// The schema version a new outbox gets, read from one the service just created.
fn fresh_schema(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("outbox.sqlite3")).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Fills a copy of a fresh outbox with `HISTORY_ROWS` final (sent, redacted) messages of
/// the last days, each with its part, by SQL.
fn build_history(fresh: &Path, out: &Path) {
    let tmp = out.with_extension("building");
    std::fs::copy(fresh, &tmp).unwrap();
    let conn = rusqlite::Connection::open(&tmp).unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;")
        .unwrap();
    let plan = smsbridge::dispatch::plan_of(&smsbridge::sms::SubmitOptions::default());
    let now = now_ms();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1)
         INSERT INTO messages (id, recipient, body, parts, concat_ref, state, attempts, parts_sent,
                               created_at, expires_at, next_attempt_at, modem, sent_at, final_at,
                               signature, plan)
         SELECT x, '+44*******56', NULL, 1, x % 65536, 'sent', 1, 1,
                ?2 - (?1 - x) * 300, ?2 - (?1 - x) * 300 + 600000, ?2 - (?1 - x) * 300, 'modem0',
                ?2 - (?1 - x) * 300 + 2000, ?2 - (?1 - x) * 300 + 2000, randomblob(32), ?3
         FROM c",
        rusqlite::params![HISTORY_ROWS, now, plan],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO parts (message_id, part_index, modem, mr, sent_at, delivery, status_code, reported_at)
         SELECT id, 0, 'modem0', id % 256, sent_at, 'delivered', 0, sent_at + 3000 FROM messages",
        [],
    )
    .unwrap();
    conn.execute_batch("COMMIT; PRAGMA journal_mode = WAL;")
        .unwrap();
    drop(conn);
    std::fs::rename(&tmp, out).unwrap();
}

async fn history() {
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(1, Duration::from_millis(5), dir.path(), "sim").await;
    // An empty outbox: the floor.
    let service = start_service(&paths(&sims), "", None, true).await;
    let empty_ready = service.healthy_after;
    let empty_rss = status_kib(service.pid(), "VmRSS:");
    let state = service.stop();
    let fresh = state.path().join("state").join("outbox.sqlite3");
    let version = fresh_schema(&state.path().join("state"));

    let cache_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    std::fs::create_dir_all(&cache_dir).unwrap();
    let cached = cache_dir.join(format!("outbox-1m-v{version}.sqlite3"));
    // Rows are dated relative to the build; older than 5 days they near the retention.
    let stale = std::fs::metadata(&cached)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(5 * 24 * 3600))
        .unwrap_or(true);
    if stale {
        let started = Instant::now();
        build_history(&fresh, &cached);
        println!(
            "  (built the 1,000,000-row outbox in {:.1} s, cached as {})",
            started.elapsed().as_secs_f64(),
            cached.display()
        );
    }
    let big = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(big.path().join("state")).unwrap();
    let target = big.path().join("state").join("outbox.sqlite3");
    std::fs::copy(&cached, &target).unwrap();
    // Read it once so the page cache is warm, as on a box that restarts the service.
    let _ = std::fs::read(&target).map(|b| b.len());
    // First start on the copied file: it is not the file an orderly stop left, so the
    // full integrity check runs before the outbox opens.
    let service = start_service(&paths(&sims), "", Some(big), true).await;
    let first = service.healthy_after;
    let big = service.stop();
    // The restart after an orderly stop: what `systemctl restart` does.
    let service = start_service(&paths(&sims), "", Some(big), true).await;
    let ready = service.healthy_after;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = status_kib(service.pid(), "VmRSS:");
    let hwm = status_kib(service.pid(), "VmHWM:");
    // The integrity check runs in the background after a clean restart: the steady state
    // once it is done.
    tokio::time::sleep(Duration::from_secs(pick(8, 5))).await;
    let settled = status_kib(service.pid(), "VmRSS:");
    println!(
        "  RSS {:.1} MiB once the background integrity check is done (empty outbox +{:.1} MiB)",
        mib(settled),
        mib(settled.saturating_sub(empty_rss))
    );
    println!(
        "start with {HISTORY_ROWS} final rows: first start on the copied file (full quick_check first) listening after {:.3} s",
        first.as_secs_f64()
    );
    println!(
        "restart with {HISTORY_ROWS} final rows after an orderly stop: listening after {:.3} s (target 0.2; empty outbox {:.3} s, {}), RSS {:.1} MiB, HWM {:.1} MiB (target idle + 4; empty outbox {:.1} MiB, +{:.1} MiB)",
        ready.as_secs_f64(),
        empty_ready.as_secs_f64(),
        ratio(ready.as_secs_f64(), empty_ready.as_secs_f64()),
        mib(rss),
        mib(hwm),
        mib(empty_rss),
        mib(rss.saturating_sub(empty_rss))
    );
    drop(service);
}

// ---------------------------------------------------------------------------------------
// Issue 4's sustained sends per minute (not in the default run)

async fn throughput(modems: usize, latency: Duration, messages: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sims = start_sims(modems, latency, dir.path(), "sim").await;
    let service = start_service(&paths(&sims), "", None, true).await;
    let pid = service.pid();
    let client = reqwest::Client::new();
    let url = service.url();
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
        let (status, _) = post(&client, &url, &uk_number(100_000 + i), 100_000 + i).await;
        assert_eq!(status, 202);
    }
    let mut times = Vec::with_capacity(messages);
    while times.len() < messages {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(t)) => times.push(t),
            _ => panic!("sends stalled after {} of {messages}", times.len()),
        }
    }
    let span = times[times.len() - 1] - times[0];
    let per_minute = (messages - modems) as f64 / span.as_secs_f64() * 60.0;
    let ideal = 60.0 / latency.as_secs_f64() * modems as f64;
    println!(
        "sustained sends, {modems} modem(s) at {:.1} s latency: {per_minute:.1}/min (ideal {ideal:.1}/min, {:.1}%); service peak RSS {:.1} MiB",
        latency.as_secs_f64(),
        per_minute / ideal * 100.0,
        mib(status_kib(pid, "VmHWM:"))
    );
    drop(service);
}

// ---------------------------------------------------------------------------------------

fn cpu_ticks(pid: u32) -> u64 {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// The CPU ticks of each of `pid`'s threads so far, summed by thread name (the tokio
/// workers share one), in name order.
fn thread_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut by_name = std::collections::BTreeMap::<String, u64>::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ticks = stat_ticks(&path.join("stat").to_string_lossy());
        *by_name.entry(name.trim().to_owned()).or_default() += ticks;
    }
    by_name.into_iter().collect()
}

/// Where the ticks between two [`thread_ticks`] went, per send: "writer 0.41, ...".
fn thread_split(before: &[(String, u64)], after: &[(String, u64)], sends: usize) -> String {
    after
        .iter()
        .map(|(name, ticks)| {
            let earlier = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, t)| *t);
            let ms = ticks.saturating_sub(earlier) as f64 * 10.0 / sends as f64;
            (name, ms)
        })
        .filter(|(_, ms)| *ms > 0.0)
        .map(|(name, ms)| format!("{name} {ms:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// utime + stime from a `/proc/.../stat` file, in clock ticks.
fn stat_ticks(path: &str) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
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

/// A `/proc/<pid>/status` field in KiB.
fn status_kib(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| {
            l[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this file without it,
    // and a minutes-long measurement has no place in the test suite.
    if !std::env::args().any(|a| a == "--bench") {
        println!("the service benchmark runs with `cargo bench --bench service`");
        return;
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| match filter.as_deref() {
        None => name != "legacy",
        Some(f) => name.contains(f),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "smsbridge service benchmark{} ({} cores)",
            if quick() { ", QUICK mode" } else { "" },
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0)
        );
        if let Some(binary) = service_override() {
            println!("service binary: {}", binary.display());
        }
        let floors = if run("floor") || run("accept") || run("ctrlz") {
            Some(floors().await)
        } else {
            None
        };
        if run("ctrlz") {
            request_to_ctrl_z(&floors).await;
        }
        if run("accept") {
            accept_latency(&floors).await;
        }
        if run("drain") {
            drain_rate().await;
        }
        if run("memory") {
            memory().await;
        }
        if run("history") {
            history().await;
        }
        if run("legacy") {
            let latency = Duration::from_millis(1500);
            throughput(1, latency, 30).await;
            throughput(4, latency, 120).await;
        }
    });
}
