//! One behaviour suite for the stream port, written once and run against every adapter: the
//! embedded stream (in a temporary directory) and Kinesis (against moto, at the endpoint in
//! `TRIGGERS_TEST_AWS_ENDPOINT`).
//!
//! Each test makes its own stream, so tests run in parallel and share nothing, and deletes it when
//! it ends, passing or failing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestStream, aws_test_endpoint, kinesis_client};
use triggers_schemas::Timestamp;
use triggers_stream::embedded::EmbeddedStream;
use triggers_stream::kinesis::KinesisStream;
use triggers_stream::{
    AppendRecord, Appended, HashKeyRange, MAX_RECORD_BYTES, ShardId, ShardInfo, ShardReader, ShardRecord,
    StartPosition, Stream, StreamError, hash_key,
};
/// How long a test waits for records or a shard end before it fails.
const PATIENCE: Duration = Duration::from_secs(20);
/// The pause between polls of a caught-up reader.
const POLL: Duration = Duration::from_millis(100);

/// A stream under test, and what must live as long as it: the embedded stream's directory, or the
/// guard that deletes the Kinesis stream when the test ends.
struct Fixture {
    stream: Arc<dyn Stream>,
    _dir: Option<tempfile::TempDir>,
    _kinesis: Option<TestStream>,
}

impl Fixture {
    fn stream(&self) -> Arc<dyn Stream> {
        Arc::clone(&self.stream)
    }
}

/// A new embedded stream with `shard_count` shards, in its own directory.
async fn embedded_fixture(shard_count: u32) -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = triggers_embedded::Engine::open(dir.path()).expect("open the embedded engine");
    let stream = EmbeddedStream::open(&engine, shard_count, Duration::from_secs(24 * 3600)).expect("open the stream");
    Some(Fixture { stream: Arc::new(stream), _dir: Some(dir), _kinesis: None })
}

/// A new Kinesis stream with `shard_count` shards and a unique name, deleted when the fixture
/// drops, or `None` when no endpoint is configured and the test is to be skipped.
async fn kinesis_fixture(shard_count: u32) -> Option<Fixture> {
    let endpoint = aws_test_endpoint()?;
    let created = TestStream::create(&endpoint, shard_count).await;
    let stream = KinesisStream::new(&kinesis_client(&endpoint).await, created.name.clone());
    Some(Fixture { stream: Arc::new(stream), _dir: None, _kinesis: Some(created) })
}

/// Instantiates every behaviour for one adapter. `$fixture(shard_count)` makes a fresh stream, or
/// `None` to skip.
macro_rules! stream_suite {
    ($module:ident, $fixture:path) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn appends_land_in_the_shard_owning_their_hash_key() {
                let Some(fixture) = $fixture(4).await else { return };
                behaviours::appends_land_in_the_shard_owning_their_hash_key(fixture.stream()).await;
            }

            #[tokio::test]
            async fn trim_horizon_reads_every_record_in_order() {
                let Some(fixture) = $fixture(2).await else { return };
                behaviours::trim_horizon_reads_every_record_in_order(fixture.stream()).await;
            }

            #[tokio::test]
            async fn after_the_last_record_there_is_nothing_more() {
                let Some(fixture) = $fixture(2).await else { return };
                behaviours::after_the_last_record_there_is_nothing_more(fixture.stream()).await;
            }

            #[tokio::test]
            async fn at_sequence_starts_at_that_record() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::at_sequence_starts_at_that_record(fixture.stream()).await;
            }

            #[tokio::test]
            async fn latest_skips_records_appended_before_opening() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::latest_skips_records_appended_before_opening(fixture.stream()).await;
            }

            #[tokio::test]
            async fn at_timestamp_skips_records_that_arrived_earlier() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::at_timestamp_skips_records_that_arrived_earlier(fixture.stream()).await;
            }

            #[tokio::test]
            async fn split_closes_the_parent_and_opens_two_halves() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::split_closes_the_parent_and_opens_two_halves(fixture.stream()).await;
            }

            #[tokio::test]
            async fn split_ends_a_drained_parent_reader_with_both_children() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::split_ends_a_drained_parent_reader_with_both_children(fixture.stream()).await;
            }

            #[tokio::test]
            async fn merge_closes_both_parents_and_opens_their_union() {
                let Some(fixture) = $fixture(2).await else { return };
                behaviours::merge_closes_both_parents_and_opens_their_union(fixture.stream()).await;
            }

            #[tokio::test]
            async fn merge_ends_drained_parent_readers_with_the_child() {
                let Some(fixture) = $fixture(2).await else { return };
                behaviours::merge_ends_drained_parent_readers_with_the_child(fixture.stream()).await;
            }

            #[tokio::test]
            async fn split_of_an_unknown_shard_is_an_error() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::split_of_an_unknown_shard_is_an_error(fixture.stream()).await;
            }

            #[tokio::test]
            async fn merge_of_non_adjacent_shards_is_an_error() {
                let Some(fixture) = $fixture(3).await else { return };
                behaviours::merge_of_non_adjacent_shards_is_an_error(fixture.stream()).await;
            }

            #[tokio::test]
            async fn a_reader_of_an_unknown_shard_is_an_error() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::a_reader_of_an_unknown_shard_is_an_error(fixture.stream()).await;
            }

            #[tokio::test]
            async fn a_record_over_the_size_limit_is_refused_alone() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::a_record_over_the_size_limit_is_refused_alone(fixture.stream()).await;
            }
        }
    };
}

