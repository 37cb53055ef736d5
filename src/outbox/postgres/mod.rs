//! The outbox on PostgreSQL, shared by a fleet of boxes.
//!
//! Same operations and caller-visible behaviour as the SQLite backend, with these
//! differences (all of them what a fleet needs):
//!
//! - **The database's clock** decides: `created_at`, `expires_at`, retry times and leases
//!   are `smsbridge_now_ms()` plus a duration, so boxes whose clocks differ agree. The
//!   `now_ms` parameters only translate times handed back to the caller (a claimed
//!   message's expiry, a retry's due time) into the caller's clock.
//! - **Accept** is one transaction: the dedup key (under a per-key advisory lock), the
//!   signature (unique, fleet-wide), the per-number rate limit (under a per-number
//!   transaction-scoped advisory lock), the insert and a `NOTIFY`; the caller hears `Ok`
//!   only after `COMMIT`.
//! - **Claims are leases.** A claim (`FOR UPDATE SKIP LOCKED`: two boxes never get one
//!   message) sets `lease_owner` = this node, `lease_until` = now + lease and bumps
//!   `lease_token`. The handle remembers the token it got; every later write for that
//!   message checks it under the row lock, and a different token means another box took
//!   the message over: [`OutboxError::Fenced`]. A write after the lease lapsed but before
//!   anyone took over still succeeds (the token is unchanged), so a send that finished
//!   while the database was away is recorded when it returns. Recording a part renews the
//!   lease.
//! - **The sweep** ([`PgStore::sweep`], any box, idempotent) takes over lapsed leases and
//!   expires messages past their TTL; a taken-over message whose parts were partly sent
//!   (from the dead box's modem, another sender number) starts over whole under a new
//!   concatenation reference; one with every part recorded is `sent`.
//! - **Wake-ups** come by `LISTEN/NOTIFY` on one dedicated connection (`listen.rs`) that
//!   reconnects by itself and rings the same `Notify` as local commits.
//! - **Counts** are fleet-wide: this box's own transitions at once, everyone's by a
//!   background refresh after each commit and on every NOTIFY.
//! - **Connection trouble** is [`OutboxError::Unavailable`] (nothing committed), and
//!   `writable()` is false until an operation gets through again.

mod connect;
mod listen;
mod schema;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{
    Claimed, ConnectProblem, DeliveryState, DeliverySummary, Enqueued, Heartbeat, MessageId,
    MessageState, MessageSummary, NewMessage, NodeStatus, OutboxError, OutboxOptions, Pending,
    QueueCounts, Recovered, RetryOutcome, Shared, Swept,
};

/// The NOTIFY channel of due work.
const CHANNEL: &str = "smsbridge_due";
/// Advisory lock classes (two-key form) of the accepting transaction.
const LOCK_RATE: i32 = 0x534d_5301;
const LOCK_DEDUP: i32 = 0x534d_5302;
/// The cleanup of expired dedup keys and rate events: one box at a time.
const LOCK_CLEANUP: i64 = 0x534d_5342_0000_0002;
/// The VACUUM of the messages table: one box at a time.
const LOCK_VACUUM: i64 = 0x534d_5342_0000_0003;

/// Settings of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// This box's name in the fleet (`[node] name`).
    pub node: String,
    /// How long a claim holds without renewal (`[store] lease_secs`).
    pub lease: Duration,
    /// Connections in the pool (the LISTEN connection comes on top).
    pub pool_size: usize,
    /// Depth limit, retry policy and delivery window, as on SQLite.
    pub outbox: OutboxOptions,
    /// How long to wait for a connection to be made.
    pub connect_timeout: Duration,
    /// How long one operation may take before it is given up as [`OutboxError::Unavailable`].
    pub op_timeout: Duration,
    /// The sweep runs `VACUUM messages` when neither it nor autovacuum did for this long
    /// (one box at a time): redacted row versions stay in the table's pages until then.
    pub vacuum_every: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            node: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "smsbridge".to_owned()),
            lease: Duration::from_secs(30),
            pool_size: 8,
            outbox: OutboxOptions::default(),
            connect_timeout: Duration::from_secs(5),
            op_timeout: Duration::from_secs(10),
            vacuum_every: Duration::from_secs(300),
        }
    }
}

/// This box's hold on a message it claimed.
#[derive(Debug, Clone, Copy)]
struct Lease {
    token: i64,
    /// When the lease was last confirmed (the request's start, to err on the safe side).
    confirmed: Instant,
}

/// Operations in flight and a generation bumped after each, so a counts refresh that
/// overlapped one of this box's own transitions is not stored over it.
#[derive(Default)]
struct Tracker {
    inflight: AtomicUsize,
    generation: AtomicU64,
}

struct InFlight<'a> {
    tracker: &'a Tracker,
    refresh: &'a Notify,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.tracker.generation.fetch_add(1, Ordering::SeqCst);
        self.tracker.inflight.fetch_sub(1, Ordering::SeqCst);
        self.refresh.notify_one();
    }
}

pub(crate) struct PgStore {
    pool: Pool,
    opts: PgOptions,
    shared: Arc<Shared>,
    leases: Mutex<HashMap<MessageId, Lease>>,
    tracker: Arc<Tracker>,
    refresh: Arc<Notify>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
    /// When this box last looked whether a VACUUM is due, and whether one runs now.
    vacuum_checked: Mutex<Option<Instant>>,
    vacuuming: Arc<AtomicBool>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for task in tasks.iter() {
                task.abort();
            }
        }
    }
}

/// The fields a write checks under the row lock.
struct Locked {
    state: MessageState,
    parts: u8,
    parts_sent: u8,
    attempts: u32,
    modem: Option<String>,
    recipient: String,
}

impl From<tokio_postgres::Error> for OutboxError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
                return OutboxError::Unavailable {
                    message: format!("{} (SQLSTATE {code})", db.message()),
                };
            }
            return OutboxError::Storage(format!("{} (SQLSTATE {code})", db.message()));
        }
        let text = e.to_string();
        if text.starts_with("error serializing")
            || text.starts_with("error deserializing")
            || text.starts_with("invalid column")
        {
            return OutboxError::Storage(text);
        }
        OutboxError::Unavailable { message: text }
    }
}

