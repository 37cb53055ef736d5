//! The dispatcher: turns outbox and modem events into sends. Driven by events, never by a
//! polling loop: it wakes when the outbox announces due work (a message accepted, a retry
//! scheduled), when a send finishes, when a modem's state changes, when a delivery report
//! arrives, and at the exact time the next retry or expiry falls due.
//!
//! A message goes to a ready, idle modem at once; the modems send in parallel; a temporary
//! error is retried with backoff, preferring a modem that has not been failing; a permanent
//! error fails the message; an unknown outcome is recorded and never retried blindly; a
//! message past its time to live expires and is never sent late. A modem that keeps failing
//! leaves the rotation for a cool-down that grows while it keeps failing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::clock::{Clock, UnixMs};
use crate::metrics::Metrics;
use crate::modem::{Go, ModemEvent, ModemHandle, ModemState, Readiness, SendError};
use crate::outbox::{Claimed, Committed, DeliveryState, Outbox, OutboxError, RetryOutcome};
use crate::sms::{PhoneNumber, SubmitOptions};

pub mod plan;

use plan::{BenchPolicy, ModemView, SendOutcome};

/// Added to a message's time left when its validity period is encoded (see `send`).
const VALIDITY_SLACK: Duration = Duration::from_secs(5);

/// The dispatcher's options. The retry schedule itself belongs to the outbox
/// (`queue.max_attempts`, `queue.retry_backoff_*`).
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub sms: SubmitOptions,
    /// Consecutive failed sends after which a modem leaves the rotation for a while.
    pub modem_failure_threshold: u32,
    /// How long a modem stays out; it doubles while the modem keeps failing (up to 16x).
    pub modem_cooldown: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            sms: SubmitOptions::default(),
            modem_failure_threshold: 3,
            modem_cooldown: Duration::from_secs(30),
        }
    }
}

struct ModemSlot {
    handle: ModemHandle,
    status: watch::Receiver<crate::modem::ModemStatus>,
    /// Whether this modem asks for delivery reports (TP-SRR).
    status_reports: bool,
    busy: bool,
    /// Offered to the outbox as idle (`Outbox::offer_idle`) in the current offer.
    offered: bool,
    /// Taken by an accept; its claim (or release) has not arrived yet: busy meanwhile.
    awaiting: bool,
    consecutive_failures: u32,
    benched_until_ms: Option<UnixMs>,
}

impl ModemSlot {
    /// What the plan sees of this modem.
    fn view(&self) -> ModemView<'_> {
        ModemView {
            name: &self.handle.name,
            ready: self.status.borrow().state == ModemState::Ready,
            busy: self.busy || self.awaiting,
            failures: self.consecutive_failures,
            benched_until_ms: self.benched_until_ms,
        }
    }
}

/// What a finished send task hands back.
struct Outcome {
    slot: usize,
    message: Claimed,
    result: Result<Vec<u8>, SendError>,
    started: Instant,
    /// How many of this attempt's parts were recorded as they were confirmed; the
    /// references in `result` are this attempt's, these included.
    recorded: usize,
    /// Fleet mode: another box took the message over (its lease lapsed); no further part
    /// was sent and nothing more may be recorded for it.
    fenced: bool,
    /// The accept that claimed it did not commit: nothing was sent, nothing is recorded.
    withdrawn: bool,
    /// The success already stored by the send task (`Record::Sent`), and how that went;
    /// `None` when the outcome is left to `finish` to store.
    stored: Option<Result<(), OutboxError>>,
    /// The modem's next message, claimed in the commit that recorded this one as sent.
    next: Option<Claimed>,
}

/// How long a partly sent message waits for the modem that sent its first parts before it
/// is sent whole, under a new reference, on another one: the recipient's phone joins
/// parts only from one sender number.
const RESUME_WAIT: Duration = Duration::from_secs(120);

/// A send's outcome as the outbox must record it; kept and retried while the store
/// cannot write, never dropped.
#[derive(Debug, Clone)]
enum Record {
    Sent(Vec<u8>),
    Retry { reason: String, sent: Vec<u8> },
    Failed { reason: String, sent: Vec<u8> },
    Unknown { reason: String, sent: Vec<u8> },
}

impl Record {
    async fn store(
        &self,
        outbox: &Outbox,
        id: crate::outbox::MessageId,
        clock: &Clock,
    ) -> Result<(), OutboxError> {
        let now = clock.now_ms() as i64;
        match self {
            Record::Sent(references) => outbox.mark_sent(id, references, now).await,
            Record::Retry { reason, sent } => {
                match outbox.mark_retry(id, reason, sent, now).await? {
                    RetryOutcome::Scheduled { at_ms } => {
                        tracing::info!(message_id = %id, %reason, retry_in_ms = at_ms - now, "will retry");
                    }
                    RetryOutcome::GaveUp => {
                        tracing::warn!(message_id = %id, %reason, "message failed after its last attempt");
                    }
                }
                Ok(())
            }
            Record::Failed { reason, sent } => outbox.mark_failed(id, reason, sent, now).await,
            Record::Unknown { reason, sent } => outbox.mark_unknown(id, reason, sent, now).await,
        }
    }
}

