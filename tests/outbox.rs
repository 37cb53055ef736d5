//! The outbox against real SQLite files in a temporary directory: durability across
//! reopening and across `kill -9`, group commit, the state machine, replay protection,
//! capacity, expiry, crash recovery, redaction down to the raw file bytes, delivery reports
//! and purging.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smsbridge::outbox::{
    DeliveryState, MessageId, MessageState, NewMessage, Outbox, OutboxError, OutboxOptions,
    QueueCounts, RetryOutcome, RetryPolicy,
};

const T0: i64 = 1_700_000_000_000;
const TTL: i64 = 600_000;
const US: &str = "+12015550123";
const UK: &str = "+447400123456";
const DE: &str = "+4915123456789";

fn message(to: &str, text: &str, parts: u8, signature: Option<&[u8]>) -> NewMessage {
    NewMessage {
        to: to.to_owned(),
        text: text.to_owned(),
        parts,
        concat_ref: 0x1234,
        created_at_ms: T0,
        expires_at_ms: T0 + TTL,
        signature: signature.map(<[u8]>::to_vec),
        rate: None,
    }
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("outbox.sqlite3")
}

fn open(path: &Path) -> Outbox {
    Outbox::open(path, OutboxOptions::default()).expect("outbox opens")
}

fn open_with(path: &Path, opts: OutboxOptions) -> Outbox {
    Outbox::open(path, opts).expect("outbox opens")
}

/// The database file and its `-wal` and `-shm` companions that contain `needle`.
fn files_containing(db: &Path, needle: &str) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .filter(|path| {
            std::fs::read(path).is_ok_and(|bytes| {
                bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            })
        })
        .collect()
}

/// The stored text and number of a message, read with a separate connection.
fn raw_row(db: &Path, id: MessageId) -> (Option<String>, String) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT body, recipient FROM messages WHERE id = ?1",
        [id.0],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .unwrap()
}

#[tokio::test]
async fn enqueued_messages_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let a = outbox
        .enqueue(message(US, "Your code is 1234", 1, Some(b"sig-a")))
        .await
        .unwrap();
    let b = outbox
        .enqueue(message(UK, "Ihr Code lautet 5678 – äöü", 2, Some(b"sig-b")))
        .await
        .unwrap();
    assert!(b > a);
    outbox.shutdown().await.unwrap();
    assert_eq!(
        outbox.enqueue(message(DE, "x", 1, None)).await,
        Err(OutboxError::Closed)
    );

    let outbox = open(&db);
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            queued: 2,
            ..QueueCounts::default()
        }
    );
    let first = outbox
        .claim_next("m0", T0)
        .await
        .unwrap()
        .expect("a is due");
    assert_eq!(
        (first.id, first.to.as_str(), first.text.as_str()),
        (a, US, "Your code is 1234")
    );
    let second = outbox
        .claim_next("m0", T0)
        .await
        .unwrap()
        .expect("b is due");
    assert_eq!(second.id, b);
    assert_eq!(second.to, UK);
    assert_eq!(second.text, "Ihr Code lautet 5678 – äöü");
    assert_eq!(
        (second.parts, second.parts_sent, second.concat_ref),
        (2, 0, 0x1234)
    );
    assert_eq!((second.created_at_ms, second.expires_at_ms), (T0, T0 + TTL));
    assert_eq!(second.attempt, 1);
}

#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let _outbox = open(&db);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(db.parent().unwrap()), 0o700);
}

/// 200 concurrent enqueues while another connection holds the write lock: they all wait in
/// the writer's queue, and once the lock is released they share at most two commits (the
/// batch the writer had already started, and everything else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let before = outbox.stats();

    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let sig = format!("sig-{i}");
                outbox
                    .enqueue(message(US, &format!("code {i}"), 1, Some(sig.as_bytes())))
                    .await
            })
        })
        .collect();
    while outbox.stats().submitted < before.submitted + 200 {
        tokio::task::yield_now().await;
    }
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);

    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().expect("enqueue succeeds"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let after = outbox.stats();
    assert!(
        after.commits - before.commits <= 2,
        "{before:?} → {after:?}"
    );
    assert_eq!(outbox.counts().queued, 200);
}

/// The same burst without a lock: prints how many commits 200 concurrent enqueues took on
/// this machine (measured, not asserted; run with `--nocapture` to see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueue_burst_figures() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let before = outbox.stats();
    let started = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let sig = format!("sig-{i}");
                let t = Instant::now();
                let id = outbox
                    .enqueue(message(US, "code", 1, Some(sig.as_bytes())))
                    .await;
                (id, t.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        let (id, latency) = task.await.unwrap();
        id.expect("enqueue succeeds");
        latencies.push(latency);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let after = outbox.stats();
    eprintln!(
        "200 concurrent enqueues: {} commits in {} batches (largest {}), {:.1} ms in all, \
         per-enqueue latency p50 {:.2} ms, max {:.2} ms",
        after.commits - before.commits,
        after.batches - before.batches,
        after.largest_batch,
        elapsed.as_secs_f64() * 1e3,
        latencies[100].as_secs_f64() * 1e3,
        latencies[199].as_secs_f64() * 1e3,
    );
    // For comparison: one enqueue at a time, each paying its own commit.
    let sequential = Instant::now();
    for i in 0..50 {
        let sig = format!("seq-{i}");
        outbox
            .enqueue(message(US, "code", 1, Some(sig.as_bytes())))
            .await
            .unwrap();
    }
    eprintln!(
        "50 sequential enqueues: {:.2} ms each on average (one commit each)",
        sequential.elapsed().as_secs_f64() * 1e3 / 50.0
    );
    assert_eq!(outbox.counts().queued, 250);
}

