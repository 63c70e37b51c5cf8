//! The field names the patterns use, as a trie, and the flattening of an event guided by it: only
//! the leaves at paths some pattern tests are produced, and subtrees no pattern names are never
//! entered.

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde_json::{Map, Value};

use crate::alternative::Scalar;
use crate::view::EventView;

/// A node of the path trie; node 0 is the event view's root.
pub(crate) type NodeId = u32;

/// Past this many children a node looks names up by hash rather than by comparing each.
const FEW_CHILDREN: usize = 8;

/// The path trie, frozen.
#[derive(Debug)]
pub(crate) struct Paths {
    nodes: Box<[PathNode]>,
    /// The nodes of `type`, `source`, `subject`, `data` and `metadata`, if a pattern names them.
    view: [Option<NodeId>; 5],
}

#[derive(Debug)]
struct PathNode {
    children: Children,
    /// Whether some pattern tests the leaves at this path.
    tested: bool,
    /// This node's place in a pre-order walk of the trie, and the last place in its subtree: a
    /// node is under this one exactly when its place lies in `first..=last`.
    first: u32,
    last: u32,
}

#[derive(Debug)]
enum Children {
    /// Each name with its hash, which is compared first: an event's keys are hashed once each,
    /// and most differ from every name in the hash alone.
    Few(Box<[(u64, Box<str>, NodeId)]>),
    Many(FxHashMap<Box<str>, NodeId>),
}

fn name_hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Children {
    fn len(&self) -> usize {
        match self {
            Self::Few(children) => children.len(),
            Self::Many(children) => children.len(),
        }
    }

    fn get(&self, name: &str) -> Option<NodeId> {
        match self {
            Self::Few(children) => {
                let hash = name_hash(name);
                children.iter().find(|(h, n, _)| *h == hash && **n == *name).map(|(_, _, id)| *id)
            }
            Self::Many(children) => children.get(name).copied(),
        }
    }
}

/// Builds the trie while patterns are compiled.
#[derive(Debug)]
pub(crate) struct PathsBuilder {
    nodes: Vec<(FxHashMap<Box<str>, NodeId>, bool)>,
}

impl Default for PathsBuilder {
    fn default() -> Self {
        Self { nodes: vec![(FxHashMap::default(), false)] }
    }
}

impl PathsBuilder {
    /// The node of `path`, created if new, marked as tested.
    pub(crate) fn tested(&mut self, path: &[&str]) -> NodeId {
        let mut node = 0;
        for name in path {
            node = match self.nodes[node as usize].0.get(*name) {
                Some(&child) => child,
                None => {
                    let child = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 paths");
                    self.nodes.push((FxHashMap::default(), false));
                    self.nodes[node as usize].0.insert((*name).into(), child);
                    child
                }
            };
        }
        self.nodes[node as usize].1 = true;
        node
    }

    /// Freezes the trie, renumbering its nodes in pre-order with each node's children in the order
    /// the flattener meets them (the view's fields in their fixed order, then names in byte
    /// order, as in a JSON object): an event without arrays of objects then flattens straight
    /// into node order. Returns the trie and each old node's new number.
    pub(crate) fn build(self) -> (Paths, Vec<NodeId>) {
        const VIEW: [&str; 5] = ["type", "source", "subject", "data", "metadata"];
        let mut order: Vec<NodeId> = Vec::with_capacity(self.nodes.len());
        let mut renumbered = vec![0 as NodeId; self.nodes.len()];
        let mut last_below = vec![0u32; self.nodes.len()];
        // An explicit stack: selectors nest as deep as their JSON does.
        let mut stack = vec![(0 as NodeId, false)];
        while let Some((node, finished)) = stack.pop() {
            if finished {
                last_below[node as usize] = order.len() as u32 - 1;
                continue;
            }
            renumbered[node as usize] = order.len() as NodeId;
            order.push(node);
            stack.push((node, true));
            let mut children: Vec<(&str, NodeId)> =
                self.nodes[node as usize].0.iter().map(|(name, &child)| (&**name, child)).collect();
            let rank = |name: &str| if node == 0 { VIEW.iter().position(|v| *v == name) } else { None };
            children.sort_unstable_by(|a, b| (rank(a.0), a.0).cmp(&(rank(b.0), b.0)));
            // Pushed in reverse, so that the first child is numbered first.
            stack.extend(children.iter().rev().map(|&(_, child)| (child, false)));
        }
        let mut nodes: Vec<Option<PathNode>> = (0..self.nodes.len()).map(|_| None).collect();
        for (old, (children, tested)) in self.nodes.into_iter().enumerate() {
            let mut children: Vec<(Box<str>, NodeId)> =
                children.into_iter().map(|(name, child)| (name, renumbered[child as usize])).collect();
            children.sort_unstable();
            let new = renumbered[old] as usize;
            nodes[new] = Some(PathNode {
                children: if children.len() <= FEW_CHILDREN {
                    Children::Few(children.into_iter().map(|(name, id)| (name_hash(&name), name, id)).collect())
                } else {
                    Children::Many(children.into_iter().collect())
                },
                tested,
                first: new as u32,
                last: last_below[old],
            });
        }
        let nodes: Box<[PathNode]> = nodes.into_iter().map(|node| node.expect("every node numbered")).collect();
        let root = &nodes[0].children;
        let view = VIEW.map(|name| root.get(name));
        (Paths { nodes, view }, renumbered)
    }
}

