//! Small helpers for building responses and reading bodies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use serde::Serialize;
use tokio::time::{Instant, Sleep};
use triggers_schemas::Problem;
use triggers_schemas::problem::PROBLEM_CONTENT_TYPE;

/// Every response body.
pub(crate) type Body = Full<Bytes>;

/// A JSON response.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("response serialises");
    json_bytes(status, body)
}

/// A JSON response from bytes already serialised.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A problem+json response.
pub(crate) fn problem(problem: &Problem) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(problem.to_json())));
    *response.status_mut() = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    if problem.status == 401 {
        // RFC 9110 requires a 401 to name the scheme that would work.
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// A request's body, which fails with [`BodyError::Stalled`] when nothing arrives for its stall
/// timeout: a client that sends a head and then trickles or withholds its body cannot hold a
/// request, and its connection, for longer than that.
pub(crate) struct RequestBody {
    incoming: Incoming,
    stall_timeout: Duration,
    /// Armed while the body is waited for; reset whenever a frame arrives.
    stall: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Nothing arrived for the stall timeout.
    #[error("the request body stalled for {0:?}")]
    Stalled(Duration),
    /// The connection failed or the framing was broken.
    #[error("the request body could not be read: {0}")]
    Transport(#[from] hyper::Error),
}

impl RequestBody {
    /// `incoming`, failing once it sends nothing for `stall_timeout`.
    pub(crate) fn new(incoming: Incoming, stall_timeout: Duration) -> Self {
        Self { incoming, stall_timeout, stall: None, waiting: false }
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.incoming).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from)));
        }
        // The wait starts at the first poll that finds nothing, or at the first one after a frame.
        let starting = !std::mem::replace(&mut this.waiting, true);
        let stall = match &mut this.stall {
            Some(stall) => {
                if starting {
                    stall.as_mut().reset(Instant::now() + this.stall_timeout);
                }
                stall
            }
            None => this.stall.insert(Box::pin(tokio::time::sleep(this.stall_timeout))),
        };
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Stalled(this.stall_timeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// The most of a refused request body that is read and thrown away before answering.
const DISCARD_LIMIT_BYTES: u64 = 8 * 1024 * 1024;
/// How long throwing a refused body away may take.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a body of at most `limit` bytes; a larger one is a 413 problem, whatever its
/// Content-Length claims, and is not kept past the limit.
/// A body that stalls is a 408 problem.
pub(crate) async fn read_body(mut body: RequestBody, limit: usize) -> Result<Bytes, Problem> {
    let too_large = || Problem::payload_too_large(format!("the body must be at most {limit} bytes"));
    // A declared Content-Length is the body's exact size, so an oversized one is refused unread.
    if body.size_hint().lower() > limit as u64 {
        discard_body(body).await;
        return Err(too_large());
    }
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(BodyError::Stalled(waited)) => {
                return Err(Problem::request_timeout(format!(
                    "the request body sent nothing for {} s; send the whole body without pausing",
                    waited.as_secs_f64()
                )));
            }
            Err(BodyError::Transport(_)) => return Err(Problem::malformed("the request body could not be read")),
        };
        let Ok(data) = frame.into_data() else { continue };
        if collected.len() + data.len() > limit {
            discard_body(body).await;
            return Err(too_large());
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

/// Reads and throws away what is left of a body the request is refused without, so that the
/// refusal reaches the client. Most clients send the whole body before they read the answer; if
/// the server closes the connection with the body unread, the kernel resets it and the client sees
/// a broken pipe instead of the 4xx. Bounded in bytes and time: past that, the connection is
/// closed and a client still sending gets the reset.
pub(crate) async fn discard_body(mut body: RequestBody) {
    if body.is_end_stream() || body.size_hint().lower() > DISCARD_LIMIT_BYTES {
        return;
    }
    let discard = async {
        let mut discarded = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            discarded += frame.data_ref().map_or(0, |data| data.len() as u64);
            if discarded > DISCARD_LIMIT_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIMEOUT, discard).await;
}

/// Parses a JSON body; a body that is not JSON is a 400 problem naming where it broke.
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, Problem> {
    serde_json::from_slice(body).map_err(|error| {
        Problem::malformed(format!("the body is not valid JSON (line {}, column {})", error.line(), error.column()))
    })
}

/// Whether the request's content type is `wanted` (parameters such as charset allowed).
pub(crate) fn content_type_is(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(wanted))
}

/// Parses the query string into pairs.
pub(crate) fn query_pairs(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        decoded.push(byte);
                        i += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            other => decoded.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