#[tokio::test]
async fn a_message_goes_through_its_states() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let id = outbox
        .enqueue(message(DE, "Dein Code: 4711", 3, None))
        .await
        .unwrap();
    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!(summary.state, MessageState::Queued);
    assert_eq!(summary.to_masked, "+49*********89");

    // Not due before its creation time; due at it.
    assert!(outbox.claim_next("m0", T0 - 1).await.unwrap().is_none());
    let claimed = outbox.claim_next("m0", T0).await.unwrap().unwrap();
    assert_eq!(
        (
            claimed.id,
            claimed.attempt,
            claimed.previous_modem.as_deref()
        ),
        (id, 1, None)
    );
    assert_eq!(outbox.counts().sending, 1);
    // A sending message is not claimed twice.
    assert!(outbox.claim_next("m1", T0).await.unwrap().is_none());

    // Part 0 goes out, then a temporary error after part 1: both are kept.
    outbox.mark_part_sent(id, 0, 17, T0 + 10).await.unwrap();
    let retry = outbox
        .mark_retry(id, "+CMS ERROR: 42 (congestion)", &[18], T0 + 20)
        .await
        .unwrap();
    assert_eq!(
        retry,
        RetryOutcome::Scheduled {
            at_ms: T0 + 20 + 1_000
        }
    );
    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!(
        (summary.state, summary.attempts, summary.parts_sent),
        (MessageState::Queued, 1, 2)
    );
    assert_eq!(
        summary.last_error.as_deref(),
        Some("+CMS ERROR: 42 (congestion)")
    );
    assert_eq!(outbox.next_due_at(T0 + 20).await.unwrap(), Some(T0 + 1_020));

    // The retry goes to another modem and sends only the last part.
    assert!(outbox.claim_next("m1", T0 + 1_019).await.unwrap().is_none());
    let again = outbox.claim_next("m1", T0 + 1_020).await.unwrap().unwrap();
    assert_eq!(
        (
            again.attempt,
            again.parts_sent,
            again.previous_modem.as_deref()
        ),
        (2, 2, Some("m0"))
    );
    assert_eq!(again.text, "Dein Code: 4711");
    outbox.mark_sent(id, &[3], T0 + 1_500).await.unwrap();

    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!(summary.state, MessageState::Sent);
    assert_eq!(
        (summary.sent_at_ms, summary.final_at_ms),
        (Some(T0 + 1_500), Some(T0 + 1_500))
    );
    assert_eq!(summary.latency_ms(), Some(1_500));
    assert_eq!(summary.modem.as_deref(), Some("m1"));
    assert_eq!(summary.to_masked, "+49*********89");
    let delivery = summary.delivery.unwrap();
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            sent: 1,
            ..QueueCounts::default()
        }
    );

    // A final message takes no further transitions.
    assert_eq!(
        outbox.mark_failed(id, "late", &[], T0 + 2_000).await,
        Err(OutboxError::WrongState {
            id,
            state: MessageState::Sent,
            expected: MessageState::Sending
        })
    );
    assert_eq!(
        outbox.mark_sent(MessageId(999), &[], T0).await,
        Err(OutboxError::NotFound(MessageId(999)))
    );
}

#[tokio::test]
async fn inconsistent_part_reports_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let id = outbox
        .enqueue(message(US, "two parts", 2, None))
        .await
        .unwrap();
    outbox.claim_next("m0", T0).await.unwrap().unwrap();
    // Out of order, out of range, too few for "sent", too many: each refused...
    assert!(matches!(
        outbox.mark_part_sent(id, 1, 5, T0).await,
        Err(OutboxError::Invalid(_))
    ));
    assert!(matches!(
        outbox.mark_part_sent(id, 2, 5, T0).await,
        Err(OutboxError::Invalid(_))
    ));
    assert!(matches!(
        outbox.mark_sent(id, &[5], T0).await,
        Err(OutboxError::Invalid(_))
    ));
    assert!(matches!(
        outbox.mark_sent(id, &[5, 6, 7], T0).await,
        Err(OutboxError::Invalid(_))
    ));
    // ...and rolled back whole: the first part of the refused "sent" was not kept.
    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!(
        (summary.state, summary.parts_sent),
        (MessageState::Sending, 0)
    );
    outbox.mark_sent(id, &[5, 6], T0 + 1).await.unwrap();
    assert_eq!(outbox.message(id).await.unwrap().unwrap().parts_sent, 2);
}

#[tokio::test]
async fn malformed_new_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let no_parts = NewMessage {
        parts: 0,
        ..message(US, "a", 1, None)
    };
    let born_expired = NewMessage {
        expires_at_ms: T0,
        ..message(US, "a", 1, None)
    };
    let nobody = message("", "a", 1, None);
    for bad in [no_parts, born_expired, nobody] {
        assert!(matches!(
            outbox.enqueue(bad).await,
            Err(OutboxError::Invalid(_))
        ));
    }
    assert_eq!(outbox.counts(), QueueCounts::default());
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OutboxOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        },
        ..OutboxOptions::default()
    };
    let db = db_path(&dir);
    let outbox = open_with(&db, opts);
    let id = outbox
        .enqueue(message(US, "Your code is 1234", 1, None))
        .await
        .unwrap();
    let mut now = T0;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outbox.claim_next("m0", now).await.unwrap().expect("due");
        let outcome = outbox
            .mark_retry(id, "no network service", &[], now)
            .await
            .unwrap();
        if let RetryOutcome::Scheduled { at_ms } = outcome {
            now = at_ms;
        }
        outcomes.push(outcome);
    }
    assert_eq!(
        outcomes,
        [
            RetryOutcome::Scheduled { at_ms: T0 + 1_000 },
            RetryOutcome::Scheduled { at_ms: T0 + 3_000 },
            RetryOutcome::GaveUp,
        ]
    );
    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!((summary.state, summary.attempts), (MessageState::Failed, 3));
    assert_eq!(
        summary.last_error.as_deref(),
        Some("gave up after 3 attempts: no network service")
    );
    assert_eq!(raw_row(&db, id).0, None, "text redacted");
}

#[tokio::test]
async fn failed_and_unknown_are_final_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let failed = outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    let unknown = outbox.enqueue(message(UK, "b", 2, None)).await.unwrap();
    outbox.claim(failed, "m0", T0).await.unwrap().unwrap();
    outbox.claim(unknown, "m1", T0).await.unwrap().unwrap();
    outbox
        .mark_failed(
            failed,
            "+CMS ERROR: 21 (short message transfer rejected)",
            &[],
            T0 + 1,
        )
        .await
        .unwrap();
    outbox
        .mark_unknown(unknown, "no +CMGS after the PDU", &[9], T0 + 2)
        .await
        .unwrap();

    assert_eq!(
        outbox.message(failed).await.unwrap().unwrap().state,
        MessageState::Failed
    );
    let summary = outbox.message(unknown).await.unwrap().unwrap();
    assert_eq!(
        (summary.state, summary.parts_sent),
        (MessageState::Unknown, 1)
    );
    assert_eq!(
        summary.last_error.as_deref(),
        Some("no +CMGS after the PDU")
    );
    // Nothing comes back for another attempt, however long we wait.
    assert!(
        outbox
            .claim_next("m0", T0 + TTL - 1)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(outbox.next_due_at(T0).await.unwrap(), None);
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            failed: 1,
            unknown: 1,
            ..QueueCounts::default()
        }
    );
}

