//! The dispatch plan (pure): given the modems' states, a due message, a send's outcome and
//! the time, it decides which modem takes the message, whether a failing modem leaves the
//! rotation and for how long, and when the dispatcher must look again. No tokio, no clock,
//! no I/O: the dispatcher's loop (`super::run`) feeds it and carries out its answers.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::clock::UnixMs;

/// What the plan needs to know of one modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemView<'a> {
    pub name: &'a str,
    /// Registered and idle as far as the modem worker says (`ModemState::Ready`).
    pub ready: bool,
    /// A send of ours is under way on it.
    pub busy: bool,
    /// Failed sends in a row.
    pub failures: u32,
    /// Out of the rotation until then.
    pub benched_until_ms: Option<UnixMs>,
}

impl ModemView<'_> {
    /// Can take a message at `now_ms`.
    pub fn available(&self, now_ms: UnixMs) -> bool {
        self.ready && !self.busy && self.benched_until_ms.is_none_or(|until| now_ms >= until)
    }
}

/// The modem for a message that last failed on `last_modem` (if any): an available modem
/// other than that one when there is one, else the least-failing; among equals the first.
pub fn choose_modem(
    modems: &[ModemView<'_>],
    last_modem: Option<&str>,
    now_ms: UnixMs,
) -> Option<usize> {
    (0..modems.len())
        .filter(|&i| modems[i].available(now_ms))
        .min_by_key(|&i| (last_modem == Some(modems[i].name), modems[i].failures))
}

/// Assigns due messages (given by the modem each last failed on) to modems, in order,
/// assuming every claim succeeds: each message gets `choose_modem`'s answer and that modem
/// is busy for the next. Returns `(message index, modem index)` pairs.
pub fn assign(
    modems: &[ModemView<'_>],
    due: &[Option<&str>],
    now_ms: UnixMs,
) -> Vec<(usize, usize)> {
    let mut modems = modems.to_vec();
    let mut claims = Vec::new();
    for (message, last) in due.iter().enumerate() {
        let Some(modem) = choose_modem(&modems, *last, now_ms) else {
            break;
        };
        modems[modem].busy = true;
        claims.push((message, modem));
    }
    claims
}

/// How a send ended, as far as the modem's standing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// The network refused the message: the modem did its job.
    Permanent,
    /// A failure that may be the modem's: temporary, or an unknown outcome.
    Failed,
}

/// When a modem that keeps failing leaves the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchPolicy {
    /// Failed sends in a row after which a modem leaves the rotation.
    pub threshold: u32,
    /// How long it stays out the first time; doubling while it keeps failing, up to 16x.
    pub cooldown: Duration,
}

impl BenchPolicy {
    /// The cool-down after `failures` failed sends in a row (`threshold` or more).
    pub fn cooldown(&self, failures: u32) -> Duration {
        Backoff::new(self.cooldown, self.cooldown.saturating_mul(16))
            .delay(failures.saturating_sub(self.threshold))
    }
}

/// A modem's standing after a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub failures: u32,
    pub benched_until_ms: Option<UnixMs>,
    /// Set when this outcome benched the modem: for how long.
    pub benched_for: Option<Duration>,
}

/// The modem's standing after `outcome` at `now_ms`, from its standing before.
pub fn after_send(
    failures: u32,
    benched_until_ms: Option<UnixMs>,
    outcome: SendOutcome,
    policy: &BenchPolicy,
    now_ms: UnixMs,
) -> Standing {
    match outcome {
        SendOutcome::Sent => Standing {
            failures: 0,
            benched_until_ms: None,
            benched_for: None,
        },
        SendOutcome::Permanent => Standing {
            failures,
            benched_until_ms,
            benched_for: None,
        },
        SendOutcome::Failed => {
            let failures = failures.saturating_add(1);
            if failures >= policy.threshold {
                let cooldown = policy.cooldown(failures);
                Standing {
                    failures,
                    benched_until_ms: Some(
                        now_ms.saturating_add(cooldown.as_millis().min(u64::MAX as u128) as u64),
                    ),
                    benched_for: Some(cooldown),
                }
            } else {
                Standing {
                    failures,
                    benched_until_ms,
                    benched_for: None,
                }
            }
        }
    }
}

