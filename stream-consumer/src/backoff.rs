//! How long a shard worker pauses after its stream or stores failed: a pure decision.

use std::time::Duration;

/// Exponential backoff with a ceiling and "equal jitter": after the n-th failure in a row the pause
/// is between half and all of `base * 2^(n-1)` (at most `ceiling`), so that the shards of a fleet
/// that failed together do not come back together, and a store that is down is asked at most a few
/// times a minute per shard instead of twice a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The longest pause after the first failure.
    pub base: Duration,
    /// The longest pause at all.
    pub ceiling: Duration,
}

impl Backoff {
    /// The pause after `failures` failures in a row (1 for the first); `jitter` in `[0, 1]` picks
    /// the point between half and the whole of the exponential step (anything else counts as 0).
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let step = self.base.saturating_mul(1 << doublings).min(self.ceiling);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        // Floating point may round a step near `Duration::MAX` past it: such a step stays whole.
        Duration::try_from_secs_f64(step.as_secs_f64() * (0.5 + 0.5 * jitter)).map_or(step, |pause| pause.min(step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff { base: Duration::from_millis(100), ceiling: Duration::from_secs(5) };

    #[test]
    fn each_failure_doubles_the_pause_up_to_the_ceiling() {
        let whole: Vec<Duration> = (1..=8).map(|n| BACKOFF.delay(n, 1.0)).collect();
        let millis: Vec<u128> = whole.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
        assert_eq!(BACKOFF.delay(0, 1.0), Duration::from_millis(100), "no failure yet counts as the first");
    }

    #[test]
    fn jitter_picks_between_half_and_the_whole_step() {
        assert_eq!(BACKOFF.delay(3, 0.0), Duration::from_millis(200));
        assert_eq!(BACKOFF.delay(3, 0.5), Duration::from_millis(300));
        assert_eq!(BACKOFF.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(BACKOFF.delay(3, 7.0), Duration::from_millis(400));
        assert_eq!(BACKOFF.delay(3, -1.0), Duration::from_millis(200));
        assert_eq!(BACKOFF.delay(3, f64::NAN), Duration::from_millis(200));
    }

    #[test]
    fn endless_failures_and_huge_settings_neither_overflow_nor_pass_the_ceiling() {
        assert_eq!(BACKOFF.delay(u32::MAX, 1.0), Duration::from_secs(5));
        let huge = Backoff { base: Duration::MAX, ceiling: Duration::MAX };
        assert_eq!(huge.delay(u32::MAX, 1.0), Duration::MAX);
        assert!(huge.delay(40, 0.0) <= Duration::MAX);
    }
}
