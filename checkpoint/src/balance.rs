//! Which leases a worker should take: pure decisions, tested without a store.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use triggers_stream::ShardId;

use crate::Lease;

/// Watches lease counters on this worker's clock to tell which leases have expired, and which are
/// being kept alive by someone.
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    last_change: HashMap<ShardId, Watched>,
}

#[derive(Debug, Clone)]
struct Watched {
    counter: u64,
    since: Instant,
    holder: (Option<String>, Option<String>),
    /// How many times the counter was seen to change while its owner and instance stayed the same.
    moves: u32,
}

impl ExpiryWatch {
    /// Notes the counters seen now; call once per listing of the lease table.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) {
        self.last_change.retain(|shard, _| leases.iter().any(|l| &l.shard_id == shard));
        for lease in leases {
            let holder = (lease.owner.clone(), lease.instance.clone());
            let entry = self.last_change.entry(lease.shard_id.clone()).or_insert_with(|| Watched {
                counter: lease.counter,
                since: now,
                holder: holder.clone(),
                moves: 0,
            });
            if entry.counter != lease.counter {
                // What moved the counter under an earlier holder says nothing about this one.
                let moves = if entry.holder == holder { entry.moves.saturating_add(1) } else { 0 };
                *entry = Watched { counter: lease.counter, since: now, holder, moves };
            }
        }
    }

    /// Whether `lease` is free to take: unowned, or its counter has not moved for `failover`.
    pub fn is_available(&self, lease: &Lease, now: Instant, failover: Duration) -> bool {
        if lease.owner.is_none() {
            return true;
        }
        match self.last_change.get(&lease.shard_id) {
            Some(watched) => watched.counter == lease.counter && now.duration_since(watched.since) >= failover,
            None => false,
        }
    }

    /// How many times `lease`'s counter has been seen to move since it was first observed under
    /// its present owner and instance.
    pub fn moves(&self, lease: &Lease) -> u32 {
        self.last_change.get(&lease.shard_id).map_or(0, |watched| watched.moves)
    }
}

/// Who this process is in the lease table: its worker id, and the random token of this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Me<'a> {
    /// The worker id, stable across restarts.
    pub worker_id: &'a str,
    /// The token of this process, new at every start.
    pub instance: &'a str,
}

impl Me<'_> {
    fn holds(&self, lease: &Lease) -> bool {
        lease.owner.as_deref() == Some(self.worker_id) && lease.instance.as_deref() == Some(self.instance)
    }

    /// Whether `lease` is under this worker id but written by another process (or by a build
    /// that wrote no token).
    fn twin_holds(&self, lease: &Lease) -> bool {
        lease.owner.as_deref() == Some(self.worker_id) && lease.instance.as_deref() != Some(self.instance)
    }
}

/// The lease table as a process sees it whose store no other process can open
/// ([`crate::LeaseStore::is_exclusive`]): a lease under my worker id but another instance's token
/// was left by an earlier run of this very process (one that died, or stopped without releasing),
/// so it is shown as mine, to be taken back at once. Only the view changes: conditional writes still
/// go against the lease as stored.
pub fn adopt_leftovers(leases: &[Lease], me: Me<'_>) -> Vec<Lease> {
    leases
        .iter()
        .cloned()
        .map(|mut lease| {
            if me.twin_holds(&lease) {
                lease.instance = Some(me.instance.to_owned());
            }
            lease
        })
        .collect()
}

/// How many times the counter of a lease under my worker id but another instance's token must be
/// seen to move before that instance counts as alive. A live process renews every third of the
/// failover time, so it shows two moves within one failover time; one move alone may be an
/// operator's rewind of a dead process's lease.
pub const TWIN_MOVES: u32 = 2;

/// A lease under my worker id that another live process keeps renewing: two processes were started
/// with one worker id, and this one must not go on (each would take the other's leases back as its
/// own, forever). `moves` tells how often a lease's counter was seen to move while its owner and
/// instance stayed as they are ([`ExpiryWatch::moves`]).
///
/// Neither a rewind (which moves the counter of a lease I hold, under my own token) nor a steal
/// (which changes the owner to another worker id) is this case; nor is a lease whose counter stands
/// still, which a process that died left behind.
pub fn live_twin<'a>(leases: &'a [Lease], me: Me<'_>, moves: &dyn Fn(&Lease) -> u32) -> Option<&'a Lease> {
    leases.iter().find(|lease| me.twin_holds(lease) && lease.instance.is_some() && moves(lease) >= TWIN_MOVES)
}

