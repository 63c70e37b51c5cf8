//! What the stream tests share: the emulator's endpoint, Kinesis clients, test streams that delete
//! themselves, and a faulting proxy the test owns, for conditions moto cannot produce.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use triggers_stream::kinesis::create_if_missing;

/// The environment variable that names the moto (or Kinesis) endpoint for the Kinesis tests.
pub const ENDPOINT_VARIABLE: &str = "TRIGGERS_TEST_AWS_ENDPOINT";

/// The endpoint the Kinesis tests run against. Without one, they are skipped on a developer's
/// machine, but fail under CI, where a silently skipped suite would hide breakage.
pub fn aws_test_endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(endpoint),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{ENDPOINT_VARIABLE} is unset under CI: start moto and point {ENDPOINT_VARIABLE} at it")
        }
        _ => {
            eprintln!("skipped: {ENDPOINT_VARIABLE} is unset, so the Kinesis stream tests do not run");
            None
        }
    }
}

/// A Kinesis client for `endpoint`, with test credentials and the SDK's default configuration
/// otherwise (so no operation timeouts of its own: the adapter must bring them).
pub async fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    aws_sdk_kinesis::Client::new(&config)
}

/// A Kinesis stream made for one test under a unique name, deleted when this guard drops: at the
/// end of the test, and while a failing test unwinds. Against a long-lived emulator, streams left
/// behind would soon exhaust its shard limit.
pub struct TestStream {
    /// The stream's name.
    pub name: String,
    endpoint: String,
}

impl TestStream {
    /// Creates a stream of `shard_count` shards at `endpoint` and waits until it is active.
    pub async fn create(endpoint: &str, shard_count: u32) -> Self {
        // The guard exists before the stream does, so that a creation failing half-way is cleaned
        // up too.
        let stream = Self { name: format!("triggers-test-{}", uuid::Uuid::new_v4()), endpoint: endpoint.to_owned() };
        let client = kinesis_client(endpoint).await;
        create_if_missing(&client, &stream.name, shard_count).await.expect("create the Kinesis stream");
        stream
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (endpoint, name) = (self.endpoint.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be the one unwinding: a thread with a
        // runtime of its own deletes the stream.
        let deleted = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("runtime: {error}"))?;
            runtime.block_on(async {
                let client = kinesis_client(&endpoint).await;
                let deleted = client.delete_stream().stream_name(&name).enforce_consumer_deletion(true).send().await;
                match deleted {
                    Ok(_) => Ok(()),
                    Err(error) => Err(format!("{}", aws_sdk_kinesis::error::DisplayErrorContext(error))),
                }
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the deleting thread panicked".to_owned()));
        if let Err(error) = deleted {
            // A failing test is already reported; a passing one must not leave its stream behind.
            if std::thread::panicking() {
                eprintln!("could not delete test stream {}: {error}", self.name);
            } else {
                panic!("could not delete test stream {}: {error}", self.name);
            }
        }
    }
}

/// A service error the proxy answers in the upstream's place.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// The HTTP status.
    pub status: u16,
    /// The AWS error code (`__type`).
    pub code: &'static str,
}

impl Fault {
    /// What Kinesis answers for a stream or shard it does not know.
    pub const NOT_FOUND: Self = Self { status: 400, code: "ResourceNotFoundException" };
    /// A failure on the service's side.
    pub const INTERNAL: Self = Self { status: 500, code: "InternalFailure" };
}

/// One call the proxy holds: it reached the upstream, whose answer waits until [`Hold::release`].
#[derive(Default)]
pub struct Hold {
    answered: Notify,
    released: Notify,
}

impl Hold {
    /// Waits until the upstream has answered the held call.
    pub async fn answered_upstream(&self) {
        self.answered.notified().await;
    }

