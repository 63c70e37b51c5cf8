use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_schemas::{Timestamp, WorkflowId};
use uuid::Uuid;

use super::{decode, encode, unavailable};
use crate::{DeadLetter, DeadLetterKind, DeliveryQueue, PoisonRecord, QueuedRetry, RetryTask, StoreError};

/// Retries keyed by `due time ++ id`, so the due ones are one range scan from the start; dead
/// letters keyed by a time-ordered id.
pub struct EmbeddedDeliveryQueue {
    engine: Engine,
    retries: Keyspace,
    dead_letters: Keyspace,
    take_lock: Mutex<()>,
}

impl EmbeddedDeliveryQueue {
    /// Opens the queues in `engine`.
    pub fn open(engine: &Engine) -> Result<Self, StoreError> {
        Ok(Self {
            engine: engine.clone(),
            retries: engine.keyspace("retry_queue").map_err(unavailable)?,
            dead_letters: engine.keyspace("dead_letters").map_err(unavailable)?,
            take_lock: Mutex::new(()),
        })
    }
}

/// A dead letter as stored. Entries written before poison records existed hold only `task` and
/// `parked_at`, and still read as parked deliveries.
#[derive(Serialize, Deserialize)]
struct StoredDeadLetter {
    parked_at: Timestamp,
    #[serde(default)]
    task: Option<RetryTask>,
    #[serde(default)]
    poison_record: Option<PoisonRecord>,
}

impl StoredDeadLetter {
    fn from_dead_letter(dead: &DeadLetter) -> Self {
        let (task, poison_record) = match &dead.kind {
            DeadLetterKind::Delivery(task) => (Some(task.clone()), None),
            DeadLetterKind::PoisonRecord(record) => (None, Some(record.clone())),
        };
        Self { parked_at: dead.parked_at, task, poison_record }
    }

    fn into_dead_letter(self) -> Result<DeadLetter, StoreError> {
        let kind = match (self.task, self.poison_record) {
            (Some(task), _) => DeadLetterKind::Delivery(task),
            (None, Some(record)) => DeadLetterKind::PoisonRecord(record),
            (None, None) => return Err(StoreError::Unavailable("a stored dead letter holds nothing".into())),
        };
        Ok(DeadLetter { kind, parked_at: self.parked_at })
    }
}

/// Timestamps are stored with their sign bit flipped so that byte order is time order.
fn retry_key(due: Timestamp, id: Uuid) -> [u8; 24] {
    let mut key = [0; 24];
    key[..8].copy_from_slice(&((due.as_millis() as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(id.as_bytes());
    key
}

fn parse_receipt(receipt: &str) -> Result<Vec<u8>, StoreError> {
    let bytes: Option<Vec<u8>> = (0..receipt.len())
        .step_by(2)
        .map(|i| receipt.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    bytes.filter(|b| b.len() == 24).ok_or_else(|| StoreError::NotFound(format!("receipt {receipt}")))
}

fn receipt_of(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl DeliveryQueue for EmbeddedDeliveryQueue {
    async fn schedule_retry(&self, task: &RetryTask, due: Timestamp) -> Result<(), StoreError> {
        self.retries.insert(retry_key(due, Uuid::now_v7()), encode(task)?).map_err(unavailable)?;
        self.engine.sync().await.map_err(unavailable)
    }

    async fn take_due(&self, now: Timestamp, max: usize, hide_for_millis: i64) -> Result<Vec<QueuedRetry>, StoreError> {
        let taken = {
            let _guard = self.take_lock.lock().expect("take lock");
            let due: Vec<_> = self
                .retries
                .range(..retry_key(now.plus_millis(1), Uuid::nil()))
                .take(max)
                .map(|entry| entry.into_inner().map_err(unavailable))
                .collect::<Result<_, _>>()?;
            let mut batch = self.engine.batch();
            let mut taken = Vec::with_capacity(due.len());
            for (key, value) in due {
                // Taking moves the task to a later due time: it stays queued, hidden, until completed.
                let hidden_key = retry_key(now.plus_millis(hide_for_millis), Uuid::now_v7());
                batch.remove(&self.retries, key);
                batch.insert(&self.retries, hidden_key, value.clone());
                taken.push(QueuedRetry { receipt: receipt_of(&hidden_key), task: decode(&value)? });
            }
            batch.commit().map_err(unavailable)?;
            taken
        };
        Ok(taken)
    }

    async fn complete(&self, receipt: &str) -> Result<(), StoreError> {
        self.retries.remove(parse_receipt(receipt)?).map_err(unavailable)?;
        self.engine.sync().await.map_err(unavailable)
    }

    async fn park(&self, dead: &DeadLetter) -> Result<(), StoreError> {
        self.dead_letters
            .insert(Uuid::now_v7().as_bytes(), encode(&StoredDeadLetter::from_dead_letter(dead))?)
            .map_err(unavailable)?;
        self.engine.sync().await.map_err(unavailable)
    }

    async fn list_parked(&self, workflow_id: Option<WorkflowId>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut listed = Vec::new();
        for entry in self.dead_letters.iter() {
            let stored: StoredDeadLetter = decode(&entry.value().map_err(unavailable)?)?;
            let dead = stored.into_dead_letter()?;
            if workflow_id.is_none_or(|w| dead.workflow_id() == Some(w)) {
                listed.push(dead);
                if listed.len() >= limit {
                    break;
                }
            }
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use triggers_schemas::{CustomerId, EventId, NewEvent, StreamRecord};

    use super::*;

    /// The shape dead letters had before poison records existed.
    #[derive(Serialize)]
    struct EarlierDeadLetter {
        task: RetryTask,
        parked_at: Timestamp,
    }

    #[test]
    fn dead_letters_written_before_poison_records_existed_read_as_deliveries() {
        let record = StreamRecord {
            event_id: EventId::generate(),
            customer_id: CustomerId::generate(),
            received_at: Timestamp::now(),
            event: NewEvent::from_json(json!({"type": "t", "data": 1}), "").unwrap(),
        };
        let task = RetryTask { record, workflow_id: WorkflowId::generate(), attempts: vec![] };
        let parked_at = Timestamp::now();
        let bytes = encode(&EarlierDeadLetter { task: task.clone(), parked_at }).unwrap();
        let read = decode::<StoredDeadLetter>(&bytes).unwrap().into_dead_letter().unwrap();
        assert_eq!(read, DeadLetter { kind: DeadLetterKind::Delivery(task), parked_at });
    }
}
