//! Authentication: API keys on the public listener, the admin token on the admin one.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use triggers_schemas::customer::hash_api_key;
use triggers_schemas::{ApiKey, Customer, Problem, Scope, Timestamp};

use crate::AppState;

/// The customer behind a request, and what its key may do.
pub(crate) struct Caller {
    pub(crate) customer: Customer,
    pub(crate) key: ApiKey,
}

impl Caller {
    /// A 403 unless the key carries `scope`.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.key.allows(scope) {
            Ok(())
        } else {
            let name = serde_json::to_value(scope).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            Err(Problem::forbidden(format!("this API key lacks the {name} scope")))
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The caller of a public request: a 401 for a missing, malformed, unknown, revoked or expired key.
pub(crate) async fn customer(state: &AppState, headers: &HeaderMap) -> Result<Caller, Problem> {
    let unauthorized = || Problem::unauthorized("send a valid API key as `Authorization: Bearer tk_…`");
    let token = bearer(headers).ok_or_else(unauthorized)?;
    if !token.starts_with(triggers_schemas::customer::API_KEY_PREFIX) || token.len() > 128 {
        return Err(unauthorized());
    }
    let lookup = state.ports.customers.find_api_key(&hash_api_key(token)).await;
    let key = lookup
        .map_err(|_| Problem::unavailable("the key store is unavailable; retry shortly"))?
        .ok_or_else(unauthorized)?;
    if !key.is_usable_at(Timestamp::now()) {
        return Err(unauthorized());
    }
    let customer = state.ports.customers.get_customer(key.customer_id).await;
    let customer = customer
        .map_err(|_| Problem::unavailable("the customer store is unavailable; retry shortly"))?
        .ok_or_else(unauthorized)?;
    Ok(Caller { customer, key })
}

/// A 401 unless the request carries the admin token. Compared through SHA-256 digests so that the
/// comparison takes the same time wherever the token differs. An empty configured token admits
/// nobody: it would otherwise match a request that sends no token at all.
pub(crate) fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    let given = bearer(headers).unwrap_or("");
    let expected = &state.config.admin_token;
    if !expected.is_empty() && Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::unauthorized("send the admin token as `Authorization: Bearer <token>`"))
    }
}
