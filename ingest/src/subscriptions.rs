//! `POST /v1/subscriptions`, `GET /v1/subscriptions` and `GET /v1/subscriptions/{id}`.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use triggers_schemas::webhook::generate_secret;
use triggers_schemas::{FieldError, Problem, Scope, Subscription, SubscriptionStatus, Timestamp, WorkflowId};
use triggers_selector::Selector;
use triggers_stores::StoreError;

use crate::AppState;
use crate::auth;
use crate::http_util::{Body, content_type_is, discard_body, json, parse_json, problem, query_pairs, read_body};

const MAX_SUBSCRIPTION_BYTES: usize = 64 * 1024;
const MAX_URL_CHARS: usize = 2048;

/// `POST /v1/subscriptions`.
pub(crate) async fn create(state: &AppState, request: http::Request<Incoming>) -> http::Response<Body> {
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

/// Whether `host` (as written in a URL) names a loopback, private, link-local or metadata address.
///
/// Only literal addresses and `localhost` are recognised here; names that resolve to such
/// addresses can only be caught when the delivery connects. Every spelling a resolver accepts for a
/// literal address counts: a trailing dot, IPv4 inside IPv6 (`::ffff:127.0.0.1`) and the legacy
/// IPv4 forms (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) all reach the same address.
fn is_private_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>().ok().or_else(|| legacy_ipv4(host).map(IpAddr::V4)) {
        Some(ip) => is_private_ip(ip),
        None => false,
    }
}

fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [first, second, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                // 0.0.0.0/8 reaches the local host on Linux.
                || first == 0
                // 100.64.0.0/10, shared address space; some clouds serve metadata there.
                || (first == 100 && (64..128).contains(&second))
        }
        IpAddr::V6(ip) => {
            // IPv4-mapped and IPv4-compatible addresses reach the IPv4 address inside.
            if let Some(inner) = ip.to_ipv4() {
                return is_private_ip(IpAddr::V4(inner));
            }
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The IPv4 address `text` names in the forms `inet_aton` (and so most resolvers) still accept:
/// one to four parts, each decimal, octal (leading `0`) or hex (`0x`), the last filling the bytes
/// that remain.
fn legacy_ipv4(text: &str) -> Option<Ipv4Addr> {
    let parts = text.split('.').map(legacy_part).collect::<Option<Vec<u32>>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|part| *part > 255) {
        return None;
    }
    let remaining_bits = 32 - 8 * leading.len() as u32;
    if remaining_bits < 32 && *last >= 1 << remaining_bits {
        return None;
    }
    let address = leading.iter().enumerate().fold(*last, |address, (i, part)| address | part << (24 - 8 * i as u32));
    Some(Ipv4Addr::from(address))
}

fn legacy_part(part: &str) -> Option<u32> {
    let (digits, radix) = match part.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    // from_str_radix would take a sign; an address part has none.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// `GET /v1/subscriptions/{id}`.
pub(crate) async fn get(state: &AppState, headers: &HeaderMap, id: &str) -> http::Response<Body> {
    let found = async {
        let caller = auth::customer(state, headers).await?;
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

/// `GET /v1/subscriptions?limit=&cursor=`.
pub(crate) async fn list(state: &AppState, request: &http::Request<Incoming>) -> http::Response<Body> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ipv4_forms_name_the_address_a_resolver_would_reach() {
        let loopback = Some(Ipv4Addr::LOCALHOST);
        for text in ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "127.0.1", "127.0.0.1"] {
            assert_eq!(legacy_ipv4(text), loopback, "{text}");
        }
        for text in ["", "example", "1..2", "256.0.0.1", "1.2.3.4.5", "08.0.0.1", "0x", "+1", "1.2.3.256", "1.16777216"]
        {
            assert_eq!(legacy_ipv4(text), None, "{text}");
        }
    }

    #[test]
    fn private_hosts_are_recognised_in_every_literal_spelling() {
        for host in
            ["localhost.", "[::ffff:7f00:1]", "[::ffff:169.254.169.254]", "100.64.0.1", "0.1.2.3", "017700000001"]
        {
            assert!(is_private_host(host), "{host}");
        }
        for host in ["example.com", "8.8.8.8", "[2606:4700:4700::1111]", "100.128.0.1", "1e100.net"] {
            assert!(!is_private_host(host), "{host}");
        }
    }
}
