//! The conformance table: patterns, events and expected outcomes taken from the AWS EventBridge
//! documentation and from the tests of `aws/event-ruler` and `timbray/quamina`, each citing its
//! source. EventBridge events put their payload under `detail`; here it sits under `data`, the
//! view's payload field, and EventBridge's `source` stays `source`.
//!
//! Every case is checked three ways: by the reference evaluation, by a matcher compiled from its
//! selector alone, and by one matcher compiled from every selector of the table at once.

mod common;

use common::Event;
use serde_json::{Value, json};
use triggers_selector::{Matcher, Selector};

const EB_PATTERNS: &str = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html";
const EB_CREATE: &str = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern.html";
const EB_FILTERING: &str =
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html";
const EB_OPERATORS: &str = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html";
const EB_NULLS: &str = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-null-values.html";
const EB_ARRAYS: &str = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html";
const SNS_NUMERIC: &str = "https://docs.aws.amazon.com/sns/latest/dg/numeric-value-matching.html";
const RULER_README: &str = "aws/event-ruler README.md";
const RULER_ARRAYS: &str = "aws/event-ruler README.md, JSON Array Matching";
const RULER_OR: &str = "aws/event-ruler README.md, The \"$or\" Primitive";
const RULER_COMBOS: &str = "aws/event-ruler src/test/software/amazon/event/ruler/RulerTest.java WHEN_WeWriteRulesToMatchVariousFieldCombos_THEN_TheyWork";
const RULER_COMPLEX_ARRAYS: &str = "aws/event-ruler src/test/software/amazon/event/ruler/RulerTest.java WHEN_JSONContainsArrays_THEN_RulerNoCompileMatchesWork";
const RULER_EXISTS: &str =
    "aws/event-ruler src/test/software/amazon/event/ruler/RulerTest.java WHEN_WeTryToMatchExistsRules_THEN_TheyWork";
const RULER_PREFIX: &str = "aws/event-ruler src/test/software/amazon/event/ruler/MachineTest.java testPrefixMatching";
const RULER_SUFFIX: &str = "aws/event-ruler src/test/software/amazon/event/ruler/MachineTest.java testSuffixMatching";
const RULER_IGNORE_CASE: &str =
    "aws/event-ruler src/test/software/amazon/event/ruler/MachineTest.java testEqualsIgnoreCaseMatching";
const RULER_WILDCARD: &str =
    "aws/event-ruler src/test/software/amazon/event/ruler/MachineTest.java testWildcardMatching";
const RULER_CORRECTNESS: &str = "aws/event-ruler src/test/resources/correctness-cases.json";
const QUAMINA_ARRAYS: &str = "timbray/quamina arrays_test.go TestArrayCorrectness";
const QUAMINA_WILDCARD: &str = "timbray/quamina wildcard_test.go TestWildcardMatching";
const QUAMINA_ANYTHING_BUT: &str = "timbray/quamina anything_but_test.go TestAnythingButMerging";
const QUAMINA_PATTERNS: &str = "timbray/quamina PATTERNS.md";
const AWS_ANYTHING_BUT_NULL: &str = "localstack/localstack issue 9711 (behaviour observed on AWS EventBridge)";
const AWS_ANYTHING_BUT_MISSING: &str =
    "localstack/localstack pull request 13268 (anything-but on missing and null values)";
const AWS_EXISTS_NULL: &str = "getmoto/moto issue 5125 (behaviour observed on AWS EventBridge)";

struct Case {
    name: &'static str,
    source: &'static str,
    pattern: Value,
    event: Value,
    matches: bool,
}

fn case(name: &'static str, source: &'static str, pattern: Value, event: Value, matches: bool) -> Case {
    Case { name, source, pattern, event, matches }
}

/// The RFC 8259 example that event-ruler's `RulerTest` matches against, as `data`.
fn rfc_image() -> Value {
    json!({"data": {"Image": {
        "Width": 800, "Height": 600, "Title": "View from 15th Floor",
        "Thumbnail": {"Url": "http://www.example.com/image/481989943", "Height": 125, "Width": 100},
        "Animated": false, "IDs": [116, 943, 234, 38793]
    }}})
}