    /// Lets the held answer go to the caller.
    pub fn release(&self) {
        self.released.notify_one();
    }
}

#[derive(Default)]
struct Script {
    /// Per operation: how many more calls to answer with which fault.
    faults: HashMap<String, (usize, Fault)>,
    /// Per operation: the next call to hold.
    holds: HashMap<String, Arc<Hold>>,
}

/// An HTTP proxy in front of the emulator that, per Kinesis operation (its `X-Amz-Target`), passes
/// calls through, answers them with a fault, or holds the upstream's answer until the test lets
/// it go.
pub struct FaultProxy {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port, in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("the proxy needs an http://ip:port upstream, not {upstream}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let script = Arc::new(Mutex::new(Script::default()));
        let accepting = Arc::clone(&script);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let script = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let script = Arc::clone(&script);
                        async move { Ok::<_, Infallible>(proxy(upstream, &script, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self { addr, script, task }
    }

    /// The proxy's endpoint, for a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `times` calls of `operation` (e.g. `GetShardIterator`) with `fault`,
    /// without passing them on.
    pub fn fail(&self, operation: &str, times: usize, fault: Fault) {
        self.script.lock().unwrap().faults.insert(operation.to_owned(), (times, fault));
    }

    /// Passes every call of `operation` through again.
    pub fn pass(&self, operation: &str) {
        self.script.lock().unwrap().faults.remove(operation);
    }

    /// Holds the upstream's answer to the next call of `operation` until the test releases it.
    pub fn hold_next(&self, operation: &str) -> Arc<Hold> {
        let hold = Arc::new(Hold::default());
        self.script.lock().unwrap().holds.insert(operation.to_owned(), Arc::clone(&hold));
        hold
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Step {
    Fail(Fault),
    Hold(Arc<Hold>),
    Pass,
}

async fn proxy(
    upstream: SocketAddr,
    script: &Mutex<Script>,
    request: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let step = {
        let mut script = script.lock().unwrap();
        if let Some((remaining, fault)) = script.faults.get_mut(&operation) {
            let fault = *fault;
            *remaining -= 1;
            if *remaining == 0 {
                script.faults.remove(&operation);
            }
            Step::Fail(fault)
        } else if let Some(hold) = script.holds.remove(&operation) {
            Step::Hold(hold)
        } else {
            Step::Pass
        }
    };
    match step {
        Step::Fail(fault) => fault_response(&operation, fault),
        Step::Pass => forward(upstream, request).await,
        Step::Hold(hold) => {
            let response = forward(upstream, request).await;
            hold.answered.notify_one();
            hold.released.notified().await;
            response
        }
    }
}

fn fault_response(operation: &str, fault: Fault) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": fault.code, "message": format!("{operation}: injected by the test proxy")});
    http::Response::builder()
        .status(fault.status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("fault response")
}

async fn forward(upstream: SocketAddr, request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let bad_gateway = |what: &str| {
        http::Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(format!("test proxy: {what}"))))
            .expect("502 response")
    };
    let (mut parts, body) = request.into_parts();
    strip_framing(&mut parts.headers);
    let Ok(body) = body.collect().await.map(http_body_util::Collected::to_bytes) else {
        return bad_gateway("reading the request body");
    };
    let Ok(socket) = TcpStream::connect(upstream).await else { return bad_gateway("connecting upstream") };
    let Ok((mut sender, connection)) = hyper::client::conn::http1::handshake(TokioIo::new(socket)).await else {
        return bad_gateway("handshake upstream");
    };
    tokio::spawn(connection);
    let Ok(response) = sender.send_request(http::Request::from_parts(parts, Full::new(body))).await else {
        return bad_gateway("sending upstream");
    };
    let (mut parts, body) = response.into_parts();
    strip_framing(&mut parts.headers);
    match body.collect().await {
        Ok(collected) => http::Response::from_parts(parts, Full::new(collected.to_bytes())),
        Err(_) => bad_gateway("reading the upstream answer"),
    }
}

/// Drops the framing headers of a message whose body is passed on whole: hyper frames it anew.
fn strip_framing(headers: &mut http::HeaderMap) {
    headers.remove(http::header::CONTENT_LENGTH);
    headers.remove(http::header::TRANSFER_ENCODING);
}
