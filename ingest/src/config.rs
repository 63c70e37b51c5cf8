//! The ingest edge's configuration.

/// How the ingest edge behaves.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The bearer token of the admin API.
    pub admin_token: String,
    /// Whether webhook URLs may be plain `http` (the embedded mode allows it).
    pub allow_http_webhooks: bool,
    /// Whether webhook URLs may point at loopback, private or link-local addresses.
    pub allow_private_webhooks: bool,
}
