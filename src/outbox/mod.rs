//! The durable outbox: message states, retries, TTL, redaction, delivery reports.
//!
//! The rest of the program holds an [`Outbox`], a cheap clonable handle with async methods.
//! It has two backends with the same behaviour: SQLite in `state_dir` (the embedded
//! default, [`Outbox::open`]) and PostgreSQL shared by a fleet of boxes
//! ([`Outbox::open_postgres`], see `postgres/mod.rs` for what differs: leases, fencing,
//! the database's clock). On SQLite, one writer thread owns the only database connection (rusqlite is blocking);
//! see `writer.rs` for the group commit that lets a burst of requests share one fsync.
//! Every method answers only after its change is committed (durable: WAL with
//! `synchronous=FULL`), so the HTTP layer may answer `202` as soon as
//! [`Outbox::enqueue`] returns.
//!
//! # Life of a message
//!
//! ```text
//!            enqueue            claim / claim_next
//!   (new) ──────────▶ queued ─────────────────────▶ sending ──mark_sent────▶ sent
//!                     ▲  │                            │  │
//!          mark_retry │  │ expire_due                 │  └─mark_failed───▶ failed
//!   (and recover      │  ▼                            │    (or mark_retry out of attempts)
//!    after a crash)   │ expired                       └────mark_unknown──▶ unknown
//!                     └───────────────────────────────┘
//! ```
//!
//! `sent`, `failed`, `expired` and `unknown` are final. On reaching one, a message is
//! redacted in the same transaction: its text is deleted and its number replaced by the
//! masked form (`+12*******23`); `secure_delete` zeroes the old bytes in the database file
//! and a `TRUNCATE` checkpoint soon after removes them from the WAL. Final rows are kept,
//! redacted, for the status page and replay protection until [`Outbox::purge`].
//!
//! Error texts given to `mark_retry`, `mark_failed` and `mark_unknown` are stored and shown
//! on the status page: words for the operator (`+CMS ERROR: 42`), never a number or a text.
//!
//! The outbox announces due work: a commit that makes a message due (an accepted message, a
//! scheduled retry, messages recovered at start) wakes whoever waits in
//! [`Outbox::work_due`] (the dispatcher), so no other layer needs to know who sends.
//!
//! Time is always a parameter (`now_ms`, Unix epoch milliseconds): the outbox reads no
//! clock for its decisions, so tests and the dispatcher control it.
//!
//! Architecture invariant: this module knows nothing of HTTP, modems or JSON. Its domain
//! types have no serde derives. It never logs a number or a text.

pub mod clean_stop;
mod postgres;
mod retry;
mod schema;
mod store;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use std::time::Instant;

use tokio::sync::{Notify, oneshot};

pub use postgres::PgOptions;
pub use retry::RetryPolicy;
pub use schema::SCHEMA_VERSION;

use store::Ctx;
use writer::{Call, Msg, Writer};

/// A message's id in the outbox (the table's row id; never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Waiting for its next attempt (or for its first).
    Queued,
    /// Handed to a modem.
    Sending,
    /// Every part accepted by the network. Final.
    Sent,
    /// Refused for good, or out of attempts. Final.
    Failed,
    /// Not sent within its time to live; never sent late. Final.
    Expired,
    /// The PDU went out but no confirmation came back; not retried blindly. Final.
    Unknown,
}

impl MessageState {
    pub const ALL: [MessageState; 6] = [
        MessageState::Queued,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Failed,
        MessageState::Expired,
        MessageState::Unknown,
    ];

    /// The name used in the database, metrics and the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Unknown => "unknown",
        }
    }

    /// Whether the message's story is over (and its text redacted).
    pub fn is_final(self) -> bool {
        !matches!(self, MessageState::Queued | MessageState::Sending)
    }

    fn parse(text: &str) -> Result<MessageState, OutboxError> {
        MessageState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                OutboxError::Storage(format!("unknown message state {text:?} in the database"))
            })
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message accepted for sending.
pub struct NewMessage {
    /// The destination in E.164 form, validated by the caller.
    pub to: String,
    pub text: String,
    /// How many SMS parts the text needs (at least 1), as the codec split it.
    pub parts: u8,
    /// The concatenation reference for a multi-part message, chosen by the caller; stored
    /// so a resend uses the same one and the phone reassembles the parts.
    pub concat_ref: u16,
    pub created_at_ms: i64,
    /// After this instant the message is never sent.
    pub expires_at_ms: i64,
    /// The verified OwnID signature ([`crate::ownid::Verified::signature`]). A second
    /// message with the same signature is refused with [`OutboxError::Duplicate`], also
    /// after a restart, until the first one is purged. `None` for messages that did not
    /// come through the OwnID endpoint.
    pub signature: Option<Vec<u8>>,
    /// The fleet-wide per-number rate limit, checked by PostgreSQL in the accepting
    /// transaction. Ignored by SQLite (the HTTP layer's in-memory limiter does it there).
    pub rate: Option<RateCheck>,
}

/// A per-number rate limit for [`NewMessage::rate`]: at most `limit` messages accepted
/// for `key` within a sliding `window_ms`, fleet-wide. Refused with
/// [`OutboxError::RateLimited`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCheck {
    /// A keyed hash of the number, never the number.
    pub key: [u8; 32],
    pub limit: u32,
    pub window_ms: i64,
}

