//! What the run observed: each event's fate, the counters, and the latency histograms, overall and
//! per second. Written concurrently by the connections and the webhook receiver; read by the
//! progress bar while running and by the summary at the end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use hdrhistogram::{Counter, Histogram};

/// Latencies are recorded in microseconds and clamped to an hour: a longer one is recorded as an
/// hour, which the report's `max` then shows.
pub const MAX_LATENCY_US: u64 = 3_600 * 1_000_000;

/// The longest run the per-second timeline holds; later seconds fold into the last one.
pub const MAX_TIMELINE_SECONDS: usize = 2 * 3_600;

const ACCEPTED: u8 = 1;
const DELIVERED: u8 = 2;

/// How an ingest request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `202`: the deployment holds the event durably.
    Accepted,
    /// Any other answer below 500 (a `429` over the rate limit, a `413`, …): refused, not failed.
    Rejected,
    /// A `5xx`, no answer within the request timeout, or a broken connection.
    Error,
}

impl Outcome {
    /// The outcome of an answer with `status`, or of no answer at all (`None`).
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(202) => Self::Accepted,
            Some(status) if status < 500 => Self::Rejected,
            _ => Self::Error,
        }
    }
}

/// Whether a webhook brought news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The first arrival of this event: it counts, and its latency is recorded.
    First,
    /// The event arrived before (at-least-once delivery): counted once already.
    Duplicate,
    /// No event of this run has that number.
    Unknown,
}

/// The fate of every event of the run: accepted or not, received or not. One byte each.
#[derive(Debug)]
pub struct EventStates {
    flags: Vec<AtomicU8>,
    accepted: AtomicU64,
    delivered: AtomicU64,
    accepted_and_delivered: AtomicU64,
}

impl EventStates {
    /// `events` events, none accepted nor received yet.
    pub fn new(events: u64) -> Self {
        let flags = (0..events).map(|_| AtomicU8::new(0)).collect();
        Self {
            flags,
            accepted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            accepted_and_delivered: AtomicU64::new(0),
        }
    }

