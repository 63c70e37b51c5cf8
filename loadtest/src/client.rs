//! The HTTP client the tester talks to the deployment with: plain `http` or `https` (the system's
//! roots), HTTP/1.1 keep-alive, Nagle off, every call bounded in time and every answer in size.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The most of an answer's body the tester reads: its answers are small JSON documents.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A pooled client over plain or TLS connections.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The connector every client shares: TLS set up once.
pub fn connector() -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    // Requests are small and latency is what is measured: never wait to coalesce segments.
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(builder) => builder,
        Err(error) => {
            // Without a CA bundle, a deployment over plain http (the embedded one) still works.
            tracing::warn!(%error, "no native TLS roots found; https URLs will fail");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    };
    builder.https_or_http().enable_http1().wrap_connector(http)
}

/// How long an idle connection is kept: shorter than the 10 s in which the API contract lets a
/// server close a connection that sends no request, so that at low rates the client drops an idle
/// connection before it can send a request down one the server is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client that keeps at most `idle` connections per host open between requests.
pub fn client(connector: HttpsConnector<HttpConnector>, idle: usize) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// An answer, read whole (up to [`MAX_ANSWER_BYTES`]).
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: Bytes,
}

impl Answer {
    /// The `detail` of a problem document, or the body as text, for error messages.
    pub fn detail(&self) -> String {
        let detail = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|problem| problem.get("detail").and_then(|d| d.as_str()).map(str::to_owned));
        let text = detail.unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        format!("{} {}", self.status.as_u16(), text.chars().take(300).collect::<String>())
    }
}

/// A JSON request: `method url` with `authorization` and `body`.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: &'a str,
    /// The `Authorization` header value.
    pub authorization: &'a HeaderValue,
    /// The JSON body.
    pub body: Bytes,
}

/// Sends `call` and reads the answer, all within `timeout`; the error says what failed.
pub async fn send(client: &HttpClient, call: Call<'_>, timeout: Duration) -> Result<Answer, String> {
    let request = http::Request::builder()
        .method(call.method)
        .uri(call.url)
        .header(http::header::AUTHORIZATION, call.authorization)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(call.body))
        .map_err(|error| format!("invalid request to {}: {error}", call.url))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|error| format!("{error:#}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|error| format!("reading the answer: {error}"))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs_f64())))
}

/// `base` (with or without a trailing `/`) followed by `path`.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_with_or_without_a_trailing_slash() {
        assert_eq!(join("http://h:1", "/v1/events"), "http://h:1/v1/events");
        assert_eq!(join("http://h:1/", "/v1/events"), "http://h:1/v1/events");
    }

    #[test]
    fn details_come_from_problems_or_the_text() {
        let problem = Answer {
            status: StatusCode::UNAUTHORIZED,
            body: Bytes::from_static(
                br#"{"type":"urn:triggers:problem:unauthorized","detail":"the admin token is wrong"}"#,
            ),
        };
        assert_eq!(problem.detail(), "401 the admin token is wrong");
        let text = Answer { status: StatusCode::BAD_GATEWAY, body: Bytes::from_static(b"upstream down") };
        assert_eq!(text.detail(), "502 upstream down");
    }
}
