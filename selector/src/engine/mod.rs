//! The compiled matcher: all of a customer's selectors in one structure, so that matching an event
//! costs in proportion to the event's tested leaves and the partial matches they make, not to the
//! number of selectors.
//!
//! Every selector is expanded into conjunctions of tests (see `expand`). Each conjunction becomes a
//! path through a trie of *states*: from the start state, a transition is taken when a leaf at the
//! transition's field path has a value the transition accepts, and the state reached remembers the
//! conjunctions that continue from there. Conjunctions that begin with the same tests share their
//! states, so thousands of selectors that all start with `"type": ["order.created"]` cost one
//! lookup of `type`. A state where conjunctions end lists the selectors they belong to.
//!
//! Within a conjunction the tests are ordered to make the trie cheap to walk: exact values first
//! (paths with more distinct values first, as they split the selectors finest), then prefixes,
//! suffixes and wildcards, then numeric ranges, then `anything-but` and `exists`, and
//! `{"exists": false}` last, once every array element a test chose is known.
//!
//! Matching walks the trie from the start state with the event's flattened leaves. A walk carries
//! the array elements its leaves came from, so that the fields one conjunction matches never come
//! from different elements of one array; elements no later test can meet are dropped from it, and
//! walks reaching a state with the same elements are merged.

mod paths;
mod run;
mod values;

use std::cmp::Reverse;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::alternative::{Alternative, Literal};
use crate::pattern::Selector;
pub use run::BatchMatches;

use self::paths::{NodeId, Paths, PathsBuilder};
use self::values::{StateId, ValueMatcher};

/// All of one customer's selectors, compiled together. Selectors are known by their position in
/// the list the matcher was built from; the matcher is immutable, and a change to the list is a
/// new matcher.
#[derive(Debug)]
pub struct Matcher {
    paths: Paths,
    states: Box<[State]>,
    edges: Box<[Edge]>,
    absences: Box<[Absence]>,
    accepts: Box<[u32]>,
    values: Box<[ValueMatcher]>,
    selectors: usize,
}

/// A range of one of the matcher's flat arrays.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of<T>(self, items: &[T]) -> &[T] {
        &items[self.start as usize..(self.start + self.len) as usize]
    }
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// Transitions on a leaf's value, one per path.
    edges: Span,
    /// Transitions on the absence of a path.
    absences: Span,
    /// The selectors matched on reaching this state.
    accepts: Span,
    /// The pre-order range spanning every path still tested after this state; an array element
    /// whose path lies outside it can no longer matter.
    scope: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    node: NodeId,
    values: u32,
}

#[derive(Debug, Clone, Copy)]
struct Absence {
    node: NodeId,
    target: StateId,
}

/// How soon a test should come in its conjunction: the most selective and cheapest first.
fn rank(alternatives: &[&Alternative]) -> u8 {
    alternatives
        .iter()
        .map(|alternative| match alternative {
            Alternative::Equals(_) | Alternative::EqualsIgnoreCase(_) => 0,
            Alternative::Prefix(_)
            | Alternative::Suffix(_)
            | Alternative::PrefixIgnoreCase(_)
            | Alternative::SuffixIgnoreCase(_) => 1,
            Alternative::Wildcard(wildcard) if !wildcard.leading().is_empty() => 1,
            Alternative::Numeric(_) => 2,
            Alternative::Wildcard(_) | Alternative::AnythingBut(_) | Alternative::Exists(_) => 3,
        })
        .max()
        .unwrap_or(3)
}

/// One test of a conjunction, resolved to the trie.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Step {
    rank: u8,
    distinct: Reverse<u32>,
    /// The path's pre-order place: a deterministic order among equally ranked tests.
    place: u32,
    node: NodeId,
    alternatives: u32,
}

/// A test's alternatives as one set, and (when there are several) each on its own.
#[derive(Clone)]
struct Choice {
    whole: u32,
    each: Vec<u32>,
}

