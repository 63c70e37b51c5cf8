//! The event as the event store keeps it and as a customer reads it back, with the roll-up of its
//! deliveries into one status.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{CustomerId, EventId, WorkflowId};
use crate::record::StreamRecord;
use crate::time::Timestamp;

/// The status of an event: the roll-up over its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Not yet resolved.
    Pending,
    /// Every matching subscription got it, or none matched.
    Delivered,
    /// At least one delivery failed and has retries scheduled.
    Failed,
    /// At least one subscription gave up; the delivery is parked in the dead-letter queue.
    DeadLettered,
}

/// Where one delivery (one event to one subscription) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The endpoint answered 2xx.
    Delivered,
    /// The endpoint answered 410: the subscription is disabled; the event counts as resolved.
    Gone,
    /// An attempt failed; another is scheduled.
    Failed,
    /// Retries ran out; the delivery is in the dead-letter queue.
    DeadLettered,
}

/// One delivery's state, as recorded after each attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// The subscription's workflow.
    pub workflow_id: WorkflowId,
    /// Where the delivery stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<Timestamp>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// An event as the event store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event's id.
    pub event_id: EventId,
    /// Whose event it is.
    pub customer_id: CustomerId,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Where it came from.
    pub source: Option<String>,
    /// The data subject.
    pub subject: Option<String>,
    /// When it happened, according to the customer.
    pub occurred_at: Option<Timestamp>,
    /// When ingest accepted it.
    pub received_at: Timestamp,
    /// The payload.
    pub data: Value,
    /// Free-form metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Whether the consumer has matched it against the subscriptions yet. Until then the event is
    /// pending whatever its deliveries say.
    pub matched: bool,
    /// One entry per matching subscription.
    pub deliveries: Vec<DeliveryState>,
}

impl StoredEvent {
    /// The stored form of a record, before any matching.
    pub fn from_record(record: &StreamRecord) -> Self {
        let event = &record.event;
        Self {
            event_id: record.event_id,
            customer_id: record.customer_id,
            event_type: event.event_type.clone(),
            source: event.source.clone(),
            subject: event.subject.clone(),
            occurred_at: event.occurred_at,
            received_at: record.received_at,
            data: event.data.clone(),
            metadata: event.metadata.clone(),
            matched: false,
            deliveries: Vec::new(),
        }
    }

    /// The roll-up of the deliveries into one status, as the contract defines it.
    pub fn status(&self) -> EventStatus {
        if !self.matched {
            return EventStatus::Pending;
        }
        let any = |wanted: DeliveryStatus| self.deliveries.iter().any(|d| d.status == wanted);
        if any(DeliveryStatus::DeadLettered) {
            EventStatus::DeadLettered
        } else if any(DeliveryStatus::Failed) {
            EventStatus::Failed
        } else {
            EventStatus::Delivered
        }
    }

    /// Total attempts over every delivery.
    pub fn delivery_attempts(&self) -> u32 {
        self.deliveries.iter().map(|d| d.attempts).sum()
    }

    /// The latest attempt over every delivery.
    pub fn last_delivery_at(&self) -> Option<Timestamp> {
        self.deliveries.iter().filter_map(|d| d.last_attempt_at).max()
    }

    /// The event view of the public API, without deliveries (the listing form).
    pub fn view(&self) -> Value {
        serde_json::json!({
            "event_id": self.event_id,
            "type": self.event_type,
            "source": self.source,
            "subject": self.subject,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
            "status": self.status(),
            "delivery_attempts": self.delivery_attempts(),
            "last_delivery_at": self.last_delivery_at(),
            "data": self.data,
            "metadata": self.metadata,
        })
    }

    /// The event view with its deliveries (the single-event form).
    pub fn detailed_view(&self) -> Value {
        let mut view = self.view();
        view["deliveries"] = serde_json::to_value(&self.deliveries).expect("deliveries serialise");
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_with(statuses: &[DeliveryStatus], matched: bool) -> StoredEvent {
        StoredEvent {
            event_id: EventId::generate(),
            customer_id: CustomerId::generate(),
            event_type: "t".into(),
            source: None,
            subject: None,
            occurred_at: None,
            received_at: Timestamp::from_millis(0),
            data: Value::Null,
            metadata: None,
            matched,
            deliveries: statuses
                .iter()
                .map(|&status| DeliveryState {
                    workflow_id: WorkflowId::generate(),
                    status,
                    attempts: 1,
                    last_attempt_at: Some(Timestamp::from_millis(5)),
                    last_status_code: None,
                    last_error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn status_rolls_up_the_worst_delivery() {
        use DeliveryStatus::*;
        assert_eq!(event_with(&[], false).status(), EventStatus::Pending);
        assert_eq!(event_with(&[], true).status(), EventStatus::Delivered);
        assert_eq!(event_with(&[Delivered, Gone], true).status(), EventStatus::Delivered);
        assert_eq!(event_with(&[Delivered, Failed], true).status(), EventStatus::Failed);
        assert_eq!(event_with(&[Failed, DeadLettered], true).status(), EventStatus::DeadLettered);
    }

    #[test]
    fn the_view_counts_attempts() {
        let view = event_with(&[DeliveryStatus::Delivered, DeliveryStatus::Failed], true).view();
        assert_eq!(view["delivery_attempts"], 2);
        assert_eq!(view["status"], "failed");
        assert_eq!(view["last_delivery_at"], "1970-01-01T00:00:00.005Z");
    }
}