/// Where records go after a reshard: kept apart from [`stream_suite`] because moto cannot do it.
macro_rules! reshard_routing_suite {
    ($module:ident, $fixture:path) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn split_routes_new_records_to_the_children() {
                let Some(fixture) = $fixture(1).await else { return };
                behaviours::split_routes_new_records_to_the_children(fixture.stream()).await;
            }

            #[tokio::test]
            async fn merge_routes_new_records_to_the_child() {
                let Some(fixture) = $fixture(2).await else { return };
                behaviours::merge_routes_new_records_to_the_child(fixture.stream()).await;
            }
        }
    };
}

stream_suite!(embedded, embedded_fixture);
reshard_routing_suite!(embedded_reshard_routing, embedded_fixture);

// moto (5.2.5, the newest release) picks the shard for a record among *all* shards, closed ones
// included, and finds the closed parent first: after a split or merge every record still lands in
// the parent. Real Kinesis routes to the children, so the routing behaviours run only where the
// double can express them: the embedded adapter here, real Kinesis in a deployment check.
stream_suite!(kinesis_moto, kinesis_fixture);

/// The behaviours, each against a fresh stream.
mod behaviours {
    use super::*;

    pub async fn appends_land_in_the_shard_owning_their_hash_key(stream: Arc<dyn Stream>) {
        let shards = stream.list_shards().await.expect("list shards");
        assert_eq!(shards.len(), 4, "{shards:?}");

        let first = records("route", 0..48);
        let second = records("route", 48..96);
        let mut landed = append_all(&*stream, &first).await;
        landed.extend(append_all(&*stream, &second).await);
        let appended: Vec<_> = first.iter().chain(&second).collect();

        let mut per_shard: BTreeMap<ShardId, Vec<&Appended>> = BTreeMap::new();
        for (record, landed) in appended.iter().zip(&landed) {
            let owner = owner_of(&shards, &record.partition_key);
            assert_eq!(landed.shard_id, owner.shard_id, "record {:?} landed outside its shard", record.partition_key);
            per_shard.entry(landed.shard_id.clone()).or_default().push(landed);
        }
        assert!(per_shard.len() >= 2, "96 keys should spread over several of 4 shards: {per_shard:?}");
        for (shard, landed) in &per_shard {
            for pair in landed.windows(2) {
                assert!(
                    pair[0].sequence_number < pair[1].sequence_number,
                    "sequence numbers must grow within {shard}: {} then {}",
                    pair[0].sequence_number,
                    pair[1].sequence_number
                );
            }
        }
    }

