//! The configuration: defaults, the documented examples, every refusal naming its key and
//! file, the PIN file, and the shared secret's sources.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smsbridge::config::{Config, ConfigError, SecretError, SecretSource, load_secret_from};
use smsbridge::ownid::{SecretFormatError, sign};
use smsbridge::sms::NationalLanguage;

const DESIGN_EXAMPLE: &str = r#"
state_dir = "/var/lib/smsbridge"        # outbox database lives here

[http]
listen = "127.0.0.1:8080"                # public listener (put the reverse proxy in front)
path = "/ownid/sms"
admin_listen = "127.0.0.1:9090"          # status, metrics; never expose publicly

[ownid]
shared_secret_file = "/etc/smsbridge/shared-secret"   # also: $CREDENTIALS_DIRECTORY/shared-secret, or SMSBRIDGE_SHARED_SECRET
max_clock_skew_secs = 60

[[modem]]                                # one table per modem; several are allowed
name = "modem0"
port = "/dev/gsm-modem0"
baud = 115200
# pin_file = "/etc/smsbridge/sim-pin"

[queue]
ttl_secs = 600                            # an OTP not sent by then is dropped, never sent late
"#;

const PACKAGED: &str = include_str!("../examples/smsbridge.toml");

#[test]
fn an_empty_file_gives_the_safe_defaults() {
    let config = Config::from_toml_str("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.state_dir, Path::new("/var/lib/smsbridge"));
    assert_eq!(
        config.http.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.http.path, "/ownid/sms");
    assert_eq!(
        config.http.admin_listen,
        "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.ownid.shared_secret_file,
        Path::new("/etc/smsbridge/shared-secret")
    );
    assert_eq!(config.ownid.max_clock_skew, Duration::from_secs(60));
    assert!(config.modems.is_empty());
    assert_eq!(config.queue.ttl, Duration::from_secs(600));
    assert_eq!(config.queue.max_depth, 10_000);
    assert_eq!(config.queue.retention, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(config.queue.max_attempts, 5);
    assert_eq!(config.queue.retry_backoff_initial, Duration::from_secs(1));
    assert_eq!(config.queue.retry_backoff_max, Duration::from_secs(30));
    assert_eq!(config.limits.per_number_count, 5);
    assert_eq!(config.limits.per_number_window, Duration::from_secs(600));
    assert_eq!(config.limits.max_parts, 6);
    assert!(config.limits.allowed_country_codes.is_empty());
    assert!(!config.limits.allow_premium_rate);
    assert!(!config.limits.allow_non_mobile);
    assert_eq!(config.limits.no_modem_grace, Duration::from_secs(60));
    assert_eq!(config.sms.smsc, None);
    assert!(config.sms.national_languages.is_empty());
    assert!(!config.sms.concat_16bit);
    assert_eq!(config.simulator.modems, 1);
    assert_eq!(config.simulator.profile, smsbridge::sim::Profile::Generic);
    assert_eq!(config.simulator.send_latency, Duration::from_millis(1500));
    assert_eq!(
        config.outbox_path(),
        Path::new("/var/lib/smsbridge/outbox.sqlite3")
    );
    let opts = config.outbox_options();
    assert_eq!(opts.max_depth, 10_000);
    assert_eq!(opts.retry.max_attempts, 5);
}

#[test]
fn the_design_example_parses() {
    let config = Config::from_toml_str(DESIGN_EXAMPLE).unwrap();
    assert_eq!(config.modems.len(), 1);
    let modem = &config.modems[0];
    assert_eq!(
        (modem.name.as_str(), modem.port.as_path(), modem.baud),
        ("modem0", Path::new("/dev/gsm-modem0"), 115_200)
    );
    assert_eq!(
        (
            modem.pin_file.as_ref(),
            modem.imei.as_ref(),
            modem.status_reports
        ),
        (None, None, true)
    );
    assert_eq!(
        Config {
            modems: Vec::new(),
            ..config
        },
        Config::default()
    );
}

#[test]
fn the_packaged_configuration_is_the_default() {
    assert_eq!(Config::from_toml_str(PACKAGED).unwrap(), Config::default());
}

/// The commented-out `[[modem]]` of the packaged file, uncommented, is valid and says what
/// its comments say.
#[test]
fn the_packaged_modem_example_is_valid() {
    let block: String = PACKAGED
        .lines()
        .skip_while(|line| *line != "# [[modem]]")
        .take_while(|line| !line.is_empty())
        .map(|line| format!("{}\n", line.strip_prefix("# ").unwrap_or(line)))
        .collect();
    let config = Config::from_toml_str(&block).unwrap();
    let modem = &config.modems[0];
    assert_eq!(modem.name, "modem0");
    assert_eq!(modem.imei.as_deref(), Some("490154203237518"));
    assert_eq!(
        modem.pin_file.as_deref(),
        Some(Path::new("/etc/smsbridge/sim-pin"))
    );
}

#[test]
fn every_key_can_be_set() {
    let config = Config::from_toml_str(
        r#"
        state_dir = "/srv/smsbridge"
        [http]
        listen = "[::]:8443"
        path = "/hooks/ownid-sms_v2"
        admin_listen = "127.0.0.1:9191"
        [ownid]
        shared_secret_file = "/run/secret"
        max_clock_skew_secs = 30
        [[modem]]
        port = "/dev/ttyUSB0"
        [[modem]]
        name = "huawei.e3372-2"
        port = "/dev/serial/by-id/usb-HUAWEI-if02"
        baud = 9600
        pin_file = "/etc/smsbridge/pin2"
        imei = "490154203237518"
        status_reports = false
        [queue]
        ttl_secs = 300
        max_depth = 50
        retention_secs = 86400
        max_attempts = 3
        retry_backoff_initial_ms = 500
        retry_backoff_max_ms = 500
        [limits]
        per_number_count = 2
        per_number_window_secs = 60
        max_parts = 3
        allowed_country_codes = [1, 44, 49, 44]
        allow_premium_rate = true
        allow_non_mobile = true
        no_modem_grace_secs = 0
        [sms]
        smsc = "+447785016005"
        national_languages = ["turkish", "portuguese"]
        concat_16bit = true
        [simulator]
        modems = 4
        profile = "ec25"
        send_latency_ms = 0
        "#,
    )
    .unwrap();
    assert_eq!(config.http.listen.port(), 8443);
    assert_eq!(config.modems[0].name, "modem0");
    assert_eq!(config.modems[1].name, "huawei.e3372-2");
    assert!(!config.modems[1].status_reports);
    assert_eq!(config.queue.retry_policy().next_attempt_at(2, 0), Some(500));
    assert_eq!(
        config.limits.allowed_country_codes,
        [1, 44, 49],
        "duplicates dropped"
    );
    assert_eq!(
        config.sms.smsc.as_ref().map(|n| n.as_str()),
        Some("+447785016005")
    );
    assert_eq!(
        config.sms.national_languages,
        [NationalLanguage::Turkish, NationalLanguage::Portuguese]
    );
    assert_eq!(config.simulator.send_latency, Duration::ZERO);
    assert_eq!(config.simulator.profile, smsbridge::sim::Profile::Ec25);
}

/// One refused configuration: the message must name `key` and say `what`.
fn check_refused(toml: &str, key: &str, what: &str) {
    let err = Config::from_toml_str(toml).expect_err(toml).to_string();
    assert!(err.starts_with("configuration: "), "{err}");
    assert!(err.contains(key), "{toml:?}: {err:?} does not name {key}");
    assert!(
        err.contains(what),
        "{toml:?}: {err:?} does not say {what:?}"
    );
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    check_refused("state_dir = \"\"", "state_dir", "must not be empty");
    check_refused("state_dir = 5", "state_dir", "expected a string");
    check_refused(
        "[http]\nlisten = \"127.0.0.1:80x80\"",
        "http.listen",
        "\"127.0.0.1:80x80\" is not a socket address",
    );
    check_refused(
        "[http]\nlisten = \"localhost:8080\"",
        "http.listen",
        "is not a socket address",
    );
    check_refused(
        "[http]\nadmin_listen = \"127.0.0.1:8080\"",
        "http.admin_listen",
        "must differ from http.listen",
    );
    check_refused(
        "[http]\npath = \"ownid/sms\"",
        "http.path",
        "must start with \"/\"",
    );
    check_refused(
        "[http]\npath = \"/ownid/{x}\"",
        "http.path",
        "may only contain",
    );
    check_refused(
        "[ownid]\nmax_clock_skew_secs = 0",
        "ownid.max_clock_skew_secs",
        "between 1 and 600",
    );
    check_refused(
        "[ownid]\nmax_clock_skew_secs = 601",
        "ownid.max_clock_skew_secs",
        "between 1 and 600",
    );
    check_refused(
        "[ownid]\nshared_secret_file = \"\"",
        "ownid.shared_secret_file",
        "must not be empty",
    );
    check_refused("[[modem]]\nname = \"a\"", "modem[0].port", "is required");
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\nbaud = 100000",
        "modem[0].baud",
        "must be one of 1200, 2400",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\n[[modem]]\nport = \"/dev/b\"\nbaud = -1",
        "modem[1].baud",
        "must be one of",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\nbaud = \"fast\"",
        "modem[0].baud",
        "expected an integer",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\nimei = \"49015420323751\"",
        "modem[0].imei",
        "15 digits",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\nname = \"modem 1\"",
        "modem[0].name",
        "letters, digits",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\n[[modem]]\nname = \"modem0\"\nport = \"/dev/b\"",
        "modem[1].name",
        "already the name of modem[0]",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\n[[modem]]\nport = \"/dev/a\"",
        "modem[1].port",
        "already the port of modem[0]",
    );
    check_refused(
        "[queue]\nttl_secs = 29",
        "queue.ttl_secs",
        "between 30 and 86400",
    );
    check_refused(
        "[queue]\nttl_secs = 86401",
        "queue.ttl_secs",
        "between 30 and 86400",
    );
    check_refused("[queue]\nmax_depth = 0", "queue.max_depth", "between 1 and");
    check_refused(
        "[queue]\nretention_secs = 60",
        "queue.retention_secs",
        "between 3600 and",
    );
    check_refused(
        "[queue]\nmax_attempts = 0",
        "queue.max_attempts",
        "between 1 and 100",
    );
    check_refused(
        "[queue]\nretry_backoff_initial_ms = 10",
        "queue.retry_backoff_initial_ms",
        "between 100 and",
    );
    check_refused(
        "[queue]\nretry_backoff_max_ms = 999",
        "queue.retry_backoff_max_ms",
        "must not be less than queue.retry_backoff_initial_ms",
    );
    check_refused(
        "[limits]\nper_number_count = 0",
        "limits.per_number_count",
        "between 1 and",
    );
    check_refused(
        "[limits]\nper_number_window_secs = 0",
        "limits.per_number_window_secs",
        "between 1 and",
    );
    check_refused(
        "[limits]\nmax_parts = 0",
        "limits.max_parts",
        "between 1 and 255",
    );
    check_refused(
        "[limits]\nmax_parts = 256",
        "limits.max_parts",
        "between 1 and 255",
    );
    check_refused(
        "[limits]\nallowed_country_codes = [1, 0]",
        "limits.allowed_country_codes[1]",
        "between 1 and 999",
    );
    check_refused(
        "[limits]\nallowed_country_codes = [\"+44\"]",
        "limits.allowed_country_codes",
        "expected an integer",
    );
    check_refused(
        "[limits]\nallow_premium_rate = \"no\"",
        "limits.allow_premium_rate",
        "expected a boolean",
    );
    check_refused(
        "[limits]\nno_modem_grace_secs = -1",
        "limits.no_modem_grace_secs",
        "between 0 and 3600",
    );
    check_refused(
        "[sms]\nsmsc = \"447785016005\"",
        "sms.smsc",
        "not an E.164 number",
    );
    check_refused(
        "[sms]\nsmsc = \"+44 7785 016005\"",
        "sms.smsc",
        "not an E.164 number",
    );
    check_refused(
        "[sms]\nnational_languages = [\"klingon\"]",
        "sms.national_languages[0]",
        "\"klingon\" is not one of turkish",
    );
    check_refused(
        "[sms]\nnational_languages = [\"spanish\", \"spanish\"]",
        "sms.national_languages[1]",
        "listed twice",
    );
    check_refused(
        "[simulator]\nmodems = 0",
        "simulator.modems",
        "between 1 and 16",
    );
    // Validated once, here: a language or profile the code lacks is a configuration error
    // naming its key, not a failure later at start.
    check_refused(
        "[sms]\nnational_languages = [\"hindi\"]",
        "sms.national_languages[0]",
        "shift tables",
    );
    check_refused(
        "[simulator]\nprofile = \"quectel\"",
        "simulator.profile",
        "unknown profile \"quectel\"; one of generic, sim800, ec25",
    );
    check_refused(
        "[simulator]\nprofile = \" \"",
        "simulator.profile",
        "must not be empty",
    );
    check_refused(
        "[simulator]\nsend_latency_ms = -5",
        "simulator.send_latency_ms",
        "between 0 and",
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let err = Config::from_toml_str("[queue]\nttl_secs = 1\nmax_depth = 0\n[http]\nlisten = \"x\"")
        .unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["http.listen", "queue.ttl_secs", "queue.max_depth"]);
    assert!(
        err.to_string()
            .starts_with("configuration: 3 problems:\n  http.listen: "),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    check_refused(
        "modems = 1",
        "unknown key \"modems\" at top level",
        "(did you mean \"modem\"?)",
    );
    check_refused(
        "[http]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"",
        "unknown key \"listn\" in [http]",
        "did you mean \"listen\"?",
    );
    check_refused(
        "[[modem]]\nport = \"/dev/a\"\n[[modem]]\nport = \"/dev/b\"\nbuad = 9600",
        "unknown key \"buad\" in modem[1]",
        "did you mean \"baud\"?",
    );
    check_refused(
        "[queue]\nttl = 5",
        "unknown key \"ttl\" in [queue]",
        "allowed here: ttl_secs, max_depth",
    );
    check_refused(
        "[sms]\nvalidity_secs = 5",
        "unknown key \"validity_secs\" in [sms]",
        "allowed here:",
    );
    check_refused(
        "[logging]\nlevel = \"debug\"",
        "unknown key \"logging\"",
        "allowed here: state_dir, http",
    );
    // Inside an inline table the table is not guessed, but the key and line are named.
    check_refused(
        "http = { listn = \"x\" }",
        "unknown key \"listn\"",
        "at line 1",
    );
    // Far from any allowed key: no suggestion.
    let err = Config::from_toml_str("[http]\ncolour = \"blue\"")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smsbridge.toml");
    std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:80x80\"\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: http.listen: \"127.0.0.1:80x80\" is not a socket address (write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")",
            path.display()
        )
    );
    std::fs::write(&path, "modems = 1\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: unknown key \"modems\" at top level (did you mean \"modem\"?)",
            path.display()
        )),
        "{err}"
    );
    std::fs::write(&path, "[queue\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: line 1, column 7", path.display())),
        "{err}"
    );

    std::fs::write(&path, DESIGN_EXAMPLE).unwrap();
    assert_eq!(Config::load(&path).unwrap().modems.len(), 1);
}

