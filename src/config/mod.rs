//! The TOML configuration: one file, validated once into the typed [`Config`].
//!
//! [`Config::load`] reads one TOML file (see `examples/smsbridge.toml`, the packaged
//! default, for every key). Every key has a safe default, unknown keys are refused, and
//! every value is checked before the service starts; each error names the file and the key
//! (`http.listen`, `modem[1].baud`) so an operator can fix it from the message alone.
//!
//! The work is split by job:
//! - `format`: the file as written (serde structs mirroring it, with the defaults) and the
//!   diagnostics that rewrite toml's errors (the key, the line, the likely typo);
//! - `validate`: the one place values are checked and typed (socket addresses,
//!   durations, E.164 numbers, national languages, simulator profiles); the rest of the
//!   program only sees [`Config`] and never re-checks a value;
//! - `secrets`: the files a configuration points to (the OwnID shared secret and SIM
//!   PINs), so `ownid` stays pure. Nothing here logs a PIN or a secret, nor puts one in an
//!   error message.

mod format;
mod secrets;
mod validate;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::modem::{ModemConfig, ModemTimeouts};
use crate::outbox::{OutboxOptions, RetryPolicy};
use crate::sim::Profile;
use crate::sms::{NationalLanguage, PhoneNumber};

pub use secrets::{
    LoadedSecret, POSTGRES_URL_CREDENTIAL, POSTGRES_URL_ENV, SECRET_CREDENTIAL, SECRET_ENV,
    SecretError, SecretSource, load_postgres_url, load_secret, load_secret_from,
};

/// Where the service looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/smsbridge/smsbridge.toml";

/// The file name of the outbox database inside `state_dir`.
pub const OUTBOX_FILE: &str = "outbox.sqlite3";

/// The serial speeds a `[[modem]]` may use.
pub const STANDARD_BAUD_RATES: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
];

/// The whole configuration, validated. [`Config::default`] is the configuration of an
/// empty file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The directory of the outbox database (`state_dir`).
    pub state_dir: PathBuf,
    pub http: HttpConfig,
    pub ownid: OwnidConfig,
    /// The `[[modem]]` tables, in file order. With none the service starts but is not ready.
    pub modems: Vec<ModemEntry>,
    pub queue: QueueConfig,
    pub limits: LimitsConfig,
    pub sms: SmsConfig,
    pub simulator: SimulatorConfig,
    /// The `[[endpoint]]` tables: other senders of codes (validated by `crate::endpoint`).
    pub endpoint: Vec<crate::endpoint::EndpointConfig>,
    /// `[store]`: the outbox's backend (SQLite, or a fleet's PostgreSQL).
    pub store: StoreConfig,
    /// `[node]`: this box's name in a fleet.
    pub node: NodeConfig,
}

/// `[store]`: where the outbox lives.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// `url_file`: the PostgreSQL URL (with its password); also
    /// `$CREDENTIALS_DIRECTORY/postgres-url` or `SMSBRIDGE_POSTGRES_URL` (see
    /// [`Config::load_postgres_url`]).
    pub url_file: Option<PathBuf>,
    /// `lease_secs`: a box's claim on a message lapses this long after its last renewal.
    pub lease: Duration,
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// One box, the embedded default: `state_dir/outbox.sqlite3`.
    Sqlite,
    /// A fleet: several boxes share one PostgreSQL database.
    Postgres,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// `name`: this box on the status page and in metrics; `None` means the hostname.
    pub name: Option<String>,
}

/// `[http]`: the two listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// The public listener, for OwnID's requests (behind the reverse proxy).
    pub listen: SocketAddr,
    /// The path of the OwnID endpoint; starts with `/`.
    pub path: String,
    /// The admin listener (health, metrics, status): keep it on loopback.
    pub admin_listen: SocketAddr,
    /// Timeouts and size limits of both listeners.
    pub limits: HttpLimits,
    /// `admin_hosts`: more `Host:` names the admin listener answers to, besides
    /// `localhost`, `127.0.0.1`, `::1` and the address it listens on.
    pub admin_hosts: Vec<String>,
}

/// `[http]`'s limits against slow, idle or oversized clients, for both listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// `header_timeout_ms`: the request head must arrive within this; also how long an
    /// idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// `body_timeout_ms`: the body must arrive within this after the head.
    pub body_timeout: Duration,
    /// `max_header_bytes`: the largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// `max_connections`: connections served at once, per listener; more wait.
    pub max_connections: usize,
    /// `drain_timeout_ms`: at shutdown, how long requests under way may take to finish.
    pub drain_timeout: Duration,
}

/// `[ownid]`: where the shared secret is and how much clock skew to tolerate.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnidConfig {
    /// The secret file; a systemd credential takes precedence (see [`load_secret`]).
    pub shared_secret_file: PathBuf,
    /// Requests whose timestamp is further than this from our clock are refused.
    pub max_clock_skew: Duration,
}

/// One `[[modem]]` table. Turn it into the driver's [`ModemConfig`] with
/// [`ModemEntry::to_modem_config`], which reads the PIN file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModemEntry {
    /// Unique; `modem<i>` (its index) unless set.
    pub name: String,
    pub port: PathBuf,
    pub baud: u32,
    pub pin_file: Option<PathBuf>,
    /// When set, 15 digits: the modem found on `port` must have this IMEI.
    pub imei: Option<String>,
    pub status_reports: bool,
}

/// `[queue]`: the outbox's limits and retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// A message not sent within this time of its acceptance expires, never sent late.
    pub ttl: Duration,
    /// Messages queued or being sent at most; beyond it requests get `503`.
    pub max_depth: u64,
    /// How long final messages (redacted) stay in the store for the status page and for
    /// replay protection.
    pub retention: Duration,
    /// Send attempts per message before it fails.
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles with each attempt up to `retry_backoff_max`.
    pub retry_backoff_initial: Duration,
    pub retry_backoff_max: Duration,
}

