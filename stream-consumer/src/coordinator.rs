//! The lease coordinator: keeps the lease table in step with the stream's shards, takes this
//! worker's share of leases, renews what it holds, and runs one shard worker per held lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::balance::{ExpiryWatch, leases_to_take};
use triggers_checkpoint::{Checkpoint, Lease, LeaseError};
use triggers_stream::ShardId;

use crate::Context;
use crate::worker::{HeldLease, run_shard};

struct Running {
    held: Arc<HeldLease>,
    task: JoinHandle<()>,
}

/// Runs until `shutdown`; then stops the workers (each finishes its batch and checkpoints) and
/// releases every lease it still holds, so that another worker may take them at once.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let me = context.config.worker_id.clone();
    let stop_workers = shutdown.child_token();
    let mut running: HashMap<ShardId, Running> = HashMap::new();
    let mut watch = ExpiryWatch::default();
    loop {
        reap_finished(&context, &mut running).await;
        renew_held(&context, &mut running).await;
        if let Err(error) = take_share(&context, &me, &mut watch, &mut running, &stop_workers).await {
            tracing::warn!(%error, "lease round failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(context.config.renew_interval()) => {}
        }
    }
    stop_workers.cancel();
    for (_, worker) in running.drain() {
        let _ = worker.task.await;
        release(&context, &worker.held).await;
    }
}

/// Releases the leases of workers that returned (shard finished, or lease lost).
async fn reap_finished(context: &Context, running: &mut HashMap<ShardId, Running>) {
    let finished: Vec<ShardId> = running.iter().filter(|(_, w)| w.task.is_finished()).map(|(s, _)| s.clone()).collect();
    for shard in finished {
        if let Some(worker) = running.remove(&shard) {
            release(context, &worker.held).await;
        }
    }
}

async fn release(context: &Context, held: &HeldLease) {
    if held.lost.is_cancelled() {
        return;
    }
    let lease = held.lease.lock().await;
    if let Err(error) = context.ports.leases.release_lease(&lease).await {
        tracing::warn!(shard = %lease.shard_id, %error, "releasing lease failed; it will expire instead");
    }
}

async fn renew_held(context: &Context, running: &mut HashMap<ShardId, Running>) {
    for (shard, worker) in running.iter() {
        let mut lease = worker.held.lease.lock().await;
        match context.ports.leases.renew_lease(&lease).await {
            Ok(renewed) => *lease = renewed,
            Err(LeaseError::Conflict(_) | LeaseError::NotFound(_)) => {
                tracing::warn!(%shard, "lease lost; stopping its worker");
                worker.held.lost.cancel();
            }
            Err(error) => tracing::warn!(%shard, %error, "renewing lease failed; will retry"),
        }
    }
    running.retain(|_, worker| !worker.held.lost.is_cancelled());
}

async fn take_share(
    context: &Arc<Context>,
    me: &str,
    watch: &mut ExpiryWatch,
    running: &mut HashMap<ShardId, Running>,
    stop_workers: &CancellationToken,
) -> Result<(), Box<dyn std::error::Error>> {
    let shards = context.ports.stream.list_shards().await?;
    let lineage: Vec<(ShardId, Vec<ShardId>)> = shards.iter().map(|s| (s.shard_id.clone(), s.parents())).collect();
    context.ports.leases.ensure_leases(&lineage, Checkpoint::TrimHorizon).await?;

    let leases = context.ports.leases.list_leases().await?;
    let now = Instant::now();
    watch.observe(&leases, now);
    // A lease in my name that I am not running (I restarted under the same id) is mine to take
    // back at once: show it to the decision as unowned.
    let as_decided: Vec<Lease> = leases
        .iter()
        .cloned()
        .map(|mut lease| {
            if lease.owner.as_deref() == Some(me) && !running.contains_key(&lease.shard_id) {
                lease.owner = None;
            }
            lease
        })
        .collect();
    let failover = context.config.failover_time;
    let to_take = leases_to_take(&as_decided, me, &|lease| watch.is_available(lease, now, failover));

    for shard in to_take {
        let Some(lease) = leases.iter().find(|l| l.shard_id == shard) else { continue };
        match context.ports.leases.take_lease(lease, me).await {
            Ok(taken) => {
                tracing::info!(%shard, checkpoint = ?taken.checkpoint, "took lease");
                let held = Arc::new(HeldLease { lease: Mutex::new(taken), lost: CancellationToken::new() });
                let task = tokio::spawn(run_shard(Arc::clone(context), Arc::clone(&held), stop_workers.child_token()));
                running.insert(shard, Running { held, task });
            }
            Err(LeaseError::Conflict(_)) => tracing::debug!(%shard, "another worker took the lease first"),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
