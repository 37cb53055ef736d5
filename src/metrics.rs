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
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<&'static str, u64>,
    endpoint_requests: BTreeMap<(String, &'static str), u64>,
    sends: BTreeMap<(String, &'static str), u64>,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

/// What the admin endpoint reads at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Messages per outbox state.
    pub queue: Vec<(&'static str, u64)>,
    /// Per modem: name, state name, signal in dBm.
    pub modems: Vec<(String, &'static str, Option<i32>)>,
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
        header(
            &mut out,
            "smsbridge_send_latency_seconds",
            "histogram",
            "Time from acceptance to the network's acknowledgement of the last part.",
        );
        for (bound, count) in LATENCY_BUCKETS.iter().zip(inner.latency_buckets) {
            let _ = writeln!(
                out,
                "smsbridge_send_latency_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let count = inner.latency_count;
        let _ = writeln!(
            out,
            "smsbridge_send_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "smsbridge_send_latency_seconds_sum {}",
            inner.latency_sum
        );
        let _ = writeln!(out, "smsbridge_send_latency_seconds_count {count}");
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
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters, so a poisoned lock is used as it is.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
        };
        let text = metrics.render(&gauges);
        for line in [
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
}
