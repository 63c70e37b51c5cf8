//! Small helpers for building responses and reading bodies.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use serde::Serialize;
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

/// The most of a refused request body that is read and thrown away before answering.
const DISCARD_LIMIT_BYTES: u64 = 8 * 1024 * 1024;
/// How long throwing a refused body away may take.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a body of at most `limit` bytes; a larger one is a 413 problem, whatever its
/// Content-Length claims, and is not kept past the limit.
pub(crate) async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, Problem> {
    let too_large = || Problem::payload_too_large(format!("the body must be at most {limit} bytes"));
    // A declared Content-Length is the body's exact size, so an oversized one is refused unread.
    if body.size_hint().lower() > limit as u64 {
        discard_body(body).await;
        return Err(too_large());
    }
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(Problem::malformed("the request body could not be read")) };
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
pub(crate) async fn discard_body(mut body: Incoming) {
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
