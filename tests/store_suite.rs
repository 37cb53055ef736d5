//! One behavioural suite of the outbox, written once and run against both backends: a real
//! SQLite file and a real PostgreSQL (a fresh database per test on the throwaway server of
//! `scripts/with-postgres`; without it the PostgreSQL half fails, saying how to run it).
//! Then what only a fleet has: several handles ("boxes", other node names) on one
//! database racing for claims, replay and rate limits fleet-wide, NOTIFY wake-ups and the
//! listener's reconnection, leases, fencing and takeover, concurrent migration, the
//! database going away and coming back, and the open errors.
//!
//! Times are real (the PostgreSQL backend decides on the database's clock); the few real
//! sleeps wait for a 1–2 s TTL or lease to pass. Nothing asserts how long anything took.
//!
//!   bash scripts/with-postgres cargo test --test store_suite

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use smsbridge::outbox::{
    ConnectProblem, DeliveryState, Heartbeat, MessageState, NewMessage, Outbox, OutboxError,
    OutboxOptions, PgOptions, RateCheck, RetryOutcome, RetryPolicy,
};
use support::pg;

const US: &str = "+12015550123";
const UK: &str = "+447400123456";
const TEXT: &str = "Your code is 740159";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// An outbox under test and what is needed to look behind it.
struct Store {
    kind: Kind,
    outbox: Outbox,
    opts: OutboxOptions,
    /// SQLite: the directory and the file.
    dir: Option<tempfile::TempDir>,
    path: Option<PathBuf>,
    /// PostgreSQL: the database's URL.
    url: Option<String>,
}

fn now() -> i64 {
    support::now_ms() as i64
}

fn message(to: &str, text: &str, parts: u8, signature: Option<&[u8]>) -> NewMessage {
    let at = now();
    NewMessage {
        to: to.to_owned(),
        text: text.to_owned(),
        parts,
        concat_ref: 0x1234,
        created_at_ms: at,
        expires_at_ms: at + 600_000,
        signature: signature.map(<[u8]>::to_vec),
        rate: None,
    }
}

fn pg_options(node: &str, opts: OutboxOptions, lease: Duration) -> PgOptions {
    PgOptions {
        node: node.to_owned(),
        lease,
        pool_size: 4,
        outbox: opts,
        ..PgOptions::default()
    }
}

async fn open_box(url: &str, node: &str, opts: OutboxOptions, lease: Duration) -> Outbox {
    Outbox::open_postgres(url, pg_options(node, opts, lease))
        .await
        .unwrap_or_else(|e| panic!("box {node} opens: {e}"))
}

impl Store {
    async fn new(kind: Kind) -> Store {
        Store::with(kind, OutboxOptions::default()).await
    }

    async fn with(kind: Kind, opts: OutboxOptions) -> Store {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path = dir.path().join("state").join("outbox.sqlite3");
                let outbox = Outbox::open(&path, opts.clone()).expect("outbox opens");
                Store {
                    kind,
                    outbox,
                    opts,
                    dir: Some(dir),
                    path: Some(path),
                    url: None,
                }
            }
            Kind::Postgres => {
                let url = pg::fresh_database().await;
                let outbox = open_box(&url, "a", opts.clone(), Duration::from_secs(30)).await;
                Store {
                    kind,
                    outbox,
                    opts,
                    dir: None,
                    path: None,
                    url: Some(url),
                }
            }
        }
    }

    /// The same store as a restarted process sees it: SQLite reopens the file; PostgreSQL
    /// opens a new handle with the same node name.
    async fn reopen(&mut self) {
        self.outbox.shutdown().await.expect("shutdown");
        self.outbox = match self.kind {
            Kind::Sqlite => Outbox::open(self.path.as_ref().unwrap(), self.opts.clone())
                .expect("outbox reopens"),
            Kind::Postgres => {
                open_box(
                    self.url.as_ref().unwrap(),
                    "a",
                    self.opts.clone(),
                    Duration::from_secs(30),
                )
                .await
            }
        };
    }

    /// Every stored (text, number) of the live messages table, read behind the outbox.
    async fn raw_rows(&self) -> Vec<(Option<String>, String)> {
        match self.kind {
            Kind::Sqlite => {
                let conn = rusqlite::Connection::open(self.path.as_ref().unwrap()).unwrap();
                let mut stmt = conn
                    .prepare("SELECT body, recipient FROM messages ORDER BY id")
                    .unwrap();
                stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            Kind::Postgres => sql_rows(
                self.url.as_ref().unwrap(),
                "SELECT body, recipient FROM messages ORDER BY id",
            )
            .await
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect(),
        }
    }
}

async fn sql_rows(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let rows = client.query(sql, &[]).await.expect(sql);
    drop(client);
    let _ = driver.await;
    rows
}

/// Runs each behaviour against both backends: `NAME::sqlite` and `NAME::postgres`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Kind::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Kind::Postgres).await
                }
            }
        )*
    };
}

