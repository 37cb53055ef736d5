//! The state directory at start: one `serve` per `state_dir` (an exclusive `flock` on
//! `state_dir/smsbridge.lock`, held for the life of the process and released by the kernel
//! however it ends), the outbox's integrity (`PRAGMA quick_check`, which reads every page
//! but skips the index-against-table cross-check, so it stays quick on an SD card), and
//! warnings about state files others can read. Each refusal is one line naming the fix.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, OpenFlags};

/// The lock file's name inside `state_dir`.
pub const LOCK_FILE: &str = "smsbridge.lock";

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another smsbridge is already serving state_dir {} (it holds {}); stop it first \
         (systemctl stop smsbridge) or give this one its own state_dir",
        dir.display(), lock.display()
    )]
    Locked { dir: PathBuf, lock: PathBuf },
    #[error("cannot lock {}: {source}", lock.display())]
    Lock {
        lock: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the outbox {} is damaged ({detail}); stop the service, move the file and its -wal \
         and -shm aside (mv {0}* /root/), and start again with an empty outbox \
         (or try: sqlite3 {0} .recover)",
        path.display()
    )]
    Damaged { path: PathBuf, detail: String },
}

/// The held lock: `state_dir` is ours while this lives.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

/// Takes the exclusive lock on `dir` (created 0700 if missing), without waiting.
pub fn lock(dir: &Path) -> Result<StateLock, StateError> {
    let lock = dir.join(LOCK_FILE);
    let io = |source| StateError::Lock {
        lock: lock.clone(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock)
        .map_err(io)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(held) => Ok(StateLock { _lock: held }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(StateError::Locked {
            dir: dir.to_owned(),
            lock,
        }),
        Err((_, errno)) => Err(io(std::io::Error::from(errno))),
    }
}

/// [`check_integrity`] unless the outbox's last stop was orderly and the file is unchanged
/// since (`outbox::clean_stop`): then `None`, and the caller runs the check once it
/// serves ([`check_integrity`] on a second connection). Its cost grows with the history
/// (every page is read), so a clean restart does not pay it before serving.
pub fn check_integrity_unless_clean(path: &Path) -> Result<Option<Duration>, StateError> {
    if crate::outbox::clean_stop::take(path) {
        return Ok(None);
    }
    check_integrity(path).map(Some)
}

/// Runs `PRAGMA quick_check` on an existing outbox; a missing file is a new outbox and
/// passes. Returns how long the check took.
pub fn check_integrity(path: &Path) -> Result<Duration, StateError> {
    let started = Instant::now();
    if !path.exists() {
        return Ok(started.elapsed());
    }
    let damaged = |detail: String| StateError::Damaged {
        path: path.to_owned(),
        detail,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| damaged(e.to_string()))?;
    let _ = conn.busy_timeout(Duration::from_secs(5));
    // Every page is read once: a small page cache is enough, and keeps the check (in the
    // background beside a serving outbox after a clean stop) from growing the RSS.
    let _ = conn.pragma_update(None, "cache_size", -64);
    let mut statement = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| damaged(e.to_string()))?;
    let lines: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    match lines.as_slice() {
        [ok] if ok == "ok" => Ok(started.elapsed()),
        [] => Err(damaged("quick_check returned nothing".to_owned())),
        problems => Err(damaged(problems.join("; "))),
    }
}

/// Warnings about state files that others than the service's user may read: the outbox
/// holds numbers and codes until they are sent.
pub fn permission_warnings(dir: &Path, outbox: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.mode() & 0o007 != 0 {
            warnings.push(format!(
                "state_dir {} is open to other users (mode {:o}); fix: chmod 700 {0}",
                dir.display(),
                meta.mode() & 0o777,
            ));
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = outbox.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        if let Ok(meta) = std::fs::metadata(&file) {
            if meta.mode() & 0o077 != 0 {
                warnings.push(format!(
                    "{} is readable by others than its owner (mode {:o}); fix: chmod 600 {0}",
                    file.display(),
                    meta.mode() & 0o777,
                ));
            }
        }
    }
    warnings
}

/// The file of the rate-limit windows inside `state_dir`: one line per number, its keyed
/// hash then its acceptance times (Unix ms). No phone number is written.
pub const RATE_FILE: &str = "ratelimit.windows";

/// Writes the limiter's windows at `now_ms` atomically (a temporary file, then rename).
pub fn save_rate_windows(
    dir: &Path,
    limiter: &crate::ratelimit::RateLimiter,
    now_ms: u64,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = String::new();
    for (slot, times) in limiter.windows(now_ms) {
        text.push_str(&slot);
        for t in times {
            text.push(' ');
            text.push_str(&t.to_string());
        }
        text.push('\n');
    }
    let path = dir.join(RATE_FILE);
    let tmp = dir.join(format!("{RATE_FILE}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// Puts the saved windows back into `limiter`; a missing or unreadable file restores
/// nothing (the limits start empty, as before), bad lines are skipped. Returns how many
/// numbers were restored.
pub fn load_rate_windows(
    dir: &Path,
    limiter: &mut crate::ratelimit::RateLimiter,
    now_ms: u64,
) -> usize {
    let Ok(text) = std::fs::read_to_string(dir.join(RATE_FILE)) else {
        return 0;
    };
    let before = limiter.tracked();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(slot) = fields.next() else { continue };
        let times: Vec<u64> = fields.filter_map(|t| t.parse().ok()).collect();
        limiter.restore(slot.to_owned(), times, now_ms);
    }
    limiter.tracked() - before
}

/// Keys shorter than this draw a warning; OwnID's console gives 32 bytes.
pub const SHORT_KEY_BYTES: usize = 16;
/// Keys shorter than this are refused: they can be guessed from one signed request.
pub const MIN_KEY_BYTES: usize = 8;

/// A shared secret too short to be a key: its origin and length (never its bytes).
#[derive(Debug)]
pub struct WeakSecret {
    pub origin: crate::config::SecretSource,
    pub len: usize,
}

/// The operator's foot-guns, said aloud at start: a secret file others can read, a short
/// key, an admin listener off loopback. A key shorter than [`MIN_KEY_BYTES`] is refused.
pub fn hygiene_warnings(
    config: &crate::config::Config,
    secret: &crate::config::LoadedSecret,
) -> Result<Vec<String>, WeakSecret> {
    use crate::config::SecretSource;
    let mut warnings = Vec::new();
    let len = secret.secret.key_len();
    if len < MIN_KEY_BYTES {
        return Err(WeakSecret {
            origin: secret.source.clone(),
            len,
        });
    }
    if len < SHORT_KEY_BYTES {
        warnings.push(format!(
            "the shared secret from {} is only {len} bytes; use the Shared Secret the OwnID console generates (32 bytes)",
            secret.source
        ));
    }
    if let SecretSource::File(path) = &secret.source {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.mode() & 0o077 != 0 {
                warnings.push(format!(
                    "the shared secret file {} is readable by other users (mode {:o}); fix: chmod 600 {0} (owner root; the unit passes it as a credential)",
                    path.display(),
                    meta.mode() & 0o777
                ));
            }
        }
    }
    if !config.http.admin_listen.ip().is_loopback() {
        warnings.push(format!(
            "http.admin_listen is {}, not a loopback address: the status page and metrics are reachable from the network; fix: admin_listen = \"127.0.0.1:{}\"",
            config.http.admin_listen,
            config.http.admin_listen.port()
        ));
    }
    Ok(warnings)
}