/// When to look again if nothing happens: the outbox's next due time or the end of a
/// cool-down still running, whichever comes first.
pub fn next_wake(
    next_due_ms: Option<UnixMs>,
    modems: &[ModemView<'_>],
    now_ms: UnixMs,
) -> Option<UnixMs> {
    let bench_end = modems
        .iter()
        .filter_map(|m| m.benched_until_ms)
        .filter(|&t| t > now_ms)
        .min();
    match (next_due_ms, bench_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 4] = ["m0", "m1", "m2", "m3"];

    fn modem(
        i: usize,
        ready: bool,
        busy: bool,
        failures: u32,
        bench: Option<u64>,
    ) -> ModemView<'static> {
        ModemView {
            name: NAMES[i],
            ready,
            busy,
            failures,
            benched_until_ms: bench,
        }
    }

    fn modems() -> impl Strategy<Value = Vec<ModemView<'static>>> {
        prop::collection::vec(
            (
                any::<bool>(),
                any::<bool>(),
                0u32..6,
                prop::option::of(0u64..2_000),
            ),
            0..=4,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (ready, busy, failures, bench))| modem(i, ready, busy, failures, bench))
                .collect()
        })
    }

    const POLICY: BenchPolicy = BenchPolicy {
        threshold: 3,
        cooldown: Duration::from_secs(30),
    };

    #[test]
    fn a_message_avoids_the_modem_it_failed_on_and_prefers_the_least_failing() {
        let ms = [
            modem(0, true, false, 0, None),
            modem(1, true, false, 2, None),
        ];
        assert_eq!(choose_modem(&ms, None, 0), Some(0));
        assert_eq!(choose_modem(&ms, Some("m0"), 0), Some(1), "not m0 again");
        // With only the modem it failed on left, that one takes it.
        let ms = [
            modem(0, true, false, 0, None),
            modem(1, true, true, 0, None),
        ];
        assert_eq!(choose_modem(&ms, Some("m0"), 0), Some(0));
    }

    #[test]
    fn a_benched_modem_returns_when_its_cool_down_ends() {
        let ms = [modem(0, true, false, 3, Some(1_000))];
        assert_eq!(choose_modem(&ms, None, 999), None);
        assert_eq!(choose_modem(&ms, None, 1_000), Some(0));
        assert_eq!(next_wake(None, &ms, 999), Some(1_000));
        assert_eq!(
            next_wake(None, &ms, 1_000),
            None,
            "an ended cool-down is no wake-up"
        );
    }

    #[test]
    fn the_third_failure_benches_for_the_cool_down_and_it_doubles_up_to_16x() {
        let s = after_send(1, None, SendOutcome::Failed, &POLICY, 10_000);
        assert_eq!(
            (s.failures, s.benched_until_ms, s.benched_for),
            (2, None, None)
        );
        let s = after_send(2, None, SendOutcome::Failed, &POLICY, 10_000);
        assert_eq!(s.benched_for, Some(Duration::from_secs(30)));
        assert_eq!(s.benched_until_ms, Some(40_000));
        let secs: Vec<u64> = (3..10).map(|f| POLICY.cooldown(f).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 480, 480]);
        let s = after_send(7, Some(5), SendOutcome::Sent, &POLICY, 10_000);
        assert_eq!(
            (s.failures, s.benched_until_ms),
            (0, None),
            "a send clears the record"
        );
        let s = after_send(7, Some(5), SendOutcome::Permanent, &POLICY, 10_000);
        assert_eq!(
            (s.failures, s.benched_until_ms),
            (7, Some(5)),
            "a refusal is not the modem's fault"
        );
    }

    proptest! {
        #[test]
        fn the_chosen_modem_is_available_and_none_is_better(ms in modems(), last in prop::option::of(0usize..4), now in 0u64..2_500) {
            let last = last.map(|i| NAMES[i]);
            match choose_modem(&ms, last, now) {
                None => prop_assert!(ms.iter().all(|m| !m.available(now))),
                Some(i) => {
                    prop_assert!(ms[i].available(now));
                    let key = |m: &ModemView| (last == Some(m.name), m.failures);
                    for (j, m) in ms.iter().enumerate() {
                        if m.available(now) {
                            prop_assert!(key(&ms[i]) < key(m) || (key(&ms[i]) == key(m) && i <= j));
                        }
                    }
                }
            }
        }

        #[test]
        fn assignment_uses_each_available_modem_at_most_once(ms in modems(), due in prop::collection::vec(prop::option::of(0usize..4), 0..6), now in 0u64..2_500) {
            let due: Vec<Option<&str>> = due.into_iter().map(|d| d.map(|i| NAMES[i])).collect();
            let claims = assign(&ms, &due, now);
            let available = ms.iter().filter(|m| m.available(now)).count();
            prop_assert_eq!(claims.len(), available.min(due.len()));
            let mut used: Vec<usize> = claims.iter().map(|&(_, m)| m).collect();
            used.sort_unstable();
            used.dedup();
            prop_assert_eq!(used.len(), claims.len());
            for (k, &(message, modem)) in claims.iter().enumerate() {
                prop_assert_eq!(message, k, "messages are served in order");
                prop_assert!(ms[modem].available(now));
            }
        }

        #[test]
        fn benching_follows_the_failures(failures in 0u32..40, bench in prop::option::of(0u64..100_000), now in 0u64..100_000, threshold in 1u32..6, cooldown_ms in 1u64..60_000) {
            let policy = BenchPolicy { threshold, cooldown: Duration::from_millis(cooldown_ms) };
            let s = after_send(failures, bench, SendOutcome::Failed, &policy, now);
            prop_assert_eq!(s.failures, failures + 1);
            if failures + 1 >= threshold {
                let d = s.benched_for.unwrap();
                prop_assert!(d >= policy.cooldown && d <= policy.cooldown * 16);
                prop_assert_eq!(s.benched_until_ms, Some(now + d.as_millis() as u64));
                // A modem just benched is not available until the cool-down ends.
                let m = ModemView { name: "m0", ready: true, busy: false, failures: s.failures, benched_until_ms: s.benched_until_ms };
                prop_assert!(!m.available(now + d.as_millis() as u64 - 1));
                prop_assert!(m.available(now + d.as_millis() as u64));
                prop_assert_eq!(next_wake(None, &[m], now), s.benched_until_ms);
                // Longer failing never shortens the cool-down.
                prop_assert!(policy.cooldown(failures + 2) >= d);
            } else {
                prop_assert_eq!(s.benched_for, None);
                prop_assert_eq!(s.benched_until_ms, bench);
            }
        }

        #[test]
        fn the_next_wake_is_the_earliest_future_event(ms in modems(), due in prop::option::of(0u64..3_000), now in 0u64..2_500) {
            let wake = next_wake(due, &ms, now);
            let mut candidates: Vec<u64> = ms.iter().filter_map(|m| m.benched_until_ms).filter(|&t| t > now).collect();
            candidates.extend(due);
            prop_assert_eq!(wake, candidates.into_iter().min());
        }
    }
}
