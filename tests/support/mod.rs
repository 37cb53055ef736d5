//! Helpers shared by the service tests: signing OwnID requests, posting them over real
//! HTTP, and running the service as a child process.
#![allow(dead_code)]

pub mod pg;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared secret the tests use, base64 as the OwnID console shows it.
pub const SECRET_B64: &str = "c21zYnJpZGdlLXRlc3Qtc2VjcmV0LWtleS0zMi1ieXRlcyE=";

pub fn secret() -> smsbridge::ownid::SharedSecret {
    smsbridge::ownid::SharedSecret::from_base64(SECRET_B64).expect("test secret")
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A request body as OwnID sends it.
pub fn body(number: &str, text: &str) -> String {
    serde_json::json!({ "phoneNumber": number, "messageText": text, "code": "123456" }).to_string()
}

/// Posts `body` signed with the test secret at the current time.
pub async fn post_signed(client: &reqwest::Client, url: &str, body: &str) -> reqwest::Response {
    let ts = now_ms().to_string();
    post_with(client, url, body, Some(&ts), Some(&sign(body, &ts))).await
}

pub fn sign(body: &str, ts: &str) -> String {
    smsbridge::ownid::sign(&secret(), body.as_bytes(), ts)
}

/// Posts `body` with the given OwnID headers (`None` leaves a header out).
pub async fn post_with(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(ts) = timestamp {
        request = request.header("ownid-timestamp", ts);
    }
    if let Some(sig) = signature {
        request = request.header("ownid-signature", sig);
    }
    request.send().await.expect("request reaches the service")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes the secret file and a configuration for the given modem ports into `dir`.
pub fn write_config(
    dir: &Path,
    modem_ports: &[PathBuf],
    extra: &str,
) -> (PathBuf, SocketAddr, SocketAddr) {
    let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let secret_file = dir.join("shared-secret");
    std::fs::write(&secret_file, format!("{SECRET_B64}\n")).unwrap();
    let mut toml = format!(
        "state_dir = {state:?}\n[http]\nlisten = \"{public}\"\nadmin_listen = \"{admin}\"\n[ownid]\nshared_secret_file = {secret:?}\n",
        state = dir.join("state").display().to_string(),
        secret = secret_file.display().to_string(),
    );
    for (i, port) in modem_ports.iter().enumerate() {
        toml.push_str(&format!(
            "[[modem]]\nname = \"modem{i}\"\nport = {:?}\n",
            port.display().to_string()
        ));
    }
    toml.push_str(extra);
    let path = dir.join("smsbridge.toml");
    std::fs::write(&path, toml).unwrap();
    (path, public, admin)
}

/// The service running as a child process, killed when dropped.
pub struct ServiceProcess {
    pub child: Child,
}

impl ServiceProcess {
    pub fn start(config: &Path) -> Self {
        Self::start_logging(config, "info", Stdio::inherit())
    }

    /// Starts the service with `RUST_LOG=filter`, its log lines going to `stderr`.
    pub fn start_logging(config: &Path, filter: &str, stderr: impl Into<Stdio>) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", filter)
            .env_remove("SMSBRIDGE_SHARED_SECRET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start smsbridge serve");
        ServiceProcess { child }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Polls `url` until it answers 200 or `within` passes.
pub async fn wait_for_200(client: &reqwest::Client, url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(response) = client.get(url).send().await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200 within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it returns `Some` or `within` passes.
pub async fn eventually<T>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The admin listener's `/api/status`, or `None` while the service doesn't answer.
pub async fn api_status(client: &reqwest::Client, admin: SocketAddr) -> Option<serde_json::Value> {
    client
        .get(format!("http://{admin}/api/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// How many messages `/api/status` counts in `state`.
pub fn queue_count(status: &serde_json::Value, state: &str) -> u64 {
    status["queue"][state].as_u64().unwrap_or(0)
}

/// A simulated modem with fast timings imitating `profile`, on a pseudo-terminal linked at
/// `link`; `latency`, when given, is its time from the PDU to the `+CMGS` answer.
pub async fn sim_at(
    link: &Path,
    profile: smsbridge::sim::Profile,
    latency: Option<Duration>,
) -> smsbridge::sim::pty::SimHandle {
    let mut sim = smsbridge::sim::SimConfig::fast(profile);
    sim.link = Some(link.to_owned());
    if let Some(latency) = latency {
        sim.modem.send_latency = latency;
    }
    smsbridge::sim::pty::spawn(sim)
        .await
        .expect("start the simulated modem")
}

/// `count` simulated modems (fast generic profile) on pseudo-terminals under `dir`, and the
/// `[[modem]]` tables that name them `modem0`, `modem1`, … and point at them.
pub async fn simulated_modems(
    dir: &Path,
    count: usize,
) -> (Vec<smsbridge::sim::pty::SimHandle>, String) {
    let mut sims = Vec::new();
    let mut tables = String::new();
    for i in 0..count {
        let link = dir.join(format!("modem{i}"));
        let sim = sim_at(&link, smsbridge::sim::Profile::Generic, None).await;
        tables.push_str(&format!(
            "[[modem]]\nname = \"modem{i}\"\nport = {:?}\n",
            sim.path().display().to_string()
        ));
        sims.push(sim);
    }
    (sims, tables)
}

/// The configuration of a service run in the test process: its state under `dir`, both
/// listeners on loopback ports the system picks, the test secret in a file, then `more`
/// (`[[modem]]` tables and anything else).
pub fn in_process_config(dir: &Path, more: &str) -> smsbridge::config::Config {
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{SECRET_B64}\n")).expect("write the secret");
    smsbridge::config::Config::from_toml_str(&format!(
        "state_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[ownid]\nshared_secret_file = {:?}\n{more}",
        dir.join("state").display().to_string(),
        secret.display().to_string(),
    ))
    .expect("a valid test configuration")
}

/// Modem timeouts short enough for tests of faults, long enough for a loaded machine.
pub fn fast_timeouts() -> smsbridge::modem::ModemTimeouts {
    smsbridge::modem::ModemTimeouts {
        command: Duration::from_secs(1),
        prompt: Duration::from_secs(1),
        submit: Duration::from_secs(3),
        registration: Duration::from_secs(5),
        health_interval: Duration::from_secs(1),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(300),
    }
}

/// Starts the service in the test process with `config`, its configured modems (no
/// simulator of its own) and [`fast_timeouts`].
pub async fn start_in_process(config: smsbridge::config::Config) -> smsbridge::service::Service {
    let options = smsbridge::service::StartOptions {
        simulator: false,
        modem_timeouts: Some(fast_timeouts()),
        ..Default::default()
    };
    smsbridge::service::start(config, options)
        .await
        .expect("the service starts")
}
