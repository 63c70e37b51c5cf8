//! The Kinesis adapter under conditions moto cannot produce on its own: answers injected or held
//! by a proxy the test owns in front of moto, and an endpoint that never answers.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Fault, FaultProxy, TestStream, aws_test_endpoint, kinesis_client};
use tokio::net::TcpListener;
use triggers_stream::kinesis::{KinesisStream, create_if_missing};
use triggers_stream::{AppendRecord, ShardId, ShardReader, ShardRecord, StartPosition, Stream, StreamError};

/// How long a test waits for records or a shard end before it fails.
const PATIENCE: Duration = Duration::from_secs(20);
/// The pause between polls of a caught-up reader.
const POLL: Duration = Duration::from_millis(100);

/// A one-shard stream on moto, the adapter reaching it through a fault proxy, and the adapter
/// reaching it directly (for what the test does behind the reader's back).
struct Setup {
    proxied: KinesisStream,
    direct: KinesisStream,
    proxy: FaultProxy,
    shard: ShardId,
    _stream: TestStream,
}

async fn setup() -> Option<Setup> {
    let endpoint = aws_test_endpoint()?;
    let stream = TestStream::create(&endpoint, 1).await;
    let proxy = FaultProxy::start(&endpoint).await;
    let proxied = KinesisStream::new(&kinesis_client(&proxy.url()).await, stream.name.clone());
    let direct = KinesisStream::new(&kinesis_client(&endpoint).await, stream.name.clone());
    let shards = direct.list_shards().await.expect("list shards");
    assert_eq!(shards.len(), 1, "{shards:?}");
    let shard = shards[0].shard_id.clone();
    Some(Setup { proxied, direct, proxy, shard, _stream: stream })
}

fn records(prefix: &str, count: usize) -> Vec<AppendRecord> {
    (0..count)
        .map(|i| AppendRecord { partition_key: format!("{prefix}-{i}"), data: Bytes::from(format!("{prefix} {i}")) })
        .collect()
}

#[tokio::test]
async fn a_shard_not_found_while_list_shards_shows_it_is_unavailable() {
    let Some(setup) = setup().await else { return };
    setup.proxy.fail("GetShardIterator", 1, Fault::NOT_FOUND);
    match setup.proxied.open_reader(&setup.shard, StartPosition::TrimHorizon).await {
        Err(StreamError::Unavailable(_)) => {}
        Err(other) => panic!("a listed shard answered not found: expected Unavailable, got {other:?}"),
        Ok(_) => panic!("the injected fault did not reach the adapter"),
    }
    // The shard was never gone: the retry reads it.
    setup.proxied.open_reader(&setup.shard, StartPosition::TrimHorizon).await.expect("open reader");
}

#[tokio::test]
async fn a_shard_not_found_while_list_shards_fails_is_unavailable() {
    let Some(setup) = setup().await else { return };
    setup.proxy.fail("GetShardIterator", 1, Fault::NOT_FOUND);
    setup.proxy.fail("ListShards", usize::MAX, Fault::INTERNAL);
    match setup.proxied.open_reader(&setup.shard, StartPosition::TrimHorizon).await {
        Err(StreamError::Unavailable(_)) => {}
        Err(other) => panic!("not found, and ListShards failing: expected Unavailable, got {other:?}"),
        Ok(_) => panic!("the injected fault did not reach the adapter"),
    }
    setup.proxy.pass("ListShards");
    setup.proxied.open_reader(&setup.shard, StartPosition::TrimHorizon).await.expect("open reader");
}

#[tokio::test]
async fn a_reader_told_its_listed_shard_is_not_found_reads_on() {
    let Some(setup) = setup().await else { return };
    let mut reader = setup.proxied.open_reader(&setup.shard, StartPosition::TrimHorizon).await.expect("open reader");
    let appended = records("on", 3);
    setup.direct.append(appended.clone()).await.expect("append").into_iter().for_each(|r| drop(r.expect("appended")));

    setup.proxy.fail("GetRecords", 1, Fault::NOT_FOUND);
    match reader.next_batch(100).await {
        Err(StreamError::Unavailable(_)) => {}
        other => panic!("GetRecords not found on a listed shard: expected Unavailable, got {other:?}"),
    }
    let (read, end) = read_for(&mut *reader, appended.len()).await;
    assert_eq!(end, None, "the shard is open");
    assert_eq!(keys(&read), keys_of(&appended));
}

