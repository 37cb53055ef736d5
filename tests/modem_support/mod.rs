//! Helpers shared by the modem tests: a simulated modem on a real pseudo-terminal, the
//! driver opening its path with tokio-serial exactly as it opens `/dev/ttyUSB0`, short
//! timeouts, and bounded waits so that a bug fails a test instead of hanging it.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsbridge::modem::{
    self, ModemConfig, ModemEvent, ModemHandle, ModemState, ModemStatus, ModemTimeouts, SendError,
};
use smsbridge::sim::{Profile, SimConfig, SimHandle};
use smsbridge::sms::{PhoneNumber, SubmitOptions, SubmitPdu, encode_submit};
use tokio::sync::mpsc;

/// The destination of every test message (a number of the US example range).
pub const TO: &str = "+12015550123";

/// Short timeouts so that the suite stays fast; generous enough for a loaded machine,
/// since the simulator answers within milliseconds.
pub fn timeouts() -> ModemTimeouts {
    ModemTimeouts {
        command: Duration::from_secs(1),
        prompt: Duration::from_secs(1),
        submit: Duration::from_secs(2),
        registration: Duration::from_secs(5),
        health_interval: Duration::from_millis(250),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
    }
}

/// The longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Waits for `future`, failing the test with `what` instead of hanging.
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A simulated modem of `profile` with test timings, on a new pty.
pub async fn start_sim(profile: Profile) -> SimHandle {
    start_sim_with(SimConfig::fast(profile)).await
}

pub async fn start_sim_with(config: SimConfig) -> SimHandle {
    bounded("the simulated modem", smsbridge::sim::spawn(config))
        .await
        .expect("start the simulated modem")
}

/// The driver's configuration for a modem at `port`.
pub fn config(name: &str, port: PathBuf) -> ModemConfig {
    ModemConfig {
        name: name.to_owned(),
        port,
        baud: 115_200,
        pin: None,
        imei: None,
        status_reports: false,
        smsc_configured: false,
        timeouts: timeouts(),
    }
}

/// A driver on `config`, with the receiving end of its event channel and a log of every
/// state it published.
pub struct Driver {
    pub handle: ModemHandle,
    pub events: mpsc::Receiver<ModemEvent>,
    states: Arc<Mutex<Vec<ModemState>>>,
}

impl Driver {
    pub fn spawn(config: ModemConfig) -> Driver {
        let (tx, events) = mpsc::channel(16);
        let handle = modem::spawn(config, tx);
        let states = Arc::new(Mutex::new(vec![handle.status().borrow().state]));
        let log = states.clone();
        let mut status = handle.status();
        tokio::spawn(async move {
            while status.changed().await.is_ok() {
                let state = status.borrow_and_update().state;
                let mut log = log.lock().unwrap();
                if log.last() != Some(&state) {
                    log.push(state);
                }
            }
        });
        Driver {
            handle,
            events,
            states,
        }
    }

    /// Every state published so far, without repeats.
    pub fn states(&self) -> Vec<ModemState> {
        self.states.lock().unwrap().clone()
    }

    pub fn status(&self) -> ModemStatus {
        self.handle.status().borrow().clone()
    }

    /// Waits until the published status satisfies `wanted`, and returns it.
    pub async fn wait_for(&self, what: &str, wanted: impl Fn(&ModemStatus) -> bool) -> ModemStatus {
        let mut status = self.handle.status();
        let found = match tokio::time::timeout(WAIT, status.wait_for(|s| wanted(s))).await {
            Ok(Ok(found)) => Some(found.clone()),
            Ok(Err(_)) => panic!("the modem worker stopped while waiting for {what}"),
            Err(_) => None,
        };
        match found {
            Some(found) => found,
            None => panic!(
                "timed out waiting for {what}; status: {:?}; states: {:?}",
                self.status(),
                self.states()
            ),
        }
    }

    pub async fn wait_state(&self, state: ModemState) -> ModemStatus {
        self.wait_for(state.as_str(), |s| s.state == state).await
    }

    /// Sends `parts`, bounded.
    pub async fn send(&self, parts: Vec<SubmitPdu>) -> Result<Vec<u8>, SendError> {
        bounded("a send", self.handle.send(parts)).await
    }
}

/// The parts of `text` to [`TO`], as the codec encodes them.
pub fn parts(text: &str, reference: u16, status_report: bool) -> Vec<SubmitPdu> {
    let to = PhoneNumber::parse(TO).expect("a valid number");
    let options = SubmitOptions {
        status_report,
        ..SubmitOptions::default()
    };
    encode_submit(&to, text, reference, &options).expect("encodable text")
}

/// A text that takes exactly three parts in GSM 7-bit (153 septets each with the header).
pub fn three_part_text() -> String {
    "Your verification code is 123456. ".repeat(12)
}

/// A published SMS-DELIVER ("hellohello" from +31641600986), SMSC field first.
pub const DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8329BFD065DDF72363904";