    pub async fn trim_horizon_reads_every_record_in_order(stream: Arc<dyn Stream>) {
        let appended = records("order", 0..40);
        let landed = append_all(&*stream, &appended).await;

        for shard in stream.list_shards().await.expect("list shards") {
            let expected = expected_in(&shard.shard_id, &appended, &landed);
            let mut reader =
                stream.open_reader(&shard.shard_id, StartPosition::TrimHorizon).await.expect("open reader");
            let read = read_until(&mut *reader, expected.len()).await;
            assert_same_records(&read, &expected);
            let more = drain(&mut *reader).await;
            assert!(more.is_empty(), "{}: read more than was appended: {more:?}", shard.shard_id);
        }
    }

    pub async fn after_the_last_record_there_is_nothing_more(stream: Arc<dyn Stream>) {
        let appended = records("after", 0..20);
        let landed = append_all(&*stream, &appended).await;

        for shard in stream.list_shards().await.expect("list shards") {
            let expected = expected_in(&shard.shard_id, &appended, &landed);
            let Some(last) = expected.last() else { continue };
            let position = StartPosition::AfterSequence(last.1.sequence_number.clone());
            let mut reader = stream.open_reader(&shard.shard_id, position).await.expect("open reader");
            let more = drain(&mut *reader).await;
            assert!(more.is_empty(), "{}: records after the last one: {more:?}", shard.shard_id);

            // Still open: a record appended now is what such a reader reads next.
            let late = AppendRecord { partition_key: last.0.partition_key.clone(), data: Bytes::from_static(b"late") };
            append_all(&*stream, std::slice::from_ref(&late)).await;
            let read = read_until(&mut *reader, 1).await;
            assert_eq!(read.len(), 1, "{read:?}");
            assert_eq!(read[0].data, late.data);
        }
    }

    pub async fn at_sequence_starts_at_that_record(stream: Arc<dyn Stream>) {
        let appended = records("at", 0..10);
        let landed = append_all(&*stream, &appended).await;
        let shard = landed[0].shard_id.clone();
        let expected = expected_in(&shard, &appended, &landed);

        let position = StartPosition::AtSequence(landed[6].sequence_number.clone());
        let mut reader = stream.open_reader(&shard, position).await.expect("open reader");
        let read = read_until(&mut *reader, 4).await;
        assert_eq!(read.first().map(|r| &r.sequence_number), Some(&landed[6].sequence_number));
        assert_same_records(&read, &expected[6..]);
    }

    pub async fn latest_skips_records_appended_before_opening(stream: Arc<dyn Stream>) {
        let shard = only_shard(&*stream).await;
        append_all(&*stream, &records("before", 0..5)).await;
        let mut reader = stream.open_reader(&shard.shard_id, StartPosition::Latest).await.expect("open reader");

        let after = records("after", 0..5);
        let landed = append_all(&*stream, &after).await;
        let read = read_until(&mut *reader, after.len()).await;
        assert_same_records(&read, &expected_in(&shard.shard_id, &after, &landed));
        assert!(drain(&mut *reader).await.is_empty());
    }

    pub async fn at_timestamp_skips_records_that_arrived_earlier(stream: Arc<dyn Stream>) {
        let shard = only_shard(&*stream).await;
        append_all(&*stream, &records("early", 0..5)).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let noted = Timestamp::now();
        let late = records("late", 0..5);
        let landed = append_all(&*stream, &late).await;

        let mut reader =
            stream.open_reader(&shard.shard_id, StartPosition::AtTimestamp(noted)).await.expect("open reader");
        let mut read = read_until(&mut *reader, late.len()).await;
        read.extend(drain(&mut *reader).await);
        assert_same_records(&read, &expected_in(&shard.shard_id, &late, &landed));
        for record in &read {
            assert!(record.arrived_at >= noted, "{record:?} arrived before {noted}");
        }
    }

