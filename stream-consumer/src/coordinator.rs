//! The lease coordinator: keeps the lease table in step with the stream's shards, takes this
//! worker's share of leases and runs one shard worker per held lease; a renewer task of its own
//! renews what is held, so that a slow or hung stream listing never lets a lease expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Instant;

use futures::future::join_all;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::balance::{ExpiryWatch, Me, adopt_leftovers, live_twin, plan};
use triggers_checkpoint::{Checkpoint, Lease, LeaseError};
use triggers_stream::{ShardId, StreamError};

use crate::calls::within;
use crate::worker::{HeldLease, run_shard};
use crate::{ConsumerError, Context};

/// The leases this process holds, shared by the coordinator (which adds and removes them) and the
/// renewer (which renews them).
type HeldSet = Arc<StdMutex<HashMap<ShardId, Arc<HeldLease>>>>;

struct Running {
    held: Arc<HeldLease>,
    task: JoinHandle<()>,
}

/// Why a lease round did not finish.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Leases(#[from] LeaseError),
}

/// Runs until `shutdown`, or until another live process is found under this worker id; then stops
/// the workers (each finishes its batch and checkpoints) and releases every lease it still holds,
/// so that another worker may take them at once.
pub(crate) async fn run(
    context: Arc<Context>,
    instance: String,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let stop_workers = shutdown.child_token();
    let held: HeldSet = Arc::default();
    let stop_renewing = CancellationToken::new();
    let renewer = tokio::spawn(renew_periodically(Arc::clone(&context), Arc::clone(&held), stop_renewing.clone()));

    let mut running: HashMap<ShardId, Running> = HashMap::new();
    let mut watch = ExpiryWatch::default();
    let outcome = loop {
        reap_finished(&context, &held, &mut running).await;
        let round = Round { context: &context, instance: &instance, held: &held, stop_workers: &stop_workers };
        match round.take_share(&mut watch, &mut running).await {
            Ok(None) => {}
            Ok(Some(twin)) => break Err(twin),
            Err(error) => tracing::warn!(%error, "lease round failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            () = tokio::time::sleep(context.config.renew_interval()) => {}
        }
    };
    stop_workers.cancel();
    for (_, worker) in running.drain() {
        let _ = worker.task.await;
        release(&context, &worker.held).await;
    }
    // Renewals go on while the workers finish their batches, and stop only once they have.
    stop_renewing.cancel();
    let _ = renewer.await;
    outcome
}

/// Releases the leases of workers that returned (shard finished, or lease lost).
async fn reap_finished(context: &Context, held: &HeldSet, running: &mut HashMap<ShardId, Running>) {
    let finished: Vec<ShardId> = running.iter().filter(|(_, w)| w.task.is_finished()).map(|(s, _)| s.clone()).collect();
    for shard in finished {
        if let Some(worker) = running.remove(&shard) {
            held.lock().expect("held leases").remove(&shard);
            release(context, &worker.held).await;
        }
    }
}

async fn release(context: &Context, held: &HeldLease) {
    if held.lost.is_cancelled() {
        return;
    }
    let lease = held.lease.lock().await;
    if let Err(error) =
        within(context.config.call_timeout, "releasing a lease", context.ports.leases.release_lease(&lease)).await
    {
        tracing::warn!(shard = %lease.shard_id, %error, "releasing lease failed; it will expire instead");
    }
}

/// Renews every held lease each renewal interval, all at once and each within its own time limit,
/// until `stop`.
async fn renew_periodically(context: Arc<Context>, held: HeldSet, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(context.config.renew_interval()) => {}
        }
        let leases: Vec<Arc<HeldLease>> = held.lock().expect("held leases").values().cloned().collect();
        join_all(leases.iter().map(|lease| renew(&context, lease))).await;
    }
}

