//! The event as a customer sends it, and its validation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// The longest `type`, `source` or `subject` accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// One event as accepted from a customer, after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// What happened, e.g. `order.created`: 1..=256 characters of `[A-Za-z0-9._:/-]`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload: any JSON value.
    pub data: Value,
    /// Where the event came from, e.g. `shop-eu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The data subject the event is about, used for GDPR requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When the event happened, according to the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    /// Free-form metadata: a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// One field that failed validation: a JSON pointer into the request and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the offending value, e.g. `/type` or `/events/3/data`.
    pub pointer: String,
    /// What is wrong, and what would be right.
    pub detail: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), detail: detail.into() }
    }
}

impl NewEvent {
    /// Validates a parsed JSON body as an event.
    ///
    /// `pointer_prefix` is where this event sits in the request (empty for a single event,
    /// `/events/3` inside a batch), so that errors point at the right place. Every problem is
    /// reported, not just the first, so a customer can fix a request in one round trip.
    pub fn from_json(body: Value, pointer_prefix: &str) -> Result<Self, Vec<FieldError>> {
        let Value::Object(mut fields) = body else {
            return Err(vec![FieldError::new(pointer_prefix, "an event must be a JSON object")]);
        };
        let mut errors = Vec::new();
        let at = |field: &str| format!("{pointer_prefix}/{field}");

        let event_type = match fields.remove("type") {
            Some(Value::String(text)) => match type_problem(&text) {
                None => Some(text),
                Some(problem) => {
                    errors.push(FieldError::new(at("type"), problem));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new(at("type"), "must be a string"));
                None
            }
            None => {
                errors.push(FieldError::new(at("type"), "is required"));
                None
            }
        };
        let data = fields.remove("data");
        if data.is_none() {
            errors.push(FieldError::new(at("data"), "is required (any JSON value, null included)"));
        }
        let source = optional_name(&mut fields, "source", &at, &mut errors);
        let subject = optional_name(&mut fields, "subject", &at, &mut errors);
        let occurred_at = match fields.remove("occurred_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => match Timestamp::parse_rfc3339(&text) {
                Some(at) => Some(at),
                None => {
                    errors.push(FieldError::new(at("occurred_at"), "must be an RFC 3339 timestamp"));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new(at("occurred_at"), "must be an RFC 3339 timestamp string"));
                None
            }
        };
        let metadata = match fields.remove("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                errors.push(FieldError::new(at("metadata"), "must be a JSON object"));
                None
            }
        };

        match (event_type, data) {
            (Some(event_type), Some(data)) if errors.is_empty() => {
                Ok(Self { event_type, data, source, subject, occurred_at, metadata })
            }
            _ => Err(errors),
        }
    }
}

/// Why `text` is not a valid event type, if it is not.
fn type_problem(text: &str) -> Option<&'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-');
    if text.is_empty() {
        Some("must not be empty")
    } else if text.chars().count() > MAX_NAME_CHARS {
        Some("must be at most 256 characters")
    } else if !text.chars().all(allowed) {
        Some("may contain only letters, digits and . _ : / -")
    } else {
        None
    }
}

fn optional_name(
    fields: &mut Map<String, Value>,
    name: &str,
    at: &dyn Fn(&str) -> String,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match fields.remove(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= MAX_NAME_CHARS => Some(text),
        Some(Value::String(_)) => {
            errors.push(FieldError::new(at(name), "must be at most 256 characters"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(at(name), "must be a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn accepts_a_full_event() {
        let event = NewEvent::from_json(
            json!({"type": "order.created", "data": {"id": 7}, "source": "shop-eu",
                   "subject": "user-123", "occurred_at": "2026-11-26T15:04:05.123Z",
                   "metadata": {"trace": "abc"}}),
            "",
        )
        .unwrap();
        assert_eq!(event.event_type, "order.created");
        assert_eq!(event.subject.as_deref(), Some("user-123"));
        assert_eq!(event.occurred_at.unwrap().to_string(), "2026-11-26T15:04:05.123Z");
    }

    #[test]
    fn null_data_is_data() {
        assert!(NewEvent::from_json(json!({"type": "a", "data": null}), "").is_ok());
    }

    #[test]
    fn reports_every_invalid_field_with_its_pointer() {
        let errors = NewEvent::from_json(
            json!({"type": "bad type!", "source": 5, "occurred_at": "soon", "metadata": []}),
            "/events/2",
        )
        .unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/events/2/type", "/events/2/data", "/events/2/source", "/events/2/occurred_at", "/events/2/metadata"]
        );
    }

    #[test]
    fn refuses_types_that_are_empty_or_too_long() {
        assert!(NewEvent::from_json(json!({"type": "", "data": 1}), "").is_err());
        let long = "a".repeat(257);
        assert!(NewEvent::from_json(json!({"type": long, "data": 1}), "").is_err());
        let longest = "a".repeat(256);
        assert!(NewEvent::from_json(json!({"type": longest, "data": 1}), "").is_ok());
    }

    #[test]
    fn refuses_a_body_that_is_not_an_object() {
        let errors = NewEvent::from_json(json!([1, 2]), "").unwrap_err();
        assert_eq!(errors[0].pointer, "");
    }
}