/// Outcomes not yet recorded, and claims that failed: retried on the shared backoff curve
/// (250 ms doubling to 30 s) while the store keeps failing.
struct StoreRetry {
    unrecorded: Vec<(crate::outbox::MessageId, Record)>,
    /// Consecutive failures: the step on the backoff curve.
    failures: u32,
    at: Option<Instant>,
}

impl StoreRetry {
    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_millis(250),
        max: Duration::from_secs(30),
    };

    /// The wait before the next try.
    fn delay(&self) -> Duration {
        Self::BACKOFF.delay(self.failures)
    }

    fn failed(&mut self, now: Instant) {
        self.at = Some(now + self.delay());
        self.failures = self.failures.saturating_add(1);
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        if self.unrecorded.is_empty() {
            self.at = None;
        }
    }

    /// Whether writing is on hold until the next retry time.
    fn holding(&self, now: Instant) -> bool {
        self.at.is_some_and(|at| now < at)
    }
}

/// Everything the dispatcher runs on.
pub struct Dispatcher {
    pub outbox: Outbox,
    pub modems: Vec<ModemHandle>,
    /// Per modem (same order), whether it asks for delivery reports; missing means no.
    pub status_reports: Vec<bool>,
    pub events: mpsc::Receiver<ModemEvent>,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    pub config: DispatchConfig,
    pub clock: Clock,
    pub shutdown: watch::Receiver<bool>,
}

/// Runs the dispatcher until `shutdown` fires; then waits for the sends under way.
pub async fn run(dispatcher: Dispatcher) {
    let Dispatcher {
        outbox,
        modems,
        status_reports,
        mut events,
        readiness,
        metrics,
        config,
        clock,
        mut shutdown,
    } = dispatcher;
    // The flag as `finish` reads it (the loop below waits on `shutdown` itself).
    let stopping = shutdown.clone();
    let env = || FinishEnv {
        outbox: &outbox,
        shutdown: &stopping,
        metrics: &metrics,
        config: &config,
        clock: &clock,
        readiness: &readiness,
    };
    let status_changed = Arc::new(Notify::new());
    let mut slots: Vec<ModemSlot> = modems
        .into_iter()
        .zip(status_reports.into_iter().chain(std::iter::repeat(false)))
        .map(|(handle, status_reports)| {
            let status = handle.status();
            forward_changes(status.clone(), status_changed.clone());
            ModemSlot {
                handle,
                status,
                status_reports,
                busy: false,
                offered: false,
                awaiting: false,
                consecutive_failures: 0,
                benched_until_ms: None,
            }
        })
        .collect();
    let mut sends: JoinSet<Outcome> = JoinSet::new();
    // Expiries fall due only when the timer below fires (the outbox's next due time includes
    // every queued message's expiry), so the writer is asked to expire messages then and at
    // start, not at every wake-up: a burst of requests must not pay for it.
    let mut expiry_check = true;

    let mut store = StoreRetry {
        unrecorded: Vec::new(),
        failures: 0,
        at: None,
    };
    // When the oldest partly sent message waiting for its modem gives up on it.
    let mut resume_deadline: Option<Instant> = None;

    // Claims made in an accept's commit for the modems offered as idle (issue 12 item 1).
    let mut handoffs = outbox.handoffs();
    let (reports, recorded_reports) = mpsc::unbounded_channel();
    let reporter = tokio::spawn(record_reports(
        outbox.clone(),
        clock.clone(),
        recorded_reports,
    ));

    loop {
        if *shutdown.borrow() {
            break;
        }
        settle_offer(&outbox, &mut slots);
        let now = clock.instant();
        readiness.update(
            slots.iter().any(|s| s.status.borrow().state.is_working()),
            clock.now_ms(),
        );
        if std::mem::take(&mut expiry_check) {
            match outbox.expire_due(clock.now_ms() as i64).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::warn!(count = expired.len(), "messages expired unsent");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "expiring messages failed"),
            }
        }
        if !store.holding(now) {
            retry_unrecorded(&outbox, &mut store, &readiness, &clock).await;
        }
        if !store.holding(now) {
            resume_deadline = None;
            match assign(
                &outbox,
                &mut slots,
                &mut sends,
                &config,
                &clock,
                &mut resume_deadline,
                true,
            )
            .await
            {
                Ok(()) => store.succeeded(),
                Err(error) => {
                    tracing::error!(%error, "handing out messages failed; retrying with backoff");
                    store.failed(clock.instant());
                }
            }
        }

        let now_ms = clock.now_ms();
        let next_due = outbox.next_due_at(now_ms as i64).await.ok().flatten();
        let sleep_until = {
            let views: Vec<ModemView> = slots.iter().map(ModemSlot::view).collect();
            let planned = plan::next_wake(next_due.map(|at| at.max(0) as u64), &views, now_ms)
                .map(|at| clock.instant_at(at));
            earliest(planned, earliest(store.at, resume_deadline))
        };
        if !store.holding(clock.instant()) {
            offer_idle(&outbox, &mut slots, clock.now_ms());
        }
        tokio::select! {
            Some(handoff) = handoffs.recv() => {
                take_handoff(handoff, &mut slots, &mut sends, &config, &clock, &outbox, true);
            }
            _ = outbox.work_due() => {}
            _ = status_changed.notified() => {}
            _ = shutdown.changed() => {}
            Some(joined) = sends.join_next(), if !sends.is_empty() => {
                if let Ok(outcome) = joined {
                    finish(&env(), &mut slots, &mut sends, outcome, &mut store).await;
                }
            }
            Some(event) = events.recv() => {
                let _ = reports.send(event);
            }
            _ = sleep_opt(sleep_until) => expiry_check = true,
        }
    }
    // No more offers; a claim already made for an offered modem is sent like the others.
    settle_offer(&outbox, &mut slots);
    while slots.iter().any(|s| s.awaiting) {
        match tokio::time::timeout(Duration::from_secs(5), handoffs.recv()).await {
            Ok(Some(handoff)) => take_handoff(
                handoff, &mut slots, &mut sends, &config, &clock, &outbox, false,
            ),
            _ => break,
        }
    }
    // Let the sends under way finish, so their outcome is recorded rather than left as
    // `sending` (which a restart would resend).
    while let Some(joined) = sends.join_next().await {
        if let Ok(outcome) = joined {
            finish(&env(), &mut slots, &mut sends, outcome, &mut store).await;
        }
    }
    // A few more tries for outcomes the store refused; what is still unrecorded then stays
    // `sending`, and the parts recorded one by one keep the next start from resending them.
    for _ in 0..5 {
        if store.unrecorded.is_empty() {
            break;
        }
        tokio::time::sleep(store.delay()).await;
        store.failed(clock.instant());
        retry_unrecorded(&outbox, &mut store, &readiness, &clock).await;
    }
    for (id, record) in &store.unrecorded {
        tracing::error!(message_id = %id, ?record, "send outcome still unrecorded at shutdown");
    }
    // The reports received so far are recorded before the dispatcher is done.
    drop(reports);
    let _ = reporter.await;
}

