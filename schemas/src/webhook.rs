//! Standard Webhooks signatures.
//!
//! `webhook-signature: v1,<base64 HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}">`,
//! keyed by the base64-decoded part of the secret after `whsec_`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The text every signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The secret is not `whsec_` followed by base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing secret is not whsec_ followed by base64")]
pub struct InvalidSecret;

/// The value of the `webhook-signature` header for one delivery.
pub fn sign(secret: &str, webhook_id: &str, timestamp_secs: i64, body: &[u8]) -> Result<String, InvalidSecret> {
    let mac = signature_mac(secret, webhook_id, timestamp_secs, body)?;
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Whether `header` (space-separated `v1,<sig>` entries) holds a valid signature of this delivery.
/// Compares in constant time.
pub fn verify(secret: &str, webhook_id: &str, timestamp_secs: i64, body: &[u8], header: &str) -> bool {
    header.split(' ').filter_map(|entry| entry.strip_prefix("v1,")).any(|candidate| {
        let Ok(expected) = STANDARD.decode(candidate) else { return false };
        signature_mac(secret, webhook_id, timestamp_secs, body).is_ok_and(|mac| mac.verify_slice(&expected).is_ok())
    })
}

fn signature_mac(
    secret: &str,
    webhook_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<Hmac<Sha256>, InvalidSecret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| InvalidSecret)?;
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verifies_its_own_signatures_and_nothing_else() {
        let secret = generate_secret();
        let header = sign(&secret, "evt_1", 42, b"{}").unwrap();
        assert!(verify(&secret, "evt_1", 42, b"{}", &header));
        assert!(verify(&secret, "evt_1", 42, b"{}", &format!("v1,bm9wZQ== {header}")));
        assert!(!verify(&secret, "evt_1", 43, b"{}", &header));
        assert!(!verify(&secret, "evt_1", 42, b"{ }", &header));
        assert!(!verify(&generate_secret(), "evt_1", 42, b"{}", &header));
    }

    #[test]
    fn refuses_malformed_secrets() {
        assert_eq!(sign("nope", "a", 1, b""), Err(InvalidSecret));
        assert_eq!(sign("whsec_!!!", "a", 1, b""), Err(InvalidSecret));
    }
}
