//! The open-loop load: a clock that makes events due on the schedule, and `connections` senders,
//! each with one keep-alive connection, that take the next due event as soon as they are free.
//! When every connection is busy, due events wait; the wait counts in their latency, because
//! latency runs from the scheduled send time, not from the moment a connection was free.
//!
//! One request carries one event (`POST /v1/events`). A batch mode would make each claimed slot a
//! run of consecutive events sent in one request, each still measured from its own due time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::watch;
use tokio::task::JoinSet;
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
    let (due_tx, due_rx) = watch::channel(0_u64);
    let next = Arc::new(AtomicU64::new(0));
    let first_failures = Arc::new(FirstFailures::default());
    let mut senders = JoinSet::new();
    for _ in 0..load.connections {
        let sender = Sender {
            load: Arc::clone(&load),
            http: client::client(connector.clone(), 1),
            next: Arc::clone(&next),
            due: due_rx.clone(),
            first_failures: Arc::clone(&first_failures),
        };
        senders.spawn(sender.run());
    }
    drop(due_rx);
    clock(&load, &due_tx, &stop).await;
    drop(due_tx);
    while let Some(result) = senders.join_next().await {
        if let Err(error) = result {
            tracing::error!(%error, "a sender ended abnormally");
        }
    }
}

/// Publishes how many events are due, on schedule, until all are or `stop` is cancelled.
async fn clock(load: &Load, due_tx: &watch::Sender<u64>, stop: &CancellationToken) {
    let schedule = &load.schedule;
    let mut due = 0;
    while due < schedule.events() {
        let at = load.start + Duration::from_micros(schedule.due_at_us(due));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(at.into()) => {}
        }
        // Timers wake late and at a coarse grain: publish every event whose time has come, so
        // that at high rates one wake-up releases many events, each with its own due time.
        due = schedule.due_by(micros_since(load.start));
        due_tx.send_replace(due);
    }
}

struct Sender {
    load: Arc<Load>,
    http: client::HttpClient,
    next: Arc<AtomicU64>,
    due: watch::Receiver<u64>,
    first_failures: Arc<FirstFailures>,
}

impl Sender {
    async fn run(mut self) {
        let mut closed = false;
        loop {
            let due = *self.due.borrow_and_update();
            if let Ok(seq) = self.next.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < due).then_some(n + 1))
            {
                self.send(seq).await;
                continue;
            }
            if closed {
                return;
            }
            if self.due.changed().await.is_err() {
                // The clock is done: take what is left, then stop.
                closed = true;
            }
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

/// Microseconds since `start`.
pub fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}
