//! The one place where each port gets its adapter, chosen from the settings at start-up.
//!
//! | port | embedded | aws |
//! | --- | --- | --- |
//! | stream | fjall log under `--data-dir` | Kinesis |
//! | leases and checkpoints | fjall | DynamoDB (not built yet) |
//! | events | fjall | DynamoDB (not built yet) |
//! | subscriptions | fjall | PostgreSQL (not built yet) |
//! | customers and API keys | fjall | PostgreSQL (not built yet) |
//! | rate limits and idempotency | fjall and memory | Redis (not built yet) |
//! | retry queue and DLQ | fjall | SQS (not built yet) |
//!
//! A port whose aws adapter does not exist yet stops start-up with an error naming every such port,
//! rather than running half on one backend and half on another without saying so.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::LeaseStore;
use triggers_checkpoint::embedded::EmbeddedLeaseStore;
use triggers_embedded::Engine;
use triggers_schemas::Timestamp;
use triggers_stores::embedded::{
    EmbeddedCustomerStore, EmbeddedDeliveryQueue, EmbeddedEventStore, EmbeddedLimitStore, EmbeddedSubscriptionStore,
};
use triggers_stores::{CustomerStore, DeliveryQueue, EventStore, LimitStore, SubscriptionStore};
use triggers_stream::Stream;
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream::kinesis::KinesisStream;

use crate::settings::{Backend, Settings};

/// Kinesis keeps records for 24 hours unless told otherwise; the embedded stream does the same.
const STREAM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often the embedded stream deletes records past retention.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);
/// How often the embedded limit store forgets idempotency keys past their 24 h TTL.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the AWS clients may take to connect. The time limits of the calls themselves belong
/// to each adapter (the Kinesis adapter's are in `triggers_stream::kinesis`).
const AWS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Every port, each with the adapter the settings chose.
pub struct Adapters {
    /// The event stream.
    pub stream: Arc<dyn Stream>,
    /// Leases and checkpoints.
    pub leases: Arc<dyn LeaseStore>,
    /// Events and their delivery states.
    pub events: Arc<dyn EventStore>,
    /// Subscriptions.
    pub subscriptions: Arc<dyn SubscriptionStore>,
    /// Customers and API keys.
    pub customers: Arc<dyn CustomerStore>,
    /// Rate limits and idempotency keys.
    pub limits: Arc<dyn LimitStore>,
    /// The retry queue and the dead-letter queue.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The embedded engine and what it needs done in the background, when it is used.
    embedded: Option<EmbeddedUpkeep>,
}

/// The embedded adapters' background work: what Kinesis and Redis do by themselves.
struct EmbeddedUpkeep {
    engine: Engine,
    stream: EmbeddedStream,
    limits: Arc<EmbeddedLimitStore>,
}

