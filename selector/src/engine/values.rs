//! The value side of one transition: given a leaf's value, the states it leads to. Exact values are
//! found by hash, prefixes and suffixes by hash over the few lengths in use, numeric ranges by
//! bisection; only what no index fits is tested alternative by alternative.

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::alternative::{Alternative, FoldCache, Literal, NumericRange, Scalar, number_key};

/// A state of the matcher.
pub(crate) type StateId = u32;

/// Up to this many alternatives are simply tried in turn.
const FEW_ALTERNATIVES: usize = 6;

/// Where the values of one path lead, from one state.
#[derive(Debug)]
pub(crate) enum ValueMatcher {
    Few(Box<[Entry]>),
    Indexed(Box<Index>),
}

/// One alternative of a small matcher. An exact text or number carries a hash of its value, so
/// that a differing value is turned away without reading the alternative's text (which is
/// elsewhere in memory, and usually not in cache).
#[derive(Debug)]
pub(crate) struct Entry {
    hash: Option<u64>,
    alternative: Alternative,
    target: StateId,
}

fn literal_hash(literal: &Literal) -> Option<u64> {
    match literal {
        Literal::Text(text) => Some(FxBuildHasher.hash_one(&**text)),
        Literal::Number(n) => Some(n.key()),
        Literal::Null | Literal::Bool(_) => None,
    }
}

fn scalar_hash(value: Scalar<'_>) -> Option<u64> {
    match value {
        Scalar::Text(text) => Some(FxBuildHasher.hash_one(text)),
        Scalar::Number(x) => Some(number_key(x)),
        Scalar::Null | Scalar::Bool(_) => None,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    text: FxHashMap<Box<str>, Targets>,
    numbers: FxHashMap<u64, Targets>,
    null: Targets,
    true_: Targets,
    false_: Targets,
    folded: FxHashMap<Box<str>, Targets>,
    prefixes: Affixes,
    suffixes: Affixes,
    /// Sorted by lower bound, an absent lower bound first.
    ranges: Box<[(NumericRange, StateId)]>,
    present: Targets,
    rest: Box<[(Alternative, StateId)]>,
}

type Targets = Vec<StateId>;

/// Strings by their prefix (or suffix), with the lengths in use so that a value needs one lookup
/// per length rather than per pattern.
#[derive(Debug, Default)]
struct Affixes {
    by_text: FxHashMap<Box<str>, Targets>,
    lengths: Vec<usize>,
}

impl Affixes {
    fn insert(&mut self, affix: &str, target: StateId) {
        self.by_text.entry(affix.into()).or_default().push(target);
        if let Err(at) = self.lengths.binary_search(&affix.len()) {
            self.lengths.insert(at, affix.len());
        }
    }

    fn for_each(&self, text: &str, suffix: bool, f: &mut impl FnMut(StateId)) {
        for &length in &self.lengths {
            if length > text.len() {
                break;
            }
            let at = if suffix { text.len() - length } else { length };
            if !text.is_char_boundary(at) {
                continue;
            }
            let affix = if suffix { &text[at..] } else { &text[..at] };
            if let Some(targets) = self.by_text.get(affix) {
                targets.iter().copied().for_each(&mut *f);
            }
        }
    }
}

impl ValueMatcher {
    /// The matcher for these alternatives, each leading to its state.
    pub(crate) fn new(entries: Vec<(Alternative, StateId)>) -> Self {
        if entries.len() <= FEW_ALTERNATIVES {
            let entries = entries.into_iter().map(|(alternative, target)| {
                let hash = if let Alternative::Equals(literal) = &alternative { literal_hash(literal) } else { None };
                Entry { hash, alternative, target }
            });
            return Self::Few(entries.collect());
        }
        let mut index = Index::default();
        let mut ranges = Vec::new();
        let mut rest = Vec::new();
        for (alternative, target) in entries {
            match alternative {
                Alternative::Equals(Literal::Text(text)) => index.text.entry(text).or_default().push(target),
                Alternative::Equals(Literal::Number(n)) => index.numbers.entry(n.key()).or_default().push(target),
                Alternative::Equals(Literal::Null) => index.null.push(target),
                Alternative::Equals(Literal::Bool(true)) => index.true_.push(target),
                Alternative::Equals(Literal::Bool(false)) => index.false_.push(target),
                Alternative::EqualsIgnoreCase(folded) => index.folded.entry(folded).or_default().push(target),
                Alternative::Prefix(prefix) => index.prefixes.insert(&prefix, target),
                Alternative::Suffix(suffix) => index.suffixes.insert(&suffix, target),
                Alternative::Wildcard(ref wildcard) if wildcard.as_literal().is_some() => {
                    let literal = wildcard.as_literal().expect("checked");
                    index.text.entry(literal.into()).or_default().push(target);
                }
                Alternative::Numeric(range) => ranges.push((range, target)),
                Alternative::Exists(true) => index.present.push(target),
                other => rest.push((other, target)),
            }
        }
        ranges.sort_by(|(a, _), (b, _)| {
            let low = |r: &NumericRange| r.lower.map_or(f64::NEG_INFINITY, |b| b.value.get());
            low(a).total_cmp(&low(b))
        });
        index.ranges = ranges.into_boxed_slice();
        index.rest = rest.into_boxed_slice();
        Self::Indexed(Box::new(index))
    }

    /// Calls `f` with every state `value` leads to (a state may come more than once).
    pub(crate) fn for_each_target(&self, value: Scalar<'_>, fold: &mut FoldCache, mut f: impl FnMut(StateId)) {
        fold.reset();
        match self {
            Self::Few(entries) => {
                let mut value_hash = None;
                for entry in entries {
                    if let Some(hash) = entry.hash
                        && *value_hash.get_or_insert_with(|| scalar_hash(value)) != Some(hash)
                    {
                        continue;
                    }
                    if entry.alternative.matches_with(value, fold) {
                        f(entry.target);
                    }
                }
            }
            Self::Indexed(index) => index.for_each_target(value, fold, &mut f),
        }
    }
}

impl Index {
    fn for_each_target(&self, value: Scalar<'_>, fold: &mut FoldCache, f: &mut impl FnMut(StateId)) {
        let mut each = |targets: &Targets| targets.iter().copied().for_each(&mut *f);
        match value {
            Scalar::Text(text) => {
                if let Some(targets) = self.text.get(text) {
                    each(targets);
                }
                if !self.folded.is_empty()
                    && let Some(targets) = self.folded.get(fold.get(text))
                {
                    each(targets);
                }
                self.prefixes.for_each(text, false, f);
                self.suffixes.for_each(text, true, f);
            }
            Scalar::Number(x) => {
                if let Some(targets) = self.numbers.get(&number_key(x)) {
                    each(targets);
                }
                let candidates =
                    self.ranges.partition_point(|(range, _)| range.lower.is_none_or(|b| b.value.get() <= x));
                for (range, target) in &self.ranges[..candidates] {
                    if range.contains(x) {
                        f(*target);
                    }
                }
            }
            Scalar::Null => each(&self.null),
            Scalar::Bool(true) => each(&self.true_),
            Scalar::Bool(false) => each(&self.false_),
        }
        self.present.iter().copied().for_each(&mut *f);
        for (alternative, target) in &self.rest {
            if alternative.matches_with(value, fold) {
                f(*target);
            }
        }
    }
}
