//! Contract tests of the admin API (`/work/shared/contract/API.md`): customers and API keys, the
//! admin token, and the separation of the two listeners. Every refusal must be an RFC 9457 problem,
//! never a 5xx, and must write nothing.

mod common;

use common::{Reply, TestServer, assert_alive, problem, validation};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use triggers::settings::RunOptions;

// ----------------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------------

/// An admin request with the admin token and a raw body.
async fn admin_body(server: &TestServer, path: &str, body: impl Into<bytes::Bytes>) -> Reply {
    let auth = format!("Bearer {}", server.admin_token);
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    server.send_admin(Method::POST, path, &headers, body).await
}

/// Creates a customer from `body`; returns its id.
async fn create_customer(server: &TestServer, body: Value) -> String {
    let reply = server.admin_call(Method::POST, "/admin/v1/customers", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.json()["customer_id"].as_str().unwrap().to_owned()
}

fn keys_path(customer_id: &str) -> String {
    format!("/admin/v1/customers/{customer_id}/api-keys")
}

/// Creates an API key from `body`; returns the whole answer.
async fn create_key(server: &TestServer, customer_id: &str, body: Value) -> Value {
    let reply = server.admin_call(Method::POST, &keys_path(customer_id), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.json()
}

fn is_rfc3339_millis_utc(text: &str) -> bool {
    // 2026-11-26T15:04:05.123Z
    let bytes = text.as_bytes();
    bytes.len() == 24
        && text.ends_with('Z')
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            23 => true,
            _ => b.is_ascii_digit(),
        })
}

