//! Validation: the raw file into the typed [`Config`], every problem collected so all of
//! them are reported at once, each naming its key. The only place a value is checked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::{RawConfig, RawModem};
use super::*;

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

pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<Problem>> {
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
    let smsc = s.smsc.as_deref().and_then(|smsc| {
        let digits = smsc.strip_prefix('+').unwrap_or("");
        if !(2..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            c.problem(
                "sms.smsc",
                format!("{smsc:?} is not an E.164 number (\"+\" and 2 to 15 digits)"),
            );
            return None;
        }
        match PhoneNumber::parse(smsc) {
            Ok(number) => Some(number),
            Err(e) => {
                c.problem("sms.smsc", format!("{smsc:?}: {e}"));
                None
            }
        }
    });
    let mut national_languages: Vec<NationalLanguage> = Vec::new();
    for (i, name) in s.national_languages.iter().enumerate() {
        match name.parse::<NationalLanguage>() {
            Err(_) => {
                let known: Vec<&str> = NationalLanguage::ALL
                    .iter()
                    .map(|lang| lang.name())
                    .collect();
                c.problem(
                    format!("sms.national_languages[{i}]"),
                    format!(
                        "{name:?} is not one of {} (the national languages the codec has shift tables for)",
                        known.join(", ")
                    ),
                );
            }
            Ok(language) if national_languages.contains(&language) => c.problem(
                format!("sms.national_languages[{i}]"),
                format!("{name:?} is listed twice"),
            ),
            Ok(language) => national_languages.push(language),
        }
    }

    let sim = raw.simulator;
    let sim_modems = c.range("simulator.modems", sim.modems, 1, 16) as u32;
    let profile = if sim.profile.trim().is_empty() {
        c.problem("simulator.profile", "must not be empty");
        Profile::Generic
    } else {
        sim.profile.parse::<Profile>().unwrap_or_else(|_| {
            let known: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
            c.problem(
                "simulator.profile",
                format!(
                    "unknown profile {:?}; one of {}",
                    sim.profile,
                    known.join(", ")
                ),
            );
            Profile::Generic
        })
    };
    let send_latency = c.millis("simulator.send_latency_ms", sim.send_latency_ms, 0, 600_000);

    let store = validate_store(&mut c, raw.store);
    let node = raw.node.name.map(|name| {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 63 {
            c.problem("node.name", "must be 1 to 63 characters");
        } else if let Some(bad) = name
            .chars()
            .find(|ch| !(ch.is_ascii_alphanumeric() || "-._".contains(*ch)))
        {
            c.problem(
                "node.name",
                format!("{name:?} may only contain letters, digits and - . _ (found {bad:?})"),
            );
        }
        name
    });

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
            smsc,
            national_languages,
            concat_16bit: s.concat_16bit,
        },
        simulator: SimulatorConfig {
            modems: sim_modems,
            profile,
            send_latency,
        },
        endpoint: raw.endpoint,
        store,
        node: NodeConfig { name: node },
    })
}

fn validate_store(c: &mut Checker, raw: super::format::RawStore) -> StoreConfig {
    let backend = match raw.backend.as_str() {
        "sqlite" => StoreBackend::Sqlite,
        "postgres" => StoreBackend::Postgres,
        other => {
            c.problem(
                "store.backend",
                format!(
                    "{other:?} is not \"sqlite\" (one box, the default) or \"postgres\" (a fleet)"
                ),
            );
            StoreBackend::Sqlite
        }
    };
    let lease = c.secs("store.lease_secs", raw.lease_secs, 2, 600);
    if let Some(path) = &raw.url_file {
        c.path("store.url_file", path);
        if backend == StoreBackend::Sqlite {
            c.problem(
                "store.url_file",
                "is only read with backend = \"postgres\"; set the backend or remove the key",
            );
        }
    }
    StoreConfig {
        backend,
        url_file: raw.url_file,
        lease,
    }
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
