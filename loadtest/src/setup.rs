//! Before measuring: the tester's own customers (admin API), one API key each, one subscription
//! each pointing at its receiver (public API), and a probe event per customer that must come
//! back, so that a subscription the matcher has not loaded yet is never counted as a loss.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::client::{self, Answer, Call, HttpClient};
use crate::error::LoadtestError;
use crate::event::{EVENT_TYPE, EventShape};
use crate::receiver::Receiver;

/// How long one setup call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the subscriptions have to deliver their probes (the contract promises a new
/// subscription reaches matching within 2 s; delivery adds the pipeline's own latency).
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a probe that has not come back is sent again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Where and as whom the tester talks to the deployment.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The public API's base URL.
    pub url: String,
    /// The admin API's base URL.
    pub admin_url: String,
    /// `Bearer <admin token>`.
    pub admin_authorization: HeaderValue,
}

/// One of the tester's customers, ready to send.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Its id.
    pub customer_id: String,
    /// `Bearer <api key>`.
    pub authorization: HeaderValue,
    /// Its subscription to the tester's events.
    pub workflow_id: String,
    /// The subscription's signing secret (`whsec_…`).
    pub signing_secret: String,
}

/// The rate limit the tester gives each customer: four times its share of the target rate, so
/// that the limit does not shape the load even when a backlog drains in a burst, and never below
/// the contract's default of 1,000 events/s.
pub fn customer_rate_limit(rate: f64, customers: u32) -> u32 {
    let share = (rate / f64::from(customers.max(1))).ceil();
    (share * 4.0).clamp(1_000.0, 1_000_000.0) as u32
}

/// Creates `count` customers named after `run`, each with an API key and a subscription to
/// [`EVENT_TYPE`] at `webhook_url`.
pub async fn create_customers(
    http: &HttpClient,
    deployment: &Deployment,
    run: &str,
    count: u32,
    rate_limit: u32,
    webhook_url: &str,
) -> Result<Vec<Customer>, LoadtestError> {
    let mut customers = Vec::with_capacity(count as usize);
    for index in 0..count {
        let url = client::join(&deployment.admin_url, "/admin/v1/customers");
        let body = json!({"name": format!("loadtest-{run}-{index}"), "rate_limit_per_sec": rate_limit});
        let customer = created(http, Method::POST, &url, &deployment.admin_authorization, body).await?;
        let customer_id = field(&customer, "customer_id", &url)?;

        let url = client::join(&deployment.admin_url, &format!("/admin/v1/customers/{customer_id}/api-keys"));
        let key = created(http, Method::POST, &url, &deployment.admin_authorization, json!({})).await?;
        let api_key = field(&key, "api_key", &url)?;
        let authorization = HeaderValue::from_str(&format!("Bearer {api_key}"))
            .map_err(|_| setup_error(&url, format!("the API key {api_key:?} is not a header value")))?;

        let url = client::join(&deployment.url, "/v1/subscriptions");
        let body = json!({"event_selector": {"type": [EVENT_TYPE]}, "webhook_url": webhook_url});
        let subscription = created(http, Method::POST, &url, &authorization, body).await?;
        customers.push(Customer {
            customer_id,
            authorization,
            workflow_id: field(&subscription, "workflow_id", &url)?,
            signing_secret: field(&subscription, "signing_secret", &url)?,
        });
    }
    Ok(customers)
}

/// Sends each customer a probe event, again every second until it comes back, and returns once
/// every subscription has delivered one; fails after [`LIVE_TIMEOUT`].
pub async fn wait_until_live(
    http: &HttpClient,
    deployment: &Deployment,
    customers: &[Customer],
    shape: &EventShape,
    receiver: &Receiver,
    webhook_url: &str,
    cancel: &CancellationToken,
) -> Result<(), LoadtestError> {
    let url = client::join(&deployment.url, "/v1/events");
    let body = Bytes::from(shape.probe_body());
    let deadline = tokio::time::Instant::now() + LIVE_TIMEOUT;
    loop {
        let pending: Vec<&Customer> = customers.iter().filter(|c| !receiver.is_live(&c.workflow_id)).collect();
        if pending.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(LoadtestError::NotLive {
                pending: pending.len(),
                customers: customers.len(),
                secs: LIVE_TIMEOUT.as_secs(),
                webhook_url: webhook_url.to_owned(),
            });
        }
        for customer in pending {
            let call =
                Call { method: Method::POST, url: &url, authorization: &customer.authorization, body: body.clone() };
            let answer = client::send(http, call, CALL_TIMEOUT).await.map_err(|detail| setup_error(&url, detail))?;
            if answer.status != StatusCode::ACCEPTED {
                return Err(setup_error(&url, answer.detail()));
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(LoadtestError::Interrupted),
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}

async fn created(
    http: &HttpClient,
    method: Method,
    url: &str,
    authorization: &HeaderValue,
    body: serde_json::Value,
) -> Result<serde_json::Value, LoadtestError> {
    let call = Call { method: method.clone(), url, authorization, body: Bytes::from(body.to_string()) };
    let answer: Answer = client::send(http, call, CALL_TIMEOUT)
        .await
        .map_err(|detail| setup_error(&format!("{method} {url}"), detail))?;
    if answer.status != StatusCode::CREATED {
        return Err(setup_error(&format!("{method} {url}"), answer.detail()));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|error| setup_error(&format!("{method} {url}"), format!("the answer is not JSON: {error}")))
}

fn field(value: &serde_json::Value, name: &str, url: &str) -> Result<String, LoadtestError> {
    value
        .get(name)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| setup_error(url, format!("the answer has no {name}: {value}")))
}

fn setup_error(action: &str, detail: String) -> LoadtestError {
    LoadtestError::Setup { action: action.to_owned(), detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_customer_may_take_four_times_its_share() {
        assert_eq!(customer_rate_limit(10_000.0, 8), 5_000);
        assert_eq!(customer_rate_limit(10_000.0, 3), 13_336);
        assert_eq!(customer_rate_limit(20.0, 3), 1_000, "never below the default");
        assert_eq!(customer_rate_limit(1_000_000.0, 1), 1_000_000, "never above what the admin API takes");
    }
}
