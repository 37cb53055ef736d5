//! The simulated modem: a pure model (bytes in, bytes out, injected clock) and a runner
//! that serves it on a pseudo-terminal.
//!
//! Code map:
//! - `model`: the modem's state machine (settings, SIM, registration, storage, sending,
//!   faults). Pure.
//! - `command`: its own AT command-line parser. Pure.
//! - `pdu`: its own SMS-SUBMIT checker and SMS-STATUS-REPORT builder. Pure.
//! - `profile`: what each imitated modem family says and how it differs. Pure data.
//! - `pty`: the runner, serving a `Modem` on a pseudo-terminal that clients open exactly as
//!   they open `/dev/ttyUSB0`. The only part that does I/O.
//!
//! Architecture invariant: nothing here uses `crate::at` or `crate::sms`. The simulator is
//! the test peer of both, and a peer that shared their code would share their bugs.
//!
//! The model alone, with time passed in:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use smsbridge::sim::{ModelConfig, Modem, Profile};
//!
//! let t0 = Instant::now();
//! let mut modem = Modem::new(ModelConfig::fast(Profile::Generic), t0);
//! modem.input(b"ATE0\r", t0);
//! assert_eq!(modem.take_output(t0), b"ATE0\r\r\nOK\r\n");
//! modem.input(b"AT+CMGS=23\r", t0);
//! assert_eq!(modem.take_output(t0), b"\r\n> ");
//! modem.input(b"0011000B916407281553F80000AA0AE8329BFD4697D9EC37\x1a", t0);
//! let later = t0 + Duration::from_millis(20);
//! assert_eq!(modem.next_wakeup(), Some(later));
//! assert_eq!(modem.take_output(later), b"\r\n+CMGS: 0\r\n\r\nOK\r\n");
//! assert_eq!(modem.received()[0].destination, "+46708251358");
//! ```
//!
//! On a pseudo-terminal, for clients that open it like a serial port:
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use smsbridge::sim::{self, Fault, Profile, SimConfig};
//!
//! let modem = sim::spawn(SimConfig {
//!     link: Some("/tmp/m0".into()),
//!     ..SimConfig::fast(Profile::Ec25)
//! })
//! .await?;
//! modem.set_fault(Fault::CmsErrorForNextSends { code: 38, count: 1 });
//! let new_tty = modem.unplug_for(std::time::Duration::from_millis(500)).await?;
//! # let _ = new_tty;
//! modem.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod command;
pub mod model;
pub mod pdu;
pub mod profile;
pub mod pty;

pub use model::{Delivery, Fault, InjectError, ModelConfig, Modem, Notice, ReceivedSms};
pub use pdu::{Concat, PduError};
pub use profile::{Profile, UnknownProfile};
pub use pty::{SimConfig, SimEvent, SimHandle, spawn};