    /// Event `seq` was answered `202`.
    pub fn mark_accepted(&self, seq: u64) {
        if let Some(previous) = self.set(seq, ACCEPTED)
            && previous & ACCEPTED == 0
        {
            self.accepted.fetch_add(1, Ordering::Relaxed);
            // The webhook can overtake the 202: the event may already be delivered.
            if previous & DELIVERED != 0 {
                self.accepted_and_delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Event `seq` reached the receiver.
    pub fn mark_delivered(&self, seq: u64) -> Receipt {
        let Some(previous) = self.set(seq, DELIVERED) else { return Receipt::Unknown };
        if previous & DELIVERED != 0 {
            return Receipt::Duplicate;
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if previous & ACCEPTED != 0 {
            self.accepted_and_delivered.fetch_add(1, Ordering::Relaxed);
        }
        Receipt::First
    }

    /// Events answered `202`.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Distinct events received (an event delivered twice counts once).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Accepted events that have not reached the receiver (yet): lost, when the wait is over.
    pub fn lost(&self) -> u64 {
        self.accepted().saturating_sub(self.accepted_and_delivered.load(Ordering::Relaxed))
    }

    fn set(&self, seq: u64, flag: u8) -> Option<u8> {
        let slot = self.flags.get(usize::try_from(seq).ok()?)?;
        Some(slot.fetch_or(flag, Ordering::Relaxed))
    }
}

/// A latency histogram in microseconds (3 significant digits for the whole run).
pub fn run_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// A histogram for one second of the timeline: 2 significant digits (1%), which is plenty for a
/// plot, and it grows only as far as the latencies it holds, so that an hour of seconds stays small.
fn second_histogram() -> Histogram<u32> {
    Histogram::new(2).expect("constant precision is valid")
}

/// Records `us`, clamped to [`MAX_LATENCY_US`].
pub fn record<T: Counter>(histogram: &mut Histogram<T>, us: u64) {
    let us = us.min(MAX_LATENCY_US);
    // Auto-resizing histograms grow to hold it; fixed ones already do, up to MAX_LATENCY_US.
    if histogram.record(us).is_err() {
        histogram.saturating_record(us);
    }
}

/// What happened in one second of the run. The counts are what happened during that second (a
/// request left, a `202` came back, a webhook arrived); the latencies are those of the events
/// *scheduled* in that second, so that a stall shows at the moment the load met it.
#[derive(Debug, Clone)]
pub struct Second {
    /// Requests that left.
    pub sent: u64,
    /// `202` answers that arrived.
    pub accepted: u64,
    /// Refusals that arrived.
    pub rejected: u64,
    /// Errors that happened.
    pub errors: u64,
    /// First arrivals of events at the receiver.
    pub delivered: u64,
    /// Ingest latency of the events scheduled in this second.
    pub ingest: Histogram<u32>,
    /// End-to-end latency of the events scheduled in this second.
    pub e2e: Histogram<u32>,
}

impl Default for Second {
    fn default() -> Self {
        Self {
            sent: 0,
            accepted: 0,
            rejected: 0,
            errors: 0,
            delivered: 0,
            ingest: second_histogram(),
            e2e: second_histogram(),
        }
    }
}

/// The run second by second.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    seconds: Vec<Second>,
}

impl Timeline {
    /// The bucket of the second holding `us` (µs after the start), created on first use.
    pub fn at(&mut self, us: u64) -> &mut Second {
        let index = usize::try_from(us / 1_000_000).unwrap_or(usize::MAX).min(MAX_TIMELINE_SECONDS - 1);
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Second::default);
        }
        &mut self.seconds[index]
    }

    /// Every second from the start to the last one anything happened in.
    pub fn seconds(&self) -> &[Second] {
        &self.seconds
    }
}

/// The counters of the run at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests that left the tester.
    pub sent: u64,
    /// Requests answered `202`.
    pub accepted: u64,
    /// Requests refused (see [`Outcome::Rejected`]).
    pub rejected: u64,
    /// Requests that failed (see [`Outcome::Error`]).
    pub errors: u64,
    /// Distinct events received.
    pub delivered: u64,
    /// Accepted events not received (yet).
    pub lost: u64,
    /// Arrivals of an event already received.
    pub duplicates: u64,
    /// Webhooks whose signature did not verify (answered `401`, not counted as received).
    pub bad_signatures: u64,
    /// Webhooks that were not this run's (answered `410` or `400`, not counted).
    pub strays: u64,
}

/// Everything the run observed; shared by the connections, the receiver and the progress bar.
#[derive(Debug)]
pub struct Tally {
    events: EventStates,
    sent: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    duplicates: AtomicU64,
    bad_signatures: AtomicU64,
    strays: AtomicU64,
    last_send_us: AtomicU64,
    latencies: Mutex<Latencies>,
}

/// The latency histograms of the run and its timeline.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Scheduled send to `202`, every accepted event.
    pub ingest: Histogram<u64>,
    /// Scheduled send to the first webhook arrival, every received event.
    pub e2e: Histogram<u64>,
    /// Second by second.
    pub timeline: Timeline,
}

impl Tally {
    /// A tally for a run of `events` events.
    pub fn new(events: u64) -> Self {
        Self {
            events: EventStates::new(events),
            sent: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            strays: AtomicU64::new(0),
            last_send_us: AtomicU64::new(0),
            latencies: Mutex::new(Latencies {
                ingest: run_histogram(),
                e2e: run_histogram(),
                timeline: Timeline::default(),
            }),
        }
    }

    /// A request left `left_us` after the start.
    pub fn on_sent(&self, left_us: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.last_send_us.fetch_max(left_us, Ordering::Relaxed);
    }

