//! The delays between attempts to reopen a modem's port: exponential, from a minimum to a
//! maximum, back to the minimum once the modem worked again.
//!
//! Pure: it computes delays and never sleeps or reads the clock; the driver sleeps. The
//! curve is the shared `crate::backoff`; this only counts the attempts.

use std::time::Duration;

/// Exponential backoff: `min`, `2·min`, `4·min`, ... capped at `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    curve: crate::backoff::Backoff,
    step: u32,
}

impl Backoff {
    /// A zero `min` would make the driver spin on a port that cannot open, so it is raised
    /// to a millisecond; a `max` below `min` is raised to `min`.
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Backoff {
            curve: crate::backoff::Backoff::new(min, max),
            step: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the one after, up to `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.curve.delay(self.step);
        self.step = self.step.saturating_add(1);
        delay
    }

    /// Starts again from `min`, after the modem came up.
    pub(crate) fn reset(&mut self) {
        self.step = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(min_ms: u64, max_ms: u64, expected_ms: &[u64]) {
        let mut backoff =
            Backoff::new(Duration::from_millis(min_ms), Duration::from_millis(max_ms));
        let got: Vec<u64> = expected_ms
            .iter()
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(got, expected_ms, "min {min_ms} max {max_ms}");
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        check(
            500,
            30_000,
            &[500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000],
        );
        check(50, 200, &[50, 100, 200, 200]);
        check(0, 0, &[1, 1, 1]);
        check(100, 10, &[100, 100]);
    }

    #[test]
    fn reset_starts_again_from_the_minimum() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        backoff.next_delay();
        backoff.next_delay();
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(50));
    }

    #[test]
    fn huge_delays_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::MAX / 2, Duration::MAX);
        backoff.next_delay();
        backoff.next_delay();
        assert_eq!(backoff.next_delay(), Duration::MAX);
    }
}
