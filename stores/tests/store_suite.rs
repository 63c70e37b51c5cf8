//! The behaviour of every store adapter, written once as generic functions and instantiated per
//! adapter. Today the embedded adapters run it; the PostgreSQL, DynamoDB, SQS and Redis adapters
//! join by adding one `store_suite!` line.

use serde_json::json;
use triggers_schemas::customer::hash_api_key;
use triggers_schemas::{
    ApiKey, Customer, CustomerId, DeliveryState, DeliveryStatus, EventId, KeyId, NewEvent, Scope, StoredEvent,
    StreamRecord, Subscription, SubscriptionStatus, Timestamp, WorkflowId,
};
use triggers_stores::{
    CustomerStore, DeadLetter, DeadLetterKind, DeliveryQueue, EventStore, IdempotencyBegin, LimitStore, PoisonRecord,
    RetryTask, StoreError, SubscriptionStore,
};

/// One adapter of each port.
struct Stores {
    customers: Box<dyn CustomerStore>,
    subscriptions: Box<dyn SubscriptionStore>,
    events: Box<dyn EventStore>,
    queue: Box<dyn DeliveryQueue>,
    limits: Box<dyn LimitStore>,
}

fn record(customer_id: CustomerId) -> StreamRecord {
    StreamRecord {
        event_id: EventId::generate(),
        customer_id,
        received_at: Timestamp::now(),
        event: NewEvent::from_json(json!({"type": "order.created", "data": {"n": 1}}), "").unwrap(),
    }
}

