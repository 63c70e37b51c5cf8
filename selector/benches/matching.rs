//! Matching throughput, memory and rebuild time of one customer's compiled selectors.
//! Run with `cargo bench -p triggers-selector --bench matching`.
//!
//! Events are about 1 KB of JSON (an order with a customer, three items, shipping, tags and
//! metadata). Each subscription has a selective anchor (an event type with an account, a source or
//! nothing else; a subject prefix; a wildcard type with an account) and up to three refinements of
//! mixed operators (numeric ranges, anything-but, exists, prefix and numeric tests inside the
//! items array, `$or`, wildcard, equals-ignore-case, metadata literals). The vocabularies of types,
//! accounts and users grow with the number of subscriptions, as a customer's would: each event
//! matches a handful of subscriptions at every size. The `dense` workload keeps the vocabularies
//! small, so that at large sizes one event matches hundreds of subscriptions.
//!
//! Before timing, every event of the timed batch is checked against every selector with the
//! reference evaluation. Memory is what the allocator holds for the matcher once built.
//!
//! Times are the CPU time of the benchmarking thread (not wall time): the machines this runs on
//! are shared, and time spent waiting for a core is not the matcher's.

use std::alloc::System;
use std::hint::black_box;
use std::time::Instant;

use std::time::Duration;

use cap::Cap;
use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use triggers_schemas::NewEvent;
use triggers_selector::{EventView, Matcher, Selector};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];
const BATCH: usize = 256;
const DOMAINS: [&str; 10] =
    ["order", "invoice", "user", "payment", "shipment", "cart", "refund", "subscription", "ticket", "review"];
const VERBS: [&str; 10] =
    ["created", "updated", "deleted", "paid", "failed", "shipped", "cancelled", "completed", "opened", "closed"];
const TIERS: [&str; 4] = ["gold", "silver", "bronze", "platinum"];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "CHF"];
const STATUSES: [&str; 4] = ["paid", "pending", "partially_paid", "refunded"];
const REGIONS: [&str; 4] = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"];

/// How many distinct values each identifier takes.
struct Vocabulary {
    types: usize,
    accounts: usize,
    users: usize,
    sources: usize,
}

impl Vocabulary {
    fn scaled(subscriptions: usize) -> Self {
        Self {
            types: (subscriptions / 100).max(20),
            accounts: (subscriptions / 5).max(50),
            users: (subscriptions / 5).max(50),
            sources: 20,
        }
    }

    fn dense() -> Self {
        Self { types: 20, accounts: 50, users: 50, sources: 20 }
    }

    fn event_type(&self, rng: &mut StdRng) -> String {
        let k = rng.random_range(0..self.types);
        format!("{}.{}.v{}", DOMAINS[k % 10], VERBS[(k / 10) % 10], k / 100)
    }

    fn account(&self, rng: &mut StdRng) -> String {
        format!("acc_{:06}", rng.random_range(0..self.accounts))
    }

    fn user(&self, rng: &mut StdRng) -> String {
        format!("user-{:06}", rng.random_range(0..self.users))
    }

    fn source(&self, rng: &mut StdRng) -> String {
        format!("shop-{:02}", rng.random_range(0..self.sources))
    }
}

fn event(vocabulary: &Vocabulary, rng: &mut StdRng) -> Value {
    let items: Vec<Value> = (0..3)
        .map(|_| {
            json!({"sku": format!("SKU-{}", rng.random_range(100..999)), "qty": rng.random_range(1..5),
                   "price": f64::from(rng.random_range(100..20_000)) / 100.0, "name": "Widget, large, blue"})
        })
        .collect();
    let mut data = json!({
        "order_id": format!("ord_{:016x}", rng.random::<u64>()),
        "account_id": vocabulary.account(rng),
        "total": f64::from(rng.random_range(100..100_000)) / 100.0,
        "currency": *CURRENCIES.choose(rng).unwrap(),
        "status": *STATUSES.choose(rng).unwrap(),
        "customer": {"id": format!("cus_{:08}", rng.random_range(0..10_000_000)), "tier": *TIERS.choose(rng).unwrap(),
                     "country": "DE", "email": "someone@example.com"},
        "items": items,
        "shipping": {"method": "express", "address": {"city": "Berlin", "zip": "10115", "street": "Main Street 1"}},
        "tags": ["vip", "eu", "newsletter"],
        "notes": "Please leave the parcel with the neighbour if nobody answers the door.",
        "created_at": "2026-11-26T15:04:05.123Z"
    });
    if rng.random_bool(0.3) {
        data["coupon"] = json!("WINTER10");
    }
    json!({
        "type": vocabulary.event_type(rng),
        "source": vocabulary.source(rng),
        "subject": vocabulary.user(rng),
        "data": data,
        "metadata": {"trace_id": format!("{:032x}", rng.random::<u128>()), "region": *REGIONS.choose(rng).unwrap(),
                     "schema": "v2"}
    })
}

