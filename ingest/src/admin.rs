//! The admin API: customers and API keys.

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;
use triggers_schemas::customer::{DEFAULT_RATE_LIMIT_PER_SEC, generate_api_key, hash_api_key};
use triggers_schemas::{ApiKey, Customer, CustomerId, FieldError, KeyId, Problem, Scope, Timestamp};
use triggers_stores::StoreError;

use crate::auth;
use crate::http_util::{Body, RequestBody, discard_body, json, parse_json, problem, read_body};
use crate::routes::PathParams;
use crate::{AppState, openapi};

const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024;

async fn json_object(body: RequestBody) -> Result<serde_json::Map<String, Value>, Problem> {
    let body = read_body(body, MAX_ADMIN_BODY_BYTES).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match parse_json(&body)? {
        Value::Object(fields) => Ok(fields),
        _ => Err(Problem::validation(vec![FieldError::new("", "the body must be a JSON object")])),
    }
}

/// Creates a customer.
#[utoipa::path(post, path = "/admin/v1/customers", tag = "admin", summary = "Create a customer",
    security(("adminToken" = [])),
    request_body(content = openapi::NewCustomer, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = openapi::Customer),
        (status = 400, description = "Malformed JSON", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad admin token", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The customer id is taken", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid field", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_customer(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    _: PathParams,
) -> http::Response<Body> {
    let state = &*state;
    let (parts, body) = request.into_parts();
    let created = async {
        if let Err(refused) = auth::admin(state, &parts.headers) {
            discard_body(body).await;
            return Err(refused);
        }
        let mut fields = json_object(body).await?;
        let mut errors = Vec::new();
        let customer_id = match fields.remove("customer_id") {
            None | Some(Value::Null) => CustomerId::generate(),
            Some(Value::String(text)) => text.parse().unwrap_or_else(|_| {
                errors.push(FieldError::new("/customer_id", "must be a UUID"));
                CustomerId::generate()
            }),
            Some(_) => {
                errors.push(FieldError::new("/customer_id", "must be a UUID string"));
                CustomerId::generate()
            }
        };
        let name = match fields.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) if name.chars().count() <= 256 => Some(name),
            Some(_) => {
                errors.push(FieldError::new("/name", "must be a string of at most 256 characters"));
                None
            }
        };
        let rate_limit_per_sec = match fields.remove("rate_limit_per_sec") {
            None | Some(Value::Null) => DEFAULT_RATE_LIMIT_PER_SEC,
            Some(value) => {
                value.as_u64().filter(|n| (1..=1_000_000).contains(n)).map(|n| n as u32).unwrap_or_else(|| {
                    errors.push(FieldError::new("/rate_limit_per_sec", "must be a whole number from 1 to 1000000"));
                    DEFAULT_RATE_LIMIT_PER_SEC
                })
            }
        };
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let customer = Customer { customer_id, name, rate_limit_per_sec, created_at: Timestamp::now() };
        match state.ports.customers.create_customer(&customer).await {
            Ok(()) => Ok(customer),
            Err(StoreError::AlreadyExists(_)) => {
                Err(Problem::conflict(format!("customer {customer_id} already exists")))
            }
            Err(_) => Err(Problem::unavailable("the customer store is unavailable; retry shortly")),
        }
    };
    match created.await {
        Ok(customer) => json(StatusCode::CREATED, &customer),
        Err(refused) => problem(&refused),
    }
}

/// Creates an API key for a customer; the key is shown once and stored only as a hash.
#[utoipa::path(post, path = "/admin/v1/customers/{customer_id}/api-keys", tag = "admin", summary = "Create an API key",
    security(("adminToken" = [])),
    params(("customer_id" = String, Path, description = "The customer (a UUID)")),
    request_body(content = openapi::NewApiKey, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `api_key` is shown this once", body = openapi::CreatedApiKey),
        (status = 401, description = "Bad admin token", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid scopes or expiry", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_api_key(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    params: PathParams,
) -> http::Response<Body> {
    let (state, id) = (&*state, params.get("customer_id"));
    let (parts, body) = request.into_parts();
    let created = async {
        let missing = || Problem::not_found(format!("no customer {id}"));
        let checked = auth::admin(state, &parts.headers).and_then(|()| id.parse::<CustomerId>().map_err(|_| missing()));
        let customer_id = match checked {
            Ok(customer_id) => customer_id,
            Err(refused) => {
                discard_body(body).await;
                return Err(refused);
            }
        };
        let mut fields = json_object(body).await?;
        let mut errors = Vec::new();
        // An empty list is refused: a key that may do nothing is a mistake, not a request.
        let scopes: Vec<Scope> = match fields.remove("scopes") {
            None | Some(Value::Null) => Scope::ALL.to_vec(),
            Some(value) => match serde_json::from_value::<Vec<Scope>>(value) {
                Ok(scopes) if !scopes.is_empty() => scopes,
                _ => {
                    let detail = "must be a non-empty list of events:write, events:read, subscriptions:write, \
                                  subscriptions:read";
                    errors.push(FieldError::new("/scopes", detail));
                    Vec::new()
                }
            },
        };
        let expires_at = match fields.remove("expires_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Timestamp::parse_rfc3339(&text).or_else(|| {
                errors.push(FieldError::new("/expires_at", "must be an RFC 3339 timestamp"));
                None
            }),
            Some(_) => {
                errors.push(FieldError::new("/expires_at", "must be an RFC 3339 timestamp string"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let unavailable = |_| Problem::unavailable("the customer store is unavailable; retry shortly");
        state.ports.customers.get_customer(customer_id).await.map_err(unavailable)?.ok_or_else(missing)?;
        let secret = generate_api_key();
        let key = ApiKey {
            key_id: KeyId::generate(),
            customer_id,
            key_hash: hash_api_key(&secret),
            scopes,
            created_at: Timestamp::now(),
            expires_at,
            revoked_at: None,
        };
        state.ports.customers.create_api_key(&key).await.map_err(unavailable)?;
        Ok(serde_json::json!({
            "key_id": key.key_id,
            "api_key": secret,
            "scopes": key.scopes,
            "created_at": key.created_at,
            "expires_at": key.expires_at,
        }))
    };
    match created.await {
        Ok(answer) => json(StatusCode::CREATED, &answer),
        Err(refused) => problem(&refused),
    }
}
