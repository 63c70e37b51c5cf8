use std::sync::Mutex;

use async_trait::async_trait;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_schemas::{CustomerId, Timestamp};

use super::{decode, encode, unavailable};
use crate::{IdempotencyBegin, LimitStore, RateDecision, StoreError};

/// Rate-limit windows in memory (they are worth nothing after a restart, as in Redis) and
/// idempotency keys in the storage engine (a replayed request must not be written twice even
/// across a restart).
///
/// Redis forgets a key when its TTL runs out; here [`EmbeddedLimitStore::purge_expired`] does it,
/// reading an expiry index (`expiry time ++ key`) so that a sweep reads only what has expired.
pub struct EmbeddedLimitStore {
    engine: Engine,
    windows: DashMap<CustomerId, (i64, u32)>,
    idempotency: Keyspace,
    /// One empty entry per idempotency entry, keyed by its expiry time (big-endian milliseconds)
    /// and then its key, so the expired ones form one range at the start.
    expiry_index: Keyspace,
    /// Serialises every read-modify-write of an idempotency entry, the sweep's included.
    idempotency_lock: Mutex<()>,
}

/// How long a claimed key without an answer counts as in flight. A request takes far less; a claim
/// older than this belongs to a process that died mid-request, and may be taken over.
const IN_FLIGHT_MILLIS: i64 = 60_000;

/// How many expired entries one step of a sweep removes while holding the lock, so that requests
/// claiming keys never wait behind a whole sweep.
const PURGE_CHUNK: usize = 1_000;

#[derive(Serialize, Deserialize)]
struct IdempotencyEntry {
    fingerprint: [u8; 32],
    response: Option<Vec<u8>>,
    #[serde(default)]
    claimed_at: Timestamp,
    expires_at: Timestamp,
}

/// What one sweep of expired idempotency keys did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expiry-index entries read: only those whose time had come.
    pub examined: usize,
    /// Idempotency keys removed (an index entry left behind by a key claimed anew, or abandoned,
    /// is removed without counting here).
    pub keys: usize,
}

impl EmbeddedLimitStore {
    /// Opens the store in `engine`.
    pub fn open(engine: &Engine) -> Result<Self, StoreError> {
        let store = Self {
            engine: engine.clone(),
            windows: DashMap::new(),
            idempotency: engine.keyspace("idempotency_keys").map_err(unavailable)?,
            expiry_index: engine.keyspace("idempotency_expiry").map_err(unavailable)?,
            idempotency_lock: Mutex::new(()),
        };
        store.index_unindexed_keys()?;
        Ok(store)
    }

    /// Gives every idempotency entry written before the expiry index existed its index entry, so
    /// that sweeps reach them too. Every later write keeps the two in step, so this runs (and scans)
    /// only when the index is empty while keys exist: once, on the first start of this version.
    fn index_unindexed_keys(&self) -> Result<(), StoreError> {
        if !self.expiry_index.is_empty().map_err(unavailable)? || self.idempotency.is_empty().map_err(unavailable)? {
            return Ok(());
        }
        let mut batch = self.engine.batch();
        for entry in self.idempotency.iter() {
            let (key, value) = entry.into_inner().map_err(unavailable)?;
            let entry: IdempotencyEntry = decode(&value)?;
            batch.insert(&self.expiry_index, expiry_index_key(entry.expires_at, &key), []);
        }
        batch.commit().map_err(unavailable)
    }

