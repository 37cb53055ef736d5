//! The writer thread: the only owner of the database connection.
//!
//! Requests arrive on a channel. The writer takes the first one, drains every other request
//! already waiting, runs them all in ONE transaction (each in its own savepoint, so one
//! request's failure leaves the others' work intact), commits once, and only then answers
//! all of them. A burst of concurrent requests therefore pays one fsync, and no caller
//! hears "done" before its change is durable.
//!
//! The WAL keeps old versions of pages, texts included, until a checkpoint copies the
//! latest versions into the database file and a `TRUNCATE` checkpoint empties it. After a
//! redaction the writer runs one when it has been idle for `checkpoint_idle`, or after
//! `checkpoint_max_delay` under continuous load, not after every commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::store::Ctx;
use super::{Claimed, Handoff, OutboxError, OutboxOptions, QueueCounts, Shared, Taken};

/// The most requests one transaction takes; the rest wait for the next one.
const MAX_BATCH: usize = 4096;

/// Commits between two nudges of the checkpointer. Small on purpose: at 1,000 accepts a
/// second, 64 gave the accept latency's p99 2.4-4.0 ms and p99.9 31-35 ms, 512 gave 4.7 /
/// 41 ms (and 62 ms p99 in a 3 s run), 16 gave 1.6-2.4 / 4.4-35 ms with the highest rate
/// holding p99 <= 5 ms at 3,000-4,000 req/s instead of 1,500 (`cargo bench --bench
/// service -- accept`): a short WAL is copied in short checkpoints that an accept's fsync
/// does not wait behind for long.
const CHECKPOINT_EVERY: u32 = 16;

/// Frames the WAL may hold after the checkpointer's run before the writer copies the tail
/// itself (4 KiB pages: 2 MiB). A round of `CHECKPOINT_EVERY` commits writes 100-150
/// frames, so a WAL this long has not started over for several rounds.
const TAIL_COPY_FRAMES: i64 = 512;

