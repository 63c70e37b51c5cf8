//! Operational endpoints: health, readiness, metrics and the OpenAPI document.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use triggers_schemas::Problem;

use crate::AppState;
use crate::http_util::{Body, RequestBody, json, problem};
use crate::openapi;
use crate::routes::PathParams;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness",
    responses((status = 200, description = "The process is up", content_type = "application/json")))]
pub(crate) async fn healthz(_: Arc<AppState>, _: http::Request<RequestBody>, _: PathParams) -> http::Response<Body> {
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

/// The stream answers and every probe is ready; a `503` names what is not.
#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness",
    responses(
        (status = 200, description = "Every dependency is reachable", content_type = "application/json"),
        (status = 503, description = "A dependency is not; the problem names it", body = openapi::Problem,
            content_type = "application/problem+json")))]
pub(crate) async fn readyz(state: Arc<AppState>, _: http::Request<RequestBody>, _: PathParams) -> http::Response<Body> {
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

/// Counters in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Metrics",
    responses((status = 200, description = "Prometheus text exposition format", body = String,
        content_type = "text/plain; version=0.0.4")))]
pub(crate) async fn metrics(
    state: Arc<AppState>,
    _: http::Request<RequestBody>,
    _: PathParams,
) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(Bytes::from(state.metrics.render())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// This document: OpenAPI 3.1 of the public and admin APIs.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", summary = "The OpenAPI document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
pub(crate) async fn openapi(_: Arc<AppState>, _: http::Request<RequestBody>, _: PathParams) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(Bytes::clone(&openapi::DOCUMENT)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
