//! The stream consumer: holds shard leases, reads each held shard, matches every event against the
//! customer's subscriptions, delivers webhooks, records outcomes, schedules retries and parks what
//! gives up; and checkpoints a shard only once every record before the checkpoint is resolved.
//!
//! - [`coordinator`] takes, renews and releases leases and runs one [`worker`] per held shard.
//! - [`worker`] reads a shard and resolves each batch.
//! - [`matching`] is the in-memory subscription cache the workers match against.
//! - [`delivery`] performs one signed webhook attempt; [`retry`] decides what follows a failure.
//! - [`retries`] is the loop that takes due retries from the queue.

pub mod config;
pub mod coordinator;
pub mod delivery;
pub mod matching;
pub mod retries;
pub mod retry;
pub mod worker;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use triggers_checkpoint::LeaseStore;
use triggers_stores::{DeliveryQueue, EventStore, SubscriptionStore};
use triggers_stream::Stream;

pub use config::ConsumerConfig;

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
}

/// Everything a worker, the coordinator and the retry loop share.
pub(crate) struct Context {
    pub(crate) ports: ConsumerPorts,
    pub(crate) cache: Arc<matching::SubscriptionCache>,
    pub(crate) deliverer: delivery::Deliverer,
    pub(crate) config: ConsumerConfig,
}

/// Runs the consumer until `shutdown` is cancelled, then finishes in-flight batches, checkpoints
/// and releases its leases before returning.
pub async fn run(ports: ConsumerPorts, config: ConsumerConfig, shutdown: CancellationToken) {
    let cache = Arc::new(matching::SubscriptionCache::default());
    // Nothing is matched before the subscriptions are known: an event matched against an empty
    // cache would count as delivered to nobody, and a due retry as aimed at a deleted subscription.
    while let Err(error) = cache.refresh(ports.subscriptions.as_ref()).await {
        tracing::warn!(%error, "loading subscriptions failed; the consumer waits for them");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.subscription_refresh) => {}
        }
    }
    let refresher = tokio::spawn(matching::refresh_periodically(
        Arc::clone(&cache),
        Arc::clone(&ports.subscriptions),
        config.subscription_refresh,
        shutdown.clone(),
    ));
    let context =
        Arc::new(Context { deliverer: delivery::Deliverer::new(config.attempt_timeout), ports, cache, config });
    let retrier = tokio::spawn(retries::run(Arc::clone(&context), shutdown.clone()));
    coordinator::run(context, shutdown).await;
    let _ = retrier.await;
    let _ = refresher.await;
}
