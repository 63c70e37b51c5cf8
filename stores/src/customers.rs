//! Customers and API keys.

use async_trait::async_trait;
use triggers_schemas::{ApiKey, Customer, CustomerId};

use crate::StoreError;

/// Customers and the hashes of their API keys.
#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    /// Stores a new customer; `AlreadyExists` if the id is taken.
    async fn create_customer(&self, customer: &Customer) -> Result<(), StoreError>;
    /// One customer.
    async fn get_customer(&self, customer_id: CustomerId) -> Result<Option<Customer>, StoreError>;
    /// Stores a new API key (its hash, never the key).
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The key whose secret hashes to `key_hash`, usable or not.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
}
