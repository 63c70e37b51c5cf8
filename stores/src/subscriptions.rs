//! Subscriptions.

use async_trait::async_trait;
use triggers_schemas::{CustomerId, Subscription, SubscriptionStatus, WorkflowId};

use crate::StoreError;

/// Subscriptions, always addressed through their customer so that no customer reaches another's.
#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    /// Stores a new subscription; `AlreadyExists` if its customer already uses the workflow id.
    /// Workflow ids are unique per customer: another customer's use of the same id is invisible.
    async fn create(&self, subscription: &Subscription) -> Result<(), StoreError>;
    /// One subscription of one customer.
    async fn get(&self, customer_id: CustomerId, workflow_id: WorkflowId) -> Result<Option<Subscription>, StoreError>;
    /// A customer's subscriptions in workflow id order, starting after `after`.
    async fn list(
        &self,
        customer_id: CustomerId,
        after: Option<WorkflowId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// Sets a subscription's status (the consumer disables one whose endpoint answers 410);
    /// `NotFound` if it is missing.
    async fn set_status(
        &self,
        customer_id: CustomerId,
        workflow_id: WorkflowId,
        status: SubscriptionStatus,
    ) -> Result<(), StoreError>;
    /// Every subscription of every customer: what the consumer's matching cache loads.
    async fn list_all(&self) -> Result<Vec<Subscription>, StoreError>;
}
