//! The service's side of `Type=notify`: READY=1 only once the listeners answer, a STATUS=
//! line about the modems, WATCHDOG=1 while it works, STOPPING=1 and a clean exit on SIGTERM.
//! systemd is played by a datagram socket in `NOTIFY_SOCKET`, as sd_notify(3) describes.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smsbridge::sim::profile::Profile;
use support::{sim_at, write_config};

/// Waits for a datagram that contains `wanted`, returning it.
fn expect(socket: &UnixDatagram, wanted: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {wanted:?} from the service within {within:?}"
        );
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message.contains(wanted) {
                return message;
            }
        }
    }
}

#[tokio::test]
async fn the_service_tells_systemd_it_is_ready_alive_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    let _sim = sim_at(&link, Profile::Generic, None).await;
    let (config, public, _admin) = write_config(dir.path(), &[link], "");
    let notify_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).unwrap();

    // systemd sets WATCHDOG_PID to the service's own pid; a shell that execs the service
    // knows that pid beforehand.
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" serve --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_smsbridge"))
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The waits below block; they run on a thread of their own so the simulated modem,
    // served by this test's runtime, keeps answering the service meanwhile.
    tokio::task::spawn_blocking(move || watch_the_service(socket, child, public))
        .await
        .unwrap();
}

fn watch_the_service(
    socket: UnixDatagram,
    mut child: std::process::Child,
    public: std::net::SocketAddr,
) {
    expect(&socket, "READY=1", Duration::from_secs(20));
    // READY means the listeners are bound: a connection succeeds at once.
    assert!(
        std::net::TcpStream::connect(public).is_ok(),
        "READY=1 before the public listener"
    );
    // The status counts the modem once it is ready: "0/1 modems ready" must not pass.
    let status = expect(&socket, "STATUS=1/1 modems ready", Duration::from_secs(20));
    assert!(status.contains("messages waiting"), "{status}");
    expect(&socket, "WATCHDOG=1", Duration::from_secs(5));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    expect(&socket, "STOPPING=1", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
}
