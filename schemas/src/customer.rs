//! Customers and their API keys.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{CustomerId, KeyId};
use crate::time::Timestamp;

/// The default rate limit of a new customer, in events per second.
pub const DEFAULT_RATE_LIMIT_PER_SEC: u32 = 1_000;

/// The text every API key starts with.
pub const API_KEY_PREFIX: &str = "tk_";

/// One customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The customer's id; also the partition key of its events.
    pub customer_id: CustomerId,
    /// A human name, if given.
    pub name: Option<String>,
    /// Events per second this customer may ingest.
    pub rate_limit_per_sec: u32,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Ingest events.
    #[serde(rename = "events:write")]
    EventsWrite,
    /// Read events back.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Create, change and delete subscriptions.
    #[serde(rename = "subscriptions:write")]
    SubscriptionsWrite,
    /// Read subscriptions.
    #[serde(rename = "subscriptions:read")]
    SubscriptionsRead,
}

impl Scope {
    /// Every scope: what a new key gets unless told otherwise.
    pub const ALL: [Scope; 4] =
        [Scope::EventsWrite, Scope::EventsRead, Scope::SubscriptionsWrite, Scope::SubscriptionsRead];
}

/// An API key as stored: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key's id, shown to operators.
    pub key_id: KeyId,
    /// The owner.
    pub customer_id: CustomerId,
    /// Hex SHA-256 of the secret key.
    pub key_hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    /// Whether the key authenticates requests at `now`.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none_or(|revoked| now < revoked) && self.expires_at.is_none_or(|expires| now < expires)
    }

    /// Whether the key carries `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// A new secret API key: `tk_` and 32 random bytes in hex.
pub fn generate_api_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{API_KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a secret API key. A plain SHA-256 suffices because keys are 256 random bits:
/// there is nothing to brute-force, and a fast hash keeps authentication off the hot path's profile.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_hashed_stably() {
        let key = generate_api_key();
        assert!(key.starts_with("tk_") && key.len() == 3 + 64);
        assert_eq!(hash_api_key(&key), hash_api_key(&key));
        assert_ne!(hash_api_key(&key), hash_api_key(&generate_api_key()));
    }

    #[test]
    fn expired_or_revoked_keys_are_unusable() {
        let mut key = ApiKey {
            key_id: KeyId::generate(),
            customer_id: CustomerId::generate(),
            key_hash: String::new(),
            scopes: Scope::ALL.to_vec(),
            created_at: Timestamp::from_millis(0),
            expires_at: Some(Timestamp::from_millis(100)),
            revoked_at: None,
        };
        assert!(key.is_usable_at(Timestamp::from_millis(99)));
        assert!(!key.is_usable_at(Timestamp::from_millis(100)));
        key.expires_at = None;
        key.revoked_at = Some(Timestamp::from_millis(50));
        assert!(!key.is_usable_at(Timestamp::from_millis(60)));
    }

    #[test]
    fn scopes_use_the_contract_names() {
        assert_eq!(serde_json::to_string(&Scope::EventsWrite).unwrap(), "\"events:write\"");
    }
}
