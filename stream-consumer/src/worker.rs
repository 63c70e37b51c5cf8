//! One shard's worker: read a batch, resolve every record in it, checkpoint, repeat.
//!
//! **A checkpoint never moves past an unresolved record.** A record is resolved when each of its
//! matching deliveries is resolved ([`crate::delivery::resolve`]) and the event is recorded, or,
//! when it cannot be decoded, once it is parked in the dead-letter queue as a poison record. If
//! anything fails, the worker reports the shard unhealthy, backs off (exponentially, with jitter,
//! up to a ceiling) and reopens the shard at its checkpoint (deliveries are at-least-once).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::{Checkpoint, Lease, LeaseError};
use triggers_schemas::{RecordDecodeError, StoredEvent, StreamRecord, Timestamp};
use triggers_stores::{DeadLetter, DeadLetterKind, PoisonRecord, StoreError};
use triggers_stream::{ShardId, ShardRecord, StreamError};

use crate::Context;
use crate::calls::within;
use crate::delivery::resolve;
use crate::health::ShardFailure;

/// The metric counting undecodable stream records parked in the dead-letter queue.
pub const POISON_RECORDS_METRIC: &str = "triggers_poison_records_total";

/// A lease this worker holds, shared by the shard worker (which checkpoints) and the renewer: both
/// write through the one copy so that each write is conditional on the last.
pub struct HeldLease {
    /// The lease as last written.
    pub lease: Mutex<Lease>,
    /// Cancelled when a write finds the lease taken by someone else.
    pub lost: CancellationToken,
}

/// Reads and resolves one shard until it ends, the lease is lost, or `stop` is cancelled.
pub(crate) async fn run_shard(context: Arc<Context>, held: Arc<HeldLease>, stop: CancellationToken) {
    let shard = held.lease.lock().await.shard_id.clone();
    read_until_stopped(&context, &held, &shard, &stop).await;
    // A shard this worker no longer reads is not its trouble any more.
    context.health.shard_healthy(&shard);
}

async fn read_until_stopped(context: &Context, held: &HeldLease, shard: &ShardId, stop: &CancellationToken) {
    let limit = context.config.call_timeout;
    loop {
        let checkpoint = held.lease.lock().await.checkpoint.clone();
        let Some(start) = checkpoint.start_position() else { return };
        let mut reader =
            match within(limit, "opening a shard reader", context.ports.stream.open_reader(shard, start)).await {
                Ok(reader) => reader,
                Err(StreamError::NoSuchShard(_)) => {
                    // The shard aged out of retention: nothing is left to read in it.
                    write_checkpoint(context, held, Checkpoint::ShardEnd, stop).await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%shard, %error, "opening shard reader failed");
                    if back_off(context, held, shard, ShardFailure::Reading, stop).await {
                        return;
                    }
                    continue;
                }
            };
        let failure = loop {
            if stop.is_cancelled() || held.lost.is_cancelled() {
                return;
            }
            let batch = match within(limit, "reading a shard", reader.next_batch(context.config.batch_size)).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%shard, %error, "reading shard failed; reopening at the checkpoint");
                    break ShardFailure::Reading;
                }
            };
            if let Some(last) = batch.records.last() {
                if let Err(error) = resolve_batch(context, shard, &batch.records).await {
                    tracing::warn!(%shard, %error, "resolving a batch failed; reopening at the checkpoint");
                    break ShardFailure::Resolving;
                }
                if !write_checkpoint(context, held, Checkpoint::After(last.sequence_number.clone()), stop).await {
                    return;
                }
            }
            context.health.shard_healthy(shard);
            if let Some(children) = batch.shard_end {
                tracing::info!(%shard, ?children, "shard finished");
                write_checkpoint(context, held, Checkpoint::ShardEnd, stop).await;
                return;
            }
            if batch.records.is_empty() && pause(stop, &held.lost, context.config.idle_poll).await {
                return;
            }
        };
        if back_off(context, held, shard, failure, stop).await {
            return;
        }
    }
}