/// event-ruler's `JSON_WITH_COMPLEX_ARRAYS`, as `data`.
fn complex_arrays() -> Value {
    json!({"data": {"employees": [
        [
            {"firstName": "John", "lastName": "Doe", "ids": [1234, 1000, 9999]},
            {"firstName": "Anna", "lastName": "Smith"}
        ],
        [{"firstName": "Peter", "lastName": "Jones", "ids": []}]
    ]}})
}

/// quamina's `bands` event, as `data`.
fn bands() -> Value {
    json!({"data": {"bands": [
        {"name": "The Clash", "members": [
            {"given": "Joe", "surname": "Strummer", "role": ["guitar", "vocals"]},
            {"given": "Mick", "surname": "Jones", "role": ["guitar", "vocals"]},
            {"given": "Paul", "surname": "Simonon", "role": ["bass"]},
            {"given": "Topper", "surname": "Headon", "role": ["drums"]}
        ]},
        {"name": "Boris", "members": [
            {"given": "Wata", "role": ["guitar", "vocals"]},
            {"given": "Atsuo", "role": ["drums"]},
            {"given": "Takeshi", "role": ["bass", "vocals"]}
        ]}
    ]}})
}

fn ec2(state: &str) -> Value {
    json!({"type": "EC2.Instance.State-change", "source": "aws.ec2",
           "data": {"instance-id": "i-1234567890abcdef0", "state": state}})
}

