//! `POST /v1/events` and `GET /v1/events/{id}`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use triggers_schemas::{EventId, FieldError, NewEvent, Problem, Scope, StoredEvent, StreamRecord, Timestamp};
use triggers_stores::{IdempotencyBegin, RateDecision};
use triggers_stream::{AppendRecord, StreamError};

use crate::auth::{self, Caller};
use crate::http_util::{
    Body, RequestBody, content_type_is, discard_body, json, json_bytes, parse_json, problem, read_body,
};
use crate::routes::PathParams;
use crate::{AppState, openapi};

/// The largest single event body, in bytes (1 MiB).
pub const MAX_EVENT_BYTES: usize = 1_048_576;
/// The media type of CloudEvents 1.0 in structured mode, accepted besides plain JSON.
const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";
/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;

/// Ingests one event: `202` once the stream holds it durably.
///
/// An event counts against the customer's rate limit only once nothing else can refuse it: a
/// request refused for its scope, content type, Idempotency-Key header, size, JSON or fields spends
/// nothing (its answer still reports the window), so a misconfigured or read-only key cannot drain
/// the budget of the customer's working ones.
#[utoipa::path(post, path = "/v1/events", tag = "events", summary = "Ingest one event",
    security(("apiKey" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1 to 255 printable ASCII characters; the same key with the same body within 24 h replays the first answer")),
    request_body(content(
        (openapi::Event = "application/json"),
        (openapi::CloudEvent = "application/cloudevents+json"))),
    responses(
        (status = 202, description = "Durably written to the stream (or, with `Idempotent-Replayed: true`, the first answer replayed)",
            body = openapi::Accepted),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown, revoked or expired API key", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks events:write", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body sent nothing for 10 s", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The first request with this Idempotency-Key is still in flight", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB, or the event as stored over the stream's record limit", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither application/json nor application/cloudevents+json", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid, or the Idempotency-Key was used with another body", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the customer's rate limit (see Retry-After)", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is unavailable; retry", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn ingest(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    _: PathParams,
) -> http::Response<Body> {
    let state = &state;
    let (parts, body) = request.into_parts();
    let caller = match auth::customer(state, &parts.headers).await {
        Ok(caller) => caller,
        Err(refused) => {
            discard_body(body).await;
            return rejected(state, &refused, None);
        }
    };
    let (customer_id, limit) = (caller.customer.customer_id, caller.customer.rate_limit_per_sec);
    let (mut response, decision) = match prepare(&caller, &parts.headers, body).await {
        Ok(prepared) => match state.ports.limits.acquire(customer_id, limit, 1).await {
            Ok(decision) if decision.granted == 0 => {
                let refused = Problem::rate_limited(format!(
                    "over the limit of {} events per second; retry after the Retry-After delay",
                    decision.limit
                ));
                (rejected(state, &refused, Some(&decision)), Some(decision))
            }
            Ok(decision) => {
                let response = match commit(state, prepared).await {
                    Ok(response) => response,
                    Err(refused) if refused.status >= 500 => failed(state, &refused),
                    Err(refused) => rejected(state, &refused, None),
                };
                (response, Some(decision))
            }
            Err(_) => (failed(state, &Problem::unavailable("the rate limiter is unavailable; retry shortly")), None),
        },
        Err(refused) => {
            // Counting nothing, the limiter only reports where the window stands.
            let window = state.ports.limits.acquire(customer_id, limit, 0).await;
            let response =
                if refused.status >= 500 { failed(state, &refused) } else { rejected(state, &refused, None) };
            (response, window.ok())
        }
    };
    if let Some(decision) = decision {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", decision.limit.into());
        headers.insert("ratelimit-remaining", decision.remaining.into());
        headers.insert("ratelimit-reset", decision.reset_secs.into());
    }
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

/// An event that passed every check and may be counted and written.
struct Prepared {
    record: StreamRecord,
    /// The record as the stream takes it, already checked against the stream's record limit.
    entry: AppendRecord,
    idempotency_key: Option<String>,
    /// The body's SHA-256, which an idempotency key is bound to.
    fingerprint: [u8; 32],
}

/// Everything that can refuse an event before it counts against the rate limit: the scope, the
/// content type and Idempotency-Key header (before the body is read), the size, the JSON, the
/// fields, and the size of the record as stored.
async fn prepare(caller: &Caller, headers: &HeaderMap, body: RequestBody) -> Result<Prepared, Problem> {
    let (cloudevent, header_key) = match check_request(caller, headers) {
        Ok(checked) => checked,
        Err(refused) => {
            discard_body(body).await;
            return Err(refused);
        }
    };
    let body = read_body(body, MAX_EVENT_BYTES).await?;
    let parsed = parse_json(&body)?;
    let (event, idempotency_key) = if cloudevent {
        let (event, id) = from_cloudevent(parsed).map_err(Problem::validation)?;
        // An explicit header is the client's word for this request; the CloudEvents id stands in
        // for it otherwise, so that a re-sent CloudEvent is not written twice.
        (event, header_key.or(Some(id)))
    } else {
        (NewEvent::from_json(parsed, "").map_err(Problem::validation)?, header_key)
    };
    let record = StreamRecord {
        event_id: EventId::generate(),
        customer_id: caller.customer.customer_id,
        received_at: Timestamp::now(),
        event,
    };
    // The record's size as stored is the last thing that can refuse it: checked before the event
    // counts and before the idempotency key is claimed, so that a refused event writes nothing.
    let entry = stream_entry(&record)?;
    Ok(Prepared { record, entry, idempotency_key, fingerprint: Sha256::digest(&body).into() })
}

/// Writes a counted event: straight to the stream, or through its idempotency key.
async fn commit(state: &Arc<AppState>, prepared: Prepared) -> Result<http::Response<Body>, Problem> {
    let Prepared { record, entry, idempotency_key, fingerprint } = prepared;
    let Some(key) = idempotency_key else { return append(state, record, entry).await.map(|(r, _)| r) };
    // hyper drops this future when the client hangs up mid-request. Claiming the key, writing the
    // event and recording the answer therefore run on a task of their own: a key claimed by a
    // request that nobody runs any more would answer every retry with a 409 for 24 hours.
    let detached = tokio::spawn(idempotent_append(Arc::clone(state), key, fingerprint, record, entry));
    detached.await.unwrap_or_else(|_| Err(Problem::internal("the event could not be accepted; retry shortly")))
}

/// What can be refused before the body is read: the scope, the content type and the
/// Idempotency-Key header. Says whether the body is a CloudEvent, and gives the header's key.
fn check_request(caller: &Caller, headers: &HeaderMap) -> Result<(bool, Option<String>), Problem> {
    caller.require(Scope::EventsWrite)?;
    let cloudevent = if content_type_is(headers, "application/json") {
        false
    } else if content_type_is(headers, CLOUDEVENTS_CONTENT_TYPE) {
        true
    } else {
        return Err(Problem::unsupported_media_type(
            "send events as Content-Type: application/json or application/cloudevents+json",
        ));
    };
    Ok((cloudevent, idempotency_key(headers)?))
}

/// Claims `key`, then appends the record and records the answer, or replays the answer recorded.
async fn idempotent_append(
    state: Arc<AppState>,
    key: String,
    fingerprint: [u8; 32],
    record: StreamRecord,
    entry: AppendRecord,
) -> Result<http::Response<Body>, Problem> {
    let customer_id = record.customer_id;
    let begun = state.ports.limits.begin_idempotent(customer_id, &key, &fingerprint, IDEMPOTENCY_TTL_SECS).await;
    match begun.map_err(|_| Problem::unavailable("the idempotency store is unavailable; retry shortly"))? {
        IdempotencyBegin::Fresh => match append(&state, record, entry).await {
            Ok((response, answer)) => {
                if let Err(error) = state.ports.limits.complete_idempotent(customer_id, &key, &answer).await {
                    // Releasing the claim lets a retry through (written again: at-least-once)
                    // rather than answering it 409 until the key expires.
                    tracing::warn!(%error, "recording an idempotent answer failed; releasing the key");
                    let _ = state.ports.limits.abandon_idempotent(customer_id, &key).await;
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

/// Whether `key` may be an idempotency key: 1 to 255 printable ASCII characters.
fn is_idempotency_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    value
        .to_str()
        .ok()
        .filter(|key| is_idempotency_key(key))
        .map(|key| Some(key.to_owned()))
        .ok_or_else(|| Problem::malformed("the Idempotency-Key header must be 1 to 255 printable ASCII characters"))
}

/// Validates a CloudEvents 1.0 structured-mode event and maps it onto an event: `type`, `source`,
/// `subject` and `data` keep their names, `time` becomes `occurred_at`, and every other attribute
/// (`datacontenttype`, `dataschema`, extensions) is kept in `metadata`, where selectors can see it.
/// Also returns the CloudEvents `id`, which acts as the idempotency key. Errors point at the
/// CloudEvents attribute names the client sent.
fn from_cloudevent(body: Value) -> Result<(NewEvent, String), Vec<FieldError>> {
    let Value::Object(mut attributes) = body else {
        return Err(vec![FieldError::new("", "a CloudEvent must be a JSON object")]);
    };
    let mut errors = Vec::new();
    match attributes.remove("specversion") {
        Some(Value::String(version)) if version == "1.0" => {}
        Some(_) => errors.push(FieldError::new("/specversion", "must be \"1.0\"")),
        None => errors.push(FieldError::new("/specversion", "is required (\"1.0\")")),
    }
    let id = match attributes.remove("id") {
        Some(Value::String(id)) if is_idempotency_key(&id) => Some(id),
        Some(_) => {
            errors.push(FieldError::new("/id", "must be a string of 1 to 255 printable ASCII characters"));
            None
        }
        None => {
            errors.push(FieldError::new("/id", "is required"));
            None
        }
    };
    if matches!(attributes.get("source"), None | Some(Value::Null)) {
        errors.push(FieldError::new("/source", "is required"));
    }
    if attributes.remove("data_base64").is_some() {
        errors.push(FieldError::new("/data_base64", "binary data is not supported; send JSON in data"));
    }
    let mut event = Map::new();
    for (attribute, field) in [("type", "type"), ("source", "source"), ("subject", "subject"), ("time", "occurred_at")]
    {
        if let Some(value) = attributes.remove(attribute) {
            event.insert(field.to_owned(), value);
        }
    }
    // Data is optional in CloudEvents; an event without it carries null.
    event.insert("data".to_owned(), attributes.remove("data").unwrap_or(Value::Null));
    if !attributes.is_empty() {
        event.insert("metadata".to_owned(), Value::Object(attributes));
    }
    match (NewEvent::from_json(Value::Object(event), ""), id) {
        (Ok(event), Some(id)) if errors.is_empty() => Ok((event, id)),
        (mapped, _) => {
            let renamed = mapped.err().into_iter().flatten().map(|error| match error.pointer.as_str() {
                "/occurred_at" => FieldError::new("/time", error.detail),
                _ => error,
            });
            errors.extend(renamed);
            Err(errors)
        }
    }
}

/// The stream entry of a record, partitioned by customer; a 413 when the record, as stored, is
/// over the stream's record limit. MessagePack can take more room than the JSON it came from (a
/// float takes 9 bytes), so a body within the body limit is no proof.
fn stream_entry(record: &StreamRecord) -> Result<AppendRecord, Problem> {
    let entry = AppendRecord { partition_key: record.customer_id.to_string(), data: Bytes::from(record.encode()) };
    entry.check_size().map_err(|too_large| append_refused(&too_large))?;
    Ok(entry)
}

/// The answer to a client whose event the stream did not take.
fn append_refused(error: &StreamError) -> Problem {
    match error {
        StreamError::RecordTooLarge { bytes, limit } => Problem::payload_too_large(format!(
            "the event takes {bytes} bytes as stored, over the stream's limit of {limit} bytes \
             (numbers take more room stored than in JSON); send a smaller event"
        )),
        _ => Problem::unavailable("the event stream is unavailable; the event was not accepted, retry shortly"),
    }
}

/// Appends the record and answers 202. Also returns the body, for the idempotency store.
async fn append(
    state: &AppState,
    record: StreamRecord,
    entry: AppendRecord,
) -> Result<(http::Response<Body>, Vec<u8>), Problem> {
    match state.ports.stream.append(vec![entry]).await {
        Ok(mut results) if matches!(results.first(), Some(Ok(_))) => drop(results.pop()),
        Ok(results) => {
            let error = match results.into_iter().next() {
                Some(Err(error)) => error,
                _ => StreamError::Unavailable("the stream gave no result for the event".into()),
            };
            tracing::warn!(%error, event_id = %record.event_id, "append refused");
            return Err(append_refused(&error));
        }
        Err(error) => {
            tracing::warn!(%error, event_id = %record.event_id, "append failed");
            return Err(append_refused(&error));
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

/// One event of the caller's, with its deliveries; another customer's is a `404` like a missing one.
#[utoipa::path(get, path = "/v1/events/{event_id}", tag = "events", summary = "Read one event",
    security(("apiKey" = [])),
    params(("event_id" = String, Path, description = "`evt_…`")),
    responses(
        (status = 200, description = "The event and its deliveries", body = openapi::EventView),
        (status = 401, description = "Bad API key", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks events:read", body = openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of this customer", body = openapi::Problem, content_type = "application/problem+json")))]
pub(crate) async fn get(
    state: Arc<AppState>,
    request: http::Request<RequestBody>,
    params: PathParams,
) -> http::Response<Body> {
    let id = params.get("event_id");
    let found = async {
        let caller = auth::customer(&state, request.headers()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_record_too_large_is_a_413_and_never_a_retryable_answer() {
        let too_large = append_refused(&StreamError::RecordTooLarge { bytes: 1_048_577, limit: 1_048_576 });
        assert_eq!(too_large.status, 413);
        assert!(too_large.detail.contains("1048577 bytes as stored"), "{}", too_large.detail);
        assert!(too_large.detail.contains("1048576"), "{}", too_large.detail);
        for down in [
            StreamError::Unavailable("network".into()),
            StreamError::Throttled("busy".into()),
            StreamError::NoSuchStream("events".into()),
        ] {
            assert_eq!(append_refused(&down).status, 503, "{down}");
        }
    }
}