fn subscription(customer_id: CustomerId) -> Subscription {
    Subscription {
        workflow_id: WorkflowId::generate(),
        customer_id,
        event_selector: json!({"type": ["order.created"]}),
        webhook_url: "https://example.test/hook".into(),
        status: SubscriptionStatus::Active,
        signing_secret: triggers_schemas::webhook::generate_secret(),
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

async fn customers_and_keys(stores: &Stores) {
    let customer = Customer {
        customer_id: CustomerId::generate(),
        name: Some("acme".into()),
        rate_limit_per_sec: 10,
        created_at: Timestamp::now(),
    };
    stores.customers.create_customer(&customer).await.unwrap();
    assert!(matches!(stores.customers.create_customer(&customer).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(stores.customers.get_customer(customer.customer_id).await.unwrap(), Some(customer.clone()));
    assert_eq!(stores.customers.get_customer(CustomerId::generate()).await.unwrap(), None);

    let key = ApiKey {
        key_id: KeyId::generate(),
        customer_id: customer.customer_id,
        key_hash: hash_api_key("tk_secret"),
        scopes: vec![Scope::EventsWrite],
        created_at: Timestamp::now(),
        expires_at: None,
        revoked_at: None,
    };
    stores.customers.create_api_key(&key).await.unwrap();
    assert_eq!(stores.customers.find_api_key(&hash_api_key("tk_secret")).await.unwrap(), Some(key));
    assert_eq!(stores.customers.find_api_key(&hash_api_key("tk_other")).await.unwrap(), None);
}

async fn subscriptions_are_per_customer_and_paged(stores: &Stores) {
    let (mine, theirs) = (CustomerId::generate(), CustomerId::generate());
    let mut created = Vec::new();
    for _ in 0..5 {
        let s = subscription(mine);
        stores.subscriptions.create(&s).await.unwrap();
        created.push(s);
    }
    let foreign = subscription(theirs);
    stores.subscriptions.create(&foreign).await.unwrap();
    let mut taken = subscription(mine);
    taken.workflow_id = created[0].workflow_id;
    assert!(matches!(stores.subscriptions.create(&taken).await, Err(StoreError::AlreadyExists(_))));

    assert_eq!(stores.subscriptions.get(mine, foreign.workflow_id).await.unwrap(), None);
    assert_eq!(stores.subscriptions.get(theirs, foreign.workflow_id).await.unwrap(), Some(foreign));

    created.sort_by_key(|s| s.workflow_id);
    let first = stores.subscriptions.list(mine, None, 2).await.unwrap();
    let rest = stores.subscriptions.list(mine, Some(first[1].workflow_id), 10).await.unwrap();
    let paged: Vec<_> = first.iter().chain(&rest).map(|s| s.workflow_id).collect();
    assert_eq!(paged, created.iter().map(|s| s.workflow_id).collect::<Vec<_>>());
    assert_eq!(stores.subscriptions.list_all().await.unwrap().len(), 6);

    let target = created[2].workflow_id;
    stores.subscriptions.set_status(mine, target, SubscriptionStatus::Disabled).await.unwrap();
    let disabled = stores.subscriptions.get(mine, target).await.unwrap().unwrap();
    assert_eq!(disabled.status, SubscriptionStatus::Disabled);
    assert!(disabled.updated_at >= created[2].updated_at);
    assert!(matches!(
        stores.subscriptions.set_status(theirs, target, SubscriptionStatus::Active).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn workflow_ids_are_unique_per_customer(stores: &Stores) {
    let (first, second) = (CustomerId::generate(), CustomerId::generate());
    let mine = subscription(first);
    let mut theirs = subscription(second);
    theirs.workflow_id = mine.workflow_id;
    theirs.webhook_url = "https://other.example.test/hook".into();
    stores.subscriptions.create(&mine).await.unwrap();
    // Another customer's use of the id is invisible: the create succeeds, nothing of the first leaks.
    stores.subscriptions.create(&theirs).await.unwrap();
    assert!(matches!(stores.subscriptions.create(&theirs).await, Err(StoreError::AlreadyExists(_))));

    assert_eq!(stores.subscriptions.get(first, mine.workflow_id).await.unwrap(), Some(mine.clone()));
    assert_eq!(stores.subscriptions.get(second, mine.workflow_id).await.unwrap(), Some(theirs.clone()));
    assert_eq!(stores.subscriptions.list(first, None, 10).await.unwrap(), vec![mine.clone()]);
    assert_eq!(stores.subscriptions.list(second, None, 10).await.unwrap(), vec![theirs.clone()]);

    stores.subscriptions.set_status(second, mine.workflow_id, SubscriptionStatus::Disabled).await.unwrap();
    assert_eq!(
        stores.subscriptions.get(first, mine.workflow_id).await.unwrap().unwrap().status,
        SubscriptionStatus::Active
    );
    let all = stores.subscriptions.list_all().await.unwrap();
    let sharing: Vec<_> = all.iter().filter(|s| s.workflow_id == mine.workflow_id).collect();
    assert_eq!(sharing.len(), 2, "both customers' subscriptions are loaded for matching");
}

async fn events_keep_what_the_consumer_wrote(stores: &Stores) {
    let customer = CustomerId::generate();
    let record = record(customer);
    let pending = StoredEvent::from_record(&record);
    let mut matched = pending.clone();
    matched.matched = true;
    let workflow_id = WorkflowId::generate();
    matched.deliveries = vec![DeliveryState {
        workflow_id,
        status: DeliveryStatus::Failed,
        attempts: 1,
        last_attempt_at: Some(Timestamp::now()),
        last_status_code: Some(500),
        last_error: Some("HTTP 500".into()),
    }];
    stores.events.put(&matched).await.unwrap();
    // Ingest's pending row arrives late: it must not overwrite the consumer's.
    stores.events.insert_if_absent(&pending).await.unwrap();
    assert_eq!(stores.events.get(customer, record.event_id).await.unwrap(), Some(matched.clone()));

    let delivered = DeliveryState {
        status: DeliveryStatus::Delivered,
        attempts: 2,
        last_status_code: Some(200),
        last_error: None,
        ..matched.deliveries[0].clone()
    };
    stores.events.update_delivery(customer, record.event_id, &delivered).await.unwrap();
    let stored = stores.events.get(customer, record.event_id).await.unwrap().unwrap();
    assert_eq!(stored.deliveries, vec![delivered.clone()]);
    assert_eq!(stored.status(), triggers_schemas::EventStatus::Delivered);

    assert_eq!(stores.events.get(CustomerId::generate(), record.event_id).await.unwrap(), None);
    assert!(matches!(
        stores.events.update_delivery(customer, EventId::generate(), &delivered).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn retries_come_due_hide_and_complete(stores: &Stores) {
    let task =
        RetryTask { record: record(CustomerId::generate()), workflow_id: WorkflowId::generate(), attempts: vec![] };
    let now = Timestamp::now();
    stores.queue.schedule_retry(&task, now.plus_millis(60_000)).await.unwrap();
    assert!(stores.queue.take_due(now, 10, 1_000).await.unwrap().is_empty(), "not due yet");

    let later = now.plus_millis(60_000);
    let taken = stores.queue.take_due(later, 10, 1_000).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].task, task);
    assert!(stores.queue.take_due(later, 10, 1_000).await.unwrap().is_empty(), "hidden while taken");
    let again = stores.queue.take_due(later.plus_millis(1_000), 10, 1_000).await.unwrap();
    assert_eq!(again.len(), 1, "reappears when not completed");
    stores.queue.complete(&again[0].receipt).await.unwrap();
    assert!(stores.queue.take_due(later.plus_millis(10_000), 10, 1_000).await.unwrap().is_empty());

    let dead = DeadLetter { kind: DeadLetterKind::Delivery(task.clone()), parked_at: now };
    stores.queue.park(&dead).await.unwrap();
    let parked = stores.queue.list_parked(Some(task.workflow_id), 10).await.unwrap();
    assert_eq!(parked, vec![dead]);
    assert!(stores.queue.list_parked(Some(WorkflowId::generate()), 10).await.unwrap().is_empty());
}

async fn dead_letters_keep_their_kind(stores: &Stores) {
    let task =
        RetryTask { record: record(CustomerId::generate()), workflow_id: WorkflowId::generate(), attempts: vec![] };
    let delivery = DeadLetter { kind: DeadLetterKind::Delivery(task.clone()), parked_at: Timestamp::now() };
    // Every byte value, so that an adapter that mangles binary data shows it.
    let poison = PoisonRecord {
        shard_id: "shardId-000000000002".into(),
        sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
        partition_key: CustomerId::generate().to_string(),
        data: (0..=255).collect(),
        error: "unknown record format version 0".into(),
        arrived_at: Timestamp::now(),
    };
    let poisoned = DeadLetter { kind: DeadLetterKind::PoisonRecord(poison), parked_at: Timestamp::now() };
    stores.queue.park(&delivery).await.unwrap();
    stores.queue.park(&poisoned).await.unwrap();

    let listed = stores.queue.list_parked(None, 10).await.unwrap();
    assert_eq!(listed, vec![delivery.clone(), poisoned.clone()], "both kinds, oldest first");
    assert_eq!(poisoned.workflow_id(), None);
    // A workflow's listing holds its deliveries only: a poison record belongs to no workflow.
    assert_eq!(stores.queue.list_parked(Some(task.workflow_id), 10).await.unwrap(), vec![delivery]);
    assert_eq!(stores.queue.list_parked(None, 1).await.unwrap().len(), 1);
}

async fn idempotency_keys_replay_and_refuse(stores: &Stores) {
    let customer = CustomerId::generate();
    let (body, other) = ([1u8; 32], [2u8; 32]);
    assert_eq!(stores.limits.begin_idempotent(customer, "k1", &body, 60).await.unwrap(), IdempotencyBegin::Fresh);
    assert_eq!(stores.limits.begin_idempotent(customer, "k1", &body, 60).await.unwrap(), IdempotencyBegin::InFlight);
    assert_eq!(stores.limits.begin_idempotent(customer, "k1", &other, 60).await.unwrap(), IdempotencyBegin::Mismatch);
    stores.limits.complete_idempotent(customer, "k1", b"answer").await.unwrap();
    assert_eq!(
        stores.limits.begin_idempotent(customer, "k1", &body, 60).await.unwrap(),
        IdempotencyBegin::Completed(b"answer".to_vec())
    );
    // Keys belong to one customer.
    assert_eq!(
        stores.limits.begin_idempotent(CustomerId::generate(), "k1", &other, 60).await.unwrap(),
        IdempotencyBegin::Fresh
    );
    // An abandoned key may be used again.
    assert_eq!(stores.limits.begin_idempotent(customer, "k2", &body, 60).await.unwrap(), IdempotencyBegin::Fresh);
    stores.limits.abandon_idempotent(customer, "k2").await.unwrap();
    assert_eq!(stores.limits.begin_idempotent(customer, "k2", &other, 60).await.unwrap(), IdempotencyBegin::Fresh);
}

async fn rate_limits_grant_up_to_the_limit(stores: &Stores) {
    let customer = CustomerId::generate();
    let mut granted = 0;
    // Within one window at most `limit` are granted; a window boundary can at most double that.
    for _ in 0..10 {
        granted += stores.limits.acquire(customer, 3, 1).await.unwrap().granted;
    }
    assert!((3..=6).contains(&granted), "granted {granted}");
    let decision = stores.limits.acquire(CustomerId::generate(), 5, 2).await.unwrap();
    assert_eq!((decision.granted, decision.limit, decision.remaining), (2, 5, 3));

    // Asking for nothing reports the window and spends nothing.
    let looker = CustomerId::generate();
    for _ in 0..10 {
        let decision = stores.limits.acquire(looker, 5, 0).await.unwrap();
        assert_eq!((decision.granted, decision.limit, decision.remaining), (0, 5, 5));
    }
    assert_eq!(stores.limits.acquire(looker, 5, 5).await.unwrap().granted, 5);
}

macro_rules! store_suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn customers_and_keys() {
                let (stores, _guard) = $make;
                super::customers_and_keys(&stores).await;
            }

            #[tokio::test]
            async fn subscriptions_are_per_customer_and_paged() {
                let (stores, _guard) = $make;
                super::subscriptions_are_per_customer_and_paged(&stores).await;
            }

            #[tokio::test]
            async fn workflow_ids_are_unique_per_customer() {
                let (stores, _guard) = $make;
                super::workflow_ids_are_unique_per_customer(&stores).await;
            }

            #[tokio::test]
            async fn events_keep_what_the_consumer_wrote() {
                let (stores, _guard) = $make;
                super::events_keep_what_the_consumer_wrote(&stores).await;
            }

            #[tokio::test]
            async fn retries_come_due_hide_and_complete() {
                let (stores, _guard) = $make;
                super::retries_come_due_hide_and_complete(&stores).await;
            }

            #[tokio::test]
            async fn dead_letters_keep_their_kind() {
                let (stores, _guard) = $make;
                super::dead_letters_keep_their_kind(&stores).await;
            }

            #[tokio::test]
            async fn idempotency_keys_replay_and_refuse() {
                let (stores, _guard) = $make;
                super::idempotency_keys_replay_and_refuse(&stores).await;
            }

            #[tokio::test]
            async fn rate_limits_grant_up_to_the_limit() {
                let (stores, _guard) = $make;
                super::rate_limits_grant_up_to_the_limit(&stores).await;
            }
        }
    };
}

fn embedded_stores() -> (Stores, tempfile::TempDir) {
    use triggers_stores::embedded::*;
    let dir = tempfile::tempdir().unwrap();
    let engine = triggers_embedded::Engine::open(dir.path()).unwrap();
    let stores = Stores {
        customers: Box::new(EmbeddedCustomerStore::open(&engine).unwrap()),
        subscriptions: Box::new(EmbeddedSubscriptionStore::open(&engine).unwrap()),
        events: Box::new(EmbeddedEventStore::open(&engine).unwrap()),
        queue: Box::new(EmbeddedDeliveryQueue::open(&engine).unwrap()),
        limits: Box::new(EmbeddedLimitStore::open(&engine).unwrap()),
    };
    (stores, dir)
}

store_suite!(embedded, embedded_stores());
