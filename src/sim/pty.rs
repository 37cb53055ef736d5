//! The simulator's runner: serves a [`Modem`] on a pseudo-terminal that clients open exactly
//! as they open a real modem's `/dev/ttyUSB0` (e.g. `tokio_serial::new(path, 115200)
//! .open_native_async()`), optionally behind a symlink such as `/tmp/m0`.
//!
//! It owns the pty and the clock; the model owns the behaviour. It reads what the client
//! writes, feeds the model with the current time, writes what the model says, and sleeps
//! until the model's next timed output. It also plays the faults that belong to the port
//! rather than the modem: unplugging (the pty is closed, clients see EOF or EIO, the link
//! goes away) and plugging back in under a new `/dev/pts/N` name, as a USB modem that
//! comes back as another ttyUSB does; and a reset that re-enumerates a USB modem.
//!
//! Two pty details matter for clients that use the `serialport` crate:
//! - The runner keeps its own descriptor of the slave side open. Otherwise every client
//!   close hangs the master up (reads fail with EIO) and whatever the model says while no
//!   client is attached has nowhere to go.
//! - `serialport` sets `TIOCEXCL` when it opens a port and never clears it. On a real tty
//!   the flag dies with the last close; on a pty it lives as long as the master, so a second
//!   open by a non-root user would fail with EBUSY. The runner clears it (`TIOCNXCL`
//!   through its own slave descriptor) whenever the client writes and every 100 ms.
//!   `serialport` also takes an exclusive `flock`, which still keeps two of its clients
//!   from sharing the port. (A non-root client that opens, closes without writing and
//!   reopens within those 100 ms can still meet EBUSY once.)
//! - A pty has no modem control lines: `TIOCMGET` / `TIOCMBIS` fail with ENOTTY. Opening
//!   is unaffected (`serialport` only sets DTR when asked to, and ignores a failure), but a
//!   client that reads CTS/DSR/CD or sets DTR/RTS after opening gets an error here.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{FlushArg, SetArg, cfmakeraw, tcflush, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::model::{Delivery, Fault, InjectError, ModelConfig, Modem, Notice, ReceivedSms};
use super::profile::Profile;

/// What to simulate and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// A symlink to create (or replace, if it is a stale symlink) pointing at the pty.
    pub link: Option<PathBuf>,
    /// The modem: profile, timings, seed, PIN, storage.
    pub modem: ModelConfig,
}

impl SimConfig {
    /// A modem of `profile` with realistic timings, no link.
    pub fn new(profile: Profile) -> SimConfig {
        SimConfig {
            link: None,
            modem: ModelConfig::new(profile),
        }
    }

    /// A modem of `profile` with test timings (see [`ModelConfig::fast`]), no link.
    pub fn fast(profile: Profile) -> SimConfig {
        SimConfig {
            link: None,
            modem: ModelConfig::fast(profile),
        }
    }
}

/// Something that happened to the simulated modem, for whoever watches (the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    /// A message was accepted for sending.
    Received(ReceivedSms),
    /// ESC ended a PDU entry after the prompt: nothing was sent.
    Cancelled,
    /// The modem reset itself (`AT+CFUN=1,1`).
    Reset,
    /// The port went away.
    Unplugged,
    /// The port came back at this pty.
    Replugged { tty: PathBuf },
}

/// A handle on a running simulated modem. Clones share the same modem; when the last one
/// is dropped the runner stops and removes the link.
#[derive(Clone)]
pub struct SimHandle {
    guard: Arc<Guard>,
}

/// Starts a simulated modem on a new pseudo-terminal.
pub async fn spawn(config: SimConfig) -> io::Result<SimHandle> {
    let pty = Pty::open(None)?;
    if let Some(link) = &config.link {
        point_link(link, &pty.tty)?;
    }
    let (events, _) = broadcast::channel(256);
    let shared = Arc::new(Shared {
        modem: Mutex::new(Modem::new(config.modem.clone(), now())),
        tty: Mutex::new(Some(pty.tty.clone())),
        last_tty: Mutex::new(pty.tty.clone()),
        link: config.link.clone(),
        profile: config.modem.profile,
        wake: Notify::new(),
        events,
    });
    tracing::info!(profile = %config.modem.profile, tty = %pty.tty.display(), "simulated modem started");
    let (control, rx) = mpsc::unbounded_channel();
    let runner = Runner {
        shared: shared.clone(),
        port: Some(Port::new(pty)?),
        control: rx,
        unplug_at: None,
        replug_at: None,
        _link: LinkGuard(config.link.clone()),
    };
    let task = tokio::spawn(runner.run());
    Ok(SimHandle {
        guard: Arc::new(Guard {
            shared,
            control,
            task: Mutex::new(Some(task)),
        }),
    })
}

