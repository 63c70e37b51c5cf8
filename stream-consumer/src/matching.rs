//! The subscription cache: every customer's subscriptions, with the active ones' selectors compiled
//! into one matcher per customer, held in memory so that matching never waits on a database.
//!
//! A customer's entry is rebuilt only when that customer's subscriptions change; the other
//! customers' matchers are left as they are. A batch of records is matched customer by customer,
//! each customer's events in one call to its matcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use triggers_schemas::{CustomerId, StreamRecord, Subscription, SubscriptionStatus, WorkflowId};
use triggers_selector::{EventView, Matcher, Selector};
use triggers_stores::{StoreError, SubscriptionStore};

/// A subscription as the cache holds it.
#[derive(Debug)]
pub struct CompiledSubscription {
    /// The subscription as stored.
    pub subscription: Subscription,
}

/// One customer's subscriptions and the matcher of the active ones.
struct CustomerEntry {
    /// Every subscription of the customer, active or not, in workflow id order.
    subscriptions: Vec<Arc<CompiledSubscription>>,
    /// `compiled[i]` is the position in `subscriptions` of the matcher's selector `i`.
    compiled: Vec<usize>,
    matcher: Matcher,
}

impl CustomerEntry {
    /// Compiles the active subscriptions' selectors. A stored selector that no longer parses
    /// never matches, and is logged.
    fn build(mut subscriptions: Vec<Subscription>) -> Self {
        subscriptions.sort_by_key(|s| s.workflow_id);
        let mut selectors = Vec::new();
        let mut compiled = Vec::new();
        for (position, subscription) in subscriptions.iter().enumerate() {
            if subscription.status != SubscriptionStatus::Active {
                continue;
            }
            match Selector::parse(&subscription.event_selector, "/event_selector") {
                Ok(selector) => {
                    selectors.push(selector);
                    compiled.push(position);
                }
                Err(errors) => {
                    tracing::warn!(workflow_id = %subscription.workflow_id, ?errors, "stored selector does not parse");
                }
            }
        }
        let matcher = Matcher::new(&selectors);
        let subscriptions =
            subscriptions.into_iter().map(|subscription| Arc::new(CompiledSubscription { subscription })).collect();
        Self { subscriptions, compiled, matcher }
    }

    /// Whether `subscriptions` (in workflow id order) is what this entry was built from.
    fn holds(&self, subscriptions: &[Subscription]) -> bool {
        self.subscriptions.len() == subscriptions.len()
            && self.subscriptions.iter().zip(subscriptions).all(|(held, new)| held.subscription == *new)
    }
}

/// Every customer's subscriptions, by customer.
#[derive(Default)]
pub struct SubscriptionCache {
    by_customer: DashMap<CustomerId, Arc<CustomerEntry>>,
}

impl SubscriptionCache {
    /// For each record, the active subscriptions of its customer whose selector its event matches.
    /// Records are grouped by customer, and each customer's events are matched in one call.
    pub fn matching(&self, records: &[&StreamRecord]) -> Vec<Vec<Arc<CompiledSubscription>>> {
        let mut matching = vec![Vec::new(); records.len()];
        let mut by_customer: HashMap<CustomerId, Vec<usize>> = HashMap::new();
        for (position, record) in records.iter().enumerate() {
            by_customer.entry(record.customer_id).or_default().push(position);
        }
        for (customer_id, positions) in by_customer {
            let Some(entry) = self.by_customer.get(&customer_id).map(|entry| Arc::clone(entry.value())) else {
                continue;
            };
            let events: Vec<EventView<'_>> = positions.iter().map(|&p| EventView::from(&records[p].event)).collect();
            let matches = entry.matcher.match_batch(&events);
            for (position, selectors) in positions.into_iter().zip(matches.iter()) {
                matching[position] = selectors
                    .iter()
                    .map(|&selector| Arc::clone(&entry.subscriptions[entry.compiled[selector as usize]]))
                    .collect();
            }
        }
        matching
    }

