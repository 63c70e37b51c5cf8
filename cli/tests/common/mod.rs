//! The test harness: a real `triggers serve` in-process on port 0 with its own data directory,
//! an HTTP client, and a webhook receiver that records what it gets.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use triggers::serve::{self, Roles};
use triggers::settings::RunOptions;

/// How long the consumer may take to see a new subscription (it reloads every second).
pub const SUBSCRIPTION_PROPAGATION: Duration = Duration::from_millis(1_300);

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A small HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

impl HttpClient {
    /// Sends a request with the given headers and body.
    pub async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.client.request(request.body(Full::new(body.into())).unwrap()).await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body read").to_bytes();
        Reply { status, headers, body }
    }
}

/// A running pipeline.
pub struct TestServer {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub admin_token: String,
    pub data_dir: PathBuf,
    pub http: HttpClient,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a pipeline on a fresh data directory.
    pub async fn start(options: RunOptions) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().to_owned();
        let mut server = Self::start_in(&path, options).await;
        server._temp = Some(temp);
        server
    }

    /// Starts a pipeline on `data_dir` (which may hold an earlier run's data).
    pub async fn start_in(data_dir: &Path, options: RunOptions) -> Self {
        let admin_token = format!("adm_test_{}", uuid::Uuid::new_v4().simple());
        let options =
            RunOptions { data_dir: Some(data_dir.to_owned()), admin_token: Some(admin_token.clone()), ..options };
        let settings = options.resolve().unwrap();
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve::run(settings, Roles::All, public, admin, shutdown.clone()));
        Self {
            public: public_addr,
            admin: admin_addr,
            admin_token,
            data_dir: data_dir.to_owned(),
            http: HttpClient::default(),
            shutdown,
            task,
            _temp: None,
        }
    }

    /// Shuts down gracefully and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// A URL on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// An admin API call.
    pub async fn admin_call(&self, method: Method, path: &str, body: Value) -> Reply {
        let auth = format!("Bearer {}", self.admin_token);
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        self.http.send(method, &self.admin_url(path), &headers, body.to_string()).await
    }

    /// Creates a customer and an API key with every scope; returns (customer id, API key).
    pub async fn new_customer(&self) -> (String, String) {
        self.new_customer_with(json!({})).await
    }

    /// Creates a customer from `body` and an API key with every scope.
    pub async fn new_customer_with(&self, body: Value) -> (String, String) {
        let customer = self.admin_call(Method::POST, "/admin/v1/customers", body).await;
        assert_eq!(customer.status, StatusCode::CREATED, "{:?}", customer.body);
        let id = customer.json()["customer_id"].as_str().unwrap().to_owned();
        let key = self.admin_call(Method::POST, &format!("/admin/v1/customers/{id}/api-keys"), json!({})).await;
        assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
        (id, key.json()["api_key"].as_str().unwrap().to_owned())
    }

    /// A public API call with an API key and a JSON body.
    pub async fn call(&self, key: &str, method: Method, path: &str, body: impl Into<Bytes>) -> Reply {
        let auth = format!("Bearer {key}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        self.http.send(method, &self.url(path), &headers, body).await
    }

    /// Creates a subscription; returns it (with its signing secret). Does not wait for it to
    /// reach the consumer: see [`SUBSCRIPTION_PROPAGATION`].
    pub async fn subscribe(&self, key: &str, selector: Value, webhook_url: &str) -> Value {
        let body = json!({"event_selector": selector, "webhook_url": webhook_url});
        let reply = self.call(key, Method::POST, "/v1/subscriptions", body.to_string()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.json()
    }

    /// Posts one event; returns the reply.
    pub async fn post_event(&self, key: &str, event: Value) -> Reply {
        self.call(key, Method::POST, "/v1/events", event.to_string()).await
    }

    /// Polls `GET /v1/events/{id}` until its status is `wanted`, or panics after `within`.
    pub async fn wait_for_status(&self, key: &str, event_id: &str, wanted: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let reply = self.call(key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
            if reply.status == StatusCode::OK && reply.json()["status"] == wanted {
                return reply.json();
            }
            assert!(Instant::now() < deadline, "event {event_id} never became {wanted}: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One webhook the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A webhook endpoint on loopback that records every request and answers with a settable status.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<AtomicU16>,
}

impl Receiver {
    /// Starts a receiver that answers 204.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            answer: Arc::new(AtomicU16::new(204)),
        };
        let shared = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let shared = shared.clone();
                        async move {
                            let headers = request.headers().clone();
                            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            shared.received.lock().await.push(Received { headers, body });
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() =
                                StatusCode::from_u16(shared.answer.load(Ordering::SeqCst)).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        receiver
    }

    /// The URL to subscribe with.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers every later request with `status`.
    pub fn answer_with(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// Waits until at least `count` webhooks arrived, or panics after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received.lock().await.clone();
            if received.len() >= count {
                return received;
            }
            assert!(Instant::now() < deadline, "only {} of {count} webhooks arrived", received.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Text that must never show up in an error body: stack traces and internal error messages.
pub const INTERNAL_LEAKS: [&str; 8] =
    ["panicked", "backtrace", ".rs:", "StoreError", "fjall", "rmp_serde", "Unavailable(", "called `Result::unwrap"];

/// Asserts that `reply` is an RFC 9457 problem document with `status`, and returns it.
#[track_caller]
pub fn problem(reply: &Reply, status: u16) -> Value {
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status.as_u16(), status, "unexpected status; body: {text}");
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "body: {text}");
    let body = reply.json();
    let kind = body["type"].as_str().unwrap_or_else(|| panic!("problem without a type: {text}"));
    assert!(kind.starts_with("urn:triggers:problem:"), "type is not a stable URN: {kind}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "problem without a title: {text}");
    assert_eq!(body["status"], status, "status member differs from the HTTP status: {text}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "problem without a detail: {text}");
    assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()), "problem without x-request-id");
    for leak in INTERNAL_LEAKS {
        assert!(!text.contains(leak), "the problem leaks internals ({leak}): {text}");
    }
    body
}

/// Asserts a 422 validation problem whose `errors` name exactly `pointers` (in any order).
#[track_caller]
pub fn validation(reply: &Reply, pointers: &[&str]) -> Value {
    let body = problem(reply, 422);
    assert_eq!(body["type"], "urn:triggers:problem:validation-failed");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("422 without errors: {body}"));
    let mut got: Vec<&str> = errors
        .iter()
        .map(|error| {
            assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()), "error without detail: {error}");
            let pointer = error["pointer"].as_str().unwrap_or_else(|| panic!("error without pointer: {error}"));
            assert!(pointer.is_empty() || pointer.starts_with('/'), "not a JSON pointer: {pointer:?}");
            pointer
        })
        .collect();
    got.sort_unstable();
    let mut wanted = pointers.to_vec();
    wanted.sort_unstable();
    assert_eq!(got, wanted, "pointers of {body}");
    body
}

/// Asserts that the server still answers `/healthz` (after a hostile request).
pub async fn assert_alive(server: &TestServer) {
    let reply = server.http.send(Method::GET, &server.url("/healthz"), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK, "the server stopped answering /healthz");
}