    /// The request of event `seq`, due at `scheduled_us`, which left at `left_us`, ended at
    /// `answered_us` with `outcome`.
    pub fn on_answer(&self, seq: u64, scheduled_us: u64, left_us: u64, answered_us: u64, outcome: Outcome) {
        match outcome {
            Outcome::Accepted => self.events.mark_accepted(seq),
            Outcome::Rejected => _ = self.rejected.fetch_add(1, Ordering::Relaxed),
            Outcome::Error => _ = self.errors.fetch_add(1, Ordering::Relaxed),
        }
        let mut latencies = self.lock();
        latencies.timeline.at(left_us).sent += 1;
        let second = latencies.timeline.at(answered_us);
        match outcome {
            Outcome::Accepted => second.accepted += 1,
            Outcome::Rejected => second.rejected += 1,
            Outcome::Error => second.errors += 1,
        }
        if outcome == Outcome::Accepted {
            let latency = answered_us.saturating_sub(scheduled_us);
            record(&mut latencies.ingest, latency);
            record(&mut latencies.timeline.at(scheduled_us).ingest, latency);
        }
    }

    /// Event `seq`, due at `scheduled_us`, reached the receiver at `arrived_us`.
    pub fn on_delivery(&self, seq: u64, scheduled_us: u64, arrived_us: u64) -> Receipt {
        let receipt = self.events.mark_delivered(seq);
        match receipt {
            Receipt::First => {
                let latency = arrived_us.saturating_sub(scheduled_us);
                let mut latencies = self.lock();
                record(&mut latencies.e2e, latency);
                latencies.timeline.at(arrived_us).delivered += 1;
                record(&mut latencies.timeline.at(scheduled_us).e2e, latency);
            }
            Receipt::Duplicate => _ = self.duplicates.fetch_add(1, Ordering::Relaxed),
            Receipt::Unknown => _ = self.strays.fetch_add(1, Ordering::Relaxed),
        }
        receipt
    }

