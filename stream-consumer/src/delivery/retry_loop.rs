//! The retry loop: takes due retries from the durable queue and resolves each.

use std::sync::Arc;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use triggers_schemas::Timestamp;

use super::resolve;
use crate::Context;
use crate::calls::within;

/// Most retries taken from the queue at once.
const RETRIES_PER_POLL: usize = 100;

/// Takes due retries and resolves them until `shutdown`.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    // A taken retry stays hidden for longer than an attempt and its recording can take, then
    // reappears if this process died before completing it.
    let hidden_for = context.config.attempt_timeout.saturating_add(context.config.call_timeout).saturating_mul(2);
    let hide_for_millis = i64::try_from(hidden_for.as_millis()).unwrap_or(i64::MAX).saturating_add(5_000);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(context.config.retry_poll) => {}
        }
        let taken = context.ports.queue.take_due(Timestamp::now(), RETRIES_PER_POLL, hide_for_millis);
        let due = match within(context.config.call_timeout, "taking due retries", taken).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "polling the retry queue failed");
                continue;
            }
        };
        for outcome in join_all(due.into_iter().map(|queued| resolve::retry(&context, queued))).await {
            if let Err(error) = outcome {
                tracing::warn!(%error, "a retry could not be recorded; it will reappear");
            }
        }
    }
}
