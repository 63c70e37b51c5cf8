//! What can stop a load test before it reports.

use std::path::PathBuf;

/// Why a run could not produce its summary.
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    /// The options do not describe a run (the command exits with 2, like any usage error).
    #[error("{0}")]
    Usage(String),
    /// The webhook receiver could not listen.
    #[error("cannot listen for webhooks on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A call made while creating customers, keys and subscriptions did not succeed.
    #[error("{action} failed: {detail}")]
    Setup {
        /// What the tester was doing, e.g. `POST http://…/admin/v1/customers`.
        action: String,
        /// The status and problem detail, or the transport error.
        detail: String,
    },
    /// Some subscriptions never delivered a probe event, so measuring would count them as losses.
    #[error(
        "the subscriptions of {pending} of {customers} customers delivered no probe event within {secs} s; is {webhook_url} reachable from the deployment?"
    )]
    NotLive {
        /// Customers whose probe never arrived.
        pending: usize,
        /// Customers created.
        customers: usize,
        /// How long the tester waited.
        secs: u64,
        /// The URL the subscriptions point at.
        webhook_url: String,
    },
    /// The run was interrupted before the measurement started.
    #[error("interrupted before the load started")]
    Interrupted,
    /// The report or its plot could not be written.
    #[error("cannot write {path}: {detail}")]
    Report {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}
