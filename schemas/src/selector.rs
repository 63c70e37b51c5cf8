//! Event selectors: EventBridge-style patterns that say which events start a workflow.
//!
//! A pattern is a JSON object. Each key names a field of the event view; its value is either a
//! nested pattern (for object fields) or an array of alternatives. An event matches when every
//! named field matches one of its alternatives; for an array in the event, any element may match.
//! `{}` matches every event.
//!
//! This build supports literal alternatives (strings, numbers, booleans, `null`). The operator
//! objects of the contract (`prefix`, `numeric`, …) are refused with a validation error naming the
//! offending path rather than silently never matching.

use serde_json::{Map, Value};

use crate::event::FieldError;

/// A parsed, validated selector, ready to match events.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Every named field must match.
    Fields(Vec<(String, Node)>),
    /// The field must equal one of these values.
    AnyOf(Vec<Literal>),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
}

impl Selector {
    /// Parses and validates a selector; errors carry JSON pointers under `pointer_prefix`.
    pub fn parse(pattern: &Value, pointer_prefix: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let root = match pattern {
            Value::Object(fields) => parse_fields(fields, pointer_prefix, &mut errors),
            _ => {
                errors.push(FieldError::new(pointer_prefix, "a selector must be a JSON object"));
                Node::Fields(Vec::new())
            }
        };
        if errors.is_empty() { Ok(Self { root }) } else { Err(errors) }
    }

    /// Whether `event` (the selector input of an event view) matches.
    pub fn matches(&self, event: &Value) -> bool {
        node_matches(&self.root, Some(event))
    }
}

fn parse_fields(fields: &Map<String, Value>, pointer: &str, errors: &mut Vec<FieldError>) -> Node {
    let mut parsed = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let at = format!("{pointer}/{}", escape_pointer(name));
        let node = match value {
            Value::Object(nested) => parse_fields(nested, &at, errors),
            Value::Array(alternatives) => parse_alternatives(alternatives, &at, errors),
            _ => {
                errors.push(FieldError::new(&at, "must be an array of alternatives or a nested pattern object"));
                continue;
            }
        };
        parsed.push((name.clone(), node));
    }
    Node::Fields(parsed)
}

fn parse_alternatives(alternatives: &[Value], pointer: &str, errors: &mut Vec<FieldError>) -> Node {
    if alternatives.is_empty() {
        errors.push(FieldError::new(pointer, "must list at least one alternative"));
    }
    let mut literals = Vec::with_capacity(alternatives.len());
    for (index, alternative) in alternatives.iter().enumerate() {
        let at = format!("{pointer}/{index}");
        match alternative {
            Value::Null => literals.push(Literal::Null),
            Value::Bool(b) => literals.push(Literal::Bool(*b)),
            Value::Number(n) => literals.push(Literal::Number(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => literals.push(Literal::Text(s.clone())),
            Value::Object(operator) => {
                let name = operator.keys().next().map(String::as_str).unwrap_or("{}");
                errors.push(FieldError::new(at, format!("operator {name:?} is not supported yet; use literal values")));
            }
            Value::Array(_) => errors.push(FieldError::new(at, "an alternative must not be an array")),
        }
    }
    Node::AnyOf(literals)
}

fn node_matches(node: &Node, value: Option<&Value>) -> bool {
    match node {
        Node::Fields(fields) => fields.iter().all(|(name, child)| {
            let field = match value {
                Some(Value::Object(object)) => object.get(name),
                _ => None,
            };
            node_matches(child, field)
        }),
        Node::AnyOf(literals) => match value {
            None => false,
            Some(Value::Array(elements)) => elements.iter().any(|e| literals.iter().any(|l| literal_matches(l, e))),
            Some(single) => literals.iter().any(|l| literal_matches(l, single)),
        },
    }
}

fn literal_matches(literal: &Literal, value: &Value) -> bool {
    match (literal, value) {
        (Literal::Null, Value::Null) => true,
        (Literal::Bool(a), Value::Bool(b)) => a == b,
        (Literal::Number(a), Value::Number(b)) => b.as_f64() == Some(*a),
        (Literal::Text(a), Value::String(b)) => a == b,
        _ => false,
    }
}

fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Owned values keep the `json!` literals at the call sites readable.
    #[allow(clippy::needless_pass_by_value)]
    fn matches(pattern: Value, event: Value) -> bool {
        Selector::parse(&pattern, "/event_selector").unwrap().matches(&event)
    }

    #[test]
    fn the_empty_pattern_matches_everything() {
        assert!(matches(json!({}), json!({"type": "a", "data": 1})));
    }

    #[test]
    fn literal_alternatives_match_exactly() {
        let event = json!({"type": "order.created", "data": {"total": 12, "paid": true, "tags": ["vip", "eu"]}});
        assert!(matches(json!({"type": ["order.created", "order.updated"]}), event.clone()));
        assert!(!matches(json!({"type": ["order.deleted"]}), event.clone()));
        assert!(matches(json!({"data": {"total": [12.0], "paid": [true]}}), event.clone()));
        assert!(matches(json!({"data": {"tags": ["eu"]}}), event.clone()));
        assert!(!matches(json!({"data": {"missing": ["x"]}}), event.clone()));
        assert!(!matches(json!({"data": {"total": ["12"]}}), event));
    }

    #[test]
    fn null_matches_a_present_null_only() {
        assert!(matches(json!({"subject": [null]}), json!({"subject": null})));
        assert!(!matches(json!({"subject": [null]}), json!({})));
    }

    #[test]
    fn invalid_patterns_name_the_offending_path() {
        let errors =
            Selector::parse(&json!({"type": "a", "data": {"n": [{"numeric": [">", 1]}], "e": []}}), "/event_selector")
                .unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/event_selector/data/e", "/event_selector/data/n/0", "/event_selector/type"]);
        assert!(Selector::parse(&json!([]), "/event_selector").is_err());
    }
}
