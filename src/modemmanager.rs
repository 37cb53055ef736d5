//! Notices ModemManager when it is running and may claim a configured modem port, and
//! says so in one line that names the fix.
//!
//! ModemManager probes every tty that looks like a modem with AT commands and then holds
//! it open with `TIOCEXCL` (src/mm-port-serial.c), so smsbridge's own open fails with
//! `EBUSY`, or, worse, both talk to the modem at once and read or delete each other's SMS.
//! smsbridge's udev rules set `ID_MM_DEVICE_IGNORE=1` on the modems they know, which makes
//! ModemManager leave the whole device alone.
//!
//! This module owns the detection and the wording. The evidence is read from files, with
//! no D-Bus client: the pure functions take file contents and paths as parameters, and
//! only [`check`] and [`modemmanager_running`] touch the file system. It never opens the
//! ports themselves (opening a tty toggles DTR, which resets some boards); the modem driver
//! reports an `EBUSY` it meets through [`explain_open_error`].
//!
//! Whether ModemManager runs is read from `/run/systemd/units/invocation:ModemManager.service`,
//! the symlink systemd keeps for every running unit (for journald, src/core/unit.c
//! `unit_export_invocation_id`; systemd calls it no API, so it is a hint, not proof). A
//! scan of `/proc/*/comm` is the fallback for machines without systemd, but it cannot be
//! the main source: under the hardened unit `ProtectProc=invisible` hides the processes of
//! other users, and ModemManager runs as root, so the scan would always say "not running".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The symlink systemd keeps while ModemManager.service is running.
pub const UNIT_INVOCATION: &str = "/run/systemd/units/invocation:ModemManager.service";

/// Where udev keeps its database of device properties, one file per device.
pub const UDEV_DATA_DIR: &str = "/run/udev/data";

/// The process name ModemManager runs under (as `/proc/<pid>/comm` shows it).
pub const PROCESS_NAME: &str = "ModemManager";

/// The fix, as the warnings state it.
pub const FIX: &str = "install smsbridge's udev rules (they set ID_MM_DEVICE_IGNORE=1), or \
                       `systemctl disable --now ModemManager`";

/// What the udev database says about one configured port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvidence {
    /// The port's udev entry carries `ID_MM_DEVICE_IGNORE=1`: ModemManager keeps away.
    Ignored,
    /// The port has a udev entry without `ID_MM_DEVICE_IGNORE=1`.
    NotIgnored,
    /// No udev entry could be read (no udev, or the port is not a device node udev knows).
    Unknown,
    /// The port does not exist (yet); the modem driver reports that itself.
    Missing,
}

/// One configured port and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The path as configured, e.g. `/dev/gsm-modem0`.
    pub configured: PathBuf,
    /// The device node it resolves to, e.g. `/dev/ttyUSB2`, when it is a symlink.
    pub resolved: Option<PathBuf>,
    pub evidence: PortEvidence,
}

/// Whether ModemManager is running, from the two pieces of evidence: the systemd unit's
/// invocation symlink exists, or a process of that name is visible in `/proc`.
pub fn is_running<'a>(
    unit_invocation_exists: bool,
    process_names: impl IntoIterator<Item = &'a str>,
) -> bool {
    unit_invocation_exists
        || process_names
            .into_iter()
            .any(|name| name.trim_end() == PROCESS_NAME)
}