    /// [`LimitStore::begin_idempotent`] on the clock `now`.
    pub fn begin_idempotent_at(
        &self,
        customer_id: CustomerId,
        key: &str,
        fingerprint: &[u8; 32],
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<IdempotencyBegin, StoreError> {
        let store_key = idempotency_key(customer_id, key);
        let _guard = self.idempotency_lock.lock().expect("idempotency lock");
        if let Some(bytes) = self.idempotency.get(&store_key).map_err(unavailable)?
            && let Some(standing) = standing_claim(decode(&bytes)?, fingerprint, now)
        {
            return Ok(standing);
        }
        let ttl_millis = i64::try_from(ttl_secs).unwrap_or(i64::MAX).saturating_mul(1000);
        let entry = IdempotencyEntry {
            fingerprint: *fingerprint,
            response: None,
            claimed_at: now,
            expires_at: now.plus_millis(ttl_millis),
        };
        // A key claimed anew leaves its earlier index entry behind; the sweep drops it when it
        // comes due, seeing that the key now expires later.
        let mut batch = self.engine.batch();
        batch.insert(&self.expiry_index, expiry_index_key(entry.expires_at, &store_key), []);
        batch.insert(&self.idempotency, store_key, encode(&entry)?);
        batch.commit().map_err(unavailable)?;
        Ok(IdempotencyBegin::Fresh)
    }

    /// Removes every idempotency key whose TTL ran out by `now`, and the index entries that led to
    /// them. Reads the expiry index from its start up to `now` only: the cost follows what expired,
    /// not what is stored.
    pub fn purge_expired(&self, now: Timestamp) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        loop {
            let _guard = self.idempotency_lock.lock().expect("idempotency lock");
            let due = self.due_index_entries(now)?;
            if due.is_empty() {
                return Ok(purged);
            }
            purged.examined += due.len();
            let mut batch = self.engine.batch();
            for index_key in &due {
                let store_key = &index_key[8..];
                if let Some(bytes) = self.idempotency.get(store_key).map_err(unavailable)? {
                    let entry: IdempotencyEntry = decode(&bytes)?;
                    // The same key claimed anew after it expired has a later expiry and its own
                    // index entry; only the stale index entry goes.
                    if entry.expires_at <= now {
                        batch.remove(&self.idempotency, store_key);
                        purged.keys += 1;
                    }
                }
                batch.remove(&self.expiry_index, index_key.as_slice());
            }
            batch.commit().map_err(unavailable)?;
        }
    }

    /// Up to [`PURGE_CHUNK`] index entries whose expiry is at or before `now`, in expiry order.
    fn due_index_entries(&self, now: Timestamp) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = expiry_prefix(now.plus_millis(1));
        self.expiry_index
            .range(..end.as_slice())
            .take(PURGE_CHUNK)
            .map(|entry| entry.key().map(|key| key.to_vec()).map_err(unavailable))
            .collect()
    }
}