impl NewMessage {
    /// What every backend refuses before storing anything.
    fn check(&self) -> Result<(), OutboxError> {
        if self.to.is_empty() {
            return Err(OutboxError::Invalid(
                "the destination number is empty".to_owned(),
            ));
        }
        if self.parts == 0 {
            return Err(OutboxError::Invalid(
                "a message has at least one part".to_owned(),
            ));
        }
        if self.expires_at_ms <= self.created_at_ms {
            return Err(OutboxError::Invalid(
                "the message expires before it is created".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A part reported sent must be the next one of the message (parts go out in order):
/// what every backend checks before recording it.
fn check_next_part(
    id: MessageId,
    parts: u8,
    parts_sent: u8,
    part_index: u8,
) -> Result<(), OutboxError> {
    if part_index >= parts {
        return Err(OutboxError::Invalid(format!(
            "message {id} has {parts} parts, there is no part {part_index}"
        )));
    }
    if part_index != parts_sent {
        return Err(OutboxError::Invalid(format!(
            "message {id}: part {part_index} reported sent, but the next part to send is {parts_sent}"
        )));
    }
    Ok(())
}

impl fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("to", &crate::mask::phone(&self.to))
            .field(
                "text",
                &format_args!("<{} chars>", self.text.chars().count()),
            )
            .field("parts", &self.parts)
            .field("concat_ref", &self.concat_ref)
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("rate", &self.rate.map(|r| (r.limit, r.window_ms)))
            .finish_non_exhaustive()
    }
}

/// What [`Outbox::enqueue_dedup`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The new message, or the earlier one this request duplicates.
    pub id: MessageId,
    /// True when nothing was stored because the key was seen within its window.
    pub duplicate: bool,
}

/// A message handed to a modem: everything needed to (re)send it.
pub struct Claimed {
    pub id: MessageId,
    /// The full destination number. Never log it; use [`crate::mask::phone`].
    pub to: String,
    pub text: String,
    pub parts: u8,
    /// Parts the network already accepted in earlier attempts: send parts
    /// `parts_sent..parts` only. It can equal `parts` after a crash between the last part
    /// and [`Outbox::mark_sent`]; then call `mark_sent` with no references.
    pub parts_sent: u8,
    pub concat_ref: u16,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub created_at_ms: i64,
    /// Set the SMS validity period from the time left until this.
    pub expires_at_ms: i64,
    /// The modem of the previous attempt, if any.
    pub previous_modem: Option<String>,
    /// The encoding plan stored at acceptance (`None` for messages accepted before plans
    /// were stored): encode with it, not with today's configuration.
    pub plan: Option<String>,
}

impl Claimed {
    /// The time the message has left at `now_ms` (zero or more), for the validity period.
    pub fn time_left(&self, now_ms: i64) -> Duration {
        Duration::from_millis(
            self.expires_at_ms
                .saturating_sub(now_ms)
                .max(0)
                .unsigned_abs(),
        )
    }
}

impl fmt::Debug for Claimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("to", &crate::mask::phone(&self.to))
            .field(
                "text",
                &format_args!("<{} chars>", self.text.chars().count()),
            )
            .field("parts", &self.parts)
            .field("parts_sent", &self.parts_sent)
            .field("concat_ref", &self.concat_ref)
            .field("attempt", &self.attempt)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("previous_modem", &self.previous_modem)
            .finish_non_exhaustive()
    }
}

/// A queued message due for an attempt (see [`Outbox::due`]); no number, no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: MessageId,
    pub parts: u8,
    pub parts_sent: u8,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub expires_at_ms: i64,
    /// The modem of the last attempt: prefer another one for the retry.
    pub last_modem: Option<String>,
}

/// What [`Outbox::mark_retry`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Queued again; due at `at_ms`.
    Scheduled { at_ms: i64 },
    /// Out of attempts: the message is now `failed`.
    GaveUp,
}

/// A part's delivery as the network reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// No report yet, or the SMSC is still trying.
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// A message's verdict from its parts' reports: failed if any part failed, delivered
    /// once every one of its `parts` was, pending meanwhile.
    pub fn of_parts(parts: u64, delivered: u64, failed: u64) -> DeliveryState {
        if failed > 0 {
            DeliveryState::Failed
        } else if delivered == parts {
            DeliveryState::Delivered
        } else {
            DeliveryState::Pending
        }
    }

    /// Classifies a status report's TP-Status (3GPP TS 23.040 §9.2.3.15): `0x00..=0x1F`
    /// the transaction is completed (delivered, or forwarded without confirmation);
    /// `0x20..=0x3F` a temporary error, the SMSC is still trying; anything else is a
    /// permanent error or a temporary one the SMSC has given up on (`0x60..=0x7F`).
    pub fn from_tp_status(status: u8) -> DeliveryState {
        // The codec owns the TS 23.040 ranges; this only maps its verdict.
        match crate::sms::DeliveryStatus(status).category() {
            crate::sms::StatusCategory::Delivered => DeliveryState::Delivered,
            crate::sms::StatusCategory::Pending => DeliveryState::Pending,
            crate::sms::StatusCategory::Failed => DeliveryState::Failed,
        }
    }
}

/// A message's delivery, summed over its parts' reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySummary {
    /// `Failed` if any part failed; `Delivered` if every part was delivered; else `Pending`.
    pub state: DeliveryState,
    pub parts_delivered: u8,
    pub parts_failed: u8,
    /// The TP-Status of the most recent report, if any came.
    pub last_status: Option<u8>,
    /// When the most recent status report was recorded (Unix ms), if any came.
    pub last_report_at_ms: Option<i64>,
}

/// One message as the status page shows it: masked number, no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: MessageId,
    /// The number masked by [`crate::mask::phone`].
    pub to_masked: String,
    pub state: MessageState,
    pub attempts: u32,
    pub parts: u8,
    pub parts_sent: u8,
    /// `None` until at least one part was sent.
    pub delivery: Option<DeliverySummary>,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
    pub final_at_ms: Option<i64>,
    /// The modem of the latest attempt.
    pub modem: Option<String>,
    /// The box that made the latest attempt (PostgreSQL; `None` on SQLite).
    pub node: Option<String>,
    pub last_error: Option<String>,
}

impl MessageSummary {
    /// From acceptance to the network's acceptance of the last part.
    pub fn latency_ms(&self) -> Option<i64> {
        self.sent_at_ms.map(|sent| sent - self.created_at_ms)
    }
}

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    pub expired: u64,
    pub unknown: u64,
}

impl QueueCounts {
    /// Messages not yet final (`queued + sending`): what `max_depth` limits.
    pub fn depth(&self) -> u64 {
        self.queued + self.sending
    }

    /// Each state's name with its count, in life-cycle order.
    pub fn by_state(&self) -> Vec<(&'static str, u64)> {
        MessageState::ALL
            .iter()
            .map(|&state| (state.as_str(), self.get(state)))
            .collect()
    }

    pub fn get(&self, state: MessageState) -> u64 {
        match state {
            MessageState::Queued => self.queued,
            MessageState::Sending => self.sending,
            MessageState::Sent => self.sent,
            MessageState::Failed => self.failed,
            MessageState::Expired => self.expired,
            MessageState::Unknown => self.unknown,
        }
    }

    fn slot(&mut self, state: MessageState) -> &mut u64 {
        match state {
            MessageState::Queued => &mut self.queued,
            MessageState::Sending => &mut self.sending,
            MessageState::Sent => &mut self.sent,
            MessageState::Failed => &mut self.failed,
            MessageState::Expired => &mut self.expired,
            MessageState::Unknown => &mut self.unknown,
        }
    }

    fn add(&mut self, state: MessageState, n: u64) {
        *self.slot(state) += n;
    }

    fn remove(&mut self, state: MessageState, n: u64) {
        let slot = self.slot(state);
        *slot = slot.saturating_sub(n);
    }

    fn transition(&mut self, from: MessageState, to: MessageState) {
        self.remove(from, 1);
        self.add(to, 1);
    }
}

/// What [`Outbox::recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Messages that were `sending` when the previous run stopped, now `queued` again.
    pub requeued: u64,
    /// Messages found `sending` with every part recorded, now `sent` (not resent).
    pub completed: u64,
    /// All `queued` messages now, those included.
    pub queued: u64,
}

