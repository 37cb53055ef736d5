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

mod command;
pub mod model;
pub mod pdu;
pub mod profile;
pub mod pty;

pub use model::{Delivery, Fault, InjectError, ModelConfig, Modem, Notice, ReceivedSms};
pub use pdu::{Concat, PduError};
pub use profile::{Profile, UnknownProfile};
pub use pty::{SimConfig, SimEvent, SimHandle, spawn};
