//! Duplicate suppression in the outbox (schema version 2) on real SQLite files: the window
//! judged by the time the caller passes, the key kept and never the code, and a version 1
//! database migrated in place with its messages.

use std::path::Path;

use smsbridge::outbox::{MessageState, NewMessage, Outbox, OutboxOptions, SCHEMA_VERSION};

const T0: i64 = 1_700_000_000_000;
const UK: &str = "+447400123456";

fn message(at_ms: i64) -> NewMessage {
    NewMessage {
        to: UK.to_owned(),
        text: "Your code is 561166".to_owned(),
        parts: 1,
        concat_ref: 7,
        created_at_ms: at_ms,
        expires_at_ms: at_ms + 600_000,
        signature: None,
        rate: None,
    }
}

fn open(path: &Path) -> Outbox {
    Outbox::open(path, OutboxOptions::default()).unwrap()
}

#[tokio::test]
async fn a_key_within_its_window_is_a_duplicate_and_after_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    let outbox = open(&path);
    let key = [0xAB; 32];
    let other = [0xCD; 32];
    let first = outbox
        .enqueue_dedup(message(T0), key, T0 + 30_000)
        .await
        .unwrap();
    assert!(!first.duplicate);
    let retry = outbox
        .enqueue_dedup(message(T0 + 29_999), key, T0 + 59_999)
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.id, first.id);
    let different = outbox
        .enqueue_dedup(message(T0 + 1), other, T0 + 30_001)
        .await
        .unwrap();
    assert!(!different.duplicate);
    assert_eq!(outbox.counts().queued, 2, "a duplicate stored nothing");
    // The window is kept across a restart.
    outbox.shutdown().await.unwrap();
    let outbox = open(&path);
    let again = outbox
        .enqueue_dedup(message(T0 + 20_000), key, T0 + 50_000)
        .await
        .unwrap();
    assert!(again.duplicate);
    // At the end of the window the same key is a new message.
    let later = outbox
        .enqueue_dedup(message(T0 + 30_000), key, T0 + 60_000)
        .await
        .unwrap();
    assert!(!later.duplicate);
    assert_ne!(later.id, first.id);
    assert_eq!(outbox.counts().queued, 3);
    outbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_retries_store_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir.path().join("outbox.sqlite3"));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                outbox
                    .enqueue_dedup(message(T0 + i), [1; 32], T0 + 30_000)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut stored = 0;
    for h in handles {
        stored += usize::from(!h.await.unwrap().duplicate);
    }
    assert_eq!(stored, 1);
    assert_eq!(outbox.counts().queued, 1);
    outbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_version_1_database_is_migrated_with_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    let outbox = open(&path);
    outbox.enqueue(message(T0)).await.unwrap();
    outbox.shutdown().await.unwrap();
    // Make it what version 1 wrote: no dedup table, no plan column, user_version 1.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE dedup; ALTER TABLE messages DROP COLUMN plan; PRAGMA user_version = 1;",
        )
        .unwrap();
    let outbox = open(&path);
    assert_eq!(outbox.counts().queued, 1);
    let fresh = outbox
        .enqueue_dedup(message(T0 + 1), [9; 32], T0 + 30_000)
        .await
        .unwrap();
    assert!(!fresh.duplicate);
    let recent = outbox.recent(10).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert!(recent.iter().all(|m| m.state == MessageState::Queued));
    outbox.shutdown().await.unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // Version 4 added the trigger-kept state counts (issue 12 item 5).
    assert_eq!(SCHEMA_VERSION, 4);
}

/// A version-2 database (dedup, no stored plans) gains the plan column and keeps its keys.
#[tokio::test]
async fn a_version_2_database_is_migrated_with_its_dedup_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = open(&path);
    let first = outbox
        .enqueue_dedup(message(T0), [7; 32], T0 + 30_000)
        .await
        .unwrap();
    assert!(!first.duplicate);
    outbox.shutdown().await.unwrap();
    drop(outbox);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE messages DROP COLUMN plan; PRAGMA user_version = 2;")
        .unwrap();
    let outbox = open(&path);
    let again = outbox
        .enqueue_dedup(message(T0 + 1), [7; 32], T0 + 30_000)
        .await
        .unwrap();
    assert!(again.duplicate, "the key survived the migration");
    assert_eq!(again.id, first.id);
    outbox.shutdown().await.unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
