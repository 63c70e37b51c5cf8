//! What an attempt's answer means and what follows it: pure decisions, with the time and the
//! randomness passed in.

use std::time::{Duration, SystemTime};

use triggers_schemas::{DeliveryState, DeliveryStatus, Timestamp};
use triggers_stores::RetryTask;

use crate::config::{DEFAULT_MAX_RETRY_AFTER, DEFAULT_RETRY_SCHEDULE};

/// What an attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410: the workflow's subscription is disabled; the event counts as resolved.
    Gone,
    /// Anything else: try again, no sooner than `retry_after` if the endpoint asked.
    Retry {
        /// The endpoint's `Retry-After`, honoured on 429 and 503 (up to the policy's cap).
        retry_after: Option<Duration>,
    },
}

/// The verdict on an HTTP answer (`None` when there was no answer in time).
pub fn verdict(status: Option<u16>, retry_after: Option<Duration>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429 | 503) => Verdict::Retry { retry_after },
        _ => Verdict::Retry { retry_after: None },
    }
}

/// How long a `Retry-After` value asks to wait, read at `now`: delta-seconds (any number of
/// digits; one too large for 64 bits asks for "forever") or an HTTP-date (a date in the past asks
/// for nothing). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse::<u64>().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// When a failed delivery is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delays before each retry after the first attempt; its length is the number of retries.
    pub schedule: Vec<Duration>,
    /// The longest `Retry-After` honoured; an endpoint asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { schedule: DEFAULT_RETRY_SCHEDULE.to_vec(), max_retry_after: DEFAULT_MAX_RETRY_AFTER }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts_made` failed ones, or `None` when retries
    /// are used up and the delivery goes to the dead-letter queue. `jitter` in `[0, 1]` stretches
    /// the scheduled delay by up to 20% so that endpoints that failed together are not retried
    /// together. An endpoint's `retry_after`, capped, is a lower bound.
    pub fn next_delay(&self, attempts_made: usize, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
        let scheduled = *self.schedule.get(attempts_made.checked_sub(1)?)?;
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        let stretched =
            Duration::try_from_secs_f64(scheduled.as_secs_f64() * (1.0 + 0.2 * jitter)).unwrap_or(Duration::MAX);
        let asked = retry_after.map(|asked| asked.min(self.max_retry_after));
        Some(asked.map_or(stretched, |asked| asked.max(stretched)))
    }
}

/// What must still happen for a delivery to be resolved after its latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing: delivered, or the subscription is already deleted or disabled.
    Nothing,
    /// The endpoint answered 410: the workflow is gone, so its subscription is disabled and
    /// receives nothing more until its owner turns it back on.
    Disable,
    /// Another attempt, due then.
    Retry(Timestamp),
    /// Retries are used up: park the delivery in the dead-letter queue.
    Park,
}

/// A delivery after an attempt: the task with every attempt so far, the state to record, and what
/// follows.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The delivery with every attempt so far.
    pub task: RetryTask,
    /// Its state, to record.
    pub state: DeliveryState,
    /// What follows once the state is recorded.
    pub follow_up: FollowUp,
}

/// Decides what follows the verdict of the latest attempt in `task`, at `now`, with `jitter` in
/// `[0, 1]` for the retry delay.
pub fn settle(policy: &RetryPolicy, task: RetryTask, verdict: Verdict, now: Timestamp, jitter: f64) -> Settled {
    let (status, follow_up) = match verdict {
        Verdict::Delivered => (DeliveryStatus::Delivered, FollowUp::Nothing),
        Verdict::Gone => (DeliveryStatus::Gone, FollowUp::Disable),
        Verdict::Retry { retry_after } => match policy.next_delay(task.attempts.len(), retry_after, jitter) {
            Some(delay) => {
                let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                (DeliveryStatus::Failed, FollowUp::Retry(now.plus_millis(millis)))
            }
            None => (DeliveryStatus::DeadLettered, FollowUp::Park),
        },
    };
    Settled { state: delivery_state(&task, status), task, follow_up }
}

/// A delivery that wants nothing more because its subscription is deleted or disabled.
pub fn settle_unsubscribed(task: RetryTask) -> Settled {
    Settled { state: delivery_state(&task, DeliveryStatus::Gone), task, follow_up: FollowUp::Nothing }
}

