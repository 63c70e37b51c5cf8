//! Operational endpoints: health, readiness, metrics and the OpenAPI document.

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

/// `GET /readyz`: the stream answers. A 503 names what does not.
pub(crate) async fn readyz(state: &AppState) -> http::Response<Body> {
    match state.ports.stream.list_shards().await {
        Ok(_) => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(error) => {
            tracing::warn!(%error, "readiness check: stream unavailable");
            problem(&Problem::unavailable("the event stream is not reachable"))
        }
    }
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