/// Offers the available modems to the outbox for the next accepts, least failing first.
fn offer_idle(outbox: &Outbox, slots: &mut [ModemSlot], now_ms: UnixMs) {
    let mut free: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].view().available(now_ms))
        .collect();
    free.sort_by_key(|&i| slots[i].consecutive_failures);
    for &i in &free {
        slots[i].offered = true;
    }
    outbox.offer_idle(free.iter().map(|&i| slots[i].handle.name.clone()).collect());
}

/// Ends the current offer: a modem still offered is free; one taken waits for its claim.
fn settle_offer(outbox: &Outbox, slots: &mut [ModemSlot]) {
    let free = outbox.withdraw_idle();
    for slot in slots.iter_mut().filter(|s| s.offered) {
        slot.offered = false;
        if !free.contains(&slot.handle.name) {
            slot.awaiting = true;
        }
    }
}

/// A claim an accept made for an offered modem (sent at once), or its release.
fn take_handoff(
    handoff: crate::outbox::Handoff,
    slots: &mut [ModemSlot],
    sends: &mut JoinSet<Outcome>,
    config: &DispatchConfig,
    clock: &Clock,
    outbox: &Outbox,
    chain: bool,
) {
    use crate::outbox::Handoff;
    let modem = match &handoff {
        Handoff::Claimed { modem, .. } | Handoff::Released { modem } => modem.clone(),
    };
    let Some(index) = slots.iter().position(|s| s.handle.name == modem) else {
        tracing::error!(modem = %modem, "a claim for an unknown modem");
        return;
    };
    let slot = &mut slots[index];
    slot.offered = false;
    slot.awaiting = false;
    if let Handoff::Claimed {
        message, committed, ..
    } = handoff
    {
        spawn_send(
            sends,
            index,
            slot,
            message,
            Some(committed),
            config,
            clock,
            outbox,
            chain,
        );
    }
}

/// Tries again to record the outcomes the store refused.
async fn retry_unrecorded(
    outbox: &Outbox,
    store: &mut StoreRetry,
    readiness: &Readiness,
    clock: &Clock,
) {
    if store.unrecorded.is_empty() {
        return;
    }
    let mut left = Vec::new();
    for (id, record) in std::mem::take(&mut store.unrecorded) {
        match record.store(outbox, id, clock).await {
            Ok(()) => tracing::info!(message_id = %id, "send outcome recorded after all"),
            Err(error) if is_store_failure(&error) => left.push((id, record)),
            // While the database was away another box took the message over: its outcome
            // is that box's to record now.
            Err(OutboxError::Fenced) => {
                tracing::warn!(message_id = %id, "another box took the message over while its outcome waited; not recorded")
            }
            Err(error) => {
                tracing::error!(message_id = %id, %error, "recording a send outcome failed for good")
            }
        }
    }
    let failing = !left.is_empty();
    store.unrecorded = left;
    readiness.set_outcomes_pending(store.unrecorded.len() as u64);
    if failing {
        store.failed(clock.instant());
    } else {
        store.succeeded();
    }
}

