//! The value tests of the selector language: one alternative of a leaf, and what each one matches.
//!
//! This is the one home of every value comparison. The reference evaluation calls
//! [`Alternative::matches`] directly; the compiled matcher indexes the same alternatives (by hash,
//! by length, by bound) but ends every comparison it cannot index in these functions, so the two
//! cannot disagree on what a value test means.

use std::hash::{Hash, Hasher};

use serde_json::Value;

/// A JSON scalar of an event, borrowed from it: what every alternative is tested against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// `null`: present, and distinct from a missing field and from `""`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any JSON number, compared by value.
    Number(f64),
    /// A JSON string. JSON inside it is not parsed.
    Text(&'a str),
}

impl<'a> Scalar<'a> {
    /// The scalar `value` is, or `None` for an array or an object.
    pub fn from_json(value: &'a Value) -> Option<Self> {
        match value {
            Value::Null => Some(Self::Null),
            Value::Bool(b) => Some(Self::Bool(*b)),
            // Without serde_json's arbitrary precision every number has an f64 form; NaN would
            // compare unequal to everything, which is the safe reading of an impossible case.
            Value::Number(n) => Some(Self::Number(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => Some(Self::Text(s)),
            Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// A number as patterns hold it: compared, hashed and ordered by value, with `-0` equal to `0`.
#[derive(Debug, Clone, Copy)]
pub struct Num(f64);

impl Num {
    /// `value`, with `-0.0` normalised to `0.0` so that equal numbers hash alike.
    pub fn new(value: f64) -> Self {
        Self(if value == 0.0 { 0.0 } else { value })
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }

    /// A hash key equal for equal numbers (JSON has no NaN, and `-0` is normalised).
    pub fn key(self) -> u64 {
        self.0.to_bits()
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Num {}

impl Hash for Num {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

/// The key under which an event's number is found among pattern numbers.
pub(crate) fn number_key(value: f64) -> u64 {
    Num::new(value).key()
}

/// A literal a pattern names: strings, booleans and `null` match exactly, numbers by value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number; `300` equals `300.0` and `3e2`.
    Number(Num),
    /// A string; `"300"` is not the number `300`.
    Text(Box<str>),
}

impl Literal {
    /// Whether `value` is this literal.
    pub fn matches(&self, value: Scalar<'_>) -> bool {
        match (self, value) {
            (Self::Null, Scalar::Null) => true,
            (Self::Bool(a), Scalar::Bool(b)) => *a == b,
            (Self::Number(a), Scalar::Number(b)) => a.get() == b,
            (Self::Text(a), Scalar::Text(b)) => **a == *b,
            _ => false,
        }
    }
}

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bound {
    /// Where the range ends.
    pub value: Num,
    /// Whether `value` itself is inside.
    pub inclusive: bool,
}

/// A numeric range: `{"numeric": [">", 0, "<=", 5]}`. Matches JSON numbers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NumericRange {
    /// The lower end, if any.
    pub lower: Option<Bound>,
    /// The upper end, if any.
    pub upper: Option<Bound>,
}

impl NumericRange {
    /// Whether `x` lies inside.
    pub fn contains(&self, x: f64) -> bool {
        let above = self.lower.is_none_or(|b| if b.inclusive { x >= b.value.get() } else { x > b.value.get() });
        let below = self.upper.is_none_or(|b| if b.inclusive { x <= b.value.get() } else { x < b.value.get() });
        above && below
    }

    /// Whether no number at all lies inside.
    pub fn is_empty(&self) -> bool {
        match (self.lower, self.upper) {
            (Some(low), Some(high)) => {
                let (low_value, high_value) = (low.value.get(), high.value.get());
                low_value > high_value || (low_value == high_value && !(low.inclusive && high.inclusive))
            }
            _ => false,
        }
    }
}

/// A wildcard pattern: `*` matches any run of characters (including none, and including `/`);
/// `\*` is a literal star and `\\` a literal backslash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wildcard {
    /// The literal pieces between the stars; one more than there are stars.
    pieces: Box<[Box<str>]>,
}

impl Wildcard {
    /// Parses the pattern text, refusing consecutive stars and escapes of anything but `*` and `\`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut piece = String::new();
        let mut chars = text.chars();
        let mut previous_was_star = false;
        while let Some(c) = chars.next() {
            match c {
                '*' if previous_was_star => {
                    return Err(format!("consecutive wildcards are not allowed in {text:?}"));
                }
                '*' => {
                    pieces.push(std::mem::take(&mut piece).into_boxed_str());
                    previous_was_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => piece.push(escaped),
                    _ => return Err(format!("a backslash may only escape * or \\ in {text:?}")),
                },
                other => piece.push(other),
            }
            previous_was_star = false;
        }
        pieces.push(piece.into_boxed_str());
        Ok(Self { pieces: pieces.into_boxed_slice() })
    }

    /// The text it matches when it has no star.
    pub fn as_literal(&self) -> Option<&str> {
        match &*self.pieces {
            [only] => Some(only),
            _ => None,
        }
    }

    /// The literal text every match starts with.
    pub fn leading(&self) -> &str {
        &self.pieces[0]
    }

    /// Whether `text` matches: in time linear in the text and the pattern, whatever the pattern.
    pub fn matches(&self, text: &str) -> bool {
        let (first, rest) = self.pieces.split_first().expect("a wildcard has at least one piece");
        let Some((last, middle)) = rest.split_last() else {
            return text == &**first;
        };
        if text.len() < first.len() + last.len() || !text.starts_with(&**first) || !text.ends_with(&**last) {
            return false;
        }
        // With only stars between the pieces, taking each middle piece at its leftmost place is
        // never worse than any other choice, so one left-to-right scan decides.
        let mut window = &text.as_bytes()[first.len()..text.len() - last.len()];
        for piece in middle {
            match memchr::memmem::find(window, piece.as_bytes()) {
                Some(at) => window = &window[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Lower-cases `text` into `out` (cleared first): what `equals-ignore-case` compares.
pub fn fold_case_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
    } else {
        out.extend(text.chars().flat_map(char::to_lowercase));
    }
}

/// `text` lower-cased.
pub fn fold_case(text: &str) -> Box<str> {
    let mut out = String::with_capacity(text.len());
    fold_case_into(text, &mut out);
    out.into_boxed_str()
}

/// The lower-cased form of the string being tested, computed at most once however many
/// ignore-case alternatives look at it. [`FoldCache::reset`] it before testing another value.
#[derive(Debug, Default)]
pub struct FoldCache {
    folded: String,
    ready: bool,
}

impl FoldCache {
    /// Forgets the previous value.
    pub fn reset(&mut self) {
        self.ready = false;
    }

    /// `text` lower-cased; `text` must be the value tested since the last reset.
    pub fn get(&mut self, text: &str) -> &str {
        if !self.ready {
            fold_case_into(text, &mut self.folded);
            self.ready = true;
        }
        &self.folded
    }
}

/// What an `anything-but` excludes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// These values (all strings or all numbers).
    Values(Box<[Literal]>),
    /// Strings starting with this.
    Prefix(Box<str>),
    /// Strings ending with this.
    Suffix(Box<str>),
    /// Strings equal to one of these, ignoring case (held lower-cased).
    IgnoreCase(Box<[Box<str>]>),
    /// Strings matching this wildcard.
    Wildcard(Wildcard),
}

impl Exclusion {
    /// Whether `value` is excluded; `fold` caches its lower-cased form.
    pub fn excludes(&self, value: Scalar<'_>, fold: &mut FoldCache) -> bool {
        match (self, value) {
            (Self::Values(values), _) => values.iter().any(|v| v.matches(value)),
            (Self::Prefix(prefix), Scalar::Text(text)) => text.starts_with(&**prefix),
            (Self::Suffix(suffix), Scalar::Text(text)) => text.ends_with(&**suffix),
            (Self::IgnoreCase(folded), Scalar::Text(text)) => {
                let text = fold.get(text);
                folded.iter().any(|f| **f == *text)
            }
            (Self::Wildcard(wildcard), Scalar::Text(text)) => wildcard.matches(text),
            _ => false,
        }
    }
}

/// One alternative of a leaf: a field matches when its value matches any alternative.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Alternative {
    /// `"x"`, `3`, `true`, `null`, or `{"numeric": ["=", 3]}`.
    Equals(Literal),
    /// `{"prefix": "x"}`: strings only.
    Prefix(Box<str>),
    /// `{"prefix": {"equals-ignore-case": "x"}}` (held lower-cased).
    PrefixIgnoreCase(Box<str>),
    /// `{"suffix": "x"}`: strings only.
    Suffix(Box<str>),
    /// `{"suffix": {"equals-ignore-case": "x"}}` (held lower-cased).
    SuffixIgnoreCase(Box<str>),
    /// `{"equals-ignore-case": "x"}` (held lower-cased).
    EqualsIgnoreCase(Box<str>),
    /// `{"wildcard": "a*b"}`: strings only.
    Wildcard(Wildcard),
    /// `{"numeric": [...]}`: JSON numbers only.
    Numeric(NumericRange),
    /// `{"exists": true}` matches any present value; `{"exists": false}` is matched by absence,
    /// which no value can show, so it never matches a value.
    Exists(bool),
    /// `{"anything-but": ...}`: any present value that is not excluded, `null` included.
    AnythingBut(Exclusion),
}

impl Alternative {
    /// Whether a present `value` matches this alternative.
    pub fn matches(&self, value: Scalar<'_>) -> bool {
        self.matches_with(value, &mut FoldCache::default())
    }

    /// [`Alternative::matches`], with `fold` caching the value's lower-cased form.
    pub fn matches_with(&self, value: Scalar<'_>, fold: &mut FoldCache) -> bool {
        match (self, value) {
            (Self::Equals(literal), _) => literal.matches(value),
            (Self::Prefix(prefix), Scalar::Text(text)) => text.starts_with(&**prefix),
            (Self::Suffix(suffix), Scalar::Text(text)) => text.ends_with(&**suffix),
            (Self::PrefixIgnoreCase(prefix), Scalar::Text(text)) => fold.get(text).starts_with(&**prefix),
            (Self::SuffixIgnoreCase(suffix), Scalar::Text(text)) => fold.get(text).ends_with(&**suffix),
            (Self::EqualsIgnoreCase(folded), Scalar::Text(text)) => *fold.get(text) == **folded,
            (Self::Wildcard(wildcard), Scalar::Text(text)) => wildcard.matches(text),
            (Self::Numeric(range), Scalar::Number(x)) => range.contains(x),
            (Self::Exists(present), _) => *present,
            (Self::AnythingBut(exclusion), _) => !exclusion.excludes(value, fold),
            _ => false,
        }
    }

    /// Whether this is `{"exists": false}`.
    pub fn is_absence(&self) -> bool {
        matches!(self, Self::Exists(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_parse_escapes_and_refuse_doubled_stars() {
        assert_eq!(Wildcard::parse("a*b").unwrap().pieces.len(), 2);
        assert_eq!(Wildcard::parse(r"a\*b").unwrap().as_literal(), Some("a*b"));
        assert_eq!(Wildcard::parse(r"a\\b").unwrap().as_literal(), Some(r"a\b"));
        assert!(Wildcard::parse("a**b").is_err());
        assert!(Wildcard::parse(r"a\b").is_err());
        assert!(Wildcard::parse("a\\").is_err());
        assert!(Wildcard::parse(r"he*\**").is_ok());
    }

    #[test]
    fn wildcards_match_runs_including_slashes() {
        let w = |p: &str| Wildcard::parse(p).unwrap();
        assert!(w("*").matches(""));
        assert!(w("a/*/c").matches("a/b/x/c"));
        assert!(w("h*l*o").matches("hello"));
        assert!(!w("h*l*o").matches("ho"));
        assert!(w("*l*").matches("l"));
        assert!(!w("he*l*").matches("hex"));
        // The first and last pieces must not overlap.
        assert!(!w("ab*ba").matches("aba"));
        assert!(w("ab*ba").matches("abba"));
    }

    #[test]
    fn numbers_compare_by_value_and_negative_zero_is_zero() {
        assert!(Literal::Number(Num::new(300.0)).matches(Scalar::Number(3e2)));
        assert_eq!(Num::new(-0.0), Num::new(0.0));
        assert!(!Literal::Number(Num::new(300.0)).matches(Scalar::Text("300")));
    }

    #[test]
    fn empty_ranges_are_recognised() {
        let bound = |value: f64, inclusive| Some(Bound { value: Num::new(value), inclusive });
        assert!(NumericRange { lower: bound(5.0, false), upper: bound(5.0, true) }.is_empty());
        assert!(!NumericRange { lower: bound(5.0, true), upper: bound(5.0, true) }.is_empty());
        assert!(NumericRange { lower: bound(6.0, true), upper: bound(5.0, true) }.is_empty());
    }
}
