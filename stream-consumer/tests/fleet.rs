//! Consumers sharing one set of ports, as a fleet shares one stream and one lease table: leases
//! are shared out, move when a consumer stops or dies, and children of a split shard wait for
//! their parent.

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
use triggers_checkpoint::embedded::EmbeddedLeaseStore;
use triggers_checkpoint::{Checkpoint, Lease, LeaseStore};
use triggers_embedded::Engine;
use triggers_schemas::{
    CustomerId, EventId, NewEvent, StreamRecord, Subscription, SubscriptionStatus, Timestamp, WorkflowId, webhook,
};
use triggers_stores::SubscriptionStore;
use triggers_stores::embedded::{EmbeddedDeliveryQueue, EmbeddedEventStore, EmbeddedSubscriptionStore};
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream::{AppendRecord, HashKeyRange, ShardId, Stream, hash_key};
use triggers_stream_consumer::delivery::{RetryPolicy, SystemResolver};
use triggers_stream_consumer::{ConsumerConfig, ConsumerError, ConsumerHealth, ConsumerPorts};

/// Generous bound for anything that should take a few lease rounds.
const PATIENCE: Duration = Duration::from_secs(20);

/// One embedded data directory, opened once and shared by every consumer of a test.
struct Shared {
    _dir: tempfile::TempDir,
    stream: EmbeddedStream,
    leases: Arc<EmbeddedLeaseStore>,
    subscriptions: Arc<EmbeddedSubscriptionStore>,
    ports: ConsumerPorts,
}

impl Shared {
    fn open(shards: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let stream = EmbeddedStream::open(&engine, shards, Duration::from_secs(3600)).unwrap();
        let leases = Arc::new(EmbeddedLeaseStore::open(&engine).unwrap());
        let subscriptions = Arc::new(EmbeddedSubscriptionStore::open(&engine).unwrap());
        let ports = ConsumerPorts {
            stream: Arc::new(stream.clone()),
            leases: leases.clone(),
            subscriptions: subscriptions.clone(),
            events: Arc::new(EmbeddedEventStore::open(&engine).unwrap()),
            queue: Arc::new(EmbeddedDeliveryQueue::open(&engine).unwrap()),
            resolver: Arc::new(SystemResolver),
        };
        Self { _dir: dir, stream, leases, subscriptions, ports }
    }