/// Whether an outbox error is the store failing to write (worth retrying), not a request
/// the outbox refuses whatever the disk does.
fn is_store_failure(error: &OutboxError) -> bool {
    matches!(
        error,
        OutboxError::Storage(_) | OutboxError::Closed | OutboxError::Unavailable { .. }
    )
}

/// Gives due messages to available modems: for each message a modem other than the one
/// it last failed on when there is one, else the least-failing modem.
async fn assign(
    outbox: &Outbox,
    slots: &mut [ModemSlot],
    sends: &mut JoinSet<Outcome>,
    config: &DispatchConfig,
    clock: &Clock,
    resume_deadline: &mut Option<Instant>,
    chain: bool,
) -> Result<(), OutboxError> {
    let now = clock.now_ms();
    let now_instant = clock.instant();
    // Messages skipped in this round (waiting for their modem): asked for past them.
    let mut skipped = 0usize;
    loop {
        let available = slots.iter().filter(|s| s.view().available(now)).count();
        if available == 0 {
            return Ok(());
        }
        let now_ms = now as i64;
        let due = outbox.due(now_ms, available + skipped).await?;
        if due.len() <= skipped {
            return Ok(());
        }
        let mut assigned_any = false;
        for pending in due.into_iter().skip(skipped) {
            // A partly sent message goes on on the modem that sent its first parts, under
            // the same reference; only if that modem stays away is it sent whole elsewhere.
            let resume_on = pending
                .last_modem
                .as_deref()
                .filter(|_| pending.parts_sent > 0 && pending.parts_sent < pending.parts);
            let chosen = match resume_on {
                Some(name) => {
                    let own = slots.iter().position(|s| s.handle.name == name);
                    match own {
                        Some(i) if slots[i].view().available(now) => Some(i),
                        _ if now_ms - pending.next_attempt_at_ms
                            < RESUME_WAIT.as_millis() as i64 =>
                        {
                            let deadline = now_instant
                                + Duration::from_millis(
                                    (pending.next_attempt_at_ms + RESUME_WAIT.as_millis() as i64
                                        - now_ms)
                                        .max(0) as u64,
                                );
                            *resume_deadline = earliest(*resume_deadline, Some(deadline));
                            skipped += 1;
                            continue;
                        }
                        _ => {
                            let concat_ref = rand::random::<u16>();
                            let why = format!(
                                "modem {name} gone for over {} s after part {} of {}: \
                                 sent whole on another modem under reference {concat_ref}",
                                RESUME_WAIT.as_secs(),
                                pending.parts_sent,
                                pending.parts
                            );
                            tracing::warn!(message_id = %pending.id, %why, "partly sent message restarted");
                            outbox.restart_whole(pending.id, concat_ref, &why).await?;
                            None
                        }
                    }
                }
                None => None,
            };
            let Some(index) = chosen.or_else(|| {
                // A message restarted whole may go anywhere; otherwise the plan avoids
                // the modem it last failed on.
                let views: Vec<ModemView> = slots.iter().map(ModemSlot::view).collect();
                let avoid = if resume_on.is_some() {
                    None
                } else {
                    pending.last_modem.as_deref()
                };
                plan::choose_modem(&views, avoid, now)
            }) else {
                return Ok(());
            };
            let slot = &mut slots[index];
            let Some(message) = outbox.claim(pending.id, &slot.handle.name, now_ms).await? else {
                continue;
            };
            assigned_any = true;
            spawn_send(
                sends, index, slot, message, None, config, clock, outbox, chain,
            );
        }
        if !assigned_any {
            return Ok(());
        }
    }
}

/// Fleet mode: what checks, before each part, that this box still holds the message.
#[derive(Clone, Copy)]
struct Gate<'a> {
    outbox: &'a Outbox,
    /// Set once another box took the message over (here, by the renewal or a record).
    fenced: &'a std::sync::atomic::AtomicBool,
}

impl Gate<'_> {
    /// Whether the next part may go out: the lease is renewed first unless it was
    /// confirmed recently; `false` once another box holds it. When the store cannot be
    /// reached the part goes out only while the lease surely still holds: this box may be
    /// the only one cut off, and the others take the message over once it lapses.
    async fn may_send(&self, id: crate::outbox::MessageId) -> bool {
        use std::sync::atomic::Ordering;
        if self.fenced.load(Ordering::Relaxed) {
            return false;
        }
        if self.outbox.lease_fresh(id) {
            return true;
        }
        match self.outbox.renew(id).await {
            Ok(()) => true,
            Err(OutboxError::Fenced) => {
                self.fenced.store(true, Ordering::Relaxed);
                false
            }
            Err(error) if self.outbox.lease_surely_held(id) => {
                tracing::warn!(message_id = %id, %error, "renewing the lease before a part failed; it still holds, sending the part");
                true
            }
            Err(error) => {
                tracing::warn!(message_id = %id, %error, "renewing the lease before a part failed and it may have lapsed; no further part sent");
                false
            }
        }
    }
}