async fn renew(context: &Context, held: &HeldLease) {
    if held.lost.is_cancelled() {
        return;
    }
    let mut lease = held.lease.lock().await;
    let renewed =
        within(context.config.renew_timeout(), "renewing a lease", context.ports.leases.renew_lease(&lease)).await;
    match renewed {
        Ok(renewed) => *lease = renewed,
        Err(LeaseError::Conflict(_) | LeaseError::NotFound(_)) => {
            tracing::warn!(shard = %lease.shard_id, "lease lost; stopping its worker");
            held.lost.cancel();
        }
        Err(error) => tracing::warn!(shard = %lease.shard_id, %error, "renewing lease failed; will retry"),
    }
}

/// One round of lease upkeep.
struct Round<'a> {
    context: &'a Arc<Context>,
    instance: &'a str,
    held: &'a HeldSet,
    stop_workers: &'a CancellationToken,
}

impl Round<'_> {
    /// Creates leases for new shards and takes this worker's share. `Ok(Some(_))` when another
    /// live process holds leases under this worker id: this one must not go on.
    async fn take_share(
        &self,
        watch: &mut ExpiryWatch,
        running: &mut HashMap<ShardId, Running>,
    ) -> Result<Option<ConsumerError>, RoundError> {
        let (context, limit) = (self.context, self.context.config.call_timeout);
        let me = Me { worker_id: &context.config.worker_id, instance: self.instance };
        let shards = within(limit, "listing shards", context.ports.stream.list_shards()).await?;
        let lineage: Vec<(ShardId, Vec<ShardId>)> = shards.iter().map(|s| (s.shard_id.clone(), s.parents())).collect();
        within(limit, "creating leases", context.ports.leases.ensure_leases(&lineage, Checkpoint::TrimHorizon)).await?;

        let leases = within(limit, "listing leases", context.ports.leases.list_leases()).await?;
        let now = Instant::now();
        watch.observe(&leases, now);
        // Decisions are made on this view; conditional writes go against `leases` as stored.
        let view = if context.ports.leases.is_exclusive() { adopt_leftovers(&leases, me) } else { leases.clone() };
        if let Some(twin) = live_twin(&view, me, &|lease| watch.moves(lease)) {
            let other = twin.instance.clone().unwrap_or_default();
            tracing::error!(
                worker_id = %me.worker_id,
                instance = %me.instance,
                other_instance = %other,
                shard = %twin.shard_id,
                "another live process runs under this worker id (it keeps renewing a lease in its name); \
                 this consumer stops: give every process its own --worker-id"
            );
            return Ok(Some(ConsumerError::DuplicateWorkerId {
                worker_id: me.worker_id.to_owned(),
                shard: twin.shard_id.clone(),
            }));
        }
        let failover = context.config.failover_time;
        let to_take =
            plan(&view, me, &|shard| running.contains_key(shard), &|lease| watch.is_available(lease, now, failover));

        for shard in to_take {
            let Some(lease) = leases.iter().find(|l| l.shard_id == shard) else { continue };
            if let Some(stale) = running.remove(&shard) {
                // A worker of mine whose lease went back to unowned (lost to a write that timed
                // out): it stops before the lease is taken again.
                stale.held.lost.cancel();
                let _ = stale.task.await;
            }
            let taken =
                within(limit, "taking a lease", context.ports.leases.take_lease(lease, me.worker_id, me.instance));
            match taken.await {
                Ok(taken) => self.start_worker(taken, running),
                Err(LeaseError::Conflict(_)) => tracing::debug!(%shard, "another worker took the lease first"),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(None)
    }

    fn start_worker(&self, taken: Lease, running: &mut HashMap<ShardId, Running>) {
        let shard = taken.shard_id.clone();
        tracing::info!(%shard, checkpoint = ?taken.checkpoint, "took lease");
        let held = Arc::new(HeldLease { lease: Mutex::new(taken), lost: CancellationToken::new() });
        self.held.lock().expect("held leases").insert(shard.clone(), Arc::clone(&held));
        let task =
            tokio::spawn(run_shard(Arc::clone(self.context), Arc::clone(&held), self.stop_workers.child_token()));
        running.insert(shard, Running { held, task });
    }
}
