//! The functions every event passes through: validation, record encoding and decoding and webhook
//! signing. Run with `cargo bench -p triggers-schemas`. Selector matching has its own benchmark in
//! `triggers-selector`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use triggers_schemas::{CustomerId, EventId, NewEvent, StreamRecord, Timestamp, webhook};

fn sample_body() -> serde_json::Value {
    json!({
        "type": "order.created",
        "source": "shop-eu",
        "subject": "user-123",
        "occurred_at": "2026-11-26T15:04:05.123Z",
        "data": {"order_id": 42, "total": 99.5, "currency": "EUR", "items": [
            {"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}], "customer": {"tier": "gold", "country": "DE"}},
        "metadata": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    })
}

fn hot_paths(c: &mut Criterion) {
    let body = serde_json::to_vec(&sample_body()).unwrap();
    c.bench_function("validate event (parse + check)", |b| {
        b.iter(|| NewEvent::from_json(serde_json::from_slice(black_box(&body)).unwrap(), ""))
    });

    let record = StreamRecord {
        event_id: EventId::generate(),
        customer_id: CustomerId::generate(),
        received_at: Timestamp::now(),
        event: NewEvent::from_json(sample_body(), "").unwrap(),
    };
    c.bench_function("encode stream record", |b| b.iter(|| black_box(&record).encode()));
    let encoded = record.encode();
    c.bench_function("decode stream record", |b| b.iter(|| StreamRecord::decode(black_box(&encoded)).unwrap()));

    let secret = webhook::generate_secret();
    let payload = vec![b'x'; 1024];
    c.bench_function("sign 1 KiB webhook", |b| {
        b.iter(|| webhook::sign(&secret, "evt_0193", 1_795_711_568, black_box(&payload)).unwrap())
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
