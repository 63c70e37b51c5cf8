//! The event as selectors see it: `{type, source, subject, data, metadata}`, borrowed from the
//! event so that matching builds no JSON of its own.

use serde_json::{Map, Value};
use triggers_schemas::NewEvent;

/// The fields of an event a selector is matched against.
///
/// `source`, `subject` and `metadata` are optional in an event; when absent they are missing
/// fields (`{"exists": false}` matches them), not `null`. `data` is always present, `null` included.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// `type`.
    pub event_type: &'a str,
    /// `source`, if the event has one.
    pub source: Option<&'a str>,
    /// `subject`, if the event has one.
    pub subject: Option<&'a str>,
    /// `data`.
    pub data: &'a Value,
    /// `metadata`, if the event has it.
    pub metadata: Option<&'a Map<String, Value>>,
}

impl<'a> From<&'a NewEvent> for EventView<'a> {
    fn from(event: &'a NewEvent) -> Self {
        Self {
            event_type: &event.event_type,
            source: event.source.as_deref(),
            subject: event.subject.as_deref(),
            data: &event.data,
            metadata: event.metadata.as_ref(),
        }
    }
}
