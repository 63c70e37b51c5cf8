//! Event selectors: EventBridge-style patterns that say which events start a workflow, and the
//! matcher that finds, for each event, every selector of its customer that it matches.
//!
//! This crate is pure: no I/O, no runtime. [`Selector::parse`] validates a pattern and reports every
//! mistake with a JSON pointer; [`Matcher`] compiles all of a customer's selectors together and
//! matches batches of events against them; [`Selector::matches`] is the slow reference evaluation of
//! one selector, written straight from the definition below, that the matcher is tested against.
//!
//! # The language
//!
//! A selector is a JSON object over the event view `{type, source, subject, data, metadata}`
//! ([`EventView`]). Each key names a field; its value is a nested pattern (for object fields) or
//! an array of alternatives. Fields are ANDed, alternatives ORed, and `{}` matches every event.
//! `"$or": [pattern, …]` at any object level matches when one of the patterns does.
//!
//! Matching is on *leaves*: the event is flattened into (path, scalar) pairs, where arrays do not
//! add to the path and objects and empty arrays are not leaves themselves. An array in the event
//! matches when any of its elements does. Alternatives:
//!
//! - a literal string, number, boolean or `null`: equal values (numbers by value: `300` matches
//!   `300.0`; the string `"300"` does not match the number `300`);
//! - `{"prefix": s}`, `{"suffix": s}` (also `{"prefix": {"equals-ignore-case": s}}` and the same
//!   for suffix), `{"equals-ignore-case": s}`, `{"wildcard": "a*b"}`: strings only; a wildcard's `*`
//!   matches any run of characters, `/` included, `\*` is a star and `\\` a backslash, and `**` is
//!   refused;
//! - `{"numeric": [">", 0, "<=", 5]}`: JSON numbers only;
//! - `{"exists": true}`: any leaf, `null` included; `{"exists": false}`: no leaf at all (a missing
//!   field, an empty array, an object);
//! - `{"anything-but": v | [v, …] | {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": …}}`: any
//!   leaf, `null` included, that is not what follows it.
//!
//! A missing field fails every alternative except `{"exists": false}`. JSON inside a string is
//! not parsed.
//!
//! Inside an array of objects, the fields one pattern matches come from the same element: a
//! selector is the OR of its `$or` expansions, and in each, the leaves chosen for its tests never
//! lie in different elements of one array (whose elements are objects or arrays), and
//! `{"exists": false}` holds when no leaf of its path lies in the elements so chosen.

mod alternative;
mod engine;
mod expand;
mod pattern;
mod reference;
mod view;

pub use alternative::Scalar;
pub use engine::{BatchMatches, Matcher};
pub use pattern::{MAX_COMBINATIONS, Selector};
pub use triggers_schemas::FieldError;
pub use view::EventView;
