//! The shapes every Triggers component agrees on: the event as a customer sends it, the record on the
//! stream, the event as a customer reads it back, subscriptions, customers and keys, identifiers,
//! timestamps, webhook signatures and RFC 9457 problem documents.
//!
//! This crate does no I/O. Everything here is plain data plus the pure functions that validate,
//! encode or derive it, so that every other crate can depend on it without pulling in a runtime.

pub mod address;
pub mod customer;
pub mod event;
pub mod ids;
pub mod problem;
pub mod record;
pub mod subscription;
pub mod time;
pub mod view;
pub mod webhook;

pub use customer::{ApiKey, Customer, Scope};
pub use event::{FieldError, NewEvent};
pub use ids::{CustomerId, EventId, KeyId, WorkflowId};
pub use problem::Problem;
pub use record::{RecordDecodeError, StreamRecord};
pub use subscription::{Subscription, SubscriptionStatus};
pub use time::Timestamp;
pub use view::{DeliveryState, DeliveryStatus, EventStatus, StoredEvent};
