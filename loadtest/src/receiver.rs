//! The tester's own webhook endpoint: it verifies each webhook's Standard Webhooks signature with
//! the secret of the subscription that sent it, counts each event of the run once, and measures
//! its end-to-end latency from the event's scheduled send time.
//!
//! Answers: `204` for this run's events and probes; `401` for a bad signature (the deployment
//! retries, and the event counts as lost unless a good copy arrives); `410` for anything that is
//! not this run's, so that subscriptions left behind by earlier runs disable themselves; `413` and
//! `408` for bodies over the limit or too slow.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use triggers_schemas::webhook;

use crate::error::LoadtestError;
use crate::event::{Arrival, parse_webhook};
use crate::setup::Customer;
use crate::stats::Tally;

/// The largest webhook body read: an event is at most 1 MiB, the envelope adds little.
pub const MAX_WEBHOOK_BYTES: usize = 2 * 1024 * 1024;
/// How long a webhook may take to send its head, and then its body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A running webhook receiver; it stops listening when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
    stop_on_drop: DropGuard,
}

struct State {
    run: String,
    tally: Arc<Tally>,
    subscriptions: OnceLock<HashMap<String, Subscription>>,
    start: OnceLock<Instant>,
}

struct Subscription {
    signing_secret: String,
    live: AtomicBool,
}

impl Receiver {
    /// Listens on `listen` for the webhooks of `run`, recording them in `tally`.
    pub async fn start(listen: SocketAddr, run: &str, tally: Arc<Tally>) -> Result<Self, LoadtestError> {
        let listener =
            TcpListener::bind(listen).await.map_err(|source| LoadtestError::Listen { addr: listen, source })?;
        let addr = listener.local_addr().map_err(|source| LoadtestError::Listen { addr: listen, source })?;
        let state =
            Arc::new(State { run: run.to_owned(), tally, subscriptions: OnceLock::new(), start: OnceLock::new() });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept(listener, Arc::clone(&state), stop.clone()));
        Ok(Self { addr, state, task, stop_on_drop: stop.drop_guard() })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whom it accepts webhooks from: the customers' subscriptions and their secrets. Until then,
    /// and for any other subscription, it answers `410`.
    pub fn register(&self, customers: &[Customer]) {
        let subscriptions = customers
            .iter()
            .map(|c| {
                let subscription =
                    Subscription { signing_secret: c.signing_secret.clone(), live: AtomicBool::new(false) };
                (c.workflow_id.clone(), subscription)
            })
            .collect();
        if self.state.subscriptions.set(subscriptions).is_err() {
            tracing::warn!("the receiver's subscriptions were registered twice; keeping the first");
        }
    }

    /// Whether `workflow_id` has delivered a probe.
    pub fn is_live(&self, workflow_id: &str) -> bool {
        self.state
            .subscriptions
            .get()
            .and_then(|subscriptions| subscriptions.get(workflow_id))
            .is_some_and(|s| s.live.load(Ordering::Relaxed))
    }

    /// The instant the run's schedule counts from.
    pub fn start_clock(&self, start: Instant) {
        if self.state.start.set(start).is_err() {
            tracing::warn!("the receiver's clock was started twice; keeping the first");
        }
    }

    /// Stops listening and ends its connections.
    pub async fn stop(self) {
        drop(self.stop_on_drop);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the receiver's accept loop ended abnormally");
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(READ_TIMEOUT);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin or stop receiving.
                tracing::warn!(%error, "the receiver could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let service = service_fn(move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(handle(&state, request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                result = connection => if let Err(error) = result {
                    tracing::debug!(%error, "a webhook connection ended with an error");
                },
            }
        });
    }
}

async fn handle(state: &State, request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    if request.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED);
    }
    let headers = request.headers().clone();
    let body = match tokio::time::timeout(READ_TIMEOUT, Limited::new(request.into_body(), MAX_WEBHOOK_BYTES).collect())
        .await
    {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            state.tally.on_stray();
            return answer(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Ok(Err(_)) => return answer(StatusCode::BAD_REQUEST),
        Err(_) => return answer(StatusCode::REQUEST_TIMEOUT),
    };
    let arrived = Instant::now();
    let status = receive(state, &headers, &body, arrived);
    answer(status)
}

/// What the receiver makes of one webhook, and its answer.
fn receive(state: &State, headers: &HeaderMap, body: &[u8], arrived: Instant) -> StatusCode {
    let arrival = match parse_webhook(body, &state.run) {
        Ok(arrival) => arrival,
        Err(error) => {
            tracing::debug!(%error, "a webhook that is not this run's");
            state.tally.on_stray();
            return StatusCode::GONE;
        }
    };
    let workflow_id = match &arrival {
        Arrival::Probe { workflow_id } | Arrival::Event { workflow_id, .. } => workflow_id,
    };
    let Some(subscription) = state.subscriptions.get().and_then(|s| s.get(workflow_id)) else {
        state.tally.on_stray();
        return StatusCode::GONE;
    };
    if !signed_by(headers, body, &subscription.signing_secret) {
        tracing::warn!(workflow_id = %workflow_id, "a webhook whose signature does not verify");
        state.tally.on_bad_signature();
        return StatusCode::UNAUTHORIZED;
    }
    match arrival {
        Arrival::Probe { .. } => subscription.live.store(true, Ordering::Relaxed),
        Arrival::Event { seq, scheduled_us, .. } => {
            let Some(start) = state.start.get() else {
                // No event is sent before the clock starts: this one cannot be of the run.
                state.tally.on_stray();
                return StatusCode::NO_CONTENT;
            };
            let arrived_us = u64::try_from(arrived.saturating_duration_since(*start).as_micros()).unwrap_or(u64::MAX);
            state.tally.on_delivery(seq, scheduled_us, arrived_us);
        }
    }
    StatusCode::NO_CONTENT
}

