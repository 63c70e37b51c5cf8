//! `POST /v1/subscriptions`, `GET /v1/subscriptions` and `GET /v1/subscriptions/{id}`.

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;
use triggers_schemas::address::is_private_host;
use triggers_schemas::webhook::generate_secret;
use triggers_schemas::{FieldError, Problem, Scope, Subscription, SubscriptionStatus, Timestamp, WorkflowId};
use triggers_selector::Selector;
use triggers_stores::StoreError;

use crate::auth;
use crate::http_util::{
    Body, RequestBody, content_type_is, discard_body, json, parse_json, problem, query_pairs, read_body,
};
use crate::routes::PathParams;
use crate::{AppState, openapi};

const MAX_SUBSCRIPTION_BYTES: usize = 64 * 1024;
const MAX_URL_CHARS: usize = 2048;

/// Subscribes a workflow endpoint to the caller's events that match a selector.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", summary = "Create a subscription",
    security(("apiKey" = [])),
    request_body(content = openapi::NewSubscription, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the answer holds the signing secret", body = openapi::Subscription),
        (status = 400, description = "Malformed JSON", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad API key", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks subscriptions:write", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workflow id already has a subscription", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid selector, URL or field, named by its pointer", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn create(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    _: PathParams,
) -> http::Response<Body> {
    let state = &*state;
    let (parts, body) = request.into_parts();
    let created = async {
        let checked = async {
            let caller = auth::customer(state, &parts.headers).await?;
            caller.require(Scope::SubscriptionsWrite)?;
            if !content_type_is(&parts.headers, "application/json") {
                return Err(Problem::unsupported_media_type("send subscriptions as Content-Type: application/json"));
            }
            Ok(caller)
        };
        let caller = match checked.await {
            Ok(caller) => caller,
            Err(refused) => {
                discard_body(body).await;
                return Err(refused);
            }
        };
        let body = read_body(body, MAX_SUBSCRIPTION_BYTES).await?;
        let now = Timestamp::now();
        let draft = parse_subscription(state, parse_json(&body)?).map_err(Problem::validation)?;
        let subscription = Subscription {
            workflow_id: draft.workflow_id.unwrap_or_else(WorkflowId::generate),
            customer_id: caller.customer.customer_id,
            event_selector: draft.event_selector,
            webhook_url: draft.webhook_url,
            status: draft.status,
            signing_secret: generate_secret(),
            created_at: now,
            updated_at: now,
        };
        match state.ports.subscriptions.create(&subscription).await {
            Ok(()) => Ok(subscription),
            Err(StoreError::AlreadyExists(_)) => {
                Err(Problem::conflict(format!("workflow {} already has a subscription", subscription.workflow_id)))
            }
            Err(_) => Err(Problem::unavailable("the subscription store is unavailable; retry shortly")),
        }
    };
    match created.await {
        Ok(subscription) => json(StatusCode::CREATED, &subscription),
        Err(refused) => problem(&refused),
    }
}

struct Draft {
    workflow_id: Option<WorkflowId>,
    event_selector: Value,
    webhook_url: String,
    status: SubscriptionStatus,
}

fn parse_subscription(state: &AppState, body: Value) -> Result<Draft, Vec<FieldError>> {
    let Value::Object(mut fields) = body else {
        return Err(vec![FieldError::new("", "a subscription must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let workflow_id = match fields.remove("workflow_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match text.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new("/workflow_id", "must be a UUID"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("/workflow_id", "must be a UUID string"));
            None
        }
    };
    // An explicit `null` is validated like any other value (and refused): stored, it would be a
    // subscription the consumer can never match.
    let event_selector = match fields.remove("event_selector") {
        Some(selector) => {
            if let Err(selector_errors) = Selector::parse(&selector, "/event_selector") {
                errors.extend(selector_errors);
            }
            selector
        }
        None => {
            errors.push(FieldError::new("/event_selector", "is required"));
            Value::Null
        }
    };
    let webhook_url = match fields.remove("webhook_url") {
        Some(Value::String(url)) => {
            if let Err(detail) = check_url(state, &url) {
                errors.push(FieldError::new("/webhook_url", detail));
            }
            url
        }
        Some(_) => {
            errors.push(FieldError::new("/webhook_url", "must be a string"));
            String::new()
        }
        None => {
            errors.push(FieldError::new("/webhook_url", "is required"));
            String::new()
        }
    };
    let status = match fields.remove("status") {
        None | Some(Value::Null) => SubscriptionStatus::Active,
        Some(value) => serde_json::from_value(value).unwrap_or_else(|_| {
            errors.push(FieldError::new("/status", "must be \"active\" or \"disabled\""));
            SubscriptionStatus::Active
        }),
    };
    if errors.is_empty() { Ok(Draft { workflow_id, event_selector, webhook_url, status }) } else { Err(errors) }
}

/// Why a webhook URL is refused, if it is.
fn check_url(state: &AppState, url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let uri: http::Uri = url.parse().map_err(|_| "must be an absolute URL".to_owned())?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| "must be an absolute URL with a host".to_owned())?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if state.config.allow_http_webhooks => {}
        Some("http") => return Err("must use https".into()),
        _ => return Err("must be an http(s) URL".into()),
    }
    if !state.config.allow_private_webhooks && is_private_host(host) {
        return Err("must not point at a loopback, private, link-local or metadata address".into());
    }
    Ok(())
}

/// One subscription of the caller's; another customer's is a `404` like a missing one.
#[utoipa::path(get, path = "/v1/subscriptions/{workflow_id}", tag = "subscriptions", summary = "Read a subscription",
    security(("apiKey" = [])),
    params(("workflow_id" = String, Path, description = "The workflow id (a UUID)")),
    responses(
        (status = 200, description = "The subscription", body = openapi::Subscription),
        (status = 401, description = "Bad API key", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks subscriptions:read", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription of this customer", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn get(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    params: PathParams,
) -> http::Response<Body> {
    let (state, id) = (&*state, params.get("workflow_id"));
    let found = async {
        let caller = auth::customer(state, request.headers()).await?;
        caller.require(Scope::SubscriptionsRead)?;
        let missing = || Problem::not_found(format!("no subscription {id}"));
        let workflow_id: WorkflowId = id.parse().map_err(|_| missing())?;
        let stored = state.ports.subscriptions.get(caller.customer.customer_id, workflow_id).await;
        stored
            .map_err(|_| Problem::unavailable("the subscription store is unavailable; retry shortly"))?
            .ok_or_else(missing)
    };
    match found.await {
        Ok(subscription) => json(StatusCode::OK, &subscription),
        Err(refused) => problem(&refused),
    }
}

/// The caller's subscriptions in workflow id order, a page at a time.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", summary = "List subscriptions",
    security(("apiKey" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "One page", body = openapi::SubscriptionPage),
        (status = 401, description = "Bad API key", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks subscriptions:read", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid limit or cursor", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn list(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    _: PathParams,
) -> http::Response<Body> {
    let state = &*state;
    let listed = async {
        let caller = auth::customer(state, request.headers()).await?;
        caller.require(Scope::SubscriptionsRead)?;
        let mut limit = 100;
        let mut cursor = None;
        for (key, value) in query_pairs(request.uri()) {
            match key.as_str() {
                "limit" => {
                    limit = value.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                        Problem::validation(vec![FieldError::new("/limit", "must be a whole number from 1 to 1000")])
                    })?;
                }
                "cursor" => {
                    cursor = Some(value.parse::<WorkflowId>().map_err(|_| {
                        Problem::validation(vec![FieldError::new("/cursor", "is not a cursor this API returned")])
                    })?);
                }
                _ => {}
            }
        }
        let page = state.ports.subscriptions.list(caller.customer.customer_id, cursor, limit).await;
        let page = page.map_err(|_| Problem::unavailable("the subscription store is unavailable; retry shortly"))?;
        let next_cursor = (page.len() == limit).then(|| page.last().map(|s| s.workflow_id.to_string())).flatten();
        Ok(serde_json::json!({"subscriptions": page, "next_cursor": next_cursor}))
    };
    match listed.await {
        Ok(page) => json(StatusCode::OK, &page),
        Err(refused) => problem(&refused),
    }
}
