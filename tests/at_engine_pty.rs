//! The AT engine over a real pseudo-terminal, opened with tokio-serial exactly as a USB
//! modem's tty is opened in production. A scripted fake modem runs on the master side in a
//! plain thread; the engine gets the slave's path.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use nix::pty::openpty;
use smsbridge::at::command::{self, Command};
use smsbridge::at::engine::{AtEngine, AtError};
use smsbridge::at::parse::Urc;
use tokio_serial::SerialPortBuilderExt;

const PDU: &str = "0011000B915121551532F40000AA0AE8329BFD4697D9EC37";

/// A pty pair: the engine on the slave (through its path), the fake modem on the master.
fn open_pty() -> (AtEngine, tokio::sync::mpsc::Receiver<Urc>, File) {
    let pty = openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
    let port = tokio_serial::new(path.to_string_lossy(), 115_200)
        .open_native_async()
        .expect("open the pty slave with tokio-serial");
    // The port holds its own descriptor of the slave.
    drop(pty.slave);
    let (engine, urcs) = AtEngine::spawn(port);
    (engine, urcs, File::from(pty.master))
}

/// Reads from the master up to and including `end`.
fn read_until(master: &mut File, end: u8) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while got.last() != Some(&end) {
        master
            .read_exact(&mut byte)
            .expect("read from the pty master");
        got.push(byte[0]);
    }
    got
}

/// Waits for `future`, failing the test instead of hanging if the engine is stuck.
async fn guarded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the engine is stuck")
}

#[tokio::test]
async fn commands_urcs_and_a_send_over_a_pty_then_the_modem_vanishes_while_idle() {
    let (engine, mut urcs, mut master) = open_pty();
    let (vanish, vanish_rx) = mpsc::channel::<()>();
    let modem = std::thread::spawn(move || {
        // Echo on, as every modem after power-up.
        assert_eq!(read_until(&mut master, b'\r'), b"AT+CGMI\r");
        master
            .write_all(b"AT+CGMI\r\r\nSIMCOM_Ltd\r\n\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n")
            .unwrap();
        assert_eq!(read_until(&mut master, b'\r'), b"AT+CMGS=23\r");
        master.write_all(b"\r\n> ").unwrap();
        let pdu = read_until(&mut master, 0x1a);
        assert_eq!(pdu, format!("{PDU}\x1a").as_bytes());
        master.write_all(b"\r\n+CMGS: 5\r\n\r\nOK\r\n").unwrap();
        vanish_rx.recv().unwrap();
        drop(master);
    });

    let answer = guarded(engine.run(&Command::manufacturer())).await.unwrap();
    assert_eq!(command::text_answer(&answer).unwrap(), "SIMCOM_Ltd");
    assert_eq!(
        guarded(urcs.recv()).await,
        Some(Urc::MessageStored {
            storage: "SM".into(),
            index: 1
        })
    );
    let reference =
        guarded(engine.send_pdu(23, PDU, Duration::from_secs(5), Duration::from_secs(30))).await;
    assert_eq!(reference, Ok(5));

    vanish.send(()).unwrap();
    let error = guarded(engine.closed()).await;
    assert!(error.is_link_down(), "{error:?}");
    assert!(engine.is_closed());
    assert!(engine.run(&Command::at()).await.unwrap_err().is_link_down());
    modem.join().unwrap();
}

#[tokio::test]
async fn a_modem_vanishing_during_a_command_fails_it_without_waiting_for_the_timeout() {
    let (engine, _urcs, mut master) = open_pty();
    let modem = std::thread::spawn(move || {
        assert_eq!(read_until(&mut master, b'\r'), b"AT+CSQ\r");
        drop(master);
    });
    // With a long timeout, only noticing the lost link can end the command early.
    let command = Command::signal_quality().with_timeout(Duration::from_secs(600));
    let error = guarded(engine.run(&command)).await.unwrap_err();
    assert!(
        matches!(error, AtError::Closed | AtError::Io { .. }),
        "{error:?}"
    );
    assert!(engine.is_closed());
    modem.join().unwrap();
}