    /// One subscription, active or not.
    pub fn get(&self, customer_id: CustomerId, workflow_id: WorkflowId) -> Option<Arc<CompiledSubscription>> {
        let entry = self.by_customer.get(&customer_id)?;
        let position = entry.subscriptions.binary_search_by_key(&workflow_id, |s| s.subscription.workflow_id).ok()?;
        Some(Arc::clone(&entry.subscriptions[position]))
    }

    /// Sets one customer's subscriptions, rebuilding that customer's matcher if they changed and
    /// touching no other customer. Returns whether it rebuilt.
    pub fn replace_customer(&self, customer_id: CustomerId, mut subscriptions: Vec<Subscription>) -> bool {
        subscriptions.sort_by_key(|s| s.workflow_id);
        if subscriptions.is_empty() {
            return self.by_customer.remove(&customer_id).is_some();
        }
        if self.by_customer.get(&customer_id).is_some_and(|entry| entry.holds(&subscriptions)) {
            return false;
        }
        let entry = CustomerEntry::build(subscriptions);
        tracing::debug!(%customer_id, compiled = entry.compiled.len(), "rebuilt a customer's matcher");
        self.by_customer.insert(customer_id, Arc::new(entry));
        true
    }

    /// Reloads every subscription from the store, rebuilding only the customers whose
    /// subscriptions changed. Returns how many customers were rebuilt or removed.
    pub async fn refresh(&self, store: &dyn SubscriptionStore) -> Result<usize, StoreError> {
        let mut grouped: HashMap<CustomerId, Vec<Subscription>> = HashMap::new();
        for subscription in store.list_all().await? {
            grouped.entry(subscription.customer_id).or_default().push(subscription);
        }
        let mut changed = 0;
        let gone: Vec<CustomerId> = self
            .by_customer
            .iter()
            .map(|entry| *entry.key())
            .filter(|customer| !grouped.contains_key(customer))
            .collect();
        for customer_id in gone {
            changed += usize::from(self.replace_customer(customer_id, Vec::new()));
        }
        for (customer_id, subscriptions) in grouped {
            changed += usize::from(self.replace_customer(customer_id, subscriptions));
        }
        Ok(changed)
    }

