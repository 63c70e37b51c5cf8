//! Events written as JSON for the tests, and their views.

use serde_json::{Map, Value};
use triggers_selector::EventView;

/// An event as the tests write it: `{"type"?, "source"?, "subject"?, "data"?, "metadata"?}`.
/// `type` defaults to `"test.event"` and `data` to `null`.
pub struct Event {
    event_type: String,
    source: Option<String>,
    subject: Option<String>,
    data: Value,
    metadata: Option<Map<String, Value>>,
}

impl Event {
    pub fn new(json: &Value) -> Self {
        let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            event_type: text("type").unwrap_or_else(|| "test.event".into()),
            source: text("source"),
            subject: text("subject"),
            data: json.get("data").cloned().unwrap_or(Value::Null),
            metadata: json.get("metadata").and_then(Value::as_object).cloned(),
        }
    }

    pub fn view(&self) -> EventView<'_> {
        EventView {
            event_type: &self.event_type,
            source: self.source.as_deref(),
            subject: self.subject.as_deref(),
            data: &self.data,
            metadata: self.metadata.as_ref(),
        }
    }
}
