//! The open-loop load: a clock that makes events due on the schedule, and `connections` senders,
//! each with one keep-alive connection, that take the next due event as soon as they are free.
//! When every connection is busy, due events wait; the wait counts in their latency, because
//! latency runs from the scheduled send time, not from the moment a connection was free.
//!
//! One request carries one event (`POST /v1/events`). A batch mode would make each claimed slot a
//! run of consecutive events sent in one request, each still measured from its own due time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{self, Call};
use crate::event::EventShape;
use crate::schedule::Schedule;
use crate::setup::Customer;
use crate::stats::{Outcome, Tally};

/// How long one ingest request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the load needs.
pub struct Load {
    /// When events are due.
    pub schedule: Schedule,
    /// How their bodies look.
    pub shape: EventShape,
    /// Who sends them: event `n` goes as customer `n % customers.len()`.
    pub customers: Arc<[Customer]>,
    /// `POST` target.
    pub events_url: String,
    /// Concurrent keep-alive connections.
    pub connections: u32,
    /// Where the outcome goes.
    pub tally: Arc<Tally>,
    /// The instant the schedule counts from.
    pub start: Instant,
}

/// Runs the load until every due event has been sent and answered; `stop` ends the schedule early
/// (events already due are still sent).
pub async fn run(load: Load, connector: HttpsConnector<HttpConnector>, stop: CancellationToken) {
    let load = Arc::new(load);
    let gate = Arc::new(Gate {
        due: Semaphore::new(0),
        next: AtomicU64::new(0),
        limit: AtomicU64::new(load.schedule.events()),
    });
    let first_failures = Arc::new(FirstFailures::default());
    let mut senders = JoinSet::new();
    for _ in 0..load.connections {
        let sender = Sender {
            load: Arc::clone(&load),
            http: client::client(connector.clone(), 1),
            gate: Arc::clone(&gate),
            first_failures: Arc::clone(&first_failures),
        };
        senders.spawn(sender.run());
    }
    clock(&load.schedule, load.start, load.connections, &gate, &stop).await;
    while let Some(result) = senders.join_next().await {
        if let Err(error) = result {
            tracing::error!(%error, "a sender ended abnormally");
        }
    }
}

/// Hands due events to the senders: one permit per due event, taken by whichever sender is free
/// first. A semaphore wakes exactly as many waiting senders as events became due.
struct Gate {
    due: Semaphore,
    /// The next event to send.
    next: AtomicU64,
    /// Events from this number on are not sent: the run's end, or where it was stopped.
    limit: AtomicU64,
}

/// Releases events on schedule until all are due or `stop` is cancelled, then one permit more per
/// sender, which each sender takes as its sign to finish.
async fn clock(schedule: &Schedule, start: Instant, connections: u32, gate: &Gate, stop: &CancellationToken) {
    let mut released = 0;
    while released < schedule.events() {
        let at = start + Duration::from_micros(schedule.due_at_us(released));
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(at) => {}
        }
        // Timers wake late and at a coarse grain: release every event whose time has come, so
        // that at high rates one wake-up releases many events, each with its own due time.
        let due = schedule.due_by(micros_since(start));
        gate.due.add_permits(usize::try_from(due - released).unwrap_or(usize::MAX));
        released = due;
    }
    // Lowered before the closing permits go out, so that no sender takes an event past it.
    gate.limit.store(released, Ordering::SeqCst);
    gate.due.add_permits(connections as usize);
}

struct Sender {
    load: Arc<Load>,
    http: client::HttpClient,
    gate: Arc<Gate>,
    first_failures: Arc<FirstFailures>,
}

impl Sender {
    async fn run(self) {
        loop {
            match self.gate.due.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
            let seq = self.gate.next.fetch_add(1, Ordering::SeqCst);
            if seq >= self.gate.limit.load(Ordering::SeqCst) {
                return;
            }
            self.send(seq).await;
        }
    }

    async fn send(&self, seq: u64) {
        let load = &*self.load;
        let scheduled_us = load.schedule.due_at_us(seq);
        let customer = &load.customers[(seq % load.customers.len() as u64) as usize];
        let body = Bytes::from(load.shape.body(seq, scheduled_us));
        let left_us = micros_since(load.start);
        load.tally.on_sent(left_us);
        let call = Call { method: Method::POST, url: &load.events_url, authorization: &customer.authorization, body };
        let result = client::send(&self.http, call, REQUEST_TIMEOUT).await;
        let answered_us = micros_since(load.start);
        let outcome = Outcome::of(result.as_ref().ok().map(|answer| answer.status.as_u16()));
        if outcome != Outcome::Accepted {
            self.first_failures.warn_once(seq, &result, outcome);
        }
        load.tally.on_answer(seq, scheduled_us, left_us, answered_us, outcome);
    }
}

/// Whether the run has logged a refusal and an error yet: the first of each usually explains all
/// the others, which are counted, not logged.
#[derive(Default)]
struct FirstFailures {
    rejected: AtomicBool,
    failed: AtomicBool,
}

impl FirstFailures {
    fn warn_once(&self, seq: u64, result: &Result<client::Answer, String>, outcome: Outcome) {
        let first = if outcome == Outcome::Rejected { &self.rejected } else { &self.failed };
        if !first.swap(true, Ordering::Relaxed) {
            let detail = match result {
                Ok(answer) => answer.detail(),
                Err(error) => error.clone(),
            };
            tracing::warn!(seq, ?outcome, %detail, "first request of the run that was not accepted (later ones are counted, not logged)");
        }
    }
}

/// Microseconds since `start` (on tokio's clock, which tests can pause).
pub fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(events: u64) -> Gate {
        Gate { due: Semaphore::new(0), next: AtomicU64::new(0), limit: AtomicU64::new(events) }
    }

    #[tokio::test]
    async fn the_clock_releases_every_event_on_time_whether_or_not_anyone_sends_it() {
        // Open loop: nobody takes the permits here, as if every connection hung, and still every
        // event becomes due, none before its time.
        let schedule = Schedule::new(100.0, Duration::from_secs(1)).unwrap();
        let gate = gate(schedule.events());
        let start = Instant::now();
        clock(&schedule, start, 3, &gate, &CancellationToken::new()).await;
        assert!(start.elapsed() >= Duration::from_millis(990), "the last event is due at 0.99 s");
        assert_eq!(gate.due.available_permits(), 100 + 3, "every event, and one closing permit per sender");
        assert_eq!(gate.limit.load(Ordering::SeqCst), 100);
    }

    #[tokio::test]
    async fn stopping_the_clock_keeps_only_the_events_already_due() {
        let schedule = Schedule::new(10.0, Duration::from_secs(10)).unwrap();
        let gate = Arc::new(gate(schedule.events()));
        let stop = CancellationToken::new();
        let clock = {
            let (gate, stop) = (Arc::clone(&gate), stop.clone());
            tokio::spawn(async move { clock(&schedule, Instant::now(), 2, &gate, &stop).await })
        };
        while gate.due.available_permits() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), clock).await.expect("the clock stops").unwrap();
        let limit = gate.limit.load(Ordering::SeqCst);
        assert!((2..100).contains(&limit), "stopped after {limit} events");
        assert_eq!(gate.due.available_permits() as u64, limit + 2, "the events already due, and the closing permits");
    }
}