both_backends!(
    a_message_is_claimed_once_sent_part_by_part_and_redacted,
    a_retry_is_scheduled_then_the_message_gives_up,
    failed_and_unknown_are_final_and_refuse_further_records,
    a_message_past_its_ttl_is_never_claimed_and_expires,
    a_final_message_leaves_no_text_or_number_in_the_live_table,
    a_dedup_key_answers_with_the_first_message,
    a_replayed_signature_is_refused,
    a_delivery_report_finds_its_part_by_modem_and_reference,
    purge_deletes_old_final_messages,
    recover_requeues_what_a_crash_left_sending,
    restart_whole_forgets_the_parts_under_a_new_reference,
    invalid_requests_and_a_full_outbox_are_refused,
    the_fleet_seam_on_one_box,
);

async fn a_message_is_claimed_once_sent_part_by_part_and_redacted(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let id = ob.enqueue(message(US, TEXT, 2, None)).await.unwrap();
    assert_eq!(ob.counts().queued, 1);
    let due = ob.due(now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id);
    let claimed = ob.claim_next("m0", now()).await.unwrap().expect("due");
    assert_eq!(claimed.id, id);
    assert_eq!((claimed.to.as_str(), claimed.text.as_str()), (US, TEXT));
    assert_eq!(
        (claimed.parts, claimed.parts_sent, claimed.attempt),
        (2, 0, 1)
    );
    assert_eq!(claimed.concat_ref, 0x1234);
    assert!(claimed.time_left(now()) > Duration::from_secs(500));
    assert!(
        ob.claim_next("m1", now()).await.unwrap().is_none(),
        "claimed twice"
    );
    assert_eq!((ob.counts().queued, ob.counts().sending), (0, 1));
    ob.mark_part_sent(id, 0, 41, now()).await.unwrap();
    ob.mark_sent(id, &[42], now()).await.unwrap();
    let summary = ob.message(id).await.unwrap().expect("kept");
    assert_eq!(summary.state, MessageState::Sent);
    assert_eq!(summary.to_masked, "+12*******23");
    assert_eq!(
        (summary.parts, summary.parts_sent, summary.attempts),
        (2, 2, 1)
    );
    assert_eq!(summary.modem.as_deref(), Some("m0"));
    assert!(summary.sent_at_ms.is_some() && summary.final_at_ms.is_some());
    assert_eq!(ob.counts().sent, 1);
    assert_eq!(ob.counts().depth(), 0);
    let recent = ob.recent(10).await.unwrap();
    assert_eq!(recent.len(), 1);
    let minute = now() - now() % 60_000;
    let chart = ob
        .sent_per_minute(minute - 60_000, minute + 60_000)
        .await
        .unwrap();
    assert_eq!(chart.iter().sum::<u64>(), 1, "{chart:?}");
    assert!(matches!(
        ob.mark_sent(id, &[], now()).await,
        Err(OutboxError::WrongState { .. })
    ));
}

async fn a_retry_is_scheduled_then_the_message_gives_up(kind: Kind) {
    let opts = OutboxOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
        },
        ..OutboxOptions::default()
    };
    let s = Store::with(kind, opts).await;
    let ob = &s.outbox;
    let id = ob.enqueue(message(UK, TEXT, 1, None)).await.unwrap();
    ob.claim_next("m0", now()).await.unwrap().expect("due");
    let at = now();
    match ob.mark_retry(id, "+CMS ERROR: 42", &[], at).await.unwrap() {
        RetryOutcome::Scheduled { at_ms } => assert!(at_ms >= at + 20, "{at_ms} vs {at}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ob.counts().queued, 1);
    let next = ob.next_due_at(at).await.unwrap().expect("a retry time");
    assert!(next > at, "the retry is in the future");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let again = ob
        .claim_next("m1", now())
        .await
        .unwrap()
        .expect("due again");
    assert_eq!(again.attempt, 2);
    assert_eq!(again.previous_modem.as_deref(), Some("m0"));
    assert_eq!(
        ob.mark_retry(id, "+CMS ERROR: 42", &[], now())
            .await
            .unwrap(),
        RetryOutcome::GaveUp
    );
    let summary = ob.message(id).await.unwrap().unwrap();
    assert_eq!(summary.state, MessageState::Failed);
    assert!(
        summary
            .last_error
            .unwrap()
            .contains("gave up after 2 attempts")
    );
    assert_eq!(ob.counts().failed, 1);
}

async fn failed_and_unknown_are_final_and_refuse_further_records(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let a = ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    let b = ob.enqueue(message(UK, TEXT, 1, None)).await.unwrap();
    ob.claim(a, "m0", now()).await.unwrap().expect("a due");
    ob.claim(b, "m1", now()).await.unwrap().expect("b due");
    ob.mark_failed(a, "+CMS ERROR: 21", &[], now())
        .await
        .unwrap();
    ob.mark_unknown(b, "no +CMGS", &[], now()).await.unwrap();
    assert_eq!(
        ob.message(a).await.unwrap().unwrap().state,
        MessageState::Failed
    );
    assert_eq!(
        ob.message(b).await.unwrap().unwrap().state,
        MessageState::Unknown
    );
    assert_eq!((ob.counts().failed, ob.counts().unknown), (1, 1));
    assert!(ob.claim_next("m0", now()).await.unwrap().is_none());
    for err in [
        ob.mark_part_sent(a, 0, 1, now()).await.unwrap_err(),
        ob.mark_sent(b, &[1], now()).await.unwrap_err(),
    ] {
        assert!(matches!(err, OutboxError::WrongState { .. }), "{err:?}");
    }
}

async fn a_message_past_its_ttl_is_never_claimed_and_expires(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let mut short = message(US, TEXT, 1, None);
    short.expires_at_ms = short.created_at_ms + 700;
    let id = ob.enqueue(short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        ob.claim_next("m0", now()).await.unwrap().is_none(),
        "sent after its TTL"
    );
    let swept = ob.sweep(now()).await.unwrap();
    assert_eq!((swept.expired, swept.taken_over), (1, 0));
    assert_eq!(
        ob.message(id).await.unwrap().unwrap().state,
        MessageState::Expired
    );
    assert_eq!(ob.counts().expired, 1);
    assert_eq!(ob.sweep(now()).await.unwrap().expired, 0, "expired twice");
}

async fn a_final_message_leaves_no_text_or_number_in_the_live_table(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let sent = ob
        .enqueue(message(US, "code 111111", 1, None))
        .await
        .unwrap();
    let failed = ob
        .enqueue(message(UK, "code 222222", 1, None))
        .await
        .unwrap();
    let waiting = ob
        .enqueue(message(US, "code 333333", 1, None))
        .await
        .unwrap();
    ob.claim(sent, "m0", now()).await.unwrap().unwrap();
    ob.mark_sent(sent, &[1], now()).await.unwrap();
    ob.claim(failed, "m0", now()).await.unwrap().unwrap();
    ob.mark_failed(failed, "+CMS ERROR: 21", &[], now())
        .await
        .unwrap();
    let rows = s.raw_rows().await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], (None, "+12*******23".to_owned()), "sent: redacted");
    assert_eq!(
        rows[1],
        (None, "+44********56".to_owned()),
        "failed: redacted"
    );
    assert_eq!(
        rows[2],
        (Some("code 333333".to_owned()), US.to_owned()),
        "still queued: kept for sending"
    );
    let _ = waiting;
}

