//! The retry schedule (pure): how long to wait after a temporary failure, and when to give
//! up. The outbox applies it in [`super::Outbox::mark_retry`] so every caller retries alike.

use std::time::Duration;

/// Exponential backoff with a cap and a limit on attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per message, the first included; after this many the message fails.
    pub max_attempts: u32,
    /// The delay after the first failed attempt; it doubles after each further one...
    pub initial_backoff: Duration,
    /// ...up to this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay after `attempts` failed attempts (1 for the first failure):
    /// `initial_backoff × 2^(attempts − 1)`, at most `max_backoff`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        crate::backoff::Backoff::new(self.initial_backoff, self.max_backoff)
            .delay(attempts.saturating_sub(1))
    }

    /// When to try again after `attempts` attempts failed at `now_ms`, or `None` when the
    /// message has had all its attempts.
    pub fn next_attempt_at(&self, attempts: u32, now_ms: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = i64::try_from(self.backoff(attempts).as_millis()).unwrap_or(i64::MAX);
        Some(now_ms.saturating_add(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: RetryPolicy, attempts: u32, expected: Option<i64>) {
        assert_eq!(
            policy.next_attempt_at(attempts, 1_000_000),
            expected,
            "after {attempts} attempts"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let policy = RetryPolicy::default();
        check(policy, 1, Some(1_001_000));
        check(policy, 2, Some(1_002_000));
        check(policy, 3, Some(1_004_000));
        check(policy, 4, Some(1_008_000));
        check(policy, 5, None);
        check(policy, 6, None);
        let patient = RetryPolicy {
            max_attempts: 100,
            ..policy
        };
        check(patient, 5, Some(1_016_000));
        check(patient, 6, Some(1_030_000));
        check(patient, 99, Some(1_030_000));
        check(patient, 100, None);
        // Zero attempts means nothing failed yet; it is treated like the first failure.
        check(patient, 0, Some(1_001_000));
    }

    #[test]
    fn backoff_never_overflows() {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_secs(u64::MAX / 2),
            max_backoff: Duration::MAX,
        };
        assert_eq!(
            policy.next_attempt_at(u32::MAX - 1, i64::MAX - 5),
            Some(i64::MAX)
        );
    }
}
