//! The ingest edge's configuration.

use std::time::Duration;

/// How the ingest edge behaves.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The bearer token of the admin API.
    pub admin_token: String,
    /// Whether webhook URLs may be plain `http` (the embedded mode allows it).
    pub allow_http_webhooks: bool,
    /// Whether webhook URLs may point at loopback, private or link-local addresses.
    pub allow_private_webhooks: bool,
    /// The deadlines and the cap every listener holds its connections to.
    pub connections: ConnectionLimits,
}

/// What a client may take of a listener, so that silent, slow or numerous connections cannot
/// exhaust it (the contract's "Connections" paragraph).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may go without sending a complete request head, counted from accept
    /// for the first and from the previous response for each next one (HTTP/1.1 keep-alive and
    /// HTTP/2 alike). Past it the connection is closed, whatever it sent meanwhile.
    pub head_timeout: Duration,
    /// How long a request body may send nothing before the request ends with `408`.
    pub body_stall_timeout: Duration,
    /// The most connections one listener holds open; beyond it the listener stops accepting
    /// (new connections wait in the kernel's backlog) until one closes.
    pub max_connections: u32,
    /// How often an HTTP/2 connection is pinged, so that a peer that vanished mid-request is noticed.
    pub http2_keep_alive_interval: Duration,
    /// How long an HTTP/2 ping may go unanswered before the connection is closed.
    pub http2_keep_alive_timeout: Duration,
}

impl ConnectionLimits {
    /// The contract's default of `--max-connections`.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
}

impl Default for ConnectionLimits {
    /// The contract's values: 10 s for a head and for a stalled body, 10,000 connections.
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(10),
            body_stall_timeout: Duration::from_secs(10),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(10),
        }
    }
}