async fn a_dedup_key_answers_with_the_first_message(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let key = [7u8; 32];
    let until = now() + 60_000;
    let first = ob
        .enqueue_dedup(message(US, TEXT, 1, None), key, until)
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = ob
        .enqueue_dedup(message(US, TEXT, 1, None), key, until)
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(ob.dedup_lookup(key, now()).await.unwrap(), Some(first.id));
    assert_eq!(ob.dedup_lookup([8u8; 32], now()).await.unwrap(), None);
    let other = ob
        .enqueue_dedup(message(US, TEXT, 1, None), [8u8; 32], until)
        .await
        .unwrap();
    assert!(!other.duplicate && other.id != first.id);
    assert_eq!(ob.counts().queued, 2);
}

async fn a_replayed_signature_is_refused(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    ob.enqueue(message(US, TEXT, 1, Some(b"sig-1")))
        .await
        .unwrap();
    assert_eq!(
        ob.enqueue(message(US, TEXT, 1, Some(b"sig-1"))).await,
        Err(OutboxError::Duplicate)
    );
    ob.enqueue(message(US, TEXT, 1, Some(b"sig-2")))
        .await
        .unwrap();
    ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    assert_eq!(ob.counts().queued, 4);
}

async fn a_delivery_report_finds_its_part_by_modem_and_reference(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let id = ob.enqueue(message(US, TEXT, 2, None)).await.unwrap();
    ob.claim(id, "m0", now()).await.unwrap().unwrap();
    ob.mark_sent(id, &[17, 18], now()).await.unwrap();
    // Both reports carry the same millisecond, as two reports read in one
    // burst from the modem do: the later part's status must still be shown.
    let reported = now();
    assert_eq!(
        ob.record_delivery("m1", 17, 0, DeliveryState::Delivered, reported)
            .await
            .unwrap(),
        None,
        "another modem's reference"
    );
    assert_eq!(
        ob.record_delivery("m0", 17, 0, DeliveryState::Delivered, reported)
            .await
            .unwrap(),
        Some(id)
    );
    let pending = ob.message(id).await.unwrap().unwrap().delivery.unwrap();
    assert_eq!(pending.state, DeliveryState::Pending);
    assert_eq!(pending.parts_delivered, 1);
    ob.record_delivery("m0", 18, 0x41, DeliveryState::Failed, reported)
        .await
        .unwrap();
    let failed = ob.message(id).await.unwrap().unwrap().delivery.unwrap();
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(failed.last_status, Some(0x41));
    assert!(failed.last_report_at_ms.is_some());
}

