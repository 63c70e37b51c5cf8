//! Wires the adapters chosen by the settings into the ingest edge and the consumer, and runs them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::embedded::EmbeddedLeaseStore;
use triggers_embedded::Engine;
use triggers_ingest::{IngestConfig, IngestMetrics, IngestPorts, ReadinessProbe};
use triggers_schemas::Timestamp;
use triggers_stores::embedded::{
    EmbeddedCustomerStore, EmbeddedDeliveryQueue, EmbeddedEventStore, EmbeddedLimitStore, EmbeddedSubscriptionStore,
};
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream_consumer::delivery::{RetryPolicy, SystemResolver};
use triggers_stream_consumer::{ConsumerConfig, ConsumerHealth, ConsumerPorts};

use crate::data_dir;
use crate::settings::{Backend, Settings};

/// Kinesis keeps records for 24 hours unless told otherwise; the embedded stream does the same.
const STREAM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often the embedded stream deletes records past retention.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);
/// How often the embedded limit store forgets idempotency keys past their 24 h TTL.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Which parts of the pipeline a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Public API, admin API and consumer (`triggers serve`).
    All,
    /// Public and admin API (`triggers ingest`).
    Ingest,
    /// The consumer (`triggers consume`).
    Consume,
}

/// Runs `roles` until `shutdown` is cancelled, then drains and returns.
///
/// `public` and `admin` are the already-bound listeners of the two APIs (unused by `Consume`).
pub async fn run(
    settings: Settings,
    roles: Roles,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if settings.backend == Backend::Aws {
        bail!(
            "the aws backend is not complete yet: only its Kinesis stream adapter exists (DynamoDB, SQS, \
             PostgreSQL and Redis adapters are still to come); run with --backend embedded"
        );
    }
    if roles != Roles::All {
        bail!(
            "the embedded backend runs in one process: use `triggers serve` (ingest and consume run apart only with --backend aws)"
        );
    }
    if settings.admin_token.is_none() {
        data_dir::refuse_shared_admin_token(&settings.data_dir)?;
    }
    data_dir::make_private(&settings.data_dir)?;
    let engine = Engine::open(&settings.data_dir)
        .with_context(|| format!("opening the embedded database in {}", settings.data_dir.display()))?;
    let stream = EmbeddedStream::open(&engine, settings.shards, STREAM_RETENTION)?;
    let admin_token = match settings.admin_token.clone() {
        Some(token) => token,
        None => data_dir::load_or_create_admin_token(&settings.data_dir)?,
    };

    let events = Arc::new(EmbeddedEventStore::open(&engine)?);
    let subscriptions = Arc::new(EmbeddedSubscriptionStore::open(&engine)?);
    let limits = Arc::new(EmbeddedLimitStore::open(&engine)?);
    let consumer_health = Arc::new(ConsumerHealth::default());
    let ingest_ports = IngestPorts {
        stream: Arc::new(stream.clone()),
        events: events.clone(),
        subscriptions: subscriptions.clone(),
        customers: Arc::new(EmbeddedCustomerStore::open(&engine)?),
        limits: limits.clone(),
        readiness: vec![Arc::new(ConsumerReadiness(Arc::clone(&consumer_health)))],
    };
    let consumer_ports = ConsumerPorts {
        stream: Arc::new(stream.clone()),
        leases: Arc::new(EmbeddedLeaseStore::open(&engine)?),
        subscriptions,
        events,
        queue: Arc::new(EmbeddedDeliveryQueue::open(&engine)?),
        resolver: Arc::new(SystemResolver),
    };
    let ingest_config = IngestConfig {
        admin_token,
        allow_http_webhooks: true,
        allow_private_webhooks: settings.allow_private_webhooks,
        connections: settings.connections,
    };
    let consumer_config = ConsumerConfig {
        worker_id: settings.worker_id.clone(),
        failover_time: settings.failover_time,
        retry: RetryPolicy { schedule: settings.retry_schedule.clone(), max_retry_after: settings.max_retry_after },
        attempt_timeout: settings.attempt_timeout,
        allow_private_webhooks: settings.allow_private_webhooks,
        ..ConsumerConfig::default()
    };

    tracing::info!(
        public = %public.local_addr()?,
        admin = %admin.local_addr()?,
        data_dir = %settings.data_dir.display(),
        "triggers is serving on the embedded backend"
    );
    // The pipeline stops when asked to, and also when the consumer cannot go on: a process that
    // no longer consumes must not go on accepting events as if it did.
    let pipeline = shutdown.child_token();
    let trimmer = tokio::spawn(trim_periodically(stream, pipeline.clone()));
    let purger = tokio::spawn(purge_idempotency_keys_periodically(limits, pipeline.clone()));
    let ingest = triggers_ingest::run(
        public,
        admin,
        ingest_ports,
        ingest_config,
        Arc::new(IngestMetrics::default()),
        pipeline.clone(),
    );
    let consumer = async {
        let outcome =
            triggers_stream_consumer::run(consumer_ports, consumer_config, consumer_health, pipeline.clone()).await;
        if let Err(error) = &outcome {
            tracing::error!(%error, "the consumer stopped; stopping the pipeline");
            pipeline.cancel();
        }
        outcome
    };
    let ((), consumed) = tokio::join!(ingest, consumer);
    let _ = trimmer.await;
    let _ = purger.await;
    let syncs = engine.sync_stats();
    tracing::info!(
        sync_requests = syncs.requests.load(std::sync::atomic::Ordering::Relaxed),
        fsyncs = syncs.fsyncs.load(std::sync::atomic::Ordering::Relaxed),
        "stopped: in-flight work finished, checkpoints written, leases released"
    );
    consumed.context("the stream consumer stopped")
}

/// The consumer's health as `/readyz` sees it: not ready while any shard worker is failing.
pub struct ConsumerReadiness(pub Arc<ConsumerHealth>);

#[async_trait]
impl ReadinessProbe for ConsumerReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0.check()
    }
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