/// Counters of the writer, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Requests handed to the writer.
    pub submitted: u64,
    /// Transactions run (each takes every request waiting at the time).
    pub batches: u64,
    /// Transactions committed, reads included.
    pub commits: u64,
    /// The most requests one transaction took.
    pub largest_batch: u64,
    /// `TRUNCATE` checkpoints completed.
    pub checkpoints: u64,
}

/// What [`Outbox::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Messages whose box's lease lapsed, taken back (queued again, or sent when every
    /// part was recorded).
    pub taken_over: u64,
    /// Queued messages past their time to live, now `expired`.
    pub expired: u64,
}

/// What a box tells the fleet about itself ([`Outbox::heartbeat`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// The caller's description of its modems (opaque to the outbox; JSON in practice).
    pub modems: String,
    /// Messages this box is sending now.
    pub queue_local: u64,
}

/// One box of the fleet as [`Outbox::fleet`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    /// Its last heartbeat (Unix ms; the database's clock on PostgreSQL).
    pub last_seen_ms: i64,
    /// What its last heartbeat said about its modems.
    pub modems: String,
    /// Messages it was sending at its last heartbeat.
    pub queue_local: u64,
    /// This box.
    pub this: bool,
}

/// Why [`Outbox::open_postgres`] could not connect, for one clear line at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectProblem {
    /// The URL does not parse (or names an option this program does not know).
    BadUrl,
    /// No server answered at the address (refused, no route, DNS, timeout).
    Unreachable,
    /// The server refused the role or its password (SQLSTATE 28P01 / 28000).
    Auth,
    /// The role may connect but not create or use the tables (SQLSTATE 42501).
    Permission,
    /// TLS was asked for and failed (no TLS on the server, an untrusted certificate).
    Tls,
    Other,
}

impl ConnectProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectProblem::BadUrl => "bad URL",
            ConnectProblem::Unreachable => "unreachable",
            ConnectProblem::Auth => "authentication failed",
            ConnectProblem::Permission => "permission denied",
            ConnectProblem::Tls => "TLS failed",
            ConnectProblem::Other => "error",
        }
    }
}

impl fmt::Display for ConnectProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tuning of an [`Outbox`]; [`Default`] suits the service (`Config::outbox_options` fills
/// it from the configuration).
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// [`Outbox::enqueue`] refuses with [`OutboxError::Full`] at this many `queued` +
    /// `sending` messages.
    pub max_depth: u64,
    /// Backoff and attempts for [`Outbox::mark_retry`].
    pub retry: RetryPolicy,
    /// How far back [`Outbox::record_delivery`] looks for the part a report is about.
    pub delivery_window: Duration,
    /// After a redaction, checkpoint once the writer has been idle this long...
    pub checkpoint_idle: Duration,
    /// ...or after this long under continuous load.
    pub checkpoint_max_delay: Duration,
    /// How long to wait for a lock held by another process (a backup, the sqlite3 shell).
    pub busy_timeout: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            max_depth: 10_000,
            retry: RetryPolicy::default(),
            delivery_window: Duration::from_secs(2 * 24 * 3600),
            checkpoint_idle: Duration::from_millis(200),
            checkpoint_max_delay: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Why an outbox operation did not happen. Nothing was changed by a failed operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    /// `queued + sending` reached `max_depth`: a `503` for the HTTP layer.
    #[error("the outbox is full ({depth} messages waiting)")]
    Full { depth: u64 },
    /// A message with this signature was accepted before: a replay (`401`).
    #[error("this request was already accepted (replayed signature)")]
    Duplicate,
    #[error("message {0} does not exist")]
    NotFound(MessageId),
    /// The message is not in the state the operation needs (e.g. `mark_sent` on a message
    /// that is not `sending`).
    #[error("message {id} is {state}, not {expected}")]
    WrongState {
        id: MessageId,
        state: MessageState,
        expected: MessageState,
    },
    /// The request contradicts the message (no parts, a part index out of order).
    #[error("invalid outbox request: {0}")]
    Invalid(String),
    #[error("cannot open the outbox {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("outbox storage error: {0}")]
    Storage(String),
    /// The writer has stopped ([`Outbox::shutdown`]).
    #[error("the outbox is shut down")]
    Closed,
    /// The database cannot be reached or the connection was lost (PostgreSQL): nothing
    /// was committed by this call; `503` with `Retry-After`, readiness false.
    #[error("the database is unavailable: {message}")]
    Unavailable { message: String },
    /// [`Outbox::open_postgres`] could not connect or set up the schema. The message
    /// never contains the password.
    #[error("cannot open the PostgreSQL outbox ({problem}): {message}")]
    Connect {
        problem: ConnectProblem,
        message: String,
    },
    /// This box no longer holds the message's lease: another box took it over. Send no
    /// further part of it.
    #[error("another box took this message over (lease lost)")]
    Fenced,
    /// The number used its fleet-wide allowance ([`NewMessage::rate`]).
    #[error("rate limited: retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
}

impl From<rusqlite::Error> for OutboxError {
    fn from(err: rusqlite::Error) -> Self {
        OutboxError::Storage(err.to_string())
    }
}

/// The handle to the outbox. Clone it freely; all clones talk to the same writer thread.
#[derive(Clone)]
pub struct Outbox {
    backend: Backend,
    shared: Arc<Shared>,
}

#[derive(Clone)]
enum Backend {
    /// The channel to the SQLite writer thread, and the database's `-wal` file.
    Sqlite(mpsc::Sender<Msg>, PathBuf),
    Postgres(Arc<postgres::PgStore>),
}

/// What the writer publishes for the handles to read without a round trip.
struct Shared {
    stats: Stats,
    counts: Mutex<QueueCounts>,
    /// Rung after a commit that made work due; a ring with no one waiting is kept for the
    /// next wait, so none is lost.
    due_work: Notify,
    /// False from a failed transaction until the next commit succeeds: the disk is full or
    /// failing, and `/readyz` says so.
    writable: AtomicBool,
    /// The fault substitute for tests: while set, every transaction fails as `SQLITE_FULL`
    /// would ("database or disk is full"), and nothing is written.
    fail_writes: AtomicBool,
    /// Like `fail_writes`, but the transaction runs and its `COMMIT` fails (rolled back), as
    /// when the WAL cannot grow at commit time.
    fail_commits: AtomicBool,
    /// The encoding plan stored with each message accepted from now on.
    plan: Mutex<Option<String>>,
    /// This box's last heartbeat (SQLite keeps it here for [`Outbox::fleet`]).
    beat: Mutex<Option<(Heartbeat, i64)>>,
    /// This box's name for [`Outbox::fleet`] on SQLite ([`Outbox::set_node_name`]).
    node: Mutex<Option<String>>,
    /// Idle modems offered for new messages (see [`Outbox::offer_idle`]).
    idle: Mutex<Idle>,
}

