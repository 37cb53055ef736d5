//! The configuration file as written: the serde structs that mirror it, with the
//! documented defaults, and the diagnostics that turn toml's errors into messages naming
//! the key, the line and the likely typo.
//!
//! Integers are read as `i64` so an out-of-range value is reported by validation with its
//! key rather than by serde; `deny_unknown_fields` everywhere so a misspelt key is an
//! error, not a silent default.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    pub(super) state_dir: PathBuf,
    pub(super) http: RawHttp,
    pub(super) ownid: RawOwnid,
    pub(super) modem: Vec<RawModem>,
    pub(super) queue: RawQueue,
    pub(super) limits: RawLimits,
    pub(super) sms: RawSms,
    pub(super) simulator: RawSimulator,
    pub(super) endpoint: Vec<crate::endpoint::EndpointConfig>,
    pub(super) store: RawStore,
    pub(super) node: RawNode,
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
            store: RawStore::default(),
            node: RawNode::default(),
        }
    }
}

/// `[store]`: which outbox (SQLite here, or a fleet's PostgreSQL) and its lease.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStore {
    pub(super) backend: String,
    pub(super) url_file: Option<PathBuf>,
    pub(super) lease_secs: i64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            backend: "sqlite".to_owned(),
            url_file: None,
            lease_secs: 30,
        }
    }
}

/// `[node]`: this box in a fleet.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawNode {
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    pub(super) listen: String,
    pub(super) path: String,
    pub(super) admin_listen: String,
    pub(super) header_timeout_ms: i64,
    pub(super) body_timeout_ms: i64,
    pub(super) max_header_bytes: i64,
    pub(super) max_connections: i64,
    pub(super) drain_timeout_ms: i64,
    pub(super) admin_hosts: Vec<String>,
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
pub(super) struct RawOwnid {
    pub(super) shared_secret_file: PathBuf,
    pub(super) max_clock_skew_secs: i64,
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
pub(super) struct RawModem {
    pub(super) name: Option<String>,
    pub(super) port: Option<PathBuf>,
    pub(super) baud: i64,
    pub(super) pin_file: Option<PathBuf>,
    pub(super) imei: Option<String>,
    pub(super) status_reports: bool,
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
pub(super) struct RawQueue {
    pub(super) ttl_secs: i64,
    pub(super) max_depth: i64,
    pub(super) retention_secs: i64,
    pub(super) max_attempts: i64,
    pub(super) retry_backoff_initial_ms: i64,
    pub(super) retry_backoff_max_ms: i64,
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
pub(super) struct RawLimits {
    pub(super) per_number_count: i64,
    pub(super) per_number_window_secs: i64,
    pub(super) max_parts: i64,
    pub(super) allowed_country_codes: Vec<i64>,
    pub(super) allow_premium_rate: bool,
    pub(super) allow_non_mobile: bool,
    pub(super) no_modem_grace_secs: i64,
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
pub(super) struct RawSms {
    pub(super) smsc: Option<String>,
    pub(super) national_languages: Vec<String>,
    pub(super) concat_16bit: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSimulator {
    pub(super) modems: i64,
    pub(super) profile: String,
    pub(super) send_latency_ms: i64,
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

/// Reads the TOML text into the raw structs; the error names the key and the line.
pub(super) fn read(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: describe_toml_error(text, &err),
    })
}

// ---------------------------------------------------------------------------------------
// Diagnostics: toml's errors, rewritten for an operator.

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