    /// A webhook whose signature did not verify.
    pub fn on_bad_signature(&self) {
        self.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook that was not one of this run's events.
    pub fn on_stray(&self) {
        self.strays.fetch_add(1, Ordering::Relaxed);
    }

    /// When the last request left, in µs after the start (0 before any did).
    pub fn last_send_us(&self) -> u64 {
        self.last_send_us.load(Ordering::Relaxed)
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        Counts {
            sent: self.sent.load(Ordering::Relaxed),
            accepted: self.events.accepted(),
            rejected: self.rejected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            delivered: self.events.delivered(),
            lost: self.events.lost(),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            bad_signatures: self.bad_signatures.load(Ordering::Relaxed),
            strays: self.strays.load(Ordering::Relaxed),
        }
    }

    /// A copy of the histograms and the timeline now.
    pub fn latencies(&self) -> Latencies {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latencies> {
        // A panic while holding the lock cannot leave the histograms half-written in a way that
        // matters to a report, so a poisoned lock is used as it is.
        self.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(Outcome::of(Some(202)), Outcome::Accepted);
        for status in [200, 201, 302, 400, 401, 409, 413, 422, 429] {
            assert_eq!(Outcome::of(Some(status)), Outcome::Rejected, "{status}");
        }
        for status in [Some(500), Some(502), Some(503), None] {
            assert_eq!(Outcome::of(status), Outcome::Error, "{status:?}");
        }
    }

    #[test]
    fn lost_counts_accepted_events_that_never_arrived() {
        let states = EventStates::new(6);
        for seq in 0..5 {
            states.mark_accepted(seq);
        }
        assert_eq!(states.lost(), 5);
        assert_eq!(states.mark_delivered(0), Receipt::First);
        assert_eq!(states.mark_delivered(1), Receipt::First);
        assert_eq!(states.mark_delivered(1), Receipt::Duplicate, "at-least-once: a second arrival");
        assert_eq!(states.mark_delivered(2), Receipt::First);
        assert_eq!(states.lost(), 2, "events 3 and 4");
        assert_eq!(states.delivered(), 3);
        assert_eq!(states.accepted(), 5);
    }

    #[test]
    fn a_webhook_may_overtake_its_202() {
        let states = EventStates::new(2);
        assert_eq!(states.mark_delivered(0), Receipt::First);
        assert_eq!(states.lost(), 0);
        states.mark_accepted(0);
        states.mark_accepted(0);
        assert_eq!((states.accepted(), states.lost()), (1, 0));
    }

    #[test]
    fn an_event_delivered_but_never_accepted_is_not_lost() {
        // A request that timed out may still have been written: it is delivered, not lost.
        let states = EventStates::new(2);
        states.mark_accepted(1);
        assert_eq!(states.mark_delivered(0), Receipt::First);
        assert_eq!((states.accepted(), states.delivered(), states.lost()), (1, 1, 1));
    }

    #[test]
    fn numbers_outside_the_run_are_unknown() {
        let states = EventStates::new(2);
        assert_eq!(states.mark_delivered(2), Receipt::Unknown);
        assert_eq!(states.mark_delivered(u64::MAX), Receipt::Unknown);
        states.mark_accepted(7);
        assert_eq!((states.accepted(), states.delivered()), (0, 0));
    }

    #[test]
    fn the_tally_files_each_observation_in_its_second() {
        let tally = Tally::new(4);
        tally.on_sent(100);
        tally.on_answer(0, 0, 100, 1_200_000, Outcome::Accepted);
        tally.on_sent(2_000_100);
        tally.on_answer(1, 2_000_000, 2_000_100, 2_000_600, Outcome::Rejected);
        tally.on_sent(2_500_000);
        tally.on_answer(2, 2_500_000, 2_500_000, 2_600_000, Outcome::Error);
        assert_eq!(tally.on_delivery(0, 0, 3_000_000), Receipt::First);
        assert_eq!(tally.on_delivery(0, 0, 3_100_000), Receipt::Duplicate);
        assert_eq!(tally.on_delivery(9, 0, 3_100_000), Receipt::Unknown);
        tally.on_bad_signature();

        let counts = tally.counts();
        assert_eq!(
            counts,
            Counts {
                sent: 3,
                accepted: 1,
                rejected: 1,
                errors: 1,
                delivered: 1,
                lost: 0,
                duplicates: 1,
                bad_signatures: 1,
                strays: 1
            }
        );
        assert_eq!(tally.last_send_us(), 2_500_000);

        let latencies = tally.latencies();
        assert_eq!(latencies.ingest.len(), 1);
        assert_eq!(latencies.ingest.max(), latencies.ingest.highest_equivalent(1_200_000));
        assert_eq!(latencies.e2e.len(), 1);
        let seconds = latencies.timeline.seconds();
        assert_eq!(seconds.len(), 4);
        assert_eq!((seconds[0].sent, seconds[0].accepted, seconds[0].ingest.len(), seconds[0].e2e.len()), (1, 0, 1, 1));
        assert_eq!(seconds[1].accepted, 1, "the 202 came back in second 1");
        assert_eq!((seconds[2].sent, seconds[2].rejected, seconds[2].errors), (2, 1, 1));
        assert_eq!(seconds[3].delivered, 1);
    }

    #[test]
    fn ingest_latency_runs_from_the_scheduled_time_not_from_when_the_request_left() {
        // Due at 0, it waited 0.9 s for a free connection, and was answered 0.1 s after leaving.
        let tally = Tally::new(1);
        tally.on_sent(900_000);
        tally.on_answer(0, 0, 900_000, 1_000_000, Outcome::Accepted);
        let latencies = tally.latencies();
        assert_eq!(latencies.ingest.max(), latencies.ingest.highest_equivalent(1_000_000));
        assert_eq!(latencies.timeline.seconds()[0].sent, 1);
        assert_eq!(latencies.timeline.seconds()[1].accepted, 1);
    }

    #[test]
    fn latencies_beyond_an_hour_are_clamped() {
        let mut histogram = run_histogram();
        record(&mut histogram, u64::MAX);
        assert_eq!(histogram.max(), histogram.highest_equivalent(MAX_LATENCY_US));
        let mut second = second_histogram();
        record(&mut second, u64::MAX);
        record(&mut second, 5);
        assert_eq!(second.len(), 2);
        assert_eq!(second.max(), second.highest_equivalent(MAX_LATENCY_US));
    }

    #[test]
    fn the_timeline_stops_growing_at_its_limit() {
        let mut timeline = Timeline::default();
        timeline.at(u64::MAX).sent += 1;
        assert_eq!(timeline.seconds().len(), MAX_TIMELINE_SECONDS);
        assert_eq!(timeline.seconds()[MAX_TIMELINE_SECONDS - 1].sent, 1);
    }
}