impl Adapters {
    /// Builds every port's adapter for `settings.backend`. The embedded backend opens its database
    /// in `settings.data_dir`, which the caller has made private first.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        match settings.backend {
            Backend::Embedded => Self::embedded(settings),
            Backend::Aws => Self::aws(settings).await,
        }
    }

    fn embedded(settings: &Settings) -> anyhow::Result<Self> {
        let engine = Engine::open(&settings.data_dir)
            .with_context(|| format!("opening the embedded database in {}", settings.data_dir.display()))?;
        let stream = EmbeddedStream::open(&engine, settings.shards, STREAM_RETENTION)?;
        let limits = Arc::new(EmbeddedLimitStore::open(&engine)?);
        Ok(Self {
            stream: Arc::new(stream.clone()),
            leases: Arc::new(EmbeddedLeaseStore::open(&engine)?),
            events: Arc::new(EmbeddedEventStore::open(&engine)?),
            subscriptions: Arc::new(EmbeddedSubscriptionStore::open(&engine)?),
            customers: Arc::new(EmbeddedCustomerStore::open(&engine)?),
            limits: limits.clone(),
            queue: Arc::new(EmbeddedDeliveryQueue::open(&engine)?),
            embedded: Some(EmbeddedUpkeep { engine, stream, limits }),
        })
    }

    async fn aws(settings: &Settings) -> anyhow::Result<Self> {
        let sdk = aws_sdk_config().await;
        let stream: Arc<dyn Stream> =
            Arc::new(KinesisStream::new(&aws_sdk_kinesis::Client::new(&sdk), settings.stream_name.clone()));
        // Each port still without an aws adapter is named here; wiring one in replaces its line.
        let mut missing = Missing::default();
        let leases: Option<Arc<dyn LeaseStore>> = missing.port("leases and checkpoints (DynamoDB)");
        let events: Option<Arc<dyn EventStore>> = missing.port("events (DynamoDB)");
        let subscriptions: Option<Arc<dyn SubscriptionStore>> = missing.port("subscriptions (PostgreSQL)");
        let customers: Option<Arc<dyn CustomerStore>> = missing.port("customers and API keys (PostgreSQL)");
        let limits: Option<Arc<dyn LimitStore>> = missing.port("rate limits and idempotency keys (Redis)");
        let queue: Option<Arc<dyn DeliveryQueue>> = missing.port("the retry queue and the dead-letter queue (SQS)");
        let (Some(leases), Some(events), Some(subscriptions), Some(customers), Some(limits), Some(queue)) =
            (leases, events, subscriptions, customers, limits, queue)
        else {
            anyhow::bail!(
                "the aws backend is not complete yet: it has no adapter for {}; run with --backend embedded",
                missing.0.join(", ")
            );
        };
        Ok(Self { stream, leases, events, subscriptions, customers, limits, queue, embedded: None })
    }

    /// Starts the background work the embedded adapters need (trimming the stream past its
    /// retention, forgetting expired idempotency keys) until `shutdown`; nothing on aws.
    pub fn spawn_upkeep(&self, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        let Some(upkeep) = &self.embedded else { return Vec::new() };
        vec![
            tokio::spawn(trim_periodically(upkeep.stream.clone(), shutdown.clone())),
            tokio::spawn(purge_idempotency_keys_periodically(Arc::clone(&upkeep.limits), shutdown.clone())),
        ]
    }

    /// Logs how well the embedded engine's group commit shared its fsyncs.
    pub fn log_sync_stats(&self) {
        let Some(upkeep) = &self.embedded else { return };
        let syncs = upkeep.engine.sync_stats();
        tracing::info!(
            sync_requests = syncs.requests.load(std::sync::atomic::Ordering::Relaxed),
            fsyncs = syncs.fsyncs.load(std::sync::atomic::Ordering::Relaxed),
            "embedded engine: group commit"
        );
    }
}

/// The ports the aws backend has no adapter for yet.
#[derive(Default)]
struct Missing(Vec<&'static str>);

impl Missing {
    /// Notes that `port` has no adapter.
    fn port<T>(&mut self, port: &'static str) -> Option<T> {
        self.0.push(port);
        None
    }
}

/// The AWS SDK's configuration, built once for every AWS client of the process: the standard
/// configuration chain (`AWS_REGION`, `AWS_ENDPOINT_URL` and the service-specific
/// `AWS_ENDPOINT_URL_<SERVICE>`, profiles, credentials), and a connect timeout.
pub async fn aws_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(TimeoutConfig::builder().connect_timeout(AWS_CONNECT_TIMEOUT).build())
        .load()
        .await
}

async fn trim_periodically(stream: EmbeddedStream, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(TRIM_INTERVAL) => {}
        }
        match stream.trim_expired(Timestamp::now()) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "trimmed records past retention"),
            Err(error) => tracing::warn!(%error, "trimming the stream failed"),
        }
    }
}

/// Forgets idempotency keys past their TTL, as Redis would. Each sweep reads only the expired
/// keys (through their expiry index), off the async threads.
async fn purge_idempotency_keys_periodically(limits: Arc<EmbeddedLimitStore>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(IDEMPOTENCY_PURGE_INTERVAL) => {}
        }
        let store = Arc::clone(&limits);
        match tokio::task::spawn_blocking(move || store.purge_expired(Timestamp::now())).await {
            Ok(Ok(purged)) if purged.keys == 0 => {}
            Ok(Ok(purged)) => tracing::info!(keys = purged.keys, "purged idempotency keys past their TTL"),
            Ok(Err(error)) => tracing::warn!(%error, "purging idempotency keys failed"),
            Err(error) => tracing::warn!(%error, "the idempotency purge stopped unexpectedly"),
        }
    }
}
