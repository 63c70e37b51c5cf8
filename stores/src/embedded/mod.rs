//! Embedded adapters of every store port, on the one embedded storage engine. Values are
//! MessagePack; keys are chosen so that each listing is one prefix or range scan.

mod customers;
mod events;
mod limits;
mod queue;
mod subscriptions;

pub use customers::EmbeddedCustomerStore;
pub use events::EmbeddedEventStore;
pub use limits::{EmbeddedLimitStore, Purged};
pub use queue::EmbeddedDeliveryQueue;
pub use subscriptions::EmbeddedSubscriptionStore;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(unavailable)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(unavailable)
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A key made of two UUIDs: an owner and an item, so that an owner's items form one prefix.
fn pair_key(owner: uuid::Uuid, item: uuid::Uuid) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(owner.as_bytes());
    key[16..].copy_from_slice(item.as_bytes());
    key
}
