//! The contract's "Connections" paragraph, tried as a hostile client would: connections that send
//! nothing, half a request head, a trickle, or go silent after a response are closed once the head
//! deadline passes (HTTP/1.1 and HTTP/2 alike); a stalled body ends its request with `408`; and a
//! listener holds at most `--max-connections` connections, leaving the rest waiting, not refused.
//!
//! The deadlines are shortened here (the contract's 10 s would make each test wait that long); what
//! is checked is that each deadline is enforced, counted from the right moment.

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestServer, assert_alive};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use triggers::settings::{RunOptions, Settings};

/// The head deadline most tests run with.
const HEAD_TIMEOUT: Duration = Duration::from_millis(500);
/// The body stall deadline most tests run with: longer than the head deadline, so that a request
/// whose body is being waited for is seen not to count as an idle connection.
const BODY_STALL_TIMEOUT: Duration = Duration::from_millis(1_500);
/// How long past a deadline the server may take to act on it before a test gives up: generous,
/// since these tests check that the deadlines are enforced, not how fast.
const SLACK: Duration = Duration::from_secs(10);

/// Short connection deadlines, and `max_connections` connections per listener.
fn tuned(head: Duration, body: Duration, max_connections: u32) -> impl FnOnce(&mut Settings) {
    move |settings| {
        settings.connections.head_timeout = head;
        settings.connections.body_stall_timeout = body;
        settings.connections.max_connections = max_connections;
    }
}

async fn start(head: Duration) -> TestServer {
    TestServer::start_tuned(RunOptions::default(), tuned(head, BODY_STALL_TIMEOUT, 10_000)).await
}

/// Reads until the server closes the connection; `None` if it has not within `within`. Everything
/// the server sent meanwhile is returned.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// One HTTP/1.1 response off a kept-alive connection: its head and its body (by Content-Length).
struct RawResponse {
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn status(&self) -> u16 {
        self.head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
                let length: usize = RawResponse { head: head.clone(), body: Vec::new() }
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if bytes.len() >= end + 4 + length {
                    return RawResponse { head, body: bytes[end + 4..end + 4 + length].to_vec() };
                }
            }
            let read = stream.read(&mut buffer).await.expect("reading a response");
            assert!(read > 0, "the connection closed before a whole response: {:?}", String::from_utf8_lossy(&bytes));
            bytes.extend_from_slice(&buffer[..read]);
        }
    };
    tokio::time::timeout(SLACK, read).await.expect("a response")
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: triggers\r\nx-request-id: kept-alive\r\n\r\n";

