//! Checks `systemd/smsbridge.service` with systemd's own tools: `systemd-analyze verify`
//! must accept it without a single complaint about the unit, `systemd-analyze security`
//! must rate its exposure at most 2.0, and the directives the package, the udev rules and
//! the code rely on must be there.
//!
//! The tools come from Debian's `systemd` package (`scripts/install-test-deps` installs it);
//! without them the tests fail and say so, rather than passing without checking anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The highest exposure the issue allows (`systemd-analyze security` rates 0.0 to 10.0).
const MAX_EXPOSURE: f64 = 2.0;

#[test]
fn verify_reports_nothing_about_the_unit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // `verify` rejects a unit whose ExecStart binary is missing, and /usr/bin/smsbridge is
    // not installed here: check a copy that starts the binary Cargo just built instead.
    let unit = unit_text().replace(
        "ExecStart=/usr/bin/smsbridge ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_smsbridge")),
    );
    assert!(
        unit.contains(env!("CARGO_BIN_EXE_smsbridge")),
        "the unit's ExecStart no longer starts /usr/bin/smsbridge; update this test"
    );
    let copy = dir.path().join("smsbridge.service");
    std::fs::write(&copy, unit).expect("write the unit copy");

    let out = systemd_analyze(&[
        "verify",
        "--man=no",
        "--recursive-errors=no",
        copy.to_str().expect("utf-8 path"),
    ]);
    let text = combined(&out);
    // systemd-analyze exits 0 even for unknown keys and unparsable values (it logs
    // "Unknown key ..., ignoring"), so every line naming our unit counts as an error.
    // Lines about other units on this machine (a broken unrelated unit file) are not ours.
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.contains("smsbridge.service") || line.contains(&*copy.to_string_lossy())
        })
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify complained about the unit (exit {:?}):\n{text}",
        out.status.code()
    );
}

#[test]
fn verify_catches_a_broken_unit() {
    // The check above is only worth something if a real mistake makes it fail.
    let dir = tempfile::tempdir().expect("temporary directory");
    let unit = unit_text()
        .replace(
            "ExecStart=/usr/bin/smsbridge ",
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_smsbridge")),
        )
        .replace("Type=notify", "Type=notifyy");
    let copy = dir.path().join("smsbridge.service");
    std::fs::write(&copy, unit).expect("write the unit copy");
    let out = systemd_analyze(&[
        "verify",
        "--man=no",
        "--recursive-errors=no",
        copy.to_str().expect("utf-8 path"),
    ]);
    let text = combined(&out);
    assert!(
        text.lines()
            .any(|l| l.contains("smsbridge.service") && l.contains("notifyy")),
        "systemd-analyze verify did not report an invalid Type=:\n{text}"
    );
}

