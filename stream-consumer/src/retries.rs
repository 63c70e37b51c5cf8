//! The retry loop, and what follows any attempt (first or retry): record it, schedule the next
//! one, or park the delivery in the dead-letter queue.

use std::sync::Arc;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use triggers_schemas::{DeliveryState, DeliveryStatus, SubscriptionStatus, Timestamp};
use triggers_stores::{AttemptOutcome, DeadLetter, QueuedRetry, RetryTask, StoreError};

use crate::retry::{Verdict, next_delay};
use crate::{ConsumerConfig, Context};

/// Most retries taken from the queue at once.
const RETRIES_PER_POLL: usize = 100;

/// Takes due retries and attempts them until `shutdown`.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    // A taken retry stays hidden for longer than an attempt can take, then reappears if this
    // process died before completing it.
    let hide_for_millis = (context.config.attempt_timeout.as_millis() as i64) * 2 + 5_000;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(context.config.retry_poll) => {}
        }
        let due = match context.ports.queue.take_due(Timestamp::now(), RETRIES_PER_POLL, hide_for_millis).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "polling the retry queue failed");
                continue;
            }
        };
        for outcome in join_all(due.into_iter().map(|queued| retry_one(&context, queued))).await {
            if let Err(error) = outcome {
                tracing::warn!(%error, "a retry could not be recorded; it will reappear");
            }
        }
    }
}

async fn retry_one(context: &Context, queued: QueuedRetry) -> Result<(), StoreError> {
    let QueuedRetry { receipt, mut task } = queued;
    let record = &task.record;
    let settled = match context.cache.get(record.customer_id, task.workflow_id) {
        Some(subscription) if subscription.subscription.status == SubscriptionStatus::Active => {
            let attempt = context.deliverer.attempt(&subscription.subscription, &task.record).await;
            task.attempts.push(attempt.outcome);
            settle(&context.config, task, attempt.verdict)
        }
        // A deleted or disabled subscription wants nothing more: the delivery is resolved.
        _ => {
            task.attempts.push(AttemptOutcome {
                at: Timestamp::now(),
                status_code: None,
                error: Some("subscription deleted or disabled".into()),
            });
            let state = delivery_state(&task, DeliveryStatus::Gone);
            Settled { task, state, follow_up: FollowUp::Nothing }
        }
    };
    // This attempt's outcome is recorded before the next attempt is queued, so that the next one's
    // outcome (possibly recorded by another consumer) can never be overwritten by this one's.
    let record = &settled.task.record;
    context.ports.events.update_delivery(record.customer_id, record.event_id, &settled.state).await?;
    follow_up(context, &settled).await?;
    context.ports.queue.complete(&receipt).await
}

/// What must still happen for a delivery to be resolved after its latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowUp {
    /// Nothing: delivered, or the subscription is already deleted or disabled.
    Nothing,
    /// The endpoint answered 410: the workflow is gone, so its subscription is disabled and
    /// receives nothing more until its owner turns it back on.
    Disable,
    /// Another attempt, due then.
    Retry(Timestamp),
    /// Retries are used up: park the delivery in the dead-letter queue.
    Park,
}

/// A delivery after an attempt: the task with every attempt so far, the state to record, and what
/// follows.
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    pub(crate) task: RetryTask,
    pub(crate) state: DeliveryState,
    pub(crate) follow_up: FollowUp,
}

/// Decides what follows the verdict of the latest attempt in `task`. Nothing is written here: the
/// caller records [`Settled::state`] first and only then carries out [`follow_up`], because a
/// queued retry may run (and record its own outcome) before a slow caller would otherwise record
/// this one's.
pub(crate) fn settle(config: &ConsumerConfig, task: RetryTask, verdict: Verdict) -> Settled {
    let (status, follow_up) = match verdict {
        Verdict::Delivered => (DeliveryStatus::Delivered, FollowUp::Nothing),
        Verdict::Gone => (DeliveryStatus::Gone, FollowUp::Disable),
        Verdict::Retry { retry_after } => {
            match next_delay(&config.retry_schedule, task.attempts.len(), retry_after, rand::random()) {
                Some(delay) => {
                    let due = Timestamp::now().plus_millis(delay.as_millis() as i64);
                    (DeliveryStatus::Failed, FollowUp::Retry(due))
                }
                None => (DeliveryStatus::DeadLettered, FollowUp::Park),
            }
        }
    };
    Settled { state: delivery_state(&task, status), task, follow_up }
}