/// Reports `failure` and pauses for the backoff its count calls for; true if stopped or lost
/// meanwhile.
async fn back_off(
    context: &Context,
    held: &HeldLease,
    shard: &ShardId,
    failure: ShardFailure,
    stop: &CancellationToken,
) -> bool {
    let failures = context.health.shard_failed(shard, failure);
    let delay = context.config.shard_backoff.delay(failures, rand::random());
    tracing::info!(%shard, failures, delay_ms = delay.as_millis(), "shard worker backs off");
    pause(stop, &held.lost, delay).await
}

/// Sleeps for `duration`; true if stopped or lost meanwhile.
async fn pause(stop: &CancellationToken, lost: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = lost.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

/// Writes a checkpoint, backing off while the store is unavailable. False if the lease was lost
/// (or the worker stopped before the write succeeded).
async fn write_checkpoint(
    context: &Context,
    held: &HeldLease,
    checkpoint: Checkpoint,
    stop: &CancellationToken,
) -> bool {
    loop {
        let mut lease = held.lease.lock().await;
        let shard = lease.shard_id.clone();
        let written = within(
            context.config.call_timeout,
            "writing a checkpoint",
            context.ports.leases.checkpoint(&lease, checkpoint.clone()),
        )
        .await;
        match written {
            Ok(updated) => {
                *lease = updated;
                return true;
            }
            Err(LeaseError::Conflict(_) | LeaseError::NotFound(_)) => {
                tracing::warn!(%shard, "lease lost while checkpointing");
                held.lost.cancel();
                return false;
            }
            Err(error) => {
                tracing::warn!(%shard, %error, "checkpoint failed; retrying");
                drop(lease);
                if back_off(context, held, &shard, ShardFailure::Checkpointing, stop).await {
                    return false;
                }
            }
        }
    }
}

/// Resolves every record of a batch, concurrently: one slow endpoint costs at most one attempt
/// timeout, whoever else is in the batch. Records this build cannot decode are parked; the others
/// are matched first, customer by customer (one call to each customer's compiled matcher).
async fn resolve_batch(context: &Context, shard: &ShardId, records: &[ShardRecord]) -> Result<(), StoreError> {
    let mut decoded = Vec::with_capacity(records.len());
    let mut poisoned = Vec::new();
    for shard_record in records {
        match StreamRecord::decode(&shard_record.data) {
            Ok(record) => decoded.push(record),
            Err(error) => poisoned.push((shard_record, error)),
        }
    }
    let matching = context.cache.matching(&decoded.iter().collect::<Vec<_>>());
    let delivered =
        join_all(decoded.iter().zip(matching).map(|(record, matching)| {
            resolve::first_pass(context, record, StoredEvent::from_record(record), matching)
        }));
    let parked =
        join_all(poisoned.iter().map(|(shard_record, error)| park_poison_record(context, shard, shard_record, error)));
    let (delivered, parked) = tokio::join!(delivered, parked);
    delivered.into_iter().chain(parked).collect()
}

/// Parks a record this build cannot decode (a newer format after a rollback, or a foreign writer)
/// in the dead-letter queue, byte for byte, so that it is neither lost nor able to stall its shard.
async fn park_poison_record(
    context: &Context,
    shard: &ShardId,
    shard_record: &ShardRecord,
    error: &RecordDecodeError,
) -> Result<(), StoreError> {
    let poison = PoisonRecord {
        shard_id: shard.to_string(),
        sequence_number: shard_record.sequence_number.to_string(),
        partition_key: shard_record.partition_key.clone(),
        data: shard_record.data.to_vec(),
        error: error.to_string(),
        arrived_at: shard_record.arrived_at,
    };
    let dead = DeadLetter { kind: DeadLetterKind::PoisonRecord(poison), parked_at: Timestamp::now() };
    within(context.config.call_timeout, "parking a poison record", context.ports.queue.park(&dead)).await?;
    metrics::counter!(POISON_RECORDS_METRIC).increment(1);
    tracing::error!(
        %shard,
        sequence = %shard_record.sequence_number,
        %error,
        "undecodable stream record parked in the dead-letter queue"
    );
    Ok(())
}