impl From<deadpool_postgres::PoolError> for OutboxError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Closed => OutboxError::Closed,
            PoolError::Timeout(_) => OutboxError::Unavailable {
                message: "no connection to the database within the timeout".to_owned(),
            },
            other => OutboxError::Unavailable {
                message: other.to_string(),
            },
        }
    }
}

async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, OutboxError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, OutboxError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, OutboxError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

async fn query_one<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, OutboxError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn small(v: i16) -> u8 {
    u8::try_from(v).unwrap_or(0)
}

fn lock_key(key: &[u8]) -> i32 {
    let mut four = [0u8; 4];
    for (slot, byte) in four.iter_mut().zip(key) {
        *slot = *byte;
    }
    i32::from_be_bytes(four)
}

const COUNTS: &str = "SELECT state, count(*) FROM messages GROUP BY state";

async fn load_counts<C: GenericClient>(c: &C) -> Result<QueueCounts, OutboxError> {
    counts_of(query(c, COUNTS, &[]).await?)
}

fn counts_of(rows: Vec<Row>) -> Result<QueueCounts, OutboxError> {
    let mut counts = QueueCounts::default();
    for row in rows {
        let state: &str = row.get(0);
        let n: i64 = row.get(1);
        counts.add(MessageState::parse(state)?, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}

impl PgStore {
    pub(crate) async fn open(
        url: &str,
        opts: PgOptions,
        shared: Arc<Shared>,
    ) -> Result<Arc<PgStore>, OutboxError> {
        let target = connect::parse(url)?;
        let mut config = target.config.clone();
        config
            .connect_timeout(opts.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .application_name(format!("smsbridge:{}", opts.node));
        if target.tls {
            let tls = connect::rustls(target.root_cert.as_deref())?;
            PgStore::start(config, tls, &target.describe, opts, shared).await
        } else {
            PgStore::start(
                config,
                tokio_postgres::NoTls,
                &target.describe,
                opts,
                shared,
            )
            .await
        }
    }

    async fn start<T>(
        config: tokio_postgres::Config,
        tls: T,
        describe: &str,
        opts: PgOptions,
        shared: Arc<Shared>,
    ) -> Result<Arc<PgStore>, OutboxError>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>
            + Clone
            + Sync
            + Send
            + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
    {
        // The first connection: tells a bad password from an unreachable server, and sets
        // up the schema.
        let (mut client, connection) = config
            .connect(tls.clone())
            .await
            .map_err(|e| connect::classify(&e, describe))?;
        let driver = tokio::spawn(connection);
        let set_up = async {
            schema::migrate(&mut client).await.map_err(|e| match e {
                schema::MigrateError::Db(e) => connect::classify(&e, describe),
                schema::MigrateError::Refused(message) => OutboxError::Connect {
                    problem: ConnectProblem::Other,
                    message: format!("{describe}: {message}"),
                },
            })?;
            for table in schema::TABLES {
                let ok: bool = client
                    .query_one(
                        "SELECT has_table_privilege($1, 'SELECT, INSERT, UPDATE, DELETE')",
                        &[&table],
                    )
                    .await
                    .map_err(|e| connect::classify(&e, describe))?
                    .get(0);
                if !ok {
                    return Err(OutboxError::Connect {
                        problem: ConnectProblem::Permission,
                        message: format!(
                            "{describe}: the role may not read and write the table {table} \
                             (GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ...)"
                        ),
                    });
                }
            }
            let rows = client
                .query(COUNTS, &[])
                .await
                .map_err(|e| connect::classify(&e, describe))?;
            let counts = counts_of(rows).map_err(|e| OutboxError::Connect {
                problem: ConnectProblem::Other,
                message: format!("{describe}: {e}"),
            })?;
            Ok(counts)
        };
        let result = set_up.await;
        drop(client);
        let _ = driver.await;
        let counts = result?;
        if let Ok(mut c) = shared.counts.lock() {
            *c = counts;
        }

        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.op_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| OutboxError::Connect {
                problem: ConnectProblem::Other,
                message: format!("{describe}: cannot build the connection pool: {e}"),
            })?;

        let refresh = Arc::new(Notify::new());
        let tracker = Arc::new(Tracker::default());
        let listener = tokio::spawn(listen::run(
            config,
            tls,
            Arc::clone(&shared),
            Arc::clone(&refresh),
        ));
        let refresher = tokio::spawn(refresh_counts(
            pool.clone(),
            Arc::clone(&shared),
            Arc::clone(&tracker),
            Arc::clone(&refresh),
        ));
        Ok(Arc::new(PgStore {
            pool,
            opts,
            shared,
            leases: Mutex::new(HashMap::new()),
            tracker,
            refresh,
            tasks: Mutex::new(vec![listener, refresher]),
            closed: AtomicBool::new(false),
            vacuum_checked: Mutex::new(None),
            vacuuming: Arc::new(AtomicBool::new(false)),
        }))
    }

    pub(crate) fn lease(&self) -> Duration {
        self.opts.lease
    }

    /// Runs one operation: counted in flight, bounded by `op_timeout`, and `writable`
    /// updated by whether the database answered.
    async fn guard<T>(
        &self,
        op: impl Future<Output = Result<T, OutboxError>>,
    ) -> Result<T, OutboxError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(OutboxError::Closed);
        }
        self.tracker.inflight.fetch_add(1, Ordering::SeqCst);
        let _inflight = InFlight {
            tracker: &self.tracker,
            refresh: &self.refresh,
        };
        let result = match tokio::time::timeout(self.opts.op_timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(OutboxError::Unavailable {
                message: format!(
                    "no answer from the database within {} s",
                    self.opts.op_timeout.as_secs()
                ),
            }),
        };
        match &result {
            Err(OutboxError::Unavailable { .. }) => {
                self.shared.writable.store(false, Ordering::Relaxed)
            }
            Err(OutboxError::Closed) => {}
            _ => self.shared.writable.store(true, Ordering::Relaxed),
        }
        result
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, OutboxError> {
        Ok(self.pool.get().await?)
    }

    /// Runs `body` in a transaction on a pooled connection: commits what it returns `Ok`,
    /// and rolls an error back before returning it. A transaction that is only dropped
    /// queues its `ROLLBACK` on the connection without waiting, so its row locks outlive
    /// the call, and another box's `SKIP LOCKED` claim passes the row by, with nothing to
    /// wake it again until the next notification.
    async fn transact<T>(
        &self,
        body: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        match body(&tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(error) => {
                // The error that ended the work is the one to report; a connection that
                // cannot roll back is closed by the server, which releases the locks.
                if let Err(rollback) = tx.rollback().await {
                    tracing::debug!(error = %rollback, "rolling back a failed transaction");
                }
                Err(error)
            }
        }
    }

    fn bump(&self, from: Option<MessageState>, to: MessageState, n: u64) {
        if let Ok(mut counts) = self.shared.counts.lock() {
            if let Some(from) = from {
                counts.remove(from, n);
            }
            counts.add(to, n);
        }
    }

    fn token(&self, id: MessageId) -> Option<i64> {
        self.leases
            .lock()
            .ok()
            .and_then(|l| l.get(&id).map(|lease| lease.token))
    }

    fn confirm(&self, id: MessageId, token: i64, at: Instant) {
        if let Ok(mut leases) = self.leases.lock() {
            // Entries of messages taken over from this box stay (they fence later
            // writes); keep them from piling up over a long run.
            if leases.len() >= 10_000 {
                let stale = self.opts.lease.saturating_mul(10);
                leases.retain(|_, l| at.saturating_duration_since(l.confirmed) < stale);
            }
            leases.insert(
                id,
                Lease {
                    token,
                    confirmed: at,
                },
            );
        }
    }

    fn forget(&self, id: MessageId) {
        if let Ok(mut leases) = self.leases.lock() {
            leases.remove(&id);
        }
    }

    pub(crate) fn lease_fresh(&self, id: MessageId, now: Instant) -> bool {
        self.leases.lock().ok().is_some_and(|leases| {
            leases
                .get(&id)
                .is_some_and(|l| now.saturating_duration_since(l.confirmed) < self.opts.lease / 2)
        })
    }

    /// Whether the lease surely has not lapsed yet: its last confirmation (taken at the
    /// request's start) is younger than the lease less a fifth, a margin for the two
    /// clocks' pace. Only then may a part go out without a renewal.
    pub(crate) fn lease_surely_held(&self, id: MessageId, now: Instant) -> bool {
        let margin = self.opts.lease / 5;
        self.leases.lock().ok().is_some_and(|leases| {
            leases.get(&id).is_some_and(|l| {
                now.saturating_duration_since(l.confirmed) < self.opts.lease.saturating_sub(margin)
            })
        })
    }

    /// A modem as the dispatcher sees it: plain when it is this box's, else `node/modem`.
    fn modem_name(&self, node: Option<String>, modem: Option<String>) -> Option<String> {
        let modem = modem?;
        match node {
            Some(node) if node != self.opts.node => Some(format!("{node}/{modem}")),
            _ => Some(modem),
        }
    }

    // ----- accept -----

    pub(crate) async fn enqueue(
        &self,
        msg: NewMessage,
        plan: Option<String>,
        dedup: Option<([u8; 32], i64)>,
    ) -> Result<Enqueued, OutboxError> {
        msg.check()?;
        let depth = self.shared.counts.lock().map(|c| c.depth()).unwrap_or(0);
        if depth >= self.opts.outbox.max_depth {
            return Err(OutboxError::Full { depth });
        }
        let enqueued = self
            .guard(self.transact(async |tx| {
                if let Some((key, _)) = &dedup {
                    exec(
                        tx,
                        "SELECT pg_advisory_xact_lock($1, $2)",
                        &[&LOCK_DEDUP, &lock_key(key)],
                    )
                    .await?;
                    exec(
                        tx,
                        "DELETE FROM dedup WHERE key = $1 AND expires_at <= smsbridge_now_ms()",
                        &[&&key[..]],
                    )
                    .await?;
                    if let Some(row) = query_opt(
                        tx,
                        "SELECT message_id FROM dedup WHERE key = $1",
                        &[&&key[..]],
                    )
                    .await?
                    {
                        return Ok(Enqueued {
                            id: MessageId(row.get(0)),
                            duplicate: true,
                        });
                    }
                }
                if let Some(rate) = &msg.rate {
                    exec(
                        tx,
                        "SELECT pg_advisory_xact_lock($1, $2)",
                        &[&LOCK_RATE, &lock_key(&rate.key)],
                    )
                    .await?;
                }
                let ttl = msg.expires_at_ms - msg.created_at_ms;
                let inserted = query_opt(
                    tx,
                    "INSERT INTO messages (recipient, body, parts, concat_ref, state, created_at,
                                           expires_at, next_attempt_at, signature, plan)
                     VALUES ($1, $2, $3, $4, 'queued', smsbridge_now_ms(),
                             smsbridge_now_ms() + $5, smsbridge_now_ms(), $6, $7)
                     ON CONFLICT (signature) DO NOTHING
                     RETURNING id",
                    &[
                        &msg.to,
                        &msg.text,
                        &i16::from(msg.parts),
                        &i32::from(msg.concat_ref),
                        &ttl,
                        &msg.signature,
                        &plan,
                    ],
                )
                .await?;
                let Some(row) = inserted else {
                    return Err(OutboxError::Duplicate);
                };
                let id = MessageId(row.get(0));
                if let Some(rate) = &msg.rate {
                    let window = rate.window_ms.max(1);
                    let row = query_one(
                        tx,
                        "SELECT count(*), min(at), smsbridge_now_ms() FROM rate_events
                         WHERE key = $1 AND at > smsbridge_now_ms() - $2",
                        &[&&rate.key[..], &window],
                    )
                    .await?;
                    let used: i64 = row.get(0);
                    if used >= i64::from(rate.limit) {
                        let oldest: Option<i64> = row.get(1);
                        let now: i64 = row.get(2);
                        let retry_after_ms =
                            (oldest.unwrap_or(now) + window - now).max(1).unsigned_abs();
                        return Err(OutboxError::RateLimited { retry_after_ms });
                    }
                    exec(
                        tx,
                        "INSERT INTO rate_events (key, at, expires_at)
                         VALUES ($1, smsbridge_now_ms(), smsbridge_now_ms() + $2)",
                        &[&&rate.key[..], &window],
                    )
                    .await?;
                }
                if let Some((key, until_ms)) = &dedup {
                    let window = until_ms - msg.created_at_ms;
                    exec(
                        tx,
                        "INSERT INTO dedup (key, message_id, expires_at)
                         VALUES ($1, $2, smsbridge_now_ms() + $3)",
                        &[&&key[..], &id.0, &window],
                    )
                    .await?;
                }
                exec(tx, "SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
                Ok(Enqueued {
                    id,
                    duplicate: false,
                })
            }))
            .await?;
        if !enqueued.duplicate {
            self.bump(None, MessageState::Queued, 1);
        }
        Ok(enqueued)
    }

    pub(crate) async fn dedup_lookup(
        &self,
        key: [u8; 32],
    ) -> Result<Option<MessageId>, OutboxError> {
        self.guard(async {
            let client = self.client().await?;
            let row = query_opt(
                &client,
                "SELECT message_id FROM dedup WHERE key = $1 AND expires_at > smsbridge_now_ms()",
                &[&&key[..]],
            )
            .await?;
            Ok(row.map(|r| MessageId(r.get(0))))
        })
        .await
    }

    // ----- claim -----

    pub(crate) async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.guard(async {
            let client = self.client().await?;
            let rows = query(
                &client,
                "SELECT id, parts, parts_sent, attempts, next_attempt_at - smsbridge_now_ms(),
                        expires_at - smsbridge_now_ms(), node, modem
                 FROM messages
                 WHERE state = 'queued' AND next_attempt_at <= smsbridge_now_ms()
                       AND expires_at > smsbridge_now_ms()
                 ORDER BY next_attempt_at, id LIMIT $1",
                &[&limit],
            )
            .await?;
            Ok(rows
                .into_iter()
                .map(|row| Pending {
                    id: MessageId(row.get(0)),
                    parts: small(row.get(1)),
                    parts_sent: small(row.get(2)),
                    attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                    next_attempt_at_ms: now_ms + row.get::<_, i64>(4),
                    expires_at_ms: now_ms + row.get::<_, i64>(5),
                    last_modem: self.modem_name(row.get(6), row.get(7)),
                })
                .collect())
        })
        .await
    }

    /// Claims message `id`, or the most overdue one when `id` is `None`.
    pub(crate) async fn claim(
        &self,
        id: Option<MessageId>,
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, OutboxError> {
        const RETURNING: &str = "
            UPDATE messages m
            SET state = 'sending', attempts = m.attempts + 1, node = $1, modem = $2,
                lease_owner = $1, lease_until = smsbridge_now_ms() + $3,
                lease_token = m.lease_token + 1
            FROM c WHERE m.id = c.id
            RETURNING m.id, m.recipient, m.body, m.parts, m.parts_sent, m.concat_ref,
                      m.attempts, m.created_at - smsbridge_now_ms(),
                      m.expires_at - smsbridge_now_ms(), c.prev_node, c.prev_modem, m.plan,
                      m.lease_token";
        let started = Instant::now();
        let lease = ms(self.opts.lease);
        let row = self
            .guard(async {
                let client = self.client().await?;
                match id {
                    Some(id) => {
                        let sql = format!(
                            "WITH c AS (
                                 SELECT id, node AS prev_node, modem AS prev_modem FROM messages
                                 WHERE id = $4 AND state = 'queued'
                                       AND next_attempt_at <= smsbridge_now_ms()
                                       AND expires_at > smsbridge_now_ms()
                                 FOR UPDATE SKIP LOCKED)
                             {RETURNING}"
                        );
                        query_opt(&client, &sql, &[&self.opts.node, &modem, &lease, &id.0]).await
                    }
                    None => {
                        let sql = format!(
                            "WITH c AS (
                                 SELECT id, node AS prev_node, modem AS prev_modem FROM messages
                                 WHERE state = 'queued' AND next_attempt_at <= smsbridge_now_ms()
                                       AND expires_at > smsbridge_now_ms()
                                 ORDER BY next_attempt_at, id LIMIT 1
                                 FOR UPDATE SKIP LOCKED)
                             {RETURNING}"
                        );
                        query_opt(&client, &sql, &[&self.opts.node, &modem, &lease]).await
                    }
                }
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id = MessageId(row.get(0));
        let token: i64 = row.get(12);
        self.confirm(id, token, started);
        self.bump(Some(MessageState::Queued), MessageState::Sending, 1);
        let text: Option<String> = row.get(2);
        let text =
            text.ok_or_else(|| OutboxError::Storage(format!("message {id} has lost its text")))?;
        Ok(Some(Claimed {
            id,
            to: row.get(1),
            text,
            parts: small(row.get(3)),
            parts_sent: small(row.get(4)),
            concat_ref: u16::try_from(row.get::<_, i32>(5)).unwrap_or(0),
            attempt: u32::try_from(row.get::<_, i32>(6)).unwrap_or(1),
            created_at_ms: now_ms + row.get::<_, i64>(7),
            expires_at_ms: now_ms + row.get::<_, i64>(8),
            previous_modem: self.modem_name(row.get(9), row.get(10)),
            plan: row.get(11),
        }))
    }

    // ----- a send's progress and end -----

    /// Locks message `id`'s row and checks this box still holds its lease.
    async fn lock_sending<C: GenericClient>(
        &self,
        tx: &C,
        id: MessageId,
    ) -> Result<Locked, OutboxError> {
        let row = query_opt(
            tx,
            "SELECT state, parts, parts_sent, attempts, modem, recipient, lease_token
             FROM messages WHERE id = $1 FOR UPDATE",
            &[&id.0],
        )
        .await?
        .ok_or(OutboxError::NotFound(id))?;
        let state = MessageState::parse(row.get(0))?;
        let token: i64 = row.get(6);
        match self.token(id) {
            Some(mine) if mine == token => {}
            // The stale token stays: every later write of this box is fenced too.
            Some(_) => return Err(OutboxError::Fenced),
            None if state == MessageState::Sending => return Err(OutboxError::Fenced),
            None => {}
        }
        if state != MessageState::Sending {
            return Err(OutboxError::WrongState {
                id,
                state,
                expected: MessageState::Sending,
            });
        }
        Ok(Locked {
            state,
            parts: small(row.get(1)),
            parts_sent: small(row.get(2)),
            attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
            modem: row.get(4),
            recipient: row.get(5),
        })
    }

    async fn record_part<C: GenericClient>(
        &self,
        tx: &C,
        id: MessageId,
        row: &mut Locked,
        part_index: u8,
        mr: u8,
    ) -> Result<(), OutboxError> {
        crate::outbox::check_next_part(id, row.parts, row.parts_sent, part_index)?;
        let modem = row.modem.clone().unwrap_or_default();
        exec(
            tx,
            "INSERT INTO parts (message_id, part_index, node, modem, mr, sent_at)
             VALUES ($1, $2, $3, $4, $5, smsbridge_now_ms())
             ON CONFLICT (message_id, part_index) DO UPDATE
                 SET node = excluded.node, modem = excluded.modem, mr = excluded.mr,
                     sent_at = excluded.sent_at, delivery = 'pending', status_code = NULL,
                     reported_at = NULL",
            &[
                &id.0,
                &i16::from(part_index),
                &self.opts.node,
                &modem,
                &i16::from(mr),
            ],
        )
        .await?;
        row.parts_sent = part_index + 1;
        exec(
            tx,
            "UPDATE messages SET parts_sent = $2, lease_until = smsbridge_now_ms() + $3
             WHERE id = $1",
            &[&id.0, &i16::from(row.parts_sent), &ms(self.opts.lease)],
        )
        .await?;
        Ok(())
    }

    async fn record_parts<C: GenericClient>(
        &self,
        tx: &C,
        id: MessageId,
        row: &mut Locked,
        mrs: &[u8],
    ) -> Result<(), OutboxError> {
        for &mr in mrs {
            let index = row.parts_sent;
            self.record_part(tx, id, row, index, mr).await?;
        }
        Ok(())
    }

    /// Moves a message to a final state and redacts it in the same transaction.
    async fn finish<C: GenericClient>(
        tx: &C,
        id: MessageId,
        recipient: &str,
        to: MessageState,
        error: Option<&str>,
    ) -> Result<(), OutboxError> {
        exec(
            tx,
            "UPDATE messages
             SET state = $2, final_at = smsbridge_now_ms(), body = NULL, recipient = $3,
                 last_error = coalesce($4, last_error), lease_owner = NULL, lease_until = NULL
             WHERE id = $1",
            &[&id.0, &to.as_str(), &crate::mask::phone(recipient), &error],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn mark_part_sent(
        &self,
        id: MessageId,
        part_index: u8,
        mr: u8,
    ) -> Result<(), OutboxError> {
        let started = Instant::now();
        self.guard(async {
            self.transact(async |tx| {
                let mut row = self.lock_sending(tx, id).await?;
                self.record_part(tx, id, &mut row, part_index, mr).await
            })
            .await?;
            if let Some(token) = self.token(id) {
                self.confirm(id, token, started);
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn renew(&self, id: MessageId) -> Result<(), OutboxError> {
        let started = Instant::now();
        let Some(token) = self.token(id) else {
            return Err(OutboxError::Fenced);
        };
        self.guard(async {
            let client = self.client().await?;
            let renewed = exec(
                &client,
                "UPDATE messages SET lease_until = smsbridge_now_ms() + $3
                 WHERE id = $1 AND lease_token = $2 AND state = 'sending'",
                &[&id.0, &token, &ms(self.opts.lease)],
            )
            .await?;
            if renewed == 1 {
                self.confirm(id, token, started);
                return Ok(());
            }
            let row = query_opt(
                &client,
                "SELECT state, lease_token FROM messages WHERE id = $1",
                &[&id.0],
            )
            .await?
            .ok_or(OutboxError::NotFound(id))?;
            let state = MessageState::parse(row.get(0))?;
            if row.get::<_, i64>(1) != token {
                return Err(OutboxError::Fenced);
            }
            Err(OutboxError::WrongState {
                id,
                state,
                expected: MessageState::Sending,
            })
        })
        .await
    }

    pub(crate) async fn restart_whole(
        &self,
        id: MessageId,
        concat_ref: u16,
        why: &str,
    ) -> Result<bool, OutboxError> {
        self.guard(self.transact(async |tx| {
            let row = query_opt(
                tx,
                "SELECT state FROM messages WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .await?
            .ok_or(OutboxError::NotFound(id))?;
            if MessageState::parse(row.get(0))? != MessageState::Queued {
                return Ok(false);
            }
            exec(tx, "DELETE FROM parts WHERE message_id = $1", &[&id.0]).await?;
            exec(
                tx,
                "UPDATE messages SET parts_sent = 0, concat_ref = $2, last_error = $3,
                                     modem = NULL, node = NULL
                 WHERE id = $1",
                &[&id.0, &i32::from(concat_ref), &why],
            )
            .await?;
            Ok(true)
        }))
        .await
    }

    pub(crate) async fn mark_sent(&self, id: MessageId, mrs: &[u8]) -> Result<(), OutboxError> {
        self.guard(async {
            let row = self
                .transact(async |tx| {
                    let mut row = self.lock_sending(tx, id).await?;
                    self.record_parts(tx, id, &mut row, mrs).await?;
                    if row.parts_sent != row.parts {
                        return Err(OutboxError::Invalid(format!(
                            "message {id} has {} parts but only {} were recorded as sent",
                            row.parts, row.parts_sent
                        )));
                    }
                    exec(
                        tx,
                        "UPDATE messages SET sent_at = smsbridge_now_ms() WHERE id = $1",
                        &[&id.0],
                    )
                    .await?;
                    Self::finish(tx, id, &row.recipient, MessageState::Sent, None).await?;
                    Ok(row)
                })
                .await?;
            self.forget(id);
            self.bump(Some(row.state), MessageState::Sent, 1);
            Ok(())
        })
        .await
    }

    pub(crate) async fn mark_retry(
        &self,
        id: MessageId,
        error: &str,
        sent: &[u8],
        now_ms: i64,
    ) -> Result<RetryOutcome, OutboxError> {
        self.guard(async {
            let outcome = self
                .transact(async |tx| {
                    let mut row = self.lock_sending(tx, id).await?;
                    self.record_parts(tx, id, &mut row, sent).await?;
                    match self.opts.outbox.retry.next_attempt_at(row.attempts, 0) {
                        Some(delay) => {
                            exec(
                                tx,
                                "UPDATE messages
                                 SET state = 'queued', next_attempt_at = smsbridge_now_ms() + $2,
                                     last_error = $3, lease_owner = NULL, lease_until = NULL
                                 WHERE id = $1",
                                &[&id.0, &delay, &error],
                            )
                            .await?;
                            // Other boxes' timers learn of the new due time.
                            exec(tx, "SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
                            Ok(RetryOutcome::Scheduled {
                                at_ms: now_ms.saturating_add(delay),
                            })
                        }
                        None => {
                            let error = format!("gave up after {} attempts: {error}", row.attempts);
                            let failed = MessageState::Failed;
                            Self::finish(tx, id, &row.recipient, failed, Some(&error)).await?;
                            Ok(RetryOutcome::GaveUp)
                        }
                    }
                })
                .await?;
            let to = match outcome {
                RetryOutcome::Scheduled { .. } => MessageState::Queued,
                RetryOutcome::GaveUp => MessageState::Failed,
            };
            self.bump(Some(MessageState::Sending), to, 1);
            self.forget(id);
            Ok(outcome)
        })
        .await
    }

    pub(crate) async fn mark_final(
        &self,
        id: MessageId,
        to: MessageState,
        error: &str,
        sent: &[u8],
    ) -> Result<(), OutboxError> {
        self.guard(async {
            self.transact(async |tx| {
                let mut row = self.lock_sending(tx, id).await?;
                self.record_parts(tx, id, &mut row, sent).await?;
                Self::finish(tx, id, &row.recipient, to, Some(error)).await
            })
            .await?;
            self.forget(id);
            self.bump(Some(MessageState::Sending), to, 1);
            Ok(())
        })
        .await
    }

    // ----- sweep, expiry, recovery -----

    /// Queues `id` again, due now, with no lease; the new token fences its last holder.
    async fn requeue_unleased<C: GenericClient>(tx: &C, id: MessageId) -> Result<(), OutboxError> {
        exec(
            tx,
            "UPDATE messages
             SET state = 'queued', next_attempt_at = smsbridge_now_ms(),
                 lease_owner = NULL, lease_until = NULL, lease_token = lease_token + 1
             WHERE id = $1",
            &[&id.0],
        )
        .await?;
        Ok(())
    }

    /// Expires the queued messages past their TTL inside `tx`; their ids.
    async fn expire_in<C: GenericClient>(&self, tx: &C) -> Result<Vec<MessageId>, OutboxError> {
        let rows = query(
            tx,
            "SELECT id, recipient FROM messages
             WHERE state = 'queued' AND expires_at <= smsbridge_now_ms()
             ORDER BY id FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            let id = MessageId(row.get(0));
            let recipient: String = row.get(1);
            Self::finish(tx, id, &recipient, MessageState::Expired, None).await?;
            ids.push(id);
        }
        Ok(ids)
    }

    pub(crate) async fn expire_due(&self) -> Result<Vec<MessageId>, OutboxError> {
        self.guard(async {
            let ids = self.transact(async |tx| self.expire_in(tx).await).await?;
            self.bump(
                Some(MessageState::Queued),
                MessageState::Expired,
                ids.len() as u64,
            );
            Ok(ids)
        })
        .await
    }

    pub(crate) async fn sweep(&self) -> Result<Swept, OutboxError> {
        self.guard(async {
            let (completed, requeued, expired) = self
                .transact(async |tx| {
                    let lapsed = query(
                        tx,
                        "SELECT id, parts, parts_sent, recipient, lease_owner FROM messages
                         WHERE state = 'sending' AND lease_until < smsbridge_now_ms()
                         ORDER BY id FOR UPDATE SKIP LOCKED",
                        &[],
                    )
                    .await?;
                    let mut completed = 0u64;
                    let mut requeued = 0u64;
                    for row in &lapsed {
                        let id = MessageId(row.get(0));
                        let parts: i16 = row.get(1);
                        let parts_sent: i16 = row.get(2);
                        let recipient: String = row.get(3);
                        let owner: Option<String> = row.get(4);
                        let owner = owner.unwrap_or_else(|| "?".to_owned());
                        if parts_sent >= parts {
                            // The network has every part: only the bookkeeping was cut short.
                            exec(
                                tx,
                                "UPDATE messages SET sent_at = coalesce(sent_at, smsbridge_now_ms()),
                                                     lease_token = lease_token + 1
                                 WHERE id = $1",
                                &[&id.0],
                            )
                            .await?;
                            Self::finish(tx, id, &recipient, MessageState::Sent, None).await?;
                            completed += 1;
                        } else if parts_sent > 0 {
                            // Its first parts came from the lapsed box's modem (another sender
                            // number): a phone cannot join parts of two senders, so all again.
                            let concat_ref = i32::from(rand::random::<u16>());
                            exec(tx, "DELETE FROM parts WHERE message_id = $1", &[&id.0]).await?;
                            let why = format!(
                                "box {owner} stopped renewing its lease after {parts_sent} of {parts} \
                                 parts: sent whole again under reference {concat_ref}"
                            );
                            exec(
                                tx,
                                "UPDATE messages
                                 SET state = 'queued', next_attempt_at = smsbridge_now_ms(),
                                     parts_sent = 0, concat_ref = $2, last_error = $3,
                                     lease_owner = NULL, lease_until = NULL,
                                     lease_token = lease_token + 1
                                 WHERE id = $1",
                                &[&id.0, &concat_ref, &why],
                            )
                            .await?;
                            requeued += 1;
                        } else {
                            Self::requeue_unleased(tx, id).await?;
                            requeued += 1;
                        }
                    }
                    let expired = self.expire_in(tx).await?;
                    let cleanup: bool = query_one(
                        tx,
                        "SELECT pg_try_advisory_xact_lock($1)",
                        &[&LOCK_CLEANUP],
                    )
                    .await?
                    .get(0);
                    if cleanup {
                        exec(
                            tx,
                            "DELETE FROM dedup WHERE expires_at <= smsbridge_now_ms()",
                            &[],
                        )
                        .await?;
                        exec(
                            tx,
                            "DELETE FROM rate_events WHERE expires_at <= smsbridge_now_ms()",
                            &[],
                        )
                        .await?;
                    }
                    if requeued > 0 {
                        exec(tx, "SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
                    }
                    Ok((completed, requeued, expired))
                })
                .await?;
            self.bump(Some(MessageState::Sending), MessageState::Sent, completed);
            self.bump(Some(MessageState::Sending), MessageState::Queued, requeued);
            self.bump(
                Some(MessageState::Queued),
                MessageState::Expired,
                expired.len() as u64,
            );
            if requeued > 0 {
                self.shared.due_work.notify_one();
            }
            self.maybe_vacuum();
            Ok(Swept {
                taken_over: completed + requeued,
                expired: expired.len() as u64,
            })
        })
        .await
    }

    /// At start: this box's own messages left `sending` by its previous run.
    pub(crate) async fn recover(&self) -> Result<Recovered, OutboxError> {
        self.guard(async {
            let (completed, requeued) = self
                .transact(async |tx| {
                    let rows = query(
                        tx,
                        "SELECT id, parts, parts_sent, recipient FROM messages
                         WHERE state = 'sending' AND lease_owner = $1 ORDER BY id FOR UPDATE",
                        &[&self.opts.node],
                    )
                    .await?;
                    let mut completed = 0u64;
                    let mut requeued = 0u64;
                    for row in &rows {
                        let id = MessageId(row.get(0));
                        let parts: i16 = row.get(1);
                        let parts_sent: i16 = row.get(2);
                        if parts_sent >= parts {
                            exec(
                                tx,
                                "UPDATE messages SET sent_at = coalesce(sent_at, smsbridge_now_ms())
                                 WHERE id = $1",
                                &[&id.0],
                            )
                            .await?;
                            Self::finish(tx, id, row.get(3), MessageState::Sent, None).await?;
                            completed += 1;
                        } else {
                            // Same box, same modems: the recorded parts stand, as on SQLite.
                            Self::requeue_unleased(tx, id).await?;
                            requeued += 1;
                        }
                    }
                    if requeued > 0 {
                        exec(tx, "SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
                    }
                    Ok((completed, requeued))
                })
                .await?;
            let client = self.client().await?;
            let counts = load_counts(&client).await?;
            if let Ok(mut c) = self.shared.counts.lock() {
                *c = counts;
            }
            Ok(Recovered {
                requeued,
                completed,
                queued: counts.queued,
            })
        })
        .await
    }

    pub(crate) async fn next_due_at(&self, now_ms: i64) -> Result<Option<i64>, OutboxError> {
        self.guard(async {
            let client = self.client().await?;
            let row = query_one(
                &client,
                "SELECT least(
                     (SELECT min(next_attempt_at) FROM messages
                      WHERE state = 'queued' AND next_attempt_at > smsbridge_now_ms()),
                     (SELECT min(expires_at) FROM messages WHERE state = 'queued')
                 ) - smsbridge_now_ms()",
                &[],
            )
            .await?;
            let delta: Option<i64> = row.get(0);
            Ok(delta.map(|d| now_ms.saturating_add(d)))
        })
        .await
    }

    // ----- delivery reports -----

    pub(crate) async fn record_delivery(
        &self,
        modem: &str,
        mr: u8,
        status_code: u8,
        state: DeliveryState,
    ) -> Result<Option<MessageId>, OutboxError> {
        let window = ms(self.opts.outbox.delivery_window);
        self.guard(async {
            let client = self.client().await?;
            let row = query_opt(
                &client,
                "UPDATE parts p SET delivery = $4, status_code = $5,
                                    reported_at = smsbridge_now_ms()
                 FROM (SELECT message_id, part_index FROM parts
                       WHERE node = $1 AND modem = $2 AND mr = $3
                             AND sent_at >= smsbridge_now_ms() - $6
                       ORDER BY sent_at DESC, message_id DESC LIMIT 1) AS hit
                 WHERE p.message_id = hit.message_id AND p.part_index = hit.part_index
                 RETURNING p.message_id",
                &[
                    &self.opts.node,
                    &modem,
                    &i16::from(mr),
                    &state.as_str(),
                    &i16::from(status_code),
                    &window,
                ],
            )
            .await?;
            Ok(row.map(|r| MessageId(r.get(0))))
        })
        .await
    }

    // ----- status -----

    pub(crate) async fn sent_per_minute(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<u64>, OutboxError> {
        let minutes = usize::try_from((to_ms - from_ms).max(0) / 60_000).unwrap_or(0);
        self.guard(async {
            let client = self.client().await?;
            let rows = query(
                &client,
                "SELECT (sent_at - $1) / 60000, count(*) FROM messages
                 WHERE sent_at >= $1 AND sent_at < $2 GROUP BY 1",
                &[&from_ms, &to_ms],
            )
            .await?;
            let mut buckets = vec![0u64; minutes];
            for row in rows {
                let minute: i64 = row.get(0);
                let count: i64 = row.get(1);
                if let Some(bucket) = usize::try_from(minute)
                    .ok()
                    .and_then(|m| buckets.get_mut(m))
                {
                    *bucket = u64::try_from(count).unwrap_or(0);
                }
            }
            Ok(buckets)
        })
        .await
    }

    pub(crate) async fn summaries(
        &self,
        id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageSummary>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.guard(async {
            let client = self.client().await?;
            let rows = query(
                &client,
                "SELECT m.id, m.recipient, m.state, m.attempts, m.parts, m.parts_sent,
                        m.created_at, m.sent_at, m.final_at, m.modem, m.last_error, m.node,
                        a.recorded, a.delivered, a.failed, a.last_status, a.last_report
                 FROM (SELECT * FROM messages WHERE $1::bigint IS NULL OR id = $1
                       ORDER BY id DESC LIMIT $2) AS m
                 LEFT JOIN LATERAL (
                     SELECT count(*) AS recorded,
                            count(*) FILTER (WHERE delivery = 'delivered') AS delivered,
                            count(*) FILTER (WHERE delivery = 'failed') AS failed,
                            (array_agg(status_code ORDER BY reported_at DESC, part_index DESC)
                                 FILTER (WHERE reported_at IS NOT NULL))[1] AS last_status,
                            max(reported_at) AS last_report
                     FROM parts p WHERE p.message_id = m.id) AS a ON true
                 ORDER BY m.id DESC",
                &[&id.map(|id| id.0), &limit],
            )
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let parts = small(row.get(4));
                let recorded: i64 = row.get(12);
                let delivered = u8::try_from(row.get::<_, i64>(13)).unwrap_or(u8::MAX);
                let failed = u8::try_from(row.get::<_, i64>(14)).unwrap_or(u8::MAX);
                let last_status: Option<i16> = row.get(15);
                let number: String = row.get(1);
                out.push(MessageSummary {
                    id: MessageId(row.get(0)),
                    to_masked: crate::mask::phone(&number),
                    state: MessageState::parse(row.get(2))?,
                    attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                    parts,
                    parts_sent: small(row.get(5)),
                    created_at_ms: row.get(6),
                    sent_at_ms: row.get(7),
                    final_at_ms: row.get(8),
                    modem: row.get(9),
                    last_error: row.get(10),
                    node: row.get(11),
                    delivery: (recorded > 0).then(|| DeliverySummary {
                        state: DeliveryState::of_parts(
                            parts as u64,
                            delivered as u64,
                            failed as u64,
                        ),
                        parts_delivered: delivered,
                        parts_failed: failed,
                        last_status: last_status.map(small),
                        last_report_at_ms: row.get(16),
                    }),
                });
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn purge(&self, older_than_ms: i64) -> Result<u64, OutboxError> {
        self.guard(async {
            let client = self.client().await?;
            let rows = query(
                &client,
                "WITH gone AS (DELETE FROM messages
                               WHERE final_at IS NOT NULL AND final_at < $1 RETURNING state)
                 SELECT state, count(*) FROM gone GROUP BY state",
                &[&older_than_ms],
            )
            .await?;
            let mut deleted = 0u64;
            for row in rows {
                let state = MessageState::parse(row.get(0))?;
                let n = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                deleted += n;
                if let Ok(mut counts) = self.shared.counts.lock() {
                    counts.remove(state, n);
                }
            }
            Ok(deleted)
        })
        .await
    }

    // ----- the fleet -----

    pub(crate) async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), OutboxError> {
        let queue_local = i64::try_from(beat.queue_local).unwrap_or(i64::MAX);
        self.guard(async {
            let client = self.client().await?;
            exec(
                &client,
                "INSERT INTO nodes (name, last_seen, modems, queue_local)
                 VALUES ($1, smsbridge_now_ms(), $2, $3)
                 ON CONFLICT (name) DO UPDATE
                     SET last_seen = excluded.last_seen, modems = excluded.modems,
                         queue_local = excluded.queue_local",
                &[&self.opts.node, &beat.modems, &queue_local],
            )
            .await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn fleet(&self) -> Result<Vec<NodeStatus>, OutboxError> {
        self.guard(async {
            let client = self.client().await?;
            let rows = query(
                &client,
                "SELECT name, last_seen, modems, queue_local FROM nodes ORDER BY name",
                &[],
            )
            .await?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let name: String = row.get(0);
                    NodeStatus {
                        this: name == self.opts.node,
                        name,
                        last_seen_ms: row.get(1),
                        modems: row.get(2),
                        queue_local: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
                    }
                })
                .collect())
        })
        .await
    }

    /// Starts a `VACUUM messages` in the background when this box has not looked for
    /// `vacuum_every` and none runs: redacted row versions (full number, text) are dead
    /// tuples, invisible to queries but in the table's pages, until VACUUM prunes them.
    fn maybe_vacuum(&self) {
        let due = self.vacuum_checked.lock().is_ok_and(|mut checked| {
            let due = checked.is_none_or(|at| at.elapsed() >= self.opts.vacuum_every);
            if due {
                *checked = Some(Instant::now());
            }
            due
        });
        if !due || self.vacuuming.swap(true, Ordering::SeqCst) {
            return;
        }
        let (pool, every, flag) = (
            self.pool.clone(),
            self.opts.vacuum_every,
            Arc::clone(&self.vacuuming),
        );
        tokio::spawn(async move {
            if let Err(error) = vacuum(&pool, every).await {
                tracing::warn!(%error, "VACUUM of the outbox table failed");
            }
            flag.store(false, Ordering::SeqCst);
        });
    }

    pub(crate) async fn shutdown(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Ok(tasks) = self.tasks.lock() {
            for task in tasks.iter() {
                task.abort();
            }
        }
        self.pool.close();
    }
}

/// `VACUUM messages` unless another box is at it or it (or autovacuum) ran within `every`.
async fn vacuum(pool: &Pool, every: Duration) -> Result<(), OutboxError> {
    let client = pool.get().await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_VACUUM])
        .await?
        .get(0);
    if !locked {
        return Ok(());
    }
    let recent: bool = client
        .query_one(
            "SELECT coalesce(bool_or(greatest(last_vacuum, last_autovacuum)
                                     > now() - make_interval(secs => $1)), false)
             FROM pg_stat_user_tables
             WHERE relname = 'messages' AND schemaname = current_schema()",
            &[&every.as_secs_f64()],
        )
        .await?
        .get(0);
    let result = if recent {
        Ok(())
    } else {
        client.batch_execute("VACUUM messages").await
    };
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_VACUUM])
        .await;
    Ok(result?)
}

/// Keeps the fleet-wide counts fresh: after each of this box's operations and each NOTIFY
/// (at most every 200 ms), and every 5 s regardless. A refresh that overlapped one of this
/// box's own operations is not stored (that operation's own count change would be lost
/// or doubled), unless that has kept happening for 5 s.
async fn refresh_counts(
    pool: Pool,
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    refresh: Arc<Notify>,
) {
    let mut stored = Instant::now();
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(5), refresh.notified()).await;
        for attempt in 0..10 {
            let before = tracker.generation.load(Ordering::SeqCst);
            let quiet_before = tracker.inflight.load(Ordering::SeqCst) == 0;
            let counts = match pool.get().await {
                Ok(client) => load_counts(&client).await,
                Err(e) => Err(e.into()),
            };
            let Ok(counts) = counts else { break };
            let quiet = quiet_before
                && tracker.inflight.load(Ordering::SeqCst) == 0
                && tracker.generation.load(Ordering::SeqCst) == before;
            // Under continuous load of its own, a box still learns the others' changes
            // every few seconds, at the price of a count briefly off by what overlapped.
            let overdue = attempt == 9 && stored.elapsed() > Duration::from_secs(5);
            if quiet || overdue {
                if let Ok(mut c) = shared.counts.lock() {
                    *c = counts;
                }
                stored = Instant::now();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
