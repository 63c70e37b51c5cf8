//! Matching events against a compiled [`Matcher`]: flatten each event once, walk the state trie,
//! collect the selectors reached. Working memory lives in a per-thread scratch space that is
//! reused from event to event and from call to call, so a warm matcher allocates almost nothing.

use std::cell::RefCell;
use std::cmp::Ordering;

use rustc_hash::FxHashSet;

use super::paths::{Element, Flattened, NodeId, Occurrence};
use super::values::StateId;
use super::{Matcher, State};
use crate::alternative::FoldCache;
use crate::view::EventView;

/// Which selectors matched each event of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchMatches {
    /// `ends[i]` is where event `i`'s matches end in `selectors`.
    ends: Vec<u32>,
    selectors: Vec<u32>,
}

impl BatchMatches {
    /// The selectors (by their position in the matcher's list) that event `i` matched, ascending.
    pub fn event(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.selectors[start..self.ends[i] as usize]
    }

    /// How many events the batch had.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch had no event.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each event's matches, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> {
        (0..self.len()).map(|i| self.event(i))
    }
}

/// A walk through the trie: where it is, and the array elements its leaves came from (a range of
/// [`Scratch::elements`], sorted by array).
#[derive(Debug, Clone, Copy)]
struct Walk {
    state: StateId,
    elements: (u32, u32),
}

const NO_ELEMENTS: (u32, u32) = (0, 0);

/// States reached with array elements attached, and which elements (`(array, index)` pairs).
type ReachedWith = FxHashSet<(StateId, Box<[(u32, u32)]>)>;

/// Per-thread working memory. Marks are generation stamps: bumping the generation clears them all
/// at once, so no array is cleared between events.
#[derive(Default)]
struct Scratch {
    generation: u32,
    /// A state reached with no array element attached.
    state_reached: Vec<u32>,
    /// A path with leaves in the current event, and where they are in the flattened event.
    node_seen: Vec<u32>,
    node_leaves: Vec<(u32, u32)>,
    selector_matched: Vec<u32>,
    walks: Vec<Walk>,
    elements: Vec<Element>,
    merged: Vec<Element>,
    reached_with: ReachedWith,
    fold: FoldCache,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    fn prepare(&mut self, matcher: &Matcher) {
        for (marks, len) in [
            (&mut self.state_reached, matcher.states.len()),
            (&mut self.node_seen, matcher.paths.len()),
            (&mut self.selector_matched, matcher.selectors),
        ] {
            if marks.len() < len {
                marks.resize(len, 0);
            }
        }
        if self.node_leaves.len() < matcher.paths.len() {
            self.node_leaves.resize(matcher.paths.len(), (0, 0));
        }
    }

    fn next_generation(&mut self) -> u32 {
        if self.generation == u32::MAX {
            self.state_reached.fill(0);
            self.node_seen.fill(0);
            self.selector_matched.fill(0);
            self.generation = 0;
        }
        self.generation += 1;
        self.generation
    }
}

impl Matcher {
    /// The selectors each event matches, flattening each event once.
    pub fn match_batch(&self, events: &[EventView<'_>]) -> BatchMatches {
        let mut matches = BatchMatches { ends: Vec::with_capacity(events.len()), selectors: Vec::new() };
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.prepare(self);
            let mut flattened = Flattened::default();
            for event in events {
                let start = matches.selectors.len();
                if self.selectors > 0 {
                    self.paths.flatten(event, &mut flattened);
                    self.walk(&flattened, scratch, &mut matches.selectors);
                    matches.selectors[start..].sort_unstable();
                }
                matches.ends.push(matches.selectors.len() as u32);
            }
        });
        matches
    }

    /// The selectors `event` matches, ascending.
    pub fn matches(&self, event: &EventView<'_>) -> Vec<u32> {
        self.match_batch(std::slice::from_ref(event)).selectors
    }

    fn walk(&self, event: &Flattened<'_>, scratch: &mut Scratch, matched: &mut Vec<u32>) {
        let generation = scratch.next_generation();
        let Scratch {
            state_reached,
            node_seen,
            node_leaves,
            selector_matched,
            walks,
            elements,
            merged,
            reached_with,
            fold,
            ..
        } = scratch;
        for (i, occurrence) in event.occurrences.iter().enumerate() {
            let node = occurrence.node as usize;
            let i = i as u32;
            if node_seen[node] == generation {
                node_leaves[node].1 = i + 1;
            } else {
                node_seen[node] = generation;
                node_leaves[node] = (i, i + 1);
            }
        }
        let leaves_of = |node: NodeId| -> &[Occurrence<'_>] {
            if node_seen[node as usize] == generation {
                let (start, end) = node_leaves[node as usize];
                &event.occurrences[start as usize..end as usize]
            } else {
                &[]
            }
        };
        walks.clear();
        elements.clear();
        reached_with.clear();
        state_reached[0] = generation;
        walks.push(Walk { state: 0, elements: NO_ELEMENTS });
        let mut reach = Reach { states: &self.states, generation, state_reached, reached_with, walks, elements };

        while let Some(walk) = reach.walks.pop() {
            let state = &self.states[walk.state as usize];
            for &selector in state.accepts.of(&self.accepts) {
                if selector_matched[selector as usize] != generation {
                    selector_matched[selector as usize] = generation;
                    matched.push(selector);
                }
            }
            merged.clear();
            merged.extend_from_slice(reach.elements_of(walk));
            let chosen = merged.len();
            for edge in state.edges.of(&self.edges) {
                let leaves = leaves_of(edge.node);
                if leaves.is_empty() {
                    continue;
                }
                let values = &self.values[edge.values as usize];
                for occurrence in consistent(event, leaves, &merged[..chosen]) {
                    let inside = event.elements_of(occurrence);
                    merged.truncate(chosen);
                    if chosen == 0 && inside.is_empty() {
                        values.for_each_target(occurrence.value, fold, |target| reach.plain(target));
                    } else {
                        join(merged, inside);
                        values.for_each_target(occurrence.value, fold, |target| reach.with_elements(target, merged));
                    }
                }
            }
            merged.truncate(chosen);
            for absence in state.absences.of(&self.absences) {
                if consistent(event, leaves_of(absence.node), &merged[..chosen]).is_empty() {
                    if chosen == 0 {
                        reach.plain(absence.target);
                    } else {
                        reach.with_elements(absence.target, merged);
                    }
                }
            }
        }
    }
}

