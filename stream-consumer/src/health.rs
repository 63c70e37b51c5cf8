//! What the consumer tells a readiness probe: which shards are failing right now.

use std::collections::BTreeMap;
use std::sync::Mutex;

use triggers_schemas::Timestamp;
use triggers_stream::ShardId;

/// What a failing shard worker could not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardFailure {
    /// Reading the shard from the stream failed.
    Reading,
    /// Recording deliveries, queueing retries or parking dead letters failed.
    Resolving,
    /// Writing the shard's checkpoint failed.
    Checkpointing,
}

impl ShardFailure {
    /// A description fit to show anyone (it holds no store's own message).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Reading => "cannot read its records from the stream",
            Self::Resolving => "cannot record the outcome of its deliveries",
            Self::Checkpointing => "cannot write its checkpoint",
        }
    }
}

/// One failing shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardTrouble {
    /// What failed last.
    pub failure: ShardFailure,
    /// Failures in a row.
    pub failures: u32,
    /// When the first of them happened.
    pub since: Timestamp,
}

/// The consumer's health, shared with whoever answers `/readyz`: a shard is unhealthy from a
/// failure until its worker next succeeds (or stops holding it).
#[derive(Debug, Default)]
pub struct ConsumerHealth {
    failing: Mutex<BTreeMap<ShardId, ShardTrouble>>,
}

impl ConsumerHealth {
    /// Notes a failure of `shard`'s worker; returns how many failures in a row it has had.
    pub fn shard_failed(&self, shard: &ShardId, failure: ShardFailure) -> u32 {
        let mut failing = self.failing.lock().expect("health lock");
        let trouble =
            failing.entry(shard.clone()).or_insert(ShardTrouble { failure, failures: 0, since: Timestamp::now() });
        trouble.failure = failure;
        trouble.failures = trouble.failures.saturating_add(1);
        trouble.failures
    }

    /// Notes that `shard`'s worker succeeded (or no longer runs): it is healthy again.
    pub fn shard_healthy(&self, shard: &ShardId) {
        self.failing.lock().expect("health lock").remove(shard);
    }

    /// Every failing shard, in shard order.
    pub fn failing_shards(&self) -> Vec<(ShardId, ShardTrouble)> {
        self.failing.lock().expect("health lock").iter().map(|(shard, trouble)| (shard.clone(), *trouble)).collect()
    }

    /// `Err` with a description naming every failing shard (fit to show anyone), or `Ok` when none is.
    pub fn check(&self) -> Result<(), String> {
        let failing = self.failing_shards();
        if failing.is_empty() {
            return Ok(());
        }
        let described: Vec<String> = failing
            .iter()
            .map(|(shard, trouble)| {
                format!(
                    "shard {shard} {} ({} failures in a row since {})",
                    trouble.failure.describe(),
                    trouble.failures,
                    trouble.since
                )
            })
            .collect();
        Err(format!("the stream consumer is not healthy: {}", described.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_unhealthy_from_a_failure_until_a_success() {
        let health = ConsumerHealth::default();
        let shard = ShardId::from_index(2);
        assert_eq!(health.check(), Ok(()));
        assert_eq!(health.shard_failed(&shard, ShardFailure::Resolving), 1);
        assert_eq!(health.shard_failed(&shard, ShardFailure::Resolving), 2);
        let report = health.check().unwrap_err();
        assert!(report.contains("shard shardId-000000000002 cannot record"), "{report}");
        assert!(report.contains("2 failures in a row"), "{report}");
        health.shard_healthy(&shard);
        assert_eq!(health.check(), Ok(()));
        assert_eq!(health.shard_failed(&shard, ShardFailure::Reading), 1, "the count starts again");
    }
}