/// Queues the retry or parks the delivery, as settled.
pub(crate) async fn follow_up(context: &Context, settled: &Settled) -> Result<(), StoreError> {
    match settled.follow_up {
        FollowUp::Nothing => Ok(()),
        FollowUp::Disable => {
            let customer_id = settled.task.record.customer_id;
            let disabled = context.ports.subscriptions.set_status(
                customer_id,
                settled.task.workflow_id,
                SubscriptionStatus::Disabled,
            );
            match disabled.await {
                // Deleted meanwhile: nothing left to disable.
                Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        }
        FollowUp::Retry(due) => context.ports.queue.schedule_retry(&settled.task, due).await,
        FollowUp::Park => {
            context.ports.queue.park(&DeadLetter { task: settled.task.clone(), parked_at: Timestamp::now() }).await
        }
    }
}

fn delivery_state(task: &RetryTask, status: DeliveryStatus) -> DeliveryState {
    let last = task.attempts.last();
    DeliveryState {
        workflow_id: task.workflow_id,
        status,
        attempts: task.attempts.len() as u32,
        last_attempt_at: last.map(|a| a.at),
        last_status_code: last.and_then(|a| a.status_code),
        last_error: last.and_then(|a| a.error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use triggers_schemas::{CustomerId, EventId, NewEvent, StreamRecord, WorkflowId};

    use super::*;

    fn task_after(failed_attempts: usize) -> RetryTask {
        let record = StreamRecord {
            event_id: EventId::generate(),
            customer_id: CustomerId::generate(),
            received_at: Timestamp::now(),
            event: NewEvent::from_json(json!({"type": "t", "data": null}), "").unwrap(),
        };
        let failed = AttemptOutcome { at: Timestamp::now(), status_code: Some(500), error: Some("HTTP 500".into()) };
        RetryTask { record, workflow_id: WorkflowId::generate(), attempts: vec![failed; failed_attempts] }
    }

    #[test]
    fn a_failure_is_retried_until_the_schedule_runs_out_then_parked() {
        let config = ConsumerConfig { retry_schedule: vec![Duration::from_secs(60)], ..ConsumerConfig::default() };
        let before = Timestamp::now();
        let settled = settle(&config, task_after(1), Verdict::Retry { retry_after: None });
        assert_eq!(settled.state.status, DeliveryStatus::Failed);
        assert_eq!(settled.state.attempts, 1);
        assert_eq!(settled.state.last_status_code, Some(500));
        let FollowUp::Retry(due) = settled.follow_up else { panic!("{:?}", settled.follow_up) };
        assert!(due >= before.plus_millis(60_000) && due <= Timestamp::now().plus_millis(72_000));

        let settled = settle(&config, task_after(2), Verdict::Retry { retry_after: None });
        assert_eq!((settled.state.status, settled.follow_up), (DeliveryStatus::DeadLettered, FollowUp::Park));
        assert_eq!(settled.state.attempts, 2);
    }

    #[test]
    fn delivered_and_gone_need_nothing_more() {
        let config = ConsumerConfig::default();
        let delivered = settle(&config, task_after(1), Verdict::Delivered);
        assert_eq!((delivered.state.status, delivered.follow_up), (DeliveryStatus::Delivered, FollowUp::Nothing));
        let gone = settle(&config, task_after(1), Verdict::Gone);
        assert_eq!((gone.state.status, gone.follow_up), (DeliveryStatus::Gone, FollowUp::Disable));
    }
}
