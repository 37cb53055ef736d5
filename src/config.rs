//! The TOML configuration: parsing, defaults, validation, and the secrets it points to.
//!
//! [`Config::load`] reads one TOML file (see `examples/smsbridge.toml`, the packaged
//! default, for every key). Every key has a safe default, unknown keys are refused, and
//! every value is checked before the service starts; each error names the file and the key
//! (`http.listen`, `modem[1].baud`) so an operator can fix it from the message alone.
//!
//! Parsing happens in two steps: the TOML is read into private `Raw*` structs that mirror
//! the file (serde, `deny_unknown_fields`, integers as `i64` so an out-of-range value is
//! reported by us with its key rather than by serde), then validated into the public,
//! typed [`Config`] (socket addresses, durations). The rest of the program only sees
//! [`Config`].
//!
//! This module also loads the files a configuration refers to: the SIM PIN
//! ([`ModemEntry::to_modem_config`]) and the OwnID shared secret ([`load_secret`]), so that
//! `ownid` stays pure. It never logs a PIN or a secret, nor puts one in an error message.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::modem::{ModemConfig, ModemTimeouts};
use crate::outbox::{OutboxOptions, RetryPolicy};
use crate::ownid::{SecretFormatError, SharedSecret};

/// Where the service looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/smsbridge/smsbridge.toml";

/// The file name of the outbox database inside `state_dir`.
pub const OUTBOX_FILE: &str = "outbox.sqlite3";

/// The serial speeds a `[[modem]]` may use.
pub const STANDARD_BAUD_RATES: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
];

/// The national language shift tables of 3GPP TS 23.038 §6.2.1.2.4, by the names
/// `[sms] national_languages` accepts.
pub const NATIONAL_LANGUAGES: &[&str] = &[
    "turkish",
    "spanish",
    "portuguese",
    "bengali",
    "gujarati",
    "hindi",
    "kannada",
    "malayalam",
    "oriya",
    "punjabi",
    "tamil",
    "telugu",
    "urdu",
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
    /// The SMS centre to put in each PDU (E.164); `None` uses the SIM's default.
    pub smsc: Option<String>,
    /// National language shift tables the encoder may use, lower-case names from
    /// [`NATIONAL_LANGUAGES`]; the codec turns them into its own type.
    pub national_languages: Vec<String>,
    /// Use 16-bit concatenation references instead of 8-bit ones.
    pub concat_16bit: bool,
}

/// `[simulator]`: the built-in simulated modems of `serve --simulator`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    pub modems: u32,
    pub profile: String,
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
}

impl Default for Config {
    fn default() -> Self {
        // An empty file is valid by construction; the test suite checks it.
        validate(RawConfig::default()).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
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
            Some(path) => Some(read_pin(path).map_err(|reason| ConfigError::PinFile {
                modem: self.name.clone(),
                path: path.clone(),
                reason,
            })?),
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

fn read_pin(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read it: {err}"))?;
    let pin = text.trim();
    if pin.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a SIM PIN is 4 to 8 digits".to_owned());
    }
    Ok(pin.to_owned())
}

// ---------------------------------------------------------------------------------------
// The shared secret's sources.

/// The environment variable that may hold the shared secret (base64).
pub const SECRET_ENV: &str = "SMSBRIDGE_SHARED_SECRET";

/// The systemd credential name (`LoadCredential=shared-secret:...`).
pub const SECRET_CREDENTIAL: &str = "shared-secret";

/// The secret and where it came from (for a log line; never log the secret).
#[derive(Debug)]
pub struct LoadedSecret {
    pub secret: SharedSecret,
    pub source: SecretSource,
}

/// Where a shared secret was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `$CREDENTIALS_DIRECTORY/shared-secret` (systemd `LoadCredential=`).
    Credential(PathBuf),
    /// The configured `ownid.shared_secret_file`.
    File(PathBuf),
    /// The `SMSBRIDGE_SHARED_SECRET` environment variable.
    Environment,
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Credential(path) => write!(f, "systemd credential {}", path.display()),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Environment => write!(f, "environment variable {SECRET_ENV}"),
        }
    }
}