#[tokio::test]
async fn a_replayed_signature_is_refused_also_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    outbox
        .enqueue(message(US, "Your code is 1234", 1, Some(b"signature-1")))
        .await
        .unwrap();
    assert_eq!(
        outbox
            .enqueue(message(US, "Your code is 1234", 1, Some(b"signature-1")))
            .await,
        Err(OutboxError::Duplicate)
    );
    // Messages without a signature never collide.
    outbox.enqueue(message(US, "x", 1, None)).await.unwrap();
    outbox.enqueue(message(US, "x", 1, None)).await.unwrap();
    assert_eq!(outbox.counts().queued, 3, "the refused one was not stored");
    drop(outbox);

    let outbox = open(&db);
    assert_eq!(
        outbox
            .enqueue(message(UK, "other", 1, Some(b"signature-1")))
            .await,
        Err(OutboxError::Duplicate)
    );
    // Still refused once the first message is final (and redacted).
    let claimed = outbox.claim_next("m0", T0).await.unwrap().unwrap();
    outbox.mark_sent(claimed.id, &[1], T0 + 1).await.unwrap();
    assert_eq!(
        outbox
            .enqueue(message(US, "Your code is 1234", 1, Some(b"signature-1")))
            .await,
        Err(OutboxError::Duplicate)
    );
    assert_eq!(outbox.counts().depth(), 2);
}

#[tokio::test]
async fn a_full_outbox_refuses_until_a_message_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OutboxOptions {
        max_depth: 2,
        ..OutboxOptions::default()
    };
    let outbox = open_with(&db_path(&dir), opts);
    let first = outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    outbox.enqueue(message(US, "b", 1, None)).await.unwrap();
    assert_eq!(
        outbox.enqueue(message(US, "c", 1, None)).await,
        Err(OutboxError::Full { depth: 2 })
    );
    // A message being sent still counts.
    outbox.claim(first, "m0", T0).await.unwrap().unwrap();
    assert_eq!(
        outbox.enqueue(message(US, "c", 1, None)).await,
        Err(OutboxError::Full { depth: 2 })
    );
    outbox.mark_sent(first, &[1], T0).await.unwrap();
    outbox.enqueue(message(US, "c", 1, None)).await.unwrap();
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            queued: 2,
            sent: 1,
            ..QueueCounts::default()
        }
    );
}

#[tokio::test]
async fn expired_messages_are_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let id = outbox
        .enqueue(message(US, "Your code is 1234", 1, None))
        .await
        .unwrap();
    let later = outbox
        .enqueue(NewMessage {
            expires_at_ms: T0 + 2 * TTL,
            ..message(UK, "later", 1, None)
        })
        .await
        .unwrap();
    assert_eq!(outbox.next_due_at(T0).await.unwrap(), Some(T0 + TTL));

    // At its expiry instant it is no longer claimable, even before expire_due runs.
    assert_eq!(
        outbox
            .due(T0 + TTL, 10)
            .await
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        [later]
    );
    assert_eq!(outbox.expire_due(T0 + TTL - 1).await.unwrap(), []);
    assert_eq!(outbox.expire_due(T0 + TTL).await.unwrap(), [id]);
    assert_eq!(
        outbox
            .claim(id, "m0", T0 + TTL)
            .await
            .unwrap()
            .map(|c| c.id),
        None
    );
    let claimed = outbox.claim_next("m0", T0 + TTL).await.unwrap().unwrap();
    assert_eq!(claimed.id, later);
    assert_eq!(
        claimed.time_left(T0 + TTL),
        Duration::from_millis(TTL as u64)
    );

    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!(
        (summary.state, summary.final_at_ms),
        (MessageState::Expired, Some(T0 + TTL))
    );
    assert_eq!(raw_row(&db, id), (None, "+12*******23".to_owned()));
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            sending: 1,
            expired: 1,
            ..QueueCounts::default()
        }
    );
}

/// A process that stops without shutting the outbox down (the handle dropped with a
/// message mid-send): on reopening, `recover` puts it back in the queue with the parts
/// already confirmed.
#[tokio::test]
async fn recover_requeues_what_was_being_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let sending = outbox
        .enqueue(message(US, "three parts", 3, None))
        .await
        .unwrap();
    let waiting = outbox
        .enqueue(message(UK, "one part", 1, None))
        .await
        .unwrap();
    outbox.claim(sending, "m0", T0).await.unwrap().unwrap();
    outbox.mark_part_sent(sending, 0, 40, T0 + 1).await.unwrap();
    drop(outbox);

    let outbox = open(&db);
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            queued: 1,
            sending: 1,
            ..QueueCounts::default()
        }
    );
    let recovered = outbox.recover(T0 + 60_000).await.unwrap();
    assert_eq!((recovered.requeued, recovered.queued), (1, 2));
    let due: Vec<_> = outbox.due(T0 + 60_000, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|p| p.id).collect::<Vec<_>>(),
        [waiting, sending]
    );
    let again = outbox
        .claim(sending, "m1", T0 + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.parts_sent, again.attempt, again.text.as_str()),
        (1, 2, "three parts")
    );
    outbox
        .mark_sent(sending, &[41, 42], T0 + 61_000)
        .await
        .unwrap();
    // Parts keep the modem that sent them: part 0 on m0, the rest on m1.
    assert_eq!(
        outbox
            .record_delivery("m0", 40, 0, DeliveryState::Delivered, T0 + 62_000)
            .await
            .unwrap(),
        Some(sending)
    );
    assert_eq!(
        outbox
            .record_delivery("m1", 40, 0, DeliveryState::Delivered, T0 + 62_000)
            .await
            .unwrap(),
        None
    );
}

/// The real thing: a child process (this test binary, re-run on this test alone) enqueues,
/// starts a send, records one part, and is killed with SIGKILL. Everything it was told is
/// committed must be there, and the interrupted send must resume after the recorded part.
#[test]
fn nothing_acknowledged_is_lost_to_kill_9() {
    if let Some(db) = std::env::var_os("OUTBOX_KILL9_CHILD_DB") {
        kill9_child(Path::new(&db));
    }
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "nothing_acknowledged_is_lost_to_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OUTBOX_KILL9_CHILD_DB", &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    // libtest prints "test NAME ... " before the test's own output, on the same line.
    let ready = BufReader::new(stdout)
        .lines()
        .any(|line| line.is_ok_and(|line| line.ends_with("CHILD READY")));
    assert!(ready, "the child reached its crash point");
    child.0.kill().unwrap(); // SIGKILL: no destructor, no checkpoint, no close.
    child.0.wait().unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    assert!(
        std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "the child died with its work in the WAL, not closed cleanly"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let outbox = open(&db);
        assert_eq!(
            outbox.counts(),
            QueueCounts {
                queued: 10,
                sending: 1,
                ..QueueCounts::default()
            }
        );
        assert_eq!(outbox.recover(T0 + 5_000).await.unwrap().requeued, 1);
        let mut texts = Vec::new();
        while let Some(claimed) = outbox.claim_next("m0", T0 + 5_000).await.unwrap() {
            if claimed.text == "code 0" {
                assert_eq!(
                    (claimed.parts, claimed.parts_sent, claimed.attempt),
                    (2, 1, 2)
                );
                // What the dispatcher resumes with: part 2 only, under the same
                // reference, and the modem that sent part 1 (it stays on that modem).
                assert_eq!(claimed.concat_ref, 0x1234);
                assert_eq!(claimed.previous_modem.as_deref(), Some("m0"));
            }
            texts.push(claimed.text);
        }
        texts.sort();
        let mut expected: Vec<String> = (0..11).map(|i| format!("code {i}")).collect();
        expected.sort();
        assert_eq!(texts, expected);
    });
}

