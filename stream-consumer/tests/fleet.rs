//! Consumers sharing one set of ports, as a fleet shares one stream and one lease table: leases
//! are shared out, move when a consumer stops or dies, and children of a split shard wait for
//! their parent.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Endpoint, PATIENCE, Shared, append_round, config, customers_on_every_shard, start, start_with};
use tokio_util::sync::CancellationToken;
use triggers_checkpoint::{Checkpoint, Lease, LeaseStore};
use triggers_schemas::CustomerId;
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream::{
    AppendRecord, Appended, ShardId, ShardInfo, ShardReader, StartPosition, Stream, StreamError, hash_key,
};
use triggers_stream_consumer::{ConsumerConfig, ConsumerError, ConsumerHealth, ConsumerPorts};

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
    doomed.spawn(Box::pin(triggers_stream_consumer::run(
        shared.ports.clone(),
        config("doomed"),
        health,
        never_cancelled,
    )));
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

/// The embedded stream, except that `list_shards` never answers while `hang` is set.
struct HangingListing {
    inner: EmbeddedStream,
    hang: Arc<AtomicBool>,
}

#[async_trait]
impl Stream for HangingListing {
    async fn append(&self, records: Vec<AppendRecord>) -> Result<Vec<Result<Appended, StreamError>>, StreamError> {
        self.inner.append(records).await
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.list_shards().await
    }

    async fn open_reader(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        self.inner.open_reader(shard, from).await
    }

    async fn split_shard(&self, shard: &ShardId, new_starting_hash_key: u128) -> Result<(), StreamError> {
        self.inner.split_shard(shard, new_starting_hash_key).await
    }

