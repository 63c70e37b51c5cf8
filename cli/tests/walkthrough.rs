//! The README's walkthrough as a test: a new customer, a subscription, an event, a signed webhook.

mod common;

use std::time::Duration;

use common::{Receiver, SUBSCRIPTION_PROPAGATION, TestServer};
use http::{Method, StatusCode};
use serde_json::json;
use triggers::settings::RunOptions;
use triggers_schemas::webhook;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_from_post_to_a_signed_webhook() {
    let server = TestServer::start(RunOptions::default()).await;
    let receiver = Receiver::start().await;
    let (customer_id, key) = server.new_customer().await;
    let subscription = server.subscribe(&key, json!({"type": ["order.created"]}), &receiver.url()).await;
    let secret = subscription["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(subscription["customer_id"], customer_id.as_str());
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;

    let accepted =
        server.post_event(&key, json!({"type": "order.created", "data": {"order": 42}, "subject": "user-7"})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    let event_id = accepted.json()["event_id"].as_str().unwrap().to_owned();
    assert!(event_id.starts_with("evt_"));
    assert_eq!(accepted.header("location"), Some(format!("/v1/events/{event_id}").as_str()));
    assert!(accepted.header("x-request-id").is_some());
    assert_eq!(accepted.header("ratelimit-limit"), Some("1000"));

    let webhooks = receiver.wait_for(1, Duration::from_secs(10)).await;
    let hook = &webhooks[0];
    assert_eq!(hook.header("webhook-id"), event_id);
    let timestamp: i64 = hook.header("webhook-timestamp").parse().unwrap();
    assert!(webhook::verify(secret, &event_id, timestamp, &hook.body, hook.header("webhook-signature")));
    let body = hook.json();
    assert_eq!(body["workflow_id"], subscription["workflow_id"]);
    assert_eq!(body["data"], json!({"order": 42}));
    assert_eq!(body["subject"], "user-7");

    let event = server.wait_for_status(&key, &event_id, "delivered", Duration::from_secs(10)).await;
    assert_eq!(event["deliveries"][0]["status"], "delivered");
    assert_eq!(event["deliveries"][0]["last_status_code"], 204);
    assert_eq!(event["delivery_attempts"], 1);

    // An event no subscription matches is delivered to nobody and counts as delivered.
    let unmatched = server.post_event(&key, json!({"type": "order.deleted", "data": null})).await;
    let unmatched_id = unmatched.json()["event_id"].as_str().unwrap().to_owned();
    let event = server.wait_for_status(&key, &unmatched_id, "delivered", Duration::from_secs(10)).await;
    assert_eq!(event["deliveries"], json!([]));
    assert_eq!(receiver.received().await.len(), 1);

    // Another customer cannot see it.
    let (_, other_key) = server.new_customer().await;
    let foreign = server.call(&other_key, Method::GET, &format!("/v1/events/{event_id}"), "").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    server.stop().await;
}
