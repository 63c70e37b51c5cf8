//! A time limit on every call the consumer makes to a store or the stream: a call that never
//! answers (the AWS SDK sets no timeout of its own) must not hold a worker, a renewal or the retry
//! loop forever. A call past its limit fails like an unavailable store.

use std::future::Future;
use std::time::Duration;

use triggers_checkpoint::LeaseError;
use triggers_stores::StoreError;
use triggers_stream::StreamError;

/// An error a port reports when it is unavailable, built for a call that took too long.
pub(crate) trait TimedOut {
    fn timed_out(message: String) -> Self;
}

impl TimedOut for StoreError {
    fn timed_out(message: String) -> Self {
        Self::Unavailable(message)
    }
}

impl TimedOut for LeaseError {
    fn timed_out(message: String) -> Self {
        Self::Unavailable(message)
    }
}

impl TimedOut for StreamError {
    fn timed_out(message: String) -> Self {
        Self::Unavailable(message)
    }
}

/// `call`, failed as unavailable unless it answers within `limit`; `what` names it in the error.
pub(crate) async fn within<T, E: TimedOut>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => answer,
        Err(_) => Err(E::timed_out(format!("{what} took longer than {} ms", limit.as_millis()))),
    }
}
