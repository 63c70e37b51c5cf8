//! One shard's worker: read a batch, resolve every record in it, checkpoint, repeat.
//!
//! **A checkpoint never moves past an unresolved record.** A record is resolved when every
//! matching delivery has succeeded, been refused with 410, been scheduled for retry in the
//! durable retry queue, or been parked in the dead-letter queue; and the event's state is recorded.
//! If any of that fails, the worker reopens the shard at its checkpoint and tries again
//! (deliveries are at-least-once).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::{Checkpoint, Lease, LeaseError};
use triggers_schemas::{StoredEvent, StreamRecord};
use triggers_stores::{RetryTask, StoreError};
use triggers_stream::{ShardRecord, StreamError};

use crate::Context;
use crate::matching::CompiledSubscription;
use crate::retries::{follow_up, settle};

/// A lease this worker holds, shared by the shard worker (which checkpoints) and the coordinator
/// (which renews): both write through the one copy so that each write is conditional on the last.
pub struct HeldLease {
    /// The lease as last written.
    pub lease: Mutex<Lease>,
    /// Cancelled when a write finds the lease taken by someone else.
    pub lost: CancellationToken,
}

/// Reads and resolves one shard until it ends, the lease is lost, or `stop` is cancelled.
pub(crate) async fn run_shard(context: Arc<Context>, held: Arc<HeldLease>, stop: CancellationToken) {
    let shard = held.lease.lock().await.shard_id.clone();
    loop {
        let checkpoint = held.lease.lock().await.checkpoint.clone();
        let Some(start) = checkpoint.start_position() else { return };
        let mut reader = match context.ports.stream.open_reader(&shard, start).await {
            Ok(reader) => reader,
            Err(StreamError::NoSuchShard(_)) => {
                // The shard aged out of retention: nothing is left to read in it.
                write_checkpoint(&context, &held, Checkpoint::ShardEnd, &stop).await;
                return;
            }
            Err(error) => {
                tracing::warn!(%shard, %error, "opening shard reader failed; retrying");
                if pause(&stop, &held.lost, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        loop {
            if stop.is_cancelled() || held.lost.is_cancelled() {
                return;
            }
            let batch = match reader.next_batch(context.config.batch_size).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%shard, %error, "reading shard failed; reopening at the checkpoint");
                    break;
                }
            };
            if let Some(last) = batch.records.last() {
                if let Err(error) = resolve_batch(&context, &batch.records).await {
                    tracing::warn!(%shard, %error, "resolving a batch failed; reopening at the checkpoint");
                    break;
                }
                if !write_checkpoint(&context, &held, Checkpoint::After(last.sequence_number.clone()), &stop).await {
                    return;
                }
            }
            if let Some(children) = batch.shard_end {
                tracing::info!(%shard, ?children, "shard finished");
                write_checkpoint(&context, &held, Checkpoint::ShardEnd, &stop).await;
                return;
            }
            if batch.records.is_empty() && pause(&stop, &held.lost, context.config.idle_poll).await {
                return;
            }
        }
        if pause(&stop, &held.lost, Duration::from_millis(500)).await {
            return;
        }
    }
}

/// Sleeps for `duration`; true if stopped or lost meanwhile.
async fn pause(stop: &CancellationToken, lost: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = lost.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

/// Writes a checkpoint, retrying while the store is unavailable. False if the lease was lost.
async fn write_checkpoint(
    context: &Context,
    held: &HeldLease,
    checkpoint: Checkpoint,
    stop: &CancellationToken,
) -> bool {
    loop {
        let mut lease = held.lease.lock().await;
        match context.ports.leases.checkpoint(&lease, checkpoint.clone()).await {
            Ok(updated) => {
                *lease = updated;
                return true;
            }
            Err(LeaseError::Conflict(_) | LeaseError::NotFound(_)) => {
                tracing::warn!(shard = %lease.shard_id, "lease lost while checkpointing");
                held.lost.cancel();
                return false;
            }
            Err(error) => {
                tracing::warn!(shard = %lease.shard_id, %error, "checkpoint failed; retrying");
                drop(lease);
                if stop.is_cancelled() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Resolves every record of a batch, concurrently: one slow endpoint costs at most one attempt
/// timeout, whoever else is in the batch. The records are matched first, customer by customer.
async fn resolve_batch(context: &Context, records: &[ShardRecord]) -> Result<(), StoreError> {
    let decoded: Vec<StreamRecord> = records.iter().filter_map(decode).collect();
    let matching = context.cache.matching(&decoded.iter().collect::<Vec<_>>());
    let outcomes =
        join_all(decoded.iter().zip(matching).map(|(record, matching)| resolve_record(context, record, matching)))
            .await;
    outcomes.into_iter().collect()
}

fn decode(shard_record: &ShardRecord) -> Option<StreamRecord> {
    match StreamRecord::decode(&shard_record.data) {
        Ok(record) => Some(record),
        Err(error) => {
            // A record this build cannot read must not stall the shard; ingest writes only
            // well-formed records, so this is a bug or a foreign writer, and it is logged loudly.
            tracing::error!(sequence = %shard_record.sequence_number, %error, "skipping undecodable stream record");
            None
        }
    }
}

async fn resolve_record(
    context: &Context,
    record: &StreamRecord,
    matching: Vec<Arc<CompiledSubscription>>,
) -> Result<(), StoreError> {
    let mut stored = StoredEvent::from_record(record);
    let settled = join_all(matching.iter().map(|subscription| async {
        let attempt = context.deliverer.attempt(&subscription.subscription, record).await;
        let task = RetryTask {
            record: record.clone(),
            workflow_id: subscription.subscription.workflow_id,
            attempts: vec![attempt.outcome],
        };
        settle(&context.config, task, attempt.verdict)
    }))
    .await;
    stored.deliveries = settled.iter().map(|s| s.state.clone()).collect();
    stored.matched = true;
    // The event is recorded before any of its retries is queued: a retry can finish while a slow
    // endpoint keeps this pass waiting, and this write must not then overwrite the retry's outcome.
    context.ports.events.put(&stored).await?;
    join_all(settled.iter().map(|s| follow_up(context, s))).await.into_iter().collect()
}