/// Sends `parts` one at a time, each after the gate's check, and reports each part's
/// reference (indexed within `parts`) as it is confirmed. Stops before a part the gate
/// refuses; the error then says so and carries the references of the parts sent.
async fn send_gated(
    modem: &ModemHandle,
    id: crate::outbox::MessageId,
    parts: Vec<crate::sms::SubmitPdu>,
    progress: mpsc::UnboundedSender<(usize, u8)>,
    gate: Gate<'_>,
) -> Result<Vec<u8>, SendError> {
    let mut references = Vec::with_capacity(parts.len());
    for (index, part) in parts.into_iter().enumerate() {
        if !gate.may_send(id).await {
            let reason = if gate.fenced.load(std::sync::atomic::Ordering::Relaxed) {
                "another box took the message over"
            } else {
                "the database could not be reached to renew the lease"
            };
            return Err(SendError::Temporary {
                reason: reason.into(),
                sent: references,
            });
        }
        match modem.send(vec![part]).await {
            Ok(mr) => {
                for mr in mr {
                    let _ = progress.send((index, mr));
                    references.push(mr);
                }
            }
            Err(mut error) => {
                // The references of the earlier parts of this attempt come first.
                let (SendError::Temporary { sent, .. }
                | SendError::Permanent { sent, .. }
                | SendError::Unknown { sent, .. }
                | SendError::ModemFault { sent, .. }) = &mut error;
                sent.splice(0..0, references);
                return Err(error);
            }
        }
    }
    Ok(references)
}

/// Starts sending `message` on slot `index` (marked busy): the parts are encoded, sent,
/// and recorded as they are confirmed; a success is recorded at once, and with `chain` the
/// same commit claims the modem's next message (`Outcome::next`). With `committed` (a
/// claim handed over before its accept's commit) the first part's command and prompt go
/// ahead, its PDU waits for the commit, and if the commit failed nothing is sent or
/// recorded (`Outcome::withdrawn`).
#[allow(clippy::too_many_arguments)]
fn spawn_send(
    sends: &mut JoinSet<Outcome>,
    index: usize,
    slot: &mut ModemSlot,
    message: Claimed,
    committed: Option<Committed>,
    config: &DispatchConfig,
    clock: &Clock,
    outbox: &Outbox,
    chain: bool,
) {
    slot.busy = true;
    let handle = slot.handle.clone();
    let sms = SubmitOptions {
        status_report: slot.status_reports,
        ..config.sms.clone()
    };
    let recorder = outbox.clone();
    let clock = clock.clone();
    let modem = slot.handle.name.clone();
    // Fleet mode (PostgreSQL): the lease is renewed every lease/3 while the send is under
    // way, and each part passes the gate. None on SQLite, whose path stays as it was.
    let lease = outbox.lease_duration();
    sends.spawn(async move {
        let started = clock.instant();
        let fenced = std::sync::atomic::AtomicBool::new(false);
        let (result, recorded) = {
        let (progress, mut confirmed) = mpsc::unbounded_channel();
        let gate = lease.map(|_| Gate { outbox: &recorder, fenced: &fenced });
        let go = committed.clone().map(|c| -> Go { Box::pin(c.wait()) });
        let sending = send(&handle, &message, sms, &clock, progress, gate, go);
        tokio::pin!(sending);
        let mut recorded = 0usize;
        // The parts this attempt sends; the last one is recorded with the outcome.
        let to_send = usize::from(message.parts.saturating_sub(message.parts_sent));
        let record = async |index: usize, mr: u8, recorded: &mut usize| {
            // In order only: after a part the store refused, the rest wait for
            // the outcome, which records them all.
            if index != *recorded || fenced.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            // The last part's confirmation ends the send at once: it is recorded
            // by the outcome's commit just below, one commit instead of two
            // (issue 12 item 3), at the same moment.
            if index + 1 == to_send {
                return;
            }
            let part = usize::from(message.parts_sent) + index;
            match recorder
                .mark_part_sent(message.id, part as u8, mr, clock.now_ms() as i64)
                .await
            {
                Ok(()) => *recorded += 1,
                Err(OutboxError::Fenced) => fenced.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(error) => {
                    tracing::error!(message_id = %message.id, part, %error, "recording a sent part failed")
                }
            }
        };
        let mut renewal = lease.map(|lease| {
            let every = lease / 3;
            tokio::time::interval_at(clock.instant() + every, every)
        });
        let result = loop {
            tokio::select! {
                biased;
                Some((index, mr)) = confirmed.recv() => record(index, mr, &mut recorded).await,
                result = &mut sending => break result,
                _ = tick_opt(&mut renewal) => {
                    match recorder.renew(message.id).await {
                        Ok(()) => {}
                        Err(OutboxError::Fenced) => {
                            fenced.store(true, std::sync::atomic::Ordering::Relaxed)
                        }
                        Err(error) => {
                            tracing::warn!(message_id = %message.id, %error, "renewing the lease failed; the send goes on")
                        }
                    }
                }
            }
        };
        while let Ok((index, mr)) = confirmed.try_recv() {
            record(index, mr, &mut recorded).await;
        }
        (result, recorded)
        };
        // The accept that claimed the message did not commit: it does not exist, and its
        // id may already be another message's. Its PDU was held back; nothing is recorded.
        let withdrawn = match committed {
            Some(committed) => !committed.wait().await,
            None => false,
        };
        // A success is recorded here, as the last part was before: its parts and
        // the `sent` state in one commit. `finish` keeps it if the store refused.
        let mut next = None;
        let fenced = fenced.into_inner();
        let stored = match &result {
            // Another box holds the message, or it never existed: nothing is recorded.
            _ if fenced || withdrawn => None,
            Ok(references) => {
                let rest = references.get(recorded..).map(<[u8]>::to_vec).unwrap_or_default();
                if chain {
                    // The modem is free again: its next message is claimed in the same
                    // commit (issue 12 item 3), so a queue drains at one commit per send.
                    let now = clock.now_ms() as i64;
                    match recorder.mark_sent_and_claim_next(message.id, &rest, &modem, now).await {
                        Ok(claimed) => {
                            next = claimed;
                            Some(Ok(()))
                        }
                        Err(error) => Some(Err(error)),
                    }
                } else {
                    Some(Record::Sent(rest).store(&recorder, message.id, &clock).await)
                }
            }
            Err(_) => None,
        };
        Outcome {
            slot: index,
            message,
            result,
            started,
            recorded,
            fenced,
            withdrawn,
            stored,
            next,
        }
    });
}

