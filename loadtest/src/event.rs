//! The events the tester sends and how it recognises them when they come back as webhooks.
//!
//! Every event carries, in its `data`, the run's id, its sequence number and the microsecond (after
//! the start of the run) at which it was scheduled to leave, so that the receiver can measure the
//! end-to-end latency and count each event once however often it is delivered. A `padding`
//! string brings each request body to exactly the size asked for.

use serde::Deserialize;

use crate::error::LoadtestError;
use crate::schedule::Schedule;

/// The `type` of every event the tester sends; its subscriptions select it.
pub const EVENT_TYPE: &str = "loadtest.event";

/// Builds the request bodies of one run, each exactly `bytes` long.
#[derive(Debug, Clone)]
pub struct EventShape {
    run: String,
    bytes: usize,
}

impl EventShape {
    /// The shape of `bytes`-byte events for `run`; refuses a size below the longest body of the
    /// schedule without padding (the last event has the most digits).
    pub fn new(run: &str, bytes: usize, schedule: &Schedule) -> Result<Self, LoadtestError> {
        let last = schedule.events() - 1;
        let smallest = skeleton_len(run, last, schedule.due_at_us(last));
        if bytes < smallest {
            return Err(LoadtestError::Usage(format!(
                "--event-bytes {bytes} is below the smallest event of this run ({smallest} bytes)"
            )));
        }
        Ok(Self { run: run.to_owned(), bytes })
    }

    /// The body of event `seq`, due `scheduled_us` after the start: exactly `bytes` long.
    pub fn body(&self, seq: u64, scheduled_us: u64) -> String {
        let padding = self.bytes.saturating_sub(skeleton_len(&self.run, seq, scheduled_us));
        event_json(&self.run, seq, scheduled_us, &"x".repeat(padding))
    }

    /// The body of a probe event: it proves that a customer's subscription reaches the receiver
    /// before measuring starts, and is not measured itself.
    pub fn probe_body(&self) -> String {
        format!(r#"{{"type":"{EVENT_TYPE}","data":{{"loadtest":{{"run":"{}","probe":true}}}}}}"#, self.run)
    }
}

fn event_json(run: &str, seq: u64, scheduled_us: u64, padding: &str) -> String {
    format!(
        r#"{{"type":"{EVENT_TYPE}","data":{{"loadtest":{{"run":"{run}","seq":{seq},"scheduled_us":{scheduled_us}}},"padding":"{padding}"}}}}"#
    )
}

fn skeleton_len(run: &str, seq: u64, scheduled_us: u64) -> usize {
    event_json(run, seq, scheduled_us, "").len()
}

/// What a webhook the tester received stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// A probe of the subscription `workflow_id`.
    Probe {
        /// The subscription that delivered it.
        workflow_id: String,
    },
    /// Event `seq` of this run.
    Event {
        /// The subscription that delivered it.
        workflow_id: String,
        /// The event's sequence number.
        seq: u64,
        /// When it was due to leave, in µs after the start.
        scheduled_us: u64,
    },
}

/// Why a webhook body is not one of this run's events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotOurs {
    /// Not the webhook body of the API contract, or without the tester's marker.
    #[error("not a load-test webhook: {0}")]
    Malformed(String),
    /// A load-test event of another run (a subscription left over by an earlier run).
    #[error("an event of run {0}, not of this run")]
    OtherRun(String),
}

#[derive(Deserialize)]
struct Webhook<'a> {
    #[serde(borrow)]
    workflow_id: std::borrow::Cow<'a, str>,
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    loadtest: Marker<'a>,
}

#[derive(Deserialize)]
struct Marker<'a> {
    #[serde(borrow)]
    run: std::borrow::Cow<'a, str>,
    seq: Option<u64>,
    scheduled_us: Option<u64>,
    #[serde(default)]
    probe: bool,
}

