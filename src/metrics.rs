//! The service's counters and the send-latency histogram, rendered in the Prometheus text
//! exposition format (version 0.0.4). Small and hand-written: a few counters do not need a
//! metrics framework. Gauges that describe current state (queue depth, modem state and
//! signal) are not stored here; the admin endpoint reads them at scrape time and passes
//! them to [`Metrics::render`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the send-latency histogram buckets, in seconds: from an idle modem's
/// couple of seconds to a congested network's minute.
const LATENCY_BUCKETS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0];

/// Counters shared by the HTTP layer and the dispatcher.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// This box's name in a fleet (`[node] name`): every series then carries a `node`
    /// label, so one dashboard can sum or split the boxes. Unset on a single box, whose
    /// series stay as they were.
    node: std::sync::OnceLock<String>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<&'static str, u64>,
    endpoint_requests: BTreeMap<(String, &'static str), u64>,
    sends: BTreeMap<(String, &'static str), u64>,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    /// Sends stopped because another box took the message's lease over (fleet mode).
    fenced: u64,
    /// Lapsed leases this box's sweep took over from a box that stopped renewing them.
    taken_over: u64,
}

/// What the admin endpoint reads at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Messages per outbox state (on PostgreSQL: the whole fleet's).
    pub queue: Vec<(&'static str, u64)>,
    /// Per modem: name, state name, signal in dBm.
    pub modems: Vec<(String, &'static str, Option<i32>)>,
    /// Fleet mode: every box's name and how long ago it last beat (seconds).
    pub fleet: Vec<(String, f64)>,
    /// On SQLite the commits that changed the outbox, each one fsync of its WAL (what
    /// wears an SD card; [`crate::outbox::WalStats::commits`]); `None` on PostgreSQL.
    pub outbox_commits: Option<u64>,
    /// [`crate::outbox::Outbox::wal_stats`]: the SQLite outbox's WAL; `None` on PostgreSQL.
    pub outbox_wal: Option<crate::outbox::WalStats>,
}

/// Every state a modem can be in, so each appears in the state gauge as 0 or 1.
const MODEM_STATES: [&str; 6] = [
    "connecting",
    "initialising",
    "ready",
    "sending",
    "failing",
    "disconnected",
];

impl Metrics {
    /// Labels every series with `node="<name>"` from now on (fleet mode). Only the first
    /// call counts.
    pub fn set_node(&self, name: &str) {
        let _ = self.node.set(name.to_owned());
    }

    /// Counts a send stopped because another box took its lease over.
    pub fn fenced(&self) {
        self.lock().fenced += 1;
    }

    /// The sends stopped by fencing so far.
    pub fn fenced_count(&self) -> u64 {
        self.lock().fenced
    }

    /// Counts lapsed leases this box took over.
    pub fn taken_over(&self, n: u64) {
        self.lock().taken_over += n;
    }

    /// Counts one answered OwnID request by its outcome (`accepted`, `unauthorized`, ...).
    pub fn request(&self, outcome: &'static str) {
        *self.lock().requests.entry(outcome).or_default() += 1;
    }

    /// Counts one answered request of an `[[endpoint]]` by endpoint name and outcome.
    pub fn endpoint_request(&self, endpoint: &str, outcome: &'static str) {
        *self
            .lock()
            .endpoint_requests
            .entry((endpoint.to_owned(), outcome))
            .or_default() += 1;
    }

    /// The number of `endpoint`'s requests answered with `outcome` so far.
    pub fn endpoint_requests(&self, endpoint: &str, outcome: &'static str) -> u64 {
        self.lock()
            .endpoint_requests
            .get(&(endpoint.to_owned(), outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Counts one send attempt on `modem` by its outcome (`sent`, `temporary`, ...).
    pub fn send(&self, modem: &str, outcome: &'static str) {
        *self
            .lock()
            .sends
            .entry((modem.to_owned(), outcome))
            .or_default() += 1;
    }

    /// Records the time from acceptance to the network's acknowledgement of the last part.
    pub fn send_latency(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let mut inner = self.lock();
        for (bucket, bound) in inner.latency_buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        inner.latency_count += 1;
        inner.latency_sum += seconds;
    }

    /// The number of requests answered with `outcome` so far.
    pub fn requests(&self, outcome: &str) -> u64 {
        self.lock().requests.get(outcome).copied().unwrap_or(0)
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let inner = self.lock();
        let mut out = String::new();
        header(
            &mut out,
            "smsbridge_requests_total",
            "counter",
            "OwnID requests by outcome.",
        );
        for (outcome, value) in &inner.requests {
            let _ = writeln!(
                out,
                "smsbridge_requests_total{{outcome=\"{outcome}\"}} {value}"
            );
        }
        header(
            &mut out,
            "smsbridge_endpoint_requests_total",
            "counter",
            "Requests of the [[endpoint]] tables by endpoint and outcome.",
        );
        for ((endpoint, outcome), value) in &inner.endpoint_requests {
            let endpoint = escape(endpoint);
            let _ = writeln!(
                out,
                "smsbridge_endpoint_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {value}"
            );
        }
        header(
            &mut out,
            "smsbridge_queue_messages",
            "gauge",
            "Messages in the outbox by state.",
        );
        for (state, value) in &gauges.queue {
            let _ = writeln!(out, "smsbridge_queue_messages{{state=\"{state}\"}} {value}");
        }
        if let Some(commits) = gauges.outbox_commits {
            sample(
                &mut out,
                "smsbridge_outbox_commits_total",
                "counter",
                "Transactions that changed the SQLite outbox, each one fsync of its WAL.",
                commits,
            );
        }
        if let Some(wal) = gauges.outbox_wal {
            sample(
                &mut out,
                "smsbridge_outbox_wal_bytes",
                "gauge",
                "Size of the SQLite outbox's write-ahead log file.",
                wal.bytes,
            );
            sample(
                &mut out,
                "smsbridge_outbox_wal_truncations_total",
                "counter",
                "TRUNCATE checkpoints of the WAL (after redactions), each one waited for by every request behind it.",
                wal.truncates,
            );
            sample(
                &mut out,
                "smsbridge_outbox_wal_truncation_seconds_total",
                "counter",
                "Time spent in those checkpoints, blocked attempts included.",
                wal.truncate_seconds,
            );
            sample(
                &mut out,
                "smsbridge_outbox_wal_truncation_longest_seconds",
                "gauge",
                "The longest of those checkpoints (or blocked attempts) since the start.",
                wal.longest_truncate_seconds,
            );
            sample(
                &mut out,
                "smsbridge_outbox_wal_tail_copies_total",
                "counter",
                "PASSIVE checkpoints the writer ran itself so that the WAL could start over.",
                wal.tail_copies,
            );
            histogram(
                &mut out,
                "smsbridge_outbox_commit_seconds",
                "Time of each commit that changed the SQLite outbox (its WAL frames and fsync); every request behind it waits for it.",
                (&crate::outbox::COMMIT_BUCKETS, &wal.commit_buckets),
                wal.commits,
                wal.commit_seconds,
            );
        }
        header(
            &mut out,
            "smsbridge_sends_total",
            "counter",
            "Send attempts by modem and outcome.",
        );
        for ((modem, outcome), value) in &inner.sends {
            let modem = escape(modem);
            let _ = writeln!(
                out,
                "smsbridge_sends_total{{modem=\"{modem}\",outcome=\"{outcome}\"}} {value}"
            );
        }
        histogram(
            &mut out,
            "smsbridge_send_latency_seconds",
            "Time from acceptance to the network's acknowledgement of the last part.",
            (&LATENCY_BUCKETS, &inner.latency_buckets),
            inner.latency_count,
            inner.latency_sum,
        );
        header(
            &mut out,
            "smsbridge_modem_state",
            "gauge",
            "1 for the state each modem is in.",
        );
        for (name, state, _) in &gauges.modems {
            let name = escape(name);
            for candidate in MODEM_STATES {
                let value = u8::from(candidate == *state);
                let _ = writeln!(
                    out,
                    "smsbridge_modem_state{{modem=\"{name}\",state=\"{candidate}\"}} {value}"
                );
            }
        }
        header(
            &mut out,
            "smsbridge_modem_signal_dbm",
            "gauge",
            "Received signal strength.",
        );
        for (name, _, signal) in &gauges.modems {
            if let Some(dbm) = signal {
                let _ = writeln!(
                    out,
                    "smsbridge_modem_signal_dbm{{modem=\"{}\"}} {dbm}",
                    escape(name)
                );
            }
        }
        sample(
            &mut out,
            "smsbridge_fenced_sends_total",
            "counter",
            "Sends stopped before their next part because another box took the message over.",
            inner.fenced,
        );
        sample(
            &mut out,
            "smsbridge_leases_taken_over_total",
            "counter",
            "Messages this box took over from a box whose lease lapsed.",
            inner.taken_over,
        );
        if !gauges.fleet.is_empty() {
            header(
                &mut out,
                "smsbridge_fleet_last_seen_seconds",
                "gauge",
                "Seconds since each box of the fleet last beat.",
            );
            for (name, ago) in &gauges.fleet {
                let _ = writeln!(
                    out,
                    "smsbridge_fleet_last_seen_seconds{{box=\"{}\"}} {ago}",
                    escape(name)
                );
            }
        }
        match self.node.get() {
            Some(node) => with_node_label(&out, node),
            None => out,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters, so a poisoned lock is used as it is.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Adds `node="<node>"` as the first label of every sample line.
fn with_node_label(text: &str, node: &str) -> String {
    let label = format!("node=\"{}\"", escape(node));
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.lines() {
        if line.starts_with('#') {
            out.push_str(line);
        } else if let Some(brace) = line.find('{') {
            out.push_str(&line[..=brace]);
            out.push_str(&label);
            out.push(',');
            out.push_str(&line[brace + 1..]);
        } else if let Some(space) = line.find(' ') {
            out.push_str(&line[..space]);
            out.push('{');
            out.push_str(&label);
            out.push('}');
            out.push_str(&line[space..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A histogram's series: `buckets` are the bounds and the cumulative counts under them.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    buckets: (&[f64], &[u64]),
    count: u64,
    sum: f64,
) {
    header(out, name, "histogram", help);
    for (bound, under) in buckets.0.iter().zip(buckets.1) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {under}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

/// A series of one unlabelled sample, with its header.
fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let metrics = Metrics::default();
        metrics.request("accepted");
        metrics.request("accepted");
        metrics.request("unauthorized");
        metrics.send("modem0", "sent");
        metrics.send_latency(Duration::from_millis(1600));
        metrics.send_latency(Duration::from_secs(90));
        let gauges = Gauges {
            queue: vec![("queued", 3), ("sent", 7)],
            modems: vec![
                ("modem0".into(), "ready", Some(-71)),
                ("m\"1".into(), "failing", None),
            ],
            fleet: vec![],
            outbox_commits: Some(12),
            outbox_wal: Some(crate::outbox::WalStats {
                bytes: 4_120_032,
                truncates: 2,
                truncate_seconds: 0.0315,
                longest_truncate_seconds: 0.029,
                tail_copies: 5,
                commit_buckets: [3, 9, 10, 10, 11, 11, 11, 11, 11, 11],
                commits: 12,
                commit_seconds: 0.0425,
            }),
        };
        let text = metrics.render(&gauges);
        for line in [
            "smsbridge_outbox_commits_total 12",
            "smsbridge_outbox_wal_bytes 4120032",
            "smsbridge_outbox_wal_truncations_total 2",
            "smsbridge_outbox_wal_truncation_seconds_total 0.0315",
            "smsbridge_outbox_wal_truncation_longest_seconds 0.029",
            "smsbridge_outbox_wal_tail_copies_total 5",
            "# TYPE smsbridge_outbox_commit_seconds histogram",
            "smsbridge_outbox_commit_seconds_bucket{le=\"0.0005\"} 3",
            "smsbridge_outbox_commit_seconds_bucket{le=\"0.005\"} 10",
            "smsbridge_outbox_commit_seconds_bucket{le=\"1\"} 11",
            "smsbridge_outbox_commit_seconds_bucket{le=\"+Inf\"} 12",
            "smsbridge_outbox_commit_seconds_sum 0.0425",
            "smsbridge_outbox_commit_seconds_count 12",
            "smsbridge_requests_total{outcome=\"accepted\"} 2",
            "smsbridge_requests_total{outcome=\"unauthorized\"} 1",
            "smsbridge_queue_messages{state=\"queued\"} 3",
            "smsbridge_sends_total{modem=\"modem0\",outcome=\"sent\"} 1",
            "smsbridge_send_latency_seconds_bucket{le=\"1\"} 0",
            "smsbridge_send_latency_seconds_bucket{le=\"2\"} 1",
            "smsbridge_send_latency_seconds_bucket{le=\"60\"} 1",
            "smsbridge_send_latency_seconds_bucket{le=\"+Inf\"} 2",
            "smsbridge_send_latency_seconds_count 2",
            "smsbridge_modem_state{modem=\"modem0\",state=\"ready\"} 1",
            "smsbridge_modem_state{modem=\"modem0\",state=\"failing\"} 0",
            "smsbridge_modem_state{modem=\"m\\\"1\",state=\"failing\"} 1",
            "smsbridge_modem_signal_dbm{modem=\"modem0\"} -71",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("smsbridge_modem_signal_dbm{modem=\"m\\\"1"));
    }

    #[test]
    fn a_fleet_box_labels_every_series_with_its_name() {
        let metrics = Metrics::default();
        metrics.request("accepted");
        metrics.fenced();
        metrics.send_latency(Duration::from_millis(300));
        metrics.set_node("pi-a");
        let gauges = Gauges {
            queue: vec![("queued", 2)],
            modems: vec![],
            fleet: vec![("pi-a".into(), 1.5), ("pi-b".into(), 4.0)],
            outbox_commits: None,
            outbox_wal: None,
        };
        let text = metrics.render(&gauges);
        for line in [
            "smsbridge_requests_total{node=\"pi-a\",outcome=\"accepted\"} 1",
            "smsbridge_queue_messages{node=\"pi-a\",state=\"queued\"} 2",
            "smsbridge_send_latency_seconds_count{node=\"pi-a\"} 1",
            "smsbridge_fenced_sends_total{node=\"pi-a\"} 1",
            "smsbridge_fleet_last_seen_seconds{node=\"pi-a\",box=\"pi-b\"} 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.contains("node=\"pi-a\"")),
            "{text}"
        );
        assert!(
            !text.contains("smsbridge_outbox_commits_total")
                && !text.contains("smsbridge_outbox_wal"),
            "PostgreSQL's commits are not counted as SQLite's: {text}"
        );
    }
}
