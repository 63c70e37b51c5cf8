//! Parsing and validating a selector: every mistake is reported at once, each with the JSON pointer
//! of the offending value.

use serde_json::{Map, Value};
use triggers_schemas::FieldError;

use crate::alternative::{Alternative, Bound, Exclusion, Literal, Num, NumericRange, Wildcard, fold_case};

/// The most `$or` combinations one selector may expand to. Each combination is matched like a
/// selector of its own, so this bounds what one subscription can cost the matcher.
pub const MAX_COMBINATIONS: usize = 256;

/// The fields of the event view, at the top of every selector.
const VIEW_FIELDS: [&str; 5] = ["type", "source", "subject", "data", "metadata"];

/// A parsed, validated selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub(crate) root: ObjectPattern,
}

/// An object level of a pattern: every field must match, and one branch of every `$or`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ObjectPattern {
    pub(crate) fields: Vec<(String, FieldPattern)>,
    pub(crate) any_of: Vec<Vec<ObjectPattern>>,
}

/// What a pattern says about one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldPattern {
    /// A nested pattern for an object field.
    Nested(ObjectPattern),
    /// Alternatives for a leaf: any one may match.
    Leaf(Vec<Alternative>),
}

impl Selector {
    /// Parses and validates a selector; errors carry JSON pointers under `pointer_prefix`.
    pub fn parse(pattern: &Value, pointer_prefix: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let root = match pattern {
            Value::Object(fields) => parse_object(fields, pointer_prefix, Level::View, &mut errors),
            _ => {
                errors.push(FieldError::new(pointer_prefix, "a selector must be a JSON object"));
                ObjectPattern::default()
            }
        };
        if errors.is_empty() {
            let combinations = root.combinations();
            if combinations > MAX_COMBINATIONS {
                errors.push(FieldError::new(
                    pointer_prefix,
                    format!(
                        "the selector expands to more than {MAX_COMBINATIONS} combinations of $or branches \
                         and alternatives with exists false; simplify it"
                    ),
                ));
            }
        }
        if errors.is_empty() { Ok(Self { root }) } else { Err(errors) }
    }
}

impl ObjectPattern {
    /// How many conjunctions this level expands to (saturating): the product over its fields and
    /// its `$or`s, where an `$or` contributes the sum over its branches.
    pub(crate) fn combinations(&self) -> usize {
        let fields = self.fields.iter().map(|(_, field)| match field {
            FieldPattern::Nested(nested) => nested.combinations(),
            FieldPattern::Leaf(alternatives) => {
                let absent = alternatives.iter().any(Alternative::is_absence);
                let present = alternatives.iter().any(|a| !a.is_absence());
                if absent && present { 2 } else { 1 }
            }
        });
        let ors = self
            .any_of
            .iter()
            .map(|branches| branches.iter().map(ObjectPattern::combinations).fold(0usize, usize::saturating_add));
        fields.chain(ors).fold(1usize, usize::saturating_mul)
    }
}

/// Where an object level sits, which decides the keys it may name.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    /// The top: only the fields of the event view.
    View,
    /// Anywhere below.
    Nested,
}

fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn parse_object(
    fields: &Map<String, Value>,
    pointer: &str,
    level: Level,
    errors: &mut Vec<FieldError>,
) -> ObjectPattern {
    let mut pattern = ObjectPattern::default();
    for (name, value) in fields {
        let at = format!("{pointer}/{}", escape_pointer(name));
        if name == "$or" {
            if let Some(branches) = parse_or(value, &at, level, errors) {
                pattern.any_of.push(branches);
            }
            continue;
        }
        if level == Level::View && !VIEW_FIELDS.contains(&name.as_str()) {
            errors.push(FieldError::new(
                &at,
                format!("unknown field {name:?}: selectors match type, source, subject, data and metadata"),
            ));
            continue;
        }
        let scalar_only = level == Level::View && matches!(name.as_str(), "type" | "source" | "subject");
        let object_only = level == Level::View && name == "metadata";
        let field = match value {
            Value::Array(alternatives) if !object_only => {
                FieldPattern::Leaf(parse_alternatives(alternatives, &at, errors))
            }
            Value::Object(nested) if !scalar_only => {
                if nested.is_empty() {
                    errors.push(FieldError::new(&at, "a nested pattern must name at least one field"));
                }
                FieldPattern::Nested(parse_object(nested, &at, Level::Nested, errors))
            }
            Value::Array(_) => {
                errors.push(FieldError::new(&at, "metadata is an object: name the metadata fields to match"));
                continue;
            }
            Value::Object(_) => {
                errors
                    .push(FieldError::new(&at, format!("{name} is a string: match it with an array of alternatives")));
                continue;
            }
            _ => {
                errors.push(FieldError::new(&at, "must be an array of alternatives or a nested pattern object"));
                continue;
            }
        };
        pattern.fields.push((name.clone(), field));
    }
    pattern
}