#[test]
fn an_unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let err = Config::load(&missing).unwrap_err();
    assert!(matches!(&err, ConfigError::Read { path, .. } if *path == missing));
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read configuration file {}: ",
            missing.display()
        )),
        "{err}"
    );
    // A directory cannot be read as a file (a test that also holds when run as root).
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    let not_utf8 = dir.path().join("latin1.toml");
    std::fs::write(&not_utf8, b"path = \"/caf\xe9\"\n").unwrap();
    let err = Config::load(&not_utf8).unwrap_err().to_string();
    assert!(err.contains("latin1.toml"), "{err}");
}

#[test]
fn a_modem_entry_becomes_a_driver_config_with_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("sim-pin");
    std::fs::write(&pin, "  1234\n").unwrap();
    let toml = format!(
        "[[modem]]\nport = \"/dev/ttyUSB0\"\npin_file = {:?}\n[[modem]]\nport = \"/dev/ttyUSB1\"\nbaud = 9600\nstatus_reports = false\n",
        pin.display().to_string()
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let modems = config.modem_configs().unwrap();
    assert_eq!(modems[0].name, "modem0");
    assert_eq!(modems[0].pin.as_deref(), Some("1234"));
    assert_eq!(modems[0].port, Path::new("/dev/ttyUSB0"));
    assert!(modems[0].status_reports);
    assert_eq!(
        (
            modems[1].name.as_str(),
            modems[1].baud,
            modems[1].pin.as_deref()
        ),
        ("modem1", 9600, None)
    );
    assert!(!modems[1].status_reports);
}