fn subscription(vocabulary: &Vocabulary, rng: &mut StdRng) -> Value {
    let mut pattern = match rng.random_range(0..100) {
        0..45 => json!({"type": [vocabulary.event_type(rng)], "data": {"account_id": [vocabulary.account(rng)]}}),
        45..65 => {
            json!({"type": [vocabulary.event_type(rng), vocabulary.event_type(rng)], "source": [vocabulary.source(rng)]})
        }
        65..75 => json!({"subject": [{"prefix": vocabulary.user(rng)}]}),
        75..85 => {
            let k = rng.random_range(0..vocabulary.types);
            let wildcard = format!("{}.*.v{}", DOMAINS[k % 10], k / 100);
            json!({"type": [{"wildcard": wildcard}], "data": {"account_id": [vocabulary.account(rng)]}})
        }
        85..90 => json!({"source": [vocabulary.source(rng)], "data": {"account_id": [vocabulary.account(rng)]}}),
        _ => json!({"type": [vocabulary.event_type(rng)]}),
    };
    let data = |pattern: &mut Value| -> Value {
        if pattern.get("data").is_none() {
            pattern["data"] = json!({});
        }
        pattern["data"].clone()
    };
    for _ in 0..rng.random_range(0..=3) {
        let mut fields = data(&mut pattern);
        match rng.random_range(0..9) {
            0 => {
                let low = rng.random_range(0..900);
                fields["total"] = json!([{"numeric": [">=", low, "<", low + rng.random_range(10..200)]}]);
            }
            1 => fields["customer"] = json!({"tier": [*TIERS.choose(rng).unwrap()]}),
            2 => fields["currency"] = json!([{"anything-but": ["USD", "GBP"]}]),
            3 => fields["coupon"] = json!([{"exists": rng.random_bool(0.5)}]),
            4 => fields["items"] = json!({"sku": [{"prefix": "SKU-1"}], "qty": [{"numeric": [">=", 3]}]}),
            5 => {
                fields["$or"] =
                    json!([{"total": [{"numeric": [">", 500]}]}, {"customer": {"tier": ["gold", "platinum"]}}]);
            }
            6 => fields["status"] = json!([{"wildcard": "partially*"}, {"equals-ignore-case": "PAID"}]),
            7 => {
                pattern["metadata"] = json!({"region": [*REGIONS.choose(rng).unwrap()]});
                continue;
            }
            _ => fields["customer"] = json!({"tier": [{"anything-but": "bronze"}]}),
        }
        pattern["data"] = fields;
    }
    if pattern["data"] == json!({}) {
        pattern.as_object_mut().unwrap().remove("data");
    }
    pattern
}

struct Workload {
    patterns: Vec<Value>,
    selectors: Vec<Selector>,
    events: Vec<NewEvent>,
}

fn workload(subscriptions: usize, vocabulary: &Vocabulary, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let patterns: Vec<Value> = (0..subscriptions).map(|_| subscription(vocabulary, &mut rng)).collect();
    let selectors = patterns.iter().map(|p| Selector::parse(p, "").expect("generated selectors are valid")).collect();
    let events =
        (0..BATCH).map(|_| NewEvent::from_json(event(vocabulary, &mut rng), "").expect("valid event")).collect();
    Workload { patterns, selectors, events }
}

/// The compiled matcher must agree with the reference evaluation on every event and selector.
/// Returns the average number of matches per event.
fn verify(matcher: &Matcher, workload: &Workload) -> f64 {
    let views: Vec<EventView<'_>> = workload.events.iter().map(EventView::from).collect();
    let batch = matcher.match_batch(&views);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = views.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (part, events) in views.chunks(chunk).enumerate() {
            let batch = &batch;
            let selectors = &workload.selectors;
            scope.spawn(move || {
                for (offset, view) in events.iter().enumerate() {
                    let i = part * chunk + offset;
                    let expected: Vec<u32> =
                        (0..selectors.len()).filter(|&s| selectors[s].matches(view)).map(|s| s as u32).collect();
                    assert_eq!(batch.event(i), expected, "event {i} against {} selectors", selectors.len());
                }
            });
        }
    });
    batch.iter().map(<[u32]>::len).sum::<usize>() as f64 / views.len() as f64
}

/// The CPU time of the measuring thread.
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }

    fn end(&self, started: ThreadTime) -> Duration {
        started.elapsed()
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Durations in nanoseconds, formatted as criterion formats wall time.
        static WALL_TIME: WallTime = WallTime;
        WALL_TIME.formatter()
    }
}

fn matching(c: &mut Criterion<ThreadCpuTime>) {
    for (name, sizes, dense) in [("match", &SIZES[..], false), ("match dense", &SIZES[2..], true)] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(BATCH as u64));
        for &size in sizes {
            let vocabulary = if dense { Vocabulary::dense() } else { Vocabulary::scaled(size) };
            let workload = workload(size, &vocabulary, 42);
            let before = ALLOCATOR.allocated();
            let started = Instant::now();
            let matcher = Matcher::new(&workload.selectors);
            let built_in = started.elapsed();
            let bytes = ALLOCATOR.allocated() - before;
            let matches = verify(&matcher, &workload);
            let event_bytes =
                workload.events.iter().map(|e| serde_json::to_vec(e).unwrap().len()).sum::<usize>() / BATCH;
            eprintln!(
                "{name} {size}: {} states, {:.0} bytes per subscription, built in {built_in:?}, \
                 {matches:.1} matches per event, events of {event_bytes} bytes; checked against the reference",
                matcher.state_count(),
                bytes as f64 / size as f64,
            );
            let views: Vec<EventView<'_>> = workload.events.iter().map(EventView::from).collect();
            group.bench_with_input(BenchmarkId::from_parameter(size), &views, |b, views| {
                b.iter(|| matcher.match_batch(black_box(views)));
            });
        }
        group.finish();
    }
}

fn rebuilding(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    for size in SIZES {
        let workload = workload(size, &Vocabulary::scaled(size), 42);
        group.bench_with_input(BenchmarkId::new("compile", size), &workload.selectors, |b, selectors| {
            b.iter(|| Matcher::new(black_box(selectors)));
        });
        group.bench_with_input(BenchmarkId::new("parse and compile", size), &workload.patterns, |b, patterns| {
            b.iter(|| {
                let selectors: Vec<Selector> = patterns.iter().map(|p| Selector::parse(p, "").unwrap()).collect();
                Matcher::new(&selectors)
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = matching, rebuilding
}
criterion_main!(benches);
