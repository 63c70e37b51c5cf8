//! RFC 9457 problem documents: the one shape every error response takes.

use serde::{Deserialize, Serialize};

use crate::event::FieldError;

/// The media type of every error response.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document.
///
/// `type` is a stable URN per kind of error, so clients can branch on it; `detail` says what to fix.
/// A problem never carries a stack trace or an internal error message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A stable URN naming the kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of error.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and what to do about it.
    pub detail: String,
    /// For validation errors: every offending field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

macro_rules! problem_kinds {
    ($($(#[$doc:meta])* $fn_name:ident => $status:literal, $slug:literal, $title:literal;)*) => {
        impl Problem {
            $(
                $(#[$doc])*
                pub fn $fn_name(detail: impl Into<String>) -> Self {
                    Self {
                        kind: concat!("urn:triggers:problem:", $slug).to_owned(),
                        title: $title.to_owned(),
                        status: $status,
                        detail: detail.into(),
                        errors: Vec::new(),
                    }
                }
            )*
        }
    };
}

problem_kinds! {
    /// 400: the body is not well-formed JSON, or a query parameter is not well-formed.
    malformed => 400, "malformed-request", "Malformed request";
    /// 401: no usable credentials.
    unauthorized => 401, "unauthorized", "Unauthorized";
    /// 403: the credentials lack the needed scope.
    forbidden => 403, "forbidden", "Forbidden";
    /// 404: no such resource, or it belongs to another customer.
    not_found => 404, "not-found", "Not found";
    /// 405: the route exists but not with this method.
    method_not_allowed => 405, "method-not-allowed", "Method not allowed";
    /// 408: the request body stalled: nothing arrived for the body deadline.
    request_timeout => 408, "request-timeout", "Request timeout";
    /// 409: the same idempotency key is still being processed.
    conflict => 409, "conflict", "Conflict";
    /// 413: the body is larger than allowed.
    payload_too_large => 413, "payload-too-large", "Payload too large";
    /// 415: the content type is not one this route accepts.
    unsupported_media_type => 415, "unsupported-media-type", "Unsupported media type";
    /// 422: the body is well-formed but a field is missing or invalid.
    invalid => 422, "validation-failed", "Validation failed";
    /// 422: an idempotency key was reused with a different body.
    idempotency_mismatch => 422, "idempotency-key-reused", "Idempotency key reused";
    /// 429: over the customer's rate limit.
    rate_limited => 429, "rate-limited", "Too many requests";
    /// 500: a fault on our side; the detail never says more than that.
    internal => 500, "internal", "Internal error";
    /// 503: a dependency is unavailable; retrying later is safe.
    unavailable => 503, "unavailable", "Service unavailable";
}

impl Problem {
    /// A 422 listing every offending field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [only] => format!("{} {}", display_pointer(&only.pointer), only.detail),
            many => format!("{} fields are invalid; see errors", many.len()),
        };
        Self { errors, ..Self::invalid(detail) }
    }

    /// The problem as a JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a problem serialises")
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "the body" } else { pointer }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problems_name_each_field() {
        let problem = Problem::validation(vec![FieldError::new("/type", "is required")]);
        let json: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(json["status"], 422);
        assert_eq!(json["type"], "urn:triggers:problem:validation-failed");
        assert_eq!(json["detail"], "/type is required");
        assert_eq!(json["errors"][0]["pointer"], "/type");
    }

    #[test]
    fn other_problems_have_no_errors_member() {
        let json: serde_json::Value = serde_json::from_slice(&Problem::not_found("no such event").to_json()).unwrap();
        assert!(json.get("errors").is_none());
        assert_eq!(json["status"], 404);
    }
}
