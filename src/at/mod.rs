//! AT commands: a pure parser of modem output ([`parse`]), pure command descriptions and
//! readers of their answers ([`command`]), and the engine that runs one command at a time
//! over a byte stream ([`engine`]).
//!
//! Architecture invariant: `parse` and `command` do no I/O, read no clock and do not import
//! tokio; only `engine` touches the stream, and it knows nothing of modem models, SIMs or
//! messages, which belong to the driver (`modem`).
//!
//! A driver builds a [`command::Command`], runs it with [`engine::AtEngine::run`], and reads
//! the [`command::Response`] with the matching reader (`SignalQuality::from_response`, ...);
//! it sends SMS with [`engine::AtEngine::send_pdu`] and takes unsolicited result codes
//! ([`parse::Urc`]) from the channel [`engine::AtEngine::spawn`] returns.

pub mod command;
pub mod engine;
pub mod parse;
