//! What the service and fleet benchmarks share: the secret they sign with, free ports,
//! simulated modems on pseudo-terminals, signed OwnID requests and latency arithmetic.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use smsbridge::sim::profile::Profile;
use smsbridge::sim::pty::{SimConfig, SimHandle};

/// The shared secret the benchmarks' services are configured with (base64).
pub const SECRET_B64: &str = "YmVuY2htYXJrLXNlY3JldC1mb3Itc21zYnJpZGdlLTEyMw==";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` simulated modems with `latency` from PDU to `+CMGS`, linked at `dir/<prefix><i>`.
pub async fn start_sims(n: usize, latency: Duration, dir: &Path, prefix: &str) -> Vec<SimHandle> {
    let mut sims = Vec::new();
    for i in 0..n {
        let mut config = SimConfig::fast(Profile::Generic);
        config.modem.send_latency = latency;
        config.link = Some(dir.join(format!("{prefix}{i}")));
        sims.push(
            smsbridge::sim::pty::spawn(config)
                .await
                .expect("simulated modem"),
        );
    }
    sims
}

/// A signed OwnID request for `number`, its code derived from `i`.
pub fn signed_request(
    client: &reqwest::Client,
    url: &str,
    number: &str,
    i: usize,
) -> reqwest::RequestBuilder {
    let body = format!(
        r#"{{"phoneNumber":"{number}","messageText":"Your verification code is {:06}","code":"{:06}"}}"#,
        i % 1_000_000,
        i % 1_000_000
    );
    let secret = smsbridge::ownid::SharedSecret::from_base64(SECRET_B64).unwrap();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let signature = smsbridge::ownid::sign(&secret, body.as_bytes(), &ts);
    client
        .post(url)
        .header("ownid-timestamp", ts)
        .header("ownid-signature", signature)
        .header("content-type", "application/json")
        .body(body)
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
