use std::sync::Mutex;

use async_trait::async_trait;
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_schemas::{CustomerId, Subscription, SubscriptionStatus, Timestamp, WorkflowId};

use super::{decode, encode, pair_key, unavailable};
use crate::{StoreError, SubscriptionStore};

/// Subscriptions keyed by `customer id ++ workflow id`, so a customer's are one prefix.
pub struct EmbeddedSubscriptionStore {
    engine: Engine,
    subscriptions: Keyspace,
    /// Serialises creates (which check uniqueness) and read-modify-write updates.
    create_lock: Mutex<()>,
}

impl EmbeddedSubscriptionStore {
    /// Opens the store in `engine`.
    pub fn open(engine: &Engine) -> Result<Self, StoreError> {
        Ok(Self {
            engine: engine.clone(),
            subscriptions: engine.keyspace("subscriptions").map_err(unavailable)?,
            create_lock: Mutex::new(()),
        })
    }
}

#[async_trait]
impl SubscriptionStore for EmbeddedSubscriptionStore {
    async fn create(&self, subscription: &Subscription) -> Result<(), StoreError> {
        {
            let _guard = self.create_lock.lock().expect("create lock");
            // Workflow ids are unique per customer only: another customer's subscription with the
            // same id is a different key, so its existence can neither block nor be inferred.
            let key = pair_key(subscription.customer_id.0, subscription.workflow_id.0);
            if self.subscriptions.contains_key(key).map_err(unavailable)? {
                return Err(StoreError::AlreadyExists(format!("workflow {}", subscription.workflow_id)));
            }
            self.subscriptions.insert(key, encode(subscription)?).map_err(unavailable)?;
        }
        self.engine.sync().await.map_err(unavailable)
    }

    async fn get(&self, customer_id: CustomerId, workflow_id: WorkflowId) -> Result<Option<Subscription>, StoreError> {
        let key = pair_key(customer_id.0, workflow_id.0);
        self.subscriptions.get(key).map_err(unavailable)?.map(|bytes| decode(&bytes)).transpose()
    }

    async fn list(
        &self,
        customer_id: CustomerId,
        after: Option<WorkflowId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut listed = Vec::new();
        for entry in self.subscriptions.prefix(customer_id.0.as_bytes()) {
            let (key, value) = entry.into_inner().map_err(unavailable)?;
            if after.is_some_and(|after| key[16..] <= after.0.as_bytes()[..]) {
                continue;
            }
            listed.push(decode(&value)?);
            if listed.len() >= limit {
                break;
            }
        }
        Ok(listed)
    }

    async fn set_status(
        &self,
        customer_id: CustomerId,
        workflow_id: WorkflowId,
        status: SubscriptionStatus,
    ) -> Result<(), StoreError> {
        {
            let _guard = self.create_lock.lock().expect("create lock");
            let key = pair_key(customer_id.0, workflow_id.0);
            let bytes = self
                .subscriptions
                .get(key)
                .map_err(unavailable)?
                .ok_or_else(|| StoreError::NotFound(format!("workflow {workflow_id}")))?;
            let mut subscription: Subscription = decode(&bytes)?;
            subscription.status = status;
            subscription.updated_at = Timestamp::now();
            self.subscriptions.insert(key, encode(&subscription)?).map_err(unavailable)?;
        }
        self.engine.sync().await.map_err(unavailable)
    }

    async fn list_all(&self) -> Result<Vec<Subscription>, StoreError> {
        self.subscriptions.iter().map(|entry| decode(&entry.value().map_err(unavailable)?)).collect()
    }
}
