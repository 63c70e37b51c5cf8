//! A selector as an OR of `$or`-free conjunctions: what both the reference evaluation and the
//! compiled matcher work from.
//!
//! `{"a": [1], "$or": [{"b": [2]}, {"c": [3]}]}` is `a=1 ∧ b=2` or `a=1 ∧ c=3`: each `$or` branch is
//! merged into its parent level, and all the fields one conjunction names are matched together
//! (inside an array of objects, from the same element). An alternative list that mixes
//! `{"exists": false}` with other alternatives becomes two conjunctions, one where the field is
//! absent and one where a value matches.

use crate::alternative::Alternative;
use crate::pattern::{FieldPattern, ObjectPattern, Selector};

/// A field path from the event view's root: `["data", "order", "total"]`.
pub(crate) type Path<'s> = Vec<&'s str>;

/// A positive test: some leaf at `path` matches one of `alternatives`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Test<'s> {
    pub(crate) path: Path<'s>,
    pub(crate) alternatives: Vec<&'s Alternative>,
}

/// Tests that must all hold at once.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Conjunction<'s> {
    /// Each must be met by some leaf; the leaves chosen never come from different elements of one
    /// array.
    pub(crate) tests: Vec<Test<'s>>,
    /// Paths with no leaf inside the array elements the tests chose (arrays they did not choose
    /// from count whole).
    pub(crate) absent: Vec<Path<'s>>,
}

impl Conjunction<'_> {
    fn join(&self, other: &Self) -> Self {
        let mut joined = self.clone();
        joined.tests.extend(other.tests.iter().cloned());
        joined.absent.extend(other.absent.iter().cloned());
        joined
    }
}

impl Selector {
    /// The conjunctions this selector is the OR of; at most [`crate::MAX_COMBINATIONS`].
    pub(crate) fn conjunctions(&self) -> Vec<Conjunction<'_>> {
        expand_object(&self.root, &Vec::new())
    }
}

fn expand_object<'s>(pattern: &'s ObjectPattern, prefix: &Path<'s>) -> Vec<Conjunction<'s>> {
    let mut conjunctions = vec![Conjunction::default()];
    for (name, field) in &pattern.fields {
        let mut path = prefix.clone();
        path.push(name.as_str());
        let options = match field {
            FieldPattern::Nested(nested) => expand_object(nested, &path),
            FieldPattern::Leaf(alternatives) => expand_leaf(alternatives, path),
        };
        conjunctions = product(&conjunctions, &options);
    }
    for branches in &pattern.any_of {
        let options: Vec<Conjunction<'s>> = branches.iter().flat_map(|branch| expand_object(branch, prefix)).collect();
        conjunctions = product(&conjunctions, &options);
    }
    conjunctions
}

fn expand_leaf<'s>(alternatives: &'s [Alternative], path: Path<'s>) -> Vec<Conjunction<'s>> {
    let present: Vec<&Alternative> = alternatives.iter().filter(|a| !a.is_absence()).collect();
    let mut options = Vec::with_capacity(2);
    if alternatives.iter().any(Alternative::is_absence) {
        options.push(Conjunction { tests: Vec::new(), absent: vec![path.clone()] });
    }
    if !present.is_empty() {
        options.push(Conjunction { tests: vec![Test { path, alternatives: present }], absent: Vec::new() });
    }
    options
}

fn product<'s>(left: &[Conjunction<'s>], right: &[Conjunction<'s>]) -> Vec<Conjunction<'s>> {
    left.iter().flat_map(|l| right.iter().map(move |r| l.join(r))).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Owned values keep the `json!` literals at the call sites readable.
    #[allow(clippy::needless_pass_by_value)]
    fn shapes(pattern: serde_json::Value) -> Vec<(Vec<String>, Vec<String>)> {
        let selector = Selector::parse(&pattern, "").unwrap();
        selector
            .conjunctions()
            .iter()
            .map(|c| {
                (c.tests.iter().map(|t| t.path.join(".")).collect(), c.absent.iter().map(|p| p.join(".")).collect())
            })
            .collect()
    }

    #[test]
    fn or_branches_merge_into_their_level() {
        let pattern =
            json!({"source": ["s"], "data": {"$or": [{"a": [1]}, {"b": [2], "$or": [{"c": [3]}, {"d": [4]}]}]}});
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            shapes(pattern),
            [
                (owned(&["data.a", "source"]), vec![]),
                (owned(&["data.b", "data.c", "source"]), vec![]),
                (owned(&["data.b", "data.d", "source"]), vec![]),
            ]
        );
    }

    #[test]
    fn exists_false_among_alternatives_splits_the_conjunction() {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            shapes(json!({"data": {"x": ["a", {"exists": false}]}})),
            [(vec![], owned(&["data.x"])), (owned(&["data.x"]), vec![])]
        );
        assert_eq!(shapes(json!({})), [(vec![], vec![])]);
    }
}
