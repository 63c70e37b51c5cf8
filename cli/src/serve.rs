//! Wires the adapters chosen by the settings into the ingest edge and the consumer, and runs them.

use std::io::Write;
use std::path::Path;
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

use crate::settings::{Backend, Settings};

/// Kinesis keeps records for 24 hours unless told otherwise; the embedded stream does the same.
const STREAM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often the embedded stream deletes records past retention.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

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
    let engine = Engine::open(&settings.data_dir)
        .with_context(|| format!("opening the embedded database in {}", settings.data_dir.display()))?;
    let stream = EmbeddedStream::open(&engine, settings.shards, STREAM_RETENTION)?;
    let admin_token = match settings.admin_token.clone() {
        Some(token) => token,
        None => load_or_create_admin_token(&settings.data_dir)?,
    };

    let events = Arc::new(EmbeddedEventStore::open(&engine)?);
    let subscriptions = Arc::new(EmbeddedSubscriptionStore::open(&engine)?);
    let consumer_health = Arc::new(ConsumerHealth::default());
    let ingest_ports = IngestPorts {
        stream: Arc::new(stream.clone()),
        events: events.clone(),
        subscriptions: subscriptions.clone(),
        customers: Arc::new(EmbeddedCustomerStore::open(&engine)?),
        limits: Arc::new(EmbeddedLimitStore::open(&engine)?),
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

/// The admin token of the embedded mode: read from `<data-dir>/admin-token`, or generated there
/// (readable by the owner only) on first start.
fn load_or_create_admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_owned();
        if !token.is_empty() {
            tracing::info!(path = %path.display(), "admin token read from file");
            return Ok(token);
        }
    }
    let token = format!("adm_{}", hex::encode(rand::random::<[u8; 32]>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{token}")?;
    eprintln!("admin token generated and written to {}", path.display());
    Ok(token)
}