#[test]
fn a_bad_pin_file_is_named_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let check = |content: Option<&str>, what: &str| {
        let pin = dir.path().join("pin");
        let _ = std::fs::remove_file(&pin);
        if let Some(content) = content {
            std::fs::write(&pin, content).unwrap();
        }
        let toml = format!(
            "[[modem]]\nname = \"left\"\nport = \"/dev/a\"\npin_file = {:?}\n",
            pin.display().to_string()
        );
        let err = Config::from_toml_str(&toml)
            .unwrap()
            .modem_configs()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("modem \"left\": pin_file {}: ", pin.display())),
            "{err}"
        );
        assert!(err.contains(what), "{err}");
        if let Some(content) = content.filter(|c| !c.trim().is_empty()) {
            assert!(!err.contains(content.trim()), "{err}");
        }
    };
    check(None, "cannot read it");
    check(Some("\n"), "the file is empty");
    check(Some("12"), "4 to 8 digits");
    check(Some("12a4"), "4 to 8 digits");
    check(Some("123456789"), "4 to 8 digits");
}

// The shared secret's sources.

const SECRET_B64: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";
const OTHER_B64: &str = "b3RoZXI=";

/// Which secret was loaded, told by a signature made with it.
fn fingerprint(b64: &str) -> String {
    sign(
        &smsbridge::ownid::SharedSecret::from_base64(b64).unwrap(),
        b"probe",
        "1",
    )
}

