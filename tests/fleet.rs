//! Fleet mode end to end (issue 13 item 6): three `smsbridge serve` processes on one fresh
//! PostgreSQL database, each in front of simulated modems on pseudo-terminals that live in
//! this test process, so every PDU each box's modems got is seen here, decoded (number,
//! concatenation reference, part).
//!
//! Run under `scripts/with-postgres` (the README's test command does), which starts a
//! throwaway PostgreSQL and exports `SMSBRIDGE_TEST_POSTGRES_URL`; every scenario creates
//! its own database on it (`support::pg`; without the server the tests fail, saying how to
//! run them). The PostgreSQL restart scenario runs its own private server. Leases are 3 s to keep the file fast; nothing here asserts a duration.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use smsbridge::sim::model::ReceivedSms;
use smsbridge::sim::profile::Profile;
use smsbridge::sim::pty::{SimConfig, SimHandle};
use support::{ServiceProcess, eventually, post_signed, sign, wait_for_200};

/// Generous bounds for things that must happen; none is a measurement.
const WAIT: Duration = Duration::from_secs(40);
const LEASE_SECS: u64 = 3;
const TOKEN: &str = "fleet-test-bearer-token";

/// One box of the fleet under test.
struct BoxSpec {
    name: &'static str,
    modems: usize,
    /// The simulated modems' time from the PDU to `+CMGS`.
    latency: Duration,
}

struct FleetBox {
    name: &'static str,
    process: ServiceProcess,
    public: SocketAddr,
    admin: SocketAddr,
    sims: Vec<SimHandle>,
    _dir: tempfile::TempDir,
}

impl FleetBox {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.process.child.id() as i32)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).expect("signal the box");
    }

    /// Every PDU this box's modems got, with the modem's index.
    fn received(&self) -> Vec<(usize, ReceivedSms)> {
        self.sims
            .iter()
            .enumerate()
            .flat_map(|(i, sim)| sim.received().into_iter().map(move |sms| (i, sms)))
            .collect()
    }

    fn ownid_url(&self) -> String {
        format!("http://{}/ownid/sms", self.public)
    }
}

struct Fleet {
    boxes: Vec<FleetBox>,
    client: reqwest::Client,
}

/// One PDU as the fleet's modems got it.
#[derive(Debug, Clone)]
struct Part {
    box_index: usize,
    modem: usize,
    reference: Option<u16>,
    seq: u8,
    total: u8,
}

