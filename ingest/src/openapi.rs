//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the code. Its paths come from
//! the route table (each route's handler carries `#[utoipa::path]`), so a route cannot be served
//! without being documented; the shapes below are the bodies those annotations name, and join the
//! document's components through them.
//!
//! The shapes here describe the JSON as the contract gives it. They are documentation only: the
//! handlers validate bodies field by field, so that every bad field is reported with its pointer.

#![allow(dead_code)] // Fields are read by the derives only.

use std::sync::LazyLock;

use bytes::Bytes;
use serde::Serialize;
use utoipa::openapi::path::{PathItem, PathsBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes;

/// The document with every route, built once.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut document = Base::openapi();
    let mut paths = PathsBuilder::new();
    let components = document.components.get_or_insert_with(Default::default);
    for route in routes::table() {
        let doc = (route.doc)();
        for method in doc.methods {
            paths = paths.path(doc.path.clone(), PathItem::new(method, doc.operation.clone()));
        }
        components.schemas.extend(doc.schemas);
    }
    document.paths = paths.build();
    document
}

/// The document as served.
pub(crate) static DOCUMENT: LazyLock<Bytes> =
    LazyLock::new(|| Bytes::from(serde_json::to_vec(&document()).expect("the OpenAPI document serialises")));

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Triggers",
        version = "1.0.0",
        description = "Event ingestion and webhook triggers. Public routes are served on the public listener \
                       (default 127.0.0.1:8080) with an API key; routes tagged `admin` on the admin listener \
                       (default 127.0.0.1:8081) with the admin token. Every error is an RFC 9457 \
                       application/problem+json document, and every response carries x-request-id."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "events", description = "Ingesting and reading events"),
        (name = "subscriptions", description = "Which workflow endpoints receive which events"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "admin", description = "Operators: customers and API keys (admin listener, admin token)"),
    )
)]
struct Base;

/// The two bearer schemes: API keys on the public listener, the admin token on the admin one.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
            )
        };
        components.add_security_scheme("apiKey", bearer("An API key of the customer: `tk_…`"));
        components.add_security_scheme("adminToken", bearer("The admin token (TRIGGERS_ADMIN_TOKEN)"));
    }
}

/// An RFC 9457 problem document: the body of every error.
#[derive(Serialize, ToSchema)]
pub(crate) struct Problem {
    /// A stable URN per kind of error: `urn:triggers:problem:<kind>`.
    #[serde(rename = "type")]
    kind: String,
    /// A short summary of the kind of error.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong with this request and what to fix.
    detail: String,
    /// For validation errors: every offending field.
    errors: Option<Vec<FieldError>>,
}

/// One offending field of a `422`.
#[derive(Serialize, ToSchema)]
pub(crate) struct FieldError {
    /// A JSON pointer to the field (`/data/…`); empty for the whole body.
    pointer: String,
    /// What is wrong with it.
    detail: String,
}

/// An event as a customer sends it.
#[derive(Serialize, ToSchema)]
pub(crate) struct Event {
    /// 1 to 256 characters of `[A-Za-z0-9._:/-]`.
    #[schema(pattern = "^[A-Za-z0-9._:/-]{1,256}$")]
    #[serde(rename = "type")]
    kind: String,
    /// Any JSON value.
    data: serde_json::Value,
    /// Where it comes from; at most 256 characters.
    #[schema(max_length = 256)]
    source: Option<String>,
    /// The data subject, for GDPR requests; at most 256 characters.
    #[schema(max_length = 256)]
    subject: Option<String>,
    /// When it happened (RFC 3339).
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    /// Free-form attributes, visible to selectors.
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A CloudEvents 1.0 event in structured mode. `time` becomes `occurred_at`, every other attribute
/// goes into `metadata`, and `id` is the idempotency key (an `Idempotency-Key` header wins over it).
#[derive(Serialize, ToSchema)]
pub(crate) struct CloudEvent {
    /// Must be `1.0`.
    specversion: String,
    /// 1 to 255 printable ASCII characters.
    #[schema(min_length = 1, max_length = 255)]
    id: String,
    /// As an event's type.
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9._:/-]{1,256}$")]
    kind: String,
    /// Required.
    source: String,
    /// The data subject.
    subject: Option<String>,
    /// When it happened (RFC 3339).
    #[schema(format = DateTime)]
    time: Option<String>,
    /// Any JSON value.
    data: Option<serde_json::Value>,
}