/// The lease table as [`leases_to_take`] should see it from this process:
///
/// - a lease under my worker id and my token that I am not running (I lost it through a write that
///   timed out, or its worker stopped) is mine to take back at once: shown unowned;
/// - a lease under my worker id but another token (a process of mine that died, or a twin) is
///   shown as another worker's, so that it is taken only once it has expired.
pub fn as_seen_by(leases: &[Lease], me: Me<'_>, is_running: &dyn Fn(&ShardId) -> bool) -> Vec<Lease> {
    leases
        .iter()
        .cloned()
        .map(|mut lease| {
            if me.holds(&lease) && !is_running(&lease.shard_id) {
                lease.owner = None;
            } else if me.twin_holds(&lease) {
                let other = lease.instance.as_deref().unwrap_or("unknown instance");
                lease.owner = Some(format!("{} ({other})", me.worker_id));
            }
            lease
        })
        .collect()
}

/// The leases this process should try to take this round: [`leases_to_take`] on the table
/// [`as_seen_by`] it, except that a lease under its own worker id but another instance's token is
/// never stolen, only taken once it has expired (its process died). Stealing it would take a lease
/// from a twin before the twin is recognised, or from a process of this worker that is still
/// shutting down.
pub fn plan(
    leases: &[Lease],
    me: Me<'_>,
    is_running: &dyn Fn(&ShardId) -> bool,
    is_available: &dyn Fn(&Lease) -> bool,
) -> Vec<ShardId> {
    let seen = as_seen_by(leases, me, is_running);
    leases_to_take(&seen, me.worker_id, is_available)
        .into_iter()
        .filter(|shard| {
            leases
                .iter()
                .find(|l| &l.shard_id == shard)
                .is_none_or(|lease| !me.twin_holds(lease) || is_available(lease))
        })
        .collect()
}

