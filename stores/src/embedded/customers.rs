use std::sync::Mutex;

use async_trait::async_trait;
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_schemas::{ApiKey, Customer, CustomerId};

use super::{decode, encode, unavailable};
use crate::{CustomerStore, StoreError};

/// Customers (keyed by id) and API keys (keyed by the hash of the secret).
pub struct EmbeddedCustomerStore {
    engine: Engine,
    customers: Keyspace,
    api_keys: Keyspace,
    create_lock: Mutex<()>,
}

impl EmbeddedCustomerStore {
    /// Opens the store in `engine`.
    pub fn open(engine: &Engine) -> Result<Self, StoreError> {
        Ok(Self {
            engine: engine.clone(),
            customers: engine.keyspace("customers").map_err(unavailable)?,
            api_keys: engine.keyspace("api_keys").map_err(unavailable)?,
            create_lock: Mutex::new(()),
        })
    }

    fn insert_new(&self, keyspace: &Keyspace, key: &[u8], value: Vec<u8>, what: String) -> Result<(), StoreError> {
        let _guard = self.create_lock.lock().expect("create lock");
        if keyspace.contains_key(key).map_err(unavailable)? {
            return Err(StoreError::AlreadyExists(what));
        }
        keyspace.insert(key, value).map_err(unavailable)
    }
}

#[async_trait]
impl CustomerStore for EmbeddedCustomerStore {
    async fn create_customer(&self, customer: &Customer) -> Result<(), StoreError> {
        let id = customer.customer_id;
        self.insert_new(&self.customers, id.0.as_bytes(), encode(customer)?, format!("customer {id}"))?;
        self.engine.sync().await.map_err(unavailable)
    }

    async fn get_customer(&self, customer_id: CustomerId) -> Result<Option<Customer>, StoreError> {
        self.customers.get(customer_id.0.as_bytes()).map_err(unavailable)?.map(|bytes| decode(&bytes)).transpose()
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.insert_new(&self.api_keys, key.key_hash.as_bytes(), encode(key)?, format!("api key {}", key.key_id))?;
        self.engine.sync().await.map_err(unavailable)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.api_keys.get(key_hash.as_bytes()).map_err(unavailable)?.map(|bytes| decode(&bytes)).transpose()
    }
}
