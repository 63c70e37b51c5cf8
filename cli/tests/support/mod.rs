//! Helpers for the pipeline tests beyond the shared harness in `common`: a webhook endpoint whose
//! answer depends on the request (fail first, then succeed; send headers; hang), and polling.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

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
