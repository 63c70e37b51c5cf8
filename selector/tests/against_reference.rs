//! The compiled matcher against the reference evaluation, on generated selectors and events: the
//! fast path must never drift from the definition. A seeded RNG makes every run the same, and a
//! failure prints the seed, the selector and the event.

mod common;

use common::Event;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use triggers_selector::{Matcher, Selector};

/// Few names and values, so that selectors and events meet often.
const KEYS: [&str; 5] = ["k1", "k2", "items", "n", "tags"];
const TEXTS: [&str; 9] = ["a", "ab", "abc", "b", "B", "Ab", "x/y*z", "", "héllo"];
const NUMBERS: [f64; 7] = [0.0, 1.0, 1.5, 2.0, 10.0, -1.0, 100.0];
const TYPES: [&str; 3] = ["order.created", "order.updated", "user.deleted"];

fn text(rng: &mut StdRng) -> &'static str {
    TEXTS.choose(rng).expect("texts")
}

fn number(rng: &mut StdRng) -> f64 {
    *NUMBERS.choose(rng).expect("numbers")
}

fn scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0..=4 => json!(text(rng)),
        5..=7 => json!(number(rng)),
        8 => json!(rng.random_bool(0.5)),
        _ => Value::Null,
    }
}

fn event_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..10) {
        0..=5 => scalar(rng),
        6 | 7 if depth < 3 => event_object(rng, depth + 1),
        _ if depth < 3 => {
            let len = rng.random_range(0..4);
            Value::Array((0..len).map(|_| event_value(rng, depth + 1)).collect())
        }
        _ => scalar(rng),
    }
}

fn event_object(rng: &mut StdRng, depth: u32) -> Value {
    let mut fields = Map::new();
    for key in KEYS {
        if rng.random_bool(0.55) {
            fields.insert(key.into(), event_value(rng, depth));
        }
    }
    Value::Object(fields)
}

fn event(rng: &mut StdRng) -> Value {
    let mut event = json!({"type": TYPES.choose(rng).expect("types"), "data": event_object(rng, 0)});
    if rng.random_bool(0.6) {
        event["source"] = json!(text(rng));
    }
    if rng.random_bool(0.3) {
        event["metadata"] = event_object(rng, 2);
    }
    event
}

fn alternative(rng: &mut StdRng) -> Value {
    match rng.random_range(0..17) {
        0..=3 => scalar(rng),
        4 => json!({"prefix": text(rng)}),
        5 => json!({"suffix": text(rng)}),
        6 => json!({"equals-ignore-case": text(rng)}),
        7 => json!({"prefix": {"equals-ignore-case": text(rng)}}),
        8 => {
            let wildcard = ["a*", "*b", "*", "a*b*c", "x/*", "*l*", "A\\*"].choose(rng).expect("wildcards");
            json!({ "wildcard": wildcard })
        }
        9 => {
            let (low, high) = (number(rng), number(rng));
            let (low, high) = if low < high { (low, high) } else { (high - 1.0, low) };
            match rng.random_range(0..4) {
                0 => json!({"numeric": [">", low]}),
                1 => json!({"numeric": ["<=", high]}),
                2 => json!({"numeric": [">=", low, "<", high]}),
                _ => json!({"numeric": ["=", low]}),
            }
        }
        10 => json!({"exists": rng.random_bool(0.5)}),
        11 => json!({"exists": false}),
        12 => json!({"anything-but": text(rng)}),
        13 => json!({"anything-but": [number(rng), number(rng)]}),
        14 => json!({"anything-but": {"prefix": text(rng)}}),
        15 => json!({"anything-but": {"equals-ignore-case": [text(rng), text(rng)]}}),
        _ => json!({"anything-but": {"wildcard": "*b*"}}),
    }
}

fn leaf(rng: &mut StdRng) -> Value {
    let count = rng.random_range(1..=3);
    Value::Array((0..count).map(|_| alternative(rng)).collect())
}

fn pattern_object(rng: &mut StdRng, depth: u32) -> Value {
    let mut fields = Map::new();
    let count = rng.random_range(1..=3);
    for _ in 0..count {
        let key = *KEYS.choose(rng).expect("keys");
        let value = if depth < 3 && rng.random_bool(0.35) { pattern_object(rng, depth + 1) } else { leaf(rng) };
        fields.insert(key.into(), value);
    }
    if rng.random_bool(0.1) {
        let branches = rng.random_range(1..=3);
        fields.insert("$or".into(), Value::Array((0..branches).map(|_| pattern_object(rng, depth + 1)).collect()));
    }
    Value::Object(fields)
}