/// The race of a reader at the tip: its GetRecords finds nothing, and before the empty answer
/// arrives, records are appended and the shard is split. ListShards then shows the shard closed,
/// but the reader has not read those records; it must read them before it reports the shard end.
#[tokio::test]
async fn a_reader_at_the_tip_reads_records_appended_before_a_split_it_learns_of_late() {
    let Some(setup) = setup().await else { return };
    let mut reader = setup.proxied.open_reader(&setup.shard, StartPosition::TrimHorizon).await.expect("open reader");
    let appended = records("late", 3);

    let held = setup.proxy.hold_next("GetRecords");
    let behind_the_readers_back = async {
        held.answered_upstream().await;
        setup.direct.append(appended.clone()).await.expect("append").into_iter().for_each(|r| drop(r.expect("ok")));
        let midpoint = triggers_stream::HashKeyRange::ALL.midpoint();
        setup.direct.split_shard(&setup.shard, midpoint).await.expect("split");
        held.release();
    };
    let (first, ()) = tokio::join!(reader.next_batch(100), behind_the_readers_back);
    let first = first.expect("next batch");
    assert!(first.records.is_empty(), "the held answer predates the appends: {first:?}");

    let mut read = first.records;
    let deadline = Instant::now() + PATIENCE;
    let children = loop {
        let batch = reader.next_batch(100).await.expect("next batch");
        read.extend(batch.records);
        if let Some(children) = batch.shard_end {
            break children;
        }
        assert!(Instant::now() < deadline, "no shard end after {}s; read {read:?}", PATIENCE.as_secs());
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(keys(&read), keys_of(&appended), "every record of the parent before its end");
    assert_eq!(children.len(), 2, "{children:?}");
}

/// The AWS SDK sets no operation timeout: an endpoint that accepts a connection and never answers
/// would hold every caller for good. The adapter bounds each call; a hung one is Unavailable.
#[tokio::test]
async fn calls_to_an_endpoint_that_never_answers_end_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = kinesis_client(&endpoint).await;
    let stream = KinesisStream::new(&client, "never-answered");
    let shard = ShardId::from_index(0);

    // A guard against a hang only: the adapter's own bound is far shorter.
    let calls = async {
        tokio::join!(
            stream.list_shards(),
            stream.open_reader(&shard, StartPosition::TrimHorizon),
            stream.append(records("hung", 1)),
            create_if_missing(&client, "never-answered", 1),
        )
    };
    let (listed, opened, appended, created) =
        tokio::time::timeout(Duration::from_secs(120), calls).await.expect("a call to a silent endpoint never ended");
    silent.abort();
    assert!(matches!(listed, Err(StreamError::Unavailable(_))), "ListShards: {listed:?}");
    assert!(matches!(opened, Err(StreamError::Unavailable(_))), "GetShardIterator: {:?}", opened.err());
    assert!(matches!(appended, Err(StreamError::Unavailable(_))), "PutRecords: {appended:?}");
    assert!(matches!(created, Err(StreamError::Unavailable(_))), "DescribeStreamSummary: {created:?}");
}

/// Reads until `count` records came back or the shard ended; fails the test after [`PATIENCE`].
async fn read_for(reader: &mut dyn ShardReader, count: usize) -> (Vec<ShardRecord>, Option<Vec<ShardId>>) {
    let deadline = Instant::now() + PATIENCE;
    let mut read = Vec::new();
    while read.len() < count {
        let batch = reader.next_batch(100).await.expect("next batch");
        let empty = batch.records.is_empty();
        read.extend(batch.records);
        if batch.shard_end.is_some() {
            return (read, batch.shard_end);
        }
        assert!(Instant::now() < deadline, "only {} of {count} records arrived", read.len());
        if empty {
            tokio::time::sleep(POLL).await;
        }
    }
    (read, None)
}

fn keys(read: &[ShardRecord]) -> Vec<&str> {
    read.iter().map(|record| record.partition_key.as_str()).collect()
}

fn keys_of(records: &[AppendRecord]) -> Vec<&str> {
    records.iter().map(|record| record.partition_key.as_str()).collect()
}
