//! The embedded lease store: one fjall keyspace, key = shard id, value = the lease (MessagePack).
//!
//! Conditional writes are read-compare-write under one mutex: the embedded backend is a single
//! process (fjall locks its directory), so the mutex is the whole of the concurrency to guard.

use std::sync::Mutex;

use async_trait::async_trait;
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_stream::ShardId;

use crate::{Checkpoint, Lease, LeaseError, LeaseStore};

/// Leases and checkpoints in the embedded storage engine.
pub struct EmbeddedLeaseStore {
    engine: Engine,
    leases: Keyspace,
    write_lock: Mutex<()>,
    exclusive: bool,
}

impl EmbeddedLeaseStore {
    /// Opens the lease table in `engine`, for the one process that holds the database.
    pub fn open(engine: &Engine) -> Result<Self, LeaseError> {
        Self::open_with(engine, true)
    }

    /// Opens the lease table for several consumers in one process that stand for separate
    /// processes of a fleet (the fleet tests): the store then does not claim to be exclusive, so
    /// that one worker id run twice is seen as two processes, as it would be on DynamoDB.
    pub fn open_for_fleet(engine: &Engine) -> Result<Self, LeaseError> {
        Self::open_with(engine, false)
    }

    fn open_with(engine: &Engine, exclusive: bool) -> Result<Self, LeaseError> {
        let leases = engine.keyspace("leases").map_err(unavailable)?;
        Ok(Self { engine: engine.clone(), leases, write_lock: Mutex::new(()), exclusive })
    }

    fn read(&self, shard: &ShardId) -> Result<Option<Lease>, LeaseError> {
        match self.leases.get(shard.0.as_bytes()).map_err(unavailable)? {
            Some(bytes) => Ok(Some(rmp_serde::from_slice(&bytes).map_err(unavailable)?)),
            None => Ok(None),
        }
    }

    fn write(&self, lease: &Lease) -> Result<(), LeaseError> {
        let bytes = rmp_serde::to_vec_named(lease).map_err(unavailable)?;
        self.leases.insert(lease.shard_id.0.as_bytes(), bytes).map_err(unavailable)
    }

    /// Replaces `expected` by `change(expected)` if the stored lease is still exactly `expected`.
    async fn compare_and_set(&self, expected: &Lease, change: impl FnOnce(&mut Lease)) -> Result<Lease, LeaseError> {
        let updated = {
            let _guard = self.write_lock.lock().expect("lease lock");
            let current =
                self.read(&expected.shard_id)?.ok_or_else(|| LeaseError::NotFound(expected.shard_id.clone()))?;
            if current.counter != expected.counter
                || current.owner != expected.owner
                || current.instance != expected.instance
            {
                return Err(LeaseError::Conflict(expected.shard_id.clone()));
            }
            let mut updated = current;
            change(&mut updated);
            updated.counter += 1;
            self.write(&updated)?;
            updated
        };
        // A checkpoint that is lost in a crash only means records are delivered again, but an
        // unsynced take could let two workers believe they own one shard after a restart.
        self.engine.sync().await.map_err(unavailable)?;
        Ok(updated)
    }
}

#[async_trait]
impl LeaseStore for EmbeddedLeaseStore {
    async fn ensure_leases(&self, shards: &[(ShardId, Vec<ShardId>)], initial: Checkpoint) -> Result<(), LeaseError> {
        let mut created = false;
        {
            let _guard = self.write_lock.lock().expect("lease lock");
            for (shard, parents) in shards {
                if self.read(shard)?.is_none() {
                    self.write(&Lease {
                        shard_id: shard.clone(),
                        parents: parents.clone(),
                        owner: None,
                        instance: None,
                        counter: 0,
                        checkpoint: initial.clone(),
                    })?;
                    created = true;
                }
            }
        }
        // The coordinator calls this every round; an fsync is owed only when a lease was added.
        if created { self.engine.sync().await.map_err(unavailable) } else { Ok(()) }
    }

    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseError> {
        let mut leases = Vec::new();
        for entry in self.leases.iter() {
            let (_, bytes) = entry.into_inner().map_err(unavailable)?;
            leases.push(rmp_serde::from_slice(&bytes).map_err(unavailable)?);
        }
        Ok(leases)
    }

    async fn take_lease(&self, lease: &Lease, owner: &str, instance: &str) -> Result<Lease, LeaseError> {
        self.compare_and_set(lease, |l| {
            l.owner = Some(owner.to_owned());
            l.instance = Some(instance.to_owned());
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        self.compare_and_set(lease, |_| {}).await
    }

    async fn checkpoint(&self, lease: &Lease, checkpoint: Checkpoint) -> Result<Lease, LeaseError> {
        self.compare_and_set(lease, |l| l.checkpoint = checkpoint).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), LeaseError> {
        self.compare_and_set(lease, |l| {
            l.owner = None;
            l.instance = None;
        })
        .await
        .map(drop)
    }

    /// fjall locks its directory: no second process can open this store (unless it was opened to
    /// stand for a fleet, see [`EmbeddedLeaseStore::open_for_fleet`]).
    fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

fn unavailable(error: impl std::fmt::Display) -> LeaseError {
    LeaseError::Unavailable(error.to_string())
}
