//! The retry loop, and what follows any attempt (first or retry): record it, schedule the next
//! one, or park the delivery in the dead-letter queue.

use std::sync::Arc;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use triggers_schemas::{DeliveryState, DeliveryStatus, SubscriptionStatus, Timestamp};
use triggers_stores::{AttemptOutcome, DeadLetter, QueuedRetry, RetryTask, StoreError};

use crate::Context;
use crate::retry::{Verdict, next_delay};

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
    let state = match context.cache.get(record.customer_id, task.workflow_id) {
        Some(subscription) if subscription.subscription.status == SubscriptionStatus::Active => {
            let attempt = context.deliverer.attempt(&subscription.subscription, &task.record).await;
            task.attempts.push(attempt.outcome);
            settle(context, task.clone(), attempt.verdict).await?
        }
        // A deleted or disabled subscription wants nothing more: the delivery is resolved.
        _ => {
            task.attempts.push(AttemptOutcome {
                at: Timestamp::now(),
                status_code: None,
                error: Some("subscription deleted or disabled".into()),
            });
            delivery_state(&task, DeliveryStatus::Gone)
        }
    };
    context.ports.events.update_delivery(task.record.customer_id, task.record.event_id, &state).await?;
    context.ports.queue.complete(&receipt).await
}

/// Acts on the verdict of the latest attempt in `task` and returns the delivery's new state.
pub(crate) async fn settle(context: &Context, task: RetryTask, verdict: Verdict) -> Result<DeliveryState, StoreError> {
    let status = match verdict {
        Verdict::Delivered => DeliveryStatus::Delivered,
        Verdict::Gone => DeliveryStatus::Gone,
        Verdict::Retry { retry_after } => {
            match next_delay(&context.config.retry_schedule, task.attempts.len(), retry_after, rand::random()) {
                Some(delay) => {
                    let due = Timestamp::now().plus_millis(delay.as_millis() as i64);
                    context.ports.queue.schedule_retry(&task, due).await?;
                    DeliveryStatus::Failed
                }
                None => {
                    context.ports.queue.park(&DeadLetter { task: task.clone(), parked_at: Timestamp::now() }).await?;
                    DeliveryStatus::DeadLettered
                }
            }
        }
    };
    Ok(delivery_state(&task, status))
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
