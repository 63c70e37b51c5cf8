//! The test harness: a real `triggers serve` in-process on port 0 with its own data directory,
//! an HTTP client, webhook receivers that record what they get (one with a fixed answer, one that
//! follows a script), polling, and assertions on problem documents.

#![allow(dead_code)]

use std::future::Future;
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
use triggers::settings::{RunOptions, Settings};

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

    /// Starts a pipeline on a fresh data directory with its resolved settings changed by `tune`:
    /// for what no flag sets, such as the short connection deadlines that hostile-client tests use.
    pub async fn start_tuned(options: RunOptions, tune: impl FnOnce(&mut Settings)) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().to_owned();
        let mut server = Self::start_in_tuned(&path, options, tune).await;
        server._temp = Some(temp);
        server
    }

    /// Starts a pipeline on `data_dir` (which may hold an earlier run's data).
    pub async fn start_in(data_dir: &Path, options: RunOptions) -> Self {
        Self::start_in_tuned(data_dir, options, |_| {}).await
    }

    async fn start_in_tuned(data_dir: &Path, options: RunOptions, tune: impl FnOnce(&mut Settings)) -> Self {
        let admin_token = format!("adm_test_{}", uuid::Uuid::new_v4().simple());
        let options =
            RunOptions { data_dir: Some(data_dir.to_owned()), admin_token: Some(admin_token.clone()), ..options };
        let mut settings = options.resolve().unwrap();
        tune(&mut settings);
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let run = serve::run(settings, Roles::All, public, admin, shutdown.clone());
        let task = tokio::spawn(async move {
            let outcome = run.await;
            // Said at once: a test sees a server that failed to start only as refused connections.
            if let Err(error) = &outcome {
                eprintln!("the test server stopped with an error: {error:#}");
            }
            outcome
        });
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

    /// A request to the public listener with exactly these headers and this raw body.
    pub async fn send_public(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.http.send(method, &self.url(path), headers, body).await
    }

    /// A request to the admin listener with exactly these headers and this raw body.
    pub async fn send_admin(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.http.send(method, &self.admin_url(path), headers, body).await
    }

    /// An admin API call.
    pub async fn admin_call(&self, method: Method, path: &str, body: Value) -> Reply {
        let auth = format!("Bearer {}", self.admin_token);
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        self.send_admin(method, path, &headers, body.to_string()).await
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
        self.send_public(method, path, &headers, body).await
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
        let what = format!("event {event_id} to become {wanted}");
        wait_until(&what, within, || async {
            let reply = self.call(key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
            (reply.status == StatusCode::OK && reply.json()["status"] == wanted).then(|| reply.json())
        })
        .await
    }
}

/// A webhook endpoint on loopback that records every request and answers with a settable status
/// (204 until told otherwise).
#[derive(Clone)]
pub struct Receiver {
    inner: ScriptedReceiver,
    answer: Arc<AtomicU16>,
}

impl Receiver {
    /// Starts a receiver that answers 204.
    pub async fn start() -> Self {
        let answer = Arc::new(AtomicU16::new(204));
        let current = Arc::clone(&answer);
        let inner = ScriptedReceiver::start(move |_| Answer::status(current.load(Ordering::SeqCst))).await;
        Self { inner, answer }
    }

    /// The URL to subscribe with.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// Answers every later request with `status`.
    pub fn answer_with(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub async fn received(&self) -> Vec<Hit> {
        self.inner.hits().await
    }

    /// Waits until at least `count` webhooks arrived, or panics after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Hit> {
        self.inner.wait_for(count, within).await
    }
}

/// How a [`ScriptedReceiver`] answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Answer with this status and these headers.
    Status(u16, Vec<(&'static str, String)>),
    /// Answer with this status after this long.
    Delayed(Duration, u16),
    /// Never answer (the connection is held for a minute, far beyond any attempt timeout).
    Hang,
}

impl Answer {
    /// A plain status.
    pub fn status(code: u16) -> Self {
        Self::Status(code, Vec::new())
    }
}

/// One request a [`ScriptedReceiver`] got.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When it arrived, on the test's clock.
    pub at: Instant,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Hit {
    /// A header as text (empty when missing).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The `webhook-id` header: the event id.
    pub fn webhook_id(&self) -> String {
        self.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

type Script = dyn Fn(usize) -> Answer + Send + Sync;

/// A webhook endpoint on loopback that records every request (with its arrival time) and answers
/// the n-th request (counting from 0, over every event) as its script says.
#[derive(Clone)]
pub struct ScriptedReceiver {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl ScriptedReceiver {
    /// Starts a receiver that answers request `n` with `script(n)`.
    pub async fn start(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self { addr: listener.local_addr().unwrap(), hits: Arc::default() };
        let hits = Arc::clone(&receiver.hits);
        let script: Arc<Script> = Arc::new(script);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (hits, script) = (Arc::clone(&hits), Arc::clone(&script));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let (hits, script) = (Arc::clone(&hits), Arc::clone(&script));
                        async move {
                            let at = Instant::now();
                            let headers = request.headers().clone();
                            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let index = {
                                let mut hits = hits.lock().await;
                                hits.push(Hit { at, headers, body });
                                hits.len() - 1
                            };
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            match script(index) {
                                Answer::Status(code, headers) => {
                                    *response.status_mut() = StatusCode::from_u16(code).unwrap();
                                    for (name, value) in headers {
                                        response.headers_mut().insert(name, value.parse().unwrap());
                                    }
                                }
                                Answer::Delayed(delay, code) => {
                                    tokio::time::sleep(delay).await;
                                    *response.status_mut() = StatusCode::from_u16(code).unwrap();
                                }
                                Answer::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                            }
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

    /// Every request so far, in arrival order.
    pub async fn hits(&self) -> Vec<Hit> {
        self.hits.lock().await.clone()
    }

    /// Waits until at least `count` requests arrived, or panics after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Hit> {
        let what = format!("{count} requests at {}", self.url());
        wait_until(&what, within, || async {
            let hits = self.hits().await;
            (hits.len() >= count).then_some(hits)
        })
        .await
    }
}

/// Polls `probe` every 50 ms until it yields a value; panics naming `what` after `within`.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
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