/// A leaf of the event at a tested path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Occurrence<'a> {
    pub(crate) node: NodeId,
    pub(crate) value: Scalar<'a>,
    /// Its enclosing array elements, outermost first, as a range of [`Flattened::elements`].
    pub(crate) elements: (u32, u32),
}

/// One element of one array of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element {
    /// Which array (numbered in document order, so an enclosing array has a smaller number).
    pub(crate) array: u32,
    /// Which element of it.
    pub(crate) index: u32,
    /// The pre-order range of the path node holding the array: the paths it can matter to.
    pub(crate) first: u32,
    pub(crate) last: u32,
}

/// An event flattened to its tested leaves; reused from one event to the next.
#[derive(Debug, Default)]
pub(crate) struct Flattened<'a> {
    pub(crate) occurrences: Vec<Occurrence<'a>>,
    pub(crate) elements: Vec<Element>,
    enclosing: Vec<Element>,
    arrays: u32,
}

impl<'a> Flattened<'a> {
    /// The elements enclosing `occurrence`.
    pub(crate) fn elements_of(&self, occurrence: &Occurrence<'_>) -> &[Element] {
        &self.elements[occurrence.elements.0 as usize..occurrence.elements.1 as usize]
    }

    fn push(&mut self, node: NodeId, value: Scalar<'a>) {
        let start = self.elements.len() as u32;
        self.elements.extend_from_slice(&self.enclosing);
        self.occurrences.push(Occurrence { node, value, elements: (start, self.elements.len() as u32) });
    }
}

impl Paths {
    /// How many nodes the trie has.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The pre-order place of `node`.
    pub(crate) fn place(&self, node: NodeId) -> u32 {
        self.nodes[node as usize].first
    }

    /// Flattens `event` into `out` (cleared first), its occurrences sorted by node and, within a
    /// node, in document order.
    pub(crate) fn flatten<'a>(&self, event: &EventView<'a>, out: &mut Flattened<'a>) {
        out.occurrences.clear();
        out.elements.clear();
        out.enclosing.clear();
        out.arrays = 0;
        let [event_type, source, subject, data, metadata] = self.view;
        let texts = [(event_type, Some(event.event_type)), (source, event.source), (subject, event.subject)];
        for (node, text) in texts {
            if let (Some(node), Some(text)) = (node, text)
                && self.nodes[node as usize].tested
            {
                out.push(node, Scalar::Text(text));
            }
        }
        if let Some(node) = data {
            self.visit(node, event.data, out);
        }
        if let (Some(node), Some(fields)) = (metadata, event.metadata) {
            self.visit_object(node, fields, out);
        }
        // Already in node order unless arrays of objects interleaved paths; the sort is stable, so
        // each node keeps its leaves in document order.
        if !out.occurrences.is_sorted_by_key(|occurrence| occurrence.node) {
            out.occurrences.sort_by_key(|occurrence| occurrence.node);
        }
    }

    fn visit<'a>(&self, node: NodeId, value: &'a Value, out: &mut Flattened<'a>) {
        match value {
            Value::Object(fields) => self.visit_object(node, fields, out),
            Value::Array(items) => {
                let array = out.arrays;
                out.arrays += 1;
                let place = &self.nodes[node as usize];
                for (index, item) in items.iter().enumerate() {
                    let container = item.is_object() || item.is_array();
                    if container {
                        let index = u32::try_from(index).unwrap_or(u32::MAX);
                        out.enclosing.push(Element { array, index, first: place.first, last: place.last });
                    }
                    self.visit(node, item, out);
                    if container {
                        out.enclosing.pop();
                    }
                }
            }
            scalar => {
                if self.nodes[node as usize].tested {
                    out.push(node, Scalar::from_json(scalar).expect("a scalar"));
                }
            }
        }
    }

    fn visit_object<'a>(&self, node: NodeId, fields: &'a Map<String, Value>, out: &mut Flattened<'a>) {
        let children = &self.nodes[node as usize].children;
        match children {
            // A big object and few names: look the names up rather than read every field.
            Children::Few(named) if named.len() * 4 < fields.len() => {
                for (_, name, child) in named {
                    if let Some(value) = fields.get(&**name) {
                        self.visit(*child, value, out);
                    }
                }
            }
            _ if children.len() == 0 => {}
            _ => {
                for (name, value) in fields {
                    if let Some(child) = children.get(name) {
                        self.visit(child, value, out);
                    }
                }
            }
        }
    }
}
