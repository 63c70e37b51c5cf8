//! The field names the patterns use, as a trie, and the flattening of an event guided by it: only
//! the leaves at paths some pattern tests are produced, and subtrees no pattern names are never
//! entered.

use rustc_hash::FxHashMap;
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
    Few(Box<[(Box<str>, NodeId)]>),
    Many(FxHashMap<Box<str>, NodeId>),
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
            Self::Few(children) => children.iter().find(|(n, _)| **n == *name).map(|(_, id)| *id),
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

    /// Freezes the trie and numbers its nodes in pre-order.
    pub(crate) fn build(self) -> Paths {
        let mut places = vec![(0u32, 0u32); self.nodes.len()];
        let mut next = 0u32;
        // An explicit stack: selectors nest as deep as their JSON does.
        let mut stack = vec![(0 as NodeId, false)];
        while let Some((node, finished)) = stack.pop() {
            if finished {
                places[node as usize].1 = next - 1;
                continue;
            }
            places[node as usize].0 = next;
            next += 1;
            stack.push((node, true));
            stack.extend(self.nodes[node as usize].0.values().map(|&child| (child, false)));
        }
        let nodes: Box<[PathNode]> = self
            .nodes
            .into_iter()
            .zip(places)
            .map(|((children, tested), (first, last))| PathNode {
                children: if children.len() <= FEW_CHILDREN {
                    Children::Few(children.into_iter().collect())
                } else {
                    Children::Many(children)
                },
                tested,
                first,
                last,
            })
            .collect();
        let root = &nodes[0].children;
        let view = ["type", "source", "subject", "data", "metadata"].map(|name| root.get(name));
        Paths { nodes, view }
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
        // Stable, so each node keeps its leaves in document order.
        out.occurrences.sort_by_key(|occurrence| occurrence.node);
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
            // Few names to look for: look each up in the event's (ordered) map.
            Children::Few(named) if named.len() < fields.len() => {
                for (name, child) in named {
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