fn parse_or(value: &Value, pointer: &str, level: Level, errors: &mut Vec<FieldError>) -> Option<Vec<ObjectPattern>> {
    let Value::Array(branches) = value else {
        errors.push(FieldError::new(pointer, "$or must be an array of patterns"));
        return None;
    };
    if branches.is_empty() {
        errors.push(FieldError::new(pointer, "$or must list at least one pattern"));
    }
    let mut parsed = Vec::with_capacity(branches.len());
    for (index, branch) in branches.iter().enumerate() {
        let at = format!("{pointer}/{index}");
        match branch {
            Value::Object(fields) if !fields.is_empty() => parsed.push(parse_object(fields, &at, level, errors)),
            Value::Object(_) => errors.push(FieldError::new(at, "a branch of $or must name at least one field")),
            _ => errors.push(FieldError::new(at, "a branch of $or must be a pattern object")),
        }
    }
    Some(parsed)
}

fn parse_alternatives(alternatives: &[Value], pointer: &str, errors: &mut Vec<FieldError>) -> Vec<Alternative> {
    if alternatives.is_empty() {
        errors.push(FieldError::new(pointer, "must list at least one alternative"));
    }
    let mut parsed = Vec::with_capacity(alternatives.len());
    for (index, alternative) in alternatives.iter().enumerate() {
        let at = format!("{pointer}/{index}");
        match alternative {
            Value::Object(operator) => match parse_operator(operator, &at) {
                Ok(alternative) => parsed.push(alternative),
                Err(error) => errors.push(error),
            },
            Value::Array(_) => errors.push(FieldError::new(at, "an alternative must not be an array")),
            scalar => parsed.push(Alternative::Equals(literal(scalar).expect("a scalar is a literal"))),
        }
    }
    parsed
}