    pub async fn split_closes_the_parent_and_opens_two_halves(stream: Arc<dyn Stream>) {
        append_all(&*stream, &records("split", 0..6)).await;
        let parent = only_shard(&*stream).await;
        let midpoint = parent.hash_key_range.midpoint();
        stream.split_shard(&parent.shard_id, midpoint).await.expect("split");

        let shards = stream.list_shards().await.expect("list shards");
        assert_eq!(shards.len(), 3, "{shards:?}");
        let listed_parent = find(&shards, &parent.shard_id);
        assert!(listed_parent.ending_sequence.is_some(), "the parent must be closed: {listed_parent:?}");
        let children: Vec<&ShardInfo> = shards.iter().filter(|s| s.shard_id != parent.shard_id).collect();
        for child in &children {
            assert!(child.is_open(), "{child:?}");
            assert_eq!(child.parent.as_ref(), Some(&parent.shard_id), "{child:?}");
            assert_eq!(child.adjacent_parent, None, "{child:?}");
        }
        let (low, high) = parent.hash_key_range.split_at(midpoint).expect("midpoint inside the range");
        let ranges: BTreeSet<(u128, u128)> =
            children.iter().map(|c| (c.hash_key_range.start, c.hash_key_range.end)).collect();
        assert_eq!(ranges, BTreeSet::from([(low.start, low.end), (high.start, high.end)]));
    }

    pub async fn split_ends_a_drained_parent_reader_with_both_children(stream: Arc<dyn Stream>) {
        let appended = records("drain", 0..8);
        append_all(&*stream, &appended).await;
        let parent = only_shard(&*stream).await;
        let mut reader = stream.open_reader(&parent.shard_id, StartPosition::TrimHorizon).await.expect("open reader");
        assert_eq!(read_until(&mut *reader, appended.len()).await.len(), appended.len());
        assert!(drain(&mut *reader).await.is_empty());

        stream.split_shard(&parent.shard_id, parent.hash_key_range.midpoint()).await.expect("split");
        let (more, children) = read_to_shard_end(&mut *reader).await;
        assert!(more.is_empty(), "the drained parent returned records after the split: {more:?}");
        let expected: BTreeSet<ShardId> =
            children_in(&stream.list_shards().await.expect("list shards"), &parent.shard_id);
        assert_eq!(expected.len(), 2);
        assert_eq!(children.into_iter().collect::<BTreeSet<_>>(), expected);
    }

    pub async fn split_routes_new_records_to_the_children(stream: Arc<dyn Stream>) {
        let parent = only_shard(&*stream).await;
        stream.split_shard(&parent.shard_id, parent.hash_key_range.midpoint()).await.expect("split");
        let shards = stream.list_shards().await.expect("list shards");

        let appended = records("child", 0..24);
        let landed = append_all(&*stream, &appended).await;
        assert_routed_to_open_shards(&*stream, &shards, &appended, &landed).await;
    }

    pub async fn merge_closes_both_parents_and_opens_their_union(stream: Arc<dyn Stream>) {
        append_all(&*stream, &records("merge", 0..6)).await;
        let (lower, upper) = two_adjacent_shards(&*stream).await;
        stream.merge_shards(&lower.shard_id, &upper.shard_id).await.expect("merge");

        let shards = stream.list_shards().await.expect("list shards");
        assert_eq!(shards.len(), 3, "{shards:?}");
        for parent in [&lower, &upper] {
            let listed = find(&shards, &parent.shard_id);
            assert!(listed.ending_sequence.is_some(), "the parent must be closed: {listed:?}");
        }
        let open: Vec<&ShardInfo> = shards.iter().filter(|s| s.is_open()).collect();
        assert_eq!(open.len(), 1, "{shards:?}");
        let child = open[0];
        assert_eq!(
            child.parents().into_iter().collect::<BTreeSet<_>>(),
            BTreeSet::from([lower.shard_id.clone(), upper.shard_id.clone()]),
            "{child:?}"
        );
        assert_eq!(Some(child.hash_key_range), lower.hash_key_range.merge(&upper.hash_key_range));
    }