/// Encodes what is left of a message, with a validity period set from the time the code
/// has left, and sends it.
async fn send(
    modem: &ModemHandle,
    message: &Claimed,
    mut sms: SubmitOptions,
    clock: &Clock,
    progress: mpsc::UnboundedSender<(usize, u8)>,
    gate: Option<Gate<'_>>,
    go: Option<Go>,
) -> Result<Vec<u8>, SendError> {
    if message.parts_sent >= message.parts {
        // Every part went out before a crash cut the bookkeeping short.
        return Ok(Vec::new());
    }
    let left = message.time_left(clock.now_ms() as i64);
    if left.is_zero() {
        return Err(SendError::Temporary {
            reason: "expired before sending".into(),
            sent: Vec::new(),
        });
    }
    // The codec rounds the validity down to what TP-VP can say (5-minute steps at first), so
    // a code accepted a moment ago would lose a whole step to the milliseconds already spent;
    // a few seconds of slack keep the step the operator configured.
    sms.validity = left + VALIDITY_SLACK;
    let permanent = |reason: String| SendError::Permanent {
        reason,
        sent: Vec::new(),
    };
    let to =
        PhoneNumber::parse(&message.to).map_err(|e| permanent(format!("stored number: {e}")))?;
    apply_plan(message, &mut sms).map_err(permanent)?;
    let parts = crate::sms::encode_submit(&to, &message.text, message.concat_ref, &sms)
        .map_err(|e| permanent(format!("encoding: {e}")))?;
    if parts.len() != usize::from(message.parts) {
        // Sending another split than the one counted (and partly sent) would give the
        // recipient parts that cannot be joined.
        return Err(permanent(format!(
            "the stored plan encodes {} parts, {} were accepted",
            parts.len(),
            message.parts
        )));
    }
    let remaining: Vec<_> = parts
        .into_iter()
        .skip(usize::from(message.parts_sent))
        .collect();
    match gate {
        None => modem.send_when(remaining, Some(progress), go).await,
        // A fleet's claims come from the hand-out, committed already: no `go`.
        Some(gate) => send_gated(modem, message.id, remaining, progress, gate).await,
    }
}

/// The encoding plan of messages accepted under `sms`: what decides how a text is split
/// (the national language tables and the reference width), stored with each message so
/// later configuration changes apply to new messages only.
pub fn plan_of(sms: &SubmitOptions) -> String {
    let languages: Vec<String> = sms
        .national_languages
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "v1;languages={};concat16={}",
        languages.join(","),
        u8::from(sms.concat_16bit)
    )
}

