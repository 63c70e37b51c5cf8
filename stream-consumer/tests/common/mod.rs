//! What the consumer's integration tests share: one embedded data directory whose ports several
//! consumers use, a webhook endpoint that records arrivals, and customers spread over the shards.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::LeaseError;
use triggers_checkpoint::embedded::EmbeddedLeaseStore;
use triggers_checkpoint::{Lease, LeaseStore};
use triggers_embedded::Engine;
use triggers_schemas::{
    CustomerId, EventId, NewEvent, StreamRecord, Subscription, SubscriptionStatus, Timestamp, WorkflowId, webhook,
};
use triggers_stores::SubscriptionStore;
use triggers_stores::embedded::{EmbeddedDeliveryQueue, EmbeddedEventStore, EmbeddedSubscriptionStore};
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream::{AppendRecord, HashKeyRange, Stream, hash_key};
use triggers_stream_consumer::delivery::{RetryPolicy, SystemResolver};
use triggers_stream_consumer::{ConsumerConfig, ConsumerError, ConsumerHealth, ConsumerPorts};

/// Generous bound for anything that should take a few lease rounds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One embedded data directory, opened once and shared by every consumer of a test.
pub struct Shared {
    pub _dir: tempfile::TempDir,
    pub engine: Engine,
    pub stream: EmbeddedStream,
    pub leases: Arc<EmbeddedLeaseStore>,
    pub subscriptions: Arc<EmbeddedSubscriptionStore>,
    pub ports: ConsumerPorts,
}

impl Shared {
    /// Consumers started on it stand for separate processes of a fleet.
    pub fn open(shards: u32) -> Self {
        Self::open_with(shards, EmbeddedLeaseStore::open_for_fleet)
    }

    /// Consumers started on it stand for successive runs of the one process that holds the
    /// database, as in `triggers serve`.
    pub fn open_exclusive(shards: u32) -> Self {
        Self::open_with(shards, EmbeddedLeaseStore::open)
    }

    fn open_with(shards: u32, open_leases: fn(&Engine) -> Result<EmbeddedLeaseStore, LeaseError>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let stream = EmbeddedStream::open(&engine, shards, Duration::from_secs(3600)).unwrap();
        let leases = Arc::new(open_leases(&engine).unwrap());
        let subscriptions = Arc::new(EmbeddedSubscriptionStore::open(&engine).unwrap());
        let ports = ConsumerPorts {
            stream: Arc::new(stream.clone()),
            leases: leases.clone(),
            subscriptions: subscriptions.clone(),
            events: Arc::new(EmbeddedEventStore::open(&engine).unwrap()),
            queue: Arc::new(EmbeddedDeliveryQueue::open(&engine).unwrap()),
            resolver: Arc::new(SystemResolver),
        };
        Self { _dir: dir, engine, stream, leases, subscriptions, ports }
    }

    /// A customer with one subscription (every event) delivering to `url`.
    pub async fn customer_subscribed_at(&self, customer_id: CustomerId, url: &str) {
        let now = Timestamp::now();
        let subscription = Subscription {
            workflow_id: WorkflowId::generate(),
            customer_id,
            event_selector: json!({}),
            webhook_url: url.to_owned(),
            status: SubscriptionStatus::Active,
            signing_secret: webhook::generate_secret(),
            created_at: now,
            updated_at: now,
        };
        self.subscriptions.create(&subscription).await.unwrap();
    }

    /// Appends one event of `customer_id` (its partition key, as ingest writes it); returns its id.
    pub async fn append(&self, customer_id: CustomerId, n: usize) -> String {
        let record = StreamRecord {
            event_id: EventId::generate(),
            customer_id,
            received_at: Timestamp::now(),
            event: NewEvent::from_json(json!({"type": "order.created", "data": {"n": n}}), "").unwrap(),
        };
        let append = AppendRecord { partition_key: customer_id.to_string(), data: Bytes::from(record.encode()) };
        let results = self.stream.append(vec![append]).await.unwrap();
        assert!(results[0].is_ok(), "{results:?}");
        record.event_id.to_string()
    }

    pub async fn leases(&self) -> Vec<Lease> {
        self.leases.list_leases().await.unwrap()
    }

    /// How many leases of unfinished shards each worker holds.
    pub async fn holdings(&self) -> BTreeMap<String, usize> {
        let mut held = BTreeMap::new();
        for lease in self.leases().await.iter().filter(|l| !l.is_finished()) {
            if let Some(owner) = &lease.owner {
                *held.entry(owner.clone()).or_default() += 1;
            }
        }
        held
    }