impl Shared {
    fn new(counts: QueueCounts) -> Shared {
        Shared {
            stats: Stats::default(),
            counts: Mutex::new(counts),
            due_work: Notify::new(),
            writable: AtomicBool::new(true),
            fail_writes: AtomicBool::new(false),
            fail_commits: AtomicBool::new(false),
            plan: Mutex::new(None),
            beat: Mutex::new(None),
            node: Mutex::new(None),
            idle: Mutex::new(Idle::default()),
        }
    }
}

/// The modems the dispatcher offers, and where the claims made for them go.
#[derive(Default)]
struct Idle {
    /// Not yet taken, in the dispatcher's order of preference.
    offered: std::collections::VecDeque<String>,
    handoff: Option<tokio::sync::mpsc::UnboundedSender<Handoff>>,
    /// Bumped by every new offer and withdrawal: a modem taken under the current one can
    /// be put back unnoticed; one taken under an earlier offer must be released instead.
    generation: u64,
}

/// A modem an accept took from the offer, and the offer it came from.
pub(super) struct Taken {
    modem: String,
    generation: u64,
}

/// What became of an idle modem an accept took (see [`Outbox::offer_idle`]).
#[derive(Debug)]
pub enum Handoff {
    /// The new message was claimed for `modem` in the accept's own transaction: send it
    /// once `committed` says the transaction is durable. The handoff is made before the
    /// commit, so the modem's command and prompt overlap the fsync; nothing of the message
    /// may leave, or be recorded, before `committed` says `true` (issue 12).
    Claimed {
        modem: String,
        message: Claimed,
        committed: Committed,
    },
    /// The accept took `modem` but claimed nothing for it (its transaction failed): the
    /// modem is free again.
    Released { modem: String },
}

/// Whether the accept behind a [`Handoff::Claimed`] committed: known a moment after the
/// handoff. Cheap to clone; every clone hears the one outcome.
#[derive(Debug, Clone)]
pub struct Committed(tokio::sync::watch::Receiver<Option<bool>>);

impl Committed {
    /// A pair for one accept: the writer's side says the outcome once.
    pub(super) fn pair() -> (CommitNotice, Committed) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (CommitNotice(tx), Committed(rx))
    }

    /// Waits for the outcome: `true` once the transaction is durable, `false` if it failed
    /// (then the message does not exist: its id may be reused) or the writer is gone.
    pub async fn wait(mut self) -> bool {
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.unwrap_or(false),
            Err(_) => false,
        }
    }
}

/// The writer's side of a [`Committed`].
pub(super) struct CommitNotice(tokio::sync::watch::Sender<Option<bool>>);

impl CommitNotice {
    pub(super) fn tell(self, committed: bool) {
        self.0.send_replace(Some(committed));
    }
}

#[derive(Default)]
struct Stats {
    submitted: AtomicU64,
    batches: AtomicU64,
    commits: AtomicU64,
    largest_batch: AtomicU64,
    synced_commits: AtomicU64,
    checkpoints: AtomicU64,
    /// Time spent in the writer's `TRUNCATE` checkpoints, every request behind them
    /// waiting (blocked attempts included): the sum and the longest one, in microseconds.
    truncate_micros: AtomicU64,
    longest_truncate_micros: AtomicU64,
    /// `PASSIVE` checkpoints the writer ran itself to let the WAL start over (see
    /// `writer::Checkpointer`).
    tail_copies: AtomicU64,
    /// How long the commits that wrote took (the WAL's frames and their fsync): per
    /// bucket of [`COMMIT_BUCKETS`] (not cumulative), the rest above the last bound, and
    /// the sum in microseconds. The count is `synced_commits`.
    commit_buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    commit_micros: AtomicU64,
}

/// Upper bounds, in seconds, of the commit-time histogram: from a quiet SSD's fsync to an
/// SD card stalling the whole outbox (every request behind a commit waits for it).
pub const COMMIT_BUCKETS: [f64; 10] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

impl Stats {
    fn commit_took(&self, took: std::time::Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = COMMIT_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.commit_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The SQLite outbox's write-ahead log, for `/metrics`: how large it is and what keeping it
/// short cost the requests waiting behind the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WalStats {
    /// The `-wal` file's size now.
    pub bytes: u64,
    /// `TRUNCATE` checkpoints completed (after redactions, at idle or under load).
    pub truncates: u64,
    /// The total and longest time the writer spent in them, blocked attempts included.
    pub truncate_seconds: f64,
    pub longest_truncate_seconds: f64,
    /// `PASSIVE` checkpoints of the WAL's tail on the writer's own connection.
    pub tail_copies: u64,
    /// The commits that changed the outbox since it opened (each one WAL fsync), by how
    /// long each took ([`COMMIT_BUCKETS`], cumulative as Prometheus has them), how many in
    /// all, and their total time.
    pub commit_buckets: [u64; COMMIT_BUCKETS.len()],
    pub commits: u64,
    pub commit_seconds: f64,
}

/// Running totals of per-bucket counts, each read once.
fn cumulative<const N: usize>(buckets: &[AtomicU64; N]) -> [u64; N] {
    let mut total = 0;
    std::array::from_fn(|i| {
        total += buckets[i].load(Ordering::Relaxed);
        total
    })
}

/// In an accept's transaction: takes the first offered idle modem, if any, for the new
/// message. The modem is noted in `took` so it is given back if nothing is claimed for it
/// or the transaction does not commit.
fn take_offered(shared: &Shared, took: &mut writer::TookModem) -> Option<String> {
    let taken = {
        let mut idle = shared.idle.lock().ok()?;
        idle.handoff.as_ref()?;
        Taken {
            modem: idle.offered.pop_front()?,
            generation: idle.generation,
        }
    };
    let modem = taken.modem.clone();
    *took = Some(taken);
    Some(modem)
}

impl Shared {
    /// Gives the dispatcher what became of a modem an accept took.
    fn hand_off(&self, note: Handoff) {
        let handoff = self.idle.lock().ok().and_then(|i| i.handoff.clone());
        if let Some(tx) = handoff {
            let _ = tx.send(note);
        }
    }

    /// A modem an accept took and claimed nothing for: back at the front of the offer if
    /// that offer still stands (the dispatcher never notices), else released to the
    /// dispatcher, which counted it as taken when it withdrew the offer.
    fn give_back(&self, taken: Taken) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.generation == taken.generation {
                idle.offered.push_front(taken.modem);
                return;
            }
        }
        self.hand_off(Handoff::Released { modem: taken.modem });
    }
}

