//! smsbridge: an on-premises SMS gateway for OwnID's custom SMS provider integration.
//!
//! OwnID POSTs a signed request; smsbridge verifies it, stores it durably in the outbox,
//! answers `202`, and sends the text through USB GSM modems in PDU mode. See
//! `ARCHITECTURE.md` for the code map and the invariants the modules keep.

pub mod at;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod endpoint;
pub mod http;
pub mod logging;
pub mod mask;
pub mod metrics;
pub mod modem;
pub mod modemmanager;
pub mod outbox;
pub mod ownid;
pub mod policy;
pub mod ratelimit;
pub mod service;
pub mod sim;
pub mod sms;
pub mod statedir;