    async fn merge_shards(&self, shard: &ShardId, adjacent: &ShardId) -> Result<(), StreamError> {
        self.inner.merge_shards(shard, adjacent).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_shard_listing_does_not_stop_lease_renewals() {
    // One shard: a rival can then only take it once it has expired (there is nothing to rebalance).
    let shared = Shared::open(1);
    let hang = Arc::new(AtomicBool::new(false));
    let ports = ConsumerPorts {
        stream: Arc::new(HangingListing { inner: shared.stream.clone(), hang: hang.clone() }),
        ..shared.ports.clone()
    };
    // Far longer than the test: renewals must go on because they run apart from the listing, not
    // because the listing times out.
    let stuck = start_with(ports, ConsumerConfig { call_timeout: Duration::from_secs(600), ..config("stuck") });
    shared.wait_for_holdings(&[("stuck", 1)]).await;

    hang.store(true, Ordering::SeqCst);
    // Let a lease round begin and hang on the listing before anyone watches.
    tokio::time::sleep(config("stuck").renew_interval() * 2).await;
    let before: HashMap<ShardId, u64> = shared.leases().await.into_iter().map(|l| (l.shard_id, l.counter)).collect();
    let rival = start(&shared, "rival");
    // Three failover times: on a frozen lease table the rival would have taken its share by now.
    tokio::time::sleep(config("stuck").failover_time * 3).await;

    for lease in shared.leases().await {
        assert_eq!(lease.owner.as_deref(), Some("stuck"), "{lease:?}");
        assert!(
            lease.counter >= before[&lease.shard_id] + 3,
            "renewals stopped: {lease:?}, counter was {}",
            before[&lease.shard_id]
        );
    }
    rival.stop().await;
    // The hung round holds the coordinator; what it does after is for the listing to decide.
    stuck.shutdown.cancel();
    stuck.task.abort();
}

/// The instance token of every lease, by shard.
async fn instances(shared: &Shared) -> HashMap<ShardId, Option<String>> {
    shared.leases().await.into_iter().map(|l| (l.shard_id, l.instance)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_under_the_same_worker_id_refuses_to_run_instead_of_taking_leases() {
    let shared = Shared::open(4);
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let customers = customers_on_every_shard(&shared, &endpoint).await;
    let first = start(&shared, "twin");
    shared.wait_for_holdings(&[("twin", 4)]).await;
    let first_instances = instances(&shared).await;
    assert!(first_instances.values().all(|i| i.is_some() && *i == first_instances[&ShardId::from_index(0)]));

    let second = start(&shared, "twin");
    // Throughout, every lease stays with the first process: the second never takes one.
    let deadline = Instant::now() + PATIENCE;
    while !second.task.is_finished() {
        assert_eq!(instances(&shared).await, first_instances, "the second process took a lease");
        assert!(Instant::now() < deadline, "the second process never noticed the first");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = second.task.await.unwrap();
    assert!(
        matches!(&refused, Err(ConsumerError::DuplicateWorkerId { worker_id, .. }) if worker_id == "twin"),
        "{refused:?}"
    );
    assert!(second.health.failing_shards().is_empty());

    // The first goes on as if nothing happened.
    assert_eq!(instances(&shared).await, first_instances);
    let after = append_round(&shared, &customers, 2).await;
    endpoint.wait_for_all(&after).await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_the_same_worker_id_takes_the_leases_back() {
    let shared = Shared::open(4);
    // After a graceful stop the leases are released: the restart takes them at once.
    let first = start(&shared, "same");
    shared.wait_for_holdings(&[("same", 4)]).await;
    first.stop().await;
    let second = start(&shared, "same");
    shared.wait_for_holdings(&[("same", 4)]).await;
    let second_instances = instances(&shared).await;

    second.stop().await;

    // After a crash they are not: the restart takes them once they stood still for the failover
    // time. The doomed process runs on a runtime of its own, whose shutdown stops it at once.
    let doomed = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let health = Arc::new(ConsumerHealth::default());
    doomed.spawn(Box::pin(triggers_stream_consumer::run(
        shared.ports.clone(),
        config("same"),
        health,
        CancellationToken::new(),
    )));
    let deadline = Instant::now() + PATIENCE;
    let crashed_instances = loop {
        let now = instances(&shared).await;
        if now.values().all(Option::is_some) && now.values().all(|i| !second_instances.values().any(|s| s == i)) {
            break now;
        }
        assert!(Instant::now() < deadline, "the doomed process never took the released leases: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    doomed.shutdown_background();
    let died_at = Instant::now();

    let restarted = start(&shared, "same");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = instances(&shared).await;
        if now.values().all(|i| i.is_some()) && now.values().all(|i| !crashed_instances.values().any(|c| c == i)) {
            break;
        }
        assert!(!restarted.task.is_finished(), "the restart refused to run: a dead process is no twin");
        assert!(Instant::now() < deadline, "the restart never took its leases back: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(died_at.elapsed() >= config("same").failover_time, "taken back before the old leases expired");
    shared.wait_for_holdings(&[("same", 4)]).await;
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_one_process_that_holds_the_database_a_crashed_run_s_leases_are_taken_back_at_once() {
    // The embedded store is locked by one process, so a lease under its worker id with another
    // run's token can only be that process's own leftover (it was killed): no waiting for expiry.
    let shared = Shared::open_exclusive(4);
    let doomed = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let crashed = config("local");
    doomed.spawn(Box::pin(triggers_stream_consumer::run(
        shared.ports.clone(),
        crashed.clone(),
        Arc::new(ConsumerHealth::default()),
        CancellationToken::new(),
    )));
    let deadline = Instant::now() + PATIENCE;
    let crashed_instances = loop {
        let now = instances(&shared).await;
        if now.len() == 4 && now.values().all(Option::is_some) {
            break now;
        }
        assert!(Instant::now() < deadline, "the first run never took the leases: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    doomed.shutdown_background();

    // With a failover time far beyond the test's patience, only adoption can give the leases back.
    let restarted =
        start_with(shared.ports.clone(), ConsumerConfig { failover_time: Duration::from_secs(3600), ..crashed });
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = instances(&shared).await;
        if now.values().all(|i| i.is_some() && !crashed_instances.values().any(|c| c == i)) {
            break;
        }
        assert!(!restarted.task.is_finished(), "the restart refused to run: its own leftover is no twin");
        assert!(Instant::now() < deadline, "the restart never took its leases back: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_of_a_held_lease_does_not_trip_the_twin_check() {
    let shared = Shared::open(4);
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let customers = customers_on_every_shard(&shared, &endpoint).await;
    let consumer = start(&shared, "rewound");
    shared.wait_for_holdings(&[("rewound", 4)]).await;
    let delivered = append_round(&shared, &customers, 1).await;
    endpoint.wait_for_all(&delivered).await;

    // An operator rewinds every shard a few times: the counters move under the consumer's own
    // name and token.
    for _ in 0..3 {
        for lease in shared.leases().await {
            let _ = shared.leases.checkpoint(&lease, Checkpoint::TrimHorizon).await;
        }
        tokio::time::sleep(config("rewound").renew_interval()).await;
    }
    // Each rewound shard is read again from the start, and every event arrives again.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let hits = endpoint.hits.lock().unwrap().iter().filter(|(_, id)| delivered.contains(id)).count();
        if hits >= 2 * delivered.len() {
            break;
        }
        assert!(!consumer.task.is_finished(), "the consumer stopped after a rewind");
        assert!(Instant::now() < deadline, "rewound shards were not read again ({hits} arrivals)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.wait_for_holdings(&[("rewound", 4)]).await;
    consumer.stop().await;
}
