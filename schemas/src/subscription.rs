//! Subscriptions: which of a customer's events start which workflow, and where to deliver them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{CustomerId, WorkflowId};
use crate::time::Timestamp;

/// Whether a subscription receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Matching events are delivered.
    #[default]
    Active,
    /// Kept, but receives nothing.
    Disabled,
}

/// One subscription, as stored and as shown to its customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The workflow this subscription starts; unique per subscription.
    pub workflow_id: WorkflowId,
    /// The owner.
    pub customer_id: CustomerId,
    /// The pattern events must match: an event selector, as validated by `triggers-selector`.
    pub event_selector: Value,
    /// Where matching events are POSTed.
    pub webhook_url: String,
    /// Whether it receives events.
    pub status: SubscriptionStatus,
    /// The Standard Webhooks secret, `whsec_` + base64.
    pub signing_secret: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}