/// The answer to an accepted event.
#[derive(Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// `evt_…`, time-ordered.
    event_id: String,
    /// `accepted`.
    status: String,
    /// When the edge received it.
    #[schema(format = DateTime)]
    received_at: String,
}

/// An event as stored, with the state of its deliveries.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventView {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    source: Option<String>,
    subject: Option<String>,
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    #[schema(format = DateTime)]
    received_at: String,
    /// `pending`, `delivered`, `failed` or `dead_lettered`: the roll-up over its deliveries.
    status: String,
    delivery_attempts: u32,
    #[schema(format = DateTime)]
    last_delivery_at: Option<String>,
    data: serde_json::Value,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    deliveries: Vec<Delivery>,
}

/// One matching subscription's delivery of an event.
#[derive(Serialize, ToSchema)]
pub(crate) struct Delivery {
    #[schema(format = Uuid)]
    workflow_id: String,
    status: String,
    attempts: u32,
    #[schema(format = DateTime)]
    last_attempt_at: Option<String>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
}

/// A subscription as a customer creates it.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewSubscription {
    /// Chosen by the customer, or generated.
    #[schema(format = Uuid)]
    workflow_id: Option<String>,
    /// An EventBridge-style pattern over `type`, `source`, `subject`, `data` and `metadata`.
    event_selector: serde_json::Map<String, serde_json::Value>,
    /// `https` (plain `http` and private addresses only with `--allow-private-webhooks`).
    webhook_url: String,
    /// `active` (default) or `disabled`.
    status: Option<String>,
}

/// A stored subscription.
#[derive(Serialize, ToSchema)]
pub(crate) struct Subscription {
    #[schema(format = Uuid)]
    workflow_id: String,
    #[schema(format = Uuid)]
    customer_id: String,
    event_selector: serde_json::Map<String, serde_json::Value>,
    webhook_url: String,
    status: String,
    /// `whsec_…`: the key of the webhooks' Standard Webhooks signatures.
    signing_secret: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// One page of subscriptions.
#[derive(Serialize, ToSchema)]
pub(crate) struct SubscriptionPage {
    subscriptions: Vec<Subscription>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// A customer as an operator creates it.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewCustomer {
    #[schema(format = Uuid)]
    customer_id: Option<String>,
    #[schema(max_length = 256)]
    name: Option<String>,
    /// Events per second (default 1000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    rate_limit_per_sec: Option<u32>,
}

/// A stored customer.
#[derive(Serialize, ToSchema)]
pub(crate) struct Customer {
    #[schema(format = Uuid)]
    customer_id: String,
    name: Option<String>,
    rate_limit_per_sec: u32,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A new API key's options.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewApiKey {
    /// Any of `events:write`, `events:read`, `subscriptions:write`, `subscriptions:read` (default: all).
    scopes: Option<Vec<String>>,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// A new API key: the key itself is shown this once and stored only as a hash.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    /// `key_…`
    key_id: String,
    /// `tk_…`
    api_key: String,
    scopes: Vec<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Every `$ref` in `value`.
    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields {
                    match (name.as_str(), field) {
                        ("$ref", Value::String(target)) => found.push(target.clone()),
                        _ => references(field, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| references(item, found)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let document = serde_json::to_value(document()).unwrap();
        assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", document["openapi"]);
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("external reference {target}"));
            assert!(document.pointer(pointer).is_some(), "{target} points at nothing");
        }
        for scheme in ["apiKey", "adminToken"] {
            assert!(document["components"]["securitySchemes"][scheme].is_object(), "no {scheme} scheme");
        }
    }
}
