//! The hyper accept loop, shared by both listeners: the connection cap, the head and body
//! deadlines, graceful shutdown and request ids.
//!
//! A connection costs a file descriptor and a task, so none is held for free: each waits for a
//! free slot before it is accepted (at the cap, newcomers wait in the kernel's backlog), and each
//! must send a complete request head within the head deadline — counted from accept, then from
//! each response — or it is closed, whatever it sent meanwhile. That one rule covers HTTP/1.1
//! keep-alive, HTTP/2 and the protocol sniffing before either, which hyper leaves without a limit.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::CONNECTION;
use http::{HeaderValue, StatusCode, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::config::ConnectionLimits;
use crate::http_util::{Body, RequestBody};
use crate::routes::{Listener, route};

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection closed for sending no request head may take to say goodbye (HTTP/2's
/// GOAWAY) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The pause after the first failed accept; it doubles with each failure in a row.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest pause after failed accepts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

pub(crate) async fn serve(listener: TcpListener, state: Arc<AppState>, which: Listener, shutdown: CancellationToken) {
    let limits = state.config.connections;
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let builder = Arc::new(connection_builder(&limits));
    let mut failed_accepts = 0u32;
    loop {
        // A slot first, then the accept: at the cap the listener stops accepting, so newcomers
        // wait (in the kernel's backlog) instead of being accepted only to be dropped.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failed_accepts = 0;
                stream
            }
            // The peer gave up before its connection was accepted: nothing is wrong here.
            Err(error) if is_peer_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors (EMFILE, ENFILE) or memory: retrying at once would spin
                // a core while nothing frees up, so wait, longer after each failure in a row.
                failed_accepts = failed_accepts.saturating_add(1);
                let pause = accept_backoff(failed_accepts);
                tracing::warn!(%error, failed_accepts, pause_ms = pause.as_millis(), "accept failed; pausing");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: Arc::clone(&builder),
            state: Arc::clone(&state),
            which,
            limits,
            shutdown: shutdown.clone(),
            _slot: slot,
        };
        tokio::spawn(connection.serve(stream));
    }
    drop(listener);
    // Each connection gives its slot back when it ends, within the drain timeout of shutdown.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT + CLOSE_GRACE, slots.acquire_many(limits.max_connections)).await;
    if drained.is_err() {
        tracing::warn!("some connections were still busy after the drain timeout");
    }
}

/// HTTP/1.1 and HTTP/2 (by prior knowledge), with HTTP/2 keep-alive pings so that a peer that
/// vanished mid-request is noticed.
fn connection_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The head deadline is enforced per connection (see `Connection::serve`) for both protocols
    // and for the sniffing before either; hyper's own HTTP/1 timer would be a second copy of it,
    // counted differently.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
    builder
}

/// Whether a failed accept was the peer's doing (it reset or abandoned the connection before it
/// was accepted), as opposed to this process running out of something.
fn is_peer_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset)
}

/// The pause after `failures` failed accepts in a row: doubling from 10 ms, at most 1 s.
fn accept_backoff(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
    ACCEPT_BACKOFF_FIRST.saturating_mul(factor).min(ACCEPT_BACKOFF_MAX)
}