fn is_prefixed_hex(text: &str, prefix: &str, hex_len: usize) -> bool {
    text.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == hex_len && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A public API call with the key, and what it answered.
async fn public_status(server: &TestServer, key: &str, method: Method, path: &str, body: &str) -> Reply {
    server.call(key, method, path, body.to_owned()).await
}

// ----------------------------------------------------------------------------------------------
// The admin token
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_needs_the_admin_token() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, api_key) = server.new_customer().await;
    let token = server.admin_token.clone();
    let wrong = format!("Bearer {}", "adm_test_0".repeat(4));
    let prefix = format!("Bearer {}", &token[..token.len() - 1]);
    let suffix = format!("Bearer {token}x");
    let basic = format!("Basic {token}");
    let bare = token.clone();
    let api_key_bearer = format!("Bearer {api_key}");
    let long = format!("Bearer {}", "a".repeat(10_000));
    let authorizations: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some(&wrong),
        Some(&prefix),
        Some(&suffix),
        Some(&basic),
        Some(&bare),
        Some(&api_key_bearer),
        Some(&long),
    ];
    // An id that no customer has yet: a refused create must not take it.
    let reserved = uuid::Uuid::new_v4().to_string();
    let routes = [
        ("/admin/v1/customers".to_owned(), json!({"customer_id": reserved})),
        (keys_path(&customer_id), json!({})),
        (keys_path(&uuid::Uuid::new_v4().to_string()), json!({})),
        (keys_path("not-a-customer"), json!({})),
    ];
    for authorization in authorizations {
        for (path, body) in &routes {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(value) = authorization {
                headers.push(("authorization", value));
            }
            let reply = server.send_admin(Method::POST, path, &headers, body.to_string()).await;
            let problem = problem(&reply, 401);
            assert_eq!(problem["type"], "urn:triggers:problem:unauthorized", "{authorization:?} {path}");
            assert!(reply.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
            assert!(!String::from_utf8_lossy(&reply.body).contains(&token), "the problem shows the token");
        }
    }
    // Nothing the refused requests asked for was done: the reserved id is still free.
    let created = create_customer(&server, json!({"customer_id": reserved})).await;
    assert_eq!(created, reserved);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// Customers
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_created_with_the_defaults() {
    let server = TestServer::start(RunOptions::default()).await;
    for body in ["{}", "", "  \n"] {
        let reply = admin_body(&server, "/admin/v1/customers", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{body:?}: {:?}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.header("x-request-id").is_some());
        let customer = reply.json();
        let mut fields: Vec<&str> = customer.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["created_at", "customer_id", "name", "rate_limit_per_sec"]);
        assert!(uuid::Uuid::parse_str(customer["customer_id"].as_str().unwrap()).is_ok(), "{customer}");
        assert_eq!(customer["name"], Value::Null);
        assert_eq!(customer["rate_limit_per_sec"], 1000);
        assert!(is_rfc3339_millis_utc(customer["created_at"].as_str().unwrap()), "{customer}");
    }
    // The default limit is what the public API applies.
    let (_, key) = server.new_customer().await;
    let reply = server.post_event(&key, json!({"type": "a", "data": 1})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.header("ratelimit-limit"), Some("1000"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_created_with_explicit_fields() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = uuid::Uuid::new_v4().to_string();
    let name = "Ünïcode & Co. <script>".to_owned() + &"n".repeat(256 - 22);
    assert_eq!(name.chars().count(), 256);
    let reply = server
        .admin_call(
            Method::POST,
            "/admin/v1/customers",
            json!({"customer_id": customer_id, "name": name, "rate_limit_per_sec": 7, "unknown": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let customer = reply.json();
    assert_eq!(customer["customer_id"], customer_id.as_str());
    assert_eq!(customer["name"], name.as_str());
    assert_eq!(customer["rate_limit_per_sec"], 7);

    let key = create_key(&server, &customer_id, json!({})).await;
    let reply = server.post_event(key["api_key"].as_str().unwrap(), json!({"type": "a", "data": 1})).await;
    assert_eq!(reply.header("ratelimit-limit"), Some("7"));

    // The bounds are inclusive.
    for limit in [1, 1_000_000] {
        let reply = server.admin_call(Method::POST, "/admin/v1/customers", json!({"rate_limit_per_sec": limit})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{limit}: {:?}", reply.body);
        assert_eq!(reply.json()["rate_limit_per_sec"], limit);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_customer_id_is_a_409_and_changes_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = uuid::Uuid::new_v4().to_string();
    create_customer(&server, json!({"customer_id": customer_id, "rate_limit_per_sec": 7})).await;
    let key = create_key(&server, &customer_id, json!({})).await["api_key"].as_str().unwrap().to_owned();

    for duplicate in [
        json!({"customer_id": customer_id, "rate_limit_per_sec": 9, "name": "usurper"}),
        json!({"customer_id": customer_id.to_uppercase()}),
    ] {
        let reply = server.admin_call(Method::POST, "/admin/v1/customers", duplicate.clone()).await;
        let body = problem(&reply, 409);
        assert_eq!(body["type"], "urn:triggers:problem:conflict", "{duplicate}");
    }
    // The first customer keeps its limit and its keys.
    let reply = server.post_event(&key, json!({"type": "a", "data": 1})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.header("ratelimit-limit"), Some("7"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_customer_fields_are_a_422_and_create_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let reserved = uuid::Uuid::new_v4().to_string();
    let long = "n".repeat(257);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"customer_id": "nope"}), vec!["/customer_id"]),
        (json!({"customer_id": 42}), vec!["/customer_id"]),
        (json!({"customer_id": ""}), vec!["/customer_id"]),
        (json!({"customer_id": ["a"]}), vec!["/customer_id"]),
        (json!({"customer_id": reserved, "name": long}), vec!["/name"]),
        (json!({"customer_id": reserved, "name": 5}), vec!["/name"]),
        (json!({"customer_id": reserved, "name": {"first": "a"}}), vec!["/name"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": 0}), vec!["/rate_limit_per_sec"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": -1}), vec!["/rate_limit_per_sec"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": 1.5}), vec!["/rate_limit_per_sec"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": "10"}), vec!["/rate_limit_per_sec"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": 1_000_001}), vec!["/rate_limit_per_sec"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": 1e300}), vec!["/rate_limit_per_sec"]),
        (json!({"customer_id": reserved, "rate_limit_per_sec": true}), vec!["/rate_limit_per_sec"]),
        (
            json!({"customer_id": "x", "name": 1, "rate_limit_per_sec": 0}),
            vec!["/customer_id", "/name", "/rate_limit_per_sec"],
        ),
        (json!([]), vec![""]),
        (json!("customer"), vec![""]),
        (json!(null), vec![""]),
    ];
    for (body, pointers) in cases {
        let reply = server.admin_call(Method::POST, "/admin/v1/customers", body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {:?}", reply.body);
        validation(&reply, &pointers);
    }
    // None of the refused bodies took the id they named.
    assert_eq!(create_customer(&server, json!({"customer_id": reserved})).await, reserved);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_hostile_admin_bodies_are_refused() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = create_customer(&server, json!({})).await;
    let depth = 30_000;
    let nested_arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_in_field = format!(r#"{{"name": {}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    let oversized = json!({"name": "x".repeat(64 * 1024)}).to_string();
    for path in ["/admin/v1/customers".to_owned(), keys_path(&customer_id)] {
        let bodies = [
            "{",
            "not json",
            r#"{"name": "a",}"#,
            "{\"name\": \"\u{0}\"}",
            "\u{feff}{}",
            &nested_arrays,
            &nested_in_field,
        ];
        for body in bodies {
            let reply = admin_body(&server, &path, body.to_owned()).await;
            let problem = problem(&reply, 400);
            assert_eq!(problem["type"], "urn:triggers:problem:malformed-request", "{path}: {body:.40}");
            assert_alive(&server).await;
        }
        let reply = admin_body(&server, &path, b"{\"name\": \"\xff\"}".to_vec()).await;
        problem(&reply, 400);
        let reply = admin_body(&server, &path, oversized.clone()).await;
        assert_eq!(problem(&reply, 413)["type"], "urn:triggers:problem:payload-too-large");
        assert_alive(&server).await;
    }
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// API keys
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_has_the_contract_shape_and_its_scopes() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = create_customer(&server, json!({})).await;
    let reply = server.admin_call(Method::POST, &keys_path(&customer_id), json!({})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let key = reply.json();
    let mut fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["api_key", "created_at", "expires_at", "key_id", "scopes"]);
    assert!(is_prefixed_hex(key["key_id"].as_str().unwrap(), "key_", 32), "{key}");
    let secret = key["api_key"].as_str().unwrap();
    assert!(secret.starts_with("tk_") && secret.len() > 3 + 32, "{key}");
    assert_eq!(key["scopes"], json!(["events:write", "events:read", "subscriptions:write", "subscriptions:read"]));
    assert!(is_rfc3339_millis_utc(key["created_at"].as_str().unwrap()));
    assert_eq!(key["expires_at"], Value::Null);

    // Every key is new; the scopes given are the scopes granted.
    let second = create_key(&server, &customer_id, json!({"scopes": ["events:read"]})).await;
    assert_ne!(second["api_key"], key["api_key"]);
    assert_ne!(second["key_id"], key["key_id"]);
    assert_eq!(second["scopes"], json!(["events:read"]));
    let read_only = second["api_key"].as_str().unwrap();
    let reply = public_status(&server, read_only, Method::POST, "/v1/events", r#"{"type":"a","data":1}"#).await;
    assert_eq!(problem(&reply, 403)["type"], "urn:triggers:problem:forbidden");
    let accepted = public_status(&server, secret, Method::POST, "/v1/events", r#"{"type":"a","data":1}"#).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let event_id = accepted.json()["event_id"].as_str().unwrap().to_owned();
    let reply = public_status(&server, read_only, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "a read-only key of the same customer reads its events");

    // A key with an expiry in the future works and says when it ends, in UTC with milliseconds.
    let later = create_key(&server, &customer_id, json!({"expires_at": "2999-01-01T02:00:00+02:00"})).await;
    assert_eq!(later["expires_at"], "2999-01-01T00:00:00.000Z");
    let reply = public_status(
        &server,
        later["api_key"].as_str().unwrap(),
        Method::POST,
        "/v1/events",
        r#"{"type":"a","data":1}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_for_an_unknown_customer_is_a_404() {
    let server = TestServer::start(RunOptions::default()).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let ids = [unknown.as_str(), "not-a-customer", "%00", "00000000-0000-0000-0000-000000000000"];
    let mut kinds = Vec::new();
    for id in ids {
        let reply = server.admin_call(Method::POST, &keys_path(id), json!({})).await;
        let body = problem(&reply, 404);
        kinds.push(body["type"].clone());
    }
    assert!(kinds.iter().all(|kind| *kind == "urn:triggers:problem:not-found"), "{kinds:?}");
    // Creating the customer afterwards works, and so does its first key: the refusals left nothing behind.
    create_customer(&server, json!({"customer_id": unknown})).await;
    create_key(&server, &unknown, json!({})).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_scopes_and_expiries_are_a_422() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = create_customer(&server, json!({})).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"scopes": ["events:delete"]}), vec!["/scopes"]),
        (json!({"scopes": ["EVENTS:READ"]}), vec!["/scopes"]),
        (json!({"scopes": ["events:read", "admin"]}), vec!["/scopes"]),
        (json!({"scopes": "events:read"}), vec!["/scopes"]),
        (json!({"scopes": [1]}), vec!["/scopes"]),
        (json!({"scopes": [null]}), vec!["/scopes"]),
        (json!({"scopes": {"events:read": true}}), vec!["/scopes"]),
        (json!({"scopes": []}), vec!["/scopes"]),
        (json!({"expires_at": "tomorrow"}), vec!["/expires_at"]),
        (json!({"expires_at": "2030-01-01"}), vec!["/expires_at"]),
        (json!({"expires_at": 1_900_000_000}), vec!["/expires_at"]),
        (json!({"scopes": ["root"], "expires_at": false}), vec!["/scopes", "/expires_at"]),
        (json!([]), vec![""]),
    ];
    for (body, pointers) in cases {
        let reply = server.admin_call(Method::POST, &keys_path(&customer_id), body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {:?}", reply.body);
        validation(&reply, &pointers);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_a_401_on_the_public_api() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = create_customer(&server, json!({})).await;
    let working = create_key(&server, &customer_id, json!({})).await["api_key"].as_str().unwrap().to_owned();
    let accepted = public_status(&server, &working, Method::POST, "/v1/events", r#"{"type":"a","data":1}"#).await;
    let event_id = accepted.json()["event_id"].as_str().unwrap().to_owned();
    let subscription = server.subscribe(&working, json!({}), "https://example.com/hook").await;
    let workflow_id = subscription["workflow_id"].as_str().unwrap().to_owned();

    let expired = create_key(&server, &customer_id, json!({"expires_at": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(expired["expires_at"], "2000-01-01T00:00:00.000Z");
    let expired = expired["api_key"].as_str().unwrap();
    let requests = [
        (Method::POST, "/v1/events".to_owned(), r#"{"type":"a","data":1}"#),
        (Method::GET, format!("/v1/events/{event_id}"), ""),
        (Method::POST, "/v1/subscriptions".to_owned(), r#"{"event_selector":{},"webhook_url":"https://example.com/"}"#),
        (Method::GET, "/v1/subscriptions".to_owned(), ""),
        (Method::GET, format!("/v1/subscriptions/{workflow_id}"), ""),
    ];
    for (method, path, body) in requests {
        let reply = public_status(&server, expired, method.clone(), &path, body).await;
        let problem = problem(&reply, 401);
        assert_eq!(problem["type"], "urn:triggers:problem:unauthorized", "{method} {path}");
        assert!(reply.header("ratelimit-limit").is_none());
    }
    // The customer's other key is unaffected, and the refused requests wrote nothing.
    let listed = public_status(&server, &working, Method::GET, "/v1/subscriptions", "").await;
    assert_eq!(listed.json()["subscriptions"].as_array().unwrap().len(), 1);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// Listeners, routing, request ids
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listeners_do_not_serve_each_others_routes() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, api_key) = server.new_customer().await;
    let admin_auth = format!("Bearer {}", server.admin_token);
    let public_auth = format!("Bearer {api_key}");

    // Admin routes on the public listener, even with the admin token.
    for path in ["/admin/v1/customers".to_owned(), keys_path(&customer_id)] {
        let headers = [("authorization", admin_auth.as_str()), ("content-type", "application/json")];
        let reply = server.http.send(Method::POST, &server.url(&path), &headers, "{}").await;
        assert_eq!(problem(&reply, 404)["type"], "urn:triggers:problem:not-found", "{path}");
    }
    // Public and operational routes on the admin listener, with either credential.
    let id = format!("evt_{}", "0".repeat(32));
    let public_routes = [
        (Method::POST, "/v1/events".to_owned()),
        (Method::GET, format!("/v1/events/{id}")),
        (Method::GET, "/v1/subscriptions".to_owned()),
        (Method::POST, "/v1/subscriptions".to_owned()),
        (Method::GET, "/healthz".to_owned()),
        (Method::GET, "/readyz".to_owned()),
        (Method::GET, "/metrics".to_owned()),
        (Method::GET, "/openapi.json".to_owned()),
    ];
    for (method, path) in public_routes {
        for auth in [&admin_auth, &public_auth] {
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            let body = r#"{"type":"a","data":1}"#;
            let reply = server.send_admin(method.clone(), &path, &headers, body).await;
            assert_eq!(problem(&reply, 404)["type"], "urn:triggers:problem:not-found", "{method} {path}");
        }
    }
    // Nothing was ingested through the admin listener.
    let metrics = server.http.send(Method::GET, &server.url("/metrics"), &[], "").await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(text.lines().any(|line| line == "triggers_events_accepted_total 0"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routing_errors_are_problems_with_request_ids() {
    let server = TestServer::start(RunOptions::default()).await;
    let customer_id = create_customer(&server, json!({})).await;
    let auth = format!("Bearer {}", server.admin_token);
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];

    for path in ["/", "/admin", "/admin/v1", "/admin/v2/customers", "/admin/v1/customers/x/y/z", "/admin/v1/keys"] {
        let reply = server.send_admin(Method::POST, path, &headers, "{}").await;
        assert_eq!(problem(&reply, 404)["type"], "urn:triggers:problem:not-found", "{path}");
    }
    for (method, path) in [
        (Method::GET, "/admin/v1/customers".to_owned()),
        (Method::DELETE, "/admin/v1/customers".to_owned()),
        (Method::GET, keys_path(&customer_id)),
        (Method::PUT, keys_path(&customer_id)),
    ] {
        let reply = server.send_admin(method.clone(), &path, &headers, "").await;
        assert_eq!(problem(&reply, 405)["type"], "urn:triggers:problem:method-not-allowed");
        assert_eq!(reply.header("allow"), Some("POST"), "{method} {path}");
    }

    // Request ids: echoed when sent, generated (and different) when not, on successes and errors.
    // (with the admin token, path, expected status)
    let cases = [
        (true, "/admin/v1/customers", 201),
        (false, "/admin/v1/customers", 401),
        (true, "/admin/nowhere", 404),
        (true, "/admin/v1/customers/x/api-keys", 404),
    ];
    for (authorised, path, status) in cases {
        let headers = if authorised { headers.to_vec() } else { vec![("content-type", "application/json")] };
        let first = server.send_admin(Method::POST, path, &headers, "{}").await;
        let second = server.send_admin(Method::POST, path, &headers, "{}").await;
        let mut with_id = headers.clone();
        with_id.push(("x-request-id", "ops-4711"));
        let echoed = server.send_admin(Method::POST, path, &with_id, "{}").await;
        for reply in [&first, &second, &echoed] {
            assert_eq!(reply.status.as_u16(), status, "{path}: {:?}", reply.body);
        }
        assert_eq!(echoed.header("x-request-id"), Some("ops-4711"));
        assert!(first.header("x-request-id").is_some_and(|id| !id.is_empty()));
        assert_ne!(first.header("x-request-id"), second.header("x-request-id"));
    }
    server.stop().await;
}
