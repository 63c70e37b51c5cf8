//! The behaviour of every lease store, written once. The DynamoDB adapter joins this suite when it
//! is written; today the embedded adapter runs it.

use triggers_checkpoint::embedded::EmbeddedLeaseStore;
use triggers_checkpoint::{Checkpoint, LeaseError, LeaseStore};
use triggers_stream::{SequenceNumber, ShardId};

async fn creates_leases_once_and_takes_them_conditionally(store: &dyn LeaseStore) {
    let shard = ShardId::from_index(0);
    store.ensure_leases(&[(shard.clone(), vec![])], Checkpoint::TrimHorizon).await.unwrap();
    let first = store.list_leases().await.unwrap().remove(0);
    let taken = store.take_lease(&first, "worker-a", "a-1").await.unwrap();
    assert_eq!(taken.owner.as_deref(), Some("worker-a"));

    // Creating again leaves the existing lease alone.
    store.ensure_leases(&[(shard.clone(), vec![])], Checkpoint::Latest).await.unwrap();
    let listed = store.list_leases().await.unwrap();
    assert_eq!(listed, vec![taken.clone()]);

    // A second worker with the stale copy loses.
    assert!(matches!(store.take_lease(&first, "worker-b", "b-1").await, Err(LeaseError::Conflict(_))));
}

async fn checkpoints_never_move_on_a_stale_lease(store: &dyn LeaseStore) {
    let shard = ShardId::from_index(1);
    store.ensure_leases(&[(shard.clone(), vec![])], Checkpoint::TrimHorizon).await.unwrap();
    let lease = store.list_leases().await.unwrap().into_iter().find(|l| l.shard_id == shard).unwrap();
    let held = store.take_lease(&lease, "worker-a", "a-1").await.unwrap();
    let renewed = store.renew_lease(&held).await.unwrap();
    assert!(renewed.counter > held.counter);

    let seq = SequenceNumber::parse("42").unwrap();
    assert!(matches!(store.checkpoint(&held, Checkpoint::After(seq.clone())).await, Err(LeaseError::Conflict(_))));
    let advanced = store.checkpoint(&renewed, Checkpoint::After(seq.clone())).await.unwrap();
    assert_eq!(advanced.checkpoint, Checkpoint::After(seq));

    // Someone else took it over: the old holder can neither renew nor checkpoint nor release.
    let listed = store.list_leases().await.unwrap().into_iter().find(|l| l.shard_id == shard).unwrap();
    assert_eq!(listed.owner.as_deref(), Some("worker-a"));
    let stolen = store.take_lease(&listed, "worker-b", "b-1").await.unwrap();
    assert_eq!(stolen.owner.as_deref(), Some("worker-b"));
    assert!(matches!(store.renew_lease(&advanced).await, Err(LeaseError::Conflict(_))));
    assert!(matches!(store.release_lease(&advanced).await, Err(LeaseError::Conflict(_))));

    store.release_lease(&stolen).await.unwrap();
    let released = store.list_leases().await.unwrap().into_iter().find(|l| l.shard_id == shard).unwrap();
    assert_eq!(released.owner, None);
}

async fn instance_tokens_travel_with_the_lease(store: &dyn LeaseStore) {
    let shard = ShardId::from_index(3);
    store.ensure_leases(&[(shard.clone(), vec![])], Checkpoint::TrimHorizon).await.unwrap();
    let fresh = store.list_leases().await.unwrap().into_iter().find(|l| l.shard_id == shard).unwrap();
    assert_eq!((fresh.owner.as_deref(), fresh.instance.as_deref()), (None, None));

    let taken = store.take_lease(&fresh, "worker-a", "instance-1").await.unwrap();
    assert_eq!((taken.owner.as_deref(), taken.instance.as_deref()), (Some("worker-a"), Some("instance-1")));
    let renewed = store.renew_lease(&taken).await.unwrap();
    let advanced = store.checkpoint(&renewed, Checkpoint::After(SequenceNumber::parse("7").unwrap())).await.unwrap();
    let listed = store.list_leases().await.unwrap().into_iter().find(|l| l.shard_id == shard).unwrap();
    assert_eq!(listed, advanced);
    assert_eq!(listed.instance.as_deref(), Some("instance-1"), "renewals and checkpoints keep the token");

    // Another process under the same worker id takes it over: the token tells the two apart, and
    // the first process's copy no longer matches.
    let retaken = store.take_lease(&listed, "worker-a", "instance-2").await.unwrap();
    assert_eq!((retaken.owner.as_deref(), retaken.instance.as_deref()), (Some("worker-a"), Some("instance-2")));
    assert!(matches!(store.renew_lease(&advanced).await, Err(LeaseError::Conflict(_))));

    store.release_lease(&retaken).await.unwrap();
    let released = store.list_leases().await.unwrap().into_iter().find(|l| l.shard_id == shard).unwrap();
    assert_eq!((released.owner.as_deref(), released.instance.as_deref()), (None, None));
}

async fn unknown_leases_are_not_found(store: &dyn LeaseStore) {
    store.ensure_leases(&[(ShardId::from_index(2), vec![])], Checkpoint::TrimHorizon).await.unwrap();
    let mut ghost = store.list_leases().await.unwrap().remove(0);
    ghost.shard_id = ShardId::from_index(77);
    assert!(matches!(store.renew_lease(&ghost).await, Err(LeaseError::NotFound(_))));
}

macro_rules! lease_store_suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn creates_leases_once_and_takes_them_conditionally() {
                let (store, _guard) = $make;
                super::creates_leases_once_and_takes_them_conditionally(&store).await;
            }

            #[tokio::test]
            async fn checkpoints_never_move_on_a_stale_lease() {
                let (store, _guard) = $make;
                super::checkpoints_never_move_on_a_stale_lease(&store).await;
            }

            #[tokio::test]
            async fn instance_tokens_travel_with_the_lease() {
                let (store, _guard) = $make;
                super::instance_tokens_travel_with_the_lease(&store).await;
            }

            #[tokio::test]
            async fn unknown_leases_are_not_found() {
                let (store, _guard) = $make;
                super::unknown_leases_are_not_found(&store).await;
            }
        }
    };
}

fn embedded_store() -> (EmbeddedLeaseStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = triggers_embedded::Engine::open(dir.path()).unwrap();
    (EmbeddedLeaseStore::open(&engine).unwrap(), dir)
}

lease_store_suite!(embedded, embedded_store());