#[allow(clippy::too_many_lines)] // A table reads best as one list.
fn table() -> Vec<Case> {
    vec![
        // Literals, fields and alternatives.
        case(
            "literal fields all match",
            EB_PATTERNS,
            json!({"source": ["aws.ec2"], "data": {"state": ["terminated"]}}),
            ec2("terminated"),
            true,
        ),
        case(
            "a literal field with another value",
            EB_PATTERNS,
            json!({"source": ["aws.ec2"], "data": {"state": ["terminated"]}}),
            ec2("running"),
            false,
        ),
        case(
            "alternatives are ORed",
            EB_CREATE,
            json!({"source": ["aws.ec2", "aws.fargate"]}),
            json!({"source": "aws.fargate"}),
            true,
        ),
        case(
            "fields are ANDed",
            EB_CREATE,
            json!({"source": ["aws.ec2"], "data": {"state": ["terminated"]}}),
            json!({"source": "aws.s3", "data": {"state": "terminated"}}),
            false,
        ),
        case(
            "a field the event lacks fails the pattern",
            EB_CREATE,
            json!({"data": {"state": ["terminated"], "zone": ["a"]}}),
            ec2("terminated"),
            false,
        ),
        case(
            "an array in the event matches if any element does",
            EB_ARRAYS,
            json!({"data": {"resources": [
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]}}),
            json!({"data": {"resources": [
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}}),
            true,
        ),
        case(
            "an array in the event with no common element",
            RULER_CORRECTNESS,
            json!({"data": {"tags": ["superadmin"]}}),
            json!({"data": {"tags": ["user", "admin"]}}),
            false,
        ),
        case(
            "an empty string matches an empty string",
            EB_NULLS,
            json!({"data": {"eventVersion": [""]}}),
            json!({"data": {"eventVersion": "", "responseElements": null}}),
            true,
        ),
        case(
            "null matches null",
            EB_NULLS,
            json!({"data": {"responseElements": [null]}}),
            json!({"data": {"eventVersion": "", "responseElements": null}}),
            true,
        ),
        case(
            "an empty string does not match null",
            EB_NULLS,
            json!({"data": {"responseElements": [""]}}),
            json!({"data": {"responseElements": null}}),
            false,
        ),
        case(
            "null does not match a missing field",
            EB_CREATE,
            json!({"data": {"responseElements": [null]}}),
            json!({"data": {"eventVersion": ""}}),
            false,
        ),
        case(
            "numbers compare by value",
            QUAMINA_PATTERNS,
            json!({"data": {"n": [35]}}),
            json!({"data": {"n": 3.5e1}}),
            true,
        ),
        case(
            "a string is not the number it spells",
            RULER_README,
            json!({"data": {"n": ["300"]}}),
            json!({"data": {"n": 300}}),
            false,
        ),
        case(
            "booleans match booleans",
            RULER_COMBOS,
            json!({"data": {"Image": {"Animated": [false]}}}),
            rfc_image(),
            true,
        ),
        case(
            "true does not match false",
            RULER_COMBOS,
            json!({"data": {"Image": {"Animated": [true]}}}),
            rfc_image(),
            false,
        ),
        case(
            "JSON inside a string is not parsed",
            QUAMINA_PATTERNS,
            json!({"data": {"payload": {"id": ["1"]}}}),
            json!({"data": {"payload": "{\"id\": \"1\"}"}}),
            false,
        ),
        // Prefix, suffix, case.
        case(
            "prefix",
            EB_FILTERING,
            json!({"data": {"time": [{"prefix": "2017-10-02"}]}}),
            json!({"data": {"time": "2017-10-02T18:43:48Z"}}),
            true,
        ),
        case(
            "prefix equal to the whole value",
            RULER_PREFIX,
            json!({"data": {"a": [{"prefix": "zoo"}]}}),
            json!({"data": {"a": "zoo"}}),
            true,
        ),
        case(
            "prefix matches strings only",
            RULER_README,
            json!({"data": {"n": [{"prefix": "1"}]}}),
            json!({"data": {"n": 10}}),
            false,
        ),
        case(
            "suffix",
            RULER_SUFFIX,
            json!({"data": {"a": [{"suffix": "er"}]}}),
            json!({"data": {"a": "zookeeper"}}),
            true,
        ),
        case(
            "suffix that does not end the value",
            EB_FILTERING,
            json!({"data": {"FileName": [{"suffix": ".png"}]}}),
            json!({"data": {"FileName": "image.png.jpg"}}),
            false,
        ),
        case(
            "equals-ignore-case",
            RULER_IGNORE_CASE,
            json!({"data": {"a": [{"equals-ignore-case": "aBc"}]}}),
            json!({"data": {"a": "AbC"}}),
            true,
        ),
        case(
            "equals-ignore-case is still equality",
            RULER_IGNORE_CASE,
            json!({"data": {"a": [{"equals-ignore-case": "aBc"}]}}),
            json!({"data": {"a": "aabc"}}),
            false,
        ),
        case(
            "prefix ignoring case",
            EB_OPERATORS,
            json!({"data": {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]}}),
            json!({"data": {"service": "EventBridge"}}),
            true,
        ),
        case(
            "suffix ignoring case",
            EB_OPERATORS,
            json!({"data": {"service": [{"suffix": {"equals-ignore-case": "tBridge"}}]}}),
            json!({"data": {"service": "EVENTBRIDGE"}}),
            true,
        ),
        // Wildcards.
        case(
            "wildcard with a leading star",
            RULER_WILDCARD,
            json!({"data": {"a": [{"wildcard": "*bc"}]}}),
            json!({"data": {"a": "abc"}}),
            true,
        ),
        case(
            "wildcard with an inner star",
            RULER_WILDCARD,
            json!({"data": {"b": [{"wildcard": "d*f"}]}}),
            json!({"data": {"b": "dexef"}}),
            true,
        ),
        case(
            "wildcard that needs every piece",
            RULER_WILDCARD,
            json!({"data": {"d": [{"wildcard": "12*4*"}]}}),
            json!({"data": {"d": "1235"}}),
            false,
        ),
        case(
            "a wildcard star spans slashes",
            EB_OPERATORS,
            json!({"data": {"FilePath": [{"wildcard": "dir/*.png"}]}}),
            json!({"data": {"FilePath": "dir/a/b/c.png"}}),
            true,
        ),
        case(
            "an escaped star is a star",
            QUAMINA_WILDCARD,
            json!({"data": {"x": [{"wildcard": "hel\\*o"}]}}),
            json!({"data": {"x": "hel*o"}}),
            true,
        ),
        case(
            "an escaped star is not a wildcard",
            QUAMINA_WILDCARD,
            json!({"data": {"x": [{"wildcard": "hel\\*o"}]}}),
            json!({"data": {"x": "hello"}}),
            false,
        ),
        // Anything-but.
        case(
            "anything-but a string",
            EB_FILTERING,
            json!({"data": {"state": [{"anything-but": "initializing"}]}}),
            ec2("running"),
            true,
        ),
        case(
            "anything-but excludes its value",
            EB_FILTERING,
            json!({"data": {"state": [{"anything-but": "initializing"}]}}),
            ec2("initializing"),
            false,
        ),
        case(
            "anything-but matches null",
            AWS_ANYTHING_BUT_NULL,
            json!({"data": {"foo": [{"anything-but": ["baz"]}]}}),
            json!({"data": {"foo": null}}),
            true,
        ),
        case(
            "anything-but does not match a missing field",
            AWS_ANYTHING_BUT_MISSING,
            json!({"data": {"foo": [{"anything-but": ["baz"]}]}}),
            json!({"data": {"bar": "x"}}),
            false,
        ),
        case(
            "anything-but a list of strings",
            EB_FILTERING,
            json!({"data": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}),
            ec2("overloaded"),
            false,
        ),
        case(
            "anything-but a list of numbers",
            SNS_NUMERIC,
            json!({"data": {"price": [{"anything-but": [100, 500]}]}}),
            json!({"data": {"price": 100.1}}),
            true,
        ),
        case(
            "anything-but a number excludes it by value",
            SNS_NUMERIC,
            json!({"data": {"price": [{"anything-but": [100, 500]}]}}),
            json!({"data": {"price": 100}}),
            false,
        ),
        case(
            "anything-but on an array matches if any element is not excluded",
            SNS_NUMERIC,
            json!({"data": {"price": [{"anything-but": [100, 500]}]}}),
            json!({"data": {"price": [100, 50]}}),
            true,
        ),
        case(
            "anything-but a prefix",
            EB_FILTERING,
            json!({"data": {"state": [{"anything-but": {"prefix": "init"}}]}}),
            ec2("initializing"),
            false,
        ),
        case(
            "anything-but a suffix",
            EB_OPERATORS,
            json!({"data": {"FileName": [{"anything-but": {"suffix": ".png"}}]}}),
            json!({"data": {"FileName": "a.jpg"}}),
            true,
        ),
        case(
            "anything-but ignoring case",
            EB_OPERATORS,
            json!({"data": {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}}),
            ec2("INITIALIZING"),
            false,
        ),
        case(
            "anything-but a wildcard",
            EB_OPERATORS,
            json!({"data": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}),
            json!({"data": {"FilePath": "/usr/lib/libc.so"}}),
            false,
        ),
        case(
            "anything-but a suffix matches null",
            AWS_ANYTHING_BUT_MISSING,
            json!({"data": {"FileName": [{"anything-but": {"suffix": ".png"}}]}}),
            json!({"data": {"FileName": null}}),
            true,
        ),
        case(
            "anything-but beside a literal",
            QUAMINA_ANYTHING_BUT,
            json!({"data": {"z": ["foo", {"anything-but": ["foot"]}]}}),
            json!({"data": {"z": "foot"}}),
            false,
        ),
        // Numbers.
        case(
            "numeric range",
            EB_FILTERING,
            json!({"data": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}),
            json!({"data": {"c-count": 5}}),
            true,
        ),
        case(
            "numeric range excludes its open end",
            EB_FILTERING,
            json!({"data": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}),
            json!({"data": {"c-count": 0}}),
            false,
        ),
        case(
            "numeric equality by value",
            EB_FILTERING,
            json!({"data": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}),
            json!({"data": {"x-limit": 301.8}}),
            true,
        ),
        case(
            "numeric matches JSON numbers only",
            EB_FILTERING,
            json!({"data": {"c-count": [{"numeric": [">", 0]}]}}),
            json!({"data": {"c-count": "5"}}),
            false,
        ),
        case(
            "several numeric and string operators together",
            RULER_COMBOS,
            json!({"data": {"Image": {
                "Width": [{"numeric": ["<", 1000]}], "Height": [{"numeric": ["<=", 600]}],
                "Title": [{"anything-but": "View from 15th Flood"}],
                "Thumbnail": {"Url": [{"prefix": "http"}], "Height": [{"numeric": [">", 124, "<", 126]}],
                              "Width": [{"numeric": [">=", 99.999, "<=", 100]}]},
                "Animated": [false]}}}),
            rfc_image(),
            true,
        ),
        case(
            "a range just above the value",
            RULER_COMBOS,
            json!({"data": {"Image": {"Thumbnail": {"Width": [{"numeric": [">=", 100.00001, "<=", 1001]}]}}}}),
            rfc_image(),
            false,
        ),
        // Exists.
        case(
            "exists true",
            EB_FILTERING,
            json!({"data": {"c-count": [{"exists": true}]}}),
            json!({"data": {"c-count": 5}}),
            true,
        ),
        case(
            "exists false on a missing field",
            EB_FILTERING,
            json!({"data": {"c-count": [{"exists": false}]}}),
            json!({"data": {"state": ["initializing", "running"]}}),
            true,
        ),
        case(
            "exists false on an object, which is not a leaf",
            EB_FILTERING,
            json!({"data": {"c-count": [{"exists": false}]}}),
            json!({"data": {"c-count": {"c1": 100}}}),
            true,
        ),
        case(
            "exists true on an object, which is not a leaf",
            QUAMINA_PATTERNS,
            json!({"data": {"a": [{"exists": true}]}}),
            json!({"data": {"a": {"b": 1}}}),
            false,
        ),
        case(
            "exists true does not match an empty array",
            QUAMINA_PATTERNS,
            json!({"data": {"a": [{"exists": true}]}}),
            json!({"data": {"a": []}}),
            false,
        ),
        case(
            "exists false matches an empty array",
            QUAMINA_PATTERNS,
            json!({"data": {"a": [{"exists": false}]}}),
            json!({"data": {"a": []}}),
            true,
        ),
        case(
            "exists true matches null",
            AWS_EXISTS_NULL,
            json!({"data": {"foo": [{"exists": true}], "bar": [{"exists": true}]}}),
            json!({"data": {"foo": null, "bar": "123"}}),
            true,
        ),
        case(
            "exists false does not match a present field",
            RULER_EXISTS,
            json!({"data": {"b": [{"exists": false}]}}),
            json!({"data": {"b": 2}}),
            false,
        ),
        // Arrays of objects.
        case(
            "fields from one element of an array of arrays",
            RULER_ARRAYS,
            json!({"data": {"employees": {"firstName": ["Anna"]}}}),
            complex_arrays(),
            true,
        ),
        case(
            "fields from different elements do not match together",
            RULER_ARRAYS,
            json!({"data": {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}}),
            complex_arrays(),
            false,
        ),
        case(
            "a scalar array inside the element that matched",
            RULER_COMPLEX_ARRAYS,
            json!({"data": {"employees": {"firstName": ["John"], "ids": [1000]}}}),
            complex_arrays(),
            true,
        ),
        case(
            "a scalar array inside another element",
            RULER_COMPLEX_ARRAYS,
            json!({"data": {"employees": {"firstName": ["Anna"], "ids": [1000]}}}),
            complex_arrays(),
            false,
        ),
        case(
            "exists false within the element that matched",
            RULER_COMPLEX_ARRAYS,
            json!({"data": {"employees": {"firstName": ["Anna"], "ids": [{"exists": false}]}}}),
            complex_arrays(),
            true,
        ),
        case(
            "exists true within the element that matched",
            RULER_COMPLEX_ARRAYS,
            json!({"data": {"employees": {"firstName": ["Anna"], "ids": [{"exists": true}]}}}),
            complex_arrays(),
            false,
        ),
        case(
            "a leaf pattern on an array of objects",
            RULER_COMPLEX_ARRAYS,
            json!({"data": {"employees": ["b"]}}),
            complex_arrays(),
            false,
        ),
        case(
            "nested arrays of objects, same element",
            QUAMINA_ARRAYS,
            json!({"data": {"bands": {"members": {"given": ["Wata"], "role": ["guitar"]}}}}),
            bands(),
            true,
        ),
        case(
            "nested arrays of objects, different elements",
            QUAMINA_ARRAYS,
            json!({"data": {"bands": {"members": {"given": ["Wata"], "role": ["drums"]}}}}),
            bands(),
            false,
        ),
        case(
            "nested arrays of objects, different members",
            QUAMINA_ARRAYS,
            json!({"data": {"bands": {"members": {"given": ["Mick"], "surname": ["Strummer"]}}}}),
            bands(),
            false,
        ),
        case(
            "the last element holds both fields",
            RULER_CORRECTNESS,
            json!({"data": {"d": {"a": [{"exists": true}], "b": [{"exists": true}]}}}),
            json!({"data": {"d": [{"a": 1}, {"b": 2}, {"a": 3, "b": 4}]}}),
            true,
        ),
        // $or.
        case(
            "$or between fields",
            RULER_OR,
            json!({"source": ["aws.cloudwatch"], "$or": [
                {"data": {"metricName": ["CPUUtilization", "ReadLatency"]}},
                {"data": {"namespace": ["AWS/EC2", "AWS/ES"]}}]}),
            json!({"source": "aws.cloudwatch", "data": {"namespace": "AWS/ES"}}),
            true,
        ),
        case(
            "$or with no branch matching",
            RULER_OR,
            json!({"source": ["aws.cloudwatch"], "$or": [
                {"data": {"metricName": ["CPUUtilization", "ReadLatency"]}},
                {"data": {"namespace": ["AWS/EC2", "AWS/ES"]}}]}),
            json!({"source": "aws.cloudwatch", "data": {"namespace": "AWS/S3"}}),
            false,
        ),
        case(
            "$or nested in a branch of $or",
            RULER_OR,
            json!({"source": ["aws.cloudwatch"], "data": {"$or": [
                {"metricName": ["CPUUtilization"]},
                {"metricType": ["MetricType"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]},
                {"scope": ["Service"]}]}}),
            json!({"source": "aws.cloudwatch", "data": {"metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1000}}),
            true,
        ),
        case(
            "$or branches inside a nested object",
            RULER_OR,
            json!({"data": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]}}),
            json!({"data": {"detail-type": "CloudWatch Alarm State Change"}}),
            true,
        ),
    ]
}

fn check(case: &Case, matched: bool, how: &str) {
    assert_eq!(
        matched, case.matches,
        "{how}: {:?} ({}) expected {}\npattern: {}\nevent: {}",
        case.name, case.source, case.matches, case.pattern, case.event
    );
}

#[test]
fn the_table_has_at_least_forty_cited_cases() {
    let table = table();
    assert!(table.len() >= 40, "{} cases", table.len());
    for case in &table {
        assert!(!case.source.is_empty(), "{} has no source", case.name);
    }
    let mut names: Vec<_> = table.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), table.len(), "case names are unique");
}

