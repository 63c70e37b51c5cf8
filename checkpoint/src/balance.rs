//! Which leases a worker should take: pure decisions, tested without a store.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use triggers_stream::ShardId;

use crate::Lease;

/// Watches lease counters on this worker's clock to tell which leases have expired.
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    last_change: HashMap<ShardId, (u64, Instant)>,
}

impl ExpiryWatch {
    /// Notes the counters seen now; call once per listing of the lease table.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) {
        self.last_change.retain(|shard, _| leases.iter().any(|l| &l.shard_id == shard));
        for lease in leases {
            let entry = self.last_change.entry(lease.shard_id.clone()).or_insert((lease.counter, now));
            if entry.0 != lease.counter {
                *entry = (lease.counter, now);
            }
        }
    }

    /// Whether `lease` is free to take: unowned, or its counter has not moved for `failover`.
    pub fn is_available(&self, lease: &Lease, now: Instant, failover: Duration) -> bool {
        if lease.owner.is_none() {
            return true;
        }
        match self.last_change.get(&lease.shard_id) {
            Some(&(counter, since)) => counter == lease.counter && now.duration_since(since) >= failover,
            None => false,
        }
    }
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
}