fn kill9_child(db: &Path) -> ! {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The handle is kept alive until the kill: dropping it would let the writer close the
    // database cleanly, which is not what a crash does.
    let _outbox = rt.block_on(async {
        let outbox = open(db);
        for i in 0..11 {
            let parts = if i == 0 { 2 } else { 1 };
            outbox
                .enqueue(message(US, &format!("code {i}"), parts, None))
                .await
                .unwrap();
        }
        let claimed = outbox.claim_next("m0", T0).await.unwrap().unwrap();
        outbox
            .mark_part_sent(claimed.id, 0, 7, T0 + 1)
            .await
            .unwrap();
        println!("CHILD READY");
        outbox
    });
    // Wait for SIGKILL. Should the parent die first, its end of stdin closes and the
    // child leaves instead of lingering.
    let _ = std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1]);
    std::process::exit(1)
}

/// Kills the child when the parent test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// After a message is final, its text and full number are nowhere in the database file,
/// its WAL or its shared-memory file, whether they had reached the main file or were still
/// only in the WAL; the same for each final state.
#[tokio::test]
async fn redacted_texts_are_gone_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let markers = [
        "MARKER-sent-7f3a9c",
        "MARKER-failed-51d2e8",
        "MARKER-expired-0b6c44",
        "MARKER-unknown-93aa10",
    ];
    let numbers = [US, UK, DE, "+12015550188"];
    let mut ids = Vec::new();
    for (marker, number) in markers.iter().zip(numbers) {
        let text = format!("Your code is 918273 {marker}");
        ids.push(
            outbox
                .enqueue(message(number, &text, 1, None))
                .await
                .unwrap(),
        );
    }
    // The texts are on disk now (in the WAL); move them into the main file as well.
    assert!(
        !files_containing(&db, markers[0]).is_empty(),
        "the search finds stored text"
    );
    outbox.checkpoint().await.unwrap();
    let main_file_only = vec![db.clone()];
    assert_eq!(files_containing(&db, markers[0]), main_file_only);

    outbox.claim(ids[0], "m0", T0).await.unwrap().unwrap();
    outbox.mark_sent(ids[0], &[1], T0 + 1).await.unwrap();
    outbox.claim(ids[1], "m0", T0).await.unwrap().unwrap();
    outbox
        .mark_failed(ids[1], "+CMS ERROR: 28", &[], T0 + 1)
        .await
        .unwrap();
    outbox.claim(ids[3], "m0", T0).await.unwrap().unwrap();
    outbox
        .mark_unknown(ids[3], "no +CMGS", &[], T0 + 1)
        .await
        .unwrap();
    // This one's redaction happens only in the WAL before the checkpoint.
    assert_eq!(outbox.expire_due(T0 + TTL).await.unwrap(), [ids[2]]);
    outbox.checkpoint().await.unwrap();

    for needle in markers.iter().chain(&numbers) {
        assert_eq!(
            files_containing(&db, needle),
            Vec::<PathBuf>::new(),
            "{needle} lingers"
        );
    }
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "the WAL is truncated"
    );
    // The rows remain, masked, for the status page.
    let recent = outbox.recent(10).await.unwrap();
    assert_eq!(
        recent
            .iter()
            .map(|s| s.to_masked.as_str())
            .collect::<Vec<_>>(),
        [
            "+12*******88",
            "+49*********89",
            "+44********56",
            "+12*******23"
        ]
    );
}

#[tokio::test]
async fn the_writer_checkpoints_by_itself_after_a_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let opts = OutboxOptions {
        checkpoint_idle: Duration::from_millis(20),
        ..OutboxOptions::default()
    };
    let outbox = open_with(&db, opts);
    let id = outbox
        .enqueue(message(US, "MARKER-auto-c0ffee", 1, None))
        .await
        .unwrap();
    outbox.claim(id, "m0", T0).await.unwrap().unwrap();
    let before = outbox.stats().checkpoints;
    outbox.mark_sent(id, &[1], T0 + 1).await.unwrap();
    // A liveness bound, far above the 20 ms idle delay, not a speed requirement.
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox.stats().checkpoints == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(outbox.stats().checkpoints, before + 1);
    assert_eq!(
        files_containing(&db, "MARKER-auto-c0ffee"),
        Vec::<PathBuf>::new()
    );
}

#[tokio::test]
async fn delivery_reports_find_the_latest_part_with_that_reference() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let old = outbox.enqueue(message(US, "old", 1, None)).await.unwrap();
    let new = outbox.enqueue(message(UK, "new", 2, None)).await.unwrap();
    outbox.claim(old, "m0", T0).await.unwrap().unwrap();
    outbox.mark_sent(old, &[200], T0 + 1).await.unwrap();
    outbox.claim(new, "m0", T0 + 10).await.unwrap().unwrap();
    // References wrap: 200 comes round again on the same modem.
    outbox.mark_sent(new, &[200, 201], T0 + 20).await.unwrap();

    let report = |mr, status, at| {
        let outbox = outbox.clone();
        async move {
            outbox
                .record_delivery("m0", mr, status, DeliveryState::from_tp_status(status), at)
                .await
                .unwrap()
        }
    };
    assert_eq!(report(200, 0x00, T0 + 30).await, Some(new));
    let summary = outbox.message(new).await.unwrap().unwrap();
    let delivery = summary.delivery.unwrap();
    assert_eq!(
        (delivery.state, delivery.parts_delivered),
        (DeliveryState::Pending, 1)
    );
    assert_eq!(report(201, 0x00, T0 + 31).await, Some(new));
    let delivery = outbox
        .message(new)
        .await
        .unwrap()
        .unwrap()
        .delivery
        .unwrap();
    assert_eq!(
        (
            delivery.state,
            delivery.parts_delivered,
            delivery.last_status
        ),
        (DeliveryState::Delivered, 2, Some(0))
    );

    // A report on another modem, or for a reference never used, matches nothing.
    assert_eq!(
        outbox
            .record_delivery("m1", 200, 0, DeliveryState::Delivered, T0 + 30)
            .await
            .unwrap(),
        None
    );
    assert_eq!(report(7, 0x00, T0 + 32).await, None);
    // A permanent error (0x41, incompatible destination) fails the delivery.
    assert_eq!(report(201, 0x41, T0 + 33).await, Some(new));
    let delivery = outbox
        .message(new)
        .await
        .unwrap()
        .unwrap()
        .delivery
        .unwrap();
    assert_eq!(
        (delivery.state, delivery.parts_failed, delivery.last_status),
        (DeliveryState::Failed, 1, Some(0x41))
    );
    // The old message never got a report.
    let old_delivery = outbox
        .message(old)
        .await
        .unwrap()
        .unwrap()
        .delivery
        .unwrap();
    assert_eq!(old_delivery.state, DeliveryState::Pending);
}

