//! Rate limits and idempotency keys.

use async_trait::async_trait;
use triggers_schemas::CustomerId;

use crate::StoreError;

/// The answer of the rate limiter for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// How many of the requested events were admitted (the first ones).
    pub granted: u32,
    /// The limit per window.
    pub limit: u32,
    /// What is left in the current window after this request.
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u32,
}

/// Where an idempotent request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: go ahead, then complete or abandon it.
    Fresh,
    /// The first request with this key is still running.
    InFlight,
    /// The key was used with a different request body.
    Mismatch,
    /// The key was used with this body and answered: this is the answer to replay.
    Completed(Vec<u8>),
}

/// Rate-limit windows and idempotency keys: short-lived state shared by every ingest node.
#[async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// Counts `events` against the customer's per-second limit and says how many are admitted.
    /// With `events` 0 it counts nothing and only reports where the current window stands.
    async fn acquire(
        &self,
        customer_id: CustomerId,
        limit_per_sec: u32,
        events: u32,
    ) -> Result<RateDecision, StoreError>;

    /// Claims an idempotency key for a request whose body hashes to `fingerprint`; keys live for
    /// `ttl_secs` after their first use. A claim left without an answer for a minute (its process
    /// died mid-request) may be taken over, so a crash does not lock a key for the whole TTL.
    async fn begin_idempotent(
        &self,
        customer_id: CustomerId,
        key: &str,
        fingerprint: &[u8; 32],
        ttl_secs: u64,
    ) -> Result<IdempotencyBegin, StoreError>;

    /// Records the response to replay for a claimed key.
    async fn complete_idempotent(&self, customer_id: CustomerId, key: &str, response: &[u8]) -> Result<(), StoreError>;

    /// Releases a claimed key whose request failed, so that a retry may run.
    async fn abandon_idempotent(&self, customer_id: CustomerId, key: &str) -> Result<(), StoreError>;
}
