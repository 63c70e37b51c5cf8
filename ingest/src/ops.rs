//! Operational endpoints: health, readiness, metrics and the OpenAPI document.

use async_trait::async_trait;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use triggers_schemas::Problem;

use crate::AppState;
use crate::http_util::{Body, json, problem};

/// `GET /healthz`: the process is up.
pub(crate) fn healthz() -> http::Response<Body> {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// One thing `/readyz` asks about besides the stream (e.g. the consumer's shards): the process
/// that wires the roles together hands ingest one probe per part that has a health of its own.
#[async_trait]
pub trait ReadinessProbe: Send + Sync + 'static {
    /// `Err` with a description of what is not ready, naming it (shown in the 503 problem, so it
    /// must hold no internal message).
    async fn check(&self) -> Result<(), String>;
}

/// `GET /readyz`: the stream answers and every probe is ready. A 503 names what is not.
pub(crate) async fn readyz(state: &AppState) -> http::Response<Body> {
    if let Err(error) = state.ports.stream.list_shards().await {
        tracing::warn!(%error, "readiness check: stream unavailable");
        return problem(&Problem::unavailable("the event stream is not reachable"));
    }
    for probe in &state.ports.readiness {
        if let Err(detail) = probe.check().await {
            tracing::warn!(%detail, "readiness check failed");
            return problem(&Problem::unavailable(detail));
        }
    }
    json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
}

/// `GET /metrics`.
pub(crate) fn metrics(state: &AppState) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(Bytes::from(state.metrics.render())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// `GET /openapi.json`.
pub(crate) fn openapi() -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(include_bytes!("openapi.json"))));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
