//! The simulated modem on a real pseudo-terminal, opened with tokio-serial exactly as a
//! modem's `/dev/ttyUSB0` is opened, spoken to in raw AT (no `crate::at`, no `crate::sms`).

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use smsbridge::sim::{self, Delivery, Fault, Profile, SimConfig, SimEvent, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// A well-known SMS-SUBMIT to +46708251358, GSM 7-bit "hellohello"; TPDU 23 octets.
const HELLO: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// An SMS-DELIVER with an explicit SMSC field; TPDU 30 octets.
const DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

/// A guard against hanging forever, not a speed requirement.
const PATIENCE: Duration = Duration::from_secs(10);

fn open(path: &Path) -> SerialStream {
    tokio_serial::new(path.to_string_lossy(), 115_200)
        .open_native_async()
        .unwrap_or_else(|err| panic!("open {}: {err}", path.display()))
}

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(port: &mut SerialStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let read = async {
        while !got.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            let n = port.read(&mut buf).await.expect("read from the pty");
            assert!(n > 0, "the port closed while waiting for {needle:?}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    if tokio::time::timeout(PATIENCE, read).await.is_err() {
        panic!(
            "no {needle:?} from the modem; got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn command(port: &mut SerialStream, line: &str, until: &str) -> String {
    port.write_all(line.as_bytes())
        .await
        .expect("write to the pty");
    read_until(port, until).await
}

async fn start(profile: Profile, dir: &Path) -> SimHandle {
    let config = SimConfig {
        link: Some(dir.join("modem0")),
        ..SimConfig::fast(profile)
    };
    sim::spawn(config).await.expect("start the simulator")
}

#[tokio::test]
async fn opens_like_a_serial_port_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(Profile::Sim800, dir.path()).await;
    let link = dir.path().join("modem0");
    assert_eq!(sim.path(), link);
    let tty = sim.tty_path().expect("plugged in");
    assert!(tty.starts_with("/dev/pts"), "{}", tty.display());
    assert_eq!(std::fs::read_link(&link).expect("a symlink"), tty);

    let mut port = open(&link);
    // The boot messages said before anyone listened are still there, then the echo.
    let boot = command(&mut port, "AT\r", "AT\r\r\nOK\r\n").await;
    assert!(boot.starts_with("\r\nRDY\r\n"), "{boot:?}");
    assert!(boot.contains("\r\nSMS Ready\r\n"), "{boot:?}");
    assert_eq!(
        command(&mut port, "ATE0\r", "OK\r\n").await,
        "ATE0\r\r\nOK\r\n"
    );
    assert_eq!(
        command(&mut port, "AT+CGMM\r", "OK\r\n").await,
        "\r\nSIMCOM_SIM800L\r\n\r\nOK\r\n"
    );
    // The port can be closed and opened again, and no exclusive-use flag is left on it
    // (serialport sets TIOCEXCL on open and never clears it).
    drop(port);
    let mut port = open(&link);
    assert_eq!(command(&mut port, "AT\r", "OK\r\n").await, "\r\nOK\r\n");
    let probe = std::fs::File::open(&tty).expect("open the pty");
    let mut exclusive: nix::libc::c_int = -1;
    // SAFETY: TIOCGEXCL writes one int through the pointer, which points at `exclusive`.
    let rc = unsafe {
        nix::libc::ioctl(
            probe.as_raw_fd(),
            nix::libc::TIOCGEXCL,
            &mut exclusive as *mut nix::libc::c_int,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!(exclusive, 0, "TIOCEXCL left set on the pty");
    // Asking for DTR on open works too (serialport ignores the pty's ENOTTY).
    drop(port);
    let mut port = tokio_serial::new(link.to_string_lossy(), 115_200)
        .dtr_on_open(true)
        .open_native_async()
        .expect("open with DTR");
    assert_eq!(command(&mut port, "AT\r", "OK\r\n").await, "\r\nOK\r\n");
    sim.shutdown().await;
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link removed on shutdown"
    );
}

#[tokio::test]
async fn sends_an_sms_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(Profile::Generic, dir.path()).await;
    let mut events = sim.events();
    let mut port = open(&sim.path());
    command(&mut port, "ATE0\r", "OK\r\n").await;
    assert_eq!(
        command(&mut port, "AT+CMGF=0\r", "OK\r\n").await,
        "\r\nOK\r\n"
    );
    // The prompt has no line ending after it.
    assert_eq!(command(&mut port, "AT+CMGS=23\r", "> ").await, "\r\n> ");
    let answer = command(&mut port, &format!("{HELLO}\x1a"), "OK\r\n").await;
    assert_eq!(answer, "\r\n+CMGS: 0\r\n\r\nOK\r\n");
    // A malformed PDU is refused.
    command(&mut port, "AT+CMGS=22\r", "> ").await;
    let refused = command(&mut port, &format!("{HELLO}\x1a"), "304\r\n").await;
    assert_eq!(refused, "\r\n+CMS ERROR: 304\r\n");

    let received = sim.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].pdu_hex, HELLO);
    assert_eq!(received[0].tpdu_len, 23);
    assert_eq!(received[0].mr, 0);
    assert_eq!(received[0].destination, "+46708251358");
    let event = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("an event")
        .expect("not lagged");
    assert!(matches!(event, SimEvent::Received(sms) if sms.mr == 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_and_incoming_messages_reach_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(Profile::Ec25, dir.path()).await;
    let mut port = open(&sim.path());
    command(&mut port, "ATE0\r", "OK\r\n").await;
    sim.set_fault(Fault::CmsErrorForNextSends { code: 38, count: 1 });
    command(&mut port, "AT+CMGS=23\r", "> ").await;
    let refused = command(&mut port, &format!("{HELLO}\x1a"), "38\r\n").await;
    assert_eq!(refused, "\r\n+CMS ERROR: 38\r\n");
    assert!(sim.faults().is_empty(), "the fault wore off");

    assert_eq!(
        sim.inject_incoming(DELIVER),
        Ok(Delivery::Stored { index: 0 })
    );
    assert_eq!(
        read_until(&mut port, "\",0\r\n").await,
        "\r\n+CMTI: \"SM\",0\r\n"
    );
    let read = command(&mut port, "AT+CMGR=0\r", "OK\r\n").await;
    assert_eq!(read, format!("\r\n+CMGR: 0,,30\r\n{DELIVER}\r\n\r\nOK\r\n"));
    sim.shutdown().await;
}

#[tokio::test]
async fn unplugged_it_goes_away_and_comes_back_under_another_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(Profile::Generic, dir.path()).await;
    let link = sim.path();
    let first = sim.tty_path().expect("plugged in");
    let mut events = sim.events();
    let mut port = open(&link);
    command(&mut port, "AT\r", "OK\r\n").await;

    sim.unplug().await;
    assert_eq!(sim.tty_path(), None);
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    // The client's read ends: EOF or EIO, as when a USB modem is pulled out.
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, port.read(&mut buf))
        .await
        .expect("the read ends");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(port.write_all(b"AT\r").await.is_err(), "writes fail");

    let second = sim.replug().await.expect("replug");
    assert_ne!(second, first, "a new tty name");
    assert_eq!(sim.tty_path(), Some(second.clone()));
    assert_eq!(std::fs::read_link(&link).expect("link back"), second);
    let mut port = open(&link);
    // Power came back: echo is on again.
    assert_eq!(command(&mut port, "AT\r", "OK\r\n").await, "AT\r\r\nOK\r\n");

    let seen: Vec<SimEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(
        seen,
        vec![SimEvent::Unplugged, SimEvent::Replugged { tty: second }]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_usb_modem_reset_reenumerates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(Profile::E3372, dir.path()).await;
    let link = sim.path();
    let first = sim.tty_path().expect("plugged in");
    let mut port = open(&link);
    command(&mut port, "ATE0\r", "OK\r\n").await;
    port.write_all(b"AT+CFUN=1,1\r").await.expect("write");
    // The OK arrives, then the port goes away.
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let closed = async {
        loop {
            match port.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, closed)
        .await
        .expect("the port closes");
    assert!(
        String::from_utf8_lossy(&got).contains("\r\nOK\r\n"),
        "{got:?}"
    );

    // It comes back under another name, behind the same link, booted.
    let again = async {
        loop {
            if let Some(tty) = sim.tty_path() {
                if tty != first {
                    return tty;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let second = tokio::time::timeout(PATIENCE, again).await.expect("back");
    assert_eq!(std::fs::read_link(&link).expect("link back"), second);
    let mut port = open(&link);
    let boot = command(&mut port, "AT\r", "AT\r\r\nOK\r\n").await;
    assert!(boot.contains("^BOOT:"), "{boot:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_link_replaces_a_stale_symlink_but_never_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("modem0");
    std::os::unix::fs::symlink("/dev/pts/nonexistent", &link).expect("stale link");
    let sim = start(Profile::Generic, dir.path()).await;
    assert_eq!(
        std::fs::read_link(&link).expect("link"),
        sim.tty_path().expect("plugged in")
    );
    sim.shutdown().await;

    std::fs::write(&link, b"not a link").expect("a file");
    let config = SimConfig {
        link: Some(link.clone()),
        ..SimConfig::fast(Profile::Generic)
    };
    let err = sim::spawn(config)
        .await
        .expect_err("refuses to replace a file");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&link).expect("file kept"), b"not a link");
}
