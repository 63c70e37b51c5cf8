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
pub struct EmbeddedLimitStore {
    windows: DashMap<CustomerId, (i64, u32)>,
    idempotency: Keyspace,
    idempotency_lock: Mutex<()>,
}

/// How long a claimed key without an answer counts as in flight. A request takes far less; a claim
/// older than this belongs to a process that died mid-request, and may be taken over.
const IN_FLIGHT_MILLIS: i64 = 60_000;

#[derive(Serialize, Deserialize)]
struct IdempotencyEntry {
    fingerprint: [u8; 32],
    response: Option<Vec<u8>>,
    #[serde(default)]
    claimed_at: Timestamp,
    expires_at: Timestamp,
}

impl EmbeddedLimitStore {
    /// Opens the store in `engine`.
    pub fn open(engine: &Engine) -> Result<Self, StoreError> {
        Ok(Self {
            windows: DashMap::new(),
            idempotency: engine.keyspace("idempotency_keys").map_err(unavailable)?,
            idempotency_lock: Mutex::new(()),
        })
    }
}

fn idempotency_key(customer_id: CustomerId, key: &str) -> Vec<u8> {
    let mut bytes = customer_id.0.as_bytes().to_vec();
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

/// Fixed one-second windows: the decision for `events` more in the window starting at `window`.
pub fn decide(window_start: i64, used: u32, now_millis: i64, limit: u32, events: u32) -> (i64, u32, RateDecision) {
    let current = now_millis.div_euclid(1000);
    let used = if current == window_start { used } else { 0 };
    let granted = events.min(limit.saturating_sub(used));
    let used = used + granted;
    let reset_secs = 1;
    (current, used, RateDecision { granted, limit, remaining: limit - used, reset_secs })
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
        let store_key = idempotency_key(customer_id, key);
        let now = Timestamp::now();
        let _guard = self.idempotency_lock.lock().expect("idempotency lock");
        if let Some(bytes) = self.idempotency.get(&store_key).map_err(unavailable)?
            && let Some(standing) = standing_claim(decode(&bytes)?, fingerprint, now)
        {
            return Ok(standing);
        }
        let entry = IdempotencyEntry {
            fingerprint: *fingerprint,
            response: None,
            claimed_at: now,
            expires_at: now.plus_millis(ttl_secs as i64 * 1000),
        };
        self.idempotency.insert(store_key, encode(&entry)?).map_err(unavailable)?;
        Ok(IdempotencyBegin::Fresh)
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
        self.idempotency.insert(store_key, encode(&entry)?).map_err(unavailable)
    }

    async fn abandon_idempotent(&self, customer_id: CustomerId, key: &str) -> Result<(), StoreError> {
        let _guard = self.idempotency_lock.lock().expect("idempotency lock");
        self.idempotency.remove(idempotency_key(customer_id, key)).map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