    pub async fn merge_ends_drained_parent_readers_with_the_child(stream: Arc<dyn Stream>) {
        let appended = records("drain", 0..16);
        let landed = append_all(&*stream, &appended).await;
        let (lower, upper) = two_adjacent_shards(&*stream).await;
        let mut readers = Vec::new();
        for parent in [&lower, &upper] {
            let mut reader =
                stream.open_reader(&parent.shard_id, StartPosition::TrimHorizon).await.expect("open reader");
            let expected = expected_in(&parent.shard_id, &appended, &landed);
            assert_eq!(read_until(&mut *reader, expected.len()).await.len(), expected.len());
            assert!(drain(&mut *reader).await.is_empty());
            readers.push(reader);
        }

        stream.merge_shards(&lower.shard_id, &upper.shard_id).await.expect("merge");
        let shards = stream.list_shards().await.expect("list shards");
        let child = children_in(&shards, &lower.shard_id);
        assert_eq!(child.len(), 1, "{shards:?}");
        for mut reader in readers {
            let (more, children) = read_to_shard_end(&mut *reader).await;
            assert!(more.is_empty(), "a drained parent returned records after the merge: {more:?}");
            assert_eq!(children.into_iter().collect::<BTreeSet<_>>(), child);
        }
    }

    pub async fn merge_routes_new_records_to_the_child(stream: Arc<dyn Stream>) {
        let (lower, upper) = two_adjacent_shards(&*stream).await;
        stream.merge_shards(&lower.shard_id, &upper.shard_id).await.expect("merge");
        let shards = stream.list_shards().await.expect("list shards");

        let appended = records("merged", 0..24);
        let landed = append_all(&*stream, &appended).await;
        assert_routed_to_open_shards(&*stream, &shards, &appended, &landed).await;
    }

    pub async fn split_of_an_unknown_shard_is_an_error(stream: Arc<dyn Stream>) {
        let before = stream.list_shards().await.expect("list shards");
        let unknown = ShardId::from_index(999);
        match stream.split_shard(&unknown, 1u128 << 127).await {
            Err(StreamError::NoSuchShard(shard)) => assert_eq!(shard, unknown),
            other => panic!("splitting an unknown shard: expected NoSuchShard, got {other:?}"),
        }
        assert_eq!(stream.list_shards().await.expect("list shards"), before);
    }

    pub async fn merge_of_non_adjacent_shards_is_an_error(stream: Arc<dyn Stream>) {
        let mut before = stream.list_shards().await.expect("list shards");
        before.sort_by_key(|s| s.hash_key_range.start);
        let (first, third) = (&before[0], &before[2]);
        assert!(first.hash_key_range.merge(&third.hash_key_range).is_none());
        match stream.merge_shards(&first.shard_id, &third.shard_id).await {
            Err(StreamError::Invalid(_)) => {}
            other => panic!("merging non-adjacent shards: expected Invalid, got {other:?}"),
        }
        let mut after = stream.list_shards().await.expect("list shards");
        after.sort_by_key(|s| s.hash_key_range.start);
        assert_eq!(after, before);
    }

    pub async fn a_reader_of_an_unknown_shard_is_an_error(stream: Arc<dyn Stream>) {
        let unknown = ShardId::from_index(999);
        match stream.open_reader(&unknown, StartPosition::TrimHorizon).await {
            Err(StreamError::NoSuchShard(shard)) => assert_eq!(shard, unknown),
            Err(other) => panic!("reading an unknown shard: expected NoSuchShard, got {other:?}"),
            Ok(_) => panic!("reading an unknown shard: expected NoSuchShard, got a reader"),
        }
    }