fn idempotency_key(customer_id: CustomerId, key: &str) -> Vec<u8> {
    let mut bytes = customer_id.0.as_bytes().to_vec();
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

/// Big-endian milliseconds, so that byte order is time order (times before 1970 sort first).
fn expiry_prefix(at: Timestamp) -> [u8; 8] {
    u64::try_from(at.as_millis()).unwrap_or(0).to_be_bytes()
}

fn expiry_index_key(expires_at: Timestamp, store_key: &[u8]) -> Vec<u8> {
    let mut key = expiry_prefix(expires_at).to_vec();
    key.extend_from_slice(store_key);
    key
}

/// Fixed one-second windows: the decision for `events` more in the window starting at `window`.
pub fn decide(window_start: i64, used: u32, now_millis: i64, limit: u32, events: u32) -> (i64, u32, RateDecision) {
    let current = now_millis.div_euclid(1000);
    let used = if current == window_start { used } else { 0 };
    let granted = events.min(limit.saturating_sub(used));
    let used = used + granted;
    let reset_secs = 1;
    (current, used, RateDecision { granted, limit, remaining: limit.saturating_sub(used), reset_secs })
}

/// What an existing entry answers a new request with, or `None` when the key may be claimed anew
/// (the entry expired, or its claim was abandoned by a process that died mid-request).
fn standing_claim(entry: IdempotencyEntry, fingerprint: &[u8; 32], now: Timestamp) -> Option<IdempotencyBegin> {
    let abandoned = entry.response.is_none() && entry.claimed_at.plus_millis(IN_FLIGHT_MILLIS) <= now;
    if entry.expires_at <= now || abandoned {
        return None;
    }
    Some(match (entry.fingerprint == *fingerprint, entry.response) {
        (false, _) => IdempotencyBegin::Mismatch,
        (true, None) => IdempotencyBegin::InFlight,
        (true, Some(response)) => IdempotencyBegin::Completed(response),
    })
}

#[async_trait]
impl LimitStore for EmbeddedLimitStore {
    async fn acquire(
        &self,
        customer_id: CustomerId,
        limit_per_sec: u32,
        events: u32,
    ) -> Result<RateDecision, StoreError> {
        let mut window = self.windows.entry(customer_id).or_insert((0, 0));
        let (start, used, decision) = decide(window.0, window.1, Timestamp::now().as_millis(), limit_per_sec, events);
        *window = (start, used);
        Ok(decision)
    }

    async fn begin_idempotent(
        &self,
        customer_id: CustomerId,
        key: &str,
        fingerprint: &[u8; 32],
        ttl_secs: u64,
    ) -> Result<IdempotencyBegin, StoreError> {
        self.begin_idempotent_at(customer_id, key, fingerprint, ttl_secs, Timestamp::now())
    }

    async fn complete_idempotent(&self, customer_id: CustomerId, key: &str, response: &[u8]) -> Result<(), StoreError> {
        let store_key = idempotency_key(customer_id, key);
        let _guard = self.idempotency_lock.lock().expect("idempotency lock");
        let bytes = self
            .idempotency
            .get(&store_key)
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
        let mut entry: IdempotencyEntry = decode(&bytes)?;
        entry.response = Some(response.to_vec());
        // The expiry is unchanged, so the index entry stands.
        self.idempotency.insert(store_key, encode(&entry)?).map_err(unavailable)
    }

    async fn abandon_idempotent(&self, customer_id: CustomerId, key: &str) -> Result<(), StoreError> {
        let store_key = idempotency_key(customer_id, key);
        let _guard = self.idempotency_lock.lock().expect("idempotency lock");
        let Some(bytes) = self.idempotency.get(&store_key).map_err(unavailable)? else { return Ok(()) };
        let entry: IdempotencyEntry = decode(&bytes)?;
        let mut batch = self.engine.batch();
        batch.remove(&self.expiry_index, expiry_index_key(entry.expires_at, &store_key));
        batch.remove(&self.idempotency, store_key);
        batch.commit().map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_SECS: u64 = 24 * 3600;

    fn open_store() -> (EmbeddedLimitStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        (EmbeddedLimitStore::open(&engine).unwrap(), dir)
    }

    fn stored(store: &EmbeddedLimitStore, customer_id: CustomerId, key: &str) -> bool {
        store.idempotency.get(idempotency_key(customer_id, key)).unwrap().is_some()
    }

    #[tokio::test]
    async fn the_sweep_purges_expired_keys_and_reads_nothing_else() {
        let (store, _dir) = open_store();
        let customer = CustomerId::generate();
        let (body, other) = ([1; 32], [2; 32]);
        let start = Timestamp::from_millis(1_800_000_000_000);
        let hour = |hours: i64| start.plus_millis(hours * 3_600_000);
        // Three keys used at the start, five an hour later (they expire an hour later too).
        for key in ["old-1", "old-2", "old-3"] {
            assert_eq!(
                store.begin_idempotent_at(customer, key, &body, DAY_SECS, start).unwrap(),
                IdempotencyBegin::Fresh
            );
        }
        for n in 0..5 {
            let key = format!("young-{n}");
            assert_eq!(
                store.begin_idempotent_at(customer, &key, &body, DAY_SECS, hour(1)).unwrap(),
                IdempotencyBegin::Fresh
            );
        }
        // Answered keys replay until they expire.
        store.complete_idempotent(customer, "young-0", b"202").await.unwrap();
        assert_eq!(
            store.begin_idempotent_at(customer, "old-1", &body, DAY_SECS, start).unwrap(),
            IdempotencyBegin::InFlight
        );

        // Before any TTL ran out the sweep reads nothing at all.
        assert_eq!(store.purge_expired(hour(23)).unwrap(), Purged { examined: 0, keys: 0 });

        // Just past the old keys' TTL: exactly those three are read and removed.
        let purged = store.purge_expired(hour(24)).unwrap();
        assert_eq!(purged, Purged { examined: 3, keys: 3 }, "the sweep touches only expired entries");
        for key in ["old-1", "old-2", "old-3"] {
            assert!(!stored(&store, customer, key), "{key} outlived its TTL");
        }
        for n in 0..5 {
            assert!(stored(&store, customer, &format!("young-{n}")), "young-{n} was purged before its TTL");
        }
        // A purged key may be used afresh, even with another body; an unexpired one still replays.
        assert_eq!(
            store.begin_idempotent_at(customer, "old-1", &other, DAY_SECS, hour(24)).unwrap(),
            IdempotencyBegin::Fresh
        );
        assert_eq!(
            store.begin_idempotent_at(customer, "young-0", &other, DAY_SECS, hour(24)).unwrap(),
            IdempotencyBegin::Mismatch
        );
        assert_eq!(store.purge_expired(hour(24)).unwrap(), Purged::default(), "nothing more is due");

        // The young keys go when their time comes; the key used afresh stays until its own.
        assert_eq!(store.purge_expired(hour(25)).unwrap(), Purged { examined: 5, keys: 5 });
        assert!(stored(&store, customer, "old-1"));
        assert_eq!(store.purge_expired(hour(48)).unwrap(), Purged { examined: 1, keys: 1 });
        assert!(store.idempotency.is_empty().unwrap() && store.expiry_index.is_empty().unwrap());
    }

    #[test]
    fn a_key_claimed_anew_after_expiry_survives_its_stale_index_entry() {
        let (store, _dir) = open_store();
        let customer = CustomerId::generate();
        let start = Timestamp::from_millis(1_800_000_000_000);
        store.begin_idempotent_at(customer, "k", &[1; 32], 60, start).unwrap();
        // Expired but not yet swept, the key is claimed again and lives another minute.
        let later = start.plus_millis(61_000);
        assert_eq!(store.begin_idempotent_at(customer, "k", &[2; 32], 60, later).unwrap(), IdempotencyBegin::Fresh);
        let purged = store.purge_expired(later).unwrap();
        assert_eq!(purged, Purged { examined: 1, keys: 0 }, "only the stale index entry goes");
        assert!(stored(&store, customer, "k"));
        assert_eq!(store.purge_expired(later.plus_millis(60_000)).unwrap(), Purged { examined: 1, keys: 1 });
        assert!(!stored(&store, customer, "k"));
    }

    #[tokio::test]
    async fn an_abandoned_key_takes_its_index_entry_with_it() {
        let (store, _dir) = open_store();
        let customer = CustomerId::generate();
        store.begin_idempotent(customer, "k", &[1; 32], 60).await.unwrap();
        store.abandon_idempotent(customer, "k").await.unwrap();
        assert!(store.idempotency.is_empty().unwrap() && store.expiry_index.is_empty().unwrap());
    }

    #[test]
    fn keys_written_before_the_index_existed_are_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let start = Timestamp::from_millis(1_800_000_000_000);
        let customer = CustomerId::generate();
        {
            let store = EmbeddedLimitStore::open(&engine).unwrap();
            store.begin_idempotent_at(customer, "legacy", &[1; 32], 60, start).unwrap();
            // As an earlier version left it: the key without its index entry.
            let index_keys: Vec<_> = store.expiry_index.iter().map(|entry| entry.key().unwrap()).collect();
            for key in index_keys {
                store.expiry_index.remove(key).unwrap();
            }
        }
        let store = EmbeddedLimitStore::open(&engine).unwrap();
        assert_eq!(store.purge_expired(start.plus_millis(60_000)).unwrap(), Purged { examined: 1, keys: 1 });
        assert!(!stored(&store, customer, "legacy"));
    }

    #[test]
    fn claims_answer_until_they_expire_or_are_abandoned() {
        let at = |millis| Timestamp::from_millis(millis);
        let entry = |response: Option<&[u8]>| IdempotencyEntry {
            fingerprint: [1; 32],
            response: response.map(<[u8]>::to_vec),
            claimed_at: at(0),
            expires_at: at(86_400_000),
        };
        assert_eq!(standing_claim(entry(None), &[1; 32], at(1_000)), Some(IdempotencyBegin::InFlight));
        assert_eq!(standing_claim(entry(None), &[2; 32], at(1_000)), Some(IdempotencyBegin::Mismatch));
        assert_eq!(standing_claim(entry(None), &[1; 32], at(60_000)), None, "abandoned claim");
        assert_eq!(
            standing_claim(entry(Some(b"202")), &[1; 32], at(60_000)),
            Some(IdempotencyBegin::Completed(b"202".to_vec()))
        );
        assert_eq!(standing_claim(entry(Some(b"202")), &[1; 32], at(86_400_000)), None, "expired");
    }

    #[test]
    fn windows_grant_up_to_the_limit_and_reset_each_second() {
        let (start, used, decision) = decide(0, 0, 5_000, 3, 2);
        assert_eq!((start, used, decision.granted, decision.remaining), (5, 2, 2, 1));
        let (_, used, decision) = decide(start, used, 5_999, 3, 2);
        assert_eq!((used, decision.granted, decision.remaining), (3, 1, 0));
        let (_, _, decision) = decide(start, used, 6_000, 3, 2);
        assert_eq!((decision.granted, decision.remaining), (2, 1));
    }
}
