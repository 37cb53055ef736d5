//! The clean-stop marker: a small file beside the database, written by the writer after
//! an orderly stop (every commit checkpointed into the database file, the WAL emptied, the
//! connection closed), holding the file's size and modification time at that moment.
//!
//! At the next start [`take`] removes it and says whether the file is still exactly as
//! that stop left it. Then the start may skip reading every page for `PRAGMA
//! quick_check` before opening (seconds for a million rows; the service runs the same
//! check in the background once it serves instead). After a crash, a power cut, or any
//! change to the file since, there is no marker or it does not match: the full check runs
//! before anything opens the file, as always. The marker is removed before the outbox is
//! opened, so it never outlives the run that trusted it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn marker(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".clean-stop");
    PathBuf::from(name)
}

fn fingerprint(db: &Path) -> Option<String> {
    let meta = std::fs::metadata(db).ok()?;
    Some(format!(
        "v1 size={} mtime={}.{:09} ino={}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

/// Writes the marker for `db` (after an orderly stop). Failing to write it only costs the
/// next start its full check.
pub(super) fn mark(db: &Path) {
    let wal_empty = std::fs::metadata(wal(db)).map_or(true, |m| m.len() == 0);
    if let (true, Some(print)) = (wal_empty, fingerprint(db)) {
        let _ = std::fs::write(marker(db), print);
    }
}

/// The `-wal` file beside `db`.
pub(super) fn wal(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Removes the marker of `db` and says whether the last stop was orderly and the file
/// (with an empty or no WAL) is unchanged since.
pub fn take(db: &Path) -> bool {
    let path = marker(db);
    let Ok(saved) = std::fs::read_to_string(&path) else {
        return false;
    };
    let removed = std::fs::remove_file(&path).is_ok();
    let wal_empty = std::fs::metadata(wal(db)).map_or(true, |m| m.len() == 0);
    removed && wal_empty && fingerprint(db).is_some_and(|now| now == saved)
}
