//! The port itself: the types and traits the rest of Triggers programs against.

use std::cmp::Ordering;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use triggers_schemas::Timestamp;

use crate::hashing::HashKeyRange;

/// Names one shard, e.g. `shardId-000000000003`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub String);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ShardId {
    /// The id Kinesis gives the shard with this index.
    pub fn from_index(index: u32) -> Self {
        Self(format!("shardId-{index:012}"))
    }
}

/// A record's position within its shard: a decimal number of any length, as Kinesis uses.
///
/// Ordered numerically, so `"9" < "10"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// A sequence number from its decimal text; `None` unless it is all ASCII digits. Leading
    /// zeros are dropped, so equal numbers have equal text.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let significant = text.trim_start_matches('0');
        Some(Self(if significant.is_empty() { "0".to_owned() } else { significant.to_owned() }))
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number, when it fits in 64 bits (always so for the embedded stream).
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl From<u64> for SequenceNumber {
    fn from(value: u64) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        // Both texts are free of leading zeros, so the longer one is the larger number.
        let (a, b) = (&self.0, &other.0);
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One shard as listed: its hash-key range, lineage and whether it is still open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// The shard's id.
    pub shard_id: ShardId,
    /// The shard this one was split from, or the first of the two it was merged from.
    pub parent: Option<ShardId>,
    /// The second shard of a merge.
    pub adjacent_parent: Option<ShardId>,
    /// The hash keys this shard owns.
    pub hash_key_range: HashKeyRange,
    /// The first sequence number the shard may hold.
    pub starting_sequence: SequenceNumber,
    /// Set once the shard is closed by a split or merge: no record after it will ever appear.
    pub ending_sequence: Option<SequenceNumber>,
}

impl ShardInfo {
    /// Whether new records may still land in this shard.
    pub fn is_open(&self) -> bool {
        self.ending_sequence.is_none()
    }

    /// The shard's parents: none, one (a split) or two (a merge).
    pub fn parents(&self) -> Vec<ShardId> {
        self.parent.iter().chain(self.adjacent_parent.iter()).cloned().collect()
    }
}

/// The largest record a stream takes, in bytes of data plus partition key, as Kinesis counts it
/// (1 MiB). Both adapters refuse a larger record, so that what works on one works on the other.
pub const MAX_RECORD_BYTES: usize = 1_048_576;

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRecord {
    /// Picks the shard (through its MD5) and keeps the records of one key in order.
    pub partition_key: String,
    /// The record body.
    pub data: Bytes,
}

impl AppendRecord {
    /// The record's size as the stream's limit counts it: the data plus the partition key's UTF-8
    /// bytes.
    pub fn size(&self) -> usize {
        self.data.len().saturating_add(self.partition_key.len())
    }

    /// Refuses a record over [`MAX_RECORD_BYTES`] with [`StreamError::RecordTooLarge`].
    pub fn check_size(&self) -> Result<(), StreamError> {
        let bytes = self.size();
        if bytes > MAX_RECORD_BYTES {
            return Err(StreamError::RecordTooLarge { bytes, limit: MAX_RECORD_BYTES });
        }
        Ok(())
    }
}

/// Where an appended record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The shard that holds it.
    pub shard_id: ShardId,
    /// Its position in that shard.
    pub sequence_number: SequenceNumber,
}

/// One record read back from a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRecord {
    /// Its position in the shard.
    pub sequence_number: SequenceNumber,
    /// The partition key it was appended with.
    pub partition_key: String,
    /// The record body.
    pub data: Bytes,
    /// When the stream accepted it.
    pub arrived_at: Timestamp,
}

/// Where a reader starts in a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartPosition {
    /// The oldest record still retained.
    TrimHorizon,
    /// Just after the newest record at the time the reader opens.
    Latest,
    /// At this record.
    AtSequence(SequenceNumber),
    /// Just after this record.
    AfterSequence(SequenceNumber),
    /// At the first record that arrived at or after this time.
    AtTimestamp(Timestamp),
}

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadBatch {
    /// Records in sequence order; possibly none.
    pub records: Vec<ShardRecord>,
    /// How far the reader is behind the newest record of the shard, in milliseconds.
    pub millis_behind_latest: u64,
    /// Set when the reader has passed the last record of a closed shard: the children to read next.
    /// Readers must not be called again after this.
    pub shard_end: Option<Vec<ShardId>>,
}

/// A failure of the stream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    /// No shard with that id (or it has aged out of retention).
    #[error("no such shard: {0}")]
    NoSuchShard(ShardId),
    /// The stream does not exist.
    #[error("no such stream: {0}")]
    NoSuchStream(String),
    /// The request makes no sense for the stream as it is (e.g. splitting a closed shard).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The record is larger than the stream takes ([`MAX_RECORD_BYTES`]); it never will be
    /// accepted, so retrying is pointless.
    #[error("record of {bytes} bytes is over the stream's limit of {limit} bytes")]
    RecordTooLarge {
        /// The record's size: data plus partition key.
        bytes: usize,
        /// The stream's limit.
        limit: usize,
    },
    /// The stream is over its throughput limit; retrying later helps.
    #[error("throughput exceeded: {0}")]
    Throttled(String),
    /// Anything else: I/O, the network, the service.
    #[error("stream unavailable: {0}")]
    Unavailable(String),
}

/// The stream port. Implementations are shared behind `Arc<dyn Stream>`.
#[async_trait]
pub trait Stream: Send + Sync + 'static {
    /// Appends records. Each one lands in the open shard whose range holds the MD5 of its partition
    /// key. The answer has one entry per record, in order; an `Ok` entry is durable (the stream
    /// acknowledged it, or it is synced to disk) and will be read by every reader of its shard. A
    /// record over [`MAX_RECORD_BYTES`] gets [`StreamError::RecordTooLarge`] in its entry and is
    /// not written; the others are appended as usual.
    async fn append(&self, records: Vec<AppendRecord>) -> Result<Vec<Result<Appended, StreamError>>, StreamError>;

    /// Every shard still retained, open or closed, with its lineage.
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError>;

    /// Opens a reader of one shard at a position.
    async fn open_reader(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError>;

    /// Splits an open shard into two children at `new_starting_hash_key`, closing it.
    async fn split_shard(&self, shard: &ShardId, new_starting_hash_key: u128) -> Result<(), StreamError>;

    /// Merges two open shards with adjacent ranges into one child, closing both.
    async fn merge_shards(&self, shard: &ShardId, adjacent: &ShardId) -> Result<(), StreamError>;
}

/// Reads one shard forward from where it was opened.
#[async_trait]
pub trait ShardReader: Send {
    /// The next records, at most `max_records`; an empty batch means the reader is caught up.
    async fn next_batch(&mut self, max_records: usize) -> Result<ReadBatch, StreamError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_numerically() {
        let seq = |text: &str| SequenceNumber::parse(text).unwrap();
        assert!(seq("9") < seq("10"));
        assert_eq!(seq("0010"), seq("10"));
        assert_eq!(seq("000"), seq("0"));
        assert!(
            seq("49590338271490256608559692538361571095921575989136588898")
                > seq("4959033827149025660855969253836157109592157598913658889")
        );
        assert!(SequenceNumber::parse("12a").is_none());
        assert!(SequenceNumber::parse("").is_none());
    }
}