/// Why no usable shared secret was loaded. The messages name the source, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the shared secret from {origin}: {reason}")]
    Unreadable {
        origin: SecretSource,
        reason: String,
    },
    #[error("the shared secret in {origin} is unusable: {error}")]
    Format {
        origin: SecretSource,
        error: SecretFormatError,
    },
    #[error(
        "no shared secret found: looked for {} (provide one of them)",
        .looked.join(", ")
    )]
    NotFound { looked: Vec<String> },
}

/// Loads the shared secret from the first source that exists, in this order:
/// `$CREDENTIALS_DIRECTORY/shared-secret` (a systemd credential), the file
/// `shared_secret_file`, the environment variable `SMSBRIDGE_SHARED_SECRET`.
///
/// A source that does not exist is skipped; one that exists but cannot be read, is empty
/// or is not base64 stops the search with an error naming it. This is a thin wrapper over
/// [`load_secret_from`] that reads the process environment.
pub fn load_secret(shared_secret_file: Option<&Path>) -> Result<LoadedSecret, SecretError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
    let env_secret = std::env::var_os(SECRET_ENV);
    load_secret_from(
        credentials.as_deref().map(Path::new),
        shared_secret_file,
        env_secret.as_deref(),
    )
}

/// [`load_secret`] with the environment passed in: `credentials_directory` is the value
/// of `$CREDENTIALS_DIRECTORY`, `env_secret` the value of `$SMSBRIDGE_SHARED_SECRET`.
pub fn load_secret_from(
    credentials_directory: Option<&Path>,
    shared_secret_file: Option<&Path>,
    env_secret: Option<&OsStr>,
) -> Result<LoadedSecret, SecretError> {
    let mut looked = Vec::new();
    let candidates = [
        credentials_directory.map(|dir| SecretSource::Credential(dir.join(SECRET_CREDENTIAL))),
        shared_secret_file.map(|path| SecretSource::File(path.to_owned())),
    ];
    for origin in candidates.into_iter().flatten() {
        let path = match &origin {
            SecretSource::Credential(path) | SecretSource::File(path) => path.clone(),
            SecretSource::Environment => continue,
        };
        match std::fs::read(&path) {
            Ok(bytes) => return decode_secret(&bytes, origin),
            Err(err) if err.kind() == io::ErrorKind::NotFound => looked.push(origin.to_string()),
            Err(err) => {
                return Err(SecretError::Unreadable {
                    origin,
                    reason: err.to_string(),
                });
            }
        }
    }
    match env_secret {
        Some(value) => decode_secret(value.as_encoded_bytes(), SecretSource::Environment),
        None => {
            looked.push(SecretSource::Environment.to_string());
            Err(SecretError::NotFound { looked })
        }
    }
}

fn decode_secret(bytes: &[u8], origin: SecretSource) -> Result<LoadedSecret, SecretError> {
    // Base64 is ASCII; anything else is simply not base64 (and is not echoed back).
    let text = std::str::from_utf8(bytes).map_err(|_| SecretError::Format {
        origin: origin.clone(),
        error: SecretFormatError::NotBase64,
    })?;
    match SharedSecret::from_base64(text) {
        Ok(secret) => Ok(LoadedSecret {
            secret,
            source: origin,
        }),
        Err(error) => Err(SecretError::Format { origin, error }),
    }
}

// ---------------------------------------------------------------------------------------
// The file as written: serde structs with the documented defaults.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    state_dir: PathBuf,
    http: RawHttp,
    ownid: RawOwnid,
    modem: Vec<RawModem>,
    queue: RawQueue,
    limits: RawLimits,
    sms: RawSms,
    simulator: RawSimulator,
    endpoint: Vec<crate::endpoint::EndpointConfig>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            state_dir: PathBuf::from("/var/lib/smsbridge"),
            http: RawHttp::default(),
            ownid: RawOwnid::default(),
            modem: Vec::new(),
            queue: RawQueue::default(),
            limits: RawLimits::default(),
            sms: RawSms::default(),
            simulator: RawSimulator::default(),
            endpoint: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
    path: String,
    admin_listen: String,
    header_timeout_ms: i64,
    body_timeout_ms: i64,
    max_header_bytes: i64,
    max_connections: i64,
    drain_timeout_ms: i64,
    admin_hosts: Vec<String>,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:8080".to_owned(),
            path: "/ownid/sms".to_owned(),
            admin_listen: "127.0.0.1:9090".to_owned(),
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_header_bytes: 8_192,
            max_connections: 256,
            drain_timeout_ms: 5_000,
            admin_hosts: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOwnid {
    shared_secret_file: PathBuf,
    max_clock_skew_secs: i64,
}

