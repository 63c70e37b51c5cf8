//! A graceful stop and a restart on the same data directory: checkpoints survive, so nothing is
//! delivered twice, and nothing accepted before the stop is lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Answer, SUBSCRIPTION_PROPAGATION, ScriptedReceiver, TestServer, wait_until};
use http::StatusCode;
use serde_json::json;
use triggers::settings::RunOptions;

const PATIENCE: Duration = Duration::from_secs(20);

async fn post(server: &TestServer, key: &str, label: &str) -> String {
    let reply = server.post_event(key, json!({"type": "order.created", "data": {"label": label}})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    reply.json()["event_id"].as_str().unwrap().to_owned()
}

/// How many times each webhook id arrived.
async fn arrivals(receiver: &ScriptedReceiver) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for hit in receiver.hits().await {
        *counts.entry(hit.webhook_id()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_neither_repeats_nor_loses_deliveries() {
    let data_dir = tempfile::tempdir().unwrap();
    // Answers take a while, so that the stop below finds deliveries in flight.
    let receiver = ScriptedReceiver::start(|_| Answer::Delayed(Duration::from_millis(300), 204)).await;

    let first = TestServer::start_in(data_dir.path(), RunOptions::default()).await;
    let (_, key) = first.new_customer().await;
    first.subscribe(&key, json!({"type": ["order.created"]}), &receiver.url()).await;
    tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;

    // Delivered and recorded before the stop.
    let mut delivered_before = Vec::new();
    for n in 0..10 {
        delivered_before.push(post(&first, &key, &format!("before-{n}")).await);
    }
    for event_id in &delivered_before {
        first.wait_for_status(&key, event_id, "delivered", PATIENCE).await;
    }
    // Accepted just before the stop, which comes while the first of them is being delivered: the
    // stop lets that batch finish and checkpoints it; the rest wait for the next run.
    let mut accepted_at_stop = Vec::new();
    for n in 0..10 {
        accepted_at_stop.push(post(&first, &key, &format!("at-stop-{n}")).await);
    }
    receiver.wait_for(delivered_before.len() + 1, PATIENCE).await;
    // And a few while that batch is in flight: the stop comes before they are read.
    for n in 0..5 {
        accepted_at_stop.push(post(&first, &key, &format!("in-flight-{n}")).await);
    }
    first.stop().await;
    let arrived_in_first_run = receiver.hits().await.len();

    // The same API key, customer and subscription work after the restart: they are in the data
    // directory, not in memory.
    let second = TestServer::start_in(data_dir.path(), RunOptions::default()).await;
    let earlier = second.wait_for_status(&key, &delivered_before[0], "delivered", PATIENCE).await;
    assert_eq!(earlier["data"], json!({"label": "before-0"}));
    assert_eq!(earlier["deliveries"][0]["status"], "delivered");
    assert_eq!(earlier["deliveries"][0]["attempts"], 1);

    // One customer's events share a shard and are read in order, so once an event posted now has
    // been delivered, every earlier record of the shard has been read in this run; the stop then
    // lets the last batch finish, after which nothing more can arrive.
    let sentinel = post(&second, &key, "after-restart").await;
    second.wait_for_status(&key, &sentinel, "delivered", PATIENCE).await;
    for event_id in &accepted_at_stop {
        second.wait_for_status(&key, event_id, "delivered", PATIENCE).await;
    }
    second.stop().await;

    let counts = arrivals(&receiver).await;
    let expected: BTreeSet<String> =
        delivered_before.iter().chain(&accepted_at_stop).chain([&sentinel]).cloned().collect();
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "delivered more than once across the restart: {repeated:?}");
    eprintln!(
        "restart: {} events, {arrived_in_first_run} delivered before the stop, {} after the restart, none twice",
        expected.len(),
        expected.len() - arrived_in_first_run
    );
}

/// Run after run on one data directory, each run delivers what it accepted, once: the leases
/// released at each stop are taken again, at the checkpoints the previous run wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_several_runs_delivers_what_it_accepted_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let receiver = ScriptedReceiver::start(|_| Answer::status(204)).await;
    let mut key = None;
    let mut posted = BTreeSet::new();
    for run in 0..3 {
        let server = TestServer::start_in(data_dir.path(), RunOptions::default()).await;
        let key = match &key {
            Some(key) => key,
            None => {
                let (_, new_key) = server.new_customer().await;
                server.subscribe(&new_key, json!({}), &receiver.url()).await;
                tokio::time::sleep(SUBSCRIPTION_PROPAGATION).await;
                key.insert(new_key)
            }
        };
        for n in 0..5 {
            posted.insert(post(&server, key, &format!("run-{run}-{n}")).await);
        }
        wait_until("every event so far to arrive", PATIENCE, || async {
            let arrived: BTreeSet<String> = arrivals(&receiver).await.into_keys().collect();
            (arrived == posted).then_some(())
        })
        .await;
        server.stop().await;
    }
    let counts = arrivals(&receiver).await;
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(counts.len(), 15);
}