    /// The matcher currently serving `customer_id`, to tell whether a refresh replaced it.
    #[cfg(test)]
    fn matcher_of(&self, customer_id: CustomerId) -> Option<*const Matcher> {
        self.by_customer.get(&customer_id).map(|entry| &entry.matcher as *const Matcher)
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use triggers_schemas::{EventId, NewEvent, Timestamp};

    use super::*;

    fn subscription(customer_id: CustomerId, selector: Value) -> Subscription {
        Subscription {
            workflow_id: WorkflowId::generate(),
            customer_id,
            event_selector: selector,
            webhook_url: "https://example.com/hook".into(),
            status: SubscriptionStatus::Active,
            signing_secret: "whsec_c2VjcmV0".into(),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
        }
    }

    fn record(customer_id: CustomerId, event: Value) -> StreamRecord {
        StreamRecord {
            event_id: EventId::generate(),
            customer_id,
            received_at: Timestamp::from_millis(0),
            event: NewEvent::from_json(event, "").unwrap(),
        }
    }

    fn workflows(matching: &[Arc<CompiledSubscription>]) -> Vec<WorkflowId> {
        let mut ids: Vec<WorkflowId> = matching.iter().map(|s| s.subscription.workflow_id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_batch_is_matched_per_customer_against_active_subscriptions_only() {
        let (acme, globex) = (CustomerId::generate(), CustomerId::generate());
        let orders =
            subscription(acme, json!({"type": [{"prefix": "order."}], "data": {"total": [{"numeric": [">", 100]}]}}));
        let everything = subscription(acme, json!({}));
        let mut disabled = subscription(acme, json!({}));
        disabled.status = SubscriptionStatus::Disabled;
        let globex_all = subscription(globex, json!({}));
        let cache = SubscriptionCache::default();
        cache.replace_customer(acme, vec![orders.clone(), everything.clone(), disabled.clone()]);
        cache.replace_customer(globex, vec![globex_all.clone()]);

        let big = record(acme, json!({"type": "order.created", "data": {"total": 250}}));
        let small = record(acme, json!({"type": "order.created", "data": {"total": 5}}));
        let other = record(globex, json!({"type": "order.created", "data": {"total": 250}}));
        let stranger = record(CustomerId::generate(), json!({"type": "order.created", "data": null}));
        let matching = cache.matching(&[&big, &other, &small, &stranger]);

        let mut both = vec![orders.workflow_id, everything.workflow_id];
        both.sort();
        assert_eq!(workflows(&matching[0]), both);
        assert_eq!(workflows(&matching[1]), [globex_all.workflow_id]);
        assert_eq!(workflows(&matching[2]), [everything.workflow_id]);
        assert!(matching[3].is_empty());
        // A disabled subscription is not matched, but the cache still knows it.
        let held = cache.get(acme, disabled.workflow_id).expect("disabled subscriptions are held");
        assert_eq!(held.subscription.status, SubscriptionStatus::Disabled);
        assert!(cache.get(globex, disabled.workflow_id).is_none(), "a foreign id is unknown");
    }

    #[test]
    fn a_change_rebuilds_only_its_customer() {
        let (acme, globex) = (CustomerId::generate(), CustomerId::generate());
        let acme_subscription = subscription(acme, json!({"type": ["a"]}));
        let globex_subscription = subscription(globex, json!({"type": ["b"]}));
        let cache = SubscriptionCache::default();
        assert!(cache.replace_customer(acme, vec![acme_subscription.clone()]));
        assert!(cache.replace_customer(globex, vec![globex_subscription.clone()]));
        let globex_matcher = cache.matcher_of(globex);

        // The same subscriptions again: nothing to rebuild.
        assert!(!cache.replace_customer(acme, vec![acme_subscription.clone()]));
        // A change to acme rebuilds acme alone.
        let mut changed = acme_subscription.clone();
        changed.event_selector = json!({"type": ["c"]});
        assert!(cache.replace_customer(acme, vec![changed]));
        assert_eq!(cache.matcher_of(globex), globex_matcher);
        let event = record(acme, json!({"type": "c", "data": 1}));
        assert_eq!(workflows(&cache.matching(&[&event])[0]), [acme_subscription.workflow_id]);
        // Deleting every subscription forgets the customer.
        assert!(cache.replace_customer(acme, Vec::new()));
        assert!(cache.get(acme, acme_subscription.workflow_id).is_none());
        assert_eq!(cache.matcher_of(globex), globex_matcher);
    }

    #[tokio::test]
    async fn the_periodic_reload_rebuilds_only_customers_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let engine = triggers_embedded::Engine::open(dir.path()).unwrap();
        let store = triggers_stores::embedded::EmbeddedSubscriptionStore::open(&engine).unwrap();
        let (acme, globex) = (CustomerId::generate(), CustomerId::generate());
        let acme_subscription = subscription(acme, json!({"type": ["a"]}));
        store.create(&acme_subscription).await.unwrap();
        store.create(&subscription(globex, json!({"type": ["b"]}))).await.unwrap();
        let cache = SubscriptionCache::default();
        assert_eq!(cache.refresh(&store).await.unwrap(), 2);
        assert_eq!(cache.refresh(&store).await.unwrap(), 0, "nothing changed");
        let globex_matcher = cache.matcher_of(globex);

        store.set_status(acme, acme_subscription.workflow_id, SubscriptionStatus::Disabled).await.unwrap();
        assert_eq!(cache.refresh(&store).await.unwrap(), 1);
        assert_eq!(cache.matcher_of(globex), globex_matcher, "the other customer kept its matcher");
        let event = record(acme, json!({"type": "a", "data": 1}));
        assert!(cache.matching(&[&event])[0].is_empty(), "a disabled subscription no longer matches");
    }
}
