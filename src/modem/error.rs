//! The modem's errors as data: why a port could not be opened ([`OpenError`]), why a modem
//! could not be brought up ([`InitError`]), the one-shot helpers' union of both with
//! [`SendError`] ([`ModemError`]), and the classification of the AT engine's send errors
//! into permanent, temporary and unknown outcomes.
//!
//! Pure: nothing here touches a port. The messages are written for the operator who reads
//! them on a status page or a terminal; they never hold a PIN, a PDU or a phone number.

use std::io;
use std::path::{Path, PathBuf};

use crate::at::command::Blame;
use crate::at::engine::AtError;
use crate::modem::SendError;

/// Why a serial port could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// ENOENT: nothing at that path (the modem is unplugged, or a udev or by-id link is gone).
    #[error(
        "serial port {} does not exist (is the modem plugged in? `ls -l /dev/serial/by-id/` lists the modems present)",
        .path.display()
    )]
    NotFound { path: PathBuf },
    /// EACCES: the device node is not readable and writable by this user.
    #[error(
        "permission denied opening serial port {}: add this user to the dialout group (`sudo usermod -aG dialout $USER`, then log in again)",
        .path.display()
    )]
    PermissionDenied { path: PathBuf },
    /// EPERM: the node's permissions allow it, but the cgroup device policy does not (under
    /// systemd, a `DeviceAllow=char-ttyUSB` resolved before the driver was loaded).
    #[error(
        "the device policy blocks serial port {} (Operation not permitted): its driver probably loaded after smsbridge started; run `systemctl restart smsbridge`, and if it persists allow the device class with `systemctl edit smsbridge` ([Service] DeviceAllow=char-<class> rw, the class from /proc/devices)",
        .path.display()
    )]
    DeviceBlocked { path: PathBuf },
    /// EACCES on a pseudo-terminal: it belongs to the user who made it (`smsbridge
    /// simulate` run by another user); the `dialout` group has nothing to do with it.
    #[error(
        "permission denied opening {}: it is a pseudo-terminal owned by the user who created it (e.g. `smsbridge simulate` run as root); run the simulator as the same user as this process, or use `serve --simulator`",
        .path.display()
    )]
    PtyNotOurs { path: PathBuf },
    /// EBUSY, or the port's exclusive lock is held: another process has the port open.
    #[error(
        "serial port {} is in use by another program such as ModemManager (stop it, or tell it to ignore this modem)",
        .path.display()
    )]
    Busy { path: PathBuf },
    /// ENOTTY: the path is not a terminal device.
    #[error("{} is not a serial port (not a tty device)", .path.display())]
    NotATty { path: PathBuf },
    /// Anything else (the device vanished while opening, ...).
    #[error("cannot open serial port {}: {reason}", .path.display())]
    Other { path: PathBuf, reason: String },
}

impl OpenError {
    /// Classifies a tokio-serial (serialport) error. serialport reports EBUSY, and a lock
    /// held by another process, as `NoDevice`; ENOENT and EACCES as the matching I/O kinds.
    pub(crate) fn from_serial(path: &Path, error: &tokio_serial::Error) -> OpenError {
        let path = path.to_path_buf();
        match error.kind {
            tokio_serial::ErrorKind::Io(io::ErrorKind::NotFound) => OpenError::NotFound { path },
            // Rust folds EPERM and EACCES into one kind; serialport keeps the description.
            tokio_serial::ErrorKind::Io(io::ErrorKind::PermissionDenied)
                if error.description == nix::errno::Errno::EPERM.desc() =>
            {
                OpenError::DeviceBlocked { path }
            }
            tokio_serial::ErrorKind::Io(io::ErrorKind::PermissionDenied)
                if std::fs::canonicalize(&path).is_ok_and(|p| p.starts_with("/dev/pts")) =>
            {
                OpenError::PtyNotOurs { path }
            }
            tokio_serial::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
                OpenError::PermissionDenied { path }
            }
            tokio_serial::ErrorKind::NoDevice => OpenError::Busy { path },
            // serialport keeps only the errno's description of a failed tcgetattr.
            _ if error.description == nix::errno::Errno::ENOTTY.desc() => {
                OpenError::NotATty { path }
            }
            _ => OpenError::Other {
                path,
                reason: error.description.clone(),
            },
        }
    }
}