    /// Waits until the holdings are exactly `wanted`.
    pub async fn wait_for_holdings(&self, wanted: &[(&str, usize)]) {
        let wanted: BTreeMap<String, usize> = wanted.iter().map(|(w, n)| ((*w).to_owned(), *n)).collect();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let held = self.holdings().await;
            if held == wanted {
                return;
            }
            assert!(Instant::now() < deadline, "leases held {held:?}, never {wanted:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn config(worker_id: &str) -> ConsumerConfig {
    ConsumerConfig {
        worker_id: worker_id.to_owned(),
        failover_time: Duration::from_millis(600),
        retry: RetryPolicy { schedule: vec![Duration::from_millis(100)], ..RetryPolicy::default() },
        attempt_timeout: Duration::from_secs(5),
        allow_private_webhooks: true,
        ..ConsumerConfig::default()
    }
}

/// A consumer running on the test's runtime until its token is cancelled.
pub struct Running {
    pub shutdown: CancellationToken,
    pub health: Arc<ConsumerHealth>,
    pub task: JoinHandle<Result<(), ConsumerError>>,
}

pub fn start(shared: &Shared, worker_id: &str) -> Running {
    start_with(shared.ports.clone(), config(worker_id))
}

pub fn start_with(ports: ConsumerPorts, config: ConsumerConfig) -> Running {
    let shutdown = CancellationToken::new();
    let health = Arc::new(ConsumerHealth::default());
    let task = tokio::spawn(Box::pin(triggers_stream_consumer::run(ports, config, health.clone(), shutdown.clone())));
    Running { shutdown, health, task }
}

impl Running {
    /// Stops gracefully: finishes batches, checkpoints, releases leases.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A webhook endpoint that notes each request's `webhook-id` and arrival time and answers 204,
/// after `delay`.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Endpoint {
    pub async fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Self { addr: listener.local_addr().unwrap(), hits: Arc::default() };
        let hits = endpoint.hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let hits = hits.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let hits = hits.clone();
                        async move {
                            let at = Instant::now();
                            let id = request.headers().get("webhook-id").and_then(|v| v.to_str().ok());
                            let id = id.unwrap_or("").to_owned();
                            let _ = request.into_body().collect().await;
                            hits.lock().unwrap().push((at, id));
                            tokio::time::sleep(delay).await;
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = http::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        endpoint
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// When each webhook id first arrived.
    pub fn first_arrivals(&self) -> HashMap<String, Instant> {
        let mut first = HashMap::new();
        for (at, id) in self.hits.lock().unwrap().iter() {
            first.entry(id.clone()).or_insert(*at);
        }
        first
    }

    /// Waits until every id in `wanted` has arrived at least once.
    pub async fn wait_for_all(&self, wanted: &BTreeSet<String>) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let arrived = self.first_arrivals();
            let missing = wanted.iter().filter(|id| !arrived.contains_key(*id)).count();
            if missing == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{missing} of {} events never arrived", wanted.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Customers whose partition keys land in every shard of `shards`, `per_shard` of them in each.
pub fn customers_covering(shards: &[HashKeyRange], per_shard: usize) -> Vec<CustomerId> {
    let mut count = vec![0; shards.len()];
    let mut chosen = Vec::new();
    while count.iter().any(|c| *c < per_shard) {
        let customer = CustomerId::generate();
        let key = hash_key(&customer.to_string());
        let shard = shards.iter().position(|range| range.contains(key)).unwrap();
        if count[shard] < per_shard {
            count[shard] += 1;
            chosen.push(customer);
        }
    }
    chosen
}

/// Several customers spread over the four shards, each subscribed at `endpoint`.
pub async fn customers_on_every_shard(shared: &Shared, endpoint: &Endpoint) -> Vec<CustomerId> {
    let ranges: Vec<HashKeyRange> =
        shared.stream.list_shards().await.unwrap().iter().map(|s| s.hash_key_range).collect();
    let customers = customers_covering(&ranges, 2);
    for customer in &customers {
        shared.customer_subscribed_at(*customer, &endpoint.url()).await;
    }
    customers
}

pub async fn append_round(shared: &Shared, customers: &[CustomerId], per_customer: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..per_customer {
        for customer in customers {
            ids.insert(shared.append(*customer, n).await);
        }
    }
    ids
}
