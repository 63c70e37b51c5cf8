//! The subscription cache: every customer's active subscriptions, with selectors compiled, held in
//! memory and reloaded periodically so that matching never waits on a database.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use triggers_schemas::{CustomerId, Selector, Subscription, SubscriptionStatus, WorkflowId};
use triggers_stores::{StoreError, SubscriptionStore};

/// A subscription with its selector compiled.
#[derive(Debug)]
pub struct CompiledSubscription {
    /// The subscription as stored.
    pub subscription: Subscription,
    /// Its selector, ready to match; `None` if the stored selector no longer parses (it never
    /// matches then, and a warning is logged at load).
    pub selector: Option<Selector>,
}

/// Every customer's subscriptions, by customer.
#[derive(Default)]
pub struct SubscriptionCache {
    by_customer: DashMap<CustomerId, Arc<Vec<Arc<CompiledSubscription>>>>,
}

impl SubscriptionCache {
    /// The active subscriptions of `customer_id` whose selector matches `event`.
    pub fn matching(&self, customer_id: CustomerId, event: &Value) -> Vec<Arc<CompiledSubscription>> {
        let Some(subscriptions) = self.by_customer.get(&customer_id).map(|entry| Arc::clone(entry.value())) else {
            return Vec::new();
        };
        subscriptions
            .iter()
            .filter(|s| s.subscription.status == SubscriptionStatus::Active)
            .filter(|s| s.selector.as_ref().is_some_and(|selector| selector.matches(event)))
            .cloned()
            .collect()
    }

    /// One subscription, active or not.
    pub fn get(&self, customer_id: CustomerId, workflow_id: WorkflowId) -> Option<Arc<CompiledSubscription>> {
        let subscriptions = self.by_customer.get(&customer_id)?;
        subscriptions.iter().find(|s| s.subscription.workflow_id == workflow_id).cloned()
    }

    /// Reloads every subscription from the store.
    pub async fn refresh(&self, store: &dyn SubscriptionStore) -> Result<(), StoreError> {
        let mut grouped: std::collections::HashMap<CustomerId, Vec<Arc<CompiledSubscription>>> = Default::default();
        for subscription in store.list_all().await? {
            let selector = match Selector::parse(&subscription.event_selector, "/event_selector") {
                Ok(selector) => Some(selector),
                Err(errors) => {
                    tracing::warn!(workflow_id = %subscription.workflow_id, ?errors, "stored selector does not parse");
                    None
                }
            };
            grouped
                .entry(subscription.customer_id)
                .or_default()
                .push(Arc::new(CompiledSubscription { subscription, selector }));
        }
        self.by_customer.retain(|customer, _| grouped.contains_key(customer));
        for (customer, subscriptions) in grouped {
            self.by_customer.insert(customer, Arc::new(subscriptions));
        }
        Ok(())
    }
}

/// Reloads the cache every `interval` until `shutdown`; a reload that takes longer than
/// `call_timeout` is abandoned (and the previous set kept).
pub async fn refresh_periodically(
    cache: Arc<SubscriptionCache>,
    store: Arc<dyn SubscriptionStore>,
    interval: Duration,
    call_timeout: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let reloaded = crate::calls::within(call_timeout, "reloading subscriptions", cache.refresh(store.as_ref()));
        if let Err(error) = reloaded.await {
            tracing::warn!(%error, "reloading subscriptions failed; matching uses the previous set");
        }
    }
}