    pub async fn a_record_over_the_size_limit_is_refused_alone(stream: Arc<dyn Stream>) {
        let shard = only_shard(&*stream).await;
        // The limit counts the data and the partition key together, as Kinesis does.
        let sized = |key: &str, total: usize| AppendRecord {
            partition_key: key.to_owned(),
            data: Bytes::from(vec![b'x'; total - key.len()]),
        };
        let small = AppendRecord { partition_key: "small".into(), data: Bytes::from_static(b"fits") };
        let over = sized("over", MAX_RECORD_BYTES + 1);
        let at_limit = sized("at-limit", MAX_RECORD_BYTES);

        let results = stream.append(vec![small.clone(), over, at_limit.clone()]).await.expect("append");
        assert_eq!(results.len(), 3, "one result per record");
        match &results[1] {
            Err(StreamError::RecordTooLarge { bytes, limit }) => {
                assert_eq!((*bytes, *limit), (MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES));
            }
            other => panic!("a record one byte over the limit: expected RecordTooLarge, got {other:?}"),
        }
        let landed =
            [results[0].clone().expect("the small record"), results[2].clone().expect("the record at the limit")];

        // Nothing of the refused record was written: the shard holds exactly the two others.
        let mut reader = stream.open_reader(&shard.shard_id, StartPosition::TrimHorizon).await.expect("open reader");
        let mut read = read_until(&mut *reader, 2).await;
        read.extend(drain(&mut *reader).await);
        assert_same_records(&read, &[(&small, &landed[0]), (&at_limit, &landed[1])]);
    }

    /// Checks that each record landed in the open shard owning its key, and can be read there.
    async fn assert_routed_to_open_shards(
        stream: &dyn Stream,
        shards: &[ShardInfo],
        appended: &[AppendRecord],
        landed: &[Appended],
    ) {
        let open: Vec<ShardInfo> = shards.iter().filter(|s| s.is_open()).cloned().collect();
        for (record, landed) in appended.iter().zip(landed) {
            let owner = owner_of(&open, &record.partition_key);
            assert_eq!(landed.shard_id, owner.shard_id, "record {:?} after the reshard", record.partition_key);
        }
        for shard in &open {
            let expected = expected_in(&shard.shard_id, appended, landed);
            let mut reader =
                stream.open_reader(&shard.shard_id, StartPosition::TrimHorizon).await.expect("open reader");
            let mut read = read_until(&mut *reader, expected.len()).await;
            read.extend(drain(&mut *reader).await);
            assert_same_records(&read, &expected);
        }
    }
}

/// Records with keys `{prefix}-{i}` and bodies naming their key.
fn records(prefix: &str, indexes: std::ops::Range<u32>) -> Vec<AppendRecord> {
    indexes
        .map(|i| AppendRecord {
            partition_key: format!("{prefix}-{i}"),
            data: Bytes::from(format!("body of {prefix}-{i}: {}", "x".repeat(i as usize % 7))),
        })
        .collect()
}

/// Appends and insists that every record was accepted.
async fn append_all(stream: &dyn Stream, records: &[AppendRecord]) -> Vec<Appended> {
    let results = stream.append(records.to_vec()).await.expect("append");
    assert_eq!(results.len(), records.len(), "one result per record");
    results
        .into_iter()
        .zip(records)
        .map(|(result, record)| result.unwrap_or_else(|e| panic!("append of {:?} failed: {e}", record.partition_key)))
        .collect()
}

/// The appended records that landed in `shard`, in append order, with where they landed.
fn expected_in<'a>(
    shard: &ShardId,
    appended: &'a [AppendRecord],
    landed: &'a [Appended],
) -> Vec<(&'a AppendRecord, &'a Appended)> {
    appended.iter().zip(landed).filter(|(_, landed)| &landed.shard_id == shard).collect()
}

/// Checks that `read` are exactly the `expected` records, in order.
fn assert_same_records(read: &[ShardRecord], expected: &[(&AppendRecord, &Appended)]) {
    let got: Vec<_> = read.iter().map(|r| (&r.sequence_number, r.partition_key.as_str(), &r.data)).collect();
    let want: Vec<_> = expected.iter().map(|(a, l)| (&l.sequence_number, a.partition_key.as_str(), &a.data)).collect();
    assert_eq!(got, want);
}

/// The shard whose range holds the key's hash.
fn owner_of<'a>(shards: &'a [ShardInfo], partition_key: &str) -> &'a ShardInfo {
    let key = hash_key(partition_key);
    let owners: Vec<_> = shards.iter().filter(|s| s.is_open() && s.hash_key_range.contains(key)).collect();
    assert_eq!(owners.len(), 1, "exactly one open shard must own {partition_key:?}: {shards:?}");
    owners[0]
}