impl Fleet {
    async fn start(url: &str, specs: &[BoxSpec], extra: &str) -> Fleet {
        let mut boxes = Vec::new();
        for spec in specs {
            boxes.push(start_box(url, spec, extra).await);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        for b in &boxes {
            wait_for_200(&client, &format!("http://{}/readyz", b.admin), WAIT).await;
        }
        // Every modem of every box ready, not just the first of each.
        for b in &boxes {
            eventually(WAIT, "every modem ready", async || {
                let status = support::api_status(&client, b.admin).await?;
                let modems = status["modems"].as_array()?;
                modems.iter().all(|m| m["state"] == "ready").then_some(())
            })
            .await;
        }
        Fleet { boxes, client }
    }

    /// Every PDU any box's modems got for `number`, in no particular order.
    fn parts_for(&self, number: &str) -> Vec<Part> {
        let mut parts = Vec::new();
        for (box_index, b) in self.boxes.iter().enumerate() {
            for (modem, sms) in b.received() {
                if sms.destination == number {
                    parts.push(Part {
                        box_index,
                        modem,
                        reference: sms.concat.map(|c| c.reference),
                        seq: sms.concat.map_or(1, |c| c.seq),
                        total: sms.concat.map_or(1, |c| c.total),
                    });
                }
            }
        }
        parts
    }

    /// The box whose modem got every part of `number`'s message under one reference (the
    /// recipient's phone joins those), if one did.
    fn complete_on(&self, number: &str) -> Option<usize> {
        let mut sets: BTreeMap<(usize, usize, Option<u16>), BTreeSet<u8>> = BTreeMap::new();
        let mut total = 0;
        for part in self.parts_for(number) {
            total = part.total;
            sets.entry((part.box_index, part.modem, part.reference))
                .or_default()
                .insert(part.seq);
        }
        sets.into_iter()
            .find(|(_, seqs)| seqs.len() == usize::from(total) && total > 0)
            .map(|((b, _, _), _)| b)
    }

    async fn post(&self, box_index: usize, number: &str, text: &str) -> reqwest::Response {
        post_signed(
            &self.client,
            &self.boxes[box_index].ownid_url(),
            &support::body(number, text),
        )
        .await
    }

    /// Accepts through the JSON endpoint, which answers the message's id.
    async fn post_json(&self, box_index: usize, number: &str, text: &str) -> i64 {
        let response = self
            .client
            .post(format!("http://{}/hooks/app", self.boxes[box_index].public))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "to": number, "message": text }))
            .send()
            .await
            .expect("the box answers");
        assert_eq!(response.status(), 202);
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Waits until every modem of box `box_index` is idle (ready, not sending).
    async fn wait_idle(&self, box_index: usize) {
        eventually(WAIT, "the box's modems idle", async || {
            let status = support::api_status(&self.client, self.boxes[box_index].admin).await?;
            status["modems"]
                .as_array()?
                .iter()
                .all(|m| m["state"] == "ready")
                .then_some(())
        })
        .await;
    }

    async fn metric(&self, box_index: usize, prefix: &str) -> Option<f64> {
        let text = self
            .client
            .get(format!("http://{}/metrics", self.boxes[box_index].admin))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

async fn start_box(url: &str, spec: &BoxSpec, extra: &str) -> FleetBox {
    let dir = tempfile::tempdir().unwrap();
    let mut sims = Vec::new();
    let mut ports = Vec::new();
    for i in 0..spec.modems {
        let link = dir.path().join(format!("sim{i}"));
        let mut config = SimConfig::fast(Profile::Generic);
        config.modem.send_latency = spec.latency;
        config.modem.seed = rand::random();
        config.link = Some(link.clone());
        sims.push(
            smsbridge::sim::pty::spawn(config)
                .await
                .expect("simulated modem"),
        );
        ports.push(link);
    }
    let url_file = dir.path().join("postgres-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    let token_file = dir.path().join("app-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let fleet = format!(
        "[store]\nbackend = \"postgres\"\nurl_file = {url_file:?}\nlease_secs = {LEASE_SECS}\n\
         [node]\nname = \"{name}\"\n\
         [[endpoint]]\nkind = \"json\"\npath = \"/hooks/app\"\nbearer_token_file = {token_file:?}\n\
         phone_pointer = \"/to\"\ntext_pointer = \"/message\"\n{extra}",
        url_file = url_file.display().to_string(),
        token_file = token_file.display().to_string(),
        name = spec.name,
    );
    let (config, public, admin) = support::write_config(dir.path(), &ports, &fleet);
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let process = if std::env::var_os("FLEET_TEST_LOG").is_some() {
        ServiceProcess::start_logging(&config, "info", Stdio::inherit())
    } else {
        ServiceProcess::start_logging(&config, "info", log)
    };
    FleetBox {
        name: spec.name,
        process,
        public,
        admin,
        sims,
        _dir: dir,
    }
}

fn number(scenario: u32, i: u32) -> String {
    format!("+447400{scenario:02}{i:04}")
}

/// A text of three GSM 7-bit parts.
fn three_parts() -> String {
    "Your code is 123456. ".repeat(18)
}

fn spec(name: &'static str, modems: usize, latency_ms: u64) -> BoxSpec {
    BoxSpec {
        name,
        modems,
        latency: Duration::from_millis(latency_ms),
    }
}

/// A signed request replayed to another box is refused; the per-number limit holds for
/// the whole fleet; a message accepted by a box whose modem is busy is sent by another
/// box's idle modem, and `smsbridge message ID` says which box sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rate_limit_and_idle_modems_are_fleet_wide() {
    let url = support::pg::fresh_database().await;
    let fleet = Fleet::start(
        &url,
        &[
            spec("box-a", 1, 3000),
            spec("box-b", 1, 100),
            spec("box-c", 1, 100),
        ],
        "[limits]\nper_number_count = 3\n",
    )
    .await;

    // 1. Replay: the same signed bytes to another box.
    let replayed = number(1, 1);
    let body = support::body(&replayed, "Your code is 111111");
    let ts = support::now_ms().to_string();
    let signature = sign(&body, &ts);
    let first = support::post_with(
        &fleet.client,
        &fleet.boxes[0].ownid_url(),
        &body,
        Some(&ts),
        Some(&signature),
    )
    .await;
    assert_eq!(first.status(), 202);
    for other in [1, 2] {
        let again = support::post_with(
            &fleet.client,
            &fleet.boxes[other].ownid_url(),
            &body,
            Some(&ts),
            Some(&signature),
        )
        .await;
        assert_eq!(
            again.status(),
            401,
            "a replay to {} was accepted",
            fleet.boxes[other].name
        );
    }

    // 2. The per-number limit (3) counts the whole fleet's acceptances.
    let pumped = number(1, 2);
    for b in 0..3 {
        let response = fleet
            .post(b, &pumped, &format!("Your code is 22222{b}"))
            .await;
        assert_eq!(response.status(), 202);
    }
    for b in 0..3 {
        let response = fleet.post(b, &pumped, "Your code is 222229").await;
        assert_eq!(
            response.status(),
            429,
            "box {b} let a fourth message through"
        );
        assert!(response.headers().contains_key("retry-after"));
        let error: serde_json::Value = response.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains("too many"));
    }

    // 3. box-a's only modem busy with a slow send: box-a's next message goes to an idle
    // modem of another box. Keep giving box-a messages until its own modem takes one.
    eventually(WAIT, "the replayed and limited messages sent", async || {
        (fleet.parts_for(&replayed).len() == 1 && fleet.parts_for(&pumped).len() == 3).then_some(())
    })
    .await;
    let mut busy = false;
    for i in 0..30 {
        fleet.wait_idle(0).await;
        let filler = number(1, 100 + i);
        assert_eq!(
            fleet.post(0, &filler, "Your code is 333333").await.status(),
            202
        );
        let sender = eventually(WAIT, "the filler sent", async || {
            fleet.parts_for(&filler).first().map(|p| p.box_index)
        })
        .await;
        if sender == 0 {
            busy = true;
            break;
        }
    }
    assert!(busy, "box-a's modem never took a message of its own");
    let handed_on = number(1, 3);
    let id = fleet.post_json(0, &handed_on, "Your code is 444444").await;
    let sender = eventually(WAIT, "the message sent by some box", async || {
        fleet.complete_on(&handed_on)
    })
    .await;
    assert_ne!(
        sender, 0,
        "box-a's busy modem sent it: no other box took it"
    );

    // Which box sent it, as an operator asks any box.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(["message", "--admin"])
        .arg(fleet.boxes[0].admin.to_string())
        .arg(id.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let line = printed
        .lines()
        .find(|l| l.starts_with("box"))
        .unwrap_or_else(|| panic!("no box line in {printed}"));
    assert!(
        line.ends_with(fleet.boxes[sender].name),
        "smsbridge message says {line:?}, the modems say {}",
        fleet.boxes[sender].name
    );

    // The fleet view: every box, from any box.
    let status = support::api_status(&fleet.client, fleet.boxes[2].admin)
        .await
        .unwrap();
    let names: BTreeSet<&str> = status["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["box-a", "box-b", "box-c"]));
    assert_eq!(status["node"], "box-c");

    // Nothing was sent twice.
    assert_eq!(fleet.parts_for(&replayed).len(), 1);
    assert_eq!(fleet.parts_for(&pumped).len(), 3);
}

/// kill -9 of a box with messages claimed and a part at its modem: the other boxes send
/// everything accepted, and the only PDUs the network gets twice are those the dead box
/// had sent of the messages it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_killed_mid_send_loses_nothing() {
    let url = support::pg::fresh_database().await;
    let mut fleet = Fleet::start(
        &url,
        &[
            spec("box-a", 2, 2500),
            spec("box-b", 1, 150),
            spec("box-c", 1, 150),
        ],
        "[queue]\nttl_secs = 120\n",
    )
    .await;
    let numbers: Vec<String> = (0..8).map(|i| number(2, i)).collect();
    for n in &numbers {
        assert_eq!(fleet.post(0, n, &three_parts()).await.status(), 202);
    }
    eventually(WAIT, "a part at box-a's modem", async || {
        (!fleet.boxes[0].received().is_empty()).then_some(())
    })
    .await;
    fleet.boxes[0].process.kill_9();

    for n in &numbers {
        eventually(
            WAIT,
            "every accepted message sent whole by a live box",
            async || {
                fleet
                    .complete_on(n)
                    .filter(|&b| b != 0)
                    .map(|_| ())
                    .or_else(|| {
                        // A message box-a finished before it died is sent too.
                        (fleet.complete_on(n) == Some(0)).then_some(())
                    })
            },
        )
        .await;
    }
    // What the dead box had sent, per number (its modems are idle long since).
    let mut dead_sent: BTreeMap<String, usize> = BTreeMap::new();
    for (_, sms) in fleet.boxes[0].received() {
        *dead_sent.entry(sms.destination).or_default() += 1;
    }
    assert!(!dead_sent.is_empty());
    let mut duplicates = 0;
    for n in &numbers {
        let parts = fleet.parts_for(n).len();
        let extra = parts - 3;
        let by_dead = dead_sent.get(n).copied().unwrap_or(0);
        if fleet.complete_on(n) == Some(0) {
            assert_eq!(extra, 0, "{n}: box-a finished it, yet it was sent again");
        } else {
            assert_eq!(
                extra, by_dead,
                "{n}: {parts} PDUs; the only duplicates may be the {by_dead} box-a sent"
            );
        }
        duplicates += extra;
    }
    eprintln!(
        "kill -9: {} messages, {duplicates} duplicate PDU(s), all sent by box-a before it died",
        numbers.len()
    );
    // The takeovers were counted by the boxes that made them.
    let mut taken = 0.0;
    for b in 1..3 {
        taken += fleet
            .metric(b, "smsbridge_leases_taken_over_total")
            .await
            .unwrap_or(0.0);
    }
    assert!(taken >= 1.0, "no box counted a takeover");
}

/// SIGSTOP past the lease, then SIGCONT: the stalled box sends no further part of the
/// message another box took over, and counts the fencing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_box_sends_no_further_part_after_a_takeover() {
    let url = support::pg::fresh_database().await;
    let fleet = Fleet::start(
        &url,
        &[
            spec("box-a", 1, 1500),
            spec("box-b", 1, 100),
            spec("box-c", 1, 100),
        ],
        "",
    )
    .await;
    // A four-part message box-a's own modem is sending.
    let text = "Your code is 123456. ".repeat(30);
    let mut held = None;
    for i in 0..30 {
        fleet.wait_idle(0).await;
        let n = number(3, i);
        assert_eq!(fleet.post(0, &n, &text).await.status(), 202);
        let first = eventually(WAIT, "the first part at a modem", async || {
            fleet.parts_for(&n).first().map(|p| p.box_index)
        })
        .await;
        if first == 0 {
            held = Some(n);
            break;
        }
        eventually(WAIT, "the message sent", async || fleet.complete_on(&n)).await;
    }
    let n = held.expect("box-a's modem never took a message");
    fleet.boxes[0].signal(nix::sys::signal::Signal::SIGSTOP);
    let taker = eventually(WAIT, "another box sent the message whole", async || {
        fleet.complete_on(&n).filter(|&b| b != 0)
    })
    .await;
    let at_a_before = fleet.boxes[0].received().len();
    fleet.boxes[0].signal(nix::sys::signal::Signal::SIGCONT);
    eventually(WAIT, "box-a noticed it was fenced", async || {
        fleet
            .metric(0, "smsbridge_fenced_sends_total")
            .await
            .filter(|&v| v >= 1.0)
    })
    .await;
    assert_eq!(
        fleet.boxes[0].received().len(),
        at_a_before,
        "box-a sent a part after {} took the message over",
        fleet.boxes[taker].name
    );
    // The message is final, and box-a's late outcome did not change that.
    let parts = fleet.parts_for(&n);
    assert!(parts.iter().filter(|p| p.box_index == taker).count() >= 4);
}