/// Why a modem could not be brought to the point of sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// Nothing answered `AT` with `OK` in time.
    #[error("the modem does not answer AT commands")]
    NotResponding,
    /// The SIM waits for its PIN and none is configured.
    #[error("the SIM needs its PIN: set pin_file in this modem's configuration")]
    PinRequired,
    /// The configured PIN is not 4 to 8 digits; it was not sent.
    #[error("the configured SIM PIN is not 4 to 8 digits; it was not sent to the SIM")]
    InvalidPin,
    /// The SIM refused the configured PIN. The driver never sends it again: three wrong
    /// PINs block the SIM.
    #[error(
        "the SIM refused the configured PIN; it will not be tried again (three wrong PINs block the SIM): fix pin_file and restart"
    )]
    PinRejected,
    /// The SIM is blocked and needs its PUK.
    #[error("the SIM is blocked and needs its PUK: unblock it in a phone, then restart")]
    PukRequired,
    #[error("no SIM card is inserted")]
    NoSim,
    /// The SIM is in another state that stops the modem from sending.
    #[error("the SIM is not usable: {0}")]
    Sim(String),
    /// The modem on the port is not the one the configuration binds to.
    #[error("wrong modem on this port: its IMEI is {found}, the configuration expects {expected}")]
    WrongImei { found: String, expected: String },
    /// The SIM holds no service centre number and `[sms] smsc` is not set: every send
    /// would fail with `+CMS ERROR: 330`.
    #[error(
        "the SIM holds no SMS centre number (AT+CSCA? is empty): set `[sms] smsc` to the operator's SMSC number, or store it on the SIM with AT+CSCA"
    )]
    NoSmsc,
    /// No registration within the configured time; the text says what the modem reported
    /// last (searching, denied, ...).
    #[error("not registered: {0}")]
    NotRegistered(String),
    /// A step the driver cannot do without was refused.
    #[error("{what}: {error}")]
    Refused { what: &'static str, error: AtError },
    /// The port went away during initialisation.
    #[error("the modem link was lost: {0}")]
    LinkLost(AtError),
}

impl InitError {
    /// Whether the port itself is gone (reopen with backoff) rather than the modem failing.
    pub fn is_link_lost(&self) -> bool {
        matches!(self, InitError::LinkLost(_))
    }

    /// The error for a command that did not get through: lost link or silent modem.
    pub(crate) fn from_at(error: AtError) -> InitError {
        if error.is_link_down() {
            InitError::LinkLost(error)
        } else {
            InitError::NotResponding
        }
    }
}

/// What can go wrong in the one-shot helpers (`probe`, `send_message`) the CLI uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModemError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Whether an engine error means the modem did not answer in time (as opposed to answering
/// with an error): repeated ones make the driver reset the modem.
pub(crate) fn is_silence(error: &AtError) -> bool {
    matches!(
        error,
        AtError::Timeout { .. }
            | AtError::NotResponding { .. }
            | AtError::PromptTimeout { .. }
            | AtError::SubmitTimeout { .. }
            | AtError::WriteTimeout { .. }
    )
}

