//! The one place a delivery is resolved: attempt → settle → record → follow-up.
//!
//! A delivery is resolved when it has succeeded, been refused with 410, been scheduled in the
//! durable retry queue, or been parked in the dead-letter queue, and its state is recorded. The
//! state is always recorded before the follow-up runs: a queued retry may run (and record its own
//! outcome) before a slow first pass would otherwise record this one's, and must not be
//! overwritten by it.

use std::sync::Arc;

use futures::future::join_all;
use triggers_schemas::{StoredEvent, StreamRecord, Subscription, SubscriptionStatus, Timestamp};
use triggers_stores::{AttemptOutcome, DeadLetter, DeadLetterKind, QueuedRetry, RetryTask, StoreError};

use super::policy::{FollowUp, Settled, settle, settle_unsubscribed};
use crate::Context;
use crate::calls::within;
use crate::matching::CompiledSubscription;

/// Attempts `task` once more at `subscription` and settles the outcome.
async fn attempt_and_settle(context: &Context, subscription: &Subscription, mut task: RetryTask) -> Settled {
    let attempt = context.deliverer.attempt(subscription, &task.record).await;
    task.attempts.push(attempt.outcome);
    settle(&context.config.retry, task, attempt.verdict, Timestamp::now(), rand::random())
}

/// The first pass over an event read from its shard: every matching subscription is attempted at
/// once (one slow endpoint costs at most one attempt timeout), the event is recorded with every
/// delivery's state, then each follow-up runs.
pub(crate) async fn first_pass(
    context: &Context,
    record: &StreamRecord,
    mut stored: StoredEvent,
    matching: Vec<Arc<CompiledSubscription>>,
) -> Result<(), StoreError> {
    let settled = join_all(matching.iter().map(|subscription| {
        let task =
            RetryTask { record: record.clone(), workflow_id: subscription.subscription.workflow_id, attempts: vec![] };
        attempt_and_settle(context, &subscription.subscription, task)
    }))
    .await;
    stored.deliveries = settled.iter().map(|s| s.state.clone()).collect();
    stored.matched = true;
    within(context.config.call_timeout, "recording an event", context.ports.events.put(&stored)).await?;
    join_all(settled.iter().map(|s| follow_up(context, s))).await.into_iter().collect()
}

/// A retry taken from the queue: attempted (unless its subscription is gone), its state recorded,
/// its follow-up run, and only then removed from the queue; a failure leaves it there to reappear.
pub(crate) async fn retry(context: &Context, queued: QueuedRetry) -> Result<(), StoreError> {
    let QueuedRetry { receipt, mut task } = queued;
    let settled = match context.cache.get(task.record.customer_id, task.workflow_id) {
        Some(subscription) if subscription.subscription.status == SubscriptionStatus::Active => {
            attempt_and_settle(context, &subscription.subscription, task).await
        }
        // A deleted or disabled subscription wants nothing more: the delivery is resolved.
        _ => {
            task.attempts.push(AttemptOutcome {
                at: Timestamp::now(),
                status_code: None,
                error: Some("subscription deleted or disabled".into()),
            });
            settle_unsubscribed(task)
        }
    };
    let record = &settled.task.record;
    let recorded = context.ports.events.update_delivery(record.customer_id, record.event_id, &settled.state);
    within(context.config.call_timeout, "recording a delivery", recorded).await?;
    follow_up(context, &settled).await?;
    within(context.config.call_timeout, "completing a retry", context.ports.queue.complete(&receipt)).await
}

/// Queues the retry, parks the delivery or disables the subscription, as settled.
async fn follow_up(context: &Context, settled: &Settled) -> Result<(), StoreError> {
    let limit = context.config.call_timeout;
    match settled.follow_up {
        FollowUp::Nothing => Ok(()),
        FollowUp::Disable => {
            let customer_id = settled.task.record.customer_id;
            let disabled = context.ports.subscriptions.set_status(
                customer_id,
                settled.task.workflow_id,
                SubscriptionStatus::Disabled,
            );
            match within(limit, "disabling a subscription", disabled).await {
                // Deleted meanwhile: nothing left to disable.
                Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        }
        FollowUp::Retry(due) => {
            within(limit, "scheduling a retry", context.ports.queue.schedule_retry(&settled.task, due)).await
        }
        FollowUp::Park => {
            let dead = DeadLetter { kind: DeadLetterKind::Delivery(settled.task.clone()), parked_at: Timestamp::now() };
            within(limit, "parking a delivery", context.ports.queue.park(&dead)).await
        }
    }
}