/// PostgreSQL stopped and started again under load: requests meanwhile get 503 (never
/// 202), every 202 is sent, nothing refused is ever sent, and the boxes recover by
/// themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing() {
    let server = tokio::task::block_in_place(support::pg::PrivateServer::start);
    let url = support::pg::fresh_database_on(&server.admin_url()).await;
    let fleet = std::sync::Arc::new(
        Fleet::start(
            &url,
            &[
                spec("box-a", 1, 50),
                spec("box-b", 1, 50),
                spec("box-c", 1, 50),
            ],
            "",
        )
        .await,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut outcomes: Vec<(String, Option<u16>)> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(40));
            let mut i = 0u32;
            while !*stop_rx.borrow() {
                tick.tick().await;
                let n = number(4, i);
                let status = match tokio::time::timeout(
                    Duration::from_secs(15),
                    post_signed(
                        &fleet.client,
                        &fleet.boxes[(i % 3) as usize].ownid_url(),
                        &support::body(&n, "Your code is 555555"),
                    ),
                )
                .await
                {
                    Ok(response) => Some(response.status().as_u16()),
                    Err(_) => None,
                };
                outcomes.push((n, status));
                i += 1;
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| server.stop());
    // Until every box says so.
    for b in &fleet.boxes {
        eventually(
            WAIT,
            "readyz failing while PostgreSQL is down",
            async || {
                let r = fleet
                    .client
                    .get(format!("http://{}/readyz", b.admin))
                    .send()
                    .await
                    .ok()?;
                (r.status() == 503).then_some(())
            },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| {
        server.start_again();
        server.wait_ready(WAIT);
    });
    for b in &fleet.boxes {
        wait_for_200(&fleet.client, &format!("http://{}/readyz", b.admin), WAIT).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_tx.send(true).unwrap();
    let outcomes = load.await.unwrap();

    let accepted: Vec<&String> = outcomes
        .iter()
        .filter(|(_, s)| *s == Some(202))
        .map(|(n, _)| n)
        .collect();
    let refused: Vec<&String> = outcomes
        .iter()
        .filter(|(_, s)| matches!(s, Some(code) if *code != 202))
        .map(|(n, _)| n)
        .collect();
    assert!(
        outcomes
            .iter()
            .all(|(_, s)| matches!(s, Some(202) | Some(503) | None)),
        "answers other than 202 and 503: {:?}",
        outcomes
            .iter()
            .filter(|(_, s)| !matches!(s, Some(202) | Some(503) | None))
            .collect::<Vec<_>>()
    );
    assert!(
        !refused.is_empty(),
        "no request was refused while PostgreSQL was down"
    );
    assert!(
        outcomes.last().is_some_and(|(_, s)| *s == Some(202)) || accepted.len() > refused.len(),
        "the fleet did not accept again after the restart"
    );
    for n in &accepted {
        eventually(WAIT, "every 202 sent", async || fleet.complete_on(n)).await;
    }
    // Once the fleet's queue is empty, nothing refused was stored, so nothing refused is
    // ever sent.
    eventually(WAIT, "the fleet's queue drained", async || {
        let status = support::api_status(&fleet.client, fleet.boxes[0].admin).await?;
        (support::queue_count(&status, "queued") == 0
            && support::queue_count(&status, "sending") == 0)
            .then_some(())
    })
    .await;
    for n in &refused {
        assert!(fleet.parts_for(n).is_empty(), "{n} was refused yet sent");
    }
    eprintln!(
        "PostgreSQL restart: {} accepted and sent, {} refused with 503 and never sent, {} without answer",
        accepted.len(),
        refused.len(),
        outcomes.iter().filter(|(_, s)| s.is_none()).count()
    );
}

/// Starts one box on `url` and returns it with what it printed on stderr, read by a thread.
fn start_logged(
    dir: &std::path::Path,
    url: &str,
) -> (
    ServiceProcess,
    SocketAddr,
    SocketAddr,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let url_file = dir.join("postgres-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    let extra = format!(
        "[store]\nbackend = \"postgres\"\nurl_file = {:?}\nlease_secs = {LEASE_SECS}\n[node]\nname = \"box-x\"\n",
        url_file.display().to_string()
    );
    let (config, public, admin) = support::write_config(dir, &[], &extra);
    let mut process = ServiceProcess::start_logging(&config, "info", Stdio::piped());
    let stderr = process.child.stderr.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    (process, public, admin, seen)
}

/// A wrong password stops `serve` with one line naming where the URL came from, exit 78,
/// and the password in no line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_configuration_error_naming_the_key() {
    let url = support::pg::fresh_database().await;
    let wrong = support::pg::with_user(&url, "smsbridge_nobody", "not-the-Passw0rd");
    let dir = tempfile::tempdir().unwrap();
    let (mut process, _, _, seen) = start_logged(dir.path(), &wrong);
    let status = tokio::task::block_in_place(|| process.child.wait()).unwrap();
    assert_eq!(status.code(), Some(78), "exit status of a refused password");
    let log = eventually(WAIT, "the log read", async || {
        let log = seen.lock().unwrap().clone();
        log.contains("cannot start").then_some(log)
    })
    .await;
    let line = log.lines().find(|l| l.contains("cannot start")).unwrap();
    assert!(line.contains("[store] url_file"), "{line}");
    assert!(line.contains("refused the role or its password"), "{line}");
    assert!(
        !log.contains("not-the-Passw0rd"),
        "the password reached the log"
    );
}

