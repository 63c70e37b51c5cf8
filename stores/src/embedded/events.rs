use std::sync::Mutex;

use async_trait::async_trait;
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_schemas::{CustomerId, DeliveryState, EventId, StoredEvent};

use super::{decode, encode, pair_key, unavailable};
use crate::{EventStore, StoreError};

/// Events keyed by `customer id ++ event id`; event ids are time-ordered, so a customer's events
/// are one prefix in arrival order.
///
/// Writes here are not synced on their own: the event's record on the stream is the durable copy,
/// and the consumer writes the event again whenever it processes that record.
pub struct EmbeddedEventStore {
    events: Keyspace,
    write_lock: Mutex<()>,
}

impl EmbeddedEventStore {
    /// Opens the store in `engine`.
    pub fn open(engine: &Engine) -> Result<Self, StoreError> {
        Ok(Self { events: engine.keyspace("events").map_err(unavailable)?, write_lock: Mutex::new(()) })
    }
}

fn event_key(customer_id: CustomerId, event_id: EventId) -> [u8; 32] {
    pair_key(customer_id.0, event_id.as_uuid())
}

#[async_trait]
impl EventStore for EmbeddedEventStore {
    async fn insert_if_absent(&self, event: &StoredEvent) -> Result<(), StoreError> {
        let key = event_key(event.customer_id, event.event_id);
        let _guard = self.write_lock.lock().expect("event lock");
        if !self.events.contains_key(key).map_err(unavailable)? {
            self.events.insert(key, encode(event)?).map_err(unavailable)?;
        }
        Ok(())
    }

    async fn put(&self, event: &StoredEvent) -> Result<(), StoreError> {
        let key = event_key(event.customer_id, event.event_id);
        let _guard = self.write_lock.lock().expect("event lock");
        self.events.insert(key, encode(event)?).map_err(unavailable)
    }

    async fn update_delivery(
        &self,
        customer_id: CustomerId,
        event_id: EventId,
        delivery: &DeliveryState,
    ) -> Result<(), StoreError> {
        let key = event_key(customer_id, event_id);
        let _guard = self.write_lock.lock().expect("event lock");
        let bytes = self
            .events
            .get(key)
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("event {event_id}")))?;
        let mut event: StoredEvent = decode(&bytes)?;
        match event.deliveries.iter_mut().find(|d| d.workflow_id == delivery.workflow_id) {
            Some(existing) => *existing = delivery.clone(),
            None => event.deliveries.push(delivery.clone()),
        }
        self.events.insert(key, encode(&event)?).map_err(unavailable)
    }

    async fn get(&self, customer_id: CustomerId, event_id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.events.get(event_key(customer_id, event_id)).map_err(unavailable)?.map(|bytes| decode(&bytes)).transpose()
    }
}
