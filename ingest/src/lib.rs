//! The ingest edge: the public API customers call (events, subscriptions) and the admin API
//! operators call (customers, keys), over hyper.
//!
//! **Only `ingest` speaks HTTP to customers.** An event is answered `202` only after the stream
//! has acknowledged it durably; everything before that (authentication, scope, content type,
//! size, JSON, validation, rate limit, idempotency) rejects with an RFC 9457 problem and writes
//! nothing.

mod admin;
mod auth;
mod config;
mod events;
mod http_util;
mod metrics;
mod openapi;
mod ops;
mod routes;
mod server;
mod subscriptions;

use std::sync::Arc;

pub use config::{ConnectionLimits, IngestConfig};
pub use metrics::IngestMetrics;
pub use ops::ReadinessProbe;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triggers_stores::{CustomerStore, EventStore, LimitStore, SubscriptionStore};
use triggers_stream::Stream;

/// The outside dependencies of the ingest edge, each behind its port.
#[derive(Clone)]
pub struct IngestPorts {
    /// Where accepted events are appended.
    pub stream: Arc<dyn Stream>,
    /// Where events are read back (and first recorded as pending).
    pub events: Arc<dyn EventStore>,
    /// Subscriptions.
    pub subscriptions: Arc<dyn SubscriptionStore>,
    /// Customers and API keys.
    pub customers: Arc<dyn CustomerStore>,
    /// Rate limits and idempotency keys.
    pub limits: Arc<dyn LimitStore>,
    /// What else `/readyz` asks about (the consumer's health when it runs in this process).
    pub readiness: Vec<Arc<dyn ReadinessProbe>>,
}

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) ports: IngestPorts,
    pub(crate) config: IngestConfig,
    pub(crate) metrics: Arc<IngestMetrics>,
}

/// Serves the public API on `public` and the admin API on `admin` until `shutdown` is cancelled;
/// then stops accepting connections and waits for in-flight requests to finish.
pub async fn run(
    public: TcpListener,
    admin: TcpListener,
    ports: IngestPorts,
    config: IngestConfig,
    metrics: Arc<IngestMetrics>,
    shutdown: CancellationToken,
) {
    let state = Arc::new(AppState { ports, config, metrics });
    let public_server = server::serve(public, Arc::clone(&state), routes::Listener::Public, shutdown.clone());
    let admin_server = server::serve(admin, state, routes::Listener::Admin, shutdown);
    tokio::join!(public_server, admin_server);
}