// ----------------------------------------------------------------------------------------------
// The head deadline, HTTP/1.1
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_heads_are_all_closed_at_the_head_deadline() {
    let server = start(HEAD_TIMEOUT).await;
    // As the review tried it: many connections at once, half silent and half with half a head.
    let mut clients = Vec::new();
    for n in 0..60 {
        let addr = server.public;
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            if n % 2 == 1 {
                stream.write_all(b"POST /v1/events HTTP/1.1\r\nHost: triggers\r\nContent-Type: app").await.unwrap();
            }
            closed_within(&mut stream, HEAD_TIMEOUT + SLACK).await
        }));
    }
    for (n, client) in clients.into_iter().enumerate() {
        let received = client.await.unwrap();
        let received = received.unwrap_or_else(|| panic!("connection {n} was still open well past the head deadline"));
        assert!(
            received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&received)
        );
    }
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_trickled_byte_by_byte_is_closed_at_the_head_deadline() {
    let server = start(HEAD_TIMEOUT).await;
    let stream = TcpStream::connect(server.public).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Sending keeps the connection busy but never completes a head: "whatever it sent before".
    let trickle = tokio::spawn(async move {
        writer.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await?;
        loop {
            writer.write_all(b"a").await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(HEAD_TIMEOUT + SLACK, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a trickling client held its connection for {:?}", started.elapsed());
    // The writer fails once the server is gone (the first write after the close may still land).
    let ended = tokio::time::timeout(SLACK, trickle).await;
    assert!(ended.is_ok_and(|result| result.unwrap().is_err()), "the trickle was still being accepted");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_gets_a_new_head_deadline_after_each_response_then_is_closed() {
    // Long enough that the waits below sit clearly inside each deadline, whatever the scheduling.
    let head_timeout = Duration::from_secs(2);
    let wait = Duration::from_millis(1_200);
    let server = start(head_timeout).await;
    let mut stream = TcpStream::connect(server.public).await.unwrap();
    // Two requests, each sent 1.2 s after the previous event: 2.4 s after accept, the second is
    // still served, because its deadline ran from the first response, not from accept.
    for _ in 0..2 {
        tokio::time::sleep(wait).await;
        stream.write_all(HEALTHZ).await.unwrap();
        let response = read_response(&mut stream).await;
        assert_eq!(response.status(), 200, "{}", response.head);
        assert_eq!(response.header("x-request-id"), Some("kept-alive"));
        assert_eq!(response.body, br#"{"status":"ok"}"#);
    }
    // Then silence: closed once the deadline after the last response has passed.
    let closed = closed_within(&mut stream, head_timeout + SLACK).await;
    assert_eq!(closed.as_deref(), Some(&b""[..]), "the kept-alive connection was never closed");
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// The head deadline, HTTP/2
// ----------------------------------------------------------------------------------------------

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_sends_nothing_after_the_preface_is_closed() {
    let server = start(HEAD_TIMEOUT).await;
    let mut stream = TcpStream::connect(server.public).await.unwrap();
    stream.write_all(HTTP2_PREFACE).await.unwrap();
    let closed = closed_within(&mut stream, HEAD_TIMEOUT + SLACK).await;
    assert!(closed.is_some(), "an HTTP/2 connection without a request was held open");
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_after_its_last_response() {
    let server = start(HEAD_TIMEOUT).await;
    let stream = TcpStream::connect(server.public).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/healthz", server.public))
        .header("x-request-id", "over-h2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("x-request-id").unwrap(), "over-h2");
    response.into_body().collect().await.unwrap();
    // Idle from here on: the server ends the connection (GOAWAY, then close).
    let ended = tokio::time::timeout(HEAD_TIMEOUT + SLACK, connection).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection was held open");
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// Stalled bodies
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_ends_the_request_with_a_408_problem() {
    // The head deadline is shorter than the stall deadline: a request waiting for its body is busy,
    // not idle, and must get its 408 rather than a closed connection.
    let server = start(HEAD_TIMEOUT).await;
    let (_, key) = server.new_customer().await;
    let mut stream = TcpStream::connect(server.public).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: triggers\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nx-request-id: stalled-body\r\n\r\n{{\"type\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    assert_eq!(response.status(), 408, "{}", response.head);
    assert_eq!(response.header("content-type"), Some("application/problem+json"));
    assert_eq!(response.header("x-request-id"), Some("stalled-body"));
    assert_eq!(response.header("connection"), Some("close"));
    let problem: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(problem["status"], 408);
    assert_eq!(problem["type"], "urn:triggers:problem:request-timeout");
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    // The rest of that body can never be told from a next request: the connection is closed.
    assert!(closed_within(&mut stream, SLACK).await.is_some(), "the connection stayed open after a 408");

    // Nothing was written, and the key's budget was not spent on it.
    let metrics = server.send_public(Method::GET, "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.lines().any(|line| line == "triggers_events_accepted_total 0"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_http2_body_ends_its_stream_with_a_408_problem() {
    let server = start(HEAD_TIMEOUT).await;
    let (_, key) = server.new_customer().await;
    let stream = TcpStream::connect(server.public).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let (mut body, frames) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    body.try_send(Ok(Frame::data(Bytes::from_static(b"{\"type\":")))).unwrap();
    let request = http::Request::post(format!("http://{}/v1/events", server.public))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("x-request-id", "stalled-h2")
        .body(StreamBody::new(frames))
        .unwrap();
    let response = tokio::time::timeout(BODY_STALL_TIMEOUT + SLACK, sender.send_request(request))
        .await
        .expect("an answer to a stalled body")
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(response.headers().get("x-request-id").unwrap(), "stalled-h2");
    assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
    drop(body);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------------
// --max-connections
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_listener_waits_for_a_free_slot() {
    // The head deadline is far beyond the test, so that only the cap decides who is served.
    let server =
        TestServer::start_tuned(RunOptions::default(), tuned(Duration::from_secs(60), BODY_STALL_TIMEOUT, 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.public).await.unwrap();
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_response(&mut stream).await.status(), 200);
        held.push(stream);
    }
    // The third connects (the kernel's backlog takes it) but is not served while both are open.
    let mut third = TcpStream::connect(server.public).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buffer)).await;
    assert!(early.is_err(), "a connection beyond the cap was served (or refused): {early:?}");
    // The cap is per listener: the admin API still answers.
    let admin = server.admin_call(Method::POST, "/admin/v1/customers", serde_json::json!({})).await;
    assert_eq!(admin.status, StatusCode::CREATED);

    // One held connection closes: the waiting one is accepted and answered.
    drop(held.remove(0));
    let response = read_response(&mut third).await;
    assert_eq!(response.status(), 200, "{}", response.head);
    assert_eq!(response.header("x-request-id"), Some("kept-alive"));
    server.stop().await;
}