async fn purge_deletes_old_final_messages(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let done = ob
        .enqueue(message(US, TEXT, 1, Some(b"sig")))
        .await
        .unwrap();
    let waiting = ob.enqueue(message(UK, TEXT, 1, None)).await.unwrap();
    ob.claim(done, "m0", now()).await.unwrap().unwrap();
    ob.mark_sent(done, &[3], now()).await.unwrap();
    assert_eq!(ob.purge(now() - 3_600_000).await.unwrap(), 0, "too recent");
    assert_eq!(ob.purge(now() + 3_600_000).await.unwrap(), 1);
    assert!(ob.message(done).await.unwrap().is_none());
    assert!(
        ob.message(waiting).await.unwrap().is_some(),
        "not final: kept"
    );
    assert_eq!((ob.counts().sent, ob.counts().queued), (0, 1));
    // Replay protection ends with the purge, as documented.
    ob.enqueue(message(US, TEXT, 1, Some(b"sig")))
        .await
        .unwrap();
}

async fn recover_requeues_what_a_crash_left_sending(kind: Kind) {
    let mut s = Store::new(kind).await;
    let partly = s.outbox.enqueue(message(US, TEXT, 3, None)).await.unwrap();
    let complete = s.outbox.enqueue(message(UK, TEXT, 1, None)).await.unwrap();
    s.outbox.claim(partly, "m0", now()).await.unwrap().unwrap();
    s.outbox.mark_part_sent(partly, 0, 9, now()).await.unwrap();
    s.outbox
        .claim(complete, "m0", now())
        .await
        .unwrap()
        .unwrap();
    s.outbox
        .mark_part_sent(complete, 0, 10, now())
        .await
        .unwrap();
    s.reopen().await;
    let recovered = s.outbox.recover(now()).await.unwrap();
    assert_eq!(
        (recovered.requeued, recovered.completed, recovered.queued),
        (1, 1, 1)
    );
    assert_eq!(
        s.outbox.message(complete).await.unwrap().unwrap().state,
        MessageState::Sent
    );
    let again = s
        .outbox
        .claim_next("m0", now())
        .await
        .unwrap()
        .expect("requeued");
    assert_eq!(again.id, partly);
    assert_eq!(
        (again.parts_sent, again.concat_ref, again.attempt),
        (1, 0x1234, 2)
    );
    s.outbox.mark_sent(partly, &[11, 12], now()).await.unwrap();
}

