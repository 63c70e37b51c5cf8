//! The stream consumer: holds shard leases, reads each held shard, matches every event against the
//! customer's subscriptions, delivers webhooks, records outcomes, schedules retries and parks what
//! gives up; and checkpoints a shard only once every record before the checkpoint is resolved.
//!
//! - [`coordinator`] takes and releases leases and runs one [`worker`] per held shard; a renewer
//!   task of its own renews them.
//! - [`worker`] reads a shard, resolves each batch, parks undecodable records, and backs off
//!   ([`backoff`]) while its stream or stores fail, reporting the shard in [`health`].
//! - [`matching`] is the in-memory subscription cache the workers match against.
//! - [`delivery`] resolves each delivery: the attempt, the pure retry policy, the one place where
//!   attempt → settle → record → follow-up happens, and the retry loop.

pub mod backoff;
mod calls;
pub mod config;
pub mod coordinator;
pub mod delivery;
pub mod health;
pub mod matching;
pub mod worker;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use triggers_checkpoint::LeaseStore;
use triggers_stores::{DeliveryQueue, EventStore, SubscriptionStore};
use triggers_stream::{ShardId, Stream};

pub use config::ConsumerConfig;
pub use health::ConsumerHealth;

/// The outside dependencies of the consumer, each behind its port.
#[derive(Clone)]
pub struct ConsumerPorts {
    /// Where events are read from.
    pub stream: Arc<dyn Stream>,
    /// Leases and checkpoints.
    pub leases: Arc<dyn LeaseStore>,
    /// Subscriptions, loaded into the matching cache.
    pub subscriptions: Arc<dyn SubscriptionStore>,
    /// Where events and their delivery states are recorded.
    pub events: Arc<dyn EventStore>,
    /// Retries and dead letters.
    pub queue: Arc<dyn DeliveryQueue>,
    /// How webhook host names become addresses.
    pub resolver: Arc<dyn delivery::Resolve>,
}

/// Why the consumer stopped before it was asked to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsumerError {
    /// Another live process runs under the same worker id; the two would take each other's leases
    /// back and forth forever.
    #[error(
        "another live process runs under worker id {worker_id:?} (it keeps renewing the lease of {shard}); give every process its own --worker-id"
    )]
    DuplicateWorkerId {
        /// The worker id both use.
        worker_id: String,
        /// A shard whose lease the other process holds.
        shard: ShardId,
    },
}

/// Everything a worker, the coordinator and the retry loop share.
pub(crate) struct Context {
    pub(crate) ports: ConsumerPorts,
    pub(crate) cache: Arc<matching::SubscriptionCache>,
    pub(crate) deliverer: delivery::Deliverer,
    pub(crate) config: ConsumerConfig,
    pub(crate) health: Arc<ConsumerHealth>,
}

/// Runs the consumer until `shutdown` is cancelled, then finishes in-flight batches, checkpoints
/// and releases its leases before returning. Failing shards are reported in `health` while they
/// fail. Returns an error, after the same orderly stop, when it must not go on (another process
/// runs under its worker id).
pub async fn run(
    ports: ConsumerPorts,
    config: ConsumerConfig,
    health: Arc<ConsumerHealth>,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let cache = Arc::new(matching::SubscriptionCache::default());
    // Nothing is matched before the subscriptions are known: an event matched against an empty
    // cache would count as delivered to nobody, and a due retry as aimed at a deleted subscription.
    loop {
        let loaded =
            calls::within(config.call_timeout, "loading subscriptions", cache.refresh(ports.subscriptions.as_ref()));
        match loaded.await {
            Ok(_) => break,
            Err(error) => tracing::warn!(%error, "loading subscriptions failed; the consumer waits for them"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(config.subscription_refresh) => {}
        }
    }
    // Every run is a new instance: its token tells its leases from those of any other process
    // under the same worker id.
    let instance = uuid::Uuid::new_v4().simple().to_string();
    tracing::info!(worker_id = %config.worker_id, %instance, "consumer starting");
    let stop_helpers = CancellationToken::new();
    let refresher = tokio::spawn(matching::refresh_periodically(
        Arc::clone(&cache),
        Arc::clone(&ports.subscriptions),
        config.subscription_refresh,
        config.call_timeout,
        stop_helpers.clone(),
    ));
    let deliverer =
        delivery::Deliverer::new(config.attempt_timeout, config.allow_private_webhooks, Arc::clone(&ports.resolver));
    let context = Arc::new(Context { deliverer, ports, cache, config, health });
    let retrier = tokio::spawn(delivery::retry_loop::run(Arc::clone(&context), stop_helpers.clone()));
    let outcome = coordinator::run(context, instance, shutdown).await;
    stop_helpers.cancel();
    let _ = retrier.await;
    let _ = refresher.await;
    outcome
}