fn pattern(rng: &mut StdRng) -> Value {
    let mut pattern = Map::new();
    if rng.random_bool(0.5) {
        pattern.insert("type".into(), json!([TYPES.choose(rng).expect("types")]));
    }
    if rng.random_bool(0.3) {
        pattern.insert("source".into(), leaf(rng));
    }
    if rng.random_bool(0.8) {
        pattern.insert("data".into(), pattern_object(rng, 0));
    }
    if rng.random_bool(0.1) {
        pattern.insert("metadata".into(), pattern_object(rng, 2));
    }
    if rng.random_bool(0.1) {
        let branches = (0..2).map(|_| json!({"data": pattern_object(rng, 1)})).collect();
        pattern.insert("$or".into(), Value::Array(branches));
    }
    Value::Object(pattern)
}

/// Generated selectors that parse (a few are refused, e.g. for too many `$or` combinations).
fn selectors(rng: &mut StdRng, count: usize) -> (Vec<Value>, Vec<Selector>) {
    let mut patterns = Vec::with_capacity(count);
    let mut selectors = Vec::with_capacity(count);
    while selectors.len() < count {
        let pattern = pattern(rng);
        if let Ok(selector) = Selector::parse(&pattern, "") {
            patterns.push(pattern);
            selectors.push(selector);
        }
    }
    (patterns, selectors)
}

#[test]
fn the_compiled_matcher_agrees_with_the_reference_on_generated_cases() {
    let mut matched = 0usize;
    let mut checked = 0usize;
    // `TRIGGERS_SELECTOR_SEEDS=1000 cargo test --release …` searches further.
    let seeds = std::env::var("TRIGGERS_SELECTOR_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(30u64);
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let (patterns, selectors) = selectors(&mut rng, 40);
        let matcher = Matcher::new(&selectors);
        let events: Vec<Value> = (0..100).map(|_| event(&mut rng)).collect();
        let owned: Vec<Event> = events.iter().map(Event::new).collect();
        let views: Vec<_> = owned.iter().map(Event::view).collect();
        let batch = matcher.match_batch(&views);
        for (e, view) in views.iter().enumerate() {
            let expected: Vec<u32> =
                (0..selectors.len()).filter(|&s| selectors[s].matches(view)).map(|s| s as u32).collect();
            if expected != batch.event(e) {
                let wrong: Vec<u32> = expected
                    .iter()
                    .filter(|s| !batch.event(e).contains(s))
                    .chain(batch.event(e).iter().filter(|s| !expected.contains(s)))
                    .copied()
                    .collect();
                panic!(
                    "seed {seed}, event {e}: expected {expected:?}, compiled {:?}\nevent: {}\nselectors that differ: {}",
                    batch.event(e),
                    events[e],
                    wrong.iter().map(|&s| patterns[s as usize].to_string()).collect::<Vec<_>>().join("\n")
                );
            }
            matched += expected.len();
            checked += selectors.len();
        }
    }
    // The generator must produce both outcomes often, or the comparison proves little.
    assert!(matched * 20 > checked, "only {matched} of {checked} selector-event pairs matched");
    assert!(matched * 2 < checked, "{matched} of {checked} selector-event pairs matched");
}

#[test]
fn matching_one_event_at_a_time_equals_matching_the_batch() {
    let mut rng = StdRng::seed_from_u64(7);
    let (_, selectors) = selectors(&mut rng, 40);
    let matcher = Matcher::new(&selectors);
    let owned: Vec<Event> = (0..100).map(|_| Event::new(&event(&mut rng))).collect();
    let views: Vec<_> = owned.iter().map(Event::view).collect();
    let batch = matcher.match_batch(&views);
    assert_eq!(batch.len(), views.len());
    for (i, view) in views.iter().enumerate() {
        assert_eq!(matcher.matches(view), batch.event(i));
    }
}

#[test]
fn a_matcher_of_some_selectors_reports_their_own_positions() {
    let mut rng = StdRng::seed_from_u64(11);
    let (_, selectors) = selectors(&mut rng, 30);
    let odd: Vec<&Selector> = selectors.iter().skip(1).step_by(2).collect();
    let matcher = Matcher::new(odd.iter().copied());
    for _ in 0..200 {
        let owned = Event::new(&event(&mut rng));
        let view = owned.view();
        let expected: Vec<u32> = (0..odd.len()).filter(|&i| odd[i].matches(&view)).map(|i| i as u32).collect();
        assert_eq!(matcher.matches(&view), expected);
    }
}