fn delivery_state(task: &RetryTask, status: DeliveryStatus) -> DeliveryState {
    let last = task.attempts.last();
    DeliveryState {
        workflow_id: task.workflow_id,
        status,
        attempts: u32::try_from(task.attempts.len()).unwrap_or(u32::MAX),
        last_attempt_at: last.map(|a| a.at),
        last_status_code: last.and_then(|a| a.status_code),
        last_error: last.and_then(|a| a.error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use triggers_schemas::{CustomerId, EventId, NewEvent, StreamRecord, WorkflowId};
    use triggers_stores::AttemptOutcome;

    use super::*;

    fn policy(schedule: &[u64], max_retry_after: u64) -> RetryPolicy {
        RetryPolicy {
            schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            max_retry_after: Duration::from_secs(max_retry_after),
        }
    }

    fn task_after(failed_attempts: usize) -> RetryTask {
        let record = StreamRecord {
            event_id: EventId::generate(),
            customer_id: CustomerId::generate(),
            received_at: Timestamp::now(),
            event: NewEvent::from_json(json!({"type": "t", "data": null}), "").unwrap(),
        };
        let failed = AttemptOutcome { at: Timestamp::now(), status_code: Some(500), error: Some("HTTP 500".into()) };
        RetryTask { record, workflow_id: WorkflowId::generate(), attempts: vec![failed; failed_attempts] }
    }

    #[test]
    fn answers_map_to_verdicts() {
        let wait = Some(Duration::from_secs(7));
        assert_eq!(verdict(Some(204), None), Verdict::Delivered);
        assert_eq!(verdict(Some(410), None), Verdict::Gone);
        assert_eq!(verdict(Some(429), wait), Verdict::Retry { retry_after: wait });
        assert_eq!(verdict(Some(503), wait), Verdict::Retry { retry_after: wait });
        assert_eq!(verdict(Some(500), wait), Verdict::Retry { retry_after: None });
        assert_eq!(verdict(None, None), Verdict::Retry { retry_after: None });
    }

    #[test]
    fn delays_follow_the_schedule_then_give_up() {
        let policy = policy(&[5, 30], 3_600);
        assert_eq!(policy.next_delay(1, None, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(policy.next_delay(2, None, 0.0), Some(Duration::from_secs(30)));
        assert_eq!(policy.next_delay(3, None, 0.0), None);
        assert_eq!(policy.next_delay(0, None, 0.0), None);
        assert_eq!(policy.next_delay(1, None, 0.5), Some(Duration::from_millis(5_500)));
        assert_eq!(policy.next_delay(1, None, f64::NAN), Some(Duration::from_secs(5)));
        assert_eq!(policy.next_delay(1, Some(Duration::from_secs(60)), 0.0), Some(Duration::from_secs(60)));
        assert_eq!(policy.next_delay(1, Some(Duration::from_secs(1)), 0.0), Some(Duration::from_secs(5)));
        assert_eq!(RetryPolicy { schedule: vec![], ..policy }.next_delay(1, None, 0.0), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap_whatever_its_size() {
        let policy = policy(&[5], 3_600);
        let hour = Some(Duration::from_secs(3_600));
        for asked in [Duration::from_secs(99_999_999_999), Duration::from_secs(u64::MAX), Duration::MAX] {
            assert_eq!(policy.next_delay(1, Some(asked), 1.0), hour, "{asked:?}");
        }
        // A schedule entry beyond any real time neither overflows nor panics.
        let huge = RetryPolicy { schedule: vec![Duration::MAX], max_retry_after: Duration::MAX };
        assert_eq!(huge.next_delay(1, Some(Duration::MAX), 1.0), Some(Duration::MAX));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999", now), Some(Duration::from_secs(99_999_999_999)));
        assert_eq!(parse_retry_after("18446744073709551615", now), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse_retry_after("99999999999999999999999999", now), Some(Duration::MAX));
        // 2023-11-14T22:13:20Z is `now`; the date asks for 90 s more.
        assert_eq!(parse_retry_after("Tue, 14 Nov 2023 22:14:50 GMT", now), Some(Duration::from_secs(90)));
        assert_eq!(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).map(|d| d > Duration::from_secs(1 << 37)),
            Some(true)
        );
        for bad in ["", "-5", "1.5", "soon", "+10", "Tue, 14 Nov 2023"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn a_failure_is_retried_until_the_schedule_runs_out_then_parked() {
        let policy = policy(&[60], 3_600);
        let now = Timestamp::from_millis(1_000_000);
        let settled = settle(&policy, task_after(1), Verdict::Retry { retry_after: None }, now, 0.5);
        assert_eq!(settled.state.status, DeliveryStatus::Failed);
        assert_eq!(settled.state.attempts, 1);
        assert_eq!(settled.state.last_status_code, Some(500));
        assert_eq!(settled.follow_up, FollowUp::Retry(now.plus_millis(66_000)));

        let settled = settle(&policy, task_after(2), Verdict::Retry { retry_after: None }, now, 0.5);
        assert_eq!((settled.state.status, settled.follow_up), (DeliveryStatus::DeadLettered, FollowUp::Park));
        assert_eq!(settled.state.attempts, 2);
    }

    #[test]
    fn a_due_time_beyond_the_calendar_saturates() {
        let policy = RetryPolicy { schedule: vec![Duration::MAX], max_retry_after: Duration::MAX };
        let now = Timestamp::from_millis(1_000);
        let settled = settle(&policy, task_after(1), Verdict::Retry { retry_after: Some(Duration::MAX) }, now, 1.0);
        assert_eq!(settled.follow_up, FollowUp::Retry(Timestamp::from_millis(i64::MAX)));
    }

    #[test]
    fn delivered_and_gone_need_nothing_more() {
        let policy = RetryPolicy::default();
        let now = Timestamp::now();
        let delivered = settle(&policy, task_after(1), Verdict::Delivered, now, 0.0);
        assert_eq!((delivered.state.status, delivered.follow_up), (DeliveryStatus::Delivered, FollowUp::Nothing));
        let gone = settle(&policy, task_after(1), Verdict::Gone, now, 0.0);
        assert_eq!((gone.state.status, gone.follow_up), (DeliveryStatus::Gone, FollowUp::Disable));
        let unsubscribed = settle_unsubscribed(task_after(2));
        assert_eq!((unsubscribed.state.status, unsubscribed.follow_up), (DeliveryStatus::Gone, FollowUp::Nothing));
    }
}
