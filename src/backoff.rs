//! The one backoff every retry loop uses: a delay that doubles at each step from an initial
//! value up to a cap. The outbox's retry schedule, the dispatcher's modem cool-down and the
//! modem driver's reopen delays are all this curve with their own initial value and cap.
//!
//! Pure: it computes delays and never sleeps or reads a clock.

use std::time::Duration;

/// Exponential backoff: `initial × 2^step`, at most `max` (saturating, never overflows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The delay at `step` (0 for the first): `initial`, `2·initial`, `4·initial`, ... `max`.
    pub fn delay(&self, step: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << step.min(31))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        let got: Vec<u128> = (0..7).map(|s| b.delay(s).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
    }

    #[test]
    fn huge_steps_and_values_saturate_instead_of_overflowing() {
        let b = Backoff::new(Duration::from_secs(u64::MAX / 2), Duration::MAX);
        assert_eq!(b.delay(u32::MAX), Duration::MAX);
    }

    proptest! {
        #[test]
        fn never_shrinks_and_never_passes_the_cap(initial in 0u64..100_000, max in 0u64..10_000_000, step in 0u32..64) {
            let b = Backoff::new(Duration::from_millis(initial), Duration::from_millis(max));
            prop_assert!(b.delay(step) <= b.max);
            prop_assert!(b.delay(step) <= b.delay(step + 1));
            prop_assert_eq!(b.delay(0), b.initial.min(b.max));
        }
    }
}