#[test]
fn tp_status_classes() {
    let check = |status, expected| {
        assert_eq!(
            DeliveryState::from_tp_status(status),
            expected,
            "{status:#04x}"
        )
    };
    check(0x00, DeliveryState::Delivered);
    check(0x01, DeliveryState::Delivered);
    check(0x20, DeliveryState::Pending);
    check(0x30, DeliveryState::Pending);
    check(0x40, DeliveryState::Failed);
    check(0x46, DeliveryState::Failed);
    check(0x60, DeliveryState::Failed);
    check(0xFF, DeliveryState::Failed);
}

#[tokio::test]
async fn next_due_at_follows_retries_and_expiries() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    assert_eq!(outbox.next_due_at(T0).await.unwrap(), None);
    let a = outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    // Due now: it waits for a modem, not a time, so only its expiry counts.
    assert_eq!(outbox.next_due_at(T0).await.unwrap(), Some(T0 + TTL));
    outbox.claim(a, "m0", T0).await.unwrap().unwrap();
    assert_eq!(
        outbox.next_due_at(T0).await.unwrap(),
        None,
        "a sending message has no timer"
    );
    outbox.mark_retry(a, "busy", &[], T0 + 5).await.unwrap();
    assert_eq!(outbox.next_due_at(T0 + 5).await.unwrap(), Some(T0 + 1_005));
    assert_eq!(
        outbox.next_due_at(T0 + 1_005).await.unwrap(),
        Some(T0 + TTL)
    );
}

#[tokio::test]
async fn recent_lists_newest_first_with_masked_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    for number in [US, UK, DE] {
        outbox
            .enqueue(message(number, "Your code is 1234", 1, None))
            .await
            .unwrap();
    }
    let recent = outbox.recent(2).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].to_masked, "+49*********89");
    assert_eq!(recent[1].to_masked, "+44********56");
    assert!(
        recent
            .iter()
            .all(|s| s.state == MessageState::Queued && s.delivery.is_none())
    );
}

#[tokio::test]
async fn purge_deletes_only_old_final_messages() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let old = outbox
        .enqueue(message(US, "old", 1, Some(b"old")))
        .await
        .unwrap();
    let recent = outbox
        .enqueue(message(UK, "recent", 1, None))
        .await
        .unwrap();
    let waiting = outbox
        .enqueue(message(DE, "waiting", 1, None))
        .await
        .unwrap();
    outbox.claim(old, "m0", T0).await.unwrap().unwrap();
    outbox.mark_sent(old, &[1], T0 + 1_000).await.unwrap();
    outbox.claim(recent, "m0", T0).await.unwrap().unwrap();
    outbox
        .mark_failed(recent, "refused", &[], T0 + 5_000)
        .await
        .unwrap();

    assert_eq!(
        outbox.purge(T0 + 1_000).await.unwrap(),
        0,
        "strictly older only"
    );
    assert_eq!(outbox.purge(T0 + 2_000).await.unwrap(), 1);
    assert_eq!(outbox.message(old).await.unwrap(), None);
    assert!(outbox.message(recent).await.unwrap().is_some());
    assert!(outbox.message(waiting).await.unwrap().is_some());
    assert_eq!(
        outbox.counts(),
        QueueCounts {
            queued: 1,
            failed: 1,
            ..QueueCounts::default()
        }
    );
    // Its parts went with it; its signature too, so replay protection ends at retention.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let parts: i64 = conn
        .query_row(
            "SELECT count(*) FROM parts WHERE message_id = ?1",
            [old.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(parts, 0);
    // Ids are never reused, even for the highest purged one.
    let next = outbox
        .enqueue(message(US, "next", 1, Some(b"old")))
        .await
        .unwrap();
    assert!(next > waiting);
}

#[tokio::test]
async fn foreign_and_newer_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = Outbox::open(&foreign, OutboxOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, OutboxError::Open { message, .. } if message.contains("not an smsbridge outbox")),
        "{err}"
    );
    assert!(err.to_string().contains("foreign.db"), "{err}");

    let newer = db_path(&dir);
    open(&newer).shutdown().await.unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = Outbox::open(&newer, OutboxOptions::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("schema version 99 is newer"),
        "{err}"
    );
}

/// Whether the outbox has announced due work since the last look (consumes the announcement).
async fn announced(outbox: &Outbox) -> bool {
    // A zero timeout polls once: ready only if an announcement is waiting.
    tokio::time::timeout(Duration::ZERO, outbox.work_due())
        .await
        .is_ok()
}

#[tokio::test]
async fn commits_that_make_work_due_announce_it() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    assert!(!announced(&outbox).await, "nothing committed yet");

    let a = outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    assert!(announced(&outbox).await, "an accepted message is due work");
    assert!(!announced(&outbox).await, "one announcement per commit");

    outbox.claim(a, "m0", T0).await.unwrap().unwrap();
    outbox
        .mark_failed(a, "rejected", &[], T0 + 1)
        .await
        .unwrap();
    assert!(
        !announced(&outbox).await,
        "claims and final states make no work due"
    );

    let b = outbox.enqueue(message(UK, "b", 1, None)).await.unwrap();
    assert!(announced(&outbox).await);
    outbox.claim(b, "m0", T0).await.unwrap().unwrap();
    let outcome = outbox.mark_retry(b, "busy", &[], T0 + 2).await.unwrap();
    assert!(matches!(outcome, RetryOutcome::Scheduled { .. }));
    assert!(announced(&outbox).await, "a scheduled retry is due work");

    // A handle's clone hears the same announcements: the dispatcher holds a clone.
    let clone = outbox.clone();
    outbox.enqueue(message(DE, "c", 1, None)).await.unwrap();
    assert!(announced(&clone).await);
}

/// At start, a message left `sending` whose every part was recorded (the crash came after
/// the last part's reference, before the outcome) is final, not resent.
#[tokio::test]
async fn recover_finalises_a_message_whose_parts_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let complete = outbox
        .enqueue(message(US, "two parts", 2, None))
        .await
        .unwrap();
    let partial = outbox
        .enqueue(message(UK, "two parts", 2, None))
        .await
        .unwrap();
    outbox.claim(complete, "m0", T0).await.unwrap().unwrap();
    outbox.claim(partial, "m0", T0).await.unwrap().unwrap();
    outbox.mark_part_sent(complete, 0, 1, T0 + 1).await.unwrap();
    outbox.mark_part_sent(complete, 1, 2, T0 + 2).await.unwrap();
    outbox.mark_part_sent(partial, 0, 3, T0 + 3).await.unwrap();
    drop(outbox);

    let outbox = open(&db);
    let recovered = outbox.recover(T0 + 10).await.unwrap();
    assert_eq!((recovered.completed, recovered.requeued), (1, 1));
    let summary = outbox.message(complete).await.unwrap().unwrap();
    assert_eq!(summary.state, MessageState::Sent);
    assert_eq!(summary.parts_sent, 2);
    let due = outbox.due(T0 + 10, 10).await.unwrap();
    assert_eq!(due.iter().map(|p| p.id).collect::<Vec<_>>(), [partial]);
}