/// The literal form of a JSON scalar.
fn literal(value: &Value) -> Option<Literal> {
    match value {
        Value::Null => Some(Literal::Null),
        Value::Bool(b) => Some(Literal::Bool(*b)),
        Value::Number(n) => n.as_f64().map(|x| Literal::Number(Num::new(x))),
        Value::String(s) => Some(Literal::Text(s.as_str().into())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

const OPERATORS: &str = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric or exists";

fn parse_operator(operator: &Map<String, Value>, pointer: &str) -> Result<Alternative, FieldError> {
    let mut entries = operator.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return Err(FieldError::new(pointer, format!("an operator object has exactly one key, one of {OPERATORS}")));
    };
    let at = format!("{pointer}/{}", escape_pointer(name));
    let invalid = |detail: String| FieldError::new(&at, detail);
    match (name.as_str(), argument) {
        ("prefix", Value::String(prefix)) => Ok(Alternative::Prefix(prefix.as_str().into())),
        ("suffix", Value::String(suffix)) => Ok(Alternative::Suffix(suffix.as_str().into())),
        ("prefix" | "suffix", Value::Object(inner)) => {
            let folded = ignore_case_argument(inner)
                .ok_or_else(|| invalid(format!("{name} takes a string or {{\"equals-ignore-case\": string}}")))?;
            Ok(if name == "prefix" {
                Alternative::PrefixIgnoreCase(folded)
            } else {
                Alternative::SuffixIgnoreCase(folded)
            })
        }
        ("prefix" | "suffix", _) => {
            Err(invalid(format!("{name} takes a string or {{\"equals-ignore-case\": string}}")))
        }
        ("equals-ignore-case", Value::String(text)) => Ok(Alternative::EqualsIgnoreCase(fold_case(text))),
        ("equals-ignore-case", _) => Err(invalid("equals-ignore-case takes a string".into())),
        ("wildcard", Value::String(text)) => Wildcard::parse(text).map(Alternative::Wildcard).map_err(invalid),
        ("wildcard", _) => Err(invalid("wildcard takes a string".into())),
        ("exists", Value::Bool(present)) => Ok(Alternative::Exists(*present)),
        ("exists", _) => Err(invalid("exists takes true or false".into())),
        ("numeric", Value::Array(terms)) => parse_numeric(terms, &at),
        ("numeric", _) => Err(invalid("numeric takes an array such as [\">\", 0, \"<=\", 5]".into())),
        ("anything-but", argument) => parse_anything_but(argument, &at).map(Alternative::AnythingBut),
        ("cidr", _) => Err(invalid("the cidr operator is not supported".into())),
        (other, _) => Err(FieldError::new(pointer, format!("unknown operator {other:?}; use one of {OPERATORS}"))),
    }
}

/// The lower-cased string of `{"equals-ignore-case": string}`.
fn ignore_case_argument(inner: &Map<String, Value>) -> Option<Box<str>> {
    match (inner.len(), inner.get("equals-ignore-case")) {
        (1, Some(Value::String(text))) => Some(fold_case(text)),
        _ => None,
    }
}

fn parse_numeric(terms: &[Value], pointer: &str) -> Result<Alternative, FieldError> {
    let shape = "numeric takes one comparison such as [\">=\", 5] or a lower and an upper bound such as \
                 [\">\", 0, \"<=\", 5]; operators are =, <, <=, > and >=";
    let invalid = || FieldError::new(pointer, shape);
    if terms.is_empty() || terms.len() > 4 || !terms.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let mut range = NumericRange { lower: None, upper: None };
    for (index, pair) in terms.chunks(2).enumerate() {
        let Value::String(operator) = &pair[0] else {
            return Err(FieldError::new(format!("{pointer}/{}", index * 2), "expected an operator such as \">=\""));
        };
        let Value::Number(number) = &pair[1] else {
            return Err(FieldError::new(format!("{pointer}/{}", index * 2 + 1), "expected a JSON number"));
        };
        let value = Num::new(number.as_f64().ok_or_else(invalid)?);
        match operator.as_str() {
            "=" if terms.len() == 2 => return Ok(Alternative::Equals(Literal::Number(value))),
            ">" | ">=" if range.lower.is_none() => {
                range.lower = Some(Bound { value, inclusive: operator == ">=" });
            }
            "<" | "<=" if range.upper.is_none() => {
                range.upper = Some(Bound { value, inclusive: operator == "<=" });
            }
            _ => return Err(invalid()),
        }
    }
    if range.is_empty() {
        return Err(FieldError::new(pointer, "the range is empty: its lower bound is not below its upper bound"));
    }
    Ok(Alternative::Numeric(range))
}

fn parse_anything_but(argument: &Value, pointer: &str) -> Result<Exclusion, FieldError> {
    let shape = "anything-but takes a string, a number, a non-empty list of only strings or only numbers, \
                 or an object with prefix, suffix, equals-ignore-case or wildcard";
    let invalid = || FieldError::new(pointer, shape);
    match argument {
        Value::String(_) | Value::Number(_) => {
            Ok(Exclusion::Values(Box::new([literal(argument).ok_or_else(invalid)?])))
        }
        Value::Array(values) => {
            let all_strings = values.iter().all(Value::is_string);
            let all_numbers = values.iter().all(Value::is_number);
            if values.is_empty() || !(all_strings || all_numbers) {
                return Err(invalid());
            }
            let literals: Option<Vec<Literal>> = values.iter().map(literal).collect();
            Ok(Exclusion::Values(literals.ok_or_else(invalid)?.into_boxed_slice()))
        }
        Value::Object(inner) if inner.len() == 1 => {
            let (name, value) = inner.iter().next().expect("one entry");
            let at = format!("{pointer}/{}", escape_pointer(name));
            match (name.as_str(), value) {
                ("prefix", Value::String(prefix)) => Ok(Exclusion::Prefix(prefix.as_str().into())),
                ("suffix", Value::String(suffix)) => Ok(Exclusion::Suffix(suffix.as_str().into())),
                ("wildcard", Value::String(text)) => {
                    Wildcard::parse(text).map(Exclusion::Wildcard).map_err(|detail| FieldError::new(&at, detail))
                }
                ("equals-ignore-case", Value::String(text)) => Ok(Exclusion::IgnoreCase(Box::new([fold_case(text)]))),
                ("equals-ignore-case", Value::Array(texts))
                    if !texts.is_empty() && texts.iter().all(Value::is_string) =>
                {
                    Ok(Exclusion::IgnoreCase(texts.iter().filter_map(Value::as_str).map(fold_case).collect()))
                }
                ("prefix" | "suffix" | "wildcard", _) => Err(FieldError::new(at, format!("{name} takes a string"))),
                ("equals-ignore-case", _) => {
                    Err(FieldError::new(at, "equals-ignore-case takes a string or a non-empty list of strings"))
                }
                _ => Err(invalid()),
            }
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointers(pattern: &Value) -> Vec<String> {
        Selector::parse(pattern, "/event_selector").unwrap_err().into_iter().map(|e| e.pointer).collect()
    }

    #[test]
    fn every_mistake_is_reported_with_its_pointer() {
        let pattern = json!({
            "type": "a",
            "data": {
                "n": [{"numeric": [">", 1, ">", 2]}],
                "e": [],
                "w": [{"wildcard": "a**b"}],
                "x": [{"prefix": 3}],
                "y": [{"anything-but": ["a", 1]}],
                "z": [{"exists": "yes"}],
                "u": [{"between": [1, 2]}],
                "v": [{"prefix": "a", "suffix": "b"}],
                "q": [{"numeric": [">", "1"]}],
                "o": {},
            },
            "colour": ["red"],
            "$or": [],
        });
        assert_eq!(
            pointers(&pattern),
            [
                "/event_selector/$or",
                "/event_selector/colour",
                "/event_selector/data/e",
                "/event_selector/data/n/0/numeric",
                "/event_selector/data/o",
                "/event_selector/data/q/0/numeric/1",
                "/event_selector/data/u/0",
                "/event_selector/data/v/0",
                "/event_selector/data/w/0/wildcard",
                "/event_selector/data/x/0/prefix",
                "/event_selector/data/y/0/anything-but",
                "/event_selector/data/z/0/exists",
                "/event_selector/type",
            ]
        );
    }

    #[test]
    fn the_view_fields_have_their_shapes() {
        assert_eq!(pointers(&json!({"type": {"x": ["a"]}})), ["/event_selector/type"]);
        assert_eq!(pointers(&json!({"metadata": ["a"]})), ["/event_selector/metadata"]);
        assert_eq!(
            pointers(&json!({"$or": [{"detail": ["a"]}, {}]})),
            ["/event_selector/$or/0/detail", "/event_selector/$or/1"]
        );
        assert!(Selector::parse(&json!({"data": ["a"], "metadata": {"k": ["v"]}}), "").is_ok());
        assert!(Selector::parse(&json!([]), "").is_err());
    }

    #[test]
    fn numeric_ranges_must_be_well_formed() {
        let ok = |terms: Value| Selector::parse(&json!({"data": {"n": [{"numeric": terms}]}}), "").is_ok();
        assert!(ok(json!([">", 0, "<=", 5])));
        assert!(ok(json!(["<", 10])));
        assert!(ok(json!(["=", 3.018e2])));
        assert!(ok(json!(["<=", 5, ">", 0])));
        assert!(ok(json!([">=", 5, "<=", 5])));
        assert!(!ok(json!(["=", 1, "<", 2])));
        assert!(!ok(json!([">", 5, "<", 5])));
        assert!(!ok(json!([">", 6, "<", 5])));
        assert!(!ok(json!([">", 1, ">", 0])));
        assert!(!ok(json!(["!=", 1])));
        assert!(!ok(json!([])));
        assert!(!ok(json!([">", 1, "<"])));
    }

    #[test]
    fn anything_but_takes_the_documented_shapes() {
        let ok = |argument: Value| Selector::parse(&json!({"data": {"s": [{"anything-but": argument}]}}), "").is_ok();
        assert!(ok(json!("x")));
        assert!(ok(json!(123)));
        assert!(ok(json!(["a", "b"])));
        assert!(ok(json!([1, 2])));
        assert!(ok(json!({"prefix": "init"})));
        assert!(ok(json!({"suffix": ".png"})));
        assert!(ok(json!({"equals-ignore-case": ["a", "B"]})));
        assert!(ok(json!({"wildcard": "*/lib/*"})));
        assert!(!ok(json!([])));
        assert!(!ok(json!(["a", 1])));
        assert!(!ok(json!(null)));
        assert!(!ok(json!(true)));
        assert!(!ok(json!([true])));
        assert!(!ok(json!({"numeric": [">", 1]})));
        assert!(!ok(json!({"prefix": "a", "suffix": "b"})));
    }

    #[test]
    fn expansion_is_bounded() {
        let or = |n: usize| Value::Array((0..n).map(|i| json!({"data": {format!("f{i}"): [i]}})).collect());
        // 16 × 16 = 256 combinations is the limit; one more branch goes over it.
        assert!(Selector::parse(&json!({"$or": or(16), "data": {"$or": or(16)}}), "").is_ok());
        let errors = Selector::parse(&json!({"$or": or(16), "data": {"$or": or(17)}}), "/s").unwrap_err();
        assert_eq!(errors[0].pointer, "/s");
        // An alternative list mixing exists false with other values counts twice.
        let mixed = json!({"$or": or(16), "data": {"$or": or(16), "m": ["a", {"exists": false}]}});
        assert!(Selector::parse(&mixed, "").is_err());
    }
}