struct Sources {
    dir: tempfile::TempDir,
}

impl Sources {
    fn new() -> Sources {
        let sources = Sources {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(sources.credentials()).unwrap();
        sources
    }
    fn credentials(&self) -> PathBuf {
        self.dir.path().join("credentials")
    }
    fn credential_file(&self) -> PathBuf {
        self.credentials().join("shared-secret")
    }
    fn file(&self) -> PathBuf {
        self.dir.path().join("shared-secret")
    }
    fn load(&self, env: Option<&str>) -> Result<(String, SecretSource), SecretError> {
        let credentials = self.credentials();
        let file = self.file();
        load_secret_from(Some(&credentials), Some(&file), env.map(OsStr::new))
            .map(|loaded| (sign(&loaded.secret, b"probe", "1"), loaded.source))
    }
}

#[test]
fn the_secret_comes_from_the_first_source_that_exists() {
    let s = Sources::new();
    // Only the environment.
    assert_eq!(
        s.load(Some(SECRET_B64)).unwrap(),
        (fingerprint(SECRET_B64), SecretSource::Environment)
    );
    // The file wins over the environment; its trailing newline is fine.
    std::fs::write(s.file(), format!("{OTHER_B64}\n")).unwrap();
    assert_eq!(
        s.load(Some(SECRET_B64)).unwrap(),
        (fingerprint(OTHER_B64), SecretSource::File(s.file()))
    );
    // The systemd credential wins over both.
    std::fs::write(s.credential_file(), SECRET_B64).unwrap();
    assert_eq!(
        s.load(Some(OTHER_B64)).unwrap(),
        (
            fingerprint(SECRET_B64),
            SecretSource::Credential(s.credential_file())
        )
    );
    // Without $CREDENTIALS_DIRECTORY the credential is not looked for.
    let loaded = load_secret_from(None, Some(&s.file()), None).unwrap();
    assert_eq!(loaded.source, SecretSource::File(s.file()));
    assert_eq!(format!("{:?}", loaded.secret), "SharedSecret(<redacted>)");
}

#[test]
fn secret_errors_name_the_source() {
    let s = Sources::new();
    let err = s.load(None).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SecretError::NotFound { .. }));
    assert!(
        message.contains(&s.credential_file().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&s.file().display().to_string()),
        "{message}"
    );
    assert!(message.contains("SMSBRIDGE_SHARED_SECRET"), "{message}");

    assert_eq!(
        s.load(Some("not base64!")).unwrap_err(),
        SecretError::Format {
            origin: SecretSource::Environment,
            error: SecretFormatError::NotBase64
        }
    );
    std::fs::write(s.file(), "\n").unwrap();
    let err = s.load(Some(SECRET_B64)).unwrap_err();
    assert_eq!(
        err,
        SecretError::Format {
            origin: SecretSource::File(s.file()),
            error: SecretFormatError::Empty
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the shared secret in file {} is unusable: the shared secret is empty",
            s.file().display()
        )
    );
    std::fs::write(s.file(), "s3cr3t#value").unwrap();
    let message = s.load(None).unwrap_err().to_string();
    assert!(
        message.contains("not valid base64") && !message.contains("s3cr3t"),
        "{message}"
    );
    // A secret path that exists but cannot be read stops the search (no silent fallback).
    std::fs::create_dir(s.credential_file()).unwrap();
    let err = s.load(Some(SECRET_B64)).unwrap_err();
    assert!(
        matches!(&err, SecretError::Unreadable { origin: SecretSource::Credential(p), .. } if *p == s.credential_file()),
        "{err}"
    );
}

