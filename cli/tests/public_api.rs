//! Contract tests of the public API (`/work/shared/contract/API.md`): events, subscriptions, routing,
//! request ids and the operational endpoints, with malformed, oversized and hostile input on every
//! path. Every refusal must be an RFC 9457 problem, never a 5xx, and must write nothing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Receiver, Reply, SUBSCRIPTION_PROPAGATION, TestServer, assert_alive, problem, validation};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use triggers::settings::RunOptions;

/// The largest event body the contract accepts.
const ONE_MIB: usize = 1_048_576;

// ----------------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------------

/// `POST /v1/events` with the key, the given content type (none when `None`) and extra headers.
async fn post_raw(
    server: &TestServer,
    key: &str,
    content_type: Option<&str>,
    extra: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> Reply {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    headers.extend_from_slice(extra);
    server.send_public(Method::POST, "/v1/events", &headers, body).await
}

/// An API key of `customer_id` with exactly `scopes`.
async fn key_with_scopes(server: &TestServer, customer_id: &str, scopes: &[&str]) -> String {
    let path = format!("/admin/v1/customers/{customer_id}/api-keys");
    let reply = server.admin_call(Method::POST, &path, json!({ "scopes": scopes })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.json()["scopes"], json!(scopes));
    reply.json()["api_key"].as_str().unwrap().to_owned()
}

/// The value of a counter at `/metrics`.
async fn counter(server: &TestServer, name: &str) -> u64 {
    let reply = server.send_public(Method::GET, "/metrics", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Asserts that the stream holds exactly `accepted` events: nothing a refused request sent was written.
async fn assert_accepted_total(server: &TestServer, accepted: u64) {
    assert_eq!(counter(server, "triggers_events_accepted_total").await, accepted, "events written to the stream");
}

/// Asserts every rate-limit header of an authenticated ingest response, and returns (limit, remaining).
#[track_caller]
fn rate_limit_headers(reply: &Reply) -> (u64, u64) {
    let number = |name: &str| -> u64 {
        reply
            .header(name)
            .unwrap_or_else(|| panic!("{} response without {name}", reply.status))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a whole number"))
    };
    let (limit, remaining, reset) =
        (number("ratelimit-limit"), number("ratelimit-remaining"), number("ratelimit-reset"));
    assert!(remaining <= limit);
    assert!((1..=60).contains(&reset), "ratelimit-reset of {reset} s");
    (limit, remaining)
}

fn is_rfc3339_millis_utc(text: &str) -> bool {
    // 2026-11-26T15:04:05.123Z
    let bytes = text.as_bytes();
    bytes.len() == 24
        && text.ends_with('Z')
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            13 | 16 => *b == b':',
            10 | 19 | 23 => true,
            _ => b.is_ascii_digit(),
        })
}

/// A valid event body of exactly `size` bytes.
fn event_of_size(size: usize) -> String {
    let frame = r#"{"type":"big.event","data":""}"#;
    let padding = "x".repeat(size - frame.len());
    let body = format!(r#"{{"type":"big.event","data":"{padding}"}}"#);
    assert_eq!(body.len(), size);
    body
}

/// A response read off a raw TCP connection.
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `request` as raw bytes (the server is expected to close after answering) and reads the
/// answer; `None` when the server closed without one. Writing goes on concurrently, so a server
/// that answers before reading the whole body is still heard.
async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> Option<RawReply> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        // Keep the write half open until the answer is read: closing it early would end the request.
        std::future::pending::<()>().await;
        drop(writer);
    });
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut bytes)).await;
    writing.abort();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(RawReply { status, head, body: bytes[split + 4..].to_vec() })
}