impl SimHandle {
    /// Where clients open the modem: the link if one was asked for, else the pty.
    pub fn path(&self) -> PathBuf {
        let shared = &self.guard.shared;
        match &shared.link {
            Some(link) => link.clone(),
            None => lock(&shared.last_tty).clone(),
        }
    }

    /// The pty the modem is on now (`/dev/pts/N`), or `None` while unplugged.
    pub fn tty_path(&self) -> Option<PathBuf> {
        lock(&self.guard.shared.tty).clone()
    }

    /// The profile being simulated.
    pub fn profile(&self) -> Profile {
        self.guard.shared.profile
    }

    /// Switches a fault on; see [`Fault`].
    pub fn set_fault(&self, fault: Fault) {
        tracing::info!(?fault, "simulated modem fault on");
        self.with_modem(|m| m.set_fault(fault, now()));
    }

    /// Switches every fault off.
    pub fn clear_faults(&self) {
        tracing::info!("simulated modem faults off");
        self.with_modem(|m| m.clear_faults(now()));
    }

    /// Switches off the faults of the same kind as `fault`.
    pub fn clear_fault(&self, fault: &Fault) {
        self.with_modem(|m| m.clear_fault(fault, now()));
    }

    /// The faults switched on.
    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.guard.shared.modem).faults().to_vec()
    }

    /// Every message accepted for sending, in order.
    pub fn received(&self) -> Vec<ReceivedSms> {
        lock(&self.guard.shared.modem).received().to_vec()
    }

    /// An incoming SMS-DELIVER (hex, SMSC field first) arriving from the network.
    pub fn inject_incoming(&self, pdu_hex: &str) -> Result<Delivery, InjectError> {
        self.with_modem(|m| m.inject_incoming(pdu_hex, now()))
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.guard.shared.events.subscribe()
    }

    /// Pulls the plug: the pty closes (clients' reads end, writes fail with EIO), the link
    /// goes away, the modem loses power. Returns once done.
    pub async fn unplug(&self) {
        let (ack, done) = oneshot::channel();
        if self.guard.control.send(Control::Unplug(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Plugs back in: a new pty with a different `/dev/pts/N` name, the link pointing at
    /// it, the modem booting. Returns the new pty's path.
    pub async fn replug(&self) -> io::Result<PathBuf> {
        let (ack, done) = oneshot::channel();
        self.guard
            .control
            .send(Control::Replug(ack))
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    /// Unplugs, waits `for_`, plugs back in.
    pub async fn unplug_for(&self, for_: Duration) -> io::Result<PathBuf> {
        self.unplug().await;
        tokio::time::sleep(for_).await;
        self.replug().await
    }

    /// Stops the runner, closes the pty and removes the link; returns when done.
    pub async fn shutdown(self) {
        let _ = self.guard.control.send(Control::Shutdown);
        let task = lock(&self.guard.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn with_modem<R>(&self, f: impl FnOnce(&mut Modem) -> R) -> R {
        let result = f(&mut lock(&self.guard.shared.modem));
        self.guard.shared.wake.notify_one();
        result
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("profile", &self.profile())
            .field("path", &self.path())
            .field("tty", &self.tty_path())
            .finish()
    }
}

/// State shared by the handles and the runner.
struct Shared {
    modem: Mutex<Modem>,
    tty: Mutex<Option<PathBuf>>,
    last_tty: Mutex<PathBuf>,
    link: Option<PathBuf>,
    profile: Profile,
    wake: Notify,
    events: broadcast::Sender<SimEvent>,
}

/// Owned by the handles; dropping the last one stops the runner (its channel closes).
struct Guard {
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Control>,
    task: Mutex<Option<JoinHandle<()>>>,
}

enum Control {
    Unplug(oneshot::Sender<()>),
    Replug(oneshot::Sender<io::Result<PathBuf>>),
    Shutdown,
}

/// Removes the link when the runner ends, however it ends (also when its runtime drops it).
struct LinkGuard(Option<PathBuf>);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Some(link) = &self.0 {
            remove_link(link);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the simulator down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the simulated modem has stopped")
}

/// A pseudo-terminal pair.
struct Pty {
    master: PtyMaster,
    slave: OwnedFd,
    tty: PathBuf,
}

impl Pty {
    /// Opens a pty whose name differs from `avoid`.
    fn open(avoid: Option<&Path>) -> io::Result<Pty> {
        // Linux hands out the lowest free number, often the one just closed; holding the
        // unwanted ones open until a new number comes up forces a new name.
        let mut discarded = Vec::new();
        for _ in 0..8 {
            let pty = Pty::open_one()?;
            if Some(pty.tty.as_path()) != avoid {
                return Ok(pty);
            }
            discarded.push(pty);
        }
        Err(io::Error::other("could not get a new pseudo-terminal name"))
    }

    fn open_one() -> io::Result<Pty> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let tty = PathBuf::from(ptsname_r(&master)?);
        let slave = nix::fcntl::open(
            &tty,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // Raw mode: no echo, no CR/LF translation, no line editing by the line
        // discipline. Clients set this themselves on open; until then the modem's bytes
        // must pass untouched too.
        let mut termios = tcgetattr(&slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(Pty { master, slave, tty })
    }
}

/// An open pty being served.
struct Port {
    master: AsyncFd<PtyMaster>,
    slave: OwnedFd,
    tty: PathBuf,
}

impl Port {
    fn new(pty: Pty) -> io::Result<Port> {
        // SAFETY: `PtyMaster` owns its descriptor, keeps it open until it is dropped (which
        // only the `AsyncFd` can do now) and always returns that same descriptor.
        let master = unsafe { AsyncFd::register(pty.master) }.map_err(|e| e.into_parts().1)?;
        Ok(Port {
            master,
            slave: pty.slave,
            tty: pty.tty,
        })
    }

    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes everything, unless nobody reads for a while: then, as on a real line with
    /// no listener, the rest is lost.
    async fn write(&self, mut data: &[u8]) {
        while !data.is_empty() {
            let ready = tokio::time::timeout(Duration::from_millis(200), self.master.writable());
            let mut guard = match ready.await {
                Ok(Ok(guard)) => guard,
                Ok(Err(err)) => {
                    tracing::debug!(%err, "simulated modem: pty not writable");
                    return;
                }
                Err(_) => {
                    tracing::debug!(
                        dropped = data.len(),
                        "simulated modem: nobody reads, output dropped"
                    );
                    return;
                }
            };
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = data.get(n..).unwrap_or_default(),
                Ok(Err(err)) => {
                    tracing::debug!(%err, "simulated modem: pty write failed");
                    return;
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Clears the exclusive-use flag a `serialport` client leaves behind (see the module
    /// documentation).
    fn allow_reopen(&self) {
        // SAFETY: TIOCNXCL takes no argument and only clears a flag of the tty behind a
        // descriptor this struct owns and keeps open.
        let rc = unsafe { nix::libc::ioctl(self.slave.as_raw_fd(), nix::libc::TIOCNXCL) };
        if rc != 0 {
            tracing::debug!(err = %io::Error::last_os_error(), "simulated modem: TIOCNXCL failed");
        }
    }

    /// Drops output nobody has read for a long while (no client attached), as a line with
    /// no listener would, so that the next client does not get a backlog of stale noise.
    fn drop_stale_output(&self) {
        let mut queued: nix::libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which points at `queued`.
        let rc = unsafe {
            nix::libc::ioctl(
                self.slave.as_raw_fd(),
                nix::libc::FIONREAD,
                &mut queued as *mut nix::libc::c_int,
            )
        };
        if rc == 0 && queued > 2048 {
            tracing::debug!(queued, "simulated modem: no reader, flushing stale output");
            let _ = tcflush(self.slave.as_fd(), FlushArg::TCIFLUSH);
        }
    }
}

struct Runner {
    shared: Arc<Shared>,
    port: Option<Port>,
    control: mpsc::UnboundedReceiver<Control>,
    unplug_at: Option<tokio::time::Instant>,
    replug_at: Option<tokio::time::Instant>,
    _link: LinkGuard,
}

/// How long a resetting USB modem stays on the bus after its OK.
const RESET_UNPLUG_DELAY: Duration = Duration::from_millis(250);

impl Runner {
    async fn run(mut self) {
        let mut housekeeping = tokio::time::interval(Duration::from_millis(100));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; 4096];
        loop {
            self.pump().await;
            let wakeup = lock(&self.shared.modem).next_wakeup();
            tokio::select! {
                control = self.control.recv() => match control {
                    None | Some(Control::Shutdown) => break,
                    Some(Control::Unplug(ack)) => {
                        self.unplug(true);
                        let _ = ack.send(());
                    }
                    Some(Control::Replug(ack)) => {
                        let _ = ack.send(self.replug(true));
                    }
                },
                () = self.shared.wake.notified() => {}
                () = sleep_until(wakeup) => {}
                () = sleep_until_tokio(self.unplug_at) => {
                    self.unplug_at = None;
                    self.unplug(false);
                }
                () = sleep_until_tokio(self.replug_at), if self.unplug_at.is_none() => {
                    self.replug_at = None;
                    if let Err(err) = self.replug(true) {
                        tracing::warn!(%err, "simulated modem: could not come back after its reset");
                    }
                }
                read = read_port(self.port.as_ref(), &mut buf) => match read {
                    Ok(0) => {}
                    Ok(n) => {
                        if let Some(port) = &self.port {
                            port.allow_reopen();
                        }
                        let bytes = buf.get(..n).unwrap_or_default();
                        lock(&self.shared.modem).input(bytes, now());
                    }
                    Err(err) => {
                        // With the slave held open this should not happen; never spin on it.
                        tracing::debug!(%err, "simulated modem: pty read failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = housekeeping.tick() => {
                    if let Some(port) = &self.port {
                        port.allow_reopen();
                        port.drop_stale_output();
                    }
                }
            }
        }
        tracing::info!("simulated modem stopped");
        // Dropping `self` closes the pty; the link guard removes the link.
    }

    /// Writes what the modem has said and acts on what it reported.
    async fn pump(&mut self) {
        let (out, notices) = {
            let mut modem = lock(&self.shared.modem);
            (modem.take_output(now()), modem.take_notices())
        };
        if let Some(port) = &self.port {
            if !out.is_empty() {
                port.write(&out).await;
            }
        }
        for notice in notices {
            match notice {
                Notice::Accepted(sms) => {
                    tracing::info!(
                        to = %crate::mask::phone(&sms.destination),
                        mr = sms.mr,
                        "simulated modem accepted an SMS"
                    );
                    let _ = self.shared.events.send(SimEvent::Received(sms));
                }
                Notice::Cancelled => {
                    let _ = self.shared.events.send(SimEvent::Cancelled);
                }
                Notice::Reset {
                    reenumerates,
                    boot_time,
                } => {
                    let _ = self.shared.events.send(SimEvent::Reset);
                    if reenumerates {
                        // A USB modem drops off the bus a moment after its OK (a hang-up
                        // discards what the client has not read yet, so the OK must have
                        // time to be read) and comes back on the bus early in its boot;
                        // the model boots from the replug, so its boot messages reach the
                        // new port.
                        let unplug_at = tokio::time::Instant::now() + RESET_UNPLUG_DELAY;
                        self.unplug_at = Some(unplug_at);
                        self.replug_at = Some(unplug_at + boot_time / 2);
                    }
                }
            }
        }
    }

    fn unplug(&mut self, power_off: bool) {
        if power_off {
            lock(&self.shared.modem).power_off();
            self.unplug_at = None;
            self.replug_at = None;
        }
        if self.port.take().is_none() {
            return;
        }
        if let Some(link) = &self.shared.link {
            remove_link(link);
        }
        *lock(&self.shared.tty) = None;
        tracing::info!("simulated modem unplugged");
        let _ = self.shared.events.send(SimEvent::Unplugged);
    }

    fn replug(&mut self, power_on: bool) -> io::Result<PathBuf> {
        if let Some(port) = &self.port {
            return Ok(port.tty.clone());
        }
        let last = lock(&self.shared.last_tty).clone();
        let pty = Pty::open(Some(&last))?;
        if let Some(link) = &self.shared.link {
            point_link(link, &pty.tty)?;
        }
        let tty = pty.tty.clone();
        self.port = Some(Port::new(pty)?);
        *lock(&self.shared.tty) = Some(tty.clone());
        *lock(&self.shared.last_tty) = tty.clone();
        if power_on {
            lock(&self.shared.modem).power_on(now());
        }
        tracing::info!(tty = %tty.display(), "simulated modem plugged in");
        let _ = self
            .shared
            .events
            .send(SimEvent::Replugged { tty: tty.clone() });
        Ok(tty)
    }
}

/// The model's clock: tokio's, so that a test that pauses tokio's time pauses the modem's
/// too (without tokio's test-util this is simply the system's monotonic clock).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn read_port(port: Option<&Port>, buf: &mut [u8]) -> io::Result<usize> {
    match port {
        Some(port) => port.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_tokio(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Points `link` at `target`, atomically, replacing a symlink but never a real file.
fn point_link(link: &Path, target: &Path) -> io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if !meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a symlink; not replacing it",
                    link.display()
                ),
            ));
        }
    }
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes `link` if it is a symlink.
fn remove_link(link: &Path) {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(link);
    }
}