/// `[limits]`: what the public endpoint accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Requests per destination number within `per_number_window`; more get `429`.
    pub per_number_count: u32,
    pub per_number_window: Duration,
    /// The most SMS parts one message may need; a longer text gets `422`.
    pub max_parts: u8,
    /// Country calling codes accepted (`1`, `44`, `49`); empty accepts all.
    pub allowed_country_codes: Vec<u16>,
    /// Accept premium-rate numbers (refused by default: SMS-pumping fraud).
    pub allow_premium_rate: bool,
    /// Accept numbers that phone-number metadata says cannot receive SMS (fixed-line
    /// only); `FixedLineOrMobile` numbers are accepted either way.
    pub allow_non_mobile: bool,
    /// After this long without any ready modem, requests get `503`.
    pub no_modem_grace: Duration,
}

/// `[sms]`: encoding choices.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConfig {
    /// The SMS centre to put in each PDU; `None` uses the SIM's default.
    pub smsc: Option<PhoneNumber>,
    /// National language shift tables the encoder may use (each listed once).
    pub national_languages: Vec<NationalLanguage>,
    /// Use 16-bit concatenation references instead of 8-bit ones.
    pub concat_16bit: bool,
}

/// `[simulator]`: the built-in simulated modems of `serve --simulator`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    pub modems: u32,
    pub profile: Profile,
    /// How long the simulated network takes to accept each part.
    pub send_latency: Duration,
}

/// Why a configuration cannot be used. Every message names the file (or `configuration`
/// for a string) and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not TOML, a value of the wrong type, or an unknown key.
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    /// Values out of range or inconsistent; all of them at once.
    #[error("{origin}: {}", ProblemList(problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    /// A `pin_file` that cannot be read or does not hold a PIN.
    #[error("modem {modem:?}: pin_file {}: {reason}", path.display())]
    PinFile {
        modem: String,
        path: PathBuf,
        reason: String,
    },
}

/// One bad value: the key (`queue.ttl_secs`, `modem[0].port`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        parse(&text, &path.display().to_string())
    }

    /// Parses and validates a configuration given as text; errors say `configuration`
    /// where [`Config::load`] would name the file.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        parse(text, "configuration")
    }

    /// The outbox database file: `state_dir/outbox.sqlite3`.
    pub fn outbox_path(&self) -> PathBuf {
        self.state_dir.join(OUTBOX_FILE)
    }

    /// The outbox's options from `[queue]`.
    pub fn outbox_options(&self) -> OutboxOptions {
        OutboxOptions {
            max_depth: self.queue.max_depth,
            retry: self.queue.retry_policy(),
            ..OutboxOptions::default()
        }
    }

    /// The driver configuration of every `[[modem]]`, PINs read from their files.
    pub fn modem_configs(&self) -> Result<Vec<ModemConfig>, ConfigError> {
        let smsc_configured = self.sms.smsc.is_some();
        self.modems
            .iter()
            .map(|entry| {
                entry.to_modem_config().map(|mut modem| {
                    modem.smsc_configured = smsc_configured;
                    modem
                })
            })
            .collect()
    }

    /// Loads the OwnID shared secret from its sources (see [`load_secret`]), with
    /// `ownid.shared_secret_file` as the file.
    pub fn load_secret(&self) -> Result<LoadedSecret, SecretError> {
        load_secret(Some(&self.ownid.shared_secret_file))
    }

    /// The fleet's PostgreSQL URL and where it came from (for messages; never log the
    /// URL): `[store] url_file`, else `$CREDENTIALS_DIRECTORY/postgres-url`, else
    /// `SMSBRIDGE_POSTGRES_URL`.
    pub fn load_postgres_url(&self) -> Result<(String, String), SecretError> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
        let env = std::env::var_os(POSTGRES_URL_ENV);
        load_postgres_url(
            self.store.url_file.as_deref(),
            credentials.as_deref().map(Path::new),
            env.as_deref(),
        )
    }

    /// This box's name in a fleet: `[node] name`, else the hostname.
    pub fn node_name(&self) -> String {
        if let Some(name) = &self.node.name {
            return name.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "smsbridge".to_owned())
    }
}

impl Default for Config {
    fn default() -> Self {
        // An empty file is valid by construction; the test suite checks it.
        validate::validate(format::RawConfig::default())
            .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

/// The two steps every configuration goes through: the file format, then validation.
fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let raw = format::read(text, origin)?;
    validate::validate(raw).map_err(|problems| ConfigError::Invalid {
        origin: origin.to_owned(),
        problems,
    })
}

impl QueueConfig {
    /// The retry schedule as the outbox applies it.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff: self.retry_backoff_initial,
            max_backoff: self.retry_backoff_max,
        }
    }
}

impl ModemEntry {
    /// The driver's configuration for this modem, with the PIN read from `pin_file`
    /// (surrounding whitespace trimmed; it must be 4 to 8 digits, 3GPP TS 31.101 §9.2).
    /// The error names the modem and the file, never the file's content.
    pub fn to_modem_config(&self) -> Result<ModemConfig, ConfigError> {
        let pin = match &self.pin_file {
            None => None,
            Some(path) => Some(
                secrets::read_pin(path).map_err(|reason| ConfigError::PinFile {
                    modem: self.name.clone(),
                    path: path.clone(),
                    reason,
                })?,
            ),
        };
        Ok(ModemConfig {
            name: self.name.clone(),
            port: self.port.clone(),
            baud: self.baud,
            pin,
            imei: self.imei.clone(),
            status_reports: self.status_reports,
            smsc_configured: false,
            timeouts: ModemTimeouts::default(),
        })
    }
}