/// A partly sent message restarted whole (its modem gone) forgets its parts, takes the new
/// reference, says why, and is then sent from part 1.
#[tokio::test]
async fn restart_whole_sends_every_part_under_a_new_reference() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let id = outbox
        .enqueue(message(US, "three parts", 3, None))
        .await
        .unwrap();
    outbox.claim(id, "m0", T0).await.unwrap().unwrap();
    outbox.mark_part_sent(id, 0, 9, T0 + 1).await.unwrap();
    assert!(
        !outbox.restart_whole(id, 0x4321, "m0 gone").await.unwrap(),
        "a message being sent is not restarted"
    );
    outbox.mark_retry(id, "m0 gone", &[], T0 + 2).await.unwrap();
    assert!(outbox.restart_whole(id, 0x4321, "m0 gone").await.unwrap());
    let claimed = outbox
        .claim_next("m1", T0 + 600_000 - 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.parts_sent, claimed.concat_ref), (0, 0x4321));
    outbox
        .mark_sent(id, &[1, 2, 3], T0 + 600_000)
        .await
        .unwrap();
    let summary = outbox.message(id).await.unwrap().unwrap();
    assert_eq!(summary.state, MessageState::Sent);
    assert_eq!(summary.last_error.as_deref(), Some("m0 gone"));
}

/// A version-1 database (before plans were stored) is migrated in place: its queued
/// message is kept, with no plan, and new messages get the plan set.
#[tokio::test]
async fn a_version_1_outbox_is_migrated_and_keeps_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let old = outbox.enqueue(message(US, "old", 1, None)).await.unwrap();
    outbox.shutdown().await.unwrap();
    drop(outbox);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "ALTER TABLE messages DROP COLUMN plan; DROP TABLE dedup; PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let outbox = open(&db);
    outbox.set_encoding_plan(Some("v1;languages=turkish;concat16=0".into()));
    let new = outbox.enqueue(message(UK, "new", 1, None)).await.unwrap();
    let old = outbox.claim(old, "m0", T0).await.unwrap().unwrap();
    assert_eq!(old.plan, None);
    let new = outbox.claim(new, "m0", T0).await.unwrap().unwrap();
    assert_eq!(new.plan.as_deref(), Some("v1;languages=turkish;concat16=0"));
}

/// A 3-part message's delivery is summed over its parts (issue 9 item 7): delivered only
/// when all three parts' reports say delivered; a temporary TP-Status (0x20..=0x3F, the
/// SMSC still trying) keeps it pending; one permanent error (0x40..) makes it failed even
/// while the other parts are delivered or unreported.
#[tokio::test]
async fn a_three_part_message_is_delivered_only_when_every_part_is() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let whole = outbox.enqueue(message(UK, "whole", 3, None)).await.unwrap();
    let broken = outbox
        .enqueue(message(US, "broken", 3, None))
        .await
        .unwrap();
    outbox.claim(whole, "m0", T0).await.unwrap().unwrap();
    outbox
        .mark_sent(whole, &[10, 11, 12], T0 + 1)
        .await
        .unwrap();
    outbox.claim(broken, "m0", T0 + 2).await.unwrap().unwrap();
    outbox
        .mark_sent(broken, &[20, 21, 22], T0 + 3)
        .await
        .unwrap();

    let report = |mr, status| {
        let outbox = outbox.clone();
        async move {
            outbox
                .record_delivery(
                    "m0",
                    mr,
                    status,
                    DeliveryState::from_tp_status(status),
                    T0 + 10,
                )
                .await
                .unwrap()
        }
    };
    let delivery = |id| {
        let outbox = outbox.clone();
        async move {
            let d = outbox.message(id).await.unwrap().unwrap().delivery.unwrap();
            (d.state, d.parts_delivered, d.parts_failed)
        }
    };

    assert_eq!(report(10, 0x00).await, Some(whole));
    assert_eq!(report(11, 0x00).await, Some(whole));
    assert_eq!(delivery(whole).await, (DeliveryState::Pending, 2, 0));
    assert_eq!(report(12, 0x20).await, Some(whole));
    assert_eq!(delivery(whole).await, (DeliveryState::Pending, 2, 0));
    assert_eq!(report(12, 0x00).await, Some(whole));
    assert_eq!(delivery(whole).await, (DeliveryState::Delivered, 3, 0));

    assert_eq!(report(20, 0x00).await, Some(broken));
    assert_eq!(report(21, 0x41).await, Some(broken));
    assert_eq!(delivery(broken).await, (DeliveryState::Failed, 1, 1));
    assert_eq!(report(22, 0x00).await, Some(broken));
    assert_eq!(delivery(broken).await, (DeliveryState::Failed, 2, 1));
}

/// The per-state counts as a scan of the table gives them: the ground truth the
/// trigger-kept `state_counts` (schema v4) must equal.
fn scanned_counts(db: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT s.state, (SELECT count(*) FROM messages m WHERE m.state = s.state)
             FROM state_counts s ORDER BY s.state",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn kept_counts(db: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT state, n FROM state_counts ORDER BY state")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A version-3 outbox (before the kept counts) is migrated in place (issue 12 item 5):
/// the counts are filled from its rows once, then kept by every change, purges included,
/// and read back at the next open without a scan.
#[tokio::test]
async fn a_version_3_outbox_is_migrated_and_its_counts_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let a = outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    let b = outbox.enqueue(message(UK, "b", 1, None)).await.unwrap();
    outbox.enqueue(message(UK, "c", 1, None)).await.unwrap();
    outbox.claim(a, "m0", T0).await.unwrap().unwrap();
    outbox.mark_sent(a, &[1], T0 + 1).await.unwrap();
    outbox.claim(b, "m0", T0).await.unwrap().unwrap();
    outbox.shutdown().await.unwrap();
    drop(outbox);
    {
        // What version 3 wrote: none of version 4's table, triggers and indexes.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP TRIGGER messages_count_insert; DROP TRIGGER messages_count_update;
             DROP TRIGGER messages_count_delete; DROP TABLE state_counts;
             DROP INDEX messages_sending; DROP INDEX messages_sent_at;
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let outbox = open(&db);
    let counts = outbox.counts();
    assert_eq!(
        (counts.queued, counts.sending, counts.sent),
        (1, 1, 1),
        "{counts:?}"
    );
    assert_eq!(kept_counts(&db), scanned_counts(&db));
    // Every kind of change keeps them: enqueue, claim, retry, final states, purge.
    let d = outbox.enqueue(message(US, "d", 1, None)).await.unwrap();
    outbox.mark_retry(b, "busy", &[], T0 + 2).await.unwrap();
    outbox.claim(d, "m0", T0 + 3).await.unwrap().unwrap();
    outbox.mark_failed(d, "refused", &[], T0 + 4).await.unwrap();
    assert_eq!(kept_counts(&db), scanned_counts(&db));
    assert_eq!(outbox.purge(T0 + 10).await.unwrap(), 2);
    assert_eq!(kept_counts(&db), scanned_counts(&db));
    let before = outbox.counts();
    outbox.shutdown().await.unwrap();
    drop(outbox);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    drop(conn);
    // Read back at open from the kept rows: the same as the writer's running counts.
    let outbox = open(&db);
    assert_eq!(outbox.counts(), before);
    assert_eq!((before.sent, before.failed, before.queued), (0, 0, 2));
}