/// One accepted connection and what it needs to be served.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<AppState>,
    which: Listener,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    /// Held for as long as the connection is open: its place under the listener's cap.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves requests until the client closes the connection, sends no request head within the
    /// head deadline, or shutdown asks every connection to finish.
    async fn serve(self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let service = service_fn({
            let (activity, state, which) = (Arc::clone(&activity), Arc::clone(&self.state), self.which);
            move |request: http::Request<Incoming>| {
                // hyper calls the service once a request's head is complete; the connection is
                // busy from here until the response is ready.
                let busy = activity.request_started();
                let state = Arc::clone(&state);
                async move {
                    let response = handle(&state, which, request).await;
                    drop(busy);
                    response
                }
            }
        });
        let connection = self.builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let (reason, grace) = tokio::select! {
            outcome = connection.as_mut() => {
                if let Err(error) = outcome {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = self.shutdown.cancelled() => ("shutting down", DRAIN_TIMEOUT),
            () = activity.idle_for(self.limits.head_timeout) => ("no request head within the deadline", CLOSE_GRACE),
        };
        tracing::debug!(reason, "closing a connection");
        // Lets a request in flight finish (on shutdown) and an HTTP/2 client learn why; a client
        // that does not let the connection end within the grace is dropped.
        connection.as_mut().graceful_shutdown();
        if let Ok(Err(error)) = tokio::time::timeout(grace, connection).await {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// Whether a connection has requests in flight and, when it has none, since when: the moment its
/// head deadline counts from.
struct Activity {
    state: watch::Sender<Idle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Idle {
    in_flight: usize,
    since: Instant,
}

impl Activity {
    /// A connection accepted now.
    fn new() -> Self {
        Self { state: watch::Sender::new(Idle { in_flight: 0, since: Instant::now() }) }
    }

    /// Marks a request in flight until the guard is dropped.
    fn request_started(self: &Arc<Self>) -> Busy {
        self.state.send_modify(|idle| idle.in_flight = idle.in_flight.saturating_add(1));
        Busy(Arc::clone(self))
    }

    /// Returns once the connection has gone `limit` without a request in flight.
    async fn idle_for(&self, limit: Duration) {
        let mut changes = self.state.subscribe();
        loop {
            let deadline = head_deadline(*changes.borrow_and_update(), limit);
            let changed = async {
                // The sender lives as long as `self`; should it ever go, only the deadline is left.
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            match deadline {
                Some(deadline) => tokio::select! {
                    () = tokio::time::sleep_until(deadline) => return,
                    () = changed => {}
                },
                None => changed.await,
            }
        }
    }
}

/// A request in flight on a connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.state.send_modify(|idle| {
            idle.in_flight = idle.in_flight.saturating_sub(1);
            if idle.in_flight == 0 {
                idle.since = Instant::now();
            }
        });
    }
}

/// When a connection in state `idle` must have sent its next complete request head: `limit` after
/// it last had nothing in flight, and no deadline while a request is in flight (a stalled body has
/// its own deadline) or when `limit` is beyond the clock's range.
fn head_deadline(idle: Idle, limit: Duration) -> Option<Instant> {
    if idle.in_flight > 0 { None } else { idle.since.checked_add(limit) }
}

async fn handle(
    state: &Arc<AppState>,
    which: Listener,
    request: http::Request<Incoming>,
) -> Result<http::Response<Body>, Infallible> {
    let request_id = request
        .headers()
        .get("x-request-id")
        .filter(|v| v.len() <= 200 && v.to_str().is_ok_and(|s| !s.is_empty()))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a uuid is a header value"));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let version = request.version();
    let stall_timeout = state.config.connections.body_stall_timeout;
    let request = request.map(|body| RequestBody::new(body, stall_timeout));
    let (mut response, _matched) = route(state, which, request).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT && version <= Version::HTTP_11 {
        // The rest of the stalled body would be read as the next request's head: this connection
        // can carry nothing more, and the client should know it.
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response.headers_mut().insert("x-request-id", request_id.clone());
    tracing::debug!(%method, %path, status = response.status().as_u16(), request_id = ?request_id, "request");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_deadline_runs_only_while_nothing_is_in_flight() {
        let since = Instant::now();
        let limit = Duration::from_secs(10);
        assert_eq!(head_deadline(Idle { in_flight: 0, since }, limit), Some(since + limit));
        assert_eq!(head_deadline(Idle { in_flight: 1, since }, limit), None);
        assert_eq!(head_deadline(Idle { in_flight: 0, since }, Duration::MAX), None, "beyond the clock: never");
    }

    #[tokio::test]
    async fn a_finished_request_restarts_the_head_deadline() {
        let activity = Arc::new(Activity::new());
        let accepted = activity.state.borrow().since;
        let busy = activity.request_started();
        assert_eq!(head_deadline(*activity.state.borrow(), Duration::from_secs(1)), None);
        let second = activity.request_started();
        drop(busy);
        assert_eq!(activity.state.borrow().in_flight, 1, "still busy with the second request");
        drop(second);
        let idle = *activity.state.borrow();
        assert_eq!(idle.in_flight, 0);
        assert!(idle.since >= accepted, "the deadline counts from the last response, not from accept");
    }

    #[tokio::test]
    async fn an_idle_connection_is_let_go_once_the_limit_passes_and_not_while_busy() {
        let activity = Arc::new(Activity::new());
        let busy = activity.request_started();
        // Busy: no deadline, however short the limit.
        let waited = tokio::time::timeout(Duration::from_millis(50), activity.idle_for(Duration::ZERO)).await;
        assert!(waited.is_err(), "a busy connection counted as idle");
        drop(busy);
        let waited = tokio::time::timeout(Duration::from_secs(5), activity.idle_for(Duration::from_millis(10))).await;
        assert!(waited.is_ok(), "an idle connection was never let go");
    }

    #[test]
    fn failed_accepts_back_off_exponentially_up_to_a_second() {
        let pauses: Vec<u128> =
            [1, 2, 3, 7, 8, 9, 40, u32::MAX].iter().map(|&n| accept_backoff(n).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 640, 1_000, 1_000, 1_000, 1_000]);
        assert_eq!(accept_backoff(0), ACCEPT_BACKOFF_FIRST);
    }

    #[test]
    fn only_what_the_peer_did_is_retried_without_a_pause() {
        use std::io::{Error, ErrorKind};
        assert!(is_peer_error(&Error::from(ErrorKind::ConnectionAborted)));
        assert!(!is_peer_error(&Error::from_raw_os_error(24)), "EMFILE must back off");
        assert!(!is_peer_error(&Error::from(ErrorKind::OutOfMemory)));
    }
}
