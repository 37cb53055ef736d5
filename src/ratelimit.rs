//! Per-destination rate limiting (pure): at most `count` accepted messages to one number
//! within a sliding `window`. SMS-pumping fraud sends many codes to numbers it is paid
//! for, so a number that asks too often is refused with 429.
//!
//! Time is a parameter (milliseconds); the limiter never reads the clock. A slot is
//! reserved before the message is stored and given back if storing fails, so concurrent
//! requests for one number cannot both take the last slot.

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window_ms: u64,
}

/// HMAC-SHA256(`key`, number): how a number is named where it must not be stored, in the
/// saved windows and in a fleet's shared rate-limit table. Every box derives the same key
/// from the shared secret, so they all name a number alike.
pub fn keyed_hash(key: &[u8], number: &str) -> [u8; 32] {
    // HMAC takes a key of any length; an empty one is still a key.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(&[0]).expect("a key"));
    mac.update(number.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Tracks recent acceptances per number.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    recent: HashMap<String, VecDeque<u64>>,
    last_sweep_ms: u64,
    /// When set, numbers are tracked by their keyed hash, so the windows can be saved
    /// across a restart without writing a phone number to the disk.
    key: Option<Vec<u8>>,
}

/// A refused request: the number may try again after `retry_after_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_ms: u64,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            recent: HashMap::new(),
            last_sweep_ms: 0,
            key: None,
        }
    }

    /// A limiter that tracks numbers by HMAC-SHA256(`key`, number), hex.
    pub fn keyed(limit: RateLimit, key: &[u8]) -> Self {
        RateLimiter {
            key: Some(key.to_vec()),
            ..RateLimiter::new(limit)
        }
    }

    fn slot(&self, number: &str) -> String {
        match &self.key {
            None => number.to_owned(),
            Some(key) => keyed_hash(key, number)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }

    /// Every tracked slot (the keyed hash for a keyed limiter) with its acceptance times
    /// still inside the window at `now_ms`, for saving.
    pub fn windows(&self, now_ms: u64) -> Vec<(String, Vec<u64>)> {
        let window = self.limit.window_ms;
        self.recent
            .iter()
            .map(|(slot, times)| {
                let times: Vec<u64> = times
                    .iter()
                    .copied()
                    .filter(|&t| t + window > now_ms)
                    .collect();
                (slot.clone(), times)
            })
            .filter(|(_, times)| !times.is_empty())
            .collect()
    }

    /// Puts back a slot saved by [`windows`](Self::windows) (times in any order; those
    /// outside the window at `now_ms` are dropped).
    pub fn restore(&mut self, slot: String, mut times: Vec<u64>, now_ms: u64) {
        let window = self.limit.window_ms;
        times.retain(|&t| t + window > now_ms && t <= now_ms);
        times.sort_unstable();
        if !times.is_empty() {
            self.recent.entry(slot).or_default().extend(times);
        }
    }

    /// Takes a slot for `number` at `now_ms`, or says how long until one frees up.
    pub fn reserve(&mut self, number: &str, now_ms: u64) -> Result<(), Limited> {
        self.sweep(now_ms);
        let window = self.limit.window_ms;
        let slot = self.slot(number);
        let times = self.recent.entry(slot).or_default();
        while times.front().is_some_and(|&t| t + window <= now_ms) {
            times.pop_front();
        }
        if times.len() >= self.limit.count as usize {
            let oldest = times.front().copied().unwrap_or(now_ms);
            let retry_after_ms = (oldest + self.limit.window_ms)
                .saturating_sub(now_ms)
                .max(1);
            return Err(Limited { retry_after_ms });
        }
        times.push_back(now_ms);
        Ok(())
    }

    /// Gives back the slot taken at `at_ms` by [`reserve`](Self::reserve), when the
    /// message was not accepted after all.
    pub fn release(&mut self, number: &str, at_ms: u64) {
        let slot = self.slot(number);
        if let Some(times) = self.recent.get_mut(&slot) {
            if let Some(pos) = times.iter().rposition(|&t| t == at_ms) {
                times.remove(pos);
            }
            if times.is_empty() {
                self.recent.remove(&slot);
            }
        }
    }

    /// How many numbers are being tracked: the sweep's effect, and how many windows a
    /// restart restored.
    pub fn tracked(&self) -> usize {
        self.recent.len()
    }

    /// Forgets numbers whose every entry has left the window, at most once per window, so
    /// memory stays bounded by the numbers seen in the last window.
    fn sweep(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < self.limit.window_ms {
            return;
        }
        self.last_sweep_ms = now_ms;
        let window_start = now_ms.saturating_sub(self.limit.window_ms);
        self.recent
            .retain(|_, times| times.back().is_some_and(|&t| t > window_start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimit {
            count: 5,
            window_ms: 10 * MINUTE,
        })
    }

    #[test]
    fn allows_the_configured_count_then_refuses() {
        let mut limiter = limiter();
        for i in 0..5 {
            assert_eq!(limiter.reserve("+447400123456", i * MINUTE), Ok(()));
        }
        assert_eq!(
            limiter.reserve("+447400123456", 5 * MINUTE),
            Err(Limited {
                retry_after_ms: 5 * MINUTE
            })
        );
        // Other numbers are not affected.
        assert_eq!(limiter.reserve("+4915123456789", 5 * MINUTE), Ok(()));
    }

    #[test]
    fn the_window_slides() {
        let mut limiter = limiter();
        for i in 0..5 {
            limiter.reserve("+447400123456", i * MINUTE).unwrap();
        }
        assert!(limiter.reserve("+447400123456", 10 * MINUTE - 1).is_err());
        assert_eq!(limiter.reserve("+447400123456", 10 * MINUTE), Ok(()));
        assert!(limiter.reserve("+447400123456", 10 * MINUTE + 1).is_err());
    }

    #[test]
    fn a_released_slot_can_be_taken_again() {
        let mut limiter = limiter();
        for i in 0..5 {
            limiter.reserve("+447400123456", i).unwrap();
        }
        limiter.release("+447400123456", 4);
        assert_eq!(limiter.reserve("+447400123456", 5), Ok(()));
        assert!(limiter.reserve("+447400123456", 6).is_err());
    }

    #[test]
    fn a_keyed_limiter_saves_no_number_and_restores_its_windows() {
        let limit = RateLimit {
            count: 5,
            window_ms: 10 * MINUTE,
        };
        let mut before = RateLimiter::keyed(limit, b"key");
        for i in 0..5 {
            before.reserve("+447400123456", i * MINUTE).unwrap();
        }
        let saved = before.windows(5 * MINUTE);
        assert_eq!(saved.len(), 1);
        assert!(!saved[0].0.contains("7400123456"));
        let mut after = RateLimiter::keyed(limit, b"key");
        for (slot, times) in saved {
            after.restore(slot, times, 5 * MINUTE);
        }
        assert!(after.reserve("+447400123456", 5 * MINUTE).is_err());
        assert!(after.reserve("+4915123456789", 5 * MINUTE).is_ok());
        // Entries that left the window by the restart are not restored.
        let mut late = RateLimiter::keyed(limit, b"key");
        for (slot, times) in before.windows(5 * MINUTE) {
            late.restore(slot, times, 10 * MINUTE + 1);
        }
        assert_eq!(late.tracked(), 1);
        assert_eq!(late.reserve("+447400123456", 10 * MINUTE + 1), Ok(()));
        assert!(late.reserve("+447400123456", 10 * MINUTE + 2).is_err());
    }

    #[test]
    fn forgets_numbers_that_left_the_window() {
        let mut limiter = limiter();
        for i in 0..1000u64 {
            limiter.reserve(&format!("+4915123{i:06}"), i).unwrap();
        }
        assert_eq!(limiter.tracked(), 1000);
        limiter.reserve("+447400123456", 30 * MINUTE).unwrap();
        assert_eq!(limiter.tracked(), 1);
    }
}
