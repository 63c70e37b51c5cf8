//! One webhook attempt: build the body, sign it (Standard Webhooks), POST it, judge the answer.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use triggers_schemas::{StreamRecord, Subscription, Timestamp, WorkflowId, webhook};
use triggers_stores::AttemptOutcome;

use crate::retry::{Verdict, verdict};

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What happened, as recorded.
    pub outcome: AttemptOutcome,
    /// What it means for the delivery.
    pub verdict: Verdict,
}

/// Sends webhooks over one shared, pooled HTTP client.
pub struct Deliverer {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    attempt_timeout: Duration,
}

impl Deliverer {
    /// A deliverer whose attempts give up after `attempt_timeout`.
    pub fn new(attempt_timeout: Duration) -> Self {
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
        let connector = builder.https_or_http().enable_http1().enable_http2().build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Self { client, attempt_timeout }
    }

    /// Delivers `record` to `subscription` once.
    pub async fn attempt(&self, subscription: &Subscription, record: &StreamRecord) -> Attempt {
        let at = Timestamp::now();
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
        let answer = tokio::time::timeout(self.attempt_timeout, async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Drain the body so the connection can be reused; its content is not needed.
            let _ = response.into_body().collect().await;
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after))
        })
        .await;
        match answer {
            Ok(Ok((status, retry_after))) => {
                let verdict = verdict(Some(status), retry_after);
                let error =
                    matches!(verdict, Verdict::Retry { .. }).then(|| format!("endpoint answered HTTP {status}"));
                Attempt { outcome: AttemptOutcome { at, status_code: Some(status), error }, verdict }
            }
            Ok(Err(error)) => failed(at, None, format!("request failed: {}", describe(&error))),
            Err(_) => failed(at, None, format!("no answer within {} ms", self.attempt_timeout.as_millis())),
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
