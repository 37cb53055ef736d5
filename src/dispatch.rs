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

use crate::clock::{Clock, UnixMs};
use crate::metrics::Metrics;
use crate::modem::{ModemEvent, ModemHandle, ModemState, Readiness, SendError};
use crate::outbox::{Claimed, DeliveryState, Outbox, RetryOutcome};
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
    consecutive_failures: u32,
    benched_until_ms: Option<UnixMs>,
}

impl ModemSlot {
    /// What the plan sees of this modem.
    fn view(&self) -> ModemView<'_> {
        ModemView {
            name: &self.handle.name,
            ready: self.status.borrow().state == ModemState::Ready,
            busy: self.busy,
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

    loop {
        if *shutdown.borrow() {
            break;
        }
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
        assign(&outbox, &mut slots, &mut sends, &config, &clock).await;

        let now_ms = clock.now_ms();
        let next_due = outbox.next_due_at(now_ms as i64).await.ok().flatten();
        let sleep_until = {
            let views: Vec<ModemView> = slots.iter().map(ModemSlot::view).collect();
            plan::next_wake(next_due.map(|at| at.max(0) as u64), &views, now_ms)
                .map(|at| clock.instant_at(at))
        };
        tokio::select! {
            _ = outbox.work_due() => {}
            _ = status_changed.notified() => {}
            _ = shutdown.changed() => {}
            Some(joined) = sends.join_next(), if !sends.is_empty() => {
                if let Ok(outcome) = joined {
                    finish(&outbox, &mut slots, &metrics, &config, &clock, outcome).await;
                }
            }
            Some(event) = events.recv() => record_event(&outbox, &clock, event).await,
            _ = sleep_opt(sleep_until) => expiry_check = true,
        }
    }
    // Let the sends under way finish, so their outcome is recorded rather than left as
    // `sending` (which a restart would resend).
    while let Some(joined) = sends.join_next().await {
        if let Ok(outcome) = joined {
            finish(&outbox, &mut slots, &metrics, &config, &clock, outcome).await;
        }
    }
}

/// Gives due messages to available modems: for each message a modem other than the one
/// it last failed on when there is one, else the least-failing modem.
async fn assign(
    outbox: &Outbox,
    slots: &mut [ModemSlot],
    sends: &mut JoinSet<Outcome>,
    config: &DispatchConfig,
    clock: &Clock,
) {
    let now = clock.now_ms();
    let now_ms = now as i64;
    loop {
        let available = slots.iter().filter(|s| s.view().available(now)).count();
        if available == 0 {
            return;
        }
        let due = match outbox.due(now_ms, available).await {
            Ok(due) if !due.is_empty() => due,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "reading due messages failed");
                return;
            }
        };
        let mut assigned_any = false;
        for pending in due {
            let views: Vec<ModemView> = slots.iter().map(ModemSlot::view).collect();
            let Some(index) = plan::choose_modem(&views, pending.last_modem.as_deref(), now) else {
                return;
            };
            drop(views);
            let slot = &mut slots[index];
            let message = match outbox.claim(pending.id, &slot.handle.name, now_ms).await {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(message_id = %pending.id, %error, "claiming a message failed");
                    return;
                }
            };
            assigned_any = true;
            slot.busy = true;
            let handle = slot.handle.clone();
            let sms = SubmitOptions {
                status_report: slot.status_reports,
                ..config.sms.clone()
            };
            let clock = clock.clone();
            sends.spawn(async move {
                let started = clock.instant();
                let result = send(&handle, &message, sms, &clock).await;
                Outcome {
                    slot: index,
                    message,
                    result,
                    started,
                }
            });
        }
        if !assigned_any {
            return;
        }
    }
}

/// Encodes what is left of a message, with a validity period set from the time the code
/// has left, and sends it.
async fn send(
    modem: &ModemHandle,
    message: &Claimed,
    mut sms: SubmitOptions,
    clock: &Clock,
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
    let parts = crate::sms::encode_submit(&to, &message.text, message.concat_ref, &sms)
        .map_err(|e| permanent(format!("encoding: {e}")))?;
    let remaining: Vec<_> = parts
        .into_iter()
        .skip(usize::from(message.parts_sent))
        .collect();
    modem.send(remaining).await
}