// ----------------------------------------------------------------------------------------------
// POST /v1/events: accepted
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_event_has_the_contract_shape_and_reads_back() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let event = json!({
        "type": "order.created", "data": {"order": 42, "lines": [1, 2]}, "source": "shop-eu", "subject": "user-7",
        "occurred_at": "2026-11-26T16:04:05.123+01:00", "metadata": {"trace": "abc"}
    });
    let reply = server.post_event(&key, event).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("idempotent-replayed").is_none());
    let body = reply.json();
    let event_id = body["event_id"].as_str().unwrap();
    let hex = event_id.strip_prefix("evt_").expect("evt_ prefix");
    assert!(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{event_id}");
    assert_eq!(body["status"], "accepted");
    assert!(is_rfc3339_millis_utc(body["received_at"].as_str().unwrap()), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_eq!(reply.header("location"), Some(format!("/v1/events/{event_id}").as_str()));
    assert_eq!(rate_limit_headers(&reply).0, 1000);

    let read = server.call(&key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    let view = read.json();
    for field in [
        "event_id",
        "type",
        "source",
        "subject",
        "occurred_at",
        "received_at",
        "status",
        "delivery_attempts",
        "last_delivery_at",
        "data",
        "metadata",
        "deliveries",
    ] {
        assert!(view.get(field).is_some(), "event view without {field}: {view}");
    }
    assert_eq!(view["event_id"], event_id);
    assert_eq!(view["type"], "order.created");
    assert_eq!(view["source"], "shop-eu");
    assert_eq!(view["subject"], "user-7");
    assert_eq!(view["occurred_at"], "2026-11-26T15:04:05.123Z", "occurred_at is shown in UTC with milliseconds");
    assert_eq!(view["received_at"], body["received_at"]);
    assert_eq!(view["data"], json!({"order": 42, "lines": [1, 2]}));
    assert_eq!(view["metadata"], json!({"trace": "abc"}));
    assert_eq!(counter(&server, "triggers_events_accepted_total").await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_parameters_and_case_are_accepted() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    for content_type in ["application/json; charset=utf-8", "Application/JSON", "application/json ;charset=UTF-8"] {
        let reply = post_raw(&server, &key, Some(content_type), &[], r#"{"type":"a","data":1}"#).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{content_type}: {:?}", reply.body);
    }
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// POST /v1/events: malformed, oversized, unsupported, invalid
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_and_writes_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"   ".to_vec(),
        b"{".to_vec(),
        b"not json".to_vec(),
        b"{'type': 'a', 'data': 1}".to_vec(),
        b"{\"type\": \"a\", \"data\": 1,}".to_vec(),
        b"{\"type\": \"a\", \"data\": 1} trailing".to_vec(),
        b"{\"type\": \"a\", \"data\": 1}{\"type\": \"b\", \"data\": 2}".to_vec(),
        b"{\"type\": \"a\", \"data\": \"\xff\xfe\"}".to_vec(),
        b"\xef\xbb\xbf{\"type\": \"a\", \"data\": 1}".to_vec(),
        b"{\"type\": \"a\", \"data\": \"\\ud800\"}".to_vec(),
        b"{\"type\": \"a\", \"data\": 1e999}".to_vec(),
        b"{\"type\": \"a\", \"data\": NaN}".to_vec(),
        b"{\"type\": \"a\", \"data\": \"unterminated}".to_vec(),
        b"{\"type\": \"a\", \"data\": \"raw\x01control\"}".to_vec(),
        b"\x00\x00\x00\x00".to_vec(),
    ];
    for body in bodies {
        let reply = post_raw(&server, &key, Some("application/json"), &[], body.clone()).await;
        let problem = problem(&reply, 400);
        assert_eq!(problem["type"], "urn:triggers:problem:malformed-request", "{:?}", String::from_utf8_lossy(&body));
        rate_limit_headers(&reply);
    }
    assert_alive(&server).await;
    assert_accepted_total(&server, 0).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_one_mebibyte_is_a_413_and_writes_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    // One byte over, valid JSON otherwise.
    let reply = post_raw(&server, &key, Some("application/json"), &[], event_of_size(ONE_MIB + 1)).await;
    let body = problem(&reply, 413);
    assert_eq!(body["type"], "urn:triggers:problem:payload-too-large");
    assert!(body["detail"].as_str().unwrap().contains("at most 1048576 bytes"), "{body}");
    rate_limit_headers(&reply);
    // Far over.
    let reply = post_raw(&server, &key, Some("application/json"), &[], event_of_size(5 * ONE_MIB)).await;
    problem(&reply, 413);
    assert_alive(&server).await;
    assert_accepted_total(&server, 0).await;
    server.stop().await;
}

/// MessagePack stores a float in 9 bytes where its JSON may take 4: an event under the body limit can
/// be over the stream's record limit as stored (1 MiB, as Kinesis counts it). It is refused with a
/// 413 before anything is written, its idempotency key included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_record_limit_as_stored_is_a_413_and_writes_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let floats = vec!["0.5"; 240_000].join(",");
    let body = format!(r#"{{"type":"many.floats","data":[{floats}]}}"#);
    assert!(body.len() < ONE_MIB, "the body itself is within the limit: {} bytes", body.len());

    let headers = [("idempotency-key", "floats-1")];
    let reply = post_raw(&server, &key, Some("application/json"), &headers, body.clone()).await;
    let refused = problem(&reply, 413);
    assert_eq!(refused["type"], "urn:triggers:problem:payload-too-large");
    assert!(refused["detail"].as_str().unwrap().contains("as stored"), "{refused}");
    rate_limit_headers(&reply);
    // The same again: still refused, never a retryable answer.
    problem(&post_raw(&server, &key, Some("application/json"), &[], body).await, 413);
    assert_alive(&server).await;
    assert_accepted_total(&server, 0).await;

    // The key was not claimed by the refused request: a new event may use it.
    let small = json!({"type": "many.floats", "data": [0.5]}).to_string();
    let reply = post_raw(&server, &key, Some("application/json"), &headers, small).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

/// Most clients send the whole body before reading the answer: a refusal sent before the body was
/// read must still reach them, rather than a reset connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_a_client_that_sends_its_whole_body_first() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, key) = server.new_customer().await;
    let read_only = key_with_scopes(&server, &customer_id, &["events:read"]).await;
    let big = event_of_size(ONE_MIB - 10);
    for _ in 0..3 {
        problem(&post_raw(&server, "tk_unknown", Some("application/json"), &[], big.clone()).await, 401);
        problem(&post_raw(&server, &read_only, Some("application/json"), &[], big.clone()).await, 403);
        problem(&post_raw(&server, &key, Some("text/plain"), &[], big.clone()).await, 415);
        problem(&post_raw(&server, &key, Some("application/json"), &[("idempotency-key", "")], big.clone()).await, 400);
        problem(&post_raw(&server, &key, Some("application/json"), &[], event_of_size(4 * ONE_MIB)).await, 413);
        let auth = format!("Bearer {key}");
        let headers = [("authorization", auth.as_str()), ("content-type", "text/plain")];
        problem(&server.send_public(Method::POST, "/v1/subscriptions", &headers, big.clone()).await, 415);
        problem(
            &server
                .send_public(Method::POST, "/v1/subscriptions", &[("content-type", "application/json")], big.clone())
                .await,
            401,
        );
        problem(&server.call(&key, Method::POST, "/v1/subscriptions", big.clone()).await, 413);
        problem(&server.call(&key, Method::POST, "/nowhere", big.clone()).await, 404);
        problem(&server.call(&key, Method::PUT, "/v1/events", big.clone()).await, 405);
    }
    assert_alive(&server).await;
    assert_accepted_total(&server, 0).await;
    server.stop().await;
}

/// The body limit lets exactly 1 MiB through. An event that large cannot also fit the stream's
/// 1 MiB record limit once the record's envelope (ids, times, field names) is added, so it is the
/// record limit that refuses it; an event a little smaller is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_exactly_one_mebibyte_is_read_whole_and_judged_as_stored() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let reply = post_raw(&server, &key, Some("application/json"), &[], event_of_size(ONE_MIB)).await;
    let refused = problem(&reply, 413);
    assert!(refused["detail"].as_str().unwrap().contains("as stored"), "not the body limit's refusal: {refused}");
    assert_accepted_total(&server, 0).await;

    let size = ONE_MIB - 4096;
    let reply = post_raw(&server, &key, Some("application/json"), &[], event_of_size(size)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", String::from_utf8_lossy(&reply.body));
    let event_id = reply.json()["event_id"].as_str().unwrap().to_owned();
    let read = server.call(&key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["data"].as_str().unwrap().len(), size - r#"{"type":"big.event","data":""}"#.len());
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_whatever_its_framing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let head = |framing: &str| {
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nConnection: close\r\n{framing}\r\n"
        )
    };

    // Chunked, with no Content-Length: the limit holds on what actually arrives.
    let mut request = head("Transfer-Encoding: chunked\r\n").into_bytes();
    let chunk = vec![b' '; 64 * 1024];
    let start = br#"{"type":"a","data":""#;
    request.extend_from_slice(format!("{:x}\r\n", start.len()).as_bytes());
    request.extend_from_slice(start);
    request.extend_from_slice(b"\r\n");
    for _ in 0..(2 * ONE_MIB / chunk.len()) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let reply = raw_exchange(server.public, request).await.expect("an answer to a chunked oversized body");
    assert_eq!(reply.status, 413, "{}", reply.head);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert!(reply.header("x-request-id").is_some());
    assert!(reply.header("ratelimit-limit").is_some());
    let body: Value = serde_json::from_slice(&reply.body).expect("a problem body");
    assert_eq!(body["status"], 413);

    // A Content-Length that claims far more than is sent is refused at once, without waiting.
    let request = head("Content-Length: 99999999999\r\n") + r#"{"type":"a","data":1}"#;
    let reply = raw_exchange(server.public, request.into_bytes()).await.expect("an answer to a huge Content-Length");
    assert_eq!(reply.status, 413, "{}", reply.head);

    assert_alive(&server).await;
    assert_accepted_total(&server, 0).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_content_type_is_a_415_and_writes_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let valid = r#"{"type":"a","data":1}"#;
    for content_type in [
        None,
        Some(""),
        Some("text/plain"),
        Some("application/xml"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("application/json-seq"),
        Some("json"),
        Some("application/cloudevents-batch+json"),
    ] {
        let reply = post_raw(&server, &key, content_type, &[], valid).await;
        let body = problem(&reply, 415);
        assert_eq!(body["type"], "urn:triggers:problem:unsupported-media-type", "{content_type:?}");
        rate_limit_headers(&reply);
    }
    assert_accepted_total(&server, 0).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_a_422_naming_each_pointer_and_write_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let long = "a".repeat(257);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"data": 1}), vec!["/type"]),
        (json!({"type": null, "data": 1}), vec!["/type"]),
        (json!({"type": "", "data": 1}), vec!["/type"]),
        (json!({"type": "order created", "data": 1}), vec!["/type"]),
        (json!({"type": "order!", "data": 1}), vec!["/type"]),
        (json!({"type": "ördér", "data": 1}), vec!["/type"]),
        (json!({"type": "a\u{0}b", "data": 1}), vec!["/type"]),
        (json!({"type": "a\nb", "data": 1}), vec!["/type"]),
        (json!({"type": long, "data": 1}), vec!["/type"]),
        (json!({"type": 42, "data": 1}), vec!["/type"]),
        (json!({"type": ["a"], "data": 1}), vec!["/type"]),
        (json!({"type": "a"}), vec!["/data"]),
        (json!({}), vec!["/type", "/data"]),
        (json!({"type": "a", "data": 1, "metadata": []}), vec!["/metadata"]),
        (json!({"type": "a", "data": 1, "metadata": "x"}), vec!["/metadata"]),
        (json!({"type": "a", "data": 1, "metadata": 7}), vec!["/metadata"]),
        (json!({"type": "a", "data": 1, "occurred_at": "yesterday"}), vec!["/occurred_at"]),
        (json!({"type": "a", "data": 1, "occurred_at": "2026-11-26"}), vec!["/occurred_at"]),
        (json!({"type": "a", "data": 1, "occurred_at": "2026-13-40T25:61:00Z"}), vec!["/occurred_at"]),
        (json!({"type": "a", "data": 1, "occurred_at": 1_790_000_000}), vec!["/occurred_at"]),
        (json!({"type": "a", "data": 1, "source": long}), vec!["/source"]),
        (json!({"type": "a", "data": 1, "source": 5}), vec!["/source"]),
        (json!({"type": "a", "data": 1, "subject": long}), vec!["/subject"]),
        (json!({"type": "a", "data": 1, "subject": {"id": 1}}), vec!["/subject"]),
        (
            json!({"type": "bad type", "source": false, "subject": [], "occurred_at": "soon", "metadata": [1]}),
            vec!["/type", "/data", "/source", "/subject", "/occurred_at", "/metadata"],
        ),
        (json!([{"type": "a", "data": 1}]), vec![""]),
        (json!("order.created"), vec![""]),
        (json!(null), vec![""]),
        (json!(42), vec![""]),
    ];
    for (event, pointers) in cases {
        let reply = server.post_event(&key, event.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{event}: {:?}", reply.body);
        validation(&reply, &pointers);
        rate_limit_headers(&reply);
    }
    assert_accepted_total(&server, 0).await;

    // The limits are inclusive: 256 characters of every allowed kind pass.
    let edge: String = "aZ9._:/-".chars().cycle().take(256).collect();
    let name = "é".repeat(256);
    let reply = server.post_event(&key, json!({"type": edge, "data": null, "source": name, "subject": name})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_a_400_and_the_server_survives() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let in_data = format!(r#"{{"type":"a","data":{arrays}}}"#);
    let in_metadata = format!(r#"{{"type":"a","data":1,"metadata":{objects}}}"#);
    let unclosed = "[".repeat(depth);
    for body in [arrays, objects, in_data, in_metadata, unclosed] {
        let reply = post_raw(&server, &key, Some("application/json"), &[], body).await;
        problem(&reply, 400);
        assert_alive(&server).await;
    }
    assert_accepted_total(&server, 0).await;

    // Nesting that JSON parsers accept is stored and read back intact.
    let nested = (0..100).fold(json!("leaf"), |inner, _| json!([inner]));
    let reply = server.post_event(&key, json!({"type": "deep", "data": nested.clone()})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let event_id = reply.json()["event_id"].as_str().unwrap().to_owned();
    let read = server.call(&key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(read.json()["data"], nested);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_does_not_bring_the_server_down() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let huge_header = "x".repeat(512 * 1024);
    let many_headers: String = (0..500).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let requests: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"POST /v1/events HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {huge_header}\r\nConnection: close\r\n\r\n").into_bytes(),
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}Connection: close\r\n\r\n").into_bytes(),
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             Content-Length: 5\r\nContent-Length: 7\r\nConnection: close\r\n\r\n12345"
        )
        .into_bytes(),
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
        )
        .into_bytes(),
        format!("GET /v1/events/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(64 * 1024))
            .into_bytes(),
    ];
    for request in requests {
        if let Some(reply) = raw_exchange(server.public, request).await {
            assert!((400..500).contains(&reply.status), "hostile request answered {}", reply.head);
        }
        assert_alive(&server).await;
    }
    assert_accepted_total(&server, 0).await;
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// POST /v1/events: authentication, scopes
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_unknown_keys_are_a_401_on_every_route() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let accepted = server.post_event(&key, json!({"type": "a", "data": 1})).await;
    let event_id = accepted.json()["event_id"].as_str().unwrap().to_owned();
    let subscription = server.subscribe(&key, json!({}), "http://127.0.0.1:9/hook").await;
    let workflow_id = subscription["workflow_id"].as_str().unwrap().to_owned();

    let unknown = format!("tk_{}", "0".repeat(64));
    let long = format!("Bearer tk_{}", "a".repeat(10_000));
    let wrong_prefix = format!("Bearer {}", key.replacen("tk_", "sk_", 1));
    let with_suffix = format!("Bearer {key}x");
    let truncated = format!("Bearer {}", &key[..key.len() - 1]);
    let basic = format!("Basic {key}");
    let unknown_bearer = format!("Bearer {unknown}");
    let authorizations: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer tk_"),
        Some(&basic),
        Some(&unknown_bearer),
        Some(&wrong_prefix),
        Some(&with_suffix),
        Some(&truncated),
        Some(&long),
        Some(&key),
    ];
    let routes = [
        (Method::POST, "/v1/events".to_owned()),
        (Method::GET, format!("/v1/events/{event_id}")),
        (Method::GET, "/v1/events/evt_nonsense".to_owned()),
        (Method::POST, "/v1/subscriptions".to_owned()),
        (Method::GET, "/v1/subscriptions".to_owned()),
        (Method::GET, format!("/v1/subscriptions/{workflow_id}")),
    ];
    for authorization in authorizations {
        for (method, path) in &routes {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(value) = authorization {
                headers.push(("authorization", value));
            }
            let body = if *method == Method::POST { r#"{"type":"a","data":1}"# } else { "" };
            let reply = server.send_public(method.clone(), path, &headers, body).await;
            let problem = problem(&reply, 401);
            assert_eq!(problem["type"], "urn:triggers:problem:unauthorized", "{authorization:?} {method} {path}");
            assert!(
                reply.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")),
                "a 401 must say how to authenticate (RFC 9110)"
            );
            assert!(reply.header("ratelimit-limit").is_none(), "an unauthenticated request has no rate limit");
        }
    }
    // A key that is not valid header text.
    let reply = post_raw(&server, "tk_\u{e9}t\u{e9}", Some("application/json"), &[], r#"{"type":"a","data":1}"#).await;
    problem(&reply, 401);
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_the_needed_scope_is_a_403() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, key) = server.new_customer().await;
    let read_only = key_with_scopes(&server, &customer_id, &["events:read"]).await;
    let write_only = key_with_scopes(&server, &customer_id, &["events:write"]).await;
    let subscriptions_read = key_with_scopes(&server, &customer_id, &["subscriptions:read"]).await;
    let subscriptions_write = key_with_scopes(&server, &customer_id, &["subscriptions:write"]).await;

    let reply = server.post_event(&read_only, json!({"type": "a", "data": 1})).await;
    let body = problem(&reply, 403);
    assert_eq!(body["type"], "urn:triggers:problem:forbidden");
    assert!(body["detail"].as_str().unwrap().contains("events:write"), "{body}");
    rate_limit_headers(&reply);
    assert_accepted_total(&server, 0).await;

    // The write-only key may ingest but not read back, even its own event.
    let accepted = server.post_event(&write_only, json!({"type": "a", "data": 1})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let event_id = accepted.json()["event_id"].as_str().unwrap().to_owned();
    let reply = server.call(&write_only, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert!(problem(&reply, 403)["detail"].as_str().unwrap().contains("events:read"));
    let reply = server.call(&read_only, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(reply.status, StatusCode::OK);

    let subscription = json!({"event_selector": {}, "webhook_url": "http://127.0.0.1:9/hook"}).to_string();
    let reply = server.call(&subscriptions_read, Method::POST, "/v1/subscriptions", subscription.clone()).await;
    assert!(problem(&reply, 403)["detail"].as_str().unwrap().contains("subscriptions:write"));
    let reply = server.call(&subscriptions_read, Method::GET, "/v1/subscriptions", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["subscriptions"], json!([]), "the refused subscription was not created");

    let created = server.call(&subscriptions_write, Method::POST, "/v1/subscriptions", subscription).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let workflow_id = created.json()["workflow_id"].as_str().unwrap().to_owned();
    assert_eq!(all_subscriptions(&server, &key).await.len(), 1, "a key with every scope sees it");
    let reply = server.call(&subscriptions_write, Method::GET, "/v1/subscriptions", "").await;
    assert!(problem(&reply, 403)["detail"].as_str().unwrap().contains("subscriptions:read"));
    let reply = server.call(&subscriptions_write, Method::GET, &format!("/v1/subscriptions/{workflow_id}"), "").await;
    problem(&reply, 403);
    // Scopes are separate: an events key cannot touch subscriptions.
    let reply = server.call(&write_only, Method::GET, "/v1/subscriptions", "").await;
    problem(&reply, 403);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// POST /v1/events: idempotency
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_and_body_replay_the_first_answer() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let body = r#"{"type":"order.created","data":{"order":1}}"#;
    let headers = [("idempotency-key", "order-1-created")];
    let first = post_raw(&server, &key, Some("application/json"), &headers, body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    assert!(first.header("idempotent-replayed").is_none());
    let event_id = first.json()["event_id"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        let again = post_raw(&server, &key, Some("application/json"), &headers, body).await;
        assert_eq!(again.status, StatusCode::ACCEPTED, "{:?}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body, "a replay answers the very same body");
        assert_eq!(again.json()["event_id"], event_id.as_str());
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(again.header("content-type"), Some("application/json"));
        rate_limit_headers(&again);
    }
    assert_accepted_total(&server, 1).await;

    // A different key is a different event; keys belong to one customer only.
    let other = post_raw(&server, &key, Some("application/json"), &[("idempotency-key", "order-2")], body).await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
    assert_ne!(other.json()["event_id"], event_id.as_str());
    let (_, other_key) = server.new_customer().await;
    let foreign = post_raw(&server, &other_key, Some("application/json"), &headers, body).await;
    assert_eq!(foreign.status, StatusCode::ACCEPTED);
    assert!(foreign.header("idempotent-replayed").is_none(), "another customer's key must not replay");
    assert_ne!(foreign.json()["event_id"], event_id.as_str());
    assert_accepted_total(&server, 3).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_with_another_body_is_a_422() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let headers = [("idempotency-key", "k-1")];
    let first = post_raw(&server, &key, Some("application/json"), &headers, r#"{"type":"a","data":1}"#).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let reply = post_raw(&server, &key, Some("application/json"), &headers, r#"{"type":"a","data":2}"#).await;
    let body = problem(&reply, 422);
    assert_eq!(body["type"], "urn:triggers:problem:idempotency-key-reused");
    assert!(reply.header("idempotent-replayed").is_none());
    rate_limit_headers(&reply);
    // The first answer is still what the key replays.
    let again = post_raw(&server, &key, Some("application/json"), &headers, r#"{"type":"a","data":1}"#).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, first.body);
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_idempotency_key_header_is_a_400() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let body = r#"{"type":"a","data":1}"#;
    let too_long = "k".repeat(256);
    let far_too_long = "k".repeat(300);
    for value in ["", too_long.as_str(), far_too_long.as_str(), "tab\there", "caf\u{e9}"] {
        let reply = post_raw(&server, &key, Some("application/json"), &[("idempotency-key", value)], body).await;
        let problem = problem(&reply, 400);
        assert_eq!(problem["type"], "urn:triggers:problem:malformed-request", "{value:?}");
        rate_limit_headers(&reply);
    }
    assert_accepted_total(&server, 0).await;
    let longest = "k".repeat(255);
    let printable = "~!@#$%^&*()_+ {}|:<>?";
    for value in [longest.as_str(), printable, "a"] {
        let reply = post_raw(&server, &key, Some("application/json"), &[("idempotency-key", value)], body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{value:?}: {:?}", reply.body);
    }
    assert_accepted_total(&server, 3).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_request_does_not_lock_its_idempotency_key() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let body = r#"{"type":"order.paid","data":{"order":5}}"#;
    // Send the whole request, then hang up at once: the server sees the end of the connection
    // while it is still handling the request (at which step depends on scheduling; the harness
    // cannot slow the stream down to pin the hang-up inside the write).
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Idempotency-Key: hang-up\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(server.public).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);

    // The retry may find the first request still running (409), but never for long: it ends with
    // the first request's answer, or a fresh one if the first never reached the stream.
    let headers = [("idempotency-key", "hang-up")];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let reply = post_raw(&server, &key, Some("application/json"), &headers, body).await;
        match reply.status {
            StatusCode::ACCEPTED => break reply,
            StatusCode::CONFLICT => {
                problem(&reply, 409);
                assert!(std::time::Instant::now() < deadline, "the key stayed claimed by a request that had ended");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    };
    let event_id = answer.json()["event_id"].as_str().unwrap().to_owned();
    assert_eq!(server.call(&key, Method::GET, &format!("/v1/events/{event_id}"), "").await.status, StatusCode::OK);
    // Written once, whichever way the race went.
    assert_accepted_total(&server, 1).await;
    let again = post_raw(&server, &key, Some("application/json"), &headers, body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, answer.body);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// POST /v1/events: CloudEvents structured mode
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_structured_mode_is_accepted_and_its_id_is_the_idempotency_key() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let cloudevent = json!({
        "specversion": "1.0", "id": "ce-1", "type": "com.example.order.created", "source": "/shop/eu",
        "subject": "user-9", "time": "2026-11-26T15:04:05.123Z", "datacontenttype": "application/json",
        "data": {"order": 9}, "traceparent": "00-abc-def-01"
    })
    .to_string();
    let first = post_raw(&server, &key, Some("application/cloudevents+json"), &[], cloudevent.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    rate_limit_headers(&first);
    let event_id = first.json()["event_id"].as_str().unwrap().to_owned();
    let view = server.call(&key, Method::GET, &format!("/v1/events/{event_id}"), "").await.json();
    assert_eq!(view["type"], "com.example.order.created");
    assert_eq!(view["source"], "/shop/eu");
    assert_eq!(view["subject"], "user-9");
    assert_eq!(view["occurred_at"], "2026-11-26T15:04:05.123Z");
    assert_eq!(view["data"], json!({"order": 9}));
    // Attributes with no event field are kept, in metadata.
    assert_eq!(view["metadata"], json!({"datacontenttype": "application/json", "traceparent": "00-abc-def-01"}));

    let again =
        post_raw(&server, &key, Some("application/cloudevents+json; charset=utf-8"), &[], cloudevent.clone()).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let changed = cloudevent.replace(r#""order":9"#, r#""order":10"#);
    let reply = post_raw(&server, &key, Some("application/cloudevents+json"), &[], changed).await;
    assert_eq!(problem(&reply, 422)["type"], "urn:triggers:problem:idempotency-key-reused");
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cloudevents_are_a_422_naming_cloudevents_attributes() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"id": "1", "type": "a", "source": "s", "data": 1}), vec!["/specversion"]),
        (json!({"specversion": "0.3", "id": "1", "type": "a", "source": "s"}), vec!["/specversion"]),
        (json!({"specversion": "1.0", "type": "a", "source": "s"}), vec!["/id"]),
        (json!({"specversion": "1.0", "id": "", "type": "a", "source": "s"}), vec!["/id"]),
        (json!({"specversion": "1.0", "id": "x".repeat(256), "type": "a", "source": "s"}), vec!["/id"]),
        (json!({"specversion": "1.0", "id": 7, "type": "a", "source": "s"}), vec!["/id"]),
        (json!({"specversion": "1.0", "id": "1", "source": "s"}), vec!["/type"]),
        (json!({"specversion": "1.0", "id": "1", "type": "a b", "source": "s"}), vec!["/type"]),
        (json!({"specversion": "1.0", "id": "1", "type": "a"}), vec!["/source"]),
        (json!({"specversion": "1.0", "id": "1", "type": "a", "source": "s", "time": "soon"}), vec!["/time"]),
        (
            json!({"specversion": "1.0", "id": "1", "type": "a", "source": "s", "data_base64": "AA=="}),
            vec!["/data_base64"],
        ),
        (json!({}), vec!["/specversion", "/id", "/type", "/source"]),
        (json!([]), vec![""]),
    ];
    for (cloudevent, pointers) in cases {
        let reply = post_raw(&server, &key, Some("application/cloudevents+json"), &[], cloudevent.to_string()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{cloudevent}: {:?}", reply.body);
        validation(&reply, &pointers);
    }
    let reply = post_raw(&server, &key, Some("application/cloudevents+json"), &[], "{").await;
    problem(&reply, 400);
    // Data is optional in CloudEvents: its absence is a null payload.
    let minimal = json!({"specversion": "1.0", "id": "min", "type": "a", "source": "s"}).to_string();
    let reply = post_raw(&server, &key, Some("application/cloudevents+json"), &[], minimal).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// POST /v1/events: rate limit
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_a_429_with_retry_after() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer_with(json!({"rate_limit_per_sec": 2})).await;
    let mut accepted = 0;
    // Two events a second pass; a burst of requests is bound to exceed that within one second,
    // however the burst falls across second boundaries (it would need 25 s for 50 requests not to).
    let limited = loop {
        let reply = server.post_event(&key, json!({"type": "a", "data": accepted})).await;
        let (limit, _) = rate_limit_headers(&reply);
        assert_eq!(limit, 2);
        match reply.status {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => break reply,
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
        assert!(accepted < 50, "no 429 after 50 requests at a limit of 2 per second");
    };
    let body = problem(&limited, 429);
    assert_eq!(body["type"], "urn:triggers:problem:rate-limited");
    let retry_after: u64 = limited.header("retry-after").expect("Retry-After on a 429").parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let (_, remaining) = rate_limit_headers(&limited);
    assert_eq!(remaining, 0);
    assert_accepted_total(&server, accepted).await;

    // The limit is the customer's own: another customer is not limited by it.
    let (_, other) = server.new_customer().await;
    let reply = server.post_event(&other, json!({"type": "a", "data": 1})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(rate_limit_headers(&reply).0, 1000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_do_not_spend_the_rate_limit() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, key) = server.new_customer_with(json!({"rate_limit_per_sec": 5})).await;
    let read_only = key_with_scopes(&server, &customer_id, &["events:read"]).await;
    let valid = r#"{"type":"a","data":1}"#;
    // A key without events:write drains nothing, however often it is refused.
    for _ in 0..20 {
        let reply = post_raw(&server, &read_only, Some("application/json"), &[], valid).await;
        problem(&reply, 403);
        assert_eq!(rate_limit_headers(&reply), (5, 5), "a 403 spent the customer's budget");
    }
    // Nor do requests refused for their content type, Idempotency-Key header, size, JSON or fields.
    let refusals = [
        (post_raw(&server, &key, Some("text/plain"), &[], valid).await, 415),
        (post_raw(&server, &key, Some("application/json"), &[("idempotency-key", "")], valid).await, 400),
        (post_raw(&server, &key, Some("application/json"), &[], event_of_size(ONE_MIB + 1)).await, 413),
        (post_raw(&server, &key, Some("application/json"), &[], "{").await, 400),
        (post_raw(&server, &key, Some("application/json"), &[], r#"{"type":"a"}"#).await, 422),
    ];
    for (reply, status) in &refusals {
        problem(reply, *status);
        assert_eq!(rate_limit_headers(reply), (5, 5), "a {status} spent the customer's budget");
    }
    // The customer's own key still has its whole budget: the first event leaves 4 of 5.
    let accepted = post_raw(&server, &key, Some("application/json"), &[], valid).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    assert_eq!(rate_limit_headers(&accepted), (5, 4));
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authenticated_ingest_response_carries_rate_limit_headers() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, key) = server.new_customer().await;
    let read_only = key_with_scopes(&server, &customer_id, &["events:read"]).await;
    let valid = r#"{"type":"a","data":1}"#;
    let idempotent = [("idempotency-key", "same")];
    let replies = [
        post_raw(&server, &key, Some("application/json"), &[], valid).await,
        post_raw(&server, &key, Some("application/json"), &idempotent, valid).await,
        post_raw(&server, &key, Some("application/json"), &idempotent, valid).await,
        post_raw(&server, &key, Some("application/json"), &idempotent, r#"{"type":"b","data":1}"#).await,
        post_raw(&server, &key, Some("application/json"), &[], "{").await,
        post_raw(&server, &key, Some("application/json"), &[], event_of_size(ONE_MIB + 1)).await,
        post_raw(&server, &key, Some("text/plain"), &[], valid).await,
        post_raw(&server, &key, Some("application/json"), &[], r#"{"type":"a"}"#).await,
        post_raw(&server, &key, Some("application/json"), &[("idempotency-key", "")], valid).await,
        post_raw(&server, &read_only, Some("application/json"), &[], valid).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [202, 202, 202, 422, 400, 413, 415, 422, 400, 403]);
    for reply in &replies {
        let (limit, _) = rate_limit_headers(reply);
        assert_eq!(limit, 1000);
    }
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// GET /v1/events/{id}
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_foreign_event_ids_are_the_same_404() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let (_, other_key) = server.new_customer().await;
    let foreign = server.post_event(&other_key, json!({"type": "secret", "data": {"card": "4111"}})).await;
    let foreign_id = foreign.json()["event_id"].as_str().unwrap().to_owned();
    let own = server.post_event(&key, json!({"type": "a", "data": 1})).await;
    let own_id = own.json()["event_id"].as_str().unwrap().to_owned();
    let unknown = format!("evt_{}", "0".repeat(32));
    let long = format!("evt_{}", "a".repeat(10_000));

    let ids = [
        foreign_id.clone(),
        unknown,
        "x".to_owned(),
        "evt_".to_owned(),
        "evt_zz".to_owned(),
        own_id.to_uppercase(),
        own_id.replacen("evt_", "key_", 1),
        own_id.trim_start_matches("evt_").to_owned(),
        format!("{own_id}0"),
        format!("{own_id}%00"),
        "%2e%2e".to_owned(),
        "evt_%27%20OR%201=1".to_owned(),
        long,
    ];
    let mut kinds = Vec::new();
    for id in &ids {
        let reply = server.call(&key, Method::GET, &format!("/v1/events/{id}"), "").await;
        let body = problem(&reply, 404);
        assert!(!String::from_utf8_lossy(&reply.body).contains("4111"));
        kinds.push((body["type"].clone(), body["title"].clone()));
    }
    assert!(kinds.windows(2).all(|pair| pair[0] == pair[1]), "a foreign id must look exactly like a missing one");
    assert_eq!(kinds[0].0, "urn:triggers:problem:not-found");
    // And the owner still reads it, and its own.
    assert_eq!(server.call(&other_key, Method::GET, &format!("/v1/events/{foreign_id}"), "").await.status, 200);
    assert_eq!(server.call(&key, Method::GET, &format!("/v1/events/{own_id}"), "").await.status, 200);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// Subscriptions
// ----------------------------------------------------------------------------------------------

/// `POST /v1/subscriptions` with a raw body.
async fn create_subscription(server: &TestServer, key: &str, body: impl Into<bytes::Bytes>) -> Reply {
    server.call(key, Method::POST, "/v1/subscriptions", body).await
}

/// Every subscription of the key's customer, across pages.
async fn all_subscriptions(server: &TestServer, key: &str) -> Vec<Value> {
    let mut listed = Vec::new();
    let mut path = "/v1/subscriptions?limit=1000".to_owned();
    loop {
        let reply = server.call(key, Method::GET, &path, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let page = reply.json();
        listed.extend(page["subscriptions"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/subscriptions?limit=1000&cursor={cursor}"),
            None => return listed,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_subscription_has_the_contract_shape() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, key) = server.new_customer().await;
    let body = json!({"event_selector": {"type": ["order.created"]}, "webhook_url": "https://example.com/hook"});
    let reply = create_subscription(&server, &key, body.to_string()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let created = reply.json();
    let mut fields: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "customer_id",
            "event_selector",
            "signing_secret",
            "status",
            "updated_at",
            "webhook_url",
            "workflow_id"
        ]
    );
    assert!(uuid::Uuid::parse_str(created["workflow_id"].as_str().unwrap()).is_ok());
    assert_eq!(created["customer_id"], customer_id.as_str());
    assert_eq!(created["event_selector"], json!({"type": ["order.created"]}));
    assert_eq!(created["webhook_url"], "https://example.com/hook");
    assert_eq!(created["status"], "active");
    let secret = created["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > "whsec_".len() + 20, "{secret}");
    assert!(is_rfc3339_millis_utc(created["created_at"].as_str().unwrap()));
    assert_eq!(created["created_at"], created["updated_at"]);

    // With an explicit workflow id and status.
    let workflow_id = uuid::Uuid::new_v4().to_string();
    let body = json!({"workflow_id": workflow_id, "event_selector": {}, "webhook_url": "http://127.0.0.1:9/h",
                      "status": "disabled"});
    let reply = create_subscription(&server, &key, body.to_string()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let explicit = reply.json();
    assert_eq!(explicit["workflow_id"], workflow_id.as_str());
    assert_eq!(explicit["status"], "disabled");
    assert_ne!(explicit["signing_secret"], created["signing_secret"], "every subscription has its own secret");

    // GET by id answers the same subscription.
    let read = server.call(&key, Method::GET, &format!("/v1/subscriptions/{workflow_id}"), "").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), explicit);

    // The same workflow id again is a conflict, and the first subscription is untouched.
    let again =
        json!({"workflow_id": workflow_id, "event_selector": {"type": ["x"]}, "webhook_url": "https://b.example/"});
    let reply = create_subscription(&server, &key, again.to_string()).await;
    assert_eq!(problem(&reply, 409)["type"], "urn:triggers:problem:conflict");
    let read = server.call(&key, Method::GET, &format!("/v1/subscriptions/{workflow_id}"), "").await;
    assert_eq!(read.json(), explicit);
    assert_eq!(all_subscriptions(&server, &key).await.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_customers_may_use_the_same_workflow_id_and_neither_can_tell() {
    let server = TestServer::start(RunOptions::default()).await;
    let (first_id, first) = server.new_customer().await;
    let (second_id, second) = server.new_customer().await;
    let (first_hook, second_hook) = (Receiver::start().await, Receiver::start().await);
    let workflow_id = uuid::Uuid::new_v4().to_string();
    let body = |url: &str| json!({"workflow_id": workflow_id, "event_selector": {}, "webhook_url": url}).to_string();

    let mine = create_subscription(&server, &first, body(&first_hook.url())).await;
    assert_eq!(mine.status, StatusCode::CREATED, "{:?}", mine.body);
    // The second customer learns nothing of the first: its create succeeds like any other.
    let theirs = create_subscription(&server, &second, body(&second_hook.url())).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{:?}", theirs.body);
    assert_eq!(theirs.json()["customer_id"], second_id.as_str());
    assert_eq!(theirs.json()["webhook_url"], second_hook.url());
    // Within one customer the id is still unique.
    problem(&create_subscription(&server, &second, body(&second_hook.url())).await, 409);

    let path = format!("/v1/subscriptions/{workflow_id}");
    let read = server.call(&first, Method::GET, &path, "").await;
    assert_eq!(read.json()["customer_id"], first_id.as_str());
    assert_eq!(read.json()["webhook_url"], first_hook.url());
    assert_eq!(read.json()["signing_secret"], mine.json()["signing_secret"]);
    let read = server.call(&second, Method::GET, &path, "").await;
    assert_eq!(read.json(), theirs.json());
    assert_eq!(all_subscriptions(&server, &first).await, vec![mine.json()]);
    assert_eq!(all_subscriptions(&server, &second).await, vec![theirs.json()]);

    // Each customer's events reach its own endpoint only.
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;
    let event = server.post_event(&first, json!({"type": "a", "data": "first"})).await;
    assert_eq!(event.status, StatusCode::ACCEPTED);
    let event_id = event.json()["event_id"].as_str().unwrap().to_owned();
    server.wait_for_status(&first, &event_id, "delivered", Duration::from_secs(10)).await;
    let hits = first_hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].json()["workflow_id"], workflow_id.as_str());
    assert_eq!(hits[0].json()["data"], "first");
    assert!(second_hook.received().await.is_empty(), "the other customer's endpoint got the event");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_selectors_are_a_422_under_event_selector_and_create_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let url = "https://example.com/hook";
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!(null), vec!["/event_selector"]),
        (json!([]), vec!["/event_selector"]),
        (json!("type = order"), vec!["/event_selector"]),
        (json!(42), vec!["/event_selector"]),
        (json!({"type": "order.created"}), vec!["/event_selector/type"]),
        (json!({"type": []}), vec!["/event_selector/type"]),
        (json!({"type": [["a"]]}), vec!["/event_selector/type/0"]),
        (json!({"data": {"n": [1], "m": 5}}), vec!["/event_selector/data/m"]),
        (json!({"data": {"a/b": true}}), vec!["/event_selector/data/a~1b"]),
        (
            json!({"type": ["a"], "source": null, "subject": []}),
            vec!["/event_selector/source", "/event_selector/subject"],
        ),
    ];
    for (selector, pointers) in cases {
        let body = json!({"event_selector": selector, "webhook_url": url});
        let reply = create_subscription(&server, &key, body.to_string()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{selector}: {:?}", reply.body);
        validation(&reply, &pointers);
    }
    assert_eq!(all_subscriptions(&server, &key).await, Vec::<Value>::new());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_webhook_urls_are_a_422_under_webhook_url_and_create_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let long = format!("https://example.com/{}", "a".repeat(4096));
    let urls = [
        json!("/relative/hook"),
        json!("hook"),
        json!("example.com/hook"),
        json!(""),
        json!("ftp://example.com/hook"),
        json!("file:///etc/passwd"),
        json!("javascript:alert(1)"),
        json!("gopher://example.com:70/"),
        json!("http://"),
        json!("https://"),
        json!("https:///path"),
        json!("https://exa mple.com/"),
        json!("https://example.com/\r\nX-Injected: 1"),
        json!(long),
        json!(42),
        json!(null),
        json!(["https://example.com/"]),
    ];
    for url in urls {
        let body = json!({"event_selector": {}, "webhook_url": url});
        let reply = create_subscription(&server, &key, body.to_string()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {:?}", reply.body);
        validation(&reply, &["/webhook_url"]);
    }
    assert_eq!(all_subscriptions(&server, &key).await, Vec::<Value>::new());
    server.stop().await;
}

/// With private webhooks not allowed (the default outside the embedded mode), every spelling of a
/// loopback, private, link-local or metadata address is refused; public addresses are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_addresses_are_refused_in_every_spelling() {
    let options = RunOptions { allow_private_webhooks: Some(false), ..RunOptions::default() };
    let server = TestServer::start(options).await;
    let (_, key) = server.new_customer().await;
    let private = [
        "http://127.0.0.1/hook",
        "https://127.0.0.1:8443/hook",
        "http://127.9.9.9/",
        "http://localhost/hook",
        "http://LOCALHOST:8080/hook",
        "http://localhost./hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://0.0.0.0/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://10.1/",
        "http://user:pass@127.0.0.1/",
        "http://example.com@169.254.169.254/",
    ];
    for url in private {
        let body = json!({"event_selector": {}, "webhook_url": url});
        let reply = create_subscription(&server, &key, body.to_string()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {:?}", reply.body);
        validation(&reply, &["/webhook_url"]);
    }
    assert_eq!(all_subscriptions(&server, &key).await, Vec::<Value>::new());
    let public = [
        "https://example.com/hook",
        "https://hooks.example.com:8443/a?b=c",
        "https://93.184.216.34/",
        "https://8.8.8.8/",
        "https://172.32.0.1/",
        "https://[2606:4700:4700::1111]/",
        "https://1e100.net/",
        "https://0x.example.com/",
        "https://127.example.com/",
    ];
    for url in public {
        let body = json!({"event_selector": {}, "webhook_url": url});
        let reply = create_subscription(&server, &key, body.to_string()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{url}: {:?}", reply.body);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_invalid_subscription_fields_are_a_422_and_create_nothing() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let url = "https://example.com/hook";
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["/event_selector", "/webhook_url"]),
        (json!({"webhook_url": url}), vec!["/event_selector"]),
        (json!({"event_selector": {}}), vec!["/webhook_url"]),
        (json!({"event_selector": {}, "webhook_url": url, "workflow_id": "wf-1"}), vec!["/workflow_id"]),
        (json!({"event_selector": {}, "webhook_url": url, "workflow_id": 7}), vec!["/workflow_id"]),
        (json!({"event_selector": {}, "webhook_url": url, "status": "paused"}), vec!["/status"]),
        (json!({"event_selector": {}, "webhook_url": url, "status": true}), vec!["/status"]),
        (
            json!({"event_selector": [], "webhook_url": "ftp://x", "workflow_id": "x", "status": 1}),
            vec!["/event_selector", "/webhook_url", "/workflow_id", "/status"],
        ),
        (json!([]), vec![""]),
        (json!("subscription"), vec![""]),
    ];
    for (body, pointers) in cases {
        let reply = create_subscription(&server, &key, body.to_string()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {:?}", reply.body);
        validation(&reply, &pointers);
    }
    assert_eq!(all_subscriptions(&server, &key).await, Vec::<Value>::new());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_hostile_subscription_bodies_are_refused() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let auth = format!("Bearer {key}");
    let valid = json!({"event_selector": {}, "webhook_url": "https://example.com/"}).to_string();

    for body in ["", "{", "not json", r#"{"event_selector": {}, "webhook_url": "https://example.com/",}"#] {
        let reply = create_subscription(&server, &key, body).await;
        assert_eq!(problem(&reply, 400)["type"], "urn:triggers:problem:malformed-request");
    }
    // As deep as fits under the 64 KiB limit of a subscription body.
    let depth = 30_000;
    let nested = format!(
        r#"{{"event_selector": {{"data": {}{}}}, "webhook_url": "https://example.com/"}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    problem(&create_subscription(&server, &key, nested).await, 400);
    assert_alive(&server).await;

    let padding = "x".repeat(64 * 1024);
    let oversized = json!({"event_selector": {"type": [padding]}, "webhook_url": "https://example.com/"});
    let reply = create_subscription(&server, &key, oversized.to_string()).await;
    assert_eq!(problem(&reply, 413)["type"], "urn:triggers:problem:payload-too-large");

    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(content_type) = content_type {
            headers.push(("content-type", content_type));
        }
        let reply = server.send_public(Method::POST, "/v1/subscriptions", &headers, valid.clone()).await;
        assert_eq!(problem(&reply, 415)["type"], "urn:triggers:problem:unsupported-media-type");
    }
    assert_alive(&server).await;
    assert_eq!(all_subscriptions(&server, &key).await, Vec::<Value>::new());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_unknown_and_malformed_subscription_ids_are_the_same_404() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let (_, other_key) = server.new_customer().await;
    let foreign = server.subscribe(&other_key, json!({}), "https://other.example/hook").await;
    let foreign_id = foreign["workflow_id"].as_str().unwrap().to_owned();
    let own = server.subscribe(&key, json!({}), "https://own.example/hook").await;
    let own_id = own["workflow_id"].as_str().unwrap().to_owned();

    let ids = [
        foreign_id.clone(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_owned(),
        format!("{own_id}0"),
        "%00".to_owned(),
        "x".repeat(10_000),
    ];
    let mut kinds = Vec::new();
    for id in &ids {
        let reply = server.call(&key, Method::GET, &format!("/v1/subscriptions/{id}"), "").await;
        let body = problem(&reply, 404);
        assert!(!String::from_utf8_lossy(&reply.body).contains("other.example"));
        kinds.push((body["type"].clone(), body["title"].clone()));
    }
    assert!(kinds.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(kinds[0].0, "urn:triggers:problem:not-found");
    let listed = all_subscriptions(&server, &key).await;
    assert_eq!(listed, vec![own], "a customer lists only its own subscriptions");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_page_with_limit_and_cursor() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let (_, other_key) = server.new_customer().await;
    server.subscribe(&other_key, json!({}), "https://other.example/hook").await;
    let mut created: Vec<String> = Vec::new();
    for i in 0..5 {
        let subscription = server.subscribe(&key, json!({"type": [format!("t{i}")]}), "https://a.example/").await;
        created.push(subscription["workflow_id"].as_str().unwrap().to_owned());
    }

    let mut seen: Vec<String> = Vec::new();
    let mut path = "/v1/subscriptions?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let reply = server.call(&key, Method::GET, &path, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let page = reply.json();
        let items = page["subscriptions"].as_array().unwrap();
        assert!(items.len() <= 2, "limit is honoured");
        seen.extend(items.iter().map(|s| s["workflow_id"].as_str().unwrap().to_owned()));
        pages += 1;
        assert!(pages <= 5, "paging does not end");
        match &page["next_cursor"] {
            Value::String(cursor) => path = format!("/v1/subscriptions?limit=2&cursor={cursor}"),
            Value::Null => break,
            other => panic!("next_cursor must be a string or null, not {other}"),
        }
    }
    assert!(pages >= 3);
    let mut expected = created.clone();
    expected.sort();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a subscription appeared on two pages: {seen:?}");
    assert_eq!(unique, expected);

    // The default page holds them all and says there is no more.
    let reply = server.call(&key, Method::GET, "/v1/subscriptions", "").await;
    assert_eq!(reply.json()["subscriptions"].as_array().unwrap().len(), 5);
    assert_eq!(reply.json()["next_cursor"], Value::Null);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_list_parameters_are_a_422() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    for limit in ["0", "1001", "-1", "abc", "1.5", "", "99999999999999999999999", "%00"] {
        let reply = server.call(&key, Method::GET, &format!("/v1/subscriptions?limit={limit}"), "").await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "limit={limit}: {:?}", reply.body);
        validation(&reply, &["/limit"]);
    }
    for cursor in ["garbage", "", "%ff%fe", &"a".repeat(5000)] {
        let reply = server.call(&key, Method::GET, &format!("/v1/subscriptions?cursor={cursor}"), "").await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "cursor={cursor}: {:?}", reply.body);
        validation(&reply, &["/cursor"]);
    }
    for limit in ["1", "1000"] {
        let reply = server.call(&key, Method::GET, &format!("/v1/subscriptions?limit={limit}"), "").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// Routing and request ids
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_a_404_problem() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let auth = format!("Bearer {key}");
    let long = format!("/{}", "a".repeat(20_000));
    for path in [
        "/",
        "/v1",
        "/v2/events",
        "/v1/event",
        "/V1/EVENTS",
        "/v1/events/x/y",
        "/v1/subscriptions/x/y",
        "//v1/events",
        "/healthz/x",
        "/admin/v1/customers",
        "/%00",
        "/..%2f..%2fetc/passwd",
        long.as_str(),
    ] {
        for method in [Method::GET, Method::POST] {
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            let reply = server.send_public(method.clone(), path, &headers, "").await;
            let body = problem(&reply, 404);
            assert_eq!(body["type"], "urn:triggers:problem:not-found", "{method} {path}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_are_a_405_problem_with_allow() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let auth = format!("Bearer {key}");
    let id = format!("evt_{}", "0".repeat(32));
    let cases = [
        (Method::GET, "/v1/events".to_owned(), "POST"),
        (Method::PUT, "/v1/events".to_owned(), "POST"),
        (Method::DELETE, format!("/v1/events/{id}"), "GET"),
        (Method::POST, format!("/v1/events/{id}"), "GET"),
        (Method::PUT, "/v1/subscriptions".to_owned(), "GET, POST"),
        (Method::DELETE, "/v1/subscriptions".to_owned(), "GET, POST"),
        (Method::POST, "/healthz".to_owned(), "GET"),
        (Method::POST, "/readyz".to_owned(), "GET"),
        (Method::DELETE, "/metrics".to_owned(), "GET"),
        (Method::PUT, "/openapi.json".to_owned(), "GET"),
    ];
    for (method, path, allow) in cases {
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let reply = server.send_public(method.clone(), &path, &headers, "").await;
        let body = problem(&reply, 405);
        assert_eq!(body["type"], "urn:triggers:problem:method-not-allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_echoed_or_generated() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let auth = format!("Bearer {key}");
    let valid = r#"{"type":"a","data":1}"#;
    // (method, path, authorised, content type, body, expected status)
    let cases: Vec<(Method, &str, bool, &str, &str, u16)> = vec![
        (Method::POST, "/v1/events", true, "application/json", valid, 202),
        (Method::POST, "/v1/events", true, "application/json", "{", 400),
        (Method::POST, "/v1/events", false, "application/json", valid, 401),
        (Method::POST, "/v1/events", true, "text/plain", valid, 415),
        (Method::POST, "/v1/events", true, "application/json", "{}", 422),
        (Method::GET, "/v1/events/evt_x", true, "", "", 404),
        (Method::GET, "/v1/events", true, "", "", 405),
        (Method::GET, "/nowhere", false, "", "", 404),
        (Method::GET, "/v1/subscriptions", true, "", "", 200),
        (Method::GET, "/healthz", false, "", "", 200),
        (Method::GET, "/metrics", false, "", "", 200),
        (Method::GET, "/openapi.json", false, "", "", 200),
    ];
    for (method, path, authorised, content_type, body, status) in cases {
        let mut headers = Vec::new();
        if authorised {
            headers.push(("authorization", auth.as_str()));
        }
        if !content_type.is_empty() {
            headers.push(("content-type", content_type));
        }
        let generated_a = server.send_public(method.clone(), path, &headers, body).await;
        let generated_b = server.send_public(method.clone(), path, &headers, body).await;
        headers.push(("x-request-id", "req-7f3a_client.trace:42"));
        let echoed = server.send_public(method.clone(), path, &headers, body).await;
        for reply in [&generated_a, &generated_b, &echoed] {
            assert_eq!(reply.status.as_u16(), status, "{method} {path}: {:?}", reply.body);
        }
        assert_eq!(echoed.header("x-request-id"), Some("req-7f3a_client.trace:42"), "{method} {path}");
        let (a, b) = (generated_a.header("x-request-id"), generated_b.header("x-request-id"));
        assert!(a.is_some_and(|id| !id.is_empty()), "{method} {path} without a generated request id");
        assert_ne!(a, b, "generated request ids must differ per request");
    }
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// Operational endpoints
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints_answer_without_a_key() {
    let server = TestServer::start(RunOptions::default()).await;
    let health = server.send_public(Method::GET, "/healthz", &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = server.send_public(Method::GET, "/readyz", &[], "").await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);

    let (_, key) = server.new_customer().await;
    assert_eq!(server.post_event(&key, json!({"type": "a", "data": 1})).await.status, StatusCode::ACCEPTED);
    assert_eq!(server.post_event(&key, json!({"type": "a"})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let metrics = server.send_public(Method::GET, "/metrics", &[], "").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(text.contains("# TYPE triggers_events_accepted_total counter"), "{text}");
    assert_eq!(counter(&server, "triggers_events_accepted_total").await, 1);
    assert_eq!(counter(&server, "triggers_events_rejected_total").await, 1);

    let openapi = server.send_public(Method::GET, "/openapi.json", &[], "").await;
    assert_eq!(openapi.status, StatusCode::OK);
    assert_eq!(openapi.header("content-type"), Some("application/json"));
    let document = openapi.json();
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", document["openapi"]);
    assert!(document["paths"]["/v1/events"]["post"].is_object());
    server.stop().await;
}

/// Events that a refused request would have written would reach a catch-all subscription; only
/// the accepted marker does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_never_reach_a_subscriber() {
    let server = TestServer::start(RunOptions::default()).await;
    let (customer_id, key) = server.new_customer().await;
    let receiver = common::Receiver::start().await;
    server.subscribe(&key, json!({}), &receiver.url()).await;
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;
    let read_only = key_with_scopes(&server, &customer_id, &["events:read"]).await;

    let valid = r#"{"type":"refused","data":1}"#;
    let refused = [
        post_raw(&server, &key, Some("application/json"), &[], "{").await,
        post_raw(&server, &key, Some("text/plain"), &[], valid).await,
        post_raw(&server, &key, Some("application/json"), &[], r#"{"type":"refused bad","data":1}"#).await,
        post_raw(&server, &key, Some("application/json"), &[], event_of_size(ONE_MIB + 1)).await,
        post_raw(&server, &key, Some("application/json"), &[("idempotency-key", "")], valid).await,
        post_raw(&server, &read_only, Some("application/json"), &[], valid).await,
        post_raw(&server, "tk_unknown", Some("application/json"), &[], valid).await,
    ];
    for reply in &refused {
        assert!(reply.status.is_client_error(), "{:?}", reply.body);
    }
    let marker = server.post_event(&key, json!({"type": "marker", "data": 1})).await;
    let marker_id = marker.json()["event_id"].as_str().unwrap().to_owned();
    server.wait_for_status(&key, &marker_id, "delivered", Duration::from_secs(10)).await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    let ids: Vec<&str> = received.iter().map(|hook| hook.header("webhook-id")).collect();
    assert_eq!(ids, [marker_id.as_str()]);
    assert_accepted_total(&server, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let server = TestServer::start(RunOptions::default()).await;
    let mut stream = TcpStream::connect(server.public).await.unwrap();
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: triggers\r\nContent-Type: application/json\r\n")
        .await
        .unwrap();
    // The server gives a request head 10 s; well after that, the connection must be closed.
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection was still open after 30 s");
    let health = server.http.send(Method::GET, &server.url("/healthz"), &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    server.stop().await;
}