/// Reads a webhook body (the API contract's delivery body) as an arrival of `run`.
pub fn parse_webhook(body: &[u8], run: &str) -> Result<Arrival, NotOurs> {
    let webhook: Webhook<'_> = serde_json::from_slice(body).map_err(|error| NotOurs::Malformed(error.to_string()))?;
    let marker = webhook.data.loadtest;
    if marker.run != run {
        return Err(NotOurs::OtherRun(marker.run.into_owned()));
    }
    let workflow_id = webhook.workflow_id.into_owned();
    match (marker.probe, marker.seq, marker.scheduled_us) {
        (true, None, None) => Ok(Arrival::Probe { workflow_id }),
        (false, Some(seq), Some(scheduled_us)) => Ok(Arrival::Event { workflow_id, seq, scheduled_us }),
        _ => Err(NotOurs::Malformed("the marker is neither a probe nor an event".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RUN: &str = "0123456789abcdef0123456789abcdef";

    fn schedule() -> Schedule {
        Schedule::new(1_000.0, Duration::from_secs(20)).unwrap()
    }

    #[test]
    fn every_body_has_exactly_the_size_asked_for() {
        let schedule = schedule();
        let shape = EventShape::new(RUN, 300, &schedule).unwrap();
        for seq in [0, 9, 10, 999, 1_000, 19_999] {
            let body = shape.body(seq, schedule.due_at_us(seq));
            assert_eq!(body.len(), 300, "event {seq}: {body}");
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(value["type"], EVENT_TYPE);
            assert_eq!(value["data"]["loadtest"]["seq"], seq);
            assert_eq!(value["data"]["loadtest"]["scheduled_us"], schedule.due_at_us(seq));
        }
    }

    #[test]
    fn refuses_a_size_below_the_longest_skeleton() {
        let schedule = schedule();
        let last = schedule.events() - 1;
        let smallest = skeleton_len(RUN, last, schedule.due_at_us(last));
        assert!(EventShape::new(RUN, smallest, &schedule).is_ok());
        let err = EventShape::new(RUN, smallest - 1, &schedule).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("--event-bytes {} is below the smallest event of this run ({smallest} bytes)", smallest - 1)
        );
        let shape = EventShape::new(RUN, smallest, &schedule).unwrap();
        assert_eq!(shape.body(last, schedule.due_at_us(last)).len(), smallest);
    }

    fn webhook(workflow_id: &str, data: &str) -> Vec<u8> {
        format!(
            r#"{{"event_id":"evt_1","workflow_id":"{workflow_id}","type":"{EVENT_TYPE}","source":null,"subject":null,"occurred_at":null,"received_at":"2026-11-26T15:04:05.123Z","data":{data},"metadata":null}}"#
        )
        .into_bytes()
    }

    #[test]
    fn reads_back_what_it_sent() {
        let schedule = schedule();
        let shape = EventShape::new(RUN, 400, &schedule).unwrap();
        let sent: serde_json::Value = serde_json::from_str(&shape.body(42, 42_000)).unwrap();
        let arrival = parse_webhook(&webhook("wf-1", &sent["data"].to_string()), RUN).unwrap();
        assert_eq!(arrival, Arrival::Event { workflow_id: "wf-1".into(), seq: 42, scheduled_us: 42_000 });

        let probe: serde_json::Value = serde_json::from_str(&shape.probe_body()).unwrap();
        let arrival = parse_webhook(&webhook("wf-2", &probe["data"].to_string()), RUN).unwrap();
        assert_eq!(arrival, Arrival::Probe { workflow_id: "wf-2".into() });
    }

    #[test]
    fn tells_other_runs_and_foreign_bodies_apart() {
        let other = r#"{"loadtest":{"run":"ffff","seq":1,"scheduled_us":5}}"#;
        assert_eq!(parse_webhook(&webhook("wf", other), RUN), Err(NotOurs::OtherRun("ffff".into())));
        for data in [r#"{"order_id":42}"#, r#"{"loadtest":{"run":"x"}}"#, "null"] {
            let data = data.replace('x', RUN);
            assert!(matches!(parse_webhook(&webhook("wf", &data), RUN), Err(NotOurs::Malformed(_))), "{data}");
        }
        assert!(matches!(parse_webhook(b"not json", RUN), Err(NotOurs::Malformed(_))));
    }
}
