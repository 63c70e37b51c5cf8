//! The retry queue and the dead-letter queue.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use triggers_schemas::{StreamRecord, Timestamp, WorkflowId};

use crate::StoreError;

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    /// When the attempt started.
    pub at: Timestamp,
    /// The HTTP status, if the endpoint answered.
    pub status_code: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A delivery waiting for its next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryTask {
    /// The event, as it was on the stream.
    pub record: StreamRecord,
    /// The subscription to deliver to.
    pub workflow_id: WorkflowId,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<AttemptOutcome>,
}

/// A retry taken from the queue: done with [`DeliveryQueue::complete`], or it reappears later.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRetry {
    /// What identifies this taking of the task to the queue.
    pub receipt: String,
    /// The task.
    pub task: RetryTask,
}

/// An entry of the dead-letter queue: something the consumer could not resolve, parked for an
/// operator, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// What was parked.
    pub kind: DeadLetterKind,
    /// When it was parked.
    pub parked_at: Timestamp,
}

/// The kinds of dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// A delivery that used up its retries: the event, the subscription and every attempt's outcome.
    Delivery(RetryTask),
    /// A stream record that could not be decoded (e.g. written by a newer build before a
    /// rollback), kept byte for byte so that it can be redriven once a build reads it.
    PoisonRecord(PoisonRecord),
}

/// A stream record the consumer could not decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonRecord {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its sequence number in that shard.
    pub sequence_number: String,
    /// Its partition key (ingest writes the customer id there).
    pub partition_key: String,
    /// The record's bytes, as read.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Why it could not be decoded.
    pub error: String,
    /// When the stream accepted it.
    pub arrived_at: Timestamp,
}

impl DeadLetter {
    /// The workflow a parked delivery was for; `None` for a poison record.
    pub fn workflow_id(&self) -> Option<WorkflowId> {
        match &self.kind {
            DeadLetterKind::Delivery(task) => Some(task.workflow_id),
            DeadLetterKind::PoisonRecord(_) => None,
        }
    }
}

/// Retries and dead letters.
#[async_trait]
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Queues `task` to be taken at or after `due`.
    async fn schedule_retry(&self, task: &RetryTask, due: Timestamp) -> Result<(), StoreError>;
    /// Takes up to `max` tasks that are due at `now`. A taken task is hidden for `hide_for_millis`
    /// and reappears unless completed, so a crash mid-attempt loses nothing.
    async fn take_due(&self, now: Timestamp, max: usize, hide_for_millis: i64) -> Result<Vec<QueuedRetry>, StoreError>;
    /// Removes a taken task for good.
    async fn complete(&self, receipt: &str) -> Result<(), StoreError>;
    /// Parks a delivery in the dead-letter queue.
    async fn park(&self, dead: &DeadLetter) -> Result<(), StoreError>;
    /// Dead letters of every kind, oldest first; with `workflow_id`, only deliveries to that workflow.
    async fn list_parked(&self, workflow_id: Option<WorkflowId>, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;
}
