//! One webhook attempt: build the body, sign it (Standard Webhooks), POST it to an address that
//! passed the address check, and judge the answer, of which only the head and at most 64 KiB of
//! body are read.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use triggers_schemas::address::is_private_host;
use triggers_schemas::{StreamRecord, Subscription, Timestamp, WorkflowId, webhook};
use triggers_stores::AttemptOutcome;

use super::policy::{Verdict, parse_retry_after, verdict};
use super::resolver::{CheckedResolver, Resolve};

/// The most of an endpoint's answer body that is read (contract): past it the connection is
/// dropped rather than drained, so an endless body costs nothing.
pub const MAX_ANSWER_BODY: usize = 64 * 1024;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What happened, as recorded.
    pub outcome: AttemptOutcome,
    /// What it means for the delivery.
    pub verdict: Verdict,
}

/// Sends webhooks over one shared, pooled HTTP client whose connector resolves host names through
/// the address check.
pub struct Deliverer {
    client: Client<HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>,
    attempt_timeout: Duration,
    allow_private: bool,
}

impl Deliverer {
    /// A deliverer whose attempts give up after `attempt_timeout`, finding hosts through
    /// `resolver`, and refusing loopback, private, link-local and metadata addresses unless
    /// `allow_private` is set.
    pub fn new(attempt_timeout: Duration, allow_private: bool, resolver: Arc<dyn Resolve>) -> Self {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(builder) => builder,
            Err(error) => {
                // Without a CA bundle, http endpoints (the embedded mode's) still work.
                tracing::warn!(%error, "no native TLS roots found; https webhooks will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let mut http = HttpConnector::new_with_resolver(CheckedResolver::new(resolver, allow_private));
        // The https connector wraps this one and needs it to accept https URLs.
        http.enforce_http(false);
        let connector = builder.https_or_http().enable_http1().enable_http2().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Self { client, attempt_timeout, allow_private }
    }

    /// Delivers `record` to `subscription` once.
    pub async fn attempt(&self, subscription: &Subscription, record: &StreamRecord) -> Attempt {
        let at = Timestamp::now();
        let deadline = Instant::now() + self.attempt_timeout;
        let body = webhook_body(record, subscription.workflow_id);
        let webhook_id = record.event_id.to_string();
        let signature = match webhook::sign(&subscription.signing_secret, &webhook_id, at.as_secs(), &body) {
            Ok(signature) => signature,
            Err(error) => return failed(at, None, error.to_string()),
        };
        let request = http::Request::post(&subscription.webhook_url)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("triggers/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", at.as_secs().to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(request) => request,
            Err(error) => return failed(at, None, format!("invalid webhook URL: {error}")),
        };
        // A literal address never reaches the resolver (the connector parses it itself), so it
        // is checked here; so are names that are loopback by definition.
        if !self.allow_private
            && let Some(host) = request.uri().host()
            && is_private_host(host)
        {
            return failed(
                at,
                None,
                format!("webhook host {host} is a loopback, private, link-local or metadata address; refused"),
            );
        }
        let response = match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return failed(at, None, format!("request failed: {}", describe(&error))),
            Err(_) => return failed(at, None, format!("no answer within {} ms", self.attempt_timeout.as_millis())),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // The status decides; the body is read (up to the limit and the deadline) only so that a
        // short one leaves the connection reusable.
        let _ = tokio::time::timeout_at(deadline, read_limited(response.into_body())).await;
        let verdict = verdict(Some(status), retry_after);
        let error = matches!(verdict, Verdict::Retry { .. }).then(|| format!("endpoint answered HTTP {status}"));
        Attempt { outcome: AttemptOutcome { at, status_code: Some(status), error }, verdict }
    }
}

/// Reads at most [`MAX_ANSWER_BODY`] bytes of `body` and drops it: a body read to its end returns
/// its connection to the pool, one dropped early closes it.
async fn read_limited(mut body: Incoming) {
    let mut read = 0usize;
    while read < MAX_ANSWER_BODY {
        match body.frame().await {
            Some(Ok(frame)) => read = read.saturating_add(frame.data_ref().map_or(0, Bytes::len)),
            Some(Err(_)) | None => return,
        }
    }
}

fn failed(at: Timestamp, status_code: Option<u16>, error: String) -> Attempt {
    Attempt {
        outcome: AttemptOutcome { at, status_code, error: Some(error) },
        verdict: Verdict::Retry { retry_after: None },
    }
}

fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The JSON body a workflow endpoint receives.
pub fn webhook_body(record: &StreamRecord, workflow_id: WorkflowId) -> Vec<u8> {
    let event = &record.event;
    let body = serde_json::json!({
        "event_id": record.event_id,
        "workflow_id": workflow_id,
        "type": event.event_type,
        "source": event.source,
        "subject": event.subject,
        "occurred_at": event.occurred_at,
        "received_at": record.received_at,
        "data": event.data,
        "metadata": event.metadata,
    });
    serde_json::to_vec(&body).expect("webhook body serialises")
}