#[test]
fn security_exposure_is_at_most_two() {
    let out = systemd_analyze(&[
        "security",
        "--offline=true",
        "--no-pager",
        unit_path().to_str().expect("utf-8 path"),
    ]);
    let text = combined(&out);
    let score = exposure(&text).unwrap_or_else(|| {
        panic!("no 'Overall exposure level' line in systemd-analyze security output:\n{text}")
    });
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} is above {MAX_EXPOSURE}; the items still open:\n{}",
        text.lines()
            .filter(|l| l.starts_with('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn exposure_line_is_parsed() {
    assert_eq!(
        exposure("→ Overall exposure level for smsbridge.service: 1.3 OK 🙂"),
        Some(1.3)
    );
    assert_eq!(
        exposure("→ Overall exposure level for x.service: 9.6 UNSAFE 😨"),
        Some(9.6)
    );
    assert_eq!(exposure("no score here"), None);
}

/// The directives that other parts of smsbridge depend on: the package creates the user
/// and relies on the condition to stay stopped until the secret exists, the udev rules
/// give the modems group dialout, the config's state_dir is the StateDirectory, and the
/// code reads the secret from $CREDENTIALS_DIRECTORY and talks sd_notify.
#[test]
fn unit_keeps_the_directives_others_rely_on() {
    let unit = unit_text();
    let service = section(&unit, "Service");
    let unit_section = section(&unit, "Unit");
    for (key, value) in [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("User", "smsbridge"),
        ("SupplementaryGroups", "dialout"),
        ("StateDirectory", "smsbridge"),
        (
            "LoadCredential",
            "shared-secret:/etc/smsbridge/shared-secret",
        ),
        ("DevicePolicy", "closed"),
        // Configuration errors exit 78 (src/main.rs); restarting cannot fix them.
        ("RestartPreventExitStatus", "78"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
    ] {
        assert!(
            service.iter().any(|(k, v)| *k == key && *v == value),
            "[Service] lacks {key}={value}"
        );
    }
    assert!(
        service
            .iter()
            .any(|(k, v)| *k == "WatchdogSec" && !v.is_empty()),
        "[Service] lacks WatchdogSec="
    );
    assert!(
        service
            .iter()
            .any(|(k, v)| *k == "ExecStart" && v.starts_with("/usr/bin/smsbridge serve")),
        "ExecStart must run /usr/bin/smsbridge serve (the package installs it there)"
    );
    for class in ["ttyUSB", "ttyACM", "ttyAMA", "ttyS"] {
        let want = format!("char-{class} rw");
        assert!(
            service
                .iter()
                .any(|(k, v)| *k == "DeviceAllow" && *v == want),
            "[Service] lacks DeviceAllow={want}"
        );
    }
    assert!(
        unit_section
            .iter()
            .any(|(k, v)| *k == "ConditionPathExists" && *v == "/etc/smsbridge/shared-secret"),
        "[Unit] must not start the service before the secret exists"
    );
}

#[test]
fn usb_serial_drivers_load_before_the_device_policy_is_resolved() {
    let unit = unit_text();
    let unit_section = section(&unit, "Unit");
    for driver in ["usbserial", "cdc_acm", "option"] {
        let want = format!("modprobe@{driver}.service");
        for key in ["Wants", "After"] {
            assert!(
                unit_section
                    .iter()
                    .any(|(k, v)| *k == key && v.split_whitespace().any(|u| u == want)),
                "[Unit] lacks {key}={want}"
            );
        }
    }
}

#[test]
fn descriptors_allow_both_listeners_full_and_the_modems() {
    let unit = unit_text();
    let service = section(&unit, "Service");
    let limit: u64 = service
        .iter()
        .find(|(k, _)| *k == "LimitNOFILE")
        .map(|(_, v)| v.parse().expect("LimitNOFILE is a number"))
        .expect("[Service] lacks LimitNOFILE=");
    // The default http.max_connections is 256 per listener; leave room for modems,
    // SQLite's files and the journal.
    let defaults = smsbridge::config::Config::default();
    let sockets = 2 * defaults.http.limits.max_connections as u64;
    assert!(
        limit >= sockets + 256,
        "LimitNOFILE={limit} leaves no room beside {sockets} sockets"
    );
}

#[test]
fn the_readme_simulator_drop_in_verifies() {
    // README "Try the installed package without a modem": the unit plus its drop-in.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let drop_in: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.contains("Try the installed package without a modem"))
        .skip_while(|l| !l.contains("sudo systemctl edit smsbridge"))
        .skip(1)
        .take_while(|l| l.starts_with("#   "))
        .map(|l| l.trim_start_matches("#   "))
        .collect();
    assert!(drop_in.contains(&"DeviceAllow=char-pts rw"), "{drop_in:?}");
    let dir = tempfile::tempdir().expect("temporary directory");
    let bin = env!("CARGO_BIN_EXE_smsbridge");
    let unit = unit_text().replace(
        "ExecStart=/usr/bin/smsbridge ",
        &format!("ExecStart={bin} "),
    );
    let copy = dir.path().join("smsbridge.service");
    std::fs::write(&copy, unit).expect("write the unit copy");
    let d = dir.path().join("smsbridge.service.d");
    std::fs::create_dir(&d).expect("drop-in directory");
    let text = drop_in
        .join("\n")
        .replace("/usr/bin/smsbridge ", &format!("{bin} "));
    assert!(text.contains("serve --simulator"));
    std::fs::write(d.join("override.conf"), format!("{text}\n")).expect("write the drop-in");
    let out = systemd_analyze(&[
        "verify",
        "--man=no",
        "--recursive-errors=no",
        copy.to_str().expect("utf-8 path"),
    ]);
    let all = combined(&out);
    let ours: Vec<&str> = all
        .lines()
        .filter(|line| line.contains("smsbridge.service") || line.contains("override.conf"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{all}");
}

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/smsbridge.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).expect("read systemd/smsbridge.service")
}

/// The `key=value` lines of one `[section]`, comments and blank lines left out.
fn section<'a>(unit: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    let header = format!("[{name}]");
    let mut inside = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside && !line.is_empty() && !line.starts_with('#') && !line.starts_with(';') {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim(), v.trim()));
            }
        }
    }
    out
}

/// The number in systemd-analyze's "Overall exposure level for X: 1.3 OK" line.
fn exposure(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

fn systemd_analyze(args: &[&str]) -> Output {
    match Command::new("systemd-analyze")
        .args(args)
        // Plain output: no colours, no pager, and messages at their usual level.
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "cat")
        .env_remove("SYSTEMD_LOG_LEVEL")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed: install systemd (`apt-get install systemd`; \
             scripts/install-test-deps does it) to check the unit file"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
