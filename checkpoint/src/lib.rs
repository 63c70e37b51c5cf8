//! Leases and checkpoints: which consumer owns which shard, and how far each shard has been
//! processed.
//!
//! The model is KCL's. Each shard has one lease record. The owner renews it by bumping its
//! `counter`; every write (take, renew, checkpoint, release) is conditional on the counter and owner
//! the writer last saw, so a checkpoint never moves because of a stale writer. A lease is expired
//! when another worker has watched its counter stand still for the failover time on its own clock:
//! no two machines' clocks are ever compared.
//!
//! [`LeaseStore`] is the port ([`embedded::EmbeddedLeaseStore`] today; a DynamoDB adapter is planned);
//! [`balance`] holds the pure decisions of which leases a worker should take.

pub mod balance;
pub mod embedded;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use triggers_schemas::Timestamp;
use triggers_stream::{SequenceNumber, ShardId, StartPosition};

/// How far a shard has been processed: where its next reader starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Checkpoint {
    /// Nothing processed yet: start at the oldest retained record.
    TrimHorizon,
    /// Start at records that arrive from now on (an operator's choice).
    Latest,
    /// Start at the first record that arrived at or after this time (an operator's rewind).
    AtTimestamp(Timestamp),
    /// Start at this record (an operator's rewind).
    AtSequence(SequenceNumber),
    /// Every record up to and including this one is resolved.
    After(SequenceNumber),
    /// The shard is closed and every record in it is resolved; its children may start.
    ShardEnd,
}

impl Checkpoint {
    /// Where a reader resumes, or `None` for a finished shard.
    pub fn start_position(&self) -> Option<StartPosition> {
        Some(match self {
            Self::TrimHorizon => StartPosition::TrimHorizon,
            Self::Latest => StartPosition::Latest,
            Self::AtTimestamp(at) => StartPosition::AtTimestamp(*at),
            Self::AtSequence(at) => StartPosition::AtSequence(at.clone()),
            Self::After(after) => StartPosition::AfterSequence(after.clone()),
            Self::ShardEnd => return None,
        })
    }
}

/// One shard's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The shard.
    pub shard_id: ShardId,
    /// The shard's parents, whose leases must reach [`Checkpoint::ShardEnd`] before this shard is
    /// processed, so that one partition key's records are delivered in order across a reshard.
    pub parents: Vec<ShardId>,
    /// The worker that holds it, if any.
    pub owner: Option<String>,
    /// The random token of the process (the instance of `owner`) that took it, so that two
    /// processes started under one worker id can tell each other's leases apart. `None` when
    /// unowned, and on leases written before tokens existed.
    #[serde(default)]
    pub instance: Option<String>,
    /// Bumped by every write; the basis of expiry and of conditional writes.
    pub counter: u64,
    /// How far the shard has been processed.
    pub checkpoint: Checkpoint,
}

impl Lease {
    /// Whether the shard has been processed to its end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }
}

/// A lease write that lost a race, or a lease that is missing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    /// The lease changed since the writer read it (another owner, or another write).
    #[error("lease for {0} changed since it was read")]
    Conflict(ShardId),
    /// No lease for that shard.
    #[error("no lease for {0}")]
    NotFound(ShardId),
    /// The store could not be reached or failed.
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
}

/// The lease-and-checkpoint store port.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Creates a lease (unowned, at `initial`) for every listed shard that has none. Idempotent.
    async fn ensure_leases(&self, shards: &[(ShardId, Vec<ShardId>)], initial: Checkpoint) -> Result<(), LeaseError>;

    /// Every lease.
    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseError>;

    /// Takes `lease` for worker `owner`, process `instance`, if it is still exactly as read.
    /// Returns the lease as written.
    async fn take_lease(&self, lease: &Lease, owner: &str, instance: &str) -> Result<Lease, LeaseError>;

    /// Renews a held lease (bumps its counter, keeps owner and instance), if it is still exactly as
    /// last written.
    async fn renew_lease(&self, lease: &Lease) -> Result<Lease, LeaseError>;

    /// Records progress on a held lease, if it is still exactly as last written.
    async fn checkpoint(&self, lease: &Lease, checkpoint: Checkpoint) -> Result<Lease, LeaseError>;

    /// Gives a held lease up (no owner, no instance) so that another worker may take it at once.
    async fn release_lease(&self, lease: &Lease) -> Result<(), LeaseError>;

    /// Whether only one process at a time can use this store (the embedded store: its database is
    /// locked by the process that opened it). Then a lease under this worker id but another
    /// instance's token can only be left over from an earlier run of this very process, and is
    /// taken back at once instead of after the failover time.
    fn is_exclusive(&self) -> bool {
        false
    }
}
