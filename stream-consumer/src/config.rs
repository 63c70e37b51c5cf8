//! The consumer's tuning, and the one home of its defaults: the command line falls back to these
//! same constants.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::delivery::RetryPolicy;

/// The contract's retry schedule: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3_600),
    Duration::from_secs(3 * 3_600),
    Duration::from_secs(6 * 3_600),
];
/// The contract's cap on an endpoint's `Retry-After`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);
/// The contract's attempt timeout.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The contract's failover time.
pub const DEFAULT_FAILOVER_TIME: Duration = Duration::from_secs(10);
/// The worker id of the embedded mode, stable across restarts of its one process.
pub const DEFAULT_WORKER_ID: &str = "local";

/// How the consumer behaves; the defaults are the contract's.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// This worker's name in the lease table. Keep it stable across restarts of one process so that
    /// a restarted worker takes its own leases back; never give two running processes the same one
    /// (the second refuses to run).
    pub worker_id: String,
    /// How long a lease lives without renewal before another worker may take it.
    pub failover_time: Duration,
    /// The retry schedule and the cap on `Retry-After`.
    pub retry: RetryPolicy,
    /// How long one delivery attempt may take.
    pub attempt_timeout: Duration,
    /// Whether webhooks may connect to loopback, private, link-local or metadata addresses.
    pub allow_private_webhooks: bool,
    /// Most records read per batch.
    pub batch_size: usize,
    /// How long a caught-up reader waits before reading again.
    pub idle_poll: Duration,
    /// How often the subscription cache reloads.
    pub subscription_refresh: Duration,
    /// How often the retry queue is polled.
    pub retry_poll: Duration,
    /// The longest any one store or stream call may take before it counts as failed: no call
    /// (the AWS SDK sets no timeout of its own) may hold a worker, a renewal or the retry loop.
    pub call_timeout: Duration,
    /// The pauses of a shard worker whose stream or stores keep failing.
    pub shard_backoff: Backoff,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            worker_id: DEFAULT_WORKER_ID.into(),
            failover_time: DEFAULT_FAILOVER_TIME,
            retry: RetryPolicy::default(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            allow_private_webhooks: false,
            batch_size: 500,
            idle_poll: Duration::from_millis(100),
            subscription_refresh: Duration::from_secs(1),
            retry_poll: Duration::from_millis(250),
            call_timeout: Duration::from_secs(5),
            shard_backoff: Backoff { base: Duration::from_millis(250), ceiling: Duration::from_secs(30) },
        }
    }
}

impl ConsumerConfig {
    /// How often held leases are renewed: a third of the failover time, so two renewals can fail
    /// before another worker may take over.
    pub fn renew_interval(&self) -> Duration {
        self.failover_time / 3
    }

    /// How long one renewal may take: it must end before the next is due.
    pub fn renew_timeout(&self) -> Duration {
        self.call_timeout.min(self.renew_interval())
    }
}