/// How many trie paths one conjunction may take by following each of a test's alternatives
/// separately. Past it, a test's alternatives lead to one state together.
///
/// Following alternatives separately lets conjunctions share states by value: every conjunction
/// that accepts `type` `order.created` continues from the one state that value leads to, whatever
/// other types each accepts. Leading a set of alternatives to one state instead gives every
/// distinct set its own state, and an event then visits each set that holds its value.
const SPLIT_PATHS: usize = 16;

impl Matcher {
    /// Compiles `selectors`; selector `i` of the list is reported as `i`.
    pub fn new<'s>(selectors: impl IntoIterator<Item = &'s Selector>) -> Self {
        let selectors: Vec<&'s Selector> = selectors.into_iter().collect();
        let mut paths = PathsBuilder::default();
        let mut alternative_sets: FxHashMap<Vec<&'s Alternative>, u32> = FxHashMap::default();
        let mut sets: Vec<Vec<&'s Alternative>> = Vec::new();
        let mut literals: FxHashMap<NodeId, FxHashSet<&Literal>> = FxHashMap::default();

        // First pass: resolve paths and alternative sets, and count the distinct literals each
        // path is compared with, which decides the order of the tests.
        let mut conjunctions = Vec::new();
        for (index, selector) in selectors.iter().enumerate() {
            for conjunction in selector.conjunctions() {
                let mut intern = |alternatives: Vec<&'s Alternative>| -> u32 {
                    let next = u32::try_from(sets.len()).expect("fewer than 2^32 alternative sets");
                    *alternative_sets.entry(alternatives.clone()).or_insert_with(|| {
                        sets.push(alternatives);
                        next
                    })
                };
                let tests: Vec<(NodeId, Choice, u8)> = conjunction
                    .tests
                    .iter()
                    .map(|test| {
                        let node = paths.tested(&test.path);
                        for alternative in &test.alternatives {
                            if let Alternative::Equals(literal) = alternative {
                                literals.entry(node).or_default().insert(literal);
                            }
                        }
                        let whole = intern(test.alternatives.clone());
                        let each = if test.alternatives.len() > 1 {
                            test.alternatives.iter().map(|a| intern(vec![*a])).collect()
                        } else {
                            Vec::new()
                        };
                        (node, Choice { whole, each }, rank(&test.alternatives))
                    })
                    .collect();
                let absent: Vec<NodeId> = conjunction.absent.iter().map(|path| paths.tested(path)).collect();
                conjunctions.push((index as u32, tests, absent));
            }
        }
        let (paths, renumbered) = paths.build();

        // Second pass: each conjunction becomes a path through the state trie.
        let mut next_state: StateId = 1;
        let mut positive: FxHashMap<(StateId, NodeId, u32), StateId> = FxHashMap::default();
        let mut negative: FxHashMap<(StateId, NodeId), StateId> = FxHashMap::default();
        let mut accepted: Vec<(StateId, u32)> = Vec::new();
        for (selector, tests, mut absent) in conjunctions {
            let mut steps: Vec<(Step, Vec<u32>)> = tests
                .into_iter()
                .map(|(node, choice, rank)| {
                    let distinct = Reverse(literals.get(&node).map_or(0, |set| set.len() as u32));
                    let node = renumbered[node as usize];
                    let step = Step { rank, distinct, place: paths.place(node), node, alternatives: choice.whole };
                    (step, choice.each)
                })
                .collect();
            steps.sort_unstable_by_key(|(step, _)| *step);
            steps.dedup_by_key(|(step, _)| *step);
            for node in &mut absent {
                *node = renumbered[*node as usize];
            }
            absent.sort_unstable_by_key(|&node| paths.place(node));
            absent.dedup();
            let mut frontier: Vec<StateId> = vec![0];
            for (step, each) in steps {
                let sets = if !each.is_empty() && frontier.len() * each.len() <= SPLIT_PATHS {
                    each
                } else {
                    vec![step.alternatives]
                };
                frontier = frontier
                    .iter()
                    .flat_map(|&state| sets.iter().map(move |&set| (state, set)))
                    .map(|(state, set)| {
                        *positive.entry((state, step.node, set)).or_insert_with(|| {
                            next_state += 1;
                            next_state - 1
                        })
                    })
                    .collect();
                frontier.sort_unstable();
                frontier.dedup();
            }
            for node in absent {
                for state in &mut frontier {
                    *state = *negative.entry((*state, node)).or_insert_with(|| {
                        next_state += 1;
                        next_state - 1
                    });
                }
            }
            accepted.extend(frontier.into_iter().map(|state| (state, selector)));
        }

        // Freeze: group transitions by state, build each path's value matcher, and compute each
        // state's scope bottom-up (every state is numbered after the state it is reached from).
        let state_count = next_state as usize;
        let mut positive: Vec<((StateId, NodeId, u32), StateId)> = positive.into_iter().collect();
        positive.sort_unstable_by_key(|&((state, node, set), _)| (state, node, set));
        let mut negative: Vec<((StateId, NodeId), StateId)> = negative.into_iter().collect();
        negative.sort_unstable();
        accepted.sort_unstable();
        accepted.dedup();

        let mut states = vec![
            State {
                edges: Span::default(),
                absences: Span::default(),
                accepts: Span::default(),
                scope: (u32::MAX, 0)
            };
            state_count
        ];
        let mut edges = Vec::new();
        let mut values = Vec::new();
        let mut successors: Vec<Vec<(NodeId, StateId)>> = vec![Vec::new(); state_count];
        for group in positive.chunk_by(|a, b| (a.0.0, a.0.1) == (b.0.0, b.0.1)) {
            let ((state, node, _), _) = group[0];
            let entries = group
                .iter()
                .flat_map(|&((_, _, set), target)| sets[set as usize].iter().map(move |a| ((*a).clone(), target)))
                .collect();
            let span = &mut states[state as usize].edges;
            if span.len == 0 {
                span.start = edges.len() as u32;
            }
            span.len += 1;
            edges.push(Edge { node, values: values.len() as u32 });
            values.push(ValueMatcher::new(entries));
            successors[state as usize].extend(group.iter().map(|&(_, target)| (node, target)));
        }
        let mut absences = Vec::with_capacity(negative.len());
        for &((state, node), target) in &negative {
            let span = &mut states[state as usize].absences;
            if span.len == 0 {
                span.start = absences.len() as u32;
            }
            span.len += 1;
            absences.push(Absence { node, target });
            successors[state as usize].push((node, target));
        }
        let mut accepts = Vec::with_capacity(accepted.len());
        for &(state, selector) in &accepted {
            let span = &mut states[state as usize].accepts;
            if span.len == 0 {
                span.start = accepts.len() as u32;
            }
            span.len += 1;
            accepts.push(selector);
        }
        for state in (0..state_count).rev() {
            let mut scope = (u32::MAX, 0);
            for &(node, target) in &successors[state] {
                let place = paths.place(node);
                let after = states[target as usize].scope;
                scope = (scope.0.min(place).min(after.0), scope.1.max(place).max(after.1));
            }
            states[state].scope = scope;
        }

        Self {
            paths,
            states: states.into_boxed_slice(),
            edges: edges.into_boxed_slice(),
            absences: absences.into_boxed_slice(),
            accepts: accepts.into_boxed_slice(),
            values: values.into_boxed_slice(),
            selectors: selectors.len(),
        }
    }

    /// How many selectors it was built from.
    pub fn len(&self) -> usize {
        self.selectors
    }

    /// Whether it was built from no selector.
    pub fn is_empty(&self) -> bool {
        self.selectors == 0
    }

    /// How many states its trie has (a measure of its size).
    pub fn state_count(&self) -> usize {
        self.states.len()
    }
}
