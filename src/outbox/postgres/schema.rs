//! The PostgreSQL schema and its migration: a versioned table (`smsbridge_schema`) changed
//! only under a session advisory lock, so several boxes starting at once migrate one after
//! the other and the later ones find the work done.
//!
//! Times are Unix epoch milliseconds (`bigint`) on the database's clock
//! (`smsbridge_now_ms()`), so every box agrees on leases and expiry.

use tokio_postgres::Client;

/// The schema version this code reads and writes.
pub const PG_SCHEMA_VERSION: i32 = 1;

/// The session advisory lock held while migrating ("SMSB" 0001; the two-key advisory
/// locks of the per-number and per-key checks live in another key space).
const MIGRATION_LOCK: i64 = 0x534d_5342_0000_0001;

/// Version 1. Like the SQLite schema, `body` and the full `recipient` live only in
/// `messages` (no index holds them); a final message has both redacted in the transaction
/// that makes it final.
const SCHEMA_V1: &str = "
CREATE FUNCTION smsbridge_now_ms() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;

CREATE TABLE messages (
    id              bigserial PRIMARY KEY,
    recipient       text     NOT NULL,  -- E.164 until final, then masked
    body            text,               -- NULL once final (redacted)
    parts           smallint NOT NULL CHECK (parts BETWEEN 1 AND 255),
    concat_ref      integer  NOT NULL CHECK (concat_ref BETWEEN 0 AND 65535),
    state           text     NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'failed', 'expired', 'unknown')),
    attempts        integer  NOT NULL DEFAULT 0,
    parts_sent      smallint NOT NULL DEFAULT 0,
    created_at      bigint   NOT NULL,  -- Unix epoch ms on the database's clock, like every *_at
    expires_at      bigint   NOT NULL,
    next_attempt_at bigint   NOT NULL,
    node            text,               -- the box of the latest attempt
    modem           text,               -- its modem
    last_error      text,
    sent_at         bigint,
    final_at        bigint,
    signature       bytea    UNIQUE,    -- the OwnID signature: replay protection, fleet-wide
    plan            text,
    lease_owner     text,               -- the box whose claim this is, while sending
    lease_until     bigint,             -- its lease lapses then unless renewed
    lease_token     bigint   NOT NULL DEFAULT 0  -- bumped at every claim and takeover: fencing
);
CREATE INDEX messages_queued_due ON messages (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX messages_queued_expiry ON messages (expires_at) WHERE state = 'queued';
CREATE INDEX messages_sending_lease ON messages (lease_until) WHERE state = 'sending';
CREATE INDEX messages_final ON messages (final_at) WHERE final_at IS NOT NULL;
CREATE INDEX messages_sent ON messages (sent_at) WHERE sent_at IS NOT NULL;
-- Redacted row versions are dead tuples until VACUUM: have autovacuum visit soon.
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.0,
                          autovacuum_vacuum_threshold = 500);

CREATE TABLE parts (
    message_id  bigint   NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    part_index  smallint NOT NULL,
    node        text     NOT NULL,
    modem       text     NOT NULL,
    mr          smallint NOT NULL CHECK (mr BETWEEN 0 AND 255),
    sent_at     bigint   NOT NULL,
    delivery    text     NOT NULL DEFAULT 'pending'
                    CHECK (delivery IN ('pending', 'delivered', 'failed')),
    status_code smallint,
    reported_at bigint,
    PRIMARY KEY (message_id, part_index)
);
CREATE INDEX parts_by_reference ON parts (node, modem, mr, sent_at);

CREATE TABLE dedup (
    key         bytea  PRIMARY KEY,   -- SHA-256, never the code or the number
    message_id  bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX dedup_expiry ON dedup (expires_at);

CREATE TABLE rate_events (            -- one row per accepted message with a rate check
    key         bytea  NOT NULL,      -- keyed hash of the number, never the number
    at          bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (key, at);
CREATE INDEX rate_events_expiry ON rate_events (expires_at);

CREATE TABLE nodes (                  -- the fleet: one row per box, its heartbeat
    name        text   PRIMARY KEY,
    last_seen   bigint NOT NULL,
    modems      text   NOT NULL DEFAULT '',
    queue_local bigint NOT NULL DEFAULT 0
);
";

/// The tables the backend writes, for the privilege check at open.
pub const TABLES: [&str; 5] = ["messages", "parts", "dedup", "rate_events", "nodes"];

/// Brings the schema to [`PG_SCHEMA_VERSION`] under the migration lock.
pub async fn migrate(client: &mut Client) -> Result<(), MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = migrate_locked(client).await;
    // Closing the session releases the lock too; unlock now for a long-lived connection.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

/// What went wrong: the database's own error, or a refusal of ours.
pub enum MigrateError {
    Db(tokio_postgres::Error),
    Refused(String),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Db(e)
    }
}

async fn migrate_locked(client: &mut Client) -> Result<(), MigrateError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('smsbridge_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    let version: i32 = if exists {
        client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM smsbridge_schema",
                &[],
            )
            .await?
            .get(0)
    } else {
        let foreign: bool = client
            .query_one("SELECT to_regclass('messages') IS NOT NULL", &[])
            .await?
            .get(0);
        if foreign {
            return Err(MigrateError::Refused(
                "the database has a table \"messages\" but no smsbridge_schema: \
                 not an smsbridge database (another program's?)"
                    .to_owned(),
            ));
        }
        0
    };
    match version {
        0 => {
            let tx = client.transaction().await?;
            if !exists {
                tx.batch_execute(
                    "CREATE TABLE smsbridge_schema (
                         version     integer     NOT NULL,
                         migrated_at timestamptz NOT NULL DEFAULT now()
                     );",
                )
                .await?;
            }
            tx.batch_execute(SCHEMA_V1).await?;
            tx.execute(
                "INSERT INTO smsbridge_schema (version) VALUES ($1)",
                &[&PG_SCHEMA_VERSION],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        PG_SCHEMA_VERSION => Ok(()),
        newer => Err(MigrateError::Refused(format!(
            "schema version {newer} is newer than this smsbridge understands \
             ({PG_SCHEMA_VERSION}); run the newer smsbridge on every box"
        ))),
    }
}