/// Classifies the failure of part `index` (from 0) of `total` into the outcome the
/// dispatcher acts on, keeping the message references of the parts sent before it.
///
/// - Unknown only when the PDU went out and no `+CMGS` came back (or the link died after
///   it, or the `OK` came without a reference): the message may have been sent.
/// - `+CMS ERROR`/`+CME ERROR` follow the at module's blame (TS 27.005 §3.2.5): the
///   message's fault is permanent, a passing condition temporary, the modem's fault a
///   [`SendError::ModemFault`] (temporary instead while the modem is `starting`);
///   unlisted codes are temporary.
/// - A PDU the engine refuses to write is permanent: sending it again fails the same way.
/// - Everything else (no prompt, port lost before the PDU, a silent modem, a bare `ERROR`)
///   means the PDU surely did not go out: temporary.
pub(crate) fn send_error(
    error: &AtError,
    index: usize,
    total: usize,
    sent: Vec<u8>,
    starting: bool,
) -> SendError {
    let reason = if total > 1 {
        format!("part {} of {total}: {error}", index + 1)
    } else {
        error.to_string()
    };
    if error.outcome_unknown() {
        return SendError::Unknown { reason, sent };
    }
    let (blame, fix) = match error {
        AtError::Cms { error, .. } => (error.blame(), error.fix()),
        AtError::Cme { error, .. } => (error.blame(), error.fix()),
        AtError::InvalidPdu { .. } => (Blame::Message, None),
        _ => (Blame::Passing, None),
    };
    match blame {
        // Right after a (re)start, SMS commands are refused for a few seconds (SIM800
        // before `SMS Ready`: Seeed-Studio/GPRS_SIM900 issue 39): a passing condition.
        Blame::Modem if starting && is_startup_refusal(error) => SendError::Temporary {
            reason: format!("{reason} (the modem started moments ago)"),
            sent,
        },
        Blame::Modem => SendError::ModemFault {
            reason,
            fix: fix
                .unwrap_or("check the modem and its SIM; smsbridge re-initialises it with backoff")
                .to_owned(),
            sent,
        },
        Blame::Message => SendError::Permanent { reason, sent },
        Blame::Passing => SendError::Temporary { reason, sent },
    }
}