impl Outbox {
    /// Opens the outbox at `path`, creating the directory (mode 0700), the file (mode 0600)
    /// and the schema if needed, and starts its writer thread.
    ///
    /// Blocking (it opens a file): call it before starting the service, or from
    /// `spawn_blocking`. Call [`Outbox::recover`] next, before dispatching.
    pub fn open(path: &Path, opts: OutboxOptions) -> Result<Outbox, OutboxError> {
        let open_error = |message: String| OutboxError::Open {
            path: path.to_owned(),
            message,
        };
        let conn = schema::open(path, opts.busy_timeout).map_err(open_error)?;
        let counts = Ctx::load_counts(&conn).map_err(|e| open_error(e.to_string()))?;
        let shared = Arc::new(Shared::new(counts));
        let (tx, rx) = mpsc::channel();
        // Checkpoints run on their own thread and connection, not inside commits.
        let checkpointer = writer::Checkpointer::start(path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| open_error(e.to_string()))?;
        }
        let writer = Writer {
            checkpointer,
            conn,
            path: path.to_owned(),
            opts,
            shared: Arc::clone(&shared),
            counts,
            unflushed_redaction: None,
        };
        std::thread::Builder::new()
            .name("outbox-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;
        Ok(Outbox {
            backend: Backend::Sqlite(tx, clean_stop::wal(path)),
            shared,
        })
    }

    /// Opens the outbox on the PostgreSQL database at `url` (a libpq URL; `sslmode=require`,
    /// `verify-ca` or `verify-full` ask for TLS, always with the server's certificate
    /// verified), creating or migrating the schema (safe when several boxes start at
    /// once), and starts the LISTEN connection that rings [`Outbox::work_due`].
    /// Fails with [`OutboxError::Connect`]; its message never holds the password.
    pub async fn open_postgres(url: &str, opts: PgOptions) -> Result<Outbox, OutboxError> {
        let shared = Arc::new(Shared::new(QueueCounts::default()));
        let store = postgres::PgStore::open(url, opts, Arc::clone(&shared)).await?;
        Ok(Outbox {
            backend: Backend::Postgres(store),
            shared,
        })
    }