    /// A customer with one subscription (every event) delivering to `url`.
    async fn customer_subscribed_at(&self, customer_id: CustomerId, url: &str) {
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
    async fn append(&self, customer_id: CustomerId, n: usize) -> String {
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

    async fn leases(&self) -> Vec<Lease> {
        self.leases.list_leases().await.unwrap()
    }

    /// How many leases of unfinished shards each worker holds.
    async fn holdings(&self) -> BTreeMap<String, usize> {
        let mut held = BTreeMap::new();
        for lease in self.leases().await.iter().filter(|l| !l.is_finished()) {
            if let Some(owner) = &lease.owner {
                *held.entry(owner.clone()).or_default() += 1;
            }
        }
        held
    }

    /// Waits until the holdings are exactly `wanted`.
    async fn wait_for_holdings(&self, wanted: &[(&str, usize)]) {
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

fn config(worker_id: &str) -> ConsumerConfig {
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
struct Running {
    shutdown: CancellationToken,
    health: Arc<ConsumerHealth>,
    task: JoinHandle<Result<(), ConsumerError>>,
}

fn start(shared: &Shared, worker_id: &str) -> Running {
    start_with(shared.ports.clone(), config(worker_id))
}

fn start_with(ports: ConsumerPorts, config: ConsumerConfig) -> Running {
    let shutdown = CancellationToken::new();
    let health = Arc::new(ConsumerHealth::default());
    let task = tokio::spawn(Box::pin(triggers_stream_consumer::run(ports, config, health.clone(), shutdown.clone())));
    Running { shutdown, health, task }
}

impl Running {
    /// Stops gracefully: finishes batches, checkpoints, releases leases.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A webhook endpoint that notes each request's `webhook-id` and arrival time and answers 204,
/// after `delay`.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Endpoint {
    async fn start(delay: Duration) -> Self {
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

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// When each webhook id first arrived.
    fn first_arrivals(&self) -> HashMap<String, Instant> {
        let mut first = HashMap::new();
        for (at, id) in self.hits.lock().unwrap().iter() {
            first.entry(id.clone()).or_insert(*at);
        }
        first
    }

    /// Waits until every id in `wanted` has arrived at least once.
    async fn wait_for_all(&self, wanted: &BTreeSet<String>) {
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
fn customers_covering(shards: &[HashKeyRange], per_shard: usize) -> Vec<CustomerId> {
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
async fn customers_on_every_shard(shared: &Shared, endpoint: &Endpoint) -> Vec<CustomerId> {
    let ranges: Vec<HashKeyRange> =
        shared.stream.list_shards().await.unwrap().iter().map(|s| s.hash_key_range).collect();
    let customers = customers_covering(&ranges, 2);
    for customer in &customers {
        shared.customer_subscribed_at(*customer, &endpoint.url()).await;
    }
    customers
}

async fn append_round(shared: &Shared, customers: &[CustomerId], per_customer: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..per_customer {
        for customer in customers {
            ids.insert(shared.append(*customer, n).await);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_share_the_leases_and_the_survivor_of_a_stop_takes_them_all() {
    let shared = Shared::open(4);
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let customers = customers_on_every_shard(&shared, &endpoint).await;

    let a = start(&shared, "worker-a");
    shared.wait_for_holdings(&[("worker-a", 4)]).await;
    let b = start(&shared, "worker-b");
    shared.wait_for_holdings(&[("worker-a", 2), ("worker-b", 2)]).await;

    let while_both_run = append_round(&shared, &customers, 5).await;
    endpoint.wait_for_all(&while_both_run).await;

    a.stop().await;
    shared.wait_for_holdings(&[("worker-b", 4)]).await;
    let after_the_stop = append_round(&shared, &customers, 5).await;
    endpoint.wait_for_all(&after_the_stop).await;
    b.stop().await;

    // Stopped consumers leave no lease behind, and every shard is checkpointed past its records.
    for lease in shared.leases().await {
        assert_eq!(lease.owner, None, "{lease:?}");
        assert!(matches!(lease.checkpoint, Checkpoint::After(_)), "{lease:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_dies_loses_its_leases_after_the_failover_time() {
    let shared = Shared::open(4);
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let customers = customers_on_every_shard(&shared, &endpoint).await;

    // The doomed consumer runs on a runtime of its own, whose shutdown stops every task of it at
    // once: no batch is finished, no checkpoint written and no lease released, as in a crash.
    let doomed = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let never_cancelled = CancellationToken::new();
    let health = Arc::new(ConsumerHealth::default());
    doomed.spawn(Box::pin(triggers_stream_consumer::run(shared.ports.clone(), config("doomed"), health, never_cancelled)));
    shared.wait_for_holdings(&[("doomed", 4)]).await;
    let survivor = start(&shared, "survivor");
    shared.wait_for_holdings(&[("doomed", 2), ("survivor", 2)]).await;

    let while_both_run = append_round(&shared, &customers, 5).await;
    endpoint.wait_for_all(&while_both_run).await;

    doomed.shutdown_background();
    let died_at = Instant::now();
    shared.wait_for_holdings(&[("survivor", 4)]).await;
    // Taking over needs the dead leases to stand still for the failover time on the survivor's
    // clock: the survivor must not have jumped the gun.
    assert!(died_at.elapsed() >= config("survivor").failover_time);

    let after_the_death = append_round(&shared, &customers, 5).await;
    endpoint.wait_for_all(&after_the_death).await;
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_a_split_shard_wait_until_their_parent_is_finished() {
    let shared = Shared::open(4);
    // Slow answers and small batches make the parent take a while to finish, so that children
    // started too early would show.
    let endpoint = Endpoint::start(Duration::from_millis(100)).await;
    let customer = CustomerId::generate();
    shared.customer_subscribed_at(customer, &endpoint.url()).await;
    let key = hash_key(&customer.to_string());
    let parent = shared.stream.list_shards().await.unwrap().into_iter().find(|s| s.hash_key_range.contains(key));
    let parent = parent.unwrap();

    // Watch the lease table throughout: a child must never be owned, nor have moved from where it
    // started, while its parent is unfinished.
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let watching = CancellationToken::new();
    let watcher = tokio::spawn({
        let (leases, violations, watching) = (shared.leases.clone(), violations.clone(), watching.clone());
        async move {
            while !watching.is_cancelled() {
                let table = leases.list_leases().await.unwrap();
                let finished: BTreeSet<ShardId> =
                    table.iter().filter(|l| l.is_finished()).map(|l| l.shard_id.clone()).collect();
                for child in table.iter().filter(|l| !l.parents.is_empty()) {
                    let started = child.owner.is_some() || child.checkpoint != Checkpoint::TrimHorizon;
                    let mut violations = violations.lock().unwrap();
                    // The first few tell the story; the watcher would otherwise repeat them every poll.
                    if started && !child.parents.iter().all(|p| finished.contains(p)) && violations.len() < 3 {
                        violations.push(format!("{child:?} while its parents were unfinished"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });

    let consumer_config = ConsumerConfig { batch_size: 2, ..config("splitter") };
    let consumer = start_with(shared.ports.clone(), consumer_config);

    let mut before_split = BTreeSet::new();
    for n in 0..20 {
        before_split.insert(shared.append(customer, n).await);
    }
    shared.stream.split_shard(&parent.shard_id, parent.hash_key_range.midpoint()).await.unwrap();
    let children: Vec<ShardId> = shared
        .stream
        .list_shards()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.parent.as_ref() == Some(&parent.shard_id))
        .map(|s| s.shard_id)
        .collect();
    assert_eq!(children.len(), 2);
    let mut after_split = BTreeSet::new();
    for n in 20..40 {
        after_split.insert(shared.append(customer, n).await);
    }

    endpoint.wait_for_all(&before_split.union(&after_split).cloned().collect()).await;
    consumer.stop().await;
    watching.cancel();
    watcher.await.unwrap();

    let violations = violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "children started early: {violations:?}");
    // One partition key stays in order across the split: everything appended to the parent
    // arrived before anything appended to its child.
    let first = endpoint.first_arrivals();
    let last_before = before_split.iter().map(|id| first[id]).max().unwrap();
    let first_after = after_split.iter().map(|id| first[id]).min().unwrap();
    assert!(last_before < first_after, "a record appended after the split arrived before one appended before it");

    let table: HashMap<ShardId, Lease> = shared.leases().await.into_iter().map(|l| (l.shard_id.clone(), l)).collect();
    assert!(table[&parent.shard_id].is_finished());
    for child in &children {
        assert_eq!(table[child].parents, vec![parent.shard_id.clone()]);
        assert!(!table[child].is_finished());
    }
    // The records appended after the split went to one child, which was read past them.
    let read_children =
        children.iter().filter(|child| matches!(table[*child].checkpoint, Checkpoint::After(_))).count();
    assert_eq!(read_children, 1, "{table:?}");
}
