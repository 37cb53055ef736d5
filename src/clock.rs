//! The one clock: wall time in Unix milliseconds (the unit of OwnID's timestamps and of the
//! outbox) and the monotonic instant timers are set against. Everything that decides by
//! time asks a `Clock` handed to it, so tests can run the service on tokio's paused clock
//! (`start_paused`, `tokio::time::advance`) instead of sleeping in real time.

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
    /// The system's wall clock.
    System,
    /// Wall time that follows tokio's clock from a fixed start, so pausing and advancing
    /// tokio's time moves it too.
    Tokio { start_ms: UnixMs, start: Instant },
}

impl Clock {
    /// The system's wall clock: what the service runs on.
    pub fn system() -> Self {
        Clock {
            source: Source::System,
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

    /// Wall time now, in Unix milliseconds.
    pub fn now_ms(&self) -> UnixMs {
        match &self.source {
            Source::System => system_ms(),
            Source::Tokio { start_ms, start } => {
                start_ms.saturating_add(start.elapsed().as_millis() as u64)
            }
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

    #[test]
    fn the_system_clock_reads_a_plausible_time() {
        // After 2020-01-01 and before 2200: catches a clock in seconds or microseconds.
        let now = Clock::system().now_ms();
        assert!(now > 1_577_836_800_000 && now < 7_258_118_400_000, "{now}");
    }
}