    /// "sqlite" or "postgres".
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(..) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    fn pg(&self) -> Option<&postgres::PgStore> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite(..) => None,
        }
    }

    /// Stores a new message as `queued`, durably, and returns its id.
    ///
    /// Fails with [`OutboxError::Full`] when `max_depth` messages are waiting and with
    /// [`OutboxError::Duplicate`] when a message with the same signature exists.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<MessageId, OutboxError> {
        let plan = self.shared.plan.lock().ok().and_then(|p| p.clone());
        if let Some(pg) = self.pg() {
            // The fleet has no idle-modem handoff: the NOTIFY wakes whichever box is free.
            let id = pg.enqueue(msg, plan, None).await?.id;
            self.announce_due_work();
            return Ok(id);
        }
        let shared = Arc::clone(&self.shared);
        let (id, claimed) = self
            .accept(move |ctx, took| {
                let modem = take_offered(&shared, took);
                let (id, claimed) = ctx.insert(msg, plan.as_deref(), modem.as_deref())?;
                Ok((id, modem.zip(claimed)))
            })
            .await?;
        if !claimed {
            self.announce_due_work();
        }
        Ok(id)
    }

    /// Offers idle `modems` (in order of preference) for the next new messages, replacing
    /// the previous offer (issue 12 item 1). An accept that finds one claims its message
    /// for it in the accept's own transaction, so one commit makes the message durable
    /// and hands it out, and the claim reaches [`Outbox::handoffs`] as the accept returns:
    /// the send starts as the `202` goes out. For the one consumer that sends.
    pub fn offer_idle(&self, modems: Vec<String>) {
        if let Ok(mut idle) = self.shared.idle.lock() {
            idle.offered = modems.into();
            idle.generation = idle.generation.wrapping_add(1);
        }
    }

    /// Ends the offer and returns the modems still offered, not taken. A modem offered and
    /// not returned was taken: its [`Handoff`] is on its way.
    pub fn withdraw_idle(&self) -> Vec<String> {
        match self.shared.idle.lock() {
            Ok(mut idle) => {
                idle.generation = idle.generation.wrapping_add(1);
                idle.offered.drain(..).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Where the claims made for offered modems arrive. Calling it again replaces the
    /// earlier receiver. Until it is called, offers are ignored.
    pub fn handoffs(&self) -> tokio::sync::mpsc::UnboundedReceiver<Handoff> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if let Ok(mut idle) = self.shared.idle.lock() {
            idle.handoff = Some(tx);
        }
        rx
    }

    /// Waits until a commit has made work due since the last wait returned (at once if one
    /// has). For the one consumer that sends: the dispatcher.
    pub async fn work_due(&self) {
        self.shared.due_work.notified().await;
    }

    fn announce_due_work(&self) {
        self.shared.due_work.notify_one();
    }

    /// Stores a new message like [`Outbox::enqueue`], unless one with the same `key` (a
    /// hash: never a code or number) was accepted before and `until_ms` of that one has
    /// not passed; checked in the same transaction as the insert, so two concurrent
    /// retries cannot both be stored. The key of a new message is kept until `until_ms`.
    pub async fn enqueue_dedup(
        &self,
        msg: NewMessage,
        key: [u8; 32],
        until_ms: i64,
    ) -> Result<Enqueued, OutboxError> {
        let plan = self.shared.plan.lock().ok().and_then(|p| p.clone());
        if let Some(pg) = self.pg() {
            let enqueued = pg.enqueue(msg, plan, Some((key, until_ms))).await?;
            // A duplicate made nothing due; a new message did, as with `enqueue`.
            if !enqueued.duplicate {
                self.announce_due_work();
            }
            return Ok(enqueued);
        }
        let shared = Arc::clone(&self.shared);
        let (enqueued, claimed) = self
            .accept(move |ctx, took| {
                if let Some(id) = ctx.dedup_earlier(&key, msg.created_at_ms)? {
                    // A duplicate stores nothing and takes no modem.
                    return Ok((
                        Enqueued {
                            id,
                            duplicate: true,
                        },
                        None,
                    ));
                }
                let modem = take_offered(&shared, took);
                let (id, claimed) = ctx.insert(msg, plan.as_deref(), modem.as_deref())?;
                ctx.dedup_record(&key, id, until_ms)?;
                let enqueued = Enqueued {
                    id,
                    duplicate: false,
                };
                Ok((enqueued, modem.zip(claimed)))
            })
            .await?;
        // A duplicate made nothing due; a new message not claimed did.
        if !claimed && !enqueued.duplicate {
            self.announce_due_work();
        }
        Ok(enqueued)
    }

    /// The message already accepted under a dedup `key` whose window is still open at
    /// `now_ms`: a platform's retry that is answered as a success, even when the number's
    /// rate limit is used up by the original.
    pub async fn dedup_lookup(
        &self,
        key: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<MessageId>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.dedup_lookup(key).await;
        }
        self.call(move |ctx| ctx.dedup_lookup(&key, now_ms)).await
    }

    /// Claims the most overdue queued message for `modem`: it becomes `sending`, its
    /// attempt count goes up, and it is returned with its number and text. `None` when no
    /// message is due at `now_ms` (expired ones never are).
    pub async fn claim_next(
        &self,
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.claim(None, modem, now_ms).await;
        }
        let modem = modem.to_owned();
        self.call(move |ctx| ctx.claim_next(&modem, now_ms)).await
    }

    /// Up to `limit` messages due at `now_ms`, most overdue first, without claiming them:
    /// for a dispatcher that chooses the modem per message (say, another one than
    /// [`Pending::last_modem`]) and then calls [`Outbox::claim`].
    pub async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.due(now_ms, limit).await;
        }
        self.call(move |ctx| ctx.due(now_ms, limit)).await
    }

    /// Claims message `id` for `modem` like [`Outbox::claim_next`]; `None` if it is no
    /// longer queued and due.
    pub async fn claim(
        &self,
        id: MessageId,
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.claim(Some(id), modem, now_ms).await;
        }
        let modem = modem.to_owned();
        self.call(move |ctx| ctx.claim(id, &modem, now_ms)).await
    }

    /// Records that the network accepted part `part_index` (from 0, in order) of a
    /// `sending` message with message reference `mr`, so a later attempt resends only the
    /// parts after it.
    pub async fn mark_part_sent(
        &self,
        id: MessageId,
        part_index: u8,
        mr: u8,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.mark_part_sent(id, part_index, mr).await;
        }
        self.call(move |ctx| ctx.mark_part_sent(id, part_index, mr, now_ms))
            .await
    }

    /// Starts a queued, partly sent message over under the new concatenation reference
    /// `concat_ref`: its recorded parts are forgotten, so the next attempt sends every
    /// part, on any modem. For when the modem that sent the first parts is gone: a phone
    /// cannot join parts that came from two sender numbers. `why` is kept as the message's
    /// last error, so the status page says so. `false` if the message is not queued.
    pub async fn restart_whole(
        &self,
        id: MessageId,
        concat_ref: u16,
        why: &str,
    ) -> Result<bool, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.restart_whole(id, concat_ref, why).await;
        }
        let why = why.to_owned();
        self.call(move |ctx| ctx.restart_whole(id, concat_ref, &why))
            .await
    }

    /// Ends a send in success: `mrs` are the message references of the parts sent in this
    /// attempt (those not yet recorded with [`Outbox::mark_part_sent`]), in order. Every
    /// part must then be recorded. The message becomes `sent` and is redacted.
    pub async fn mark_sent(
        &self,
        id: MessageId,
        mrs: &[u8],
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.mark_sent(id, mrs).await;
        }
        let mrs = mrs.to_vec();
        self.call(move |ctx| ctx.mark_sent(id, &mrs, now_ms)).await
    }

    /// [`Outbox::mark_sent`], and in the same commit claims the most overdue queued
    /// message for `modem` if it is a fresh one (never tried: no modem choice applies to
    /// it), so a modem working through a queue pays one commit per message. `None` when
    /// there is no such message (or claiming it failed: the send is recorded anyway); the
    /// caller then hands out work as usual.
    pub async fn mark_sent_and_claim_next(
        &self,
        id: MessageId,
        mrs: &[u8],
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, OutboxError> {
        if let Some(pg) = self.pg() {
            // The fleet records the send alone; the next claim goes through the
            // dispatcher's usual hand-out (and its lease).
            pg.mark_sent(id, mrs).await?;
            return Ok(None);
        }
        let (mrs, modem) = (mrs.to_vec(), modem.to_owned());
        self.call(move |ctx| {
            ctx.mark_sent(id, &mrs, now_ms)?;
            Ok(ctx.claim_fresh_next(&modem, now_ms).unwrap_or(None))
        })
        .await
    }

    /// Ends a send with a temporary error. `sent` holds the references of the parts the
    /// network accepted before it. By the [`RetryPolicy`] the message is queued again for
    /// a later attempt, or, out of attempts, becomes `failed` (and is redacted).
    pub async fn mark_retry(
        &self,
        id: MessageId,
        error: &str,
        sent: &[u8],
        now_ms: i64,
    ) -> Result<RetryOutcome, OutboxError> {
        let outcome = match self.pg() {
            Some(pg) => pg.mark_retry(id, error, sent, now_ms).await?,
            None => {
                let (error, sent) = (error.to_owned(), sent.to_vec());
                self.call(move |ctx| ctx.mark_retry(id, &error, &sent, now_ms))
                    .await?
            }
        };
        if matches!(outcome, RetryOutcome::Scheduled { .. }) {
            self.announce_due_work();
        }
        Ok(outcome)
    }

    /// Ends a send with a permanent error: the message becomes `failed` and is redacted.
    pub async fn mark_failed(
        &self,
        id: MessageId,
        error: &str,
        sent: &[u8],
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.mark_final(id, MessageState::Failed, error, sent).await;
        }
        let (error, sent) = (error.to_owned(), sent.to_vec());
        self.call(move |ctx| ctx.mark_final(id, MessageState::Failed, &error, &sent, now_ms))
            .await
    }

    /// Ends a send whose outcome is unknown (the PDU went out, no `+CMGS` came back): the
    /// message becomes `unknown`, final, and is not retried, so it is never sent twice on
    /// a guess. It is redacted.
    pub async fn mark_unknown(
        &self,
        id: MessageId,
        error: &str,
        sent: &[u8],
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.mark_final(id, MessageState::Unknown, error, sent).await;
        }
        let (error, sent) = (error.to_owned(), sent.to_vec());
        self.call(move |ctx| ctx.mark_final(id, MessageState::Unknown, &error, &sent, now_ms))
            .await
    }

    /// Expires every queued message whose `expires_at` is at or before `now_ms` (redacting
    /// it) and returns their ids. Messages being sent are left to finish.
    pub async fn expire_due(&self, now_ms: i64) -> Result<Vec<MessageId>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.expire_due().await;
        }
        self.call(move |ctx| ctx.expire_due(now_ms)).await
    }

    /// Takes over lapsed leases and expires queued messages past their time to live
    /// (PostgreSQL: on the database's clock, `now_ms` unused; idempotent and safe on
    /// several boxes at once). A lapsed message goes back to `queued`, due now; if some of
    /// its parts were already accepted they came from the dead box's modem, so the message
    /// is `sent` when every part is recorded, else started over whole under a new
    /// concatenation reference. SQLite: [`Outbox::expire_due`], `taken_over` 0.
    pub async fn sweep(&self, now_ms: i64) -> Result<Swept, OutboxError> {
        match self.pg() {
            Some(pg) => pg.sweep().await,
            None => Ok(Swept {
                taken_over: 0,
                expired: self.expire_due(now_ms).await?.len() as u64,
            }),
        }
    }

    /// Extends this box's lease on a message it is sending (PostgreSQL: to the database's
    /// `now()` plus the lease). [`OutboxError::Fenced`] if another box took it over.
    /// SQLite: `Ok` at once.
    pub async fn renew(&self, id: MessageId) -> Result<(), OutboxError> {
        match self.pg() {
            Some(pg) => pg.renew(id).await,
            None => Ok(()),
        }
    }

    /// Whether this box's lease on `id` was confirmed (claimed or renewed) less than half
    /// a lease ago, on this process's monotonic clock; no round trip. Not fresh: call
    /// [`Outbox::renew`] before sending another part. SQLite: always true.
    pub fn lease_fresh(&self, id: MessageId) -> bool {
        self.pg()
            .is_none_or(|pg| pg.lease_fresh(id, Instant::now()))
    }

    /// Whether this box's lease on message `id` surely has not lapsed, renewal or not:
    /// what the dispatcher asks when a renewal fails because the database cannot be
    /// reached (another box that can reach it may take the message over once the lease
    /// lapses). SQLite: always true.
    pub fn lease_surely_held(&self, id: MessageId) -> bool {
        self.pg()
            .is_none_or(|pg| pg.lease_surely_held(id, Instant::now()))
    }

    /// The lease a claim gets (PostgreSQL); `None` on SQLite, which has none.
    pub fn lease_duration(&self) -> Option<std::time::Duration> {
        self.pg().map(|pg| pg.lease())
    }

    /// Records this box's heartbeat: its row in the fleet's table (PostgreSQL, with the
    /// database's `now()`); SQLite keeps it in memory for [`Outbox::fleet`].
    pub async fn heartbeat(&self, beat: Heartbeat) -> Result<(), OutboxError> {
        match self.pg() {
            Some(pg) => pg.heartbeat(&beat).await,
            None => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                if let Ok(mut last) = self.shared.beat.lock() {
                    *last = Some((beat, now_ms));
                }
                Ok(())
            }
        }
    }

    /// The name [`Outbox::fleet`] gives this box on SQLite (`[node] name`; "local" until
    /// set). On PostgreSQL the name is [`PgOptions::node`] and this does nothing.
    pub fn set_node_name(&self, name: &str) {
        if let Ok(mut node) = self.shared.node.lock() {
            *node = Some(name.to_owned());
        }
    }

    /// Every box of the fleet with its last heartbeat, by name. SQLite: this box alone
    /// (named by [`Outbox::set_node_name`]; its modems from the last heartbeat).
    pub async fn fleet(&self) -> Result<Vec<NodeStatus>, OutboxError> {
        match self.pg() {
            Some(pg) => pg.fleet().await,
            None => {
                let last = self.shared.beat.lock().ok().and_then(|b| b.clone());
                let (beat, at) = last.unwrap_or_default();
                let name = self.shared.node.lock().ok().and_then(|n| n.clone());
                Ok(vec![NodeStatus {
                    name: name.unwrap_or_else(|| "local".to_owned()),
                    last_seen_ms: at,
                    modems: beat.modems,
                    queue_local: beat.queue_local,
                    this: true,
                }])
            }
        }
    }

    /// Records a status report from `modem` for message reference `mr`: finds the part most
    /// recently sent with that reference on that modem (within `delivery_window`), stores
    /// the TP-Status and the verdict, and returns its message. `None` if no part matches.
    pub async fn record_delivery(
        &self,
        modem: &str,
        mr: u8,
        status_code: u8,
        state: DeliveryState,
        now_ms: i64,
    ) -> Result<Option<MessageId>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.record_delivery(modem, mr, status_code, state).await;
        }
        let modem = modem.to_owned();
        self.call(move |ctx| ctx.record_delivery(&modem, mr, status_code, state, now_ms))
            .await
    }

    /// [`Outbox::record_delivery`] for several reports, in order, in one transaction (a
    /// burst of status reports pays one commit); each report's own result.
    pub async fn record_deliveries(
        &self,
        reports: Vec<(String, u8, u8, DeliveryState)>,
        now_ms: i64,
    ) -> Result<Vec<Result<Option<MessageId>, OutboxError>>, OutboxError> {
        if let Some(pg) = self.pg() {
            let mut results = Vec::with_capacity(reports.len());
            for (modem, mr, code, state) in reports {
                results.push(pg.record_delivery(&modem, mr, code, state).await);
            }
            return Ok(results);
        }
        self.call(move |ctx| {
            Ok(reports
                .iter()
                .map(|(modem, mr, code, state)| {
                    ctx.record_delivery(modem, *mr, *code, *state, now_ms)
                })
                .collect())
        })
        .await
    }

    /// At start: every message left `sending` by a crash goes back to `queued`, due at
    /// `now_ms`, keeping its recorded parts, so the parts not yet confirmed are sent again
    /// (at least once; a part that went out without being recorded is sent twice).
    pub async fn recover(&self, now_ms: i64) -> Result<Recovered, OutboxError> {
        let recovered = match self.pg() {
            Some(pg) => pg.recover().await?,
            None => self.call(move |ctx| ctx.recover(now_ms)).await?,
        };
        if recovered.requeued > 0 || recovered.queued > 0 {
            self.announce_due_work();
        }
        Ok(recovered)
    }

    /// When the dispatcher should look again if nothing else happens: the earliest future
    /// retry time or expiry of a queued message. A value at or before `now_ms` means
    /// [`Outbox::expire_due`] has work now. Messages already due are not included: they
    /// wait for a modem, not for a time. `None` when nothing is queued.
    pub async fn next_due_at(&self, now_ms: i64) -> Result<Option<i64>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.next_due_at(now_ms).await;
        }
        self.call(move |ctx| ctx.next_due_at(now_ms)).await
    }

    /// The number of messages in each state, as of the last commit. No round trip to the
    /// writer: cheap enough for every metrics scrape.
    pub fn counts(&self) -> QueueCounts {
        self.shared
            .counts
            .lock()
            .map(|counts| *counts)
            .unwrap_or_default()
    }

    /// The latest `limit` messages, newest first, for the status page.
    /// Messages sent per minute over `[from_ms, to_ms)`, oldest minute first (the status
    /// page's chart).
    pub async fn sent_per_minute(&self, from_ms: i64, to_ms: i64) -> Result<Vec<u64>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.sent_per_minute(from_ms, to_ms).await;
        }
        self.call(move |ctx| ctx.sent_per_minute(from_ms, to_ms))
            .await
    }

    pub async fn recent(&self, limit: usize) -> Result<Vec<MessageSummary>, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.summaries(None, limit).await;
        }
        self.call(move |ctx| ctx.summaries(None, limit)).await
    }

    /// One message's summary, if it exists.
    pub async fn message(&self, id: MessageId) -> Result<Option<MessageSummary>, OutboxError> {
        let found = match self.pg() {
            Some(pg) => pg.summaries(Some(id), 1).await?,
            None => self.call(move |ctx| ctx.summaries(Some(id), 1)).await?,
        };
        Ok(found.into_iter().next())
    }

    /// Deletes final messages that reached their final state before `older_than_ms` (now
    /// minus the retention period) and returns how many.
    pub async fn purge(&self, older_than_ms: i64) -> Result<u64, OutboxError> {
        if let Some(pg) = self.pg() {
            return pg.purge(older_than_ms).await;
        }
        self.call(move |ctx| ctx.purge(older_than_ms)).await
    }

    /// Runs a `TRUNCATE` WAL checkpoint now, after the requests sent before it: redacted
    /// texts are then gone from the WAL too. The writer does this by itself shortly after
    /// each redaction; this is for tests and shutdown paths that must not wait.
    pub async fn checkpoint(&self) -> Result<(), OutboxError> {
        let Backend::Sqlite(tx, _) = &self.backend else {
            // PostgreSQL: nothing of the kind to force; see the README on VACUUM.
            return Ok(());
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Msg::Checkpoint(reply))
            .map_err(|_| OutboxError::Closed)?;
        answer.await.map_err(|_| OutboxError::Closed)?
    }

    /// Commits what was asked before, checkpoints, closes the database and stops the
    /// writer. Later calls on any clone fail with [`OutboxError::Closed`].
    pub async fn shutdown(&self) -> Result<(), OutboxError> {
        let tx = match &self.backend {
            Backend::Sqlite(tx, _) => tx,
            Backend::Postgres(pg) => {
                pg.shutdown().await;
                return Ok(());
            }
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Msg::Shutdown(reply))
            .map_err(|_| OutboxError::Closed)?;
        answer.await.map_err(|_| OutboxError::Closed)
    }

    /// Sets the encoding plan (an opaque string the dispatcher writes and reads) stored
    /// with every message accepted from now on, so its parts are encoded as they were
    /// counted at acceptance whatever the configuration says later.
    pub fn set_encoding_plan(&self, plan: Option<String>) {
        if let Ok(mut current) = self.shared.plan.lock() {
            *current = plan;
        }
    }

    /// Whether the last transaction committed: false while the store cannot write (a full
    /// or failing disk), true again after the next successful commit.
    pub fn writable(&self) -> bool {
        self.shared.writable.load(Ordering::Relaxed)
    }

    /// Makes every transaction fail, as a full disk does (`SQLITE_FULL`), until called
    /// with `false`. For tests of the full-disk path where mounting a small file system
    /// is not possible; nothing else calls it.
    #[doc(hidden)]
    pub fn inject_write_failure(&self, fail: bool) {
        self.shared.fail_writes.store(fail, Ordering::Relaxed);
    }

    /// Makes every transaction's `COMMIT` fail, as a WAL that cannot grow does, after its
    /// statements ran, until called with `false`; everything is rolled back. For tests of
    /// a failure that comes after the work was done; nothing else calls it.
    #[doc(hidden)]
    pub fn inject_commit_failure(&self, fail: bool) {
        self.shared.fail_commits.store(fail, Ordering::Relaxed);
    }

    /// The SQLite outbox's WAL now; `None` on PostgreSQL. Reads the file's size (a
    /// `stat`), so it is for scrapes, not for every request.
    pub fn wal_stats(&self) -> Option<WalStats> {
        let Backend::Sqlite(_, wal) = &self.backend else {
            return None;
        };
        let s = &self.shared.stats;
        let seconds = |micros: &AtomicU64| micros.load(Ordering::Relaxed) as f64 / 1e6;
        // The buckets before the count (the writer counts first), so none exceeds it.
        let commit_buckets = cumulative(&s.commit_buckets);
        let commit_seconds = seconds(&s.commit_micros);
        Some(WalStats {
            // No file (yet, or after an orderly close) is an empty WAL.
            bytes: std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0),
            truncates: s.checkpoints.load(Ordering::Relaxed),
            truncate_seconds: seconds(&s.truncate_micros),
            longest_truncate_seconds: seconds(&s.longest_truncate_micros),
            tail_copies: s.tail_copies.load(Ordering::Relaxed),
            commit_buckets,
            commits: s.synced_commits.load(Ordering::Relaxed),
            commit_seconds,
        })
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> OutboxStats {
        let s = &self.shared.stats;
        OutboxStats {
            submitted: s.submitted.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            commits: s.commits.load(Ordering::Relaxed),
            largest_batch: s.largest_batch.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Runs an accept on the writer ([`writer::Accept`]): its claim for an offered modem is
    /// handed to the dispatcher from the writer thread as soon as the commit is known.
    /// Returns the operation's value and whether it claimed.
    async fn accept<T, F>(&self, op: F) -> Result<(T, bool), OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>, &mut writer::TookModem) -> writer::Accepted<T> + Send + 'static,
    {
        let Backend::Sqlite(tx, _) = &self.backend else {
            return Err(OutboxError::Closed);
        };
        let (reply, answer) = oneshot::channel();
        let job = writer::Accept {
            op,
            reply,
            shared: Arc::clone(&self.shared),
        };
        tx.send(Msg::Job(Box::new(job)))
            .map_err(|_| OutboxError::Closed)?;
        self.shared.stats.submitted.fetch_add(1, Ordering::Relaxed);
        answer.await.map_err(|_| OutboxError::Closed)?
    }

    async fn call<T, F>(&self, op: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> Result<T, OutboxError> + Send + 'static,
    {
        let Backend::Sqlite(tx, _) = &self.backend else {
            return Err(OutboxError::Closed);
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Msg::Job(Box::new(Call { op, reply })))
            .map_err(|_| OutboxError::Closed)?;
        self.shared.stats.submitted.fetch_add(1, Ordering::Relaxed);
        answer.await.map_err(|_| OutboxError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_commit_lands_in_the_first_bucket_that_holds_it_and_the_slowest_in_none() {
        let stats = Stats::default();
        for micros in [300, 500, 700, 3_000, 2_000_000] {
            stats.commit_took(Duration::from_micros(micros));
        }
        // Bounds 0.5 ms, 1, 2, 5, 10, 20, 50, 100, 250 ms, 1 s; 0.5 ms itself is "≤ 0.5 ms".
        assert_eq!(
            cumulative(&stats.commit_buckets),
            [2, 3, 3, 4, 4, 4, 4, 4, 4, 4]
        );
        assert_eq!(
            stats.commit_micros.load(Ordering::Relaxed),
            300 + 500 + 700 + 3_000 + 2_000_000
        );
    }
}