/// The properties (`E:KEY=VALUE` lines) of a udev database entry, e.g. the contents of
/// `/run/udev/data/c188:2`. Other lines (`S:` symlinks, `G:` tags, ...) are left out;
/// malformed lines are skipped, since the file belongs to udev and may gain new line types.
pub fn udev_properties(db: &str) -> BTreeMap<&str, &str> {
    db.lines()
        .filter_map(|line| line.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// What a udev database entry says about ModemManager.
pub fn evidence_from_udev_db(db: &str) -> PortEvidence {
    match udev_properties(db).get("ID_MM_DEVICE_IGNORE") {
        // udev and ModemManager read "1" as true; ModemManager's boolean parser also
        // accepts other spellings, but udev rules (ours included) write "1".
        Some(&"1") => PortEvidence::Ignored,
        _ => PortEvidence::NotIgnored,
    }
}

/// The udev database file of a character device: `<dir>/c<major>:<minor>`.
pub fn udev_db_path(dir: &Path, major: u64, minor: u64) -> PathBuf {
    dir.join(format!("c{major}:{minor}"))
}

/// The warning lines for the configured ports: none when ModemManager is not running, and
/// one per port it may claim.
pub fn warnings(modemmanager_running: bool, ports: &[Port]) -> Vec<String> {
    if !modemmanager_running {
        return Vec::new();
    }
    ports
        .iter()
        .filter_map(|port| {
            let name = display(port);
            match port.evidence {
                PortEvidence::Ignored | PortEvidence::Missing => None,
                PortEvidence::NotIgnored => Some(format!(
                    "ModemManager is running and may grab {name}: {FIX}"
                )),
                PortEvidence::Unknown => Some(format!(
                    "ModemManager is running and smsbridge cannot tell whether it keeps away \
                     from {name} (no udev entry for the port): {FIX}"
                )),
            }
        })
        .collect()
}

/// Explains a failed open of a modem port: `EBUSY` means another process holds it
/// exclusively, most likely ModemManager. Returns `None` for other errors.
pub fn explain_open_error(
    port: &Path,
    error: &std::io::Error,
    modemmanager_running: bool,
) -> Option<String> {
    if error.raw_os_error() != Some(nix::errno::Errno::EBUSY as i32) {
        return None;
    }
    let port = port.display();
    Some(if modemmanager_running {
        format!("{port} is busy: ModemManager is running and holds it; {FIX}")
    } else {
        format!(
            "{port} is busy: another program holds it open exclusively \
             (find it with `fuser -v {port}`)"
        )
    })
}

/// Reads the evidence on this machine and returns one warning line per problem (see
/// [`warnings`]). Called once at start with the configured modem ports.
pub fn check(ports: &[PathBuf]) -> Vec<String> {
    let running = modemmanager_running();
    if !running {
        return Vec::new();
    }
    let found: Vec<Port> = ports
        .iter()
        .map(|p| inspect(p, Path::new(UDEV_DATA_DIR)))
        .collect();
    warnings(running, &found)
}

/// Whether ModemManager is running on this machine (see the module documentation for why
/// the systemd file comes first).
pub fn modemmanager_running() -> bool {
    let unit = Path::new(UNIT_INVOCATION).symlink_metadata().is_ok();
    if unit {
        return true;
    }
    let names = process_names(Path::new("/proc"));
    is_running(false, names.iter().map(String::as_str))
}

/// What the udev database under `udev_data` says about `port`.
pub fn inspect(port: &Path, udev_data: &Path) -> Port {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let resolved = std::fs::canonicalize(port)
        .ok()
        .filter(|r| r.as_path() != port);
    let evidence = match std::fs::metadata(port) {
        Err(_) => PortEvidence::Missing,
        Ok(meta) if !meta.file_type().is_char_device() => PortEvidence::Unknown,
        Ok(meta) => {
            let rdev = meta.rdev();
            let db = udev_db_path(
                udev_data,
                nix::sys::stat::major(rdev),
                nix::sys::stat::minor(rdev),
            );
            match std::fs::read_to_string(db) {
                Ok(text) => evidence_from_udev_db(&text),
                Err(_) => PortEvidence::Unknown,
            }
        }
    };
    Port {
        configured: port.to_path_buf(),
        resolved,
        evidence,
    }
}

/// The `comm` of every process visible under `proc`.
fn process_names(proc: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .collect()
}

fn display(port: &Port) -> String {
    match &port.resolved {
        Some(r) => format!("{} ({})", port.configured.display(), r.display()),
        None => port.configured.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One udev database entry in, the properties and the evidence out.
    fn check(db: &str, props: &[(&str, &str)], evidence: PortEvidence) {
        let got = udev_properties(db);
        let want: BTreeMap<&str, &str> = props.iter().copied().collect();
        assert_eq!(got, want, "properties of {db:?}");
        assert_eq!(evidence_from_udev_db(db), evidence, "evidence of {db:?}");
    }

    #[test]
    fn reads_udev_database_entries() {
        // The shape udev writes (udevadm info --query=all shows the same keys).
        check(
            "S:gsm-modem0\nS:gsm-quectel-ec25\nI:1234567\nE:ID_BUS=usb\nE:ID_MM_DEVICE_IGNORE=1\n\
             E:SMSBRIDGE_MODEM=quectel-ec25\nG:systemd\n",
            &[
                ("ID_BUS", "usb"),
                ("ID_MM_DEVICE_IGNORE", "1"),
                ("SMSBRIDGE_MODEM", "quectel-ec25"),
            ],
            PortEvidence::Ignored,
        );
        check(
            "E:ID_BUS=usb\nE:ID_MM_CANDIDATE=1\n",
            &[("ID_BUS", "usb"), ("ID_MM_CANDIDATE", "1")],
            PortEvidence::NotIgnored,
        );
        check(
            "E:ID_MM_DEVICE_IGNORE=0\n",
            &[("ID_MM_DEVICE_IGNORE", "0")],
            PortEvidence::NotIgnored,
        );
        // Values may contain '='; malformed and foreign lines are skipped, not errors.
        check(
            "E:ID_PATH=pci-0000:00:14.0-usb-0:1:1.2\nE:=x\nE:NOEQUALS\ngarbage\n\n",
            &[("ID_PATH", "pci-0000:00:14.0-usb-0:1:1.2")],
            PortEvidence::NotIgnored,
        );
        check("", &[], PortEvidence::NotIgnored);
        // str::lines also ends a line at "\r\n".
        check(
            "E:ID_MM_DEVICE_IGNORE=1\r\n",
            &[("ID_MM_DEVICE_IGNORE", "1")],
            PortEvidence::Ignored,
        );
    }

    #[test]
    fn running_from_either_piece_of_evidence() {
        assert!(is_running(true, []));
        assert!(is_running(false, ["systemd\n", "ModemManager\n"]));
        assert!(!is_running(
            false,
            ["systemd\n", "NetworkManager\n", "ModemManagerX\n"]
        ));
        assert!(!is_running(false, []));
    }

    #[test]
    fn udev_db_path_is_c_major_minor() {
        assert_eq!(
            udev_db_path(Path::new("/run/udev/data"), 188, 2),
            PathBuf::from("/run/udev/data/c188:2")
        );
    }

    fn port(name: &str, resolved: Option<&str>, evidence: PortEvidence) -> Port {
        Port {
            configured: name.into(),
            resolved: resolved.map(PathBuf::from),
            evidence,
        }
    }

    #[test]
    fn one_warning_per_port_at_risk_and_none_without_modemmanager() {
        let ports = [
            port(
                "/dev/gsm-modem0",
                Some("/dev/ttyUSB2"),
                PortEvidence::Ignored,
            ),
            port("/dev/ttyUSB3", None, PortEvidence::NotIgnored),
            port("/dev/ttyAMA0", None, PortEvidence::Unknown),
            port("/dev/gsm-modem9", None, PortEvidence::Missing),
        ];
        assert!(warnings(false, &ports).is_empty());
        let got = warnings(true, &ports);
        assert_eq!(
            got,
            [
                format!("ModemManager is running and may grab /dev/ttyUSB3: {FIX}"),
                format!(
                    "ModemManager is running and smsbridge cannot tell whether it keeps away \
                     from /dev/ttyAMA0 (no udev entry for the port): {FIX}"
                ),
            ]
        );
        assert!(got.iter().all(|w| !w.contains('\n')), "one line each");
        let named = warnings(
            true,
            &[port(
                "/dev/gsm-modem0",
                Some("/dev/ttyUSB2"),
                PortEvidence::NotIgnored,
            )],
        );
        assert_eq!(
            named,
            [format!(
                "ModemManager is running and may grab /dev/gsm-modem0 (/dev/ttyUSB2): {FIX}"
            )]
        );
    }

    #[test]
    fn explains_ebusy_only() {
        let busy = std::io::Error::from_raw_os_error(nix::errno::Errno::EBUSY as i32);
        let denied = std::io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32);
        let port = Path::new("/dev/gsm-modem0");
        assert_eq!(
            explain_open_error(port, &busy, true).as_deref(),
            Some(
                format!("/dev/gsm-modem0 is busy: ModemManager is running and holds it; {FIX}")
                    .as_str()
            )
        );
        assert!(
            explain_open_error(port, &busy, false)
                .is_some_and(|m| m.contains("fuser -v /dev/gsm-modem0"))
        );
        assert_eq!(explain_open_error(port, &denied, true), None);
    }

    #[test]
    fn inspects_ports_through_the_udev_database() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        // /dev/null is a character device (1:3) on every Linux machine.
        let null = Path::new("/dev/null");
        assert_eq!(inspect(null, &data).evidence, PortEvidence::Unknown);
        std::fs::write(data.join("c1:3"), "E:ID_MM_DEVICE_IGNORE=1\n").expect("write db");
        assert_eq!(inspect(null, &data).evidence, PortEvidence::Ignored);
        std::fs::write(data.join("c1:3"), "E:ID_MM_CANDIDATE=1\n").expect("write db");
        assert_eq!(inspect(null, &data).evidence, PortEvidence::NotIgnored);

        // A symlink is followed, and the warning names both paths.
        let link = dir.path().join("gsm-modem0");
        std::os::unix::fs::symlink(null, &link).expect("symlink");
        let found = inspect(&link, &data);
        assert_eq!(found.resolved.as_deref(), Some(null));
        assert_eq!(found.evidence, PortEvidence::NotIgnored);

        assert_eq!(
            inspect(&dir.path().join("absent"), &data).evidence,
            PortEvidence::Missing
        );
        // A regular file is no device: nothing to look up.
        assert_eq!(
            inspect(&data.join("c1:3"), &data).evidence,
            PortEvidence::Unknown
        );
    }
}
