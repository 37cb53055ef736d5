//! Whether the service should accept messages, derived from the modems' states; lives with
//! the modem state it summarises so the dispatcher (which updates it) and HTTP (which asks
//! it) both depend on `modem` rather than on each other.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Whether the public endpoint should accept messages: yes while a modem is ready, and for
/// a grace period after the last one was, so a short outage doesn't bounce requests; after
/// that OwnID gets 503 instead of a message that would wait for nothing.
#[derive(Debug)]
pub struct Readiness {
    grace_ms: u64,
    ready_now: AtomicBool,
    /// When a modem was last seen ready (or the service started).
    last_ready_ms: AtomicU64,
    /// Send outcomes the dispatcher holds because the store could not record them yet.
    outcomes_pending: AtomicU64,
    /// Whether the message store answered its last call (PostgreSQL can go away; a
    /// local SQLite file cannot, its failures are `Outbox::writable`).
    store_reachable: AtomicBool,
}

impl Readiness {
    pub fn new(grace: Duration, started_ms: u64) -> Self {
        Readiness {
            grace_ms: grace.as_millis() as u64,
            ready_now: AtomicBool::new(false),
            last_ready_ms: AtomicU64::new(started_ms),
            outcomes_pending: AtomicU64::new(0),
            store_reachable: AtomicBool::new(true),
        }
    }

    /// How many send outcomes wait to be recorded (the store failed to write them).
    /// While any do, the service is not healthy.
    pub fn outcomes_pending(&self) -> u64 {
        self.outcomes_pending.load(Ordering::Relaxed)
    }

    /// Set by the dispatcher as it keeps or records outcomes the store refused.
    pub fn set_outcomes_pending(&self, count: u64) {
        self.outcomes_pending.store(count, Ordering::Relaxed);
    }

    /// Whether the message store (PostgreSQL) could be reached at the last try.
    pub fn store_reachable(&self) -> bool {
        self.store_reachable.load(Ordering::Relaxed)
    }

    /// Set by whoever talks to the store (heartbeat, sweep, accept) from its last answer;
    /// returns the previous value, so a change can be logged once.
    pub fn set_store_reachable(&self, reachable: bool) -> bool {
        self.store_reachable.swap(reachable, Ordering::Relaxed)
    }

    pub fn accepting(&self, now_ms: u64) -> bool {
        self.ready_now.load(Ordering::Relaxed)
            || now_ms.saturating_sub(self.last_ready_ms.load(Ordering::Relaxed)) < self.grace_ms
    }

    pub fn any_ready(&self) -> bool {
        self.ready_now.load(Ordering::Relaxed)
    }

    /// Records whether any modem works at `now_ms` (the dispatcher calls it at every turn).
    pub fn update(&self, any_ready: bool, now_ms: u64) {
        let was_ready = self.ready_now.swap(any_ready, Ordering::Relaxed);
        if any_ready || was_ready {
            self.last_ready_ms.store(now_ms, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_has_a_grace_period() {
        let readiness = Readiness::new(Duration::from_secs(60), 1_000);
        assert!(
            readiness.accepting(30_000),
            "within the grace period after start"
        );
        assert!(
            !readiness.accepting(61_000),
            "grace period over, no modem ready"
        );
        readiness.update(true, 61_000);
        assert!(readiness.accepting(500_000));
        readiness.update(false, 500_000);
        assert!(readiness.accepting(559_999));
        assert!(!readiness.accepting(560_000));
    }
}
