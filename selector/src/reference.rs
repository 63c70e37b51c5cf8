//! The reference evaluation: one selector against one event, straight from the definition of the
//! language, with no index and no shared state. It is what the compiled matcher is tested against.

use serde_json::Value;

use crate::alternative::Scalar;
use crate::expand::{Conjunction, Path};
use crate::pattern::Selector;
use crate::view::EventView;

/// One leaf of an event: its path, its value, and the array elements it sits in.
struct Leaf<'a> {
    path: Path<'a>,
    value: Scalar<'a>,
    /// `(array, index)` for every enclosing array whose element here is an object or an array:
    /// leaves from different elements of one such array never match one conjunction together.
    /// A scalar element does not count, so `"tags": ["a", "b"]` can meet two tests on `tags`.
    elements: Vec<(usize, usize)>,
}

impl Selector {
    /// Whether `event` matches this selector, evaluated from the definition: one of the selector's
    /// conjunctions can be met by leaves of the event that never come from different elements of
    /// one array, and no leaf of its `{"exists": false}` paths lies within the elements chosen.
    ///
    /// This is the slow, obviously-correct form; match many selectors with [`crate::Matcher`].
    pub fn matches(&self, event: &EventView<'_>) -> bool {
        let leaves = leaves(event);
        self.conjunctions().iter().any(|conjunction| satisfied(conjunction, &leaves, 0, &mut Vec::new()))
    }
}

fn leaves<'a>(event: &EventView<'a>) -> Vec<Leaf<'a>> {
    let mut leaves = vec![Leaf { path: vec!["type"], value: Scalar::Text(event.event_type), elements: Vec::new() }];
    for (name, value) in [("source", event.source), ("subject", event.subject)] {
        if let Some(text) = value {
            leaves.push(Leaf { path: vec![name], value: Scalar::Text(text), elements: Vec::new() });
        }
    }
    let mut arrays = 0;
    walk(&mut leaves, vec!["data"], event.data, &mut Vec::new(), &mut arrays);
    for (name, value) in event.metadata.into_iter().flatten() {
        walk(&mut leaves, vec!["metadata", name.as_str()], value, &mut Vec::new(), &mut arrays);
    }
    leaves
}

fn walk<'a>(
    leaves: &mut Vec<Leaf<'a>>,
    path: Path<'a>,
    value: &'a Value,
    elements: &mut Vec<(usize, usize)>,
    arrays: &mut usize,
) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let mut inner = path.clone();
                inner.push(name);
                walk(leaves, inner, field, elements, arrays);
            }
        }
        Value::Array(items) => {
            let array = *arrays;
            *arrays += 1;
            for (index, item) in items.iter().enumerate() {
                let container = item.is_object() || item.is_array();
                if container {
                    elements.push((array, index));
                }
                walk(leaves, path.clone(), item, elements, arrays);
                if container {
                    elements.pop();
                }
            }
        }
        scalar => {
            leaves.push(Leaf { path, value: Scalar::from_json(scalar).expect("a scalar"), elements: elements.clone() })
        }
    }
}

/// Whether no two of these element lists put a leaf in different elements of one array.
fn consistent(left: &[(usize, usize)], right: &[(usize, usize)]) -> bool {
    left.iter().all(|(array, index)| right.iter().all(|(other, at)| array != other || index == at))
}

/// Tries every way of meeting the tests from `next` on, given the elements already `chosen`.
fn satisfied(
    conjunction: &Conjunction<'_>,
    leaves: &[Leaf<'_>],
    next: usize,
    chosen: &mut Vec<(usize, usize)>,
) -> bool {
    let Some(test) = conjunction.tests.get(next) else {
        return conjunction
            .absent
            .iter()
            .all(|path| !leaves.iter().any(|leaf| leaf.path == *path && consistent(&leaf.elements, chosen)));
    };
    for leaf in leaves {
        if leaf.path == test.path
            && test.alternatives.iter().any(|a| a.matches(leaf.value))
            && consistent(&leaf.elements, chosen)
        {
            let before = chosen.len();
            chosen.extend_from_slice(&leaf.elements);
            if satisfied(conjunction, leaves, next + 1, chosen) {
                return true;
            }
            chosen.truncate(before);
        }
    }
    false
}
