//! The event store: each accepted event with the state of its deliveries.

use async_trait::async_trait;
use triggers_schemas::{CustomerId, DeliveryState, EventId, StoredEvent};

use crate::StoreError;

/// Events and their delivery states, addressed through their customer.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores the event unless it is stored already (ingest writes `pending` this way; it must
    /// never overwrite what the consumer recorded first).
    async fn insert_if_absent(&self, event: &StoredEvent) -> Result<(), StoreError>;
    /// Stores the event as matched, with its deliveries, replacing what was there.
    async fn put(&self, event: &StoredEvent) -> Result<(), StoreError>;
    /// Replaces one delivery's state (a retry's outcome); `NotFound` if the event is missing.
    async fn update_delivery(
        &self,
        customer_id: CustomerId,
        event_id: EventId,
        delivery: &DeliveryState,
    ) -> Result<(), StoreError>;
    /// One event of one customer.
    async fn get(&self, customer_id: CustomerId, event_id: EventId) -> Result<Option<StoredEvent>, StoreError>;
}
