//! The real binary killed with SIGKILL in the middle of a stream of events, then restarted on the
//! same data directory: every event that was answered `202` reaches its endpoint.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Answer, HttpClient, SUBSCRIPTION_PROPAGATION, ScriptedReceiver};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Concurrent clients posting events.
const POSTERS: usize = 4;
/// Events accepted before the kill: enough that the kill lands mid-stream, with deliveries and
/// checkpoints under way.
const ACCEPTED_BEFORE_KILL: usize = 1_000;

/// A `triggers serve` child process; killed (SIGKILL) when dropped, so a failing test leaves no
/// process behind. Its log is printed if the test fails while it runs.
struct ServerProcess {
    child: Child,
    public: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    fn spawn(data_dir: &Path, admin_token: &str, log: PathBuf) -> Self {
        let (public, admin) = (free_port(), free_port());
        let log_file = File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_triggers"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(public.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .env("TRIGGERS_ADMIN_TOKEN", admin_token)
            .env_remove("TRIGGERS_CONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("the triggers binary starts");
        Self { child, public, admin, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Waits until `/healthz` answers 200, or panics (with the log) if the process exits or takes
    /// longer than 30 s.
    async fn wait_until_up(
        &mut self,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("triggers exited with {status} before it was up:\n{}", self.log_text());
            }
            let request = http::Request::get(self.url("/healthz")).body(Full::new(Bytes::new())).unwrap();
            if let Ok(response) = client.request(request).await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "triggers did not come up within 30 s:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, no flush, no lease release.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn webhook_ids(receiver: &ScriptedReceiver) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for hit in receiver.hits().await {
        *counts.entry(hit.webhook_id()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_event_is_delivered_after_a_kill_9() {
    let data_dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let admin_token = format!("adm_crash_{}", uuid::Uuid::new_v4().simple());
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    // Answers take a little while, so that the kill finds deliveries in flight.
    let receiver = ScriptedReceiver::start(|_| Answer::Delayed(Duration::from_millis(50), 204)).await;

    let mut server = ServerProcess::spawn(data_dir.path(), &admin_token, logs.path().join("first.log"));
    server.wait_until_up(&client).await;

    // A customer, a key and a subscription, through the admin and public APIs.
    let http = HttpClient::default();
    let admin_auth = format!("Bearer {admin_token}");
    let admin_headers = [("authorization", admin_auth.as_str()), ("content-type", "application/json")];
    // A rate limit above what the posters reach, so that nothing is refused for going too fast.
    let limit = json!({"rate_limit_per_sec": 1_000_000}).to_string();
    let customer = http.send(Method::POST, &server.admin_url("/admin/v1/customers"), &admin_headers, limit).await;
    assert_eq!(customer.status, StatusCode::CREATED, "{:?}", customer.body);
    let customer_id = customer.json()["customer_id"].as_str().unwrap().to_owned();
    let key_path = format!("/admin/v1/customers/{customer_id}/api-keys");
    let key = http.send(Method::POST, &server.admin_url(&key_path), &admin_headers, "{}").await;
    assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
    let api_key = key.json()["api_key"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {api_key}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let subscription = json!({"event_selector": {}, "webhook_url": receiver.url()}).to_string();
    let created = http.send(Method::POST, &server.url("/v1/subscriptions"), &headers, subscription).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;

    // Several clients post as fast as they are answered, and note every event id answered 202.
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let events_url = server.url("/v1/events");
    let posters: Vec<_> = (0..POSTERS)
        .map(|poster| {
            let (client, accepted, refused, failed, killed) =
                (client.clone(), accepted.clone(), refused.clone(), failed.clone(), killed.clone());
            let (url, auth) = (events_url.clone(), auth.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let body = json!({"type": "order.created", "data": {"poster": poster, "n": n}}).to_string();
                    let request = http::Request::post(&url)
                        .header("authorization", &auth)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    let answer = async {
                        let response = client.request(request).await.map_err(|e| e.to_string())?;
                        let status = response.status();
                        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                        Ok::<_, String>((status, body))
                    };
                    match answer.await {
                        Ok((StatusCode::ACCEPTED, body)) => {
                            let body: Value = serde_json::from_slice(&body).unwrap();
                            accepted.lock().await.push(body["event_id"].as_str().unwrap().to_owned());
                        }
                        Ok(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        // Only the kill may break requests; one that fails then was never promised.
                        Err(error) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            assert!(killed.load(Ordering::SeqCst), "a request failed before the kill: {error}");
                        }
                    }
                    if killed.load(Ordering::SeqCst) {
                        return;
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.lock().await.len() < ACCEPTED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "only {} events accepted in 60 s", accepted.lock().await.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Mark the kill first, so that a poster seeing its request fail knows why.
    killed.store(true, Ordering::SeqCst);
    server.kill();
    for poster in posters {
        poster.await.unwrap();
    }
    let accepted: BTreeSet<String> = accepted.lock().await.iter().cloned().collect();
    let delivered_before_restart = webhook_ids(&receiver).await.len();

    let mut server = ServerProcess::spawn(data_dir.path(), &admin_token, logs.path().join("second.log"));
    server.wait_until_up(&client).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let arrived = webhook_ids(&receiver).await;
        let missing: Vec<&String> = accepted.iter().filter(|id| !arrived.contains_key(*id)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} accepted events never arrived, e.g. {:?}",
            missing.len(),
            accepted.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every accepted event can be read back, delivered.
    for event_id in &accepted {
        let reply = http.send(Method::GET, &server.url(&format!("/v1/events/{event_id}")), &headers, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{event_id}: {:?}", reply.body);
        assert_eq!(reply.json()["status"], "delivered", "{event_id}");
    }

    let arrived = webhook_ids(&receiver).await;
    let total: usize = arrived.values().sum();
    let duplicated = arrived.values().filter(|n| **n > 1).count();
    let unpromised = arrived.keys().filter(|id| !accepted.contains(*id)).count();
    eprintln!(
        "crash: {} accepted (202) before the kill, {} refused, {} requests cut by the kill; {} event ids had \
         arrived before the restart; after it all {} accepted arrived ({} webhooks in all, {} event ids more than once, \
         {} delivered though never answered 202)",
        accepted.len(),
        refused.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        delivered_before_restart,
        accepted.len(),
        total,
        duplicated,
        unpromised,
    );
    assert_eq!(refused.load(Ordering::Relaxed), 0, "no event was refused before the kill");
}