fn find<'a>(shards: &'a [ShardInfo], shard: &ShardId) -> &'a ShardInfo {
    shards.iter().find(|s| &s.shard_id == shard).unwrap_or_else(|| panic!("{shard} is not listed: {shards:?}"))
}

fn children_in(shards: &[ShardInfo], parent: &ShardId) -> BTreeSet<ShardId> {
    shards.iter().filter(|s| s.parents().contains(parent)).map(|s| s.shard_id.clone()).collect()
}

async fn only_shard(stream: &dyn Stream) -> ShardInfo {
    let mut shards = stream.list_shards().await.expect("list shards");
    assert_eq!(shards.len(), 1, "{shards:?}");
    let shard = shards.remove(0);
    assert_eq!(shard.hash_key_range, HashKeyRange::ALL);
    shard
}

/// Two open shards with adjacent ranges, the lower first.
async fn two_adjacent_shards(stream: &dyn Stream) -> (ShardInfo, ShardInfo) {
    let mut shards = stream.list_shards().await.expect("list shards");
    shards.sort_by_key(|s| s.hash_key_range.start);
    assert_eq!(shards.len(), 2, "{shards:?}");
    let upper = shards.remove(1);
    let lower = shards.remove(0);
    assert!(lower.hash_key_range.merge(&upper.hash_key_range).is_some());
    (lower, upper)
}

/// Reads until at least `count` records came back; fails the test after [`PATIENCE`].
async fn read_until(reader: &mut dyn ShardReader, count: usize) -> Vec<ShardRecord> {
    let deadline = Instant::now() + PATIENCE;
    let mut read = Vec::new();
    while read.len() < count {
        let batch = reader.next_batch(100).await.expect("next batch");
        assert!(batch.shard_end.is_none(), "unexpected shard end after {} of {count} records", read.len());
        if batch.records.is_empty() {
            assert!(Instant::now() < deadline, "only {} of {count} records arrived: {read:?}", read.len());
            tokio::time::sleep(POLL).await;
        }
        read.extend(batch.records);
    }
    read
}

/// Reads until a batch comes back empty, which the port defines as caught up.
async fn drain(reader: &mut dyn ShardReader) -> Vec<ShardRecord> {
    let mut read = Vec::new();
    for _ in 0..1000 {
        let batch = reader.next_batch(100).await.expect("next batch");
        assert!(batch.shard_end.is_none(), "unexpected shard end");
        if batch.records.is_empty() {
            return read;
        }
        read.extend(batch.records);
    }
    panic!("the reader never caught up: {} records read", read.len());
}

/// Polls until the reader reports the end of its shard; returns what it read on the way and the
/// children. Fails the test after [`PATIENCE`].
async fn read_to_shard_end(reader: &mut dyn ShardReader) -> (Vec<ShardRecord>, Vec<ShardId>) {
    let deadline = Instant::now() + PATIENCE;
    let mut read = Vec::new();
    loop {
        let batch = reader.next_batch(100).await.expect("next batch");
        let empty = batch.records.is_empty();
        read.extend(batch.records);
        if let Some(children) = batch.shard_end {
            return (read, children);
        }
        assert!(Instant::now() < deadline, "no shard end after {}s; read {read:?}", PATIENCE.as_secs());
        if empty {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Against a long-lived emulator, streams left behind soon exhaust its shard limit: the Kinesis
/// half deletes each stream as its test ends.
#[tokio::test]
async fn kinesis_test_streams_are_deleted_when_their_test_ends() {
    let Some(endpoint) = aws_test_endpoint() else { return };
    let name = {
        let Some(fixture) = kinesis_fixture(1).await else { return };
        fixture.stream.list_shards().await.expect("list shards");
        fixture._kinesis.as_ref().expect("a Kinesis fixture").name.clone()
    };
    let client = kinesis_client(&endpoint).await;
    let listed = client.list_streams().send().await.expect("list streams");
    assert!(!listed.stream_names().contains(&name), "{name} outlived its test");
}
