//! The hyper accept loop, shared by both listeners, with graceful shutdown and request ids.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::http_util::Body;
use crate::routes::{Listener, route};

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn serve(listener: TcpListener, state: Arc<AppState>, which: Listener, shutdown: CancellationToken) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Running out of file descriptors must not end the server; wait and go on.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let service = service_fn(move |request| handle(Arc::clone(&state), which, request));
        let connection = connection_builder().serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still busy after the drain timeout");
    }
}

/// HTTP/1 and HTTP/2 with a deadline on request heads, so that a client trickling its headers
/// (slowloris) cannot hold a connection open indefinitely.
fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

async fn handle(
    state: Arc<AppState>,
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
    let mut response = route(&state, which, request).await;
    response.headers_mut().insert("x-request-id", request_id.clone());
    tracing::debug!(%method, %path, status = response.status().as_u16(), request_id = ?request_id, "request");
    Ok(response)
}
