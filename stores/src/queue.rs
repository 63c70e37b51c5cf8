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

/// A delivery that gave up, parked for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event, the subscription and every attempt's outcome.
    pub task: RetryTask,
    /// When it was parked.
    pub parked_at: Timestamp,
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
    /// Parked deliveries, optionally of one workflow, oldest first.
    async fn list_parked(&self, workflow_id: Option<WorkflowId>, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;
}