async fn finish(
    outbox: &Outbox,
    slots: &mut [ModemSlot],
    metrics: &Metrics,
    config: &DispatchConfig,
    clock: &Clock,
    outcome: Outcome,
) {
    let Outcome {
        slot: index,
        message,
        result,
        started,
    } = outcome;
    let slot = &mut slots[index];
    slot.busy = false;
    let modem = slot.handle.name.clone();
    let id = message.id;
    let now = clock.now_ms() as i64;
    let elapsed_ms = clock.instant().duration_since(started).as_millis() as u64;
    let stored = match result {
        Ok(references) => {
            note_outcome(slot, SendOutcome::Sent, config, clock);
            metrics.send(&modem, "sent");
            metrics.send_latency(Duration::from_millis(
                (now - message.created_at_ms).max(0) as u64
            ));
            tracing::info!(message_id = %id, modem = %modem, parts = references.len(), elapsed_ms, "message sent");
            outbox.mark_sent(id, &references, now).await
        }
        Err(SendError::Permanent { reason, sent }) => {
            metrics.send(&modem, "permanent");
            tracing::warn!(message_id = %id, modem = %modem, %reason, "message failed permanently");
            outbox.mark_failed(id, &reason, &sent, now).await
        }
        Err(SendError::Unknown { reason, sent }) => {
            metrics.send(&modem, "unknown");
            note_outcome(slot, SendOutcome::Failed, config, clock);
            tracing::warn!(message_id = %id, modem = %modem, %reason, "send outcome unknown; not retried");
            outbox.mark_unknown(id, &reason, &sent, now).await
        }
        // The modem's (or its SIM's) fault, not the message's: retried like a temporary
        // failure, and, since the message remembers the modem it last failed on, on
        // another ready modem first; the worker has marked its modem failing.
        Err(SendError::ModemFault { reason, fix, sent }) => {
            metrics.send(&modem, "modem_fault");
            note_outcome(slot, SendOutcome::Failed, config, clock);
            tracing::warn!(message_id = %id, modem = %modem, %reason, %fix, "the modem's fault; retrying the message on another modem");
            outbox.mark_retry(id, &reason, &sent, now).await.map(|_| ())
        }
        Err(SendError::Temporary { reason, sent }) => {
            metrics.send(&modem, "temporary");
            note_outcome(slot, SendOutcome::Failed, config, clock);
            match outbox.mark_retry(id, &reason, &sent, now).await {
                Ok(RetryOutcome::Scheduled { at_ms }) => {
                    tracing::info!(message_id = %id, modem = %modem, %reason, retry_in_ms = at_ms - now, "temporary failure; will retry");
                    Ok(())
                }
                Ok(RetryOutcome::GaveUp) => {
                    tracing::warn!(message_id = %id, modem = %modem, %reason, "message failed after its last attempt");
                    Ok(())
                }
                Err(error) => Err(error),
            }
        }
    };
    if let Err(error) = stored {
        tracing::error!(message_id = %id, %error, "recording a send outcome failed");
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

async fn record_event(outbox: &Outbox, clock: &Clock, event: ModemEvent) {
    match event {
        ModemEvent::StatusReport { modem, report } => {
            let status = report.status;
            let code = status.code();
            let state = DeliveryState::from_tp_status(code);
            match outbox
                .record_delivery(
                    &modem,
                    report.message_reference,
                    code,
                    state,
                    clock.now_ms() as i64,
                )
                .await
            {
                Ok(Some(id)) => {
                    tracing::info!(message_id = %id, modem = %modem, status = status.describe(), "delivery report")
                }
                Ok(None) => tracing::debug!(modem = %modem, "delivery report for no known message"),
                Err(error) => tracing::error!(%error, "recording a delivery report failed"),
            }
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

async fn sleep_opt(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}