/// The leases worker `me` should try to take this round, given the whole table.
///
/// - A shard is eligible once it is not finished and every parent that still has a lease is
///   finished (children wait for their parents, so order per partition key survives resharding).
/// - Each live worker should hold about `ceil(eligible / workers)`; a worker below that takes
///   available leases (unowned or expired; its own first, e.g. after a restart with the same id).
/// - If none are available and another worker holds more than its share, one lease is stolen from
///   the most loaded worker; stealing one at a time keeps the fleet from thrashing.
pub fn leases_to_take(leases: &[Lease], me: &str, is_available: &dyn Fn(&Lease) -> bool) -> Vec<ShardId> {
    let finished: HashMap<&ShardId, bool> = leases.iter().map(|l| (&l.shard_id, l.is_finished())).collect();
    let eligible: Vec<&Lease> = leases
        .iter()
        .filter(|l| !l.is_finished())
        .filter(|l| l.parents.iter().all(|p| finished.get(p).copied().unwrap_or(true)))
        .collect();
    if eligible.is_empty() {
        return Vec::new();
    }

    let mut held: HashMap<&str, Vec<&Lease>> = HashMap::new();
    let mut available = Vec::new();
    for lease in &eligible {
        match &lease.owner {
            Some(owner) if owner == me || !is_available(lease) => held.entry(owner.as_str()).or_default().push(lease),
            _ => available.push(*lease),
        }
    }
    // Expired leases of mine are mine to take back first.
    available.sort_by_key(|l| (l.owner.as_deref() != Some(me), l.shard_id.clone()));

    let workers = held.keys().filter(|w| **w != me).count() + 1;
    let target = eligible.len().div_ceil(workers);
    let mine = held.get(me).map_or(0, Vec::len);
    if mine >= target {
        return Vec::new();
    }
    let wanted = target - mine;
    if !available.is_empty() {
        return available.into_iter().take(wanted).map(|l| l.shard_id.clone()).collect();
    }
    let most_loaded = held
        .iter()
        .filter(|(worker, _)| **worker != me)
        .max_by_key(|(worker, leases)| (leases.len(), std::cmp::Reverse(**worker)));
    match most_loaded {
        Some((_, leases)) if leases.len() > target => {
            leases.iter().map(|l| l.shard_id.clone()).min().into_iter().collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Checkpoint;

    fn lease(index: u32, owner: Option<&str>) -> Lease {
        Lease {
            shard_id: ShardId::from_index(index),
            parents: Vec::new(),
            owner: owner.map(str::to_owned),
            instance: owner.map(|o| format!("{o}-1")),
            counter: 1,
            checkpoint: Checkpoint::TrimHorizon,
        }
    }

    fn never_expired(_: &Lease) -> bool {
        false
    }

    #[test]
    fn a_lone_worker_takes_every_free_lease() {
        let leases: Vec<_> = (0..4).map(|i| lease(i, None)).collect();
        assert_eq!(leases_to_take(&leases, "a", &never_expired).len(), 4);
    }

    #[test]
    fn a_new_worker_takes_its_share_then_steals_one_at_a_time() {
        let mut leases: Vec<_> = (0..4).map(|i| lease(i, Some("a"))).collect();
        assert_eq!(leases_to_take(&leases, "b", &never_expired), vec![ShardId::from_index(0)]);
        leases[0].owner = Some("b".into());
        assert_eq!(leases_to_take(&leases, "b", &never_expired), vec![ShardId::from_index(1)]);
        leases[1].owner = Some("b".into());
        assert!(leases_to_take(&leases, "b", &never_expired).is_empty());
        assert!(leases_to_take(&leases, "a", &never_expired).is_empty());
    }

    #[test]
    fn expired_leases_are_taken_and_own_ones_first() {
        let leases = vec![lease(0, Some("dead")), lease(1, Some("me")), lease(2, Some("dead"))];
        let expired = |l: &Lease| l.owner.as_deref() != Some("live");
        let taken = leases_to_take(&leases, "me", &expired);
        assert_eq!(taken, vec![ShardId::from_index(0), ShardId::from_index(2)]);
    }

    #[test]
    fn children_wait_for_their_parents_to_finish() {
        let mut parent = lease(0, None);
        let mut child = lease(1, None);
        child.parents = vec![parent.shard_id.clone()];
        let orphan = {
            let mut l = lease(2, None);
            l.parents = vec![ShardId::from_index(99)];
            l
        };
        let taken = leases_to_take(&[parent.clone(), child.clone(), orphan.clone()], "a", &never_expired);
        assert_eq!(taken, vec![ShardId::from_index(0), ShardId::from_index(2)]);
        parent.checkpoint = Checkpoint::ShardEnd;
        let taken = leases_to_take(&[parent, child, orphan], "a", &never_expired);
        assert_eq!(taken, vec![ShardId::from_index(1), ShardId::from_index(2)]);
    }

    #[test]
    fn expiry_needs_the_counter_to_stand_still_for_the_failover_time() {
        let failover = Duration::from_secs(10);
        let start = Instant::now();
        let mut watch = ExpiryWatch::default();
        let mut held = lease(0, Some("other"));
        watch.observe(std::slice::from_ref(&held), start);
        assert!(!watch.is_available(&held, start + Duration::from_secs(9), failover));
        held.counter += 1;
        watch.observe(std::slice::from_ref(&held), start + Duration::from_secs(9));
        assert!(!watch.is_available(&held, start + Duration::from_secs(15), failover));
        assert!(watch.is_available(&held, start + Duration::from_secs(19), failover));
        assert!(watch.is_available(&lease(1, None), start, failover));
    }

    fn moved(times: u32) -> impl Fn(&Lease) -> u32 {
        move |_| times
    }

    #[test]
    fn a_lease_under_my_id_kept_alive_by_another_instance_is_a_twin() {
        let me = Me { worker_id: "w", instance: "mine" };
        let mut twin = lease(0, Some("w"));
        twin.instance = Some("theirs".into());
        let leases = vec![lease(1, Some("w")), twin.clone()];
        let leases: Vec<Lease> = leases
            .into_iter()
            .map(|mut l| {
                if l.shard_id == ShardId::from_index(1) {
                    l.instance = Some("mine".into());
                }
                l
            })
            .collect();
        assert_eq!(live_twin(&leases, me, &moved(2)).map(|l| &l.shard_id), Some(&twin.shard_id));
        // Standing still (a process that died), or moved once (a rewind of a dead process's lease).
        assert!(live_twin(&leases, me, &moved(0)).is_none());
        assert!(live_twin(&leases, me, &moved(1)).is_none());
    }

    #[test]
    fn in_an_exclusive_store_a_leftover_of_an_earlier_run_is_taken_back_at_once() {
        let me = Me { worker_id: "w", instance: "mine" };
        let mut leftover = lease(0, Some("w"));
        leftover.instance = Some("earlier-run".into());
        let other = lease(1, Some("x"));
        let leases = vec![leftover.clone(), other.clone()];
        // Without adoption, the leftover is another process's and waits for the failover time.
        assert!(plan(&leases, me, &|_| false, &never_expired).is_empty());
        let adopted = adopt_leftovers(&leases, me);
        assert_eq!(plan(&adopted, me, &|_| false, &never_expired), vec![leftover.shard_id.clone()]);
        assert!(live_twin(&adopted, me, &moved(10)).is_none());
        assert_eq!(adopted[1], other);
    }

    #[test]
    fn a_rewind_of_my_own_lease_and_a_steal_are_not_twins() {
        let me = Me { worker_id: "w", instance: "mine" };
        let mut rewound = lease(0, Some("w"));
        rewound.instance = Some("mine".into());
        let stolen = lease(1, Some("other-worker"));
        let mut unowned = lease(2, None);
        unowned.instance = None;
        assert!(live_twin(&[rewound, stolen, unowned], me, &moved(10)).is_none());
    }

    #[test]
    fn leases_of_an_older_build_without_a_token_are_judged_by_expiry_only() {
        let me = Me { worker_id: "w", instance: "mine" };
        let mut legacy = lease(0, Some("w"));
        legacy.instance = None;
        assert!(live_twin(std::slice::from_ref(&legacy), me, &moved(10)).is_none());
        let seen = as_seen_by(std::slice::from_ref(&legacy), me, &|_| false);
        assert_eq!(seen[0].owner.as_deref(), Some("w (unknown instance)"));
    }

    #[test]
    fn my_own_leases_come_back_at_once_and_another_instances_only_once_expired() {
        let me = Me { worker_id: "w", instance: "mine" };
        let mut mine_not_running = lease(0, Some("w"));
        mine_not_running.instance = Some("mine".into());
        let mut mine_running = lease(1, Some("w"));
        mine_running.instance = Some("mine".into());
        let mut previous = lease(2, Some("w"));
        previous.instance = Some("before-restart".into());
        let leases = vec![mine_not_running, mine_running, previous.clone()];
        let running = |shard: &ShardId| *shard == ShardId::from_index(1);

        let seen = as_seen_by(&leases, me, &running);
        assert_eq!(seen[0].owner, None);
        assert_eq!(seen[1].owner.as_deref(), Some("w"));
        assert_eq!(seen[2].owner.as_deref(), Some("w (before-restart)"));

        let still_alive = |l: &Lease| l.owner.is_none();
        assert_eq!(leases_to_take(&seen, "w", &still_alive), vec![ShardId::from_index(0)]);
        let expired = |_: &Lease| true;
        assert_eq!(leases_to_take(&seen, "w", &expired), vec![ShardId::from_index(0), ShardId::from_index(2)]);
    }

    #[test]
    fn leases_of_another_instance_of_mine_are_never_stolen_only_taken_once_expired() {
        let me = Me { worker_id: "w", instance: "mine" };
        let leases: Vec<Lease> = (0..4)
            .map(|i| {
                let mut l = lease(i, Some("w"));
                l.instance = Some("theirs".into());
                l
            })
            .collect();
        let not_running = |_: &ShardId| false;
        // A plain other worker holding all four would lose one to a steal; another instance of
        // mine loses none until its leases expire.
        assert!(plan(&leases, me, &not_running, &never_expired).is_empty());
        let expired = |_: &Lease| true;
        assert_eq!(plan(&leases, me, &not_running, &expired).len(), 4);
        let others: Vec<Lease> = (0..4).map(|i| lease(i, Some("other"))).collect();
        assert_eq!(plan(&others, me, &not_running, &never_expired), vec![ShardId::from_index(0)]);
    }

    #[test]
    fn moves_count_counter_changes_under_one_holder() {
        let start = Instant::now();
        let mut watch = ExpiryWatch::default();
        let mut held = lease(0, Some("w"));
        watch.observe(std::slice::from_ref(&held), start);
        assert_eq!(watch.moves(&held), 0);
        held.counter += 1;
        watch.observe(std::slice::from_ref(&held), start);
        watch.observe(std::slice::from_ref(&held), start);
        held.counter += 3;
        watch.observe(std::slice::from_ref(&held), start);
        assert_eq!(watch.moves(&held), 2);
        // Taken by another process: its moves start from nothing.
        held.instance = Some("another".into());
        held.counter += 1;
        watch.observe(std::slice::from_ref(&held), start);
        assert_eq!(watch.moves(&held), 0);
    }
}