#[test]
fn the_reference_evaluation_passes_the_table() {
    for case in table() {
        let selector = Selector::parse(&case.pattern, "").unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        let event = Event::new(&case.event);
        check(&case, selector.matches(&event.view()), "reference");
    }
}

#[test]
fn a_matcher_of_one_selector_passes_the_table() {
    for case in table() {
        let selector = Selector::parse(&case.pattern, "").unwrap();
        let event = Event::new(&case.event);
        let matched = Matcher::new([&selector]).matches(&event.view());
        check(&case, matched == [0], "matcher of one");
    }
}

#[test]
fn one_matcher_of_the_whole_table_passes_it() {
    let table = table();
    let selectors: Vec<Selector> = table.iter().map(|c| Selector::parse(&c.pattern, "").unwrap()).collect();
    let matcher = Matcher::new(&selectors);
    let events: Vec<Event> = table.iter().map(|c| Event::new(&c.event)).collect();
    let views: Vec<_> = events.iter().map(Event::view).collect();
    let matches = matcher.match_batch(&views);
    for (i, case) in table.iter().enumerate() {
        check(case, matches.event(i).contains(&(i as u32)), "matcher of the table");
        // Every other selector the event matches must agree with the reference too.
        for (j, selector) in selectors.iter().enumerate() {
            assert_eq!(
                matches.event(i).contains(&(j as u32)),
                selector.matches(&views[i]),
                "selector of {:?} on the event of {:?}",
                table[j].name,
                case.name
            );
        }
    }
}