async fn restart_whole_forgets_the_parts_under_a_new_reference(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let id = ob.enqueue(message(US, TEXT, 2, None)).await.unwrap();
    ob.claim(id, "m0", now()).await.unwrap().unwrap();
    assert!(
        !ob.restart_whole(id, 99, "x").await.unwrap(),
        "sending: not restarted"
    );
    let outcome = ob.mark_retry(id, "modem gone", &[5], now()).await.unwrap();
    assert!(matches!(outcome, RetryOutcome::Scheduled { .. }));
    assert!(
        ob.restart_whole(id, 999, "sent whole on another modem")
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the default 1 s backoff
    let again = ob.claim_next("m1", now()).await.unwrap().expect("due");
    assert_eq!((again.parts_sent, again.concat_ref), (0, 999));
    let summary = ob.message(id).await.unwrap().unwrap();
    assert_eq!(
        summary.last_error.as_deref(),
        Some("sent whole on another modem")
    );
}

async fn invalid_requests_and_a_full_outbox_are_refused(kind: Kind) {
    let s = Store::with(
        kind,
        OutboxOptions {
            max_depth: 2,
            ..OutboxOptions::default()
        },
    )
    .await;
    let ob = &s.outbox;
    let mut none = message(US, TEXT, 1, None);
    none.parts = 0;
    assert!(matches!(
        ob.enqueue(none).await,
        Err(OutboxError::Invalid(_))
    ));
    let mut late = message(US, TEXT, 1, None);
    late.expires_at_ms = late.created_at_ms;
    assert!(matches!(
        ob.enqueue(late).await,
        Err(OutboxError::Invalid(_))
    ));
    let id = ob.enqueue(message(US, TEXT, 2, None)).await.unwrap();
    ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    assert!(matches!(
        ob.enqueue(message(US, TEXT, 1, None)).await,
        Err(OutboxError::Full { depth: 2 })
    ));
    ob.claim(id, "m0", now()).await.unwrap().unwrap();
    assert!(matches!(
        ob.mark_part_sent(id, 1, 1, now()).await,
        Err(OutboxError::Invalid(_))
    ));
    assert!(matches!(
        ob.mark_sent(id, &[1], now()).await,
        Err(OutboxError::Invalid(_))
    ));
}

/// The seam's additions where one box has them all: trivial on SQLite, real on PostgreSQL.
async fn the_fleet_seam_on_one_box(kind: Kind) {
    let s = Store::new(kind).await;
    let ob = &s.outbox;
    let id = ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    ob.claim(id, "m0", now()).await.unwrap().unwrap();
    assert!(ob.lease_fresh(id));
    ob.renew(id).await.unwrap();
    assert!(ob.writable());
    ob.heartbeat(Heartbeat {
        modems: r#"[{"name":"m0"}]"#.to_owned(),
        queue_local: 1,
    })
    .await
    .unwrap();
    let fleet = ob.fleet().await.unwrap();
    assert_eq!(fleet.len(), 1);
    assert!(fleet[0].this);
    assert_eq!(fleet[0].modems, r#"[{"name":"m0"}]"#);
    assert!(fleet[0].last_seen_ms > 0);
    ob.mark_sent(id, &[1], now()).await.unwrap();
    let summary = ob.message(id).await.unwrap().unwrap();
    match kind {
        Kind::Sqlite => {
            assert_eq!(fleet[0].name, "local");
            ob.set_node_name("pi-a");
            assert_eq!(ob.fleet().await.unwrap()[0].name, "pi-a");
            assert_eq!(ob.backend_name(), "sqlite");
            assert_eq!(ob.lease_duration(), None);
            assert_eq!(summary.node, None);
        }
        Kind::Postgres => {
            assert_eq!(ob.backend_name(), "postgres");
            assert_eq!(ob.lease_duration(), Some(Duration::from_secs(30)));
            assert_eq!(summary.node.as_deref(), Some("a"));
            assert_eq!(fleet[0].name, "a");
        }
    }
    let _ = &s.dir;
}

// ---------------------------------------------------------------------------------------
// What only a fleet has: several boxes on one PostgreSQL database.

async fn boxes(url: &str, names: &[&str], lease: Duration) -> Vec<Outbox> {
    let mut out = Vec::new();
    for name in names {
        out.push(open_box(url, name, OutboxOptions::default(), lease).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_on_three_boxes_never_give_a_message_twice() {
    let url = pg::fresh_database().await;
    let fleet = boxes(&url, &["a", "b", "c"], Duration::from_secs(30)).await;
    const N: usize = 60;
    for i in 0..N {
        fleet[i % 3]
            .enqueue(message(US, &format!("code {i}"), 1, None))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for (b, ob) in fleet.iter().enumerate() {
        for m in 0..4 {
            let ob = ob.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = ob.claim_next(&format!("m{m}"), now()).await.unwrap() {
                    got.push(c.id);
                }
                (b, got)
            }));
        }
    }
    let mut seen = HashSet::new();
    let mut boxes_that_claimed = HashSet::new();
    for task in tasks {
        let (b, got) = task.await.unwrap();
        if !got.is_empty() {
            boxes_that_claimed.insert(b);
        }
        for id in got {
            assert!(seen.insert(id), "message {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), N, "every message claimed once");
    eprintln!("claims spread over {} boxes", boxes_that_claimed.len());
}

#[tokio::test]
async fn a_signature_replayed_to_another_box_is_refused() {
    let url = pg::fresh_database().await;
    let fleet = boxes(&url, &["a", "b"], Duration::from_secs(30)).await;
    fleet[0]
        .enqueue(message(US, TEXT, 1, Some(b"sig-x")))
        .await
        .unwrap();
    assert_eq!(
        fleet[1].enqueue(message(US, TEXT, 1, Some(b"sig-x"))).await,
        Err(OutboxError::Duplicate)
    );
    // At the same moment on both boxes: exactly one is accepted.
    let (x, y) = tokio::join!(
        fleet[0].enqueue(message(US, TEXT, 1, Some(b"sig-y"))),
        fleet[1].enqueue(message(US, TEXT, 1, Some(b"sig-y")))
    );
    assert_eq!(
        [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{x:?} {y:?}"
    );
    // The dedup key is fleet-wide too.
    let key = [3u8; 32];
    let until = now() + 60_000;
    let first = fleet[0]
        .enqueue_dedup(message(US, TEXT, 1, None), key, until)
        .await
        .unwrap();
    let second = fleet[1]
        .enqueue_dedup(message(US, TEXT, 1, None), key, until)
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(second.id, first.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_holds_across_boxes() {
    let url = pg::fresh_database().await;
    let fleet = boxes(&url, &["a", "b", "c"], Duration::from_secs(30)).await;
    let check = RateCheck {
        key: [9u8; 32],
        limit: 3,
        window_ms: 60_000,
    };
    let mut tasks = Vec::new();
    for i in 0..9 {
        let ob = fleet[i % 3].clone();
        tasks.push(tokio::spawn(async move {
            let mut m = message(US, TEXT, 1, None);
            m.rate = Some(check);
            ob.enqueue(m).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(OutboxError::RateLimited { retry_after_ms }) => {
                assert!((1..=60_000).contains(&retry_after_ms), "{retry_after_ms}")
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted, 3, "three per window, fleet-wide");
    // Another number has its own allowance.
    let mut other = message(UK, TEXT, 1, None);
    other.rate = Some(RateCheck {
        key: [10u8; 32],
        ..check
    });
    fleet[2].enqueue(other).await.unwrap();
    // A refused message stored nothing.
    assert_eq!(sql_rows(&url, "SELECT id FROM messages").await.len(), 4);
}

/// The backend PID of box `node`'s LISTEN connection, once it is listening.
async fn listener_pid(url: &str, node: &str, not: Option<i32>) -> i32 {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'smsbridge:{node}:listen' \
         AND query LIKE 'LISTEN%'"
    );
    for _ in 0..200 {
        let rows = sql_rows(url, &sql).await;
        if let Some(pid) = rows
            .iter()
            .map(|r| r.get::<_, i32>(0))
            .find(|p| Some(*p) != not)
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("box {node} is not listening");
}

/// Consumes a pending wake-up, if any.
async fn drain(ob: &Outbox) {
    let _ = tokio::time::timeout(Duration::from_millis(300), ob.work_due()).await;
}

#[tokio::test]
async fn notify_from_one_box_wakes_another_and_the_listener_reconnects() {
    let url = pg::fresh_database().await;
    let fleet = boxes(&url, &["a", "b"], Duration::from_secs(30)).await;
    let pid = listener_pid(&url, "b", None).await;
    drain(&fleet[1]).await;
    fleet[0].enqueue(message(US, TEXT, 1, None)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), fleet[1].work_due())
        .await
        .expect("box b woken by box a's NOTIFY");

    // Cut b's LISTEN connection: it comes back by itself and hears the next NOTIFY.
    let killed = sql_rows(&url, &format!("SELECT pg_terminate_backend({pid})")).await;
    assert!(killed[0].get::<_, bool>(0));
    let new_pid = listener_pid(&url, "b", Some(pid)).await;
    assert_ne!(new_pid, pid);
    drain(&fleet[1]).await;
    fleet[0].enqueue(message(UK, TEXT, 1, None)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), fleet[1].work_due())
        .await
        .expect("box b woken after its listener reconnected");
    // And b's counts are the fleet's.
    for _ in 0..100 {
        if fleet[1].counts().queued == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fleet[1].counts().queued, 2, "fleet-wide counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lapsed_lease_is_taken_over_and_the_stalled_box_is_fenced() {
    let url = pg::fresh_database().await;
    let lease = Duration::from_secs(3);
    let fleet = boxes(&url, &["a", "b", "c"], lease).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    let partly = a.enqueue(message(US, "partly", 3, None)).await.unwrap();
    let recorded = a.enqueue(message(US, "recorded", 1, None)).await.unwrap();
    let late = a.enqueue(message(US, "late", 1, None)).await.unwrap();
    let idle = a.enqueue(message(US, "idle", 1, None)).await.unwrap();
    for id in [partly, recorded, late, idle] {
        a.claim(id, "m0", now()).await.unwrap().expect("due");
    }
    a.mark_part_sent(partly, 0, 1, now()).await.unwrap();
    a.mark_part_sent(recorded, 0, 2, now()).await.unwrap();
    assert!(a.lease_fresh(partly));
    assert!(a.lease_surely_held(partly));
    assert!(
        !b.lease_surely_held(partly),
        "a box holds no lease on another box's claim"
    );
    assert_eq!(
        b.sweep(now()).await.unwrap().taken_over,
        0,
        "leases still held"
    );
    tokio::time::sleep(lease + Duration::from_millis(400)).await;
    assert!(!a.lease_fresh(partly), "the lease is no longer fresh");
    assert!(
        !a.lease_surely_held(partly),
        "past the lease, a part may not go out unrenewed"
    );
    // Lapsed but not yet taken over: a's late record still counts.
    a.mark_sent(late, &[3], now()).await.unwrap();

    // b and c sweep at once: each lapsed message taken over exactly once.
    let (x, y) = tokio::join!(fleet[1].sweep(now()), fleet[2].sweep(now()));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.taken_over + y.taken_over, 3, "{x:?} {y:?}");
    assert_eq!(b.sweep(now()).await.unwrap().taken_over, 0, "idempotent");

    // The stalled box wakes up: it can neither continue nor finish.
    // Connected beforehand, so it asks the moment a's last write returns.
    let (probe, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let probe_driver = tokio::spawn(connection);
    assert_eq!(
        a.mark_part_sent(partly, 1, 4, now()).await,
        Err(OutboxError::Fenced)
    );
    assert_eq!(a.renew(partly).await, Err(OutboxError::Fenced));
    assert_eq!(
        a.mark_sent(recorded, &[], now()).await,
        Err(OutboxError::Fenced)
    );
    assert_eq!(
        a.mark_failed(idle, "x", &[], now()).await,
        Err(OutboxError::Fenced)
    );
    // Its refused writes locked the rows to read their lease; the locks went with the
    // refusal, or b's SKIP LOCKED claim below would pass the rows by.
    let locked = probe
        .query(
            "SELECT id FROM messages WHERE id = ANY($1) FOR UPDATE NOWAIT",
            &[&vec![partly.0, recorded.0, idle.0]],
        )
        .await;
    assert!(
        locked.is_ok(),
        "a refused write still holds a row lock: {locked:?}"
    );
    drop(probe);
    let _ = probe_driver.await;
    assert!(!a.lease_fresh(partly));

    // Every part of `recorded` was accepted: sent, not sent again.
    assert_eq!(
        b.message(recorded).await.unwrap().unwrap().state,
        MessageState::Sent
    );
    assert_eq!(
        b.message(late).await.unwrap().unwrap().state,
        MessageState::Sent
    );
    // `partly` starts over whole, from another box's modem, under a new reference.
    let mut claimed = Vec::new();
    while let Some(c) = b.claim_next("m9", now()).await.unwrap() {
        claimed.push(c);
    }
    assert_eq!(claimed.len(), 2, "partly and idle");
    let p = claimed.iter().find(|c| c.id == partly).unwrap();
    assert_eq!(p.parts_sent, 0);
    assert_eq!(p.previous_modem.as_deref(), Some("a/m0"));
    let why = b
        .message(partly)
        .await
        .unwrap()
        .unwrap()
        .last_error
        .unwrap();
    assert!(why.contains("sent whole again under reference"), "{why}");
    assert!(
        why.contains(&format!("reference {}", p.concat_ref)),
        "{why}"
    );
    b.mark_part_sent(partly, 0, 5, now()).await.unwrap();
    b.mark_sent(partly, &[6, 7], now()).await.unwrap();
    let done = b.message(partly).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.node.as_deref()),
        (MessageState::Sent, Some("b"))
    );
    assert_eq!(
        a.mark_sent(partly, &[], now()).await,
        Err(OutboxError::Fenced)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_boxes_opening_a_fresh_database_at_once_migrate_safely() {
    let url = pg::fresh_database().await;
    let mut tasks = Vec::new();
    for i in 0..5 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            Outbox::open_postgres(
                &url,
                pg_options(
                    &format!("box{i}"),
                    OutboxOptions::default(),
                    Duration::from_secs(30),
                ),
            )
            .await
        }));
    }
    let mut fleet = Vec::new();
    for task in tasks {
        fleet.push(task.await.unwrap().expect("every box opens"));
    }
    let versions = sql_rows(&url, "SELECT version FROM smsbridge_schema").await;
    assert_eq!(versions.len(), 1, "migrated once");
    fleet[4].enqueue(message(US, TEXT, 1, None)).await.unwrap();
    assert!(fleet[0].claim_next("m0", now()).await.unwrap().is_some());
}

#[tokio::test]
async fn the_database_going_away_is_unavailable_and_comes_back_without_reopening() {
    let server = tokio::task::spawn_blocking(pg::PrivateServer::start)
        .await
        .unwrap();
    let url = pg::fresh_database_on(&server.admin_url()).await;
    let ob = open_box(&url, "a", OutboxOptions::default(), Duration::from_secs(30)).await;
    let sending = ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    ob.claim(sending, "m0", now()).await.unwrap().unwrap();

    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    match ob.enqueue(message(UK, TEXT, 1, None)).await {
        Err(OutboxError::Unavailable { message }) => eprintln!("while stopped: {message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(!ob.writable(), "not writable while the database is away");
    assert!(matches!(
        ob.claim_next("m0", now()).await,
        Err(OutboxError::Unavailable { .. })
    ));

    let server = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    })
    .await
    .unwrap();
    // The send that was under way is recorded now that the database is back.
    let mut recorded = Err(OutboxError::Closed);
    for _ in 0..100 {
        recorded = ob.mark_sent(sending, &[1], now()).await;
        if !matches!(recorded, Err(OutboxError::Unavailable { .. })) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    recorded.expect("recorded after the database came back");
    assert!(ob.writable());
    let id = ob.enqueue(message(UK, TEXT, 1, None)).await.unwrap();
    assert_eq!(
        ob.message(id).await.unwrap().unwrap().state,
        MessageState::Queued
    );
    // The listener came back too.
    listener_pid(&url, "a", None).await;
    drop(server);
}

fn connect_problem(result: Result<Outbox, OutboxError>) -> (ConnectProblem, String) {
    match result {
        Err(OutboxError::Connect { problem, message }) => (problem, message),
        Err(other) => panic!("expected a Connect error, got {other:?}"),
        Ok(_) => panic!("opened"),
    }
}

#[tokio::test]
async fn open_errors_name_the_problem_and_never_the_password() {
    let url = pg::fresh_database().await;
    let opts = || {
        let mut o = pg_options("a", OutboxOptions::default(), Duration::from_secs(30));
        o.connect_timeout = Duration::from_secs(3);
        o
    };
    let password = "Wr0ngPassw0rdXyz";
    let admin = pg::admin_url();

    // Wrong password.
    let wrong = pg::with_user(&url, "smsbridge_admin", password);
    let (problem, message) = connect_problem(Outbox::open_postgres(&wrong, opts()).await);
    assert_eq!(problem, ConnectProblem::Auth, "{message}");
    assert!(!message.contains(password), "{message}");
    eprintln!("wrong password: {message}");

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("postgresql://smsbridge:{password}@127.0.0.1:{port}/smsbridge");
    let (problem, message) = connect_problem(Outbox::open_postgres(&nowhere, opts()).await);
    assert_eq!(problem, ConnectProblem::Unreachable, "{message}");
    assert!(!message.contains(password), "{message}");

    // Not a URL.
    let bad = format!("postgresql://smsbridge:{password}@127.0.0.1:notaport/x");
    let (problem, message) = connect_problem(Outbox::open_postgres(&bad, opts()).await);
    assert_eq!(problem, ConnectProblem::BadUrl, "{message}");
    assert!(!message.contains(password), "{message}");

    // TLS asked for, the server has none.
    let tls = format!("{url}?sslmode=require");
    let (problem, message) = connect_problem(Outbox::open_postgres(&tls, opts()).await);
    assert_eq!(problem, ConnectProblem::Tls, "{message}");

    // A role that may log in but not create the tables.
    let role = pg::random_name("smsbridge_weak");
    pg::execute(
        &admin,
        &format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
    )
    .await;
    let weak = pg::with_user(&url, &role, password);
    let (problem, message) = connect_problem(Outbox::open_postgres(&weak, opts()).await);
    assert_eq!(problem, ConnectProblem::Permission, "{message}");
    assert!(!message.contains(password), "{message}");
    eprintln!("no permission: {message}");

    // Once the schema exists, a role without rights on the tables is told so too.
    open_box(&url, "a", OutboxOptions::default(), Duration::from_secs(30)).await;
    let (problem, message) = connect_problem(Outbox::open_postgres(&weak, opts()).await);
    assert_eq!(problem, ConnectProblem::Permission, "{message}");
}

/// Row versions (live or dead, every item on every page) of the messages table that hold
/// `needle`, read with pageinspect as the superuser: what a forensic look at the table
/// would find, beyond what queries see.
async fn versions_holding(url: &str, needle: &str) -> i64 {
    sql_rows(
        url,
        &format!(
            "SELECT count(*)
             FROM generate_series(0, pg_relation_size('messages') / 8192 - 1) AS p,
                  LATERAL heap_page_items(get_raw_page('messages', p::int)) AS item
             WHERE position('{needle}'::bytea IN item.t_data) > 0"
        ),
    )
    .await[0]
        .get(0)
}

#[tokio::test]
async fn the_sweep_vacuums_redacted_row_versions_out_of_the_table() {
    let url = pg::fresh_database().await;
    pg::execute(&url, "CREATE EXTENSION pageinspect").await;
    let mut opts = pg_options("a", OutboxOptions::default(), Duration::from_secs(30));
    opts.vacuum_every = Duration::ZERO;
    let ob = Outbox::open_postgres(&url, opts).await.unwrap();
    let id = ob
        .enqueue(message(US, "code 918273", 1, None))
        .await
        .unwrap();
    ob.claim(id, "m0", now()).await.unwrap().unwrap();
    ob.mark_sent(id, &[1], now()).await.unwrap();
    // Invisible to every query at once...
    let visible = sql_rows(
        &url,
        "SELECT id FROM messages WHERE body IS NOT NULL OR recipient LIKE '%5550123'",
    )
    .await;
    assert_eq!(visible.len(), 0);
    // ...but the old row versions are still in the table until VACUUM prunes them.
    assert!(
        versions_holding(&url, "code 918273").await > 0,
        "dead versions are there"
    );
    ob.sweep(now()).await.unwrap();
    let mut left = (1, 1);
    for _ in 0..100 {
        left = (
            versions_holding(&url, "code 918273").await,
            versions_holding(&url, US).await,
        );
        if left == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left,
        (0, 0),
        "no row version holds the text or the number after VACUUM"
    );
}

/// Writes a test CA and a server certificate for 127.0.0.1 (openssl) into `dir`; the
/// server settings that use them.
fn tls_files(dir: &std::path::Path) -> Vec<String> {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]);
    ca.extend(["-subj", "/CN=smsbridge test CA"]);
    openssl(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    vec![
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", dir.join("server.pem").display()),
        format!("ssl_key_file={}", dir.join("server.key").display()),
    ]
}

#[tokio::test]
async fn tls_when_the_url_asks_for_it_with_the_certificate_verified() {
    let server = tokio::task::spawn_blocking(|| pg::PrivateServer::start_with(tls_files))
        .await
        .unwrap();
    let url = pg::fresh_database_on(&server.admin_url()).await;
    let ca = server.dir().join("ca.pem");
    let opts = |node: &str| pg_options(node, OutboxOptions::default(), Duration::from_secs(30));

    // verify-full against the test CA: TLS, and it works.
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let ob = Outbox::open_postgres(&verified, opts("tls"))
        .await
        .unwrap_or_else(|e| panic!("TLS open: {e}"));
    let id = ob.enqueue(message(US, TEXT, 1, None)).await.unwrap();
    assert!(ob.claim(id, "m0", now()).await.unwrap().is_some());
    let encrypted = sql_rows(
        &url,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name LIKE 'smsbridge:tls%' AND s.ssl",
    )
    .await[0]
        .get::<_, i64>(0);
    assert!(encrypted >= 1, "the box's connections use TLS");
    let plain = sql_rows(
        &url,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name LIKE 'smsbridge:tls%' AND NOT s.ssl",
    )
    .await[0]
        .get::<_, i64>(0);
    assert_eq!(plain, 0, "no plaintext connection of the TLS box");

    // require, but the server's CA is not in the system's store: refused, not unverified.
    let unverified = format!("{url}?sslmode=require");
    let (problem, message) = connect_problem(Outbox::open_postgres(&unverified, opts("x")).await);
    assert_eq!(problem, ConnectProblem::Tls, "{message}");
    eprintln!("untrusted certificate: {message}");

    // No sslmode: plaintext, as libpq's default would fall back to on a server without TLS.
    Outbox::open_postgres(&url, opts("plain")).await.unwrap();
}