fn signed_by(headers: &HeaderMap, body: &[u8], secret: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) =
        (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"))
    else {
        return false;
    };
    let Ok(timestamp) = timestamp.parse::<i64>() else { return false };
    webhook::verify(secret, id, timestamp, body, signature)
}

fn answer(status: StatusCode) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counts;

    const RUN: &str = "0123456789abcdef0123456789abcdef";

    fn state() -> State {
        let state = State {
            run: RUN.to_owned(),
            tally: Arc::new(Tally::new(10)),
            subscriptions: OnceLock::new(),
            start: OnceLock::new(),
        };
        let secret = webhook::generate_secret();
        let subscription = Subscription { signing_secret: secret, live: AtomicBool::new(false) };
        state.subscriptions.set(HashMap::from([("wf-1".to_owned(), subscription)])).ok().unwrap();
        state
    }

    fn signed(state: &State, workflow_id: &str, data: &str) -> (HeaderMap, Vec<u8>) {
        let body = format!(r#"{{"event_id":"evt_1","workflow_id":"{workflow_id}","data":{data}}}"#).into_bytes();
        let secret = &state.subscriptions.get().unwrap()["wf-1"].signing_secret;
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "evt_1".parse().unwrap());
        headers.insert("webhook-timestamp", "1700000000".parse().unwrap());
        let signature = webhook::sign(secret, "evt_1", 1_700_000_000, &body).unwrap();
        headers.insert("webhook-signature", signature.parse().unwrap());
        (headers, body)
    }

    fn event(seq: u64, scheduled_us: u64) -> String {
        format!(r#"{{"loadtest":{{"run":"{RUN}","seq":{seq},"scheduled_us":{scheduled_us}}},"padding":""}}"#)
    }

    #[test]
    fn counts_a_signed_event_once_and_measures_it_from_its_schedule() {
        let state = state();
        let start = Instant::now();
        state.start.set(start).unwrap();
        let (headers, body) = signed(&state, "wf-1", &event(3, 1_000));
        let arrived = start + Duration::from_millis(250);
        assert_eq!(receive(&state, &headers, &body, arrived), StatusCode::NO_CONTENT);
        assert_eq!(receive(&state, &headers, &body, arrived), StatusCode::NO_CONTENT);
        let counts = state.tally.counts();
        assert_eq!((counts.delivered, counts.duplicates), (1, 1));
        let e2e = state.tally.latencies().e2e;
        assert_eq!(e2e.max(), e2e.highest_equivalent(249_000));
    }

    #[test]
    fn a_probe_makes_its_subscription_live() {
        let state = state();
        let (headers, body) = signed(&state, "wf-1", &format!(r#"{{"loadtest":{{"run":"{RUN}","probe":true}}}}"#));
        assert_eq!(receive(&state, &headers, &body, Instant::now()), StatusCode::NO_CONTENT);
        assert!(state.subscriptions.get().unwrap()["wf-1"].live.load(Ordering::Relaxed));
        assert_eq!(state.tally.counts(), Counts::default(), "probes are not measured");
    }

    #[test]
    fn refuses_a_bad_signature_without_counting_the_event() {
        let state = state();
        state.start.set(Instant::now()).unwrap();
        let (mut headers, body) = signed(&state, "wf-1", &event(1, 0));
        headers.insert("webhook-timestamp", "1700000001".parse().unwrap());
        assert_eq!(receive(&state, &headers, &body, Instant::now()), StatusCode::UNAUTHORIZED);
        headers.remove("webhook-signature");
        assert_eq!(receive(&state, &headers, &body, Instant::now()), StatusCode::UNAUTHORIZED);
        let counts = state.tally.counts();
        assert_eq!((counts.delivered, counts.bad_signatures), (0, 2));
    }

    #[test]
    fn answers_gone_to_what_is_not_this_runs() {
        let state = state();
        state.start.set(Instant::now()).unwrap();
        let other_run = r#"{"loadtest":{"run":"ffff","seq":1,"scheduled_us":0}}"#;
        for (workflow_id, data) in [("wf-1", other_run), ("wf-unknown", &event(1, 0)), ("wf-1", r#"{"order":1}"#)] {
            let (headers, body) = signed(&state, workflow_id, data);
            assert_eq!(receive(&state, &headers, &body, Instant::now()), StatusCode::GONE, "{workflow_id} {data}");
        }
        let counts = state.tally.counts();
        assert_eq!((counts.delivered, counts.strays), (0, 3));
    }
}