#[test]
fn the_packaged_configuration_has_one_modem_on_the_udev_name() {
    let config = Config::from_toml_str(include_str!("../packaging/smsbridge.toml")).unwrap();
    assert_eq!(config.modems.len(), 1);
    assert_eq!(
        config.modems[0].port,
        std::path::PathBuf::from("/dev/gsm-modem0")
    );
    // Everything else is the documented default.
    let defaults = Config {
        modems: config.modems.clone(),
        ..Config::default()
    };
    assert_eq!(config, defaults);
}

#[test]
fn an_endpoint_table_problem_is_named_by_its_key() {
    let err = smsbridge::config::Config::from_toml_str(
        "[[endpoint]]\nkind = \"supabase\"\npath = \"/s\"\nsecret_file = \"/x\"\ntemplate = \"Code\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("endpoint[0].template"), "{err}");
}

#[test]
fn fleet_mode_keys_are_checked_and_named() {
    use smsbridge::config::StoreBackend;
    let config = Config::from_toml_str("").unwrap();
    assert_eq!(config.store.backend, StoreBackend::Sqlite);
    assert_eq!(config.store.lease, Duration::from_secs(30));
    assert_eq!(config.node.name, None);
    assert!(!config.node_name().is_empty(), "the hostname by default");

    let fleet = Config::from_toml_str(
        "[store]\nbackend = \"postgres\"\nurl_file = \"/etc/smsbridge/postgres-url\"\nlease_secs = 3\n[node]\nname = \"pi-a\"\n",
    )
    .unwrap();
    assert_eq!(fleet.store.backend, StoreBackend::Postgres);
    assert_eq!(fleet.store.lease, Duration::from_secs(3));
    assert_eq!(fleet.node_name(), "pi-a");

    for (text, key) in [
        ("[store]\nbackend = \"mysql\"\n", "store.backend"),
        (
            "[store]\nbackend = \"postgres\"\nlease_secs = 1\n",
            "store.lease_secs",
        ),
        ("[store]\nlease_secs = 601\n", "store.lease_secs"),
        ("[store]\nurl_file = \"/x\"\n", "store.url_file"),
        ("[node]\nname = \"pi a\"\n", "node.name"),
        ("[node]\nname = \"\"\n", "node.name"),
    ] {
        let error = Config::from_toml_str(text).unwrap_err().to_string();
        assert!(error.contains(key), "{text:?}: {error}");
    }
    let typo = Config::from_toml_str("[store]\nlease = 3\n")
        .unwrap_err()
        .to_string();
    assert!(typo.contains("lease_secs"), "{typo}");
}
