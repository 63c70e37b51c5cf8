//! An undecodable stream record (a newer format after a rollback, or a foreign writer) is parked
//! in the dead-letter queue as a poison record, counted, and passed; the checkpoint passes it only
//! once it is parked.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::{Endpoint, PATIENCE, Shared, config, start_with};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use triggers_checkpoint::{Checkpoint, LeaseStore};
use triggers_schemas::{CustomerId, Timestamp, WorkflowId};
use triggers_stores::embedded::EmbeddedDeliveryQueue;
use triggers_stores::{DeadLetter, DeadLetterKind, DeliveryQueue, QueuedRetry, RetryTask, StoreError};
use triggers_stream::{AppendRecord, SequenceNumber, Stream};
use triggers_stream_consumer::worker::POISON_RECORDS_METRIC;
use triggers_stream_consumer::{ConsumerConfig, ConsumerPorts};

/// The embedded queue, except that parking fails while `refuse_parking` is set.
struct RefusingQueue {
    inner: Arc<dyn DeliveryQueue>,
    refuse_parking: AtomicBool,
}

#[async_trait]
impl DeliveryQueue for RefusingQueue {
    async fn schedule_retry(&self, task: &RetryTask, due: Timestamp) -> Result<(), StoreError> {
        self.inner.schedule_retry(task, due).await
    }
    async fn take_due(&self, now: Timestamp, max: usize, hide_for_millis: i64) -> Result<Vec<QueuedRetry>, StoreError> {
        self.inner.take_due(now, max, hide_for_millis).await
    }
    async fn complete(&self, receipt: &str) -> Result<(), StoreError> {
        self.inner.complete(receipt).await
    }
    async fn park(&self, dead: &DeadLetter) -> Result<(), StoreError> {
        if self.refuse_parking.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the test refuses parking".into()));
        }
        self.inner.park(dead).await
    }
    async fn list_parked(&self, workflow_id: Option<WorkflowId>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.list_parked(workflow_id, limit).await
    }
}

fn poison_count(snapshotter: &metrics_util::debugging::Snapshotter) -> u64 {
    snapshotter.snapshot().into_vec().into_iter().find(|(key, ..)| key.key().name() == POISON_RECORDS_METRIC).map_or(
        0,
        |(.., value)| match value {
            DebugValue::Counter(count) => count,
            other => panic!("{POISON_RECORDS_METRIC} is not a counter: {other:?}"),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_is_parked_counted_and_passed() {
    // This test binary holds this one test, so the global recorder sees only its metrics.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();

    let shared = Shared::open(1);
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let customer = CustomerId::generate();
    shared.customer_subscribed_at(customer, &endpoint.url()).await;
    let queue = Arc::new(RefusingQueue {
        inner: Arc::new(EmbeddedDeliveryQueue::open(&shared.engine).unwrap()),
        refuse_parking: AtomicBool::new(true),
    });
    let ports = ConsumerPorts { queue: queue.clone(), ..shared.ports.clone() };

    let before = shared.append(customer, 1).await;
    // Version 9 of the record format, which this build does not know.
    let poison = Bytes::from_static(&[9, 0x81, 0xa1, b'x', 0xc0, 0xff, 0x00]);
    let appended = shared
        .stream
        .append(vec![AppendRecord { partition_key: customer.to_string(), data: poison.clone() }])
        .await
        .unwrap();
    let poison_at = appended[0].as_ref().unwrap().clone();
    let after = shared.append(customer, 2).await;

    let consumer_config = ConsumerConfig {
        shard_backoff: triggers_stream_consumer::backoff::Backoff {
            base: Duration::from_millis(20),
            ceiling: Duration::from_millis(200),
        },
        ..config("poisoned")
    };
    let consumer = start_with(ports, consumer_config);

    // While the poison record cannot be parked, its batch is not resolved: it is tried again and
    // again, and the checkpoint never passes the poison record.
    let deadline = Instant::now() + PATIENCE;
    while endpoint.hits.lock().unwrap().iter().filter(|(_, id)| *id == before).count() < 3 {
        assert!(Instant::now() < deadline, "the batch was not tried again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lease = shared.leases.list_leases().await.unwrap().remove(0);
    let passed = match &lease.checkpoint {
        Checkpoint::After(sequence) => *sequence >= poison_at.sequence_number,
        _ => false,
    };
    assert!(!passed, "the checkpoint passed an unparked poison record: {lease:?}");
    assert!(!consumer.health.failing_shards().is_empty(), "the failing shard is not reported");
    assert_eq!(poison_count(&snapshotter), 0);

    queue.refuse_parking.store(false, Ordering::SeqCst);
    endpoint.wait_for_all(&[before.clone(), after.clone()].into_iter().collect()).await;
    let deadline = Instant::now() + PATIENCE;
    let checkpoint = loop {
        let lease = shared.leases.list_leases().await.unwrap().remove(0);
        if let Checkpoint::After(sequence) = &lease.checkpoint
            && *sequence > poison_at.sequence_number
        {
            break sequence.clone();
        }
        assert!(Instant::now() < deadline, "the checkpoint never passed the poison record: {lease:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(checkpoint > SequenceNumber::from(0));
    assert!(consumer.health.failing_shards().is_empty(), "the shard is still reported failing");
    consumer.stop().await;

    // Parked once, as a poison record, byte for byte; and counted once.
    let parked = queue.list_parked(None, 10).await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    let DeadLetterKind::PoisonRecord(record) = &parked[0].kind else { panic!("not a poison record: {parked:?}") };
    assert_eq!(record.data, poison.to_vec());
    assert_eq!(record.shard_id, poison_at.shard_id.to_string());
    assert_eq!(record.sequence_number, poison_at.sequence_number.to_string());
    assert_eq!(record.partition_key, customer.to_string());
    assert!(record.error.contains("unknown record format version 9"), "{}", record.error);
    assert_eq!(parked[0].workflow_id(), None);
    assert_eq!(poison_count(&snapshotter), 1);
}
