//! When each event is due. The run is open loop: event `n` is due `n / rate` seconds after the
//! start, whatever happened to the events before it, and every latency is measured from that
//! instant, so a slow answer cannot hide the delay it causes to the events queued behind it
//! (no coordinated omission).

use std::time::Duration;

use crate::error::LoadtestError;

/// The highest arrival rate the tester accepts, in events per second.
pub const MAX_RATE: f64 = 1_000_000.0;

/// The most events one run may schedule: the tester keeps one byte of state per event.
pub const MAX_EVENTS: u64 = 100_000_000;

/// A fixed-rate arrival schedule over a fixed duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    duration: Duration,
    events: u64,
}

impl Schedule {
    /// The schedule of `rate` events per second for `duration`; refuses a rate that is not a
    /// positive number up to [`MAX_RATE`], and a run of no event or of more than [`MAX_EVENTS`].
    pub fn new(rate: f64, duration: Duration) -> Result<Self, LoadtestError> {
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return Err(LoadtestError::Usage(format!("--rate {rate} is not a number of events/s in (0, {MAX_RATE}]")));
        }
        // The small epsilon keeps 0.29 events/s over 100 s at 29 events despite binary rounding.
        let exact = rate * duration.as_secs_f64();
        let events = (exact + 1e-9).floor();
        if events < 1.0 {
            return Err(LoadtestError::Usage(format!(
                "--rate {rate} over {} s schedules no event",
                duration.as_secs_f64()
            )));
        }
        if events > MAX_EVENTS as f64 {
            return Err(LoadtestError::Usage(format!(
                "--rate {rate} over {} s schedules {events} events, more than the {MAX_EVENTS} one run may hold",
                duration.as_secs_f64()
            )));
        }
        let events = events as u64; // a whole number in 1..=MAX_EVENTS
        Ok(Self { rate, duration, events })
    }

    /// The arrival rate, in events per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How long the schedule runs.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How many events the run sends.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Microseconds after the start at which event `seq` is due.
    pub fn due_at_us(&self, seq: u64) -> u64 {
        // seq < events <= rate * duration, so the result is a non-negative number of µs no larger
        // than the duration: far inside u64.
        (seq as f64 * 1e6 / self.rate).floor() as u64
    }

    /// How many events are due `elapsed_us` microseconds after the start: those whose
    /// [`due_at_us`](Self::due_at_us) is at most `elapsed_us`, never more than [`events`](Self::events).
    pub fn due_by(&self, elapsed_us: u64) -> u64 {
        // A first guess from the rate, then corrected against `due_at_us` itself so that the two
        // always agree, whatever the floating-point rounding did to the guess.
        let guess = ((elapsed_us as f64 * self.rate / 1e6).floor() as u64).saturating_add(1);
        let mut due = guess.min(self.events);
        while due < self.events && self.due_at_us(due) <= elapsed_us {
            due += 1;
        }
        while due > 0 && self.due_at_us(due - 1) > elapsed_us {
            due -= 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, secs: u64) -> Schedule {
        Schedule::new(rate, Duration::from_secs(secs)).unwrap()
    }

    #[test]
    fn a_run_holds_rate_times_duration_events() {
        assert_eq!(schedule(1_000.0, 60).events(), 60_000);
        assert_eq!(schedule(0.5, 10).events(), 5);
        assert_eq!(schedule(0.29, 100).events(), 29);
        assert_eq!(schedule(2.5, 3).events(), 7);
    }

    #[test]
    fn events_are_spaced_one_over_the_rate_apart() {
        let s = schedule(1_000.0, 1);
        assert_eq!(s.due_at_us(0), 0);
        assert_eq!(s.due_at_us(1), 1_000);
        assert_eq!(s.due_at_us(999), 999_000);
        let slow = schedule(0.5, 10);
        assert_eq!(slow.due_at_us(4), 8_000_000);
    }

    #[test]
    fn due_by_counts_the_events_whose_time_has_come() {
        let s = schedule(1_000.0, 1);
        assert_eq!(s.due_by(0), 1, "the first event leaves at once");
        assert_eq!(s.due_by(999), 1);
        assert_eq!(s.due_by(1_000), 2);
        assert_eq!(s.due_by(10_500), 11);
        assert_eq!(s.due_by(u64::MAX), 1_000, "never more than the run holds");
    }

    #[test]
    fn due_by_agrees_with_due_at_for_awkward_rates() {
        for rate in [3.0, 7.0, 0.3, 1.1, 333.0, 9_999.0, 12_345.678] {
            let s = schedule(rate, 5);
            for seq in 0..s.events() {
                let at = s.due_at_us(seq);
                assert!(s.due_by(at) > seq, "rate {rate}: event {seq} due at {at} µs is not counted then");
                if at > 0 {
                    assert!(s.due_by(at - 1) <= seq, "rate {rate}: event {seq} counted before {at} µs");
                }
            }
        }
    }

    #[test]
    fn refuses_rates_that_schedule_nothing_or_too_much() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_RATE * 2.0] {
            assert!(Schedule::new(rate, Duration::from_secs(1)).is_err(), "rate {rate}");
        }
        let err = Schedule::new(0.1, Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("schedules no event"), "{err}");
        let err = Schedule::new(MAX_RATE, Duration::from_secs(101)).unwrap_err();
        assert!(err.to_string().contains("101000000 events"), "{err}");
    }
}
