//! Hands the adapters chosen at start-up (`adapters.rs`) to the ingest edge and the consumer, and
//! runs them.

use std::sync::Arc;

use anyhow::{Context, bail};
use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triggers_ingest::{IngestConfig, IngestMetrics, IngestPorts, ReadinessProbe};
use triggers_stream_consumer::delivery::{RetryPolicy, SystemResolver};
use triggers_stream_consumer::{ConsumerConfig, ConsumerHealth, ConsumerPorts};

use crate::adapters::Adapters;
use crate::data_dir;
use crate::settings::{Backend, Settings};

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
    if settings.backend == Backend::Embedded && roles != Roles::All {
        bail!(
            "the embedded backend runs in one process: use `triggers serve` (ingest and consume run apart only with --backend aws)"
        );
    }
    if settings.backend == Backend::Embedded {
        if settings.admin_token.is_none() {
            data_dir::refuse_shared_admin_token(&settings.data_dir)?;
        }
        data_dir::make_private(&settings.data_dir)?;
    }
    let admin_token = match (settings.admin_token.clone(), settings.backend) {
        (Some(token), _) => token,
        (None, Backend::Embedded) => data_dir::load_or_create_admin_token(&settings.data_dir)?,
        (None, Backend::Aws) => bail!("the aws backend needs an admin token: set TRIGGERS_ADMIN_TOKEN"),
    };
    let adapters = Adapters::build(&settings).await?;
    let consumer_health = Arc::new(ConsumerHealth::default());
    let ingest_ports = IngestPorts {
        stream: Arc::clone(&adapters.stream),
        events: Arc::clone(&adapters.events),
        subscriptions: Arc::clone(&adapters.subscriptions),
        customers: Arc::clone(&adapters.customers),
        limits: Arc::clone(&adapters.limits),
        readiness: vec![Arc::new(ConsumerReadiness(Arc::clone(&consumer_health)))],
    };
    let consumer_ports = ConsumerPorts {
        stream: Arc::clone(&adapters.stream),
        leases: Arc::clone(&adapters.leases),
        subscriptions: Arc::clone(&adapters.subscriptions),
        events: Arc::clone(&adapters.events),
        queue: Arc::clone(&adapters.queue),
        resolver: Arc::new(SystemResolver),
    };
    let ingest_config = IngestConfig {
        admin_token,
        allow_http_webhooks: settings.backend == Backend::Embedded,
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
        backend = ?settings.backend,
        data_dir = %settings.data_dir.display(),
        "triggers is serving"
    );
    // The pipeline stops when asked to, and also when the consumer cannot go on: a process that
    // no longer consumes must not go on accepting events as if it did.
    let pipeline = shutdown.child_token();
    let upkeep = adapters.spawn_upkeep(&pipeline);
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
    for task in upkeep {
        let _ = task.await;
    }
    adapters.log_sync_stats();
    tracing::info!("stopped: in-flight work finished, checkpoints written, leases released");
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