impl Default for RawOwnid {
    fn default() -> Self {
        RawOwnid {
            shared_secret_file: PathBuf::from("/etc/smsbridge/shared-secret"),
            max_clock_skew_secs: 60,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawModem {
    name: Option<String>,
    port: Option<PathBuf>,
    baud: i64,
    pin_file: Option<PathBuf>,
    imei: Option<String>,
    status_reports: bool,
}

impl Default for RawModem {
    fn default() -> Self {
        RawModem {
            name: None,
            port: None,
            baud: 115_200,
            pin_file: None,
            imei: None,
            status_reports: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQueue {
    ttl_secs: i64,
    max_depth: i64,
    retention_secs: i64,
    max_attempts: i64,
    retry_backoff_initial_ms: i64,
    retry_backoff_max_ms: i64,
}

impl Default for RawQueue {
    fn default() -> Self {
        RawQueue {
            ttl_secs: 600,
            max_depth: 10_000,
            retention_secs: 7 * 24 * 3600,
            max_attempts: 5,
            retry_backoff_initial_ms: 1_000,
            retry_backoff_max_ms: 30_000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    per_number_count: i64,
    per_number_window_secs: i64,
    max_parts: i64,
    allowed_country_codes: Vec<i64>,
    allow_premium_rate: bool,
    allow_non_mobile: bool,
    no_modem_grace_secs: i64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            per_number_count: 5,
            per_number_window_secs: 600,
            max_parts: 6,
            allowed_country_codes: Vec::new(),
            allow_premium_rate: false,
            allow_non_mobile: false,
            no_modem_grace_secs: 60,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawSms {
    smsc: Option<String>,
    national_languages: Vec<String>,
    concat_16bit: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSimulator {
    modems: i64,
    profile: String,
    send_latency_ms: i64,
}

impl Default for RawSimulator {
    fn default() -> Self {
        RawSimulator {
            modems: 1,
            profile: "generic".to_owned(),
            send_latency_ms: 1_500,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsing and validation.

fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: describe_toml_error(text, &err),
    })?;
    validate(raw).map_err(|problems| ConfigError::Invalid {
        origin: origin.to_owned(),
        problems,
    })
}

/// Collects the problems of one configuration, so all of them are reported at once.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// `value` if it lies in `lo..=hi`, else records a problem and returns `lo`.
    fn range(&mut self, key: &str, value: i64, lo: i64, hi: i64) -> i64 {
        if (lo..=hi).contains(&value) {
            value
        } else {
            self.problem(key, format!("must be between {lo} and {hi}, not {value}"));
            lo
        }
    }

    fn secs(&mut self, key: &str, value: i64, lo: i64, hi: i64) -> Duration {
        Duration::from_secs(self.range(key, value, lo, hi).unsigned_abs())
    }

    fn millis(&mut self, key: &str, value: i64, lo: i64, hi: i64) -> Duration {
        Duration::from_millis(self.range(key, value, lo, hi).unsigned_abs())
    }

    fn socket(&mut self, key: &str, value: &str) -> SocketAddr {
        value.parse().unwrap_or_else(|_| {
            self.problem(
                key,
                format!(
                    "{value:?} is not a socket address \
                     (write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn path(&mut self, key: &str, value: &Path) {
        if value.as_os_str().is_empty() {
            self.problem(key, "must not be empty");
        }
    }
}

fn validate(raw: RawConfig) -> Result<Config, Vec<Problem>> {
    let mut c = Checker::default();

    c.path("state_dir", &raw.state_dir);

    let listen = c.socket("http.listen", &raw.http.listen);
    let admin_listen = c.socket("http.admin_listen", &raw.http.admin_listen);
    if listen == admin_listen && listen.port() != 0 {
        c.problem(
            "http.admin_listen",
            format!("must differ from http.listen ({listen})"),
        );
    }
    let h = &raw.http;
    let http_limits = HttpLimits {
        header_timeout: c.millis("http.header_timeout_ms", h.header_timeout_ms, 100, 300_000),
        body_timeout: c.millis("http.body_timeout_ms", h.body_timeout_ms, 100, 300_000),
        max_header_bytes: c.range("http.max_header_bytes", h.max_header_bytes, 1_024, 65_536)
            as usize,
        // Two listeners at the maximum stay well inside the unit's LimitNOFILE.
        max_connections: c.range("http.max_connections", h.max_connections, 1, 3_072) as usize,
        drain_timeout: c.millis("http.drain_timeout_ms", h.drain_timeout_ms, 0, 60_000),
    };

    let path = raw.http.path;
    if !path.starts_with('/') {
        c.problem("http.path", format!("{path:?} must start with \"/\""));
    } else if let Some(bad) = path
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || "/-._~".contains(*ch)))
    {
        c.problem(
            "http.path",
            format!("{path:?} may only contain letters, digits and / - . _ ~ (found {bad:?})"),
        );
    }

    c.path("ownid.shared_secret_file", &raw.ownid.shared_secret_file);
    let max_clock_skew = c.secs(
        "ownid.max_clock_skew_secs",
        raw.ownid.max_clock_skew_secs,
        1,
        600,
    );

    let modems = validate_modems(&mut c, raw.modem);
    for (key, message) in crate::endpoint::config::validate(&raw.endpoint, &path) {
        c.problem(key, message);
    }

    let q = raw.queue;
    let ttl = c.secs("queue.ttl_secs", q.ttl_secs, 30, 86_400);
    let max_depth = c
        .range("queue.max_depth", q.max_depth, 1, 1_000_000)
        .unsigned_abs();
    // Replay protection keeps each accepted signature until its row is purged, and must
    // outlive the accepted timestamp window (at most 2 × 600 s), hence the hour.
    let retention = c.secs(
        "queue.retention_secs",
        q.retention_secs,
        3_600,
        366 * 86_400,
    );
    let max_attempts = c.range("queue.max_attempts", q.max_attempts, 1, 100) as u32;
    let retry_backoff_initial = c.millis(
        "queue.retry_backoff_initial_ms",
        q.retry_backoff_initial_ms,
        100,
        600_000,
    );
    let retry_backoff_max = c.millis(
        "queue.retry_backoff_max_ms",
        q.retry_backoff_max_ms,
        100,
        3_600_000,
    );
    if retry_backoff_max < retry_backoff_initial {
        c.problem(
            "queue.retry_backoff_max_ms",
            format!(
                "must not be less than queue.retry_backoff_initial_ms ({})",
                q.retry_backoff_initial_ms
            ),
        );
    }

    let l = raw.limits;
    let per_number_count = c.range("limits.per_number_count", l.per_number_count, 1, 10_000) as u32;
    let per_number_window = c.secs(
        "limits.per_number_window_secs",
        l.per_number_window_secs,
        1,
        7 * 86_400,
    );
    let max_parts = c.range("limits.max_parts", l.max_parts, 1, 255) as u8;
    let mut allowed_country_codes = Vec::new();
    for (i, code) in l.allowed_country_codes.iter().enumerate() {
        // ITU-T E.164 country calling codes have one to three digits.
        let code = c.range(&format!("limits.allowed_country_codes[{i}]"), *code, 1, 999) as u16;
        if !allowed_country_codes.contains(&code) {
            allowed_country_codes.push(code);
        }
    }
    let no_modem_grace = c.secs(
        "limits.no_modem_grace_secs",
        l.no_modem_grace_secs,
        0,
        3_600,
    );

    let s = raw.sms;
    if let Some(smsc) = &s.smsc {
        let digits = smsc.strip_prefix('+').unwrap_or("");
        if !(2..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            c.problem(
                "sms.smsc",
                format!("{smsc:?} is not an E.164 number (\"+\" and 2 to 15 digits)"),
            );
        }
    }
    for (i, language) in s.national_languages.iter().enumerate() {
        if !NATIONAL_LANGUAGES.contains(&language.as_str()) {
            c.problem(
                format!("sms.national_languages[{i}]"),
                format!(
                    "{language:?} is not one of {}",
                    NATIONAL_LANGUAGES.join(", ")
                ),
            );
        } else if s.national_languages[..i].contains(language) {
            c.problem(
                format!("sms.national_languages[{i}]"),
                format!("{language:?} is listed twice"),
            );
        }
    }

    let sim = raw.simulator;
    let sim_modems = c.range("simulator.modems", sim.modems, 1, 16) as u32;
    if sim.profile.trim().is_empty() {
        c.problem("simulator.profile", "must not be empty");
    }
    let send_latency = c.millis("simulator.send_latency_ms", sim.send_latency_ms, 0, 600_000);

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        state_dir: raw.state_dir,
        http: HttpConfig {
            listen,
            path,
            admin_listen,
            limits: http_limits,
            admin_hosts: raw.http.admin_hosts,
        },
        ownid: OwnidConfig {
            shared_secret_file: raw.ownid.shared_secret_file,
            max_clock_skew,
        },
        modems,
        queue: QueueConfig {
            ttl,
            max_depth,
            retention,
            max_attempts,
            retry_backoff_initial,
            retry_backoff_max,
        },
        limits: LimitsConfig {
            per_number_count,
            per_number_window,
            max_parts,
            allowed_country_codes,
            allow_premium_rate: l.allow_premium_rate,
            allow_non_mobile: l.allow_non_mobile,
            no_modem_grace,
        },
        sms: SmsConfig {
            smsc: s.smsc,
            national_languages: s.national_languages,
            concat_16bit: s.concat_16bit,
        },
        simulator: SimulatorConfig {
            modems: sim_modems,
            profile: sim.profile,
            send_latency,
        },
        endpoint: raw.endpoint,
    })
}

fn validate_modems(c: &mut Checker, raw: Vec<RawModem>) -> Vec<ModemEntry> {
    let mut modems: Vec<ModemEntry> = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("modem[{i}].{field}");
        let name = m.name.unwrap_or_else(|| format!("modem{i}"));
        // The name becomes a metrics label and a log field: keep it plain.
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            c.problem(
                key("name"),
                format!("{name:?} must be 1 to 32 letters, digits, '-', '_' or '.'"),
            );
        } else if let Some(j) = modems.iter().position(|other| other.name == name) {
            c.problem(
                key("name"),
                format!("{name:?} is already the name of modem[{j}]"),
            );
        }
        let port = match m.port {
            None => {
                c.problem(
                    key("port"),
                    "is required (the modem's serial device, e.g. \"/dev/ttyUSB0\")",
                );
                PathBuf::new()
            }
            Some(port) if port.as_os_str().is_empty() => {
                c.problem(key("port"), "must not be empty");
                port
            }
            Some(port) => {
                if let Some(j) = modems.iter().position(|other| other.port == port) {
                    c.problem(
                        key("port"),
                        format!("{} is already the port of modem[{j}]", port.display()),
                    );
                }
                port
            }
        };
        let baud = match u32::try_from(m.baud) {
            Ok(baud) if STANDARD_BAUD_RATES.contains(&baud) => baud,
            _ => {
                let rates: Vec<String> = STANDARD_BAUD_RATES.iter().map(u32::to_string).collect();
                c.problem(
                    key("baud"),
                    format!("must be one of {}, not {}", rates.join(", "), m.baud),
                );
                115_200
            }
        };
        if let Some(pin_file) = &m.pin_file {
            c.path(&key("pin_file"), pin_file);
        }
        if let Some(imei) = &m.imei {
            if imei.len() != 15 || !imei.bytes().all(|b| b.is_ascii_digit()) {
                c.problem(key("imei"), format!("{imei:?} is not an IMEI (15 digits)"));
            }
        }
        modems.push(ModemEntry {
            name,
            port,
            baud,
            pin_file: m.pin_file,
            imei: m.imei,
            status_reports: m.status_reports,
        });
    }
    modems
}

/// Rewrites toml's error into one that names the key and, for an unknown key, where it
/// was and what was probably meant.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    let location = err.span().map(|span| Location::of(text, span.start));
    if let Some(unknown) = UnknownKey::parse(message) {
        let mut out = format!("unknown key {:?}", unknown.key);
        if let Some(l) = &location {
            // The table is judged from the headers above, which is only right when the
            // key starts its line (not inside an inline table or a dotted key).
            if l.text.trim_start().starts_with(unknown.key.as_str()) {
                match &l.table {
                    None => out.push_str(" at top level"),
                    Some(table) if table.ends_with(']') => out.push_str(&format!(" in {table}")),
                    Some(table) => out.push_str(&format!(" in [{table}]")),
                }
            }
        }
        if let Some(suggestion) = unknown.suggestion() {
            out.push_str(&format!(" (did you mean {suggestion:?}?)"));
        }
        if let Some(l) = &location {
            out.push_str(&format!(" at line {}", l.line));
        }
        if !unknown.expected.is_empty() {
            out.push_str(&format!("; allowed here: {}", unknown.expected.join(", ")));
        }
        return out;
    }
    let message = message
        .replace("expected i64", "expected an integer")
        .replace("expected path string", "expected a string");
    match &location {
        Some(l) => match l.key() {
            Some(key) => format!("{key}: {message} (line {})", l.line),
            None => format!(
                "line {}, column {}: {message}\n    {}",
                l.line,
                l.column,
                l.text.trim_end()
            ),
        },
        None => message,
    }
}

/// Where a byte offset of the TOML text is: line and column (from 1), the line's text,
/// and the table it lies in as a key prefix, judged from the last `[table]` or `[[array]]`
/// header above it (`None` at top level, `http` for `[http]`, `modem[1]` for the second
/// `[[modem]]`).
struct Location {
    line: usize,
    column: usize,
    text: String,
    table: Option<String>,
}

impl Location {
    fn of(text: &str, offset: usize) -> Location {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before.len() - line_start + 1;
        let line_text = text
            .get(line_start..)
            .and_then(|rest| rest.lines().next())
            .unwrap_or("")
            .to_owned();
        let mut table = None;
        let mut arrays: Vec<(String, usize)> = Vec::new();
        for header in before
            .get(..line_start)
            .unwrap_or("")
            .lines()
            .map(str::trim)
        {
            if let Some(name) = header.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
                let name = name.trim().to_owned();
                let index = match arrays.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, count)) => {
                        *count += 1;
                        *count - 1
                    }
                    None => {
                        arrays.push((name.clone(), 1));
                        0
                    }
                };
                table = Some(format!("{name}[{index}]"));
            } else if let Some(name) = header.strip_prefix('[').and_then(|h| h.split(']').next()) {
                table = Some(name.trim().to_owned());
            }
        }
        Location {
            line,
            column,
            text: line_text,
            table,
        }
    }
}

impl Location {
    /// The full key of a `key = value` line (`modem[0].baud`), when the line is one.
    fn key(&self) -> Option<String> {
        let (key, _) = self.text.split_once('=')?;
        let key = key.trim();
        let bare = !key.is_empty()
            && key
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
        if !bare {
            return None;
        }
        Some(match &self.table {
            None => key.to_owned(),
            Some(table) => format!("{table}.{key}"),
        })
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), taken apart.
struct UnknownKey {
    key: String,
    expected: Vec<String>,
}

impl UnknownKey {
    fn parse(message: &str) -> Option<UnknownKey> {
        let rest = message.strip_prefix("unknown field `")?;
        let (key, rest) = rest.split_once('`')?;
        let expected = rest
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        Some(UnknownKey {
            key: key.to_owned(),
            expected,
        })
    }

    /// The allowed key closest to the unknown one, if it is close enough to be a typo.
    fn suggestion(&self) -> Option<&str> {
        self.expected
            .iter()
            .map(|candidate| (edit_distance(&self.key, candidate), candidate))
            .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, candidate)| candidate.as_str())
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row.get(j + 1).copied().unwrap_or(0);
            let insert = row.get(j).copied().unwrap_or(0) + 1;
            let delete = diagonal + 1;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = substitute.min(insert).min(delete);
            }
        }
    }
    row.last().copied().unwrap_or(0)
}
