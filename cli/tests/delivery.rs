//! Webhook delivery through the whole pipeline: retries on the schedule, the dead-letter queue,
//! 410, `Retry-After`, and slow endpoints that must not hold up fast ones.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Answer, Receiver, SUBSCRIPTION_PROPAGATION, ScriptedReceiver, TestServer};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use triggers::settings::RunOptions;
use triggers_embedded::Engine;
use triggers_schemas::{Timestamp, WorkflowId};
use triggers_stores::embedded::EmbeddedDeliveryQueue;
use triggers_stores::{DeadLetterKind, DeliveryQueue};

/// Generous bound for anything that should take a second or two.
const PATIENCE: Duration = Duration::from_secs(20);

fn options(retry_schedule: &str, attempt_timeout: &str) -> RunOptions {
    RunOptions {
        retry_schedule: Some(retry_schedule.into()),
        attempt_timeout: Some(attempt_timeout.into()),
        ..RunOptions::default()
    }
}

/// A new customer subscribed with `{}` at every URL; returns the key and the workflow ids, in order,
/// once the consumer has had time to see the subscriptions.
async fn subscribe_all(server: &TestServer, urls: &[String]) -> (String, Vec<String>) {
    let (_, key) = server.new_customer().await;
    let mut workflows = Vec::new();
    for url in urls {
        let subscription = server.subscribe(&key, json!({}), url).await;
        workflows.push(subscription["workflow_id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;
    (key, workflows)
}

async fn post(server: &TestServer, key: &str, n: usize) -> String {
    let reply = server.post_event(key, json!({"type": "order.created", "data": {"n": n}})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    reply.json()["event_id"].as_str().unwrap().to_owned()
}

async fn get_event(server: &TestServer, key: &str, event_id: &str) -> Value {
    let reply = server.call(key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

fn delivery_for<'a>(event: &'a Value, workflow_id: &str) -> &'a Value {
    let deliveries = event["deliveries"].as_array().expect("deliveries");
    deliveries
        .iter()
        .find(|d| d["workflow_id"] == workflow_id)
        .unwrap_or_else(|| panic!("no delivery to {workflow_id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_and_then_delivered() {
    let server = TestServer::start(options("100ms", "5s")).await;
    let endpoint = ScriptedReceiver::start(|n| Answer::status(if n == 0 { 500 } else { 204 })).await;
    let (key, workflows) = subscribe_all(&server, &[endpoint.url()]).await;

    let event_id = post(&server, &key, 1).await;
    let event = server.wait_for_status(&key, &event_id, "delivered", PATIENCE).await;
    assert_eq!(event["delivery_attempts"], 2, "{event}");
    let delivery = delivery_for(&event, &workflows[0]);
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["last_status_code"], 204);
    assert_eq!(delivery["last_error"], Value::Null);

    let hits = endpoint.hits().await;
    assert_eq!(hits.len(), 2, "one failed attempt and one retry");
    assert!(hits.iter().all(|hit| hit.webhook_id() == event_id));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_keeps_failing_is_retried_on_schedule_then_dead_lettered() {
    let data_dir = tempfile::tempdir().unwrap();
    // Retries 300 ms apart keep the event `failed` long enough to be seen so.
    let server = TestServer::start_in(data_dir.path(), options("300ms,300ms", "5s")).await;
    let endpoint = ScriptedReceiver::start(|_| Answer::status(500)).await;
    let (key, workflows) = subscribe_all(&server, &[endpoint.url()]).await;

    let event_id = post(&server, &key, 1).await;
    let failed = server.wait_for_status(&key, &event_id, "failed", PATIENCE).await;
    let delivery = delivery_for(&failed, &workflows[0]);
    assert_eq!(delivery["status"], "failed");
    assert!(delivery["attempts"].as_u64().unwrap() < 3, "{failed}");

    let parked = server.wait_for_status(&key, &event_id, "dead_lettered", PATIENCE).await;
    let delivery = delivery_for(&parked, &workflows[0]);
    assert_eq!(delivery["status"], "dead_lettered");
    assert_eq!(delivery["attempts"], 3, "the first attempt and one retry per schedule entry: {parked}");
    assert_eq!(delivery["last_status_code"], 500);
    let last_error = delivery["last_error"].as_str().expect("a last error");
    assert!(last_error.contains("500"), "{last_error}");
    assert_eq!(endpoint.hits().await.len(), 3);
    server.stop().await;

    // The dead-letter queue holds the delivery with every attempt; no retry is left behind.
    let engine = Engine::open(data_dir.path()).unwrap();
    let queue = EmbeddedDeliveryQueue::open(&engine).unwrap();
    let workflow: WorkflowId = workflows[0].parse().unwrap();
    let dead = queue.list_parked(Some(workflow), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let DeadLetterKind::Delivery(task) = &dead[0].kind else { panic!("not a parked delivery: {dead:?}") };
    assert_eq!(task.record.event_id.to_string(), event_id);
    assert_eq!(task.attempts.len(), 3);
    assert!(task.attempts.iter().all(|a| a.status_code == Some(500) && a.error.is_some()));
    let far_future = Timestamp::now().plus_millis(365 * 24 * 3_600_000);
    assert!(queue.take_due(far_future, 10, 0).await.unwrap().is_empty(), "no retry is still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_resolves_the_event_and_disables_the_subscription() {
    let server = TestServer::start(options("100ms,100ms", "5s")).await;
    let endpoint = Receiver::start().await;
    endpoint.answer_with(410);
    let (key, workflows) = subscribe_all(&server, &[endpoint.url()]).await;

    let event_id = post(&server, &key, 1).await;
    let event = server.wait_for_status(&key, &event_id, "delivered", PATIENCE).await;
    let delivery = delivery_for(&event, &workflows[0]);
    assert_eq!(delivery["status"], "gone");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 410);

    // Had the 410 been retried, the retries would have come within this second (100 ms apart).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(endpoint.received().await.len(), 1);
    assert_eq!(get_event(&server, &key, &event_id).await["delivery_attempts"], 1);

    // The 410 disabled the subscription: later events are not sent to it.
    let subscription = server.call(&key, Method::GET, &format!("/v1/subscriptions/{}", workflows[0]), "").await;
    assert_eq!(subscription.json()["status"], "disabled");
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;
    let later = post(&server, &key, 2).await;
    let event = server.wait_for_status(&key, &later, "delivered", PATIENCE).await;
    assert_eq!(event["deliveries"], json!([]));
    assert_eq!(endpoint.received().await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_hold_up_a_fast_one() {
    const EVENTS: usize = 30;
    // The slow endpoint never answers; each of its attempts costs one attempt timeout (1 s).
    // Its retry is an hour away, so its deliveries stay `failed`.
    let server = TestServer::start(options("1h", "1s")).await;
    let slow = ScriptedReceiver::start(|_| Answer::Hang).await;
    let fast = Receiver::start().await;
    let (key, workflows) = subscribe_all(&server, &[slow.url(), fast.url()]).await;

    let mut posted = BTreeSet::new();
    for n in 0..EVENTS {
        posted.insert(post(&server, &key, n).await);
    }
    // Waiting on the slow endpoint event by event would take at least EVENTS attempt timeouts
    // (30 s); the fast endpoint must get everything well before that.
    let received = fast.wait_for(EVENTS, Duration::from_secs(15)).await;
    let received: BTreeSet<String> = received.iter().map(|r| r.header("webhook-id").to_owned()).collect();
    assert_eq!(received, posted);

    for event_id in &posted {
        let event = server.wait_for_status(&key, event_id, "failed", PATIENCE).await;
        let to_slow = delivery_for(&event, &workflows[0]);
        assert_eq!(to_slow["status"], "failed");
        assert_eq!(to_slow["last_status_code"], Value::Null);
        assert!(to_slow["last_error"].as_str().unwrap().contains("no answer within 1000 ms"), "{event}");
        let to_fast = delivery_for(&event, &workflows[1]);
        assert_eq!(to_fast["status"], "delivered");
        assert_eq!(to_fast["attempts"], 1);
    }
    assert!(slow.hits().await.len() >= EVENTS, "the slow endpoint was tried for every event");
    server.stop().await;
}

async fn retry_after_is_honoured(status: u16) {
    let server = TestServer::start(options("100ms", "5s")).await;
    let endpoint = ScriptedReceiver::start(move |n| {
        if n == 0 { Answer::Status(status, vec![("retry-after", "1".into())]) } else { Answer::status(204) }
    })
    .await;
    let (key, workflows) = subscribe_all(&server, &[endpoint.url()]).await;

    let event_id = post(&server, &key, 1).await;
    let event = server.wait_for_status(&key, &event_id, "delivered", PATIENCE).await;
    let delivery = delivery_for(&event, &workflows[0]);
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["last_status_code"], 204);

    let hits = endpoint.hits().await;
    assert_eq!(hits.len(), 2);
    // The schedule alone would retry after 100-120 ms; the endpoint asked for a second.
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_secs(1), "retried {gap:?} after a {status} with Retry-After: 1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured() {
    retry_after_is_honoured(429).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_503_is_honoured() {
    retry_after_is_honoured(503).await;
}

/// A retry can fall due before the first pass over its event has ended, while another subscription
/// of the same event is still waiting out its attempt timeout. Whatever the order in which the two
/// are recorded, the retry's outcome must not be overwritten by the first pass's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_due_before_the_first_pass_ends_is_not_overwritten() {
    let server = TestServer::start(options("100ms", "2s")).await;
    let flaky = ScriptedReceiver::start(|n| Answer::status(if n == 0 { 500 } else { 204 })).await;
    let slow_once = ScriptedReceiver::start(|n| if n == 0 { Answer::Hang } else { Answer::status(204) }).await;
    let (key, workflows) = subscribe_all(&server, &[flaky.url(), slow_once.url()]).await;

    let event_id = post(&server, &key, 1).await;
    let event = server.wait_for_status(&key, &event_id, "delivered", PATIENCE).await;
    for workflow in &workflows {
        let delivery = delivery_for(&event, workflow);
        assert_eq!(delivery["status"], "delivered", "{event}");
        assert_eq!(delivery["attempts"], 2, "{event}");
        assert_eq!(delivery["last_status_code"], 204, "{event}");
    }
    assert_eq!(event["delivery_attempts"], 4);
    assert_eq!((flaky.hits().await.len(), slow_once.hits().await.len()), (2, 2));
    server.stop().await;
}

/// An endpoint asking for an absurd wait gets the cap instead: the delivery is neither parked for
/// ages nor broken by arithmetic on the huge value.
async fn retry_after_is_capped(retry_after: &'static str) {
    let server = TestServer::start(RunOptions { max_retry_after: Some("1s".into()), ..options("100ms", "5s") }).await;
    let endpoint = ScriptedReceiver::start(move |n| {
        if n == 0 { Answer::Status(503, vec![("retry-after", retry_after.into())]) } else { Answer::status(204) }
    })
    .await;
    let (key, workflows) = subscribe_all(&server, &[endpoint.url()]).await;

    let event_id = post(&server, &key, 1).await;
    let event = server.wait_for_status(&key, &event_id, "delivered", PATIENCE).await;
    let delivery = delivery_for(&event, &workflows[0]);
    assert_eq!(delivery["attempts"], 2, "{event}");
    let hits = endpoint.hits().await;
    let gap = hits[1].at - hits[0].at;
    // The cap (1 s) is still a lower bound: the schedule alone would retry after 100-120 ms.
    assert!(gap >= Duration::from_secs(1), "retried {gap:?} after Retry-After: {retry_after} capped at 1s");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_in_seconds_counts_as_the_cap() {
    retry_after_is_capped("99999999999").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_u64_counts_as_the_cap() {
    retry_after_is_capped("18446744073709551616").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_retry_after_date_counts_as_the_cap() {
    retry_after_is_capped("Fri, 31 Dec 9999 23:59:59 GMT").await;
}

/// The embedded mode with private webhooks turned off refuses loopback names when the subscription
/// is created, and refuses at delivery time what was let in before the setting changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhooks_off_refuses_loopback_names_at_creation_and_at_delivery() {
    let data_dir = tempfile::tempdir().unwrap();
    let endpoint = Receiver::start().await;
    let port = endpoint.url().rsplit(':').next().unwrap().trim_end_matches("/hook").to_owned();
    let sneaky = format!("http://localhost.localdomain:{port}/hook");

    // Created while private webhooks were allowed (the embedded default)...
    let open = TestServer::start_in(data_dir.path(), options("1h", "5s")).await;
    let (_, key) = open.new_customer().await;
    open.subscribe(&key, json!({}), &sneaky).await;
    open.stop().await;

    // ...and delivered after they were turned off: refused, without a connection.
    let closed_options = RunOptions { allow_private_webhooks: Some(false), ..options("1h", "5s") };
    let closed = TestServer::start_in(data_dir.path(), closed_options).await;
    for url in [sneaky.as_str(), "http://localhost.localdomain/hook", "http://127.0.0.1:9/hook"] {
        let body = json!({"event_selector": {}, "webhook_url": url}).to_string();
        let reply = closed.call(&key, Method::POST, "/v1/subscriptions", body).await;
        common::validation(&reply, &["/webhook_url"]);
    }
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;
    let event_id = post(&closed, &key, 1).await;
    let event = closed.wait_for_status(&key, &event_id, "failed", PATIENCE).await;
    let delivery = &event["deliveries"][0];
    assert_eq!(delivery["last_status_code"], Value::Null, "{event}");
    let error = delivery["last_error"].as_str().unwrap();
    assert!(error.contains("localhost.localdomain") && error.contains("refused"), "{error}");
    assert!(endpoint.received().await.is_empty(), "a refused host was connected to");
    closed.stop().await;
}
