//! A model-based property test of the outbox: random sequences of operations run against
//! the real SQLite store and against a small in-memory model of its state machine; after
//! every step the two must agree on what each operation answered and on the queue counts.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use smsbridge::outbox::{
    MessageId, NewMessage, Outbox, OutboxOptions, QueueCounts, RetryOutcome, RetryPolicy,
};

const T0: i64 = 1_700_000_000_000;
const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Accept a message that lives `ttl_ms`.
    Enqueue {
        ttl_ms: i64,
    },
    /// A modem asks for the most overdue due message.
    ClaimNext,
    /// The `n`-th message being sent (modulo how many are) ends so.
    Sent(usize),
    Retry(usize),
    Failed(usize),
    Unknown(usize),
    Expire,
    /// Time passes.
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1_000i64..20_000).prop_map(|ttl_ms| Op::Enqueue { ttl_ms }),
        3 => Just(Op::ClaimNext),
        1 => (0usize..4).prop_map(Op::Sent),
        2 => (0usize..4).prop_map(Op::Retry),
        1 => (0usize..4).prop_map(Op::Failed),
        1 => (0usize..4).prop_map(Op::Unknown),
        1 => Just(Op::Expire),
        2 => (0i64..5_000).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Sending,
    Sent,
    Failed,
    Expired,
    Unknown,
}

#[derive(Debug)]
struct Msg {
    state: State,
    attempts: u32,
    next_at: i64,
    expires_at: i64,
}

#[derive(Default)]
struct Model {
    msgs: BTreeMap<i64, Msg>,
}

impl Model {
    fn counts(&self) -> QueueCounts {
        let mut c = QueueCounts::default();
        for m in self.msgs.values() {
            match m.state {
                State::Queued => c.queued += 1,
                State::Sending => c.sending += 1,
                State::Sent => c.sent += 1,
                State::Failed => c.failed += 1,
                State::Expired => c.expired += 1,
                State::Unknown => c.unknown += 1,
            }
        }
        c
    }

    /// The store's order: earliest due time, then lowest id; expired ones never.
    fn next_due(&self, now: i64) -> Option<i64> {
        self.msgs
            .iter()
            .filter(|(_, m)| m.state == State::Queued && m.next_at <= now && m.expires_at > now)
            .min_by_key(|(id, m)| (m.next_at, **id))
            .map(|(id, _)| *id)
    }

    fn sending(&self, n: usize) -> Option<i64> {
        let ids: Vec<i64> = self
            .msgs
            .iter()
            .filter(|(_, m)| m.state == State::Sending)
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[n % ids.len()])
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: MAX_ATTEMPTS,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_millis(2_000),
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        &dir.path().join("outbox.sqlite3"),
        OutboxOptions {
            retry: policy(),
            ..OutboxOptions::default()
        },
    )
    .unwrap();
    let mut model = Model::default();
    let mut now = T0;
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Enqueue { ttl_ms } => {
                let id = outbox
                    .enqueue(NewMessage {
                        to: "+12015550123".into(),
                        text: "Your code is 1234".into(),
                        parts: 1,
                        concat_ref: 7,
                        created_at_ms: now,
                        expires_at_ms: now + ttl_ms,
                        signature: None,
                        rate: None,
                    })
                    .await
                    .unwrap();
                prop_assert!(!model.msgs.contains_key(&id.0), "ids are never reused");
                model.msgs.insert(
                    id.0,
                    Msg {
                        state: State::Queued,
                        attempts: 0,
                        next_at: now,
                        expires_at: now + ttl_ms,
                    },
                );
            }
            Op::ClaimNext => {
                let got = outbox.claim_next("m0", now).await.unwrap().map(|c| c.id.0);
                let want = model.next_due(now);
                prop_assert_eq!(got, want, "step {}: claim_next", step);
                if let Some(id) = want {
                    let m = model.msgs.get_mut(&id).unwrap();
                    m.state = State::Sending;
                    m.attempts += 1;
                }
            }
            Op::Sent(n) | Op::Failed(n) | Op::Unknown(n) | Op::Retry(n) => {
                let Some(id) = model.sending(n) else { continue };
                let mid = MessageId(id);
                let m = model.msgs.get_mut(&id).unwrap();
                match op {
                    Op::Sent(_) => {
                        outbox.mark_sent(mid, &[1], now).await.unwrap();
                        m.state = State::Sent;
                    }
                    Op::Failed(_) => {
                        outbox.mark_failed(mid, "refused", &[], now).await.unwrap();
                        m.state = State::Failed;
                    }
                    Op::Unknown(_) => {
                        outbox
                            .mark_unknown(mid, "no answer", &[], now)
                            .await
                            .unwrap();
                        m.state = State::Unknown;
                    }
                    _ => {
                        let got = outbox.mark_retry(mid, "busy", &[], now).await.unwrap();
                        if m.attempts >= MAX_ATTEMPTS {
                            prop_assert_eq!(got, RetryOutcome::GaveUp, "step {}", step);
                            m.state = State::Failed;
                        } else {
                            let at = now + policy().backoff(m.attempts).as_millis() as i64;
                            prop_assert_eq!(
                                got,
                                RetryOutcome::Scheduled { at_ms: at },
                                "step {}",
                                step
                            );
                            m.state = State::Queued;
                            m.next_at = at;
                        }
                    }
                }
            }
            Op::Expire => {
                let got: Vec<i64> = outbox
                    .expire_due(now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|i| i.0)
                    .collect();
                let want: Vec<i64> = model
                    .msgs
                    .iter()
                    .filter(|(_, m)| m.state == State::Queued && m.expires_at <= now)
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(&got, &want, "step {}: expire_due", step);
                for id in want {
                    model.msgs.get_mut(&id).unwrap().state = State::Expired;
                }
            }
            Op::Advance(ms) => now += ms,
        }
        prop_assert_eq!(outbox.counts(), model.counts(), "step {}: counts", step);
    }
    Ok(())
}

proptest! {
    // Each case is a fresh SQLite file with an fsync per commit: few cases, long sequences.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_its_model(ops in prop::collection::vec(op(), 1..80)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
