//! Opening the database: file permissions, connection settings, and the schema with its
//! `user_version` migration check.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The schema version this code reads and writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// `PRAGMA application_id` of an outbox: "SMSB". Tells our file apart from another
/// program's SQLite database given by mistake.
const APPLICATION_ID: i64 = 0x534d_5342;

/// The schema, version 1.
///
/// `messages.body` and the full `recipient` live only in this table (no index holds them),
/// so redacting the row and checkpointing the WAL removes them from the disk.
const SCHEMA_V1: &str = "
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT    NOT NULL,  -- E.164 until final, then masked
    body            TEXT,              -- NULL once final (redacted)
    parts           INTEGER NOT NULL CHECK (parts BETWEEN 1 AND 255),
    concat_ref      INTEGER NOT NULL CHECK (concat_ref BETWEEN 0 AND 65535),
    state           TEXT    NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'failed', 'expired', 'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    parts_sent      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,  -- Unix epoch milliseconds, like every *_at
    expires_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    modem           TEXT,              -- the modem of the latest attempt
    last_error      TEXT,
    sent_at         INTEGER,
    final_at        INTEGER,
    signature       BLOB UNIQUE        -- the OwnID signature: replay protection
);
CREATE INDEX messages_queued_due ON messages (next_attempt_at) WHERE state = 'queued';
CREATE INDEX messages_queued_expiry ON messages (expires_at) WHERE state = 'queued';
CREATE INDEX messages_final ON messages (final_at) WHERE final_at IS NOT NULL;

CREATE TABLE parts (
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    part_index  INTEGER NOT NULL,
    modem       TEXT    NOT NULL,
    mr          INTEGER NOT NULL CHECK (mr BETWEEN 0 AND 255),
    sent_at     INTEGER NOT NULL,
    delivery    TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (delivery IN ('pending', 'delivered', 'failed')),
    status_code INTEGER,
    reported_at INTEGER,
    PRIMARY KEY (message_id, part_index)
) WITHOUT ROWID;
CREATE INDEX parts_by_reference ON parts (modem, mr, sent_at);
";

/// Version 2 adds duplicate suppression for the `[[endpoint]]` kinds: a hashed key
/// (endpoint, number, code or text — never the code itself) per accepted message, kept
/// until `expires_at`. Additive: a version 1 database gains the table at open.
const SCHEMA_V2: &str = "
CREATE TABLE dedup (
    key         BLOB    PRIMARY KEY,   -- SHA-256, never the code or the number
    message_id  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dedup_expiry ON dedup (expires_at);
";
/// Version 3, additive: the encoding plan decided at acceptance (see
/// `Outbox::set_encoding_plan`); NULL for messages accepted before it existed.
const SCHEMA_V3: &str = "ALTER TABLE messages ADD COLUMN plan TEXT;";
/// Version 4, additive: what start-up and the status page read no longer grows with the
/// history of final rows. `state_counts` holds the per-state counts, kept by triggers in
/// the transaction of every change (so an edit in the sqlite3 shell keeps them right too),
/// and filled once here (idempotent, so a database that has some of it takes the rest); the partial index on `sending` rows lets recovery find them
/// without a scan; the index on `sent_at` serves the sends-per-minute chart.
const SCHEMA_V4: &str = "
CREATE TABLE IF NOT EXISTS state_counts (
    state   TEXT    PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO state_counts (state, n) VALUES
    ('queued', 0), ('sending', 0), ('sent', 0), ('failed', 0), ('expired', 0), ('unknown', 0);
UPDATE state_counts SET n = (SELECT count(*) FROM messages WHERE messages.state = state_counts.state);
CREATE TRIGGER IF NOT EXISTS messages_count_insert AFTER INSERT ON messages BEGIN
    UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER IF NOT EXISTS messages_count_update AFTER UPDATE OF state ON messages
    WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER IF NOT EXISTS messages_count_delete AFTER DELETE ON messages BEGIN
    UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE INDEX IF NOT EXISTS messages_sending ON messages (id) WHERE state = 'sending';
CREATE INDEX IF NOT EXISTS messages_sent_at ON messages (sent_at) WHERE sent_at IS NOT NULL;
";

/// The page cache of the outbox's connection, in KiB: bounded whatever the outbox holds.
/// Half SQLite's default: what the writer touches is the queue's rows and the partial
/// indexes' pages, a few hundred KiB even with a million final rows (issue 12 item 5).
const CACHE_KIB: i64 = 1024;

/// Opens (creating if needed) the database at `path` with the outbox's settings and
/// brings the schema to [`SCHEMA_VERSION`]. Errors are plain strings for `OutboxError::Open`.
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, String> {
    prepare_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    configure(&conn, busy_timeout).map_err(|e| e.to_string())?;
    // Room for every statement the outbox prepares, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&conn)?;
    Ok(conn)
}

/// Creates the parent directory (mode 0700) and an empty database file (mode 0600) if they
/// do not exist: the file holds codes until they are sent, and SQLite gives its `-wal`
/// and `-shm` files the database file's permissions.
fn prepare_file(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create the file: {e}")),
    }
}

fn configure(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    // WAL: readers never block the writer, and a commit is one append plus one fsync.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database refused WAL mode (journal_mode is {mode})"
        )));
    }
    // FULL: in WAL mode the WAL is synced at every commit, so a commit survives a power
    // cut; NORMAL would only sync at checkpoints.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted or overwritten content is zeroed, so a redacted text does not linger in
    // free space of a page or on the free list.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Temporary tables and statement journals stay in memory, never in temp files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(())
}

fn migrate(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables != 0) {
        return Err("not an smsbridge outbox (another program's database?)".to_owned());
    }
    match version {
        0 => {
            let sql = format!(
                "BEGIN IMMEDIATE;
                 {SCHEMA_V1}
                 {SCHEMA_V2}
                 {SCHEMA_V3}
                 {SCHEMA_V4}
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {SCHEMA_VERSION};
                 COMMIT;"
            );
            conn.execute_batch(&sql).map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                format!("cannot create the schema: {e}")
            })
        }
        1..=3 => {
            // Each step is additive; a database takes the ones it lacks, in one transaction.
            let steps = match version {
                1 => format!("{SCHEMA_V2}\n{SCHEMA_V3}\n{SCHEMA_V4}"),
                2 => format!("{SCHEMA_V3}\n{SCHEMA_V4}"),
                _ => SCHEMA_V4.to_owned(),
            };
            let sql = format!(
                "BEGIN IMMEDIATE;
                 {steps}
                 PRAGMA user_version = {SCHEMA_VERSION};
                 COMMIT;"
            );
            conn.execute_batch(&sql).map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                format!("cannot migrate the schema to version {SCHEMA_VERSION}: {e}")
            })
        }
        SCHEMA_VERSION => Ok(()),
        newer => Err(format!(
            "schema version {newer} is newer than this smsbridge understands ({SCHEMA_VERSION}); \
             run the newer smsbridge or restore a backup"
        )),
    }
}
