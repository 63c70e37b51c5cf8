//! One webhook attempt against endpoints that misbehave or live where webhooks may not go: an
//! endless answer body, and host names that resolve to private addresses.

mod common;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{Endpoint, PATIENCE};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use triggers_schemas::{
    CustomerId, EventId, NewEvent, StreamRecord, Subscription, SubscriptionStatus, Timestamp, WorkflowId, webhook,
};
use triggers_stream_consumer::delivery::{Deliverer, MAX_ANSWER_BODY, Resolve, SystemResolver, Verdict};

fn record() -> StreamRecord {
    StreamRecord {
        event_id: EventId::generate(),
        customer_id: CustomerId::generate(),
        received_at: Timestamp::now(),
        event: NewEvent::from_json(json!({"type": "order.created", "data": {"n": 1}}), "").unwrap(),
    }
}

fn subscription_at(url: &str) -> Subscription {
    Subscription {
        workflow_id: WorkflowId::generate(),
        customer_id: CustomerId::generate(),
        event_selector: json!({}),
        webhook_url: url.to_owned(),
        status: SubscriptionStatus::Active,
        signing_secret: webhook::generate_secret(),
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

/// An endpoint that answers `200` and then streams a chunked body that never ends, until the
/// connection breaks; it reports how many body bytes it managed to write.
async fn endless_body_endpoint() -> (String, tokio::sync::oneshot::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (report, written) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 64 * 1024];
        let _ = socket.read(&mut request).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        let mut total = 0usize;
        // Bounded, so that a client that never lets go fails the test instead of filling the disk.
        while total < 1 << 30 {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            total += 0x4000;
        }
        let _ = report.send(total);
    });
    (url, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_body_is_cut_and_the_attempt_keeps_its_status() {
    let (url, written) = endless_body_endpoint().await;
    let deliverer = Deliverer::new(Duration::from_secs(10), true, Arc::new(SystemResolver));
    let attempt = deliverer.attempt(&subscription_at(&url), &record()).await;
    assert_eq!(attempt.outcome.status_code, Some(200), "{attempt:?}");
    assert_eq!(attempt.verdict, Verdict::Delivered);
    assert_eq!(attempt.outcome.error, None);

    // The connection was dropped, not drained: the endpoint's writes fail once the socket buffers
    // are full, after a few MiB at most rather than the gigabyte it would send to a reader.
    let written = tokio::time::timeout(PATIENCE, written).await.expect("the connection was never closed").unwrap();
    assert!(written >= MAX_ANSWER_BODY, "the endpoint wrote only {written} bytes");
    assert!(written < 64 << 20, "{written} bytes were taken from the endpoint");
}

/// A resolver the test controls: each host answers the addresses it is given; every lookup is
/// counted.
#[derive(Default)]
struct ControlledResolver {
    answers: HashMap<String, Vec<IpAddr>>,
    lookups: Mutex<HashMap<String, usize>>,
}

impl ControlledResolver {
    fn answering(answers: &[(&str, &[&str])]) -> Self {
        let answers = answers
            .iter()
            .map(|(host, ips)| ((*host).to_owned(), ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect();
        Self { answers, lookups: Mutex::default() }
    }

    fn lookups(&self, host: &str) -> usize {
        self.lookups.lock().unwrap().get(host).copied().unwrap_or(0)
    }
}

#[async_trait]
impl Resolve for ControlledResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        *self.lookups.lock().unwrap().entry(host.to_owned()).or_default() += 1;
        self.answers
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no such host {host}")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_resolve_to_private_addresses_are_refused_without_connecting() {
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let port = endpoint.addr.port();
    let resolver = Arc::new(ControlledResolver::answering(&[
        ("loopback.test", &["127.0.0.1"]),
        // One public address does not make up for a private one: the connector could pick either.
        ("mixed.test", &["93.184.216.34", "127.0.0.1"]),
        ("metadata.test", &["169.254.169.254"]),
        ("ec2-metadata.test", &["fd00:ec2::254"]),
        ("cgnat.test", &["100.64.1.1"]),
        ("nat64.test", &["64:ff9b::7f00:1"]),
        ("sixtofour.test", &["2002:7f00:1::1"]),
        ("reserved.test", &["240.0.0.1"]),
        ("benchmark.test", &["198.18.0.1"]),
        ("mapped.test", &["::ffff:10.0.0.1"]),
    ]));
    let deliverer = Deliverer::new(Duration::from_secs(5), false, resolver.clone());
    let refused_hosts = [
        "loopback.test",
        "mixed.test",
        "metadata.test",
        "ec2-metadata.test",
        "cgnat.test",
        "nat64.test",
        "sixtofour.test",
        "reserved.test",
        "benchmark.test",
        "mapped.test",
        // Literal addresses and loopback names, which never reach a resolver.
        "127.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "localhost",
        "localhost.localdomain",
    ];
    for host in refused_hosts {
        let attempt = deliverer.attempt(&subscription_at(&format!("http://{host}:{port}/hook")), &record()).await;
        assert_eq!(attempt.outcome.status_code, None, "{host}: {attempt:?}");
        assert_eq!(attempt.verdict, Verdict::Retry { retry_after: None }, "{host}");
        let error = attempt.outcome.error.unwrap_or_default();
        assert!(error.contains("refused"), "{host}: {error}");
        assert!(
            error.contains(host.trim_start_matches('[').trim_end_matches(']')) || error.contains("resolves to"),
            "{host}: {error}"
        );
    }
    assert!(endpoint.hits.lock().unwrap().is_empty(), "a refused host was connected to");
    assert_eq!(resolver.lookups("mixed.test"), 1);

    // The system resolver in the embedded mode with private webhooks off refuses loopback names too.
    let system = Deliverer::new(Duration::from_secs(5), false, Arc::new(SystemResolver));
    for host in ["localhost", "localhost.localdomain", "127.0.0.1"] {
        let attempt = system.attempt(&subscription_at(&format!("http://{host}:{port}/hook")), &record()).await;
        assert_eq!(attempt.outcome.status_code, None, "{host}: {attempt:?}");
        assert!(attempt.outcome.error.unwrap_or_default().contains("refused"), "{host}");
    }
    assert!(endpoint.hits.lock().unwrap().is_empty(), "a refused host was connected to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_connects_to_the_address_that_was_checked() {
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let port = endpoint.addr.port();
    // `hook.test` exists for this resolver only: reaching the endpoint proves the connection went
    // to the address the checked resolver handed over, with no lookup of its own.
    let resolver = Arc::new(ControlledResolver::answering(&[("hook.test", &["127.0.0.1"])]));
    let deliverer = Deliverer::new(Duration::from_secs(5), true, resolver.clone());
    let attempt = deliverer.attempt(&subscription_at(&format!("http://hook.test:{port}/hook")), &record()).await;
    assert_eq!(attempt.outcome.status_code, Some(204), "{attempt:?}");
    assert_eq!(endpoint.hits.lock().unwrap().len(), 1);
    assert_eq!(resolver.lookups("hook.test"), 1, "one lookup, checked and used");
    let unknown = deliverer.attempt(&subscription_at(&format!("http://nowhere.test:{port}/hook")), &record()).await;
    assert!(unknown.outcome.error.unwrap_or_default().contains("no such host nowhere.test"));
}

/// Counts connections, so that a test can see which attempts reused one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_answer_body_leaves_the_connection_reusable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                    let _ = http_body_util::BodyExt::collect(request.into_body()).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"thanks"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    let deliverer = Deliverer::new(Duration::from_secs(5), true, Arc::new(SystemResolver));
    for _ in 0..3 {
        let attempt = deliverer.attempt(&subscription_at(&url), &record()).await;
        assert_eq!(attempt.outcome.status_code, Some(200));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
