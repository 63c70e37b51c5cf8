//! Which handler answers which request.

use std::sync::Arc;

use http::header::ALLOW;
use http::{HeaderValue, Method};
use triggers_schemas::Problem;

use crate::http_util::{Body, RequestBody, discard_body, problem};
use crate::{AppState, admin, events, ops, subscriptions};

/// The two listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    Public,
    Admin,
}

pub(crate) async fn route(
    state: &Arc<AppState>,
    which: Listener,
    request: http::Request<RequestBody>,
) -> http::Response<Body> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let method = request.method().clone();
    let outcome = match (which, segments.as_slice()) {
        (Listener::Public, ["healthz"]) => only(&method, &[Method::GET], ops::healthz),
        (Listener::Public, ["readyz"]) if method == Method::GET => Ok(ops::readyz(state).await),
        (Listener::Public, ["metrics"]) => only(&method, &[Method::GET], || ops::metrics(state)),
        (Listener::Public, ["openapi.json"]) => only(&method, &[Method::GET], ops::openapi),
        (Listener::Public, ["v1", "events"]) if method == Method::POST => Ok(events::ingest(state, request).await),
        (Listener::Public, ["v1", "events", id]) if method == Method::GET => {
            Ok(events::get(state, request.headers(), id).await)
        }
        (Listener::Public, ["v1", "subscriptions"]) if method == Method::POST => {
            Ok(subscriptions::create(state, request).await)
        }
        (Listener::Public, ["v1", "subscriptions"]) if method == Method::GET => {
            Ok(subscriptions::list(state, &request).await)
        }
        (Listener::Public, ["v1", "subscriptions", id]) if method == Method::GET => {
            Ok(subscriptions::get(state, request.headers(), id).await)
        }
        (Listener::Admin, ["admin", "v1", "customers"]) if method == Method::POST => {
            Ok(admin::create_customer(state, request).await)
        }
        (Listener::Admin, ["admin", "v1", "customers", id, "api-keys"]) if method == Method::POST => {
            Ok(admin::create_api_key(state, request, id).await)
        }
        (
            Listener::Public,
            ["readyz"] | ["v1", "events"] | ["v1", "events", _] | ["v1", "subscriptions"] | ["v1", "subscriptions", _],
        )
        | (Listener::Admin, ["admin", "v1", "customers"] | ["admin", "v1", "customers", _, "api-keys"]) => {
            // Unwanted, but read, so that the refusal reaches a client still sending it.
            discard_body(request.into_body()).await;
            Err(allowed_methods(which, &segments))
        }
        _ => {
            discard_body(request.into_body()).await;
            Ok(problem(&Problem::not_found(format!("no route {path}"))))
        }
    };
    outcome.unwrap_or_else(|allowed| {
        let mut response =
            problem(&Problem::method_not_allowed(format!("{method} is not allowed on {path}; use {allowed}")));
        if let Ok(value) = HeaderValue::from_str(&allowed) {
            response.headers_mut().insert(ALLOW, value);
        }
        response
    })
}

fn only(
    method: &Method,
    allowed: &[Method],
    handler: impl FnOnce() -> http::Response<Body>,
) -> Result<http::Response<Body>, String> {
    if allowed.contains(method) {
        Ok(handler())
    } else {
        Err(allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", "))
    }
}

fn allowed_methods(which: Listener, segments: &[&str]) -> String {
    match (which, segments) {
        (Listener::Public, ["v1", "events"]) => "POST",
        (Listener::Public, ["v1", "subscriptions"]) => "GET, POST",
        (Listener::Admin, _) => "POST",
        _ => "GET",
    }
    .to_owned()
}