/// Copies the WAL into the database file off the writer's path (issue 12 item 6): the
/// writer's connection never checkpoints automatically (`wal_autocheckpoint = 0`), so no
/// commit waits for a thousand pages to be copied and the database file fsync'd. Every
/// `CHECKPOINT_EVERY` commits the writer nudges this thread, which runs a `PASSIVE`
/// checkpoint on its own connection: WAL readers and the writer go on meanwhile. The
/// writer's own `TRUNCATE` checkpoints (after redactions, at shutdown) stay as they are.
///
/// SQLite starts the WAL over only when a write transaction begins with every frame
/// copied. Under continuous load the writer has always committed more while this thread
/// copied, so the WAL would only grow (to 37-123 MB in the benchmark's runs) until a
/// `TRUNCATE` freed it all at once with every request waiting, and each commit that grows
/// the file costs more than one that overwrites it. So when a run leaves more than
/// `TAIL_COPY_FRAMES` in the WAL, the writer copies the few frames committed since with a
/// `PASSIVE` checkpoint of its own between two batches, and its next commit starts the WAL
/// over.
pub(super) struct Checkpointer {
    nudge: std::sync::mpsc::SyncSender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    commits: u32,
    /// Set by the thread when its run left a long WAL; taken by the writer.
    tail_copy_wanted: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to `path`; `None` if either fails (the
    /// writer then checkpoints automatically, as SQLite does by default).
    pub fn start(path: &std::path::Path) -> Option<Checkpointer> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).ok()?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
        conn.pragma_update(None, "cache_size", -64).ok()?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let tail_copy_wanted = Arc::new(AtomicBool::new(false));
        let wanted = Arc::clone(&tail_copy_wanted);
        let thread = std::thread::Builder::new()
            .name("outbox-checkpoint".to_owned())
            .spawn(move || {
                while nudged.recv().is_ok() {
                    // (busy, frames in the WAL, frames copied)
                    let frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        row.get::<_, i64>(1)
                    });
                    if frames.is_ok_and(|frames| frames > TAIL_COPY_FRAMES) {
                        wanted.store(true, Ordering::Relaxed);
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            nudge,
            thread: Some(thread),
            commits: 0,
            tail_copy_wanted,
        })
    }

    fn committed(&mut self) {
        self.commits += 1;
        if self.commits >= CHECKPOINT_EVERY {
            self.commits = 0;
            // A nudge already waiting is enough.
            let _ = self.nudge.try_send(());
        }
    }

    /// Whether the thread's last run asked the writer to copy the WAL's tail (and clears it).
    fn take_tail_copy(&self) -> bool {
        self.tail_copy_wanted.swap(false, Ordering::Relaxed)
    }

    /// Stops the thread and closes its connection (before the writer's last checkpoint).
    fn stop(mut self) {
        drop(self.nudge);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request once its batch's commit is known.
type Reply = Box<dyn FnOnce(Result<(), OutboxError>) + Send>;

/// One request, its result type erased so requests of all kinds share one channel.
pub(super) trait Request: Send {
    /// Runs against the batch's transaction; says whether it succeeded (its savepoint is
    /// kept or rolled back accordingly) and how to answer once the commit is known.
    fn run(self: Box<Self>, ctx: &mut Ctx<'_>) -> (bool, Reply);
    /// Answers without running (the transaction could not even start).
    fn fail(self: Box<Self>, err: OutboxError);
}

pub(super) type Job = Box<dyn Request>;

/// A request made by the handle: an operation and where its answer goes.
pub(super) struct Call<T, F> {
    pub op: F,
    pub reply: oneshot::Sender<Result<T, OutboxError>>,
}

impl<T, F> Request for Call<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Ctx<'_>) -> Result<T, OutboxError> + Send,
{
    fn run(self: Box<Self>, ctx: &mut Ctx<'_>) -> (bool, Reply) {
        let Call { op, reply } = *self;
        let result = op(ctx);
        let ok = result.is_ok();
        let answer: Reply = Box::new(move |commit| {
            // An operation's own error wins; a successful one is only as good as the commit.
            let _ = reply.send(match result {
                Err(err) => Err(err),
                Ok(value) => commit.map(|()| value),
            });
        });
        (ok, answer)
    }

    fn fail(self: Box<Self>, err: OutboxError) {
        let _ = self.reply.send(Err(err));
    }
}

/// An accept: like [`Call`], and what became of the idle modem it took goes to the
/// dispatcher from this thread: the claim it made for it as soon as the operation ran,
/// with a [`super::Committed`] told the commit's outcome the moment it is known, before the
/// caller is answered (the send's command and prompt overlap the fsync, and its PDU goes
/// while the HTTP layer is still on its way to the `202`: issue 12 item 1); or the modem's
/// release when nothing was claimed. The operation notes the modem it takes in the place
/// it is given.
pub(super) struct Accept<T, F> {
    pub op: F,
    pub reply: oneshot::Sender<Result<(T, bool), OutboxError>>,
    pub shared: Arc<Shared>,
}

/// What an accept's operation returns: its value, and the claim it made for the modem it
/// took, if any.
pub(super) type Accepted<T> = Result<(T, Option<(String, Claimed)>), OutboxError>;

/// Where an accept's operation notes the modem it took from the offer.
pub(super) type TookModem = Option<Taken>;

impl<T, F> Request for Accept<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Ctx<'_>, &mut TookModem) -> Accepted<T> + Send,
{
    fn run(self: Box<Self>, ctx: &mut Ctx<'_>) -> (bool, Reply) {
        let Accept { op, reply, shared } = *self;
        let mut took = None;
        let result = op(ctx, &mut took);
        let ok = result.is_ok();
        // Refused (a replay, a full queue): the modem goes back to the offer at once, for
        // the next accept in this batch.
        if result.is_err()
            && let Some(taken) = took.take()
        {
            shared.give_back(taken);
        }
        // A claim goes to the dispatcher now, before the commit, with the means to hear how
        // the commit went: the modem's `AT+CMGS` and prompt overlap the fsync, and the PDU
        // waits for the commit (issue 12 item 1).
        let (result, notice) = match result {
            Ok((value, Some((modem, message)))) => {
                let (notice, committed) = super::Committed::pair();
                shared.hand_off(Handoff::Claimed {
                    modem,
                    message,
                    committed,
                });
                (Ok((value, true)), Some(notice))
            }
            Ok((value, None)) => (Ok((value, false)), None),
            Err(err) => (Err(err), None),
        };
        let answer: Reply = Box::new(move |commit| {
            // The modem hears first: its PDU is the one waiting.
            if let Some(notice) = notice {
                notice.tell(commit.is_ok());
            } else if let Some(taken) = took {
                // Taken, nothing claimed (or the commit failed before a claim was made).
                shared.give_back(taken);
            }
            let answer = match (result, commit) {
                (Err(err), _) => Err(err),
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(err)) => Err(err),
            };
            let _ = reply.send(answer);
        });
        (ok, answer)
    }

    fn fail(self: Box<Self>, err: OutboxError) {
        // The operation never ran, so it took no modem.
        let _ = self.reply.send(Err(err));
    }
}

pub(super) enum Msg {
    Job(Job),
    /// Run a `TRUNCATE` checkpoint now (after the jobs before it are committed).
    Checkpoint(oneshot::Sender<Result<(), OutboxError>>),
    /// Commit what came before, checkpoint, close the connection, stop.
    Shutdown(oneshot::Sender<()>),
}

pub(super) struct Writer {
    pub conn: Connection,
    /// The database file, for the clean-stop marker.
    pub path: std::path::PathBuf,
    pub opts: OutboxOptions,
    pub shared: Arc<Shared>,
    pub counts: QueueCounts,
    /// Since when redacted texts may still sit in the WAL.
    pub unflushed_redaction: Option<Instant>,
    pub checkpointer: Option<Checkpointer>,
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut shutdown = None;
        while shutdown.is_none() {
            let first = match self.unflushed_redaction {
                Some(_) => match rx.recv_timeout(self.opts.checkpoint_idle) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        let _ = self.checkpoint();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
            };
            let mut jobs = Vec::new();
            let mut controls = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Job(job) => jobs.push(job),
                    other => controls.push(other),
                }
                if jobs.len() + controls.len() < MAX_BATCH {
                    // Empty or disconnected: the batch is what we have.
                    next = rx.try_recv().ok();
                }
            }
            if !jobs.is_empty() {
                self.run_batch(jobs);
            }
            self.copy_tail_if_wanted();
            for control in controls {
                match control {
                    Msg::Checkpoint(reply) => {
                        let _ = reply.send(self.checkpoint());
                    }
                    Msg::Shutdown(reply) => shutdown = Some(reply),
                    Msg::Job(_) => {}
                }
            }
            let overdue = self
                .unflushed_redaction
                .is_some_and(|since| since.elapsed() >= self.opts.checkpoint_max_delay);
            if overdue {
                let _ = self.checkpoint();
            }
        }
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
        // Closing the last connection checkpoints and removes the WAL as well; the explicit
        // TRUNCATE makes sure of it even if another process holds the file open.
        let checkpointed = self.checkpoint().is_ok();
        let closed = self.conn.close().is_ok();
        if shutdown.is_some() && checkpointed && closed {
            // An orderly stop with everything in the database file: the next start may
            // skip its full integrity scan (see `super::clean_stop`).
            super::clean_stop::mark(&self.path);
        }
        if let Some(reply) = shutdown {
            let _ = reply.send(());
        }
    }

    fn run_batch(&mut self, jobs: Vec<Job>) {
        let shared = Arc::clone(&self.shared);
        shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .largest_batch
            .fetch_max(jobs.len() as u64, Ordering::Relaxed);
        let changes_before = self.conn.total_changes();

        if shared.fail_writes.load(Ordering::Relaxed) {
            shared.writable.store(false, Ordering::Relaxed);
            let err = OutboxError::Storage("database or disk is full".to_owned());
            for job in jobs {
                job.fail(err.clone());
            }
            return;
        }
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                shared.writable.store(false, Ordering::Relaxed);
                let err = OutboxError::from(e);
                for job in jobs {
                    job.fail(err.clone());
                }
                return;
            }
        };
        let mut counts = self.counts;
        let mut redacted = false;
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            let savepoint = match tx.savepoint() {
                Ok(sp) => sp,
                Err(e) => {
                    job.fail(OutboxError::from(e));
                    continue;
                }
            };
            let mut ctx = Ctx {
                conn: &savepoint,
                opts: &self.opts,
                counts,
                redacted: false,
            };
            let (ok, reply) = job.run(&mut ctx);
            let (job_counts, job_redacted) = (ctx.counts, ctx.redacted);
            if ok && savepoint.commit().is_ok() {
                counts = job_counts;
                redacted |= job_redacted;
                replies.push(reply);
            } else if ok {
                // The release failed: the job's work is not part of the transaction.
                reply(Err(OutboxError::Storage(
                    "could not release a savepoint".to_owned(),
                )));
            } else {
                // Dropping the savepoint rolls the failed job's partial work back.
                replies.push(reply);
            }
        }
        // A transaction that changed no row writes no WAL frame and syncs nothing.
        let wrote = tx.total_changes() != changes_before;
        let committing = Instant::now();
        let commit = if shared.fail_commits.load(Ordering::Relaxed) {
            drop(tx);
            Err(OutboxError::Storage("database or disk is full".to_owned()))
        } else {
            tx.commit().map_err(OutboxError::from)
        };
        shared.writable.store(commit.is_ok(), Ordering::Relaxed);
        if commit.is_ok() {
            shared.stats.commits.fetch_add(1, Ordering::Relaxed);
            if wrote {
                // Counted before its bucket: a scrape that reads the buckets first never
                // sees more in them than in the count.
                shared.stats.synced_commits.fetch_add(1, Ordering::Relaxed);
                shared.stats.commit_took(committing.elapsed());
            }
            if let Some(checkpointer) = self.checkpointer.as_mut() {
                checkpointer.committed();
            }
            self.counts = counts;
            if let Ok(mut published) = shared.counts.lock() {
                *published = counts;
            }
            if redacted && self.unflushed_redaction.is_none() {
                self.unflushed_redaction = Some(Instant::now());
            }
        }
        for reply in replies {
            reply(commit.clone());
        }
    }

    /// The tail copy `Checkpointer` describes, between two batches: the frames committed
    /// since the checkpointer's run, so that the next commit starts the WAL over. A
    /// checkpointer run under way makes it return at once (busy), and the next run asks
    /// again.
    fn copy_tail_if_wanted(&mut self) {
        if self
            .checkpointer
            .as_ref()
            .is_some_and(Checkpointer::take_tail_copy)
        {
            let copied = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(0)
                });
            if copied.is_ok_and(|busy| busy == 0) {
                self.shared
                    .stats
                    .tail_copies
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn checkpoint(&mut self) -> Result<(), OutboxError> {
        // Returns (busy, frames in the WAL, frames checkpointed); busy means a reader kept
        // part of the WAL alive and the truncation did not happen.
        let started = Instant::now();
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let stats = &self.shared.stats;
        stats.truncate_micros.fetch_add(micros, Ordering::Relaxed);
        stats
            .longest_truncate_micros
            .fetch_max(micros, Ordering::Relaxed);
        let busy = busy?;
        if busy != 0 {
            return Err(OutboxError::Storage(
                "the WAL checkpoint was blocked by another reader of the database".to_owned(),
            ));
        }
        self.shared
            .stats
            .checkpoints
            .fetch_add(1, Ordering::Relaxed);
        self.unflushed_redaction = None;
        Ok(())
    }
}
