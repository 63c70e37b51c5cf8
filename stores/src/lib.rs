//! The stores every component reads and writes besides the stream and the lease table, each a narrow
//! port with an embedded adapter. The aws backend is to give each an AWS, Postgres or Redis adapter
//! (not built yet: today only the embedded adapters exist):
//!
//! | port | aws-backend adapter (planned) | holds |
//! | --- | --- | --- |
//! | [`CustomerStore`] | PostgreSQL | customers and the hashes of their API keys |
//! | [`SubscriptionStore`] | PostgreSQL | subscriptions (selector, URL, signing secret) |
//! | [`EventStore`] | DynamoDB | each event with its delivery states |
//! | [`DeliveryQueue`] | SQS | retries waiting for their time, and the dead-letter queue |
//! | [`LimitStore`] | Redis | rate-limit windows and idempotency keys |

pub mod customers;
pub mod embedded;
pub mod events;
pub mod limits;
pub mod queue;
pub mod subscriptions;

pub use customers::CustomerStore;
pub use events::EventStore;
pub use limits::{IdempotencyBegin, LimitStore, RateDecision};
pub use queue::{AttemptOutcome, DeadLetter, DeadLetterKind, DeliveryQueue, PoisonRecord, QueuedRetry, RetryTask};
pub use subscriptions::SubscriptionStore;

/// A store failure, as every port reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The item exists already (a create with a taken id).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// No such item.
    #[error("not found: {0}")]
    NotFound(String),
    /// The store could not be reached or failed; the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}