/// Recovery finds `sending` rows through their partial index, not a scan of the history,
/// and the sends-per-minute chart reads `sent_at` through its index (issue 12 item 5).
#[tokio::test]
async fn start_up_and_chart_queries_use_indexes_not_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    outbox.shutdown().await.unwrap();
    drop(outbox);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.join("; ")
    };
    for sql in [
        "SELECT id FROM messages WHERE state = 'sending' AND parts_sent >= parts",
        "UPDATE messages SET state = 'queued', next_attempt_at = 1 WHERE state = 'sending'",
        "SELECT (sent_at - 1) / 60000, count(*) FROM messages WHERE sent_at >= 1 AND sent_at < 2 GROUP BY 1",
        "SELECT state, n FROM state_counts",
    ] {
        let plan = plan(sql);
        // A scan of a partial index reads only its rows (`sending` ones, sent ones in the
        // range); a bare `SCAN messages` reads every row of the history.
        let full_scan = plan
            .split("; ")
            .any(|step| step.starts_with("SCAN messages") && !step.contains("USING"));
        assert!(!full_scan, "{sql} scans every message: {plan}");
    }
}

/// An orderly shutdown leaves the clean-stop marker that lets the next start skip its
/// full integrity scan; it is taken once, and any change to the file or a stop without
/// shutdown leaves none that matches (issue 12 item 5).
#[tokio::test]
async fn only_an_orderly_stop_of_an_unchanged_file_is_trusted() {
    use smsbridge::outbox::clean_stop;
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    outbox.shutdown().await.unwrap();
    drop(outbox);
    assert!(clean_stop::take(&db), "an orderly stop is trusted");
    assert!(!clean_stop::take(&db), "once");

    // Stopped cleanly, then changed by someone else: not trusted.
    let outbox = open(&db);
    outbox.shutdown().await.unwrap();
    drop(outbox);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA journal_mode = DELETE; UPDATE messages SET attempts = 7")
            .unwrap();
    }
    assert!(!clean_stop::take(&db), "the file changed after the stop");

    // No shutdown (the writer still running, as when the process is killed): no marker.
    let outbox = open(&db);
    outbox.enqueue(message(UK, "b", 1, None)).await.unwrap();
    assert!(!clean_stop::take(&db));
    outbox.shutdown().await.unwrap();
}

/// A modem working through a queue records its send and claims its next fresh message in
/// one commit (issue 12 item 3); a message tried before is left to the dispatcher's choice.
#[tokio::test]
async fn a_send_is_recorded_and_the_next_fresh_message_claimed_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let a = outbox.enqueue(message(US, "a", 1, None)).await.unwrap();
    let b = outbox.enqueue(message(UK, "b", 1, None)).await.unwrap();
    let c = outbox.enqueue(message(DE, "c", 1, None)).await.unwrap();
    outbox.claim(a, "m0", T0).await.unwrap().unwrap();
    let commits = outbox.stats().commits;
    let next = outbox
        .mark_sent_and_claim_next(a, &[7], "m0", T0 + 1)
        .await
        .unwrap()
        .expect("the next fresh message");
    assert_eq!(outbox.stats().commits, commits + 1, "one commit for both");
    assert_eq!((next.id, next.attempt, next.text.as_str()), (b, 1, "b"));
    assert_eq!(
        outbox.message(a).await.unwrap().unwrap().state,
        MessageState::Sent
    );
    assert_eq!(
        outbox.message(b).await.unwrap().unwrap().state,
        MessageState::Sending
    );
    assert_eq!(
        outbox.message(b).await.unwrap().unwrap().modem.as_deref(),
        Some("m0")
    );
    // b fails temporarily and is due again before c: it was tried on m0, so the
    // dispatcher chooses its modem; nothing is claimed with the outcome.
    outbox.mark_retry(b, "busy", &[], T0 + 2).await.unwrap();
    outbox
        .claim(c, "m1", T0 + 3)
        .await
        .unwrap()
        .expect("c is due");
    let far = T0 + 10 * 60_000 - 1;
    let none = outbox
        .mark_sent_and_claim_next(c, &[8], "m1", far)
        .await
        .unwrap();
    assert!(
        none.is_none(),
        "a retried message is not claimed in passing"
    );
    assert_eq!(
        outbox.message(c).await.unwrap().unwrap().state,
        MessageState::Sent
    );
    let counts = outbox.counts();
    assert_eq!((counts.sent, counts.queued, counts.sending), (2, 1, 0));
}