/// Sets `sms` to the plan stored with `message`. A message accepted before plans were
/// stored gets the first of today's and the defaults' options that gives its stored
/// part count.
fn apply_plan(message: &Claimed, sms: &mut SubmitOptions) -> Result<(), String> {
    let Some(plan) = &message.plan else {
        let candidates = [
            (sms.national_languages.clone(), sms.concat_16bit),
            (Vec::new(), false),
            (Vec::new(), true),
            (sms.national_languages.clone(), !sms.concat_16bit),
        ];
        for (languages, concat_16bit) in candidates {
            let trial = SubmitOptions {
                national_languages: languages,
                concat_16bit,
                ..sms.clone()
            };
            if crate::sms::count_parts(&message.text, &trial) == usize::from(message.parts) {
                *sms = trial;
                return Ok(());
            }
        }
        return Ok(());
    };
    let mut fields = plan.split(';');
    if fields.next() != Some("v1") {
        return Err(format!("unknown stored plan {plan:?}"));
    }
    for field in fields {
        match field.split_once('=') {
            Some(("languages", list)) => {
                sms.national_languages = list
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(|name| {
                        name.parse()
                            .map_err(|_| format!("stored plan: unknown language {name:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            Some(("concat16", flag)) => sms.concat_16bit = flag == "1",
            _ => return Err(format!("stored plan: unknown field {field:?}")),
        }
    }
    Ok(())
}

/// What recording an outcome reads: the store, the figures and the settings.
struct FinishEnv<'a> {
    outbox: &'a Outbox,
    shutdown: &'a watch::Receiver<bool>,
    metrics: &'a Metrics,
    config: &'a DispatchConfig,
    clock: &'a Clock,
    readiness: &'a Readiness,
}

async fn finish(
    env: &FinishEnv<'_>,
    slots: &mut [ModemSlot],
    sends: &mut JoinSet<Outcome>,
    outcome: Outcome,
    store: &mut StoreRetry,
) {
    let FinishEnv {
        outbox,
        shutdown,
        metrics,
        config,
        clock,
        readiness,
    } = *env;
    let Outcome {
        slot: index,
        message,
        result,
        started,
        recorded,
        fenced,
        withdrawn,
        stored,
        next,
    } = outcome;
    let slot = &mut slots[index];
    slot.busy = false;
    let modem = slot.handle.name.clone();
    let id = message.id;
    if withdrawn {
        // Its caller was refused (the store could not commit) and will try again.
        tracing::warn!(modem = %modem, "a claimed message's accept did not commit; its PDU was held back and not sent");
        return;
    }
    if fenced {
        // Another box holds the message now and answers for it: nothing more is recorded
        // here, and no further part was sent.
        metrics.fenced();
        tracing::warn!(message_id = %id, modem = %modem, to = %crate::mask::phone(&message.to), parts_sent_here = result.as_ref().map_or_else(|e| e.sent().len(), Vec::len), "another box took the message over after this box's lease lapsed; no further part sent");
        return;
    }
    let now = clock.now_ms() as i64;
    let elapsed_ms = clock.instant().duration_since(started).as_millis() as u64;
    // The parts recorded one by one are in the outbox already; the outcome records the rest.
    let rest = |refs: Vec<u8>| refs.get(recorded..).map(<[u8]>::to_vec).unwrap_or_default();
    let record = match result {
        Ok(references) => {
            note_outcome(slot, SendOutcome::Sent, config, clock);
            metrics.send(&modem, "sent");
            metrics.send_latency(Duration::from_millis(
                (now - message.created_at_ms).max(0) as u64
            ));
            tracing::info!(message_id = %id, modem = %modem, parts = references.len(), elapsed_ms, "message sent");
            Record::Sent(rest(references))
        }
        Err(SendError::Permanent { reason, sent }) => {
            metrics.send(&modem, "permanent");
            tracing::warn!(message_id = %id, modem = %modem, %reason, "message failed permanently");
            Record::Failed {
                reason,
                sent: rest(sent),
            }
        }
        Err(SendError::Unknown { reason, sent }) => {
            metrics.send(&modem, "unknown");
            note_outcome(slot, SendOutcome::Failed, config, clock);
            tracing::warn!(message_id = %id, modem = %modem, %reason, "send outcome unknown; not retried");
            Record::Unknown {
                reason,
                sent: rest(sent),
            }
        }
        // The modem's (or its SIM's) fault, not the message's: retried like a temporary
        // failure, and, since the message remembers the modem it last failed on, on
        // another ready modem first (unless parts went out: they pin the modem); the
        // worker has marked its modem failing.
        Err(SendError::ModemFault { reason, fix, sent }) => {
            metrics.send(&modem, "modem_fault");
            note_outcome(slot, SendOutcome::Failed, config, clock);
            tracing::warn!(message_id = %id, modem = %modem, %reason, %fix, "the modem's fault; retrying the message");
            Record::Retry {
                reason,
                sent: rest(sent),
            }
        }
        Err(SendError::Temporary { reason, sent }) => {
            metrics.send(&modem, "temporary");
            note_outcome(slot, SendOutcome::Failed, config, clock);
            tracing::info!(message_id = %id, modem = %modem, %reason, "temporary failure");
            Record::Retry {
                reason,
                sent: rest(sent),
            }
        }
    };
    let stored = match stored {
        Some(stored) => stored,
        None => record.store(outbox, id, clock).await,
    };
    match stored {
        Ok(()) => {}
        Err(OutboxError::Fenced) => {
            metrics.fenced();
            tracing::warn!(message_id = %id, modem = %modem, "another box took the message over before this outcome was recorded; not recorded");
        }
        Err(error) if is_store_failure(&error) => {
            // Kept, and retried until the store takes it; the message stays `sending`
            // meanwhile, so nothing hands it out again.
            tracing::error!(message_id = %id, %error, "recording a send outcome failed; kept and retried");
            store.unrecorded.push((id, record));
            readiness.set_outcomes_pending(store.unrecorded.len() as u64);
            store.failed(clock.instant());
        }
        Err(error) => {
            tracing::error!(message_id = %id, %error, "recording a send outcome failed");
        }
    }
    if let Some(next) = next {
        // Claimed for this modem in the commit that recorded the send: it goes out now.
        let chain = !*shutdown.borrow();
        spawn_send(
            sends,
            index,
            &mut slots[index],
            next,
            None,
            config,
            clock,
            outbox,
            chain,
        );
    }
}

/// Applies the plan's verdict on a modem's standing after a send.
fn note_outcome(
    slot: &mut ModemSlot,
    outcome: SendOutcome,
    config: &DispatchConfig,
    clock: &Clock,
) {
    let policy = BenchPolicy {
        threshold: config.modem_failure_threshold,
        cooldown: config.modem_cooldown,
    };
    let standing = plan::after_send(
        slot.consecutive_failures,
        slot.benched_until_ms,
        outcome,
        &policy,
        clock.now_ms(),
    );
    slot.consecutive_failures = standing.failures;
    slot.benched_until_ms = standing.benched_until_ms;
    if let Some(cooldown) = standing.benched_for {
        tracing::warn!(modem = %slot.handle.name, failures = slot.consecutive_failures, cooldown_s = cooldown.as_secs(), "modem leaves the rotation");
    }
}

/// How long the first status report of a batch waits for others before they are recorded
/// in one commit. A report is for the status page and the metrics, not for sending: 20 ms
/// later costs nobody anything, while one commit per report was half the commits of a
/// busy modem (issue 12: one `+CDS` follows each `+CMGS`). The modem's `AT+CNMA` does not
/// wait for this; the session acknowledges on its own.
const REPORT_LINGER: Duration = Duration::from_millis(20);

/// The most reports one commit records; more wait for the next.
const REPORT_BATCH: usize = 512;

/// Records status reports in arrival order, off the dispatcher's loop: the reports that
/// arrive within [`REPORT_LINGER`] of the first, or while one commit is under way, are
/// recorded together in the next commit, and none of them waits behind the dispatcher's
/// own work. When the dispatcher stops (the channel closes) what has arrived is recorded
/// at once.
async fn record_reports(outbox: Outbox, clock: Clock, mut rx: mpsc::UnboundedReceiver<ModemEvent>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = clock.instant() + REPORT_LINGER;
        while batch.len() < REPORT_BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(more)) => batch.push(more),
                Ok(None) | Err(_) => break,
            }
        }
        record_events(&outbox, &clock, batch).await;
    }
}

