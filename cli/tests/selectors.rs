//! Selectors through the whole pipeline: operators are accepted and matched by the consumer, and
//! a malformed operator is a 422 naming its JSON pointer under `/event_selector`.

mod common;

use std::time::Duration;

use common::{Receiver, SUBSCRIPTION_PROPAGATION, TestServer, validation};
use http::{Method, StatusCode};
use serde_json::json;
use triggers::settings::RunOptions;

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_operators_are_a_422_naming_their_pointer() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let cases = [
        (json!({"data": {"total": [{"numeric": [">", 5, ">", 6]}]}}), vec!["/event_selector/data/total/0/numeric"]),
        (json!({"data": {"path": [{"wildcard": "a**b"}]}}), vec!["/event_selector/data/path/0/wildcard"]),
        (json!({"data": {"state": [{"anything-but": ["a", 1]}]}}), vec!["/event_selector/data/state/0/anything-but"]),
        (json!({"data": {"x": [{"between": [1, 2]}]}}), vec!["/event_selector/data/x/0"]),
        (json!({"$or": []}), vec!["/event_selector/$or"]),
        (
            json!({"colour": ["red"], "type": [{"prefix": 1}]}),
            vec!["/event_selector/colour", "/event_selector/type/0/prefix"],
        ),
    ];
    for (selector, pointers) in cases {
        let body = json!({"event_selector": selector, "webhook_url": "https://example.com/hook"});
        let reply = server.call(&key, Method::POST, "/v1/subscriptions", body.to_string()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{selector}: {:?}", reply.body);
        validation(&reply, &pointers);
    }
    let listed = server.call(&key, Method::GET, "/v1/subscriptions", "").await;
    assert_eq!(listed.json()["subscriptions"], json!([]), "nothing was created");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_selectors_deliver_exactly_the_events_they_match() {
    let server = TestServer::start(RunOptions::default()).await;
    let (_, key) = server.new_customer().await;
    let big_orders = Receiver::start().await;
    let not_eu = Receiver::start().await;
    let never = Receiver::start().await;
    server
        .subscribe(
            &key,
            json!({"type": [{"prefix": "order."}], "data": {"total": [{"numeric": [">", 100]}]}}),
            &big_orders.url(),
        )
        .await;
    server
        .subscribe(
            &key,
            json!({"$or": [{"source": [{"anything-but": {"prefix": "shop-eu"}}]}, {"metadata": {"vip": [true]}}]}),
            &not_eu.url(),
        )
        .await;
    server
        .subscribe(&key, json!({"data": {"items": {"sku": ["A-1"], "qty": [{"numeric": [">=", 5]}]}}}), &never.url())
        .await;
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;

    let events = [
        json!({"type": "order.created", "source": "shop-eu-1", "data": {"total": 250, "items": [{"sku": "A-1", "qty": 1}, {"sku": "B-2", "qty": 9}]}}),
        json!({"type": "order.created", "source": "shop-us-1", "data": {"total": 50}}),
        json!({"type": "user.created", "source": "shop-eu-2", "data": {"total": 500}, "metadata": {"vip": true}}),
    ];
    for event in events {
        let reply = server.post_event(&key, event).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    }
    let totals = |hits: Vec<common::Hit>| {
        let mut totals: Vec<i64> = hits.iter().map(|hit| hit.json()["data"]["total"].as_i64().unwrap()).collect();
        totals.sort_unstable();
        totals
    };
    assert_eq!(totals(big_orders.wait_for(1, PATIENCE).await), [250]);
    assert_eq!(totals(not_eu.wait_for(2, PATIENCE).await), [50, 500]);
    // Everything has been delivered to the others by now; give stragglers one more moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(totals(big_orders.received().await), [250]);
    assert_eq!(totals(not_eu.received().await), [50, 500]);
    assert!(never.received().await.is_empty(), "sku A-1 and qty 9 come from different items");
    server.stop().await;
}
