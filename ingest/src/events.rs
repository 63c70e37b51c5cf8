//! `POST /v1/events` and `GET /v1/events/{id}`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{LOCATION, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use triggers_schemas::{EventId, NewEvent, Problem, Scope, StoredEvent, StreamRecord, Timestamp};
use triggers_stores::{IdempotencyBegin, RateDecision};
use triggers_stream::AppendRecord;

use crate::AppState;
use crate::auth::{self, Caller};
use crate::http_util::{Body, content_type_is, json, json_bytes, parse_json, problem, read_body};

/// The largest single event body, in bytes (1 MiB).
pub const MAX_EVENT_BYTES: usize = 1_048_576;
/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;

/// `POST /v1/events`.
pub(crate) async fn ingest(state: &AppState, request: http::Request<Incoming>) -> http::Response<Body> {
    let caller = match auth::customer(state, &request).await {
        Ok(caller) => caller,
        Err(refused) => return rejected(state, &refused, None),
    };
    let decision =
        match state.ports.limits.acquire(caller.customer.customer_id, caller.customer.rate_limit_per_sec, 1).await {
            Ok(decision) => decision,
            Err(_) => return failed(state, &Problem::unavailable("the rate limiter is unavailable; retry shortly")),
        };
    let mut response = match accept(state, &caller, &decision, request).await {
        Ok(response) => response,
        Err(refused) if refused.status >= 500 => failed(state, &refused),
        Err(refused) => rejected(state, &refused, Some(&decision)),
    };
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", decision.limit.into());
    headers.insert("ratelimit-remaining", decision.remaining.into());
    headers.insert("ratelimit-reset", decision.reset_secs.into());
    response
}

fn rejected(state: &AppState, refused: &Problem, decision: Option<&RateDecision>) -> http::Response<Body> {
    state.metrics.events_rejected.fetch_add(1, Ordering::Relaxed);
    let mut response = problem(refused);
    if let (429, Some(decision)) = (refused.status, decision) {
        response.headers_mut().insert(RETRY_AFTER, decision.reset_secs.into());
    }
    response
}

fn failed(state: &AppState, failure: &Problem) -> http::Response<Body> {
    state.metrics.events_failed.fetch_add(1, Ordering::Relaxed);
    problem(failure)
}

async fn accept(
    state: &AppState,
    caller: &Caller,
    decision: &RateDecision,
    request: http::Request<Incoming>,
) -> Result<http::Response<Body>, Problem> {
    caller.require(Scope::EventsWrite)?;
    if decision.granted == 0 {
        return Err(Problem::rate_limited(format!(
            "over the limit of {} events per second; retry after the Retry-After delay",
            decision.limit
        )));
    }
    if !content_type_is(&request, "application/json") {
        return Err(Problem::unsupported_media_type("send events as Content-Type: application/json"));
    }
    let idempotency_key = idempotency_key(&request)?;
    let body = read_body(request, MAX_EVENT_BYTES).await?;
    let event = NewEvent::from_json(parse_json(&body)?, "").map_err(Problem::validation)?;
    let customer_id = caller.customer.customer_id;

    let Some(key) = idempotency_key else { return append(state, caller, event).await.map(|(r, _)| r) };
    let fingerprint: [u8; 32] = Sha256::digest(&body).into();
    let begun = state.ports.limits.begin_idempotent(customer_id, &key, &fingerprint, IDEMPOTENCY_TTL_SECS).await;
    match begun.map_err(|_| Problem::unavailable("the idempotency store is unavailable; retry shortly"))? {
        IdempotencyBegin::Fresh => match append(state, caller, event).await {
            Ok((response, answer)) => {
                if let Err(error) = state.ports.limits.complete_idempotent(customer_id, &key, &answer).await {
                    tracing::warn!(%error, "recording an idempotent answer failed; a retry will be written again");
                }
                Ok(response)
            }
            Err(failure) => {
                let _ = state.ports.limits.abandon_idempotent(customer_id, &key).await;
                Err(failure)
            }
        },
        IdempotencyBegin::InFlight => Err(Problem::conflict("a request with this Idempotency-Key is still in flight")),
        IdempotencyBegin::Mismatch => {
            Err(Problem::idempotency_mismatch("this Idempotency-Key was used with a different body"))
        }
        IdempotencyBegin::Completed(answer) => {
            let mut response = accepted_response(answer);
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

fn idempotency_key(request: &http::Request<Incoming>) -> Result<Option<String>, Problem> {
    let Some(value) = request.headers().get("idempotency-key") else { return Ok(None) };
    let valid =
        value.to_str().ok().filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)));
    valid
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| Problem::malformed("the Idempotency-Key header must be 1 to 255 printable ASCII characters"))
}

/// Appends the event and answers 202. Also returns the body, for the idempotency store.
async fn append(
    state: &AppState,
    caller: &Caller,
    event: NewEvent,
) -> Result<(http::Response<Body>, Vec<u8>), Problem> {
    let record = StreamRecord {
        event_id: EventId::generate(),
        customer_id: caller.customer.customer_id,
        received_at: Timestamp::now(),
        event,
    };
    let append = AppendRecord { partition_key: record.customer_id.to_string(), data: Bytes::from(record.encode()) };
    let appended = state.ports.stream.append(vec![append]).await;
    let stream_down =
        || Problem::unavailable("the event stream is unavailable; the event was not accepted, retry shortly");
    match appended {
        Ok(mut results) if matches!(results.first(), Some(Ok(_))) => drop(results.pop()),
        Ok(results) => {
            if let Some(Err(error)) = results.first() {
                tracing::warn!(%error, "append refused");
            }
            return Err(stream_down());
        }
        Err(error) => {
            tracing::warn!(%error, "append failed");
            return Err(stream_down());
        }
    }
    state.metrics.events_accepted.fetch_add(1, Ordering::Relaxed);
    // The stream holds the event now; this row only lets `GET` show it as pending before the
    // consumer gets to it, so a failure here is logged, not reported.
    if let Err(error) = state.ports.events.insert_if_absent(&StoredEvent::from_record(&record)).await {
        tracing::warn!(%error, event_id = %record.event_id, "recording a pending event failed");
    }
    let answer = serde_json::to_vec(&serde_json::json!({
        "event_id": record.event_id,
        "status": "accepted",
        "received_at": record.received_at,
    }))
    .expect("answer serialises");
    Ok((accepted_response(answer.clone()), answer))
}

fn accepted_response(answer: Vec<u8>) -> http::Response<Body> {
    let event_id = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v.get("event_id").and_then(|id| id.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let mut response = json_bytes(StatusCode::ACCEPTED, answer);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/events/{event_id}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// `GET /v1/events/{id}`.
pub(crate) async fn get(state: &AppState, request: &http::Request<Incoming>, id: &str) -> http::Response<Body> {
    let found = async {
        let caller = auth::customer(state, request).await?;
        caller.require(Scope::EventsRead)?;
        let missing = || Problem::not_found(format!("no event {id}"));
        let event_id: EventId = id.parse().map_err(|_| missing())?;
        let stored = state.ports.events.get(caller.customer.customer_id, event_id).await;
        stored.map_err(|_| Problem::unavailable("the event store is unavailable; retry shortly"))?.ok_or_else(missing)
    };
    match found.await {
        Ok(event) => json(StatusCode::OK, &event.detailed_view()),
        Err(refused) => problem(&refused),
    }
}
