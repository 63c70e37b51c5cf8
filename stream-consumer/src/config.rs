//! The consumer's tuning.

use std::time::Duration;

/// How the consumer behaves; the defaults are the contract's.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// This worker's name in the lease table. Keep it stable across restarts of one process so that
    /// a restarted worker takes its own leases back at once.
    pub worker_id: String,
    /// How long a lease lives without renewal before another worker may take it.
    pub failover_time: Duration,
    /// Delays before each retry after the first attempt; its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    /// How long one delivery attempt may take.
    pub attempt_timeout: Duration,
    /// Most records read per batch.
    pub batch_size: usize,
    /// How long a caught-up reader waits before reading again.
    pub idle_poll: Duration,
    /// How often the subscription cache reloads.
    pub subscription_refresh: Duration,
    /// How often the retry queue is polled.
    pub retry_poll: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            worker_id: "local".into(),
            failover_time: Duration::from_secs(10),
            retry_schedule: crate::retry::parse_schedule("5s,30s,2m,10m,30m,1h,3h,6h")
                .expect("default schedule parses"),
            attempt_timeout: Duration::from_secs(10),
            batch_size: 500,
            idle_poll: Duration::from_millis(100),
            subscription_refresh: Duration::from_secs(1),
            retry_poll: Duration::from_millis(250),
        }
    }
}

impl ConsumerConfig {
    /// How often held leases are renewed: a third of the failover time, so two renewals can fail
    /// before another worker may take over.
    pub fn renew_interval(&self) -> Duration {
        self.failover_time / 3
    }
}