/// Records the states walks reach, merging walks that reach a state in the same condition.
struct Reach<'m> {
    states: &'m [State],
    generation: u32,
    state_reached: &'m mut [u32],
    reached_with: &'m mut ReachedWith,
    walks: &'m mut Vec<Walk>,
    elements: &'m mut Vec<Element>,
}

impl Reach<'_> {
    fn elements_of(&self, walk: Walk) -> &[Element] {
        &self.elements[walk.elements.0 as usize..walk.elements.1 as usize]
    }

    /// Reaches `target` with no array element attached.
    fn plain(&mut self, target: StateId) {
        let reached = &mut self.state_reached[target as usize];
        if *reached != self.generation {
            *reached = self.generation;
            self.walks.push(Walk { state: target, elements: NO_ELEMENTS });
        }
    }

    /// Reaches `target` having chosen these array elements (sorted by array).
    fn with_elements(&mut self, target: StateId, chosen: &[Element]) {
        let (low, high) = self.states[target as usize].scope;
        let relevant = |e: &&Element| e.first <= high && low <= e.last;
        if !chosen.iter().any(|e| relevant(&e)) {
            return self.plain(target);
        }
        // Not even a walk with no elements attached stands for this one: it could take more
        // leaves, but it would also find more of them where `{"exists": false}` wants none.
        let key: Box<[(u32, u32)]> = chosen.iter().filter(relevant).map(|e| (e.array, e.index)).collect();
        if self.reached_with.insert((target, key)) {
            let start = self.elements.len() as u32;
            self.elements.extend(chosen.iter().filter(relevant));
            self.walks.push(Walk { state: target, elements: (start, self.elements.len() as u32) });
        }
    }
}

/// Adds the elements of `inside` that `chosen` (sorted by array) lacks, keeping it sorted.
fn join(chosen: &mut Vec<Element>, inside: &[Element]) {
    for element in inside {
        if let Err(at) = chosen.binary_search_by_key(&element.array, |e| e.array) {
            chosen.insert(at, *element);
        }
    }
}

/// The leaves of `leaves` (one path's, in document order) that lie in the elements `chosen`
/// wherever they share an array with it.
///
/// Elements are chosen whole from the outermost array in: a choice inside an element always comes
/// with the choice of that element. So a leaf's agreement with `chosen`, read from its outermost
/// array in, is "before", "inside" or "after", and document order puts all the agreeing leaves
/// together: two bisections find them.
fn consistent<'e, 'a>(
    event: &'e Flattened<'a>,
    leaves: &'e [Occurrence<'a>],
    chosen: &[Element],
) -> &'e [Occurrence<'a>] {
    if chosen.is_empty() {
        return leaves;
    }
    let compare = |occurrence: &Occurrence<'_>| -> Ordering {
        for element in event.elements_of(occurrence) {
            match chosen.binary_search_by_key(&element.array, |e| e.array) {
                Ok(at) => match element.index.cmp(&chosen[at].index) {
                    Ordering::Equal => {}
                    unequal => return unequal,
                },
                Err(_) => return Ordering::Equal,
            }
        }
        Ordering::Equal
    };
    let start = leaves.partition_point(|o| compare(o) == Ordering::Less);
    let end = start + leaves[start..].partition_point(|o| compare(o) == Ordering::Equal);
    &leaves[start..end]
}