/// PostgreSQL unreachable at start: `serve` keeps starting, both listeners answer 503
/// (`/readyz` says why), and it goes on by itself once the database answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_is_waited_for() {
    let server = tokio::task::block_in_place(support::pg::PrivateServer::start);
    let url = support::pg::fresh_database_on(&server.admin_url()).await;
    tokio::task::block_in_place(|| server.stop());
    let dir = tempfile::tempdir().unwrap();
    let (_process, public, admin, seen) = start_logged(dir.path(), &url);
    let client = reqwest::Client::new();
    let why = eventually(WAIT, "readyz answering 503", async || {
        let r = client
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .ok()?;
        (r.status() == 503).then_some(())?;
        r.text().await.ok()
    })
    .await;
    assert!(why.contains("PostgreSQL cannot be reached"), "{why}");
    let refused = support::post_signed(
        &client,
        &format!("http://{public}/ownid/sms"),
        &support::body("+447400123456", "Your code is 123456"),
    )
    .await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(seen.lock().unwrap().contains("[store] url_file"));

    tokio::task::block_in_place(|| {
        server.start_again();
        server.wait_ready(WAIT);
    });
    // No modem here, so readiness stays 503 for that reason; the status answers once the
    // store is open.
    let status = eventually(WAIT, "the service started after all", async || {
        support::api_status(&client, admin)
            .await
            .filter(|s| s.get("fleet").is_some())
    })
    .await;
    assert_eq!(status["node"], "box-x");
    let accepted = support::post_signed(
        &client,
        &format!("http://{public}/ownid/sms"),
        &support::body("+447400123456", "Your code is 123456"),
    )
    .await;
    assert_eq!(accepted.status(), 202, "within the no-modem grace period");
}