async fn record_events(outbox: &Outbox, clock: &Clock, events: Vec<ModemEvent>) {
    let reports: Vec<_> = events
        .into_iter()
        .map(|event| match event {
            ModemEvent::StatusReport { modem, report } => (modem, report),
        })
        .collect();
    let rows = reports
        .iter()
        .map(|(modem, report)| {
            let code = report.status.code();
            (
                modem.clone(),
                report.message_reference,
                code,
                DeliveryState::from_tp_status(code),
            )
        })
        .collect();
    match outbox.record_deliveries(rows, clock.now_ms() as i64).await {
        Ok(results) => {
            for ((modem, report), result) in reports.iter().zip(results) {
                match result {
                    Ok(Some(id)) => {
                        tracing::info!(message_id = %id, modem = %modem, status = report.status.describe(), "delivery report")
                    }
                    Ok(None) => {
                        tracing::debug!(modem = %modem, "delivery report for no known message")
                    }
                    Err(error) => tracing::error!(%error, "recording a delivery report failed"),
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, count = reports.len(), "recording delivery reports failed")
        }
    }
}

/// Wakes `notify` whenever the watched modem status changes.
fn forward_changes(mut status: watch::Receiver<crate::modem::ModemStatus>, notify: Arc<Notify>) {
    tokio::spawn(async move {
        while status.changed().await.is_ok() {
            notify.notify_one();
        }
    });
}

/// The next tick of a timer that may not exist (then never).
async fn tick_opt(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_opt(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_back_as_written() {
        use crate::sms::NationalLanguage;
        let accepted = SubmitOptions {
            national_languages: vec![NationalLanguage::Turkish],
            concat_16bit: true,
            ..SubmitOptions::default()
        };
        let message = Claimed {
            id: crate::outbox::MessageId(1),
            to: "+447400123456".into(),
            text: "x".into(),
            parts: 1,
            parts_sent: 0,
            concat_ref: 7,
            attempt: 1,
            created_at_ms: 0,
            expires_at_ms: 1,
            previous_modem: None,
            plan: Some(plan_of(&accepted)),
        };
        let mut today = SubmitOptions::default();
        apply_plan(&message, &mut today).unwrap();
        assert_eq!(today.national_languages, accepted.national_languages);
        assert!(today.concat_16bit);
        let garbled = Claimed {
            plan: Some("v9;x".into()),
            ..message
        };
        assert!(apply_plan(&garbled, &mut today).is_err());
    }
}
