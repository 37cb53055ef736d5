//! Other senders of codes: the `[[endpoint]]` tables beside OwnID's endpoint.
//!
//! Each kind (Supabase's Send SMS hook, Standard Webhooks, Zitadel's HTTP SMS provider, any
//! JSON sender, Twilio's Messages API) has its own request shape, its own authentication and
//! its own success answer; all of them share the policy, rate limits, TTL, redaction, metrics
//! and outbox of OwnID's endpoint through `crate::http::public::submit`.
//!
//! `verify` (the signature schemes) and `map` (payload → number, text, code) are pure: no
//! clock, no I/O, no tokio. `config` holds the tables and their validation (pure) and
//! `EndpointConfig::load`, which reads the secret files once at start. `http` holds the
//! handlers.

pub mod config;
pub mod http;
pub mod map;
pub mod verify;

pub use config::{EndpointConfig, Kind};