/// An accept claims its message for an offered idle modem in its own commit (issue 12
/// item 1): when `enqueue` returns the message is durably `sending` on that modem, and the
/// claim is handed over; without an offer, or after a failed transaction, nothing is
/// claimed and a taken modem is released.
#[tokio::test]
async fn an_accept_claims_for_an_offered_idle_modem_in_its_own_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    // Offers are ignored until someone takes the handoffs.
    outbox.offer_idle(vec!["m0".into()]);
    let plain = outbox.enqueue(message(US, "plain", 1, None)).await.unwrap();
    assert_eq!(
        outbox.message(plain).await.unwrap().unwrap().state,
        MessageState::Queued
    );
    assert_eq!(outbox.withdraw_idle(), vec!["m0".to_owned()]);
    outbox.claim(plain, "m0", T0).await.unwrap().unwrap();

    let mut handoffs = outbox.handoffs();
    outbox.offer_idle(vec!["m1".into(), "m0".into()]);
    let commits = outbox.stats().commits;
    let id = outbox.enqueue(message(UK, "fast", 1, None)).await.unwrap();
    assert_eq!(
        outbox.stats().commits,
        commits + 1,
        "stored and claimed in one commit"
    );
    match handoffs.try_recv() {
        Ok(smsbridge::outbox::Handoff::Claimed {
            modem,
            message,
            committed,
        }) => {
            assert_eq!((modem.as_str(), message.id, message.attempt), ("m1", id, 1));
            assert_eq!(message.text, "fast");
            assert!(committed.wait().await, "the claim's accept committed");
        }
        other => panic!("expected a claim, got {other:?}"),
    }
    // Durable before enqueue returned: another connection sees it sending on m1.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (state, modem): (String, String) = conn
        .query_row(
            "SELECT state, modem FROM messages WHERE id = ?1",
            [id.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), modem.as_str()), ("sending", "m1"));
    // m1 was taken; m0 is still offered.
    assert_eq!(outbox.withdraw_idle(), vec!["m0".to_owned()]);

    // A refused accept (a full disk: the transaction never starts; a replay: the insert
    // fails) claims nothing and leaves the modem offered.
    outbox.offer_idle(vec!["m0".into()]);
    outbox.inject_write_failure(true);
    assert!(outbox.enqueue(message(DE, "lost", 1, None)).await.is_err());
    outbox.inject_write_failure(false);
    outbox
        .enqueue(message(DE, "signed", 1, Some(b"sig")))
        .await
        .unwrap();
    match handoffs.try_recv() {
        Ok(smsbridge::outbox::Handoff::Claimed { modem, .. }) => assert_eq!(modem, "m0"),
        other => panic!("expected a claim, got {other:?}"),
    }
    outbox.offer_idle(vec!["m0".into()]);
    assert_eq!(
        outbox.enqueue(message(DE, "again", 1, Some(b"sig"))).await,
        Err(OutboxError::Duplicate)
    );
    assert!(handoffs.try_recv().is_err(), "nothing handed over");
    assert_eq!(outbox.withdraw_idle(), vec!["m0".to_owned()]);
    let counts = outbox.counts();
    assert_eq!((counts.queued, counts.sending), (0, 3));
}

/// Issue 12: the claim reaches the dispatcher before its accept's commit, so the modem's
/// command and prompt overlap the fsync. When that commit fails, the claim says so: the
/// message does not exist (its row number is handed out again to the next message, which is
/// why nothing may be recorded under it), the caller hears the error, and the modem is not
/// put back in the offer: the dispatcher frees it once its held send is abandoned.
#[tokio::test]
async fn a_claim_handed_over_before_a_commit_that_fails_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let mut handoffs = outbox.handoffs();
    outbox.offer_idle(vec!["m0".into(), "m1".into()]);
    outbox.inject_commit_failure(true);
    let refused = outbox.enqueue(message(UK, "never", 1, None)).await;
    assert!(
        matches!(refused, Err(OutboxError::Storage(_))),
        "{refused:?}"
    );
    outbox.inject_commit_failure(false);
    let withdrawn = match handoffs.try_recv() {
        Ok(smsbridge::outbox::Handoff::Claimed {
            modem,
            message,
            committed,
        }) => {
            assert_eq!(modem, "m0");
            assert!(!committed.wait().await, "the commit failed");
            message.id
        }
        other => panic!("expected a claim, got {other:?}"),
    };
    assert!(handoffs.try_recv().is_err(), "one handoff per accept");
    assert_eq!(outbox.message(withdrawn).await.unwrap(), None);
    let counts = outbox.counts();
    assert_eq!((counts.queued, counts.sending), (0, 0));
    assert_eq!(
        outbox.withdraw_idle(),
        vec!["m1".to_owned()],
        "m0 stays with the dispatcher"
    );

    let next = outbox.enqueue(message(UK, "next", 1, None)).await.unwrap();
    assert_eq!(next, withdrawn, "the row number is reused");
    assert_eq!(
        outbox.message(next).await.unwrap().unwrap().state,
        MessageState::Queued
    );
}

#[tokio::test]
async fn wal_stats_report_the_log_and_its_truncations() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    for i in 0..20 {
        outbox
            .enqueue(message(US, &format!("code {i}"), 1, None))
            .await
            .unwrap();
    }
    let before = outbox.wal_stats().expect("a SQLite outbox has a WAL");
    assert!(before.bytes > 0, "{before:?}");
    assert_eq!(
        before.bytes,
        std::fs::metadata(format!("{}-wal", db.display()))
            .unwrap()
            .len()
    );
    outbox.checkpoint().await.unwrap();
    let after = outbox.wal_stats().unwrap();
    assert_eq!(after.bytes, 0, "TRUNCATE empties the WAL: {after:?}");
    assert_eq!(after.truncates, before.truncates + 1);
    assert!(after.longest_truncate_seconds > 0.0, "{after:?}");
    assert!(after.truncate_seconds >= after.longest_truncate_seconds);
}

/// Every commit that wrote is timed once: the histogram's count is the synced commits, its
/// cumulative buckets never fall or exceed the count, and a lookup that changes nothing
/// adds no sample.
#[tokio::test]
async fn each_commit_that_wrote_is_timed_in_the_commit_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&db_path(&dir));
    let start = outbox.wal_stats().unwrap();
    let mut ids = Vec::new();
    for i in 0..25 {
        // One at a time, so each is its own commit.
        let id = outbox
            .enqueue(message(US, &format!("code {i}"), 1, None))
            .await
            .unwrap();
        ids.push(id);
    }
    let stats = outbox.wal_stats().unwrap();
    assert_eq!(stats.commits - start.commits, 25, "{stats:?}");
    assert!(
        stats.commit_buckets.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {stats:?}"
    );
    assert!(stats.commit_buckets.last().unwrap() <= &stats.commits);
    // Each was timed (the bucket placement is the unit test's, `outbox::tests`).
    assert!(stats.commit_seconds > start.commit_seconds, "{stats:?}");
    // Reads change nothing: no commit that wrote, no sample.
    for id in &ids {
        outbox.message(*id).await.unwrap().unwrap();
    }
    assert_eq!(outbox.wal_stats().unwrap().commits, stats.commits);
}

/// Under continuous load the checkpointer alone never lets the WAL start over (the writer
/// has always committed more while it copied); the writer's tail copies keep it short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_short_under_continuous_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let outbox = open(&db);
    let largest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let outbox = outbox.clone();
            let largest = std::sync::Arc::clone(&largest);
            tokio::spawn(async move {
                for i in 0..1500 {
                    let id = outbox
                        .enqueue(message(US, &format!("code {t}-{i}"), 1, None))
                        .await
                        .unwrap();
                    outbox.claim(id, "m0", T0).await.unwrap().unwrap();
                    outbox.mark_sent(id, &[1], T0 + 1).await.unwrap();
                    let bytes = outbox.wal_stats().unwrap().bytes;
                    largest.fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let largest = largest.load(std::sync::atomic::Ordering::Relaxed);
    let stats = outbox.wal_stats().unwrap();
    // Up to 18,000 commits (fewer when batched) of 2-3 pages each: without starting over the WAL would hold well
    // over 100 MiB; TAIL_COPY_FRAMES (2 MiB) plus a few rounds' frames is the bound.
    assert!(
        largest < 16 * 1024 * 1024,
        "largest WAL {largest} bytes, {stats:?}"
    );
}