/// The refusals a modem gives while its SMS service or SIM is still starting: "operation
/// not allowed", "ME failure", SIM not ready, SIM failure or busy. A missing SMSC (330) or
/// a full memory is no such thing and is blamed at once.
fn is_startup_refusal(error: &AtError) -> bool {
    match error {
        AtError::Cms { error, .. } => matches!(error.code(), Some(300 | 302 | 310 | 313 | 314)),
        AtError::Cme { error, .. } => matches!(error.code(), Some(3 | 10 | 13 | 14)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::at::command::{CmeError, CmsError};

    fn cmgs() -> String {
        "AT+CMGS=23".to_owned()
    }

    /// What `send_error` makes of `error` as the second of three parts, after part one got
    /// reference 7.
    fn check(error: AtError, expected: &str) {
        let outcome = send_error(&error, 1, 3, vec![7], false);
        assert_eq!(outcome.kind(), expected, "{error:?}");
        assert_eq!(outcome.sent(), &[7], "{error:?}");
        assert!(outcome.to_string().contains("part 2 of 3: "), "{outcome}");
    }

    #[test]
    fn send_errors_are_classified_by_what_happened_to_the_pdu() {
        let cms = |code| AtError::Cms {
            command: cmgs(),
            error: CmsError::from_code(code),
        };
        let timeout = Duration::from_secs(1);
        let cases = [
            (cms(42), "temporary"),
            (cms(38), "temporary"),
            (cms(331), "modem_fault"),
            (cms(330), "modem_fault"),
            (cms(302), "modem_fault"),
            (cms(310), "modem_fault"),
            (cms(322), "modem_fault"),
            (cms(28), "modem_fault"),
            (cms(314), "temporary"),
            (cms(999), "temporary"),
            (cms(21), "permanent"),
            (cms(304), "permanent"),
            (cms(30), "permanent"),
            (
                AtError::Cme {
                    command: cmgs(),
                    error: CmeError::SimBusy,
                },
                "temporary",
            ),
            (
                AtError::PromptTimeout {
                    command: cmgs(),
                    timeout,
                },
                "temporary",
            ),
            (AtError::NotResponding { command: cmgs() }, "temporary"),
            // Held back after the prompt (its commit failed): not sent.
            (AtError::Withdrawn { command: cmgs() }, "temporary"),
            (AtError::Error { command: cmgs() }, "temporary"),
            (AtError::Closed, "temporary"),
            (
                AtError::Io {
                    kind: io::ErrorKind::Other,
                    message: "EIO".into(),
                },
                "temporary",
            ),
            (
                AtError::SubmitTimeout {
                    command: cmgs(),
                    timeout,
                },
                "unknown",
            ),
            (
                AtError::SubmitInterrupted {
                    command: cmgs(),
                    reason: "EIO".into(),
                },
                "unknown",
            ),
            (
                AtError::BadAnswer {
                    command: cmgs(),
                    reason: "no +CMGS".into(),
                },
                "unknown",
            ),
            (
                AtError::InvalidPdu {
                    reason: "odd length".into(),
                },
                "permanent",
            ),
        ];
        for (error, expected) in cases {
            check(error, expected);
        }
    }

    /// `+CMS ERROR: 330` is the modem's fault, with the fix; moments after a (re)start, a
    /// refusal of a starting modem (302) is a passing condition.
    #[test]
    fn the_modems_faults_name_the_fix_and_pass_while_starting() {
        let error = AtError::Cms {
            command: cmgs(),
            error: CmsError::from_code(330),
        };
        let SendError::ModemFault { reason, fix, sent } = send_error(&error, 0, 1, vec![], false)
        else {
            panic!("330 blames the modem");
        };
        assert_eq!(reason, "AT+CMGS=23: +CMS ERROR: 330 (SMSC address unknown)");
        assert!(fix.contains("[sms] smsc"), "{fix}");
        assert!(sent.is_empty());
        // A missing SMSC is no startup condition: blamed at once.
        assert_eq!(send_error(&error, 0, 1, vec![], true).kind(), "modem_fault");
        // "Operation not allowed" moments after a start is (SIM800 before `SMS Ready`).
        let not_allowed = AtError::Cms {
            command: cmgs(),
            error: CmsError::from_code(302),
        };
        let starting = send_error(&not_allowed, 0, 1, vec![], true);
        assert_eq!(starting.kind(), "temporary", "{starting}");
        assert!(
            starting.to_string().contains("started moments ago"),
            "{starting}"
        );
        assert_eq!(
            send_error(&not_allowed, 0, 1, vec![], false).kind(),
            "modem_fault"
        );
        // A message's own fault stays permanent while starting.
        let unknown_subscriber = AtError::Cms {
            command: cmgs(),
            error: CmsError::from_code(30),
        };
        assert_eq!(
            send_error(&unknown_subscriber, 0, 1, vec![], true).kind(),
            "permanent"
        );
    }

    #[test]
    fn a_single_part_reason_has_no_part_number() {
        let error = AtError::Cms {
            command: cmgs(),
            error: CmsError::from_code(42),
        };
        let SendError::Temporary { reason, sent } = send_error(&error, 0, 1, Vec::new(), false)
        else {
            panic!("congestion is temporary");
        };
        assert_eq!(reason, "AT+CMGS=23: +CMS ERROR: 42 (congestion)");
        assert!(sent.is_empty());
    }

    #[test]
    fn a_pty_we_may_not_open_is_not_a_dialout_matter() {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let path = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&pty.slave)
        ))
        .expect("the pty's path");
        let error = tokio_serial::Error::new(
            tokio_serial::ErrorKind::Io(io::ErrorKind::PermissionDenied),
            "Permission denied",
        );
        let message = OpenError::from_serial(&path, &error).to_string();
        assert!(message.contains("pseudo-terminal"), "{message}");
        assert!(!message.contains("dialout"), "{message}");
    }

    #[test]
    fn open_errors_name_the_fix() {
        let path = Path::new("/dev/ttyUSB7");
        let enotty = nix::errno::Errno::ENOTTY.desc();
        let cases = [
            (
                tokio_serial::ErrorKind::Io(io::ErrorKind::NotFound),
                "No such file or directory",
                "does not exist",
            ),
            (
                tokio_serial::ErrorKind::Io(io::ErrorKind::PermissionDenied),
                "Permission denied",
                "dialout",
            ),
            (
                tokio_serial::ErrorKind::Io(io::ErrorKind::PermissionDenied),
                "Operation not permitted",
                "device policy blocks serial port /dev/ttyUSB7",
            ),
            (
                tokio_serial::ErrorKind::NoDevice,
                "Unable to acquire exclusive lock on serial port",
                "ModemManager",
            ),
            (
                tokio_serial::ErrorKind::Unknown,
                enotty,
                "is not a serial port",
            ),
            (
                tokio_serial::ErrorKind::Unknown,
                "No such device or address",
                "cannot open serial port /dev/ttyUSB7: No such device or address",
            ),
        ];
        for (kind, description, hint) in cases {
            let error = OpenError::from_serial(path, &tokio_serial::Error::new(kind, description));
            let text = error.to_string();
            assert!(text.contains("/dev/ttyUSB7"), "{text}");
            assert!(text.contains(hint), "{text}");
        }
    }
}
