//! A store that keeps failing: the shard backs off exponentially instead of redelivering its batch
//! twice a second, and `/readyz` names the shard until it recovers. The pipeline is wired as
//! `serve` wires it, with the event store wrapped so that the test can make it fail.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{Answer, ScriptedReceiver, wait_until};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triggers::serve::ConsumerReadiness;
use triggers_checkpoint::embedded::EmbeddedLeaseStore;
use triggers_embedded::Engine;
use triggers_ingest::{ConnectionLimits, IngestConfig, IngestMetrics, IngestPorts};
use triggers_schemas::{
    CustomerId, DeliveryState, EventId, EventStatus, NewEvent, StoredEvent, StreamRecord, Subscription,
    SubscriptionStatus, Timestamp, WorkflowId, webhook,
};
use triggers_stores::embedded::{
    EmbeddedCustomerStore, EmbeddedDeliveryQueue, EmbeddedEventStore, EmbeddedLimitStore, EmbeddedSubscriptionStore,
};
use triggers_stores::{EventStore, StoreError, SubscriptionStore};
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream::{AppendRecord, ShardId, Stream};
use triggers_stream_consumer::backoff::Backoff;
use triggers_stream_consumer::delivery::{RetryPolicy, SystemResolver};
use triggers_stream_consumer::{ConsumerConfig, ConsumerHealth, ConsumerPorts};

const PATIENCE: Duration = Duration::from_secs(30);

/// The embedded event store, except that recording a matched event fails while `failing` is set.
struct FailingEvents {
    inner: EmbeddedEventStore,
    failing: AtomicBool,
}

#[async_trait]
impl EventStore for FailingEvents {
    async fn insert_if_absent(&self, event: &StoredEvent) -> Result<(), StoreError> {
        self.inner.insert_if_absent(event).await
    }
    async fn put(&self, event: &StoredEvent) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the test makes the event store fail".into()));
        }
        self.inner.put(event).await
    }
    async fn update_delivery(
        &self,
        customer_id: CustomerId,
        event_id: EventId,
        delivery: &DeliveryState,
    ) -> Result<(), StoreError> {
        self.inner.update_delivery(customer_id, event_id, delivery).await
    }
    async fn get(&self, customer_id: CustomerId, event_id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.get(customer_id, event_id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_backs_the_shard_off_and_readyz_names_it_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let stream = EmbeddedStream::open(&engine, 1, Duration::from_secs(3600)).unwrap();
    let events =
        Arc::new(FailingEvents { inner: EmbeddedEventStore::open(&engine).unwrap(), failing: AtomicBool::new(true) });
    let subscriptions = Arc::new(EmbeddedSubscriptionStore::open(&engine).unwrap());
    let health = Arc::new(ConsumerHealth::default());
    let shutdown = CancellationToken::new();

    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let readyz = format!("http://{}/readyz", public.local_addr().unwrap());
    let ingest_ports = IngestPorts {
        stream: Arc::new(stream.clone()),
        events: events.clone(),
        subscriptions: subscriptions.clone(),
        customers: Arc::new(EmbeddedCustomerStore::open(&engine).unwrap()),
        limits: Arc::new(EmbeddedLimitStore::open(&engine).unwrap()),
        readiness: vec![Arc::new(ConsumerReadiness(health.clone()))],
    };
    let ingest_config = IngestConfig {
        admin_token: "adm_test".into(),
        allow_http_webhooks: true,
        allow_private_webhooks: true,
        connections: ConnectionLimits::default(),
    };
    let ingest = tokio::spawn(triggers_ingest::run(
        public,
        admin,
        ingest_ports,
        ingest_config,
        Arc::new(IngestMetrics::default()),
        shutdown.clone(),
    ));

    let endpoint = ScriptedReceiver::start(|_| Answer::status(204)).await;
    let customer = CustomerId::generate();
    let now = Timestamp::now();
    let subscription = Subscription {
        workflow_id: WorkflowId::generate(),
        customer_id: customer,
        event_selector: json!({}),
        webhook_url: endpoint.url(),
        status: SubscriptionStatus::Active,
        signing_secret: webhook::generate_secret(),
        created_at: now,
        updated_at: now,
    };
    subscriptions.create(&subscription).await.unwrap();
    let record = StreamRecord {
        event_id: EventId::generate(),
        customer_id: customer,
        received_at: Timestamp::now(),
        event: NewEvent::from_json(json!({"type": "order.created", "data": {}}), "").unwrap(),
    };
    let append = AppendRecord { partition_key: customer.to_string(), data: Bytes::from(record.encode()) };
    assert!(stream.append(vec![append]).await.unwrap()[0].is_ok());

    let backoff = Backoff { base: Duration::from_millis(200), ceiling: Duration::from_secs(10) };
    let consumer_config = ConsumerConfig {
        retry: RetryPolicy { schedule: vec![Duration::from_millis(100)], ..RetryPolicy::default() },
        allow_private_webhooks: true,
        shard_backoff: backoff,
        ..ConsumerConfig::default()
    };
    let consumer_ports = ConsumerPorts {
        stream: Arc::new(stream.clone()),
        leases: Arc::new(EmbeddedLeaseStore::open(&engine).unwrap()),
        subscriptions,
        events: events.clone(),
        queue: Arc::new(EmbeddedDeliveryQueue::open(&engine).unwrap()),
        resolver: Arc::new(SystemResolver),
    };
    let consumer =
        tokio::spawn(triggers_stream_consumer::run(consumer_ports, consumer_config, health, shutdown.clone()));

    // Each pass over the batch delivers the webhook again and then fails to record it. The pauses
    // between passes grow: the k-th is at least half of base * 2^(k-1) (equal jitter), so the
    // fourth is at least 800 ms, where a fixed pause would keep them all alike.
    let hits = endpoint.wait_for(5, PATIENCE).await;
    for (k, pair) in hits.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let least = backoff.base * (1 << k) / 2;
        assert!(gap >= least, "pass {} came {gap:?} after the one before, sooner than {least:?}", k + 2);
    }

    let http = common::HttpClient::default();
    let reply = http.send(Method::GET, &readyz, &[], "").await;
    let problem = common::problem(&reply, 503);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&ShardId::from_index(0).to_string()), "{detail}");
    assert!(detail.contains("cannot record"), "{detail}");

    // The store recovers: the batch is resolved, and the shard is healthy again.
    events.failing.store(false, Ordering::SeqCst);
    wait_until("the event to be recorded as delivered", PATIENCE, || async {
        let stored = events.get(customer, record.event_id).await.unwrap()?;
        (stored.status() == EventStatus::Delivered).then_some(())
    })
    .await;
    wait_until("/readyz to answer 200", PATIENCE, || async {
        (http.send(Method::GET, &readyz, &[], "").await.status == StatusCode::OK).then_some(())
    })
    .await;

    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    ingest.await.unwrap();
}
