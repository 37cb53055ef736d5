//! The one clock: wall time in Unix milliseconds (the unit of OwnID's timestamps and of the
//! outbox) and the monotonic instant timers are set against. Everything that decides by
//! time asks a `Clock` handed to it, so tests can run the service on tokio's paused clock
//! (`start_paused`, `tokio::time::advance`) instead of sleeping in real time.
//!
//! The service's time never steps backwards: TTLs, due times and rate windows are judged
//! on [`Clock::now_ms`], which runs at the monotonic clock's pace from the wall time it was
//! anchored to. A wall clock that steps back (an RTC-less Pi whose NTP sync corrects a
//! clock restored too far ahead) leaves it alone, so a code is never sent after its TTL; a
//! wall clock that steps forward re-anchors it (the safe direction: a TTL can only end
//! early). Either step is logged once. Timestamps that other systems signed are checked
//! against the real wall clock, [`Clock::wall_ms`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A point in wall time: milliseconds since the Unix epoch.
pub type UnixMs = u64;

/// Where the time comes from. Cheap to clone; clones share the same source.
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// The system's wall clock, kept from stepping back (see the module's doc).
    System(Arc<Steady>),
    /// Wall time that follows tokio's clock from a fixed start, so pausing and advancing
    /// tokio's time moves it too.
    Tokio { start_ms: UnixMs, start: Instant },
}

impl Clock {
    /// The system's wall clock: what the service runs on.
    pub fn system() -> Self {
        Self::steady(system_ms)
    }

    /// A steady clock over any wall-time source: the system's, or a test's that steps.
    pub fn steady(wall: fn() -> UnixMs) -> Self {
        Clock {
            source: Source::System(Arc::new(Steady::new(wall))),
        }
    }

    /// A clock that reads `start_ms` now and then moves with tokio's clock (paused or not).
    /// Must be created inside a tokio runtime.
    pub fn tokio_at(start_ms: UnixMs) -> Self {
        Clock {
            source: Source::Tokio {
                start_ms,
                start: Instant::now(),
            },
        }
    }

    /// Like `tokio_at`, starting from the system's wall time, so signatures made with real
    /// timestamps still verify.
    pub fn tokio_from_system() -> Self {
        Self::tokio_at(system_ms())
    }

    /// The service's time now, in Unix milliseconds: never earlier than it said before.
    pub fn now_ms(&self) -> UnixMs {
        match &self.source {
            Source::System(steady) => steady.now_ms(),
            Source::Tokio { start_ms, start } => {
                start_ms.saturating_add(start.elapsed().as_millis() as u64)
            }
        }
    }

    /// The real wall clock, for checking timestamps another system signed (OwnID's,
    /// Standard Webhooks', Zitadel's): they are judged against the same clock the sender
    /// used, whatever [`Clock::now_ms`] kept through a step.
    pub fn wall_ms(&self) -> UnixMs {
        match &self.source {
            Source::System(steady) => (steady.wall)(),
            Source::Tokio { .. } => self.now_ms(),
        }
    }

    /// The monotonic instant timers are set against (tokio's, which paused time drives).
    pub fn instant(&self) -> Instant {
        Instant::now()
    }

    /// The instant at which the wall clock will read `at_ms` (now, if that has passed).
    pub fn instant_at(&self, at_ms: UnixMs) -> Instant {
        let now_ms = self.now_ms();
        self.instant() + Duration::from_millis(at_ms.saturating_sub(now_ms))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// Wall time anchored to a monotonic instant: the anchor moves forward with a forward step
/// of the wall clock, never backward.
#[derive(Debug)]
struct Steady {
    wall: fn() -> UnixMs,
    base: std::time::Instant,
    /// The wall time the anchor says `base` was.
    anchor_ms: AtomicU64,
    stepped_back: AtomicBool,
    stepped_forward: AtomicBool,
}

/// A difference between the wall clock and the steady time above which it is a step.
const STEP_MS: u64 = 2_000;

impl Steady {
    fn new(wall: fn() -> UnixMs) -> Self {
        Steady {
            wall,
            base: std::time::Instant::now(),
            anchor_ms: AtomicU64::new(wall()),
            stepped_back: AtomicBool::new(false),
            stepped_forward: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> UnixMs {
        let elapsed = self.base.elapsed().as_millis() as u64;
        let steady = self.anchor_ms.load(Ordering::Relaxed) + elapsed;
        let wall = (self.wall)();
        if wall > steady + STEP_MS {
            // Forward: follow the wall clock (a TTL can only end earlier).
            self.anchor_ms
                .fetch_max(wall.saturating_sub(elapsed), Ordering::Relaxed);
            if !self.stepped_forward.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    step_ms = wall - steady,
                    "the wall clock stepped forward; the service's time follows it"
                );
            }
            return self.anchor_ms.load(Ordering::Relaxed) + elapsed;
        }
        if wall + STEP_MS < steady && !self.stepped_back.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                step_ms = steady - wall,
                "the wall clock stepped backwards; TTLs and due times keep the service's own steady time"
            );
        }
        steady
    }
}

fn system_ms() -> UnixMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time() {
        let clock = Clock::tokio_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::advance(Duration::from_millis(2_500)).await;
        assert_eq!(clock.now_ms(), 3_500);
        assert_eq!(clock.clone().now_ms(), 3_500, "clones share the source");
    }

    #[tokio::test(start_paused = true)]
    async fn instant_at_points_at_the_wall_time_asked_for() {
        let clock = Clock::tokio_at(10_000);
        let at = clock.instant_at(12_000);
        tokio::time::sleep_until(at).await;
        assert_eq!(clock.now_ms(), 12_000);
        // A time already past is now, not earlier.
        assert_eq!(clock.instant_at(5_000), clock.instant());
    }

    /// A wall clock a test can step: milliseconds added to the real one.
    static WALL_SHIFT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    fn shifted_wall() -> UnixMs {
        (system_ms() as i64 + WALL_SHIFT.load(Ordering::Relaxed)) as u64
    }

    #[test]
    fn a_wall_clock_step_back_never_moves_the_service_time_back() {
        let clock = Clock::steady(shifted_wall);
        let before = clock.now_ms();
        WALL_SHIFT.store(-60_000, Ordering::Relaxed);
        let after = clock.now_ms();
        assert!(after >= before, "{after} < {before}");
        assert!(
            after < before + 1_000,
            "the steady time went on at its own pace"
        );
        assert!(
            clock.wall_ms() + 50_000 < after,
            "signed timestamps are checked on the real wall clock"
        );
        // A forward step is followed: a TTL can only end early.
        WALL_SHIFT.store(3_600_000, Ordering::Relaxed);
        let ahead = clock.now_ms();
        assert!(ahead >= before + 3_590_000, "{ahead} vs {before}");
        WALL_SHIFT.store(0, Ordering::Relaxed);
        let back_again = clock.now_ms();
        assert!(back_again >= ahead, "and never back");
    }

    #[test]
    fn the_system_clock_reads_a_plausible_time() {
        // After 2020-01-01 and before 2200: catches a clock in seconds or microseconds.
        let now = Clock::system().now_ms();
        assert!(now > 1_577_836_800_000 && now < 7_258_118_400_000, "{now}");
    }
}
