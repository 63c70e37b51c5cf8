//! The embedded stream: Kinesis' shard model on the embedded storage engine.
//!
//! Layout in fjall:
//! - keyspace `stream_records`: key `shard index (u32 BE) ++ sequence number (u64 BE)`, value
//!   `arrival millis (i64 BE) ++ partition key length (u16 BE) ++ partition key ++ data`. Keys of one
//!   shard are contiguous and in sequence order, so a read is one range scan.
//! - keyspace `stream_shards`: key `shard index (u32 BE)`, value the shard's metadata (MessagePack).
//! - keyspace `stream_state`: key `high_water`, value the highest sequence number ever given
//!   (u64 BE), written in the same batch as the records or shard boundaries that used it.
//!
//! Sequence numbers come from one counter for the whole stream and are given out, and committed to
//! the journal, under one lock; so a record with a higher number is always committed later. The
//! counter never goes back, not even after the trim has deleted every record: consumers resume
//! from checkpoints, and a number at or below a checkpoint would never be read. Readers
//! see only records below the *durable watermark*, the highest number known to be synced to disk:
//! a record is delivered only once its `202` could have been sent, and after a crash no checkpoint
//! can point past a record that was lost with the page cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use triggers_embedded::Engine;
use triggers_embedded::fjall::Keyspace;
use triggers_schemas::Timestamp;

use crate::hashing::{HashKeyRange, hash_key};
use crate::port::*;

/// The embedded stream adapter. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStream {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    records: Keyspace,
    shard_metadata: Keyspace,
    /// Holds the high-water mark.
    state: Keyspace,
    /// Held while sequence numbers are given out and the records committed, and while resharding.
    append_lock: Mutex<()>,
    shards: RwLock<Vec<ShardMeta>>,
    /// The next sequence number to give out.
    next_sequence: AtomicU64,
    /// Every record numbered at or below this is on disk.
    durable_watermark: AtomicU64,
    retention: Duration,
}

/// The key, in `stream_state`, of the highest sequence number ever given.
const HIGH_WATER_KEY: &[u8] = b"high_water";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardMeta {
    index: u32,
    info: ShardInfo,
    closed_at: Option<Timestamp>,
}

impl EmbeddedStream {
    /// Opens the stream in `engine`, creating it with `shard_count` shards of equal hash-key ranges
    /// if it does not exist yet. `retention` is how long records are kept (Kinesis' default is 24 h).
    pub fn open(engine: &Engine, shard_count: u32, retention: Duration) -> Result<Self, StreamError> {
        let records = engine.keyspace("stream_records").map_err(unavailable)?;
        let shard_metadata = engine.keyspace("stream_shards").map_err(unavailable)?;
        let state = engine.keyspace("stream_state").map_err(unavailable)?;
        let mut shards = Vec::new();
        for entry in shard_metadata.iter() {
            let (_, value) = entry.into_inner().map_err(unavailable)?;
            shards.push(rmp_serde::from_slice::<ShardMeta>(&value).map_err(unavailable)?);
        }
        shards.sort_by_key(|meta| meta.index);

        // Sequence numbers continue after the highest ever given: the high-water mark, or the last
        // record on disk or a shard boundary recorded at a split or merge (all a stream written
        // before the mark existed has), whichever is higher.
        let high_water = match state.get(HIGH_WATER_KEY).map_err(unavailable)? {
            Some(value) => decode_high_water(&value)?,
            None => 0,
        };
        let mut last_record = 0;
        for meta in &shards {
            if let Some(entry) = records.prefix(meta.index.to_be_bytes()).next_back() {
                last_record = last_record.max(decode_key(&entry.key().map_err(unavailable)?).1);
            }
        }
        let last_boundary = shards
            .iter()
            .flat_map(|m| [Some(&m.info.starting_sequence), m.info.ending_sequence.as_ref()])
            .flatten()
            .filter_map(SequenceNumber::as_u64)
            .max()
            .unwrap_or(0);
        let highest = high_water.max(last_record).max(last_boundary);

        let stream = Self {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                records,
                shard_metadata,
                state,
                append_lock: Mutex::new(()),
                shards: RwLock::new(shards),
                next_sequence: AtomicU64::new(highest + 1),
                durable_watermark: AtomicU64::new(highest),
                retention,
            }),
        };
        if stream.inner.shards.read().expect("shard lock").is_empty() {
            let start = SequenceNumber::from(highest + 1);
            let created: Vec<ShardMeta> = HashKeyRange::uniform(shard_count)
                .into_iter()
                .enumerate()
                .map(|(i, range)| new_shard(i as u32, range, start.clone(), None, None))
                .collect();
            stream.persist_shards(&created, None)?;
            *stream.inner.shards.write().expect("shard lock") = created;
        }
        Ok(stream)
    }

    /// Deletes records that arrived more than the retention ago, and forgets closed shards whose
    /// records are all gone. Returns how many records were deleted. Run it periodically.
    pub fn trim_expired(&self, now: Timestamp) -> Result<usize, StreamError> {
        let cutoff = now.plus_millis(-(self.inner.retention.as_millis() as i64));
        let shards = self.inner.shards.read().expect("shard lock").clone();
        let mut deleted = 0;
        let mut forgotten = Vec::new();
        for meta in &shards {
            let mut batch = self.inner.engine.batch();
            for entry in self.inner.records.prefix(meta.index.to_be_bytes()) {
                let (key, value) = entry.into_inner().map_err(unavailable)?;
                if decode_arrival(&value) >= cutoff {
                    break;
                }
                batch.remove(&self.inner.records, key);
                deleted += 1;
            }
            batch.commit().map_err(unavailable)?;
            let closed_long_ago = meta.closed_at.is_some_and(|closed| closed < cutoff);
            if closed_long_ago && self.inner.records.prefix(meta.index.to_be_bytes()).next().is_none() {
                forgotten.push(meta.index);
            }
        }
        if !forgotten.is_empty() {
            let _append = self.inner.append_lock.lock().expect("append lock");
            let mut batch = self.inner.engine.batch();
            for index in &forgotten {
                batch.remove(&self.inner.shard_metadata, index.to_be_bytes());
            }
            batch.commit().map_err(unavailable)?;
            self.inner.shards.write().expect("shard lock").retain(|m| !forgotten.contains(&m.index));
        }
        Ok(deleted)
    }

    /// Writes shard metadata, and the high-water mark when numbers were given for it, in one batch.
    fn persist_shards(&self, metas: &[ShardMeta], high_water: Option<u64>) -> Result<(), StreamError> {
        let mut batch = self.inner.engine.batch();
        for meta in metas {
            let value = rmp_serde::to_vec_named(meta).map_err(unavailable)?;
            batch.insert(&self.inner.shard_metadata, meta.index.to_be_bytes(), value);
        }
        if let Some(high_water) = high_water {
            batch.insert(&self.inner.state, HIGH_WATER_KEY, high_water.to_be_bytes());
        }
        batch.commit().map_err(unavailable)
    }

    fn shard(&self, shard: &ShardId) -> Result<ShardMeta, StreamError> {
        let shards = self.inner.shards.read().expect("shard lock");
        shards
            .iter()
            .find(|m| &m.info.shard_id == shard)
            .cloned()
            .ok_or_else(|| StreamError::NoSuchShard(shard.clone()))
    }

    /// Closes `parents` and opens `children` (ranges with their parents), under the append lock so
    /// that no record is numbered between the parents' end and the children's start.
    async fn reshard(
        &self,
        parents: &[ShardId],
        children: &[(HashKeyRange, Option<ShardId>, Option<ShardId>)],
    ) -> Result<(), StreamError> {
        let boundary = {
            let _append = self.inner.append_lock.lock().expect("append lock");
            let mut shards = self.inner.shards.write().expect("shard lock");
            let now = Timestamp::now();
            let boundary = self.inner.next_sequence.fetch_add(1, Ordering::SeqCst);
            let mut changed = Vec::new();
            for meta in shards.iter_mut().filter(|m| parents.contains(&m.info.shard_id)) {
                meta.info.ending_sequence = Some(SequenceNumber::from(boundary));
                meta.closed_at = Some(now);
                changed.push(meta.clone());
            }
            let first_index = shards.iter().map(|m| m.index + 1).max().unwrap_or(0);
            for (index, (range, parent, adjacent)) in (first_index..).zip(children) {
                let child =
                    new_shard(index, *range, SequenceNumber::from(boundary + 1), parent.clone(), adjacent.clone());
                changed.push(child.clone());
                shards.push(child);
            }
            self.persist_shards(&changed, Some(boundary))?;
            boundary
        };
        self.inner.engine.sync().await.map_err(unavailable)?;
        // The boundary is durable now; raising the watermark to it lets readers of the parents see
        // that they have read everything and move on to the children.
        self.inner.durable_watermark.fetch_max(boundary, Ordering::SeqCst);
        Ok(())
    }
}

fn new_shard(
    index: u32,
    range: HashKeyRange,
    starting_sequence: SequenceNumber,
    parent: Option<ShardId>,
    adjacent_parent: Option<ShardId>,
) -> ShardMeta {
    ShardMeta {
        index,
        info: ShardInfo {
            shard_id: ShardId::from_index(index),
            parent,
            adjacent_parent,
            hash_key_range: range,
            starting_sequence,
            ending_sequence: None,
        },
        closed_at: None,
    }
}

#[async_trait]
impl Stream for EmbeddedStream {
    async fn append(&self, records: Vec<AppendRecord>) -> Result<Vec<Result<Appended, StreamError>>, StreamError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut results = Vec::with_capacity(records.len());
        let highest_numbered = {
            let _append = self.inner.append_lock.lock().expect("append lock");
            let shards = self.inner.shards.read().expect("shard lock");
            let arrived_at = Timestamp::now();
            let mut batch = self.inner.engine.batch();
            let mut highest = 0;
            for record in &records {
                if let Err(too_large) = record.check_size() {
                    results.push(Err(too_large));
                    continue;
                }
                let key = hash_key(&record.partition_key);
                let Some(shard) = shards.iter().find(|m| m.info.is_open() && m.info.hash_key_range.contains(key))
                else {
                    results.push(Err(StreamError::Unavailable("no open shard owns the hash key".into())));
                    continue;
                };
                if record.partition_key.len() > usize::from(u16::MAX) {
                    results.push(Err(StreamError::Invalid("partition key longer than 65535 bytes".into())));
                    continue;
                }
                let sequence = self.inner.next_sequence.fetch_add(1, Ordering::SeqCst);
                highest = sequence;
                batch.insert(&self.inner.records, encode_key(shard.index, sequence), encode_value(arrived_at, record));
                results.push(Ok(Appended { shard_id: shard.info.shard_id.clone(), sequence_number: sequence.into() }));
            }
            if highest > 0 {
                batch.insert(&self.inner.state, HIGH_WATER_KEY, highest.to_be_bytes());
            }
            batch.commit().map_err(unavailable)?;
            highest
        };
        self.inner.engine.sync().await.map_err(unavailable)?;
        self.inner.durable_watermark.fetch_max(highest_numbered, Ordering::SeqCst);
        Ok(results)
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        Ok(self.inner.shards.read().expect("shard lock").iter().map(|m| m.info.clone()).collect())
    }

    async fn open_reader(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        let meta = self.shard(shard)?;
        let next_sequence = match from {
            StartPosition::TrimHorizon => 0,
            StartPosition::Latest => self.inner.durable_watermark.load(Ordering::SeqCst) + 1,
            StartPosition::AtSequence(at) => sequence_u64(&at)?,
            StartPosition::AfterSequence(after) => sequence_u64(&after)?.saturating_add(1),
            StartPosition::AtTimestamp(at) => {
                let watermark = self.inner.durable_watermark.load(Ordering::SeqCst);
                let mut first_at_or_after = watermark + 1;
                for entry in self.inner.records.prefix(meta.index.to_be_bytes()) {
                    let (key, value) = entry.into_inner().map_err(unavailable)?;
                    let sequence = decode_key(&key).1;
                    if sequence > watermark {
                        break;
                    }
                    if decode_arrival(&value) >= at {
                        first_at_or_after = sequence;
                        break;
                    }
                }
                first_at_or_after
            }
        };
        Ok(Box::new(EmbeddedShardReader {
            stream: self.clone(),
            index: meta.index,
            shard_id: meta.info.shard_id,
            next_sequence,
        }))
    }

    async fn split_shard(&self, shard: &ShardId, new_starting_hash_key: u128) -> Result<(), StreamError> {
        let parent = self.shard(shard)?;
        if !parent.info.is_open() {
            return Err(StreamError::Invalid(format!("shard {shard} is closed")));
        }
        let (low, high) = parent.info.hash_key_range.split_at(new_starting_hash_key).ok_or_else(|| {
            StreamError::Invalid(format!("hash key {new_starting_hash_key} does not split shard {shard} in two"))
        })?;
        let parent_id = Some(shard.clone());
        self.reshard(std::slice::from_ref(shard), &[(low, parent_id.clone(), None), (high, parent_id, None)]).await
    }

    async fn merge_shards(&self, shard: &ShardId, adjacent: &ShardId) -> Result<(), StreamError> {
        let (first, second) = (self.shard(shard)?, self.shard(adjacent)?);
        if !first.info.is_open() || !second.info.is_open() {
            return Err(StreamError::Invalid(format!("shards {shard} and {adjacent} must both be open")));
        }
        let merged = first
            .info
            .hash_key_range
            .merge(&second.info.hash_key_range)
            .ok_or_else(|| StreamError::Invalid(format!("shards {shard} and {adjacent} are not adjacent")))?;
        self.reshard(&[shard.clone(), adjacent.clone()], &[(merged, Some(shard.clone()), Some(adjacent.clone()))]).await
    }
}

struct EmbeddedShardReader {
    stream: EmbeddedStream,
    index: u32,
    shard_id: ShardId,
    next_sequence: u64,
}

#[async_trait]
impl ShardReader for EmbeddedShardReader {
    async fn next_batch(&mut self, max_records: usize) -> Result<ReadBatch, StreamError> {
        let inner = &self.stream.inner;
        let meta = self.stream.shard(&self.shard_id)?;
        let ending = meta.info.ending_sequence.as_ref().and_then(SequenceNumber::as_u64);
        let watermark = inner.durable_watermark.load(Ordering::SeqCst);
        let last_readable = ending.map_or(watermark, |end| end.min(watermark));

        let mut records = Vec::new();
        if self.next_sequence <= last_readable {
            let range = encode_key(self.index, self.next_sequence)..=encode_key(self.index, last_readable);
            for entry in inner.records.range(range).take(max_records.max(1)) {
                let (key, value) = entry.into_inner().map_err(unavailable)?;
                let sequence = decode_key(&key).1;
                records.push(decode_record(sequence, &value));
                self.next_sequence = sequence + 1;
            }
        }
        let millis_behind_latest = match records.last() {
            Some(last) if records.len() >= max_records => {
                (Timestamp::now().as_millis() - last.arrived_at.as_millis()).max(0) as u64
            }
            _ => 0,
        };
        let drained_closed_shard = records.is_empty() && ending.is_some_and(|end| end <= watermark);
        let shard_end = drained_closed_shard.then(|| {
            let shards = inner.shards.read().expect("shard lock");
            shards
                .iter()
                .filter(|m| {
                    m.info.parent.as_ref() == Some(&self.shard_id)
                        || m.info.adjacent_parent.as_ref() == Some(&self.shard_id)
                })
                .map(|m| m.info.shard_id.clone())
                .collect()
        });
        Ok(ReadBatch { records, millis_behind_latest, shard_end })
    }
}

fn encode_key(shard_index: u32, sequence: u64) -> [u8; 12] {
    let mut key = [0; 12];
    key[..4].copy_from_slice(&shard_index.to_be_bytes());
    key[4..].copy_from_slice(&sequence.to_be_bytes());
    key
}

fn decode_key(key: &[u8]) -> (u32, u64) {
    let shard = u32::from_be_bytes(key[..4].try_into().expect("12-byte record key"));
    let sequence = u64::from_be_bytes(key[4..12].try_into().expect("12-byte record key"));
    (shard, sequence)
}

fn encode_value(arrived_at: Timestamp, record: &AppendRecord) -> Vec<u8> {
    let key = record.partition_key.as_bytes();
    let mut value = Vec::with_capacity(10 + key.len() + record.data.len());
    value.extend_from_slice(&arrived_at.as_millis().to_be_bytes());
    value.extend_from_slice(&(key.len() as u16).to_be_bytes());
    value.extend_from_slice(key);
    value.extend_from_slice(&record.data);
    value
}

fn decode_arrival(value: &[u8]) -> Timestamp {
    Timestamp::from_millis(i64::from_be_bytes(value[..8].try_into().expect("record value has an arrival time")))
}

fn decode_record(sequence: u64, value: &[u8]) -> ShardRecord {
    let key_len = usize::from(u16::from_be_bytes([value[8], value[9]]));
    let partition_key = String::from_utf8_lossy(&value[10..10 + key_len]).into_owned();
    ShardRecord {
        sequence_number: sequence.into(),
        partition_key,
        data: Bytes::copy_from_slice(&value[10 + key_len..]),
        arrived_at: decode_arrival(value),
    }
}

fn decode_high_water(value: &[u8]) -> Result<u64, StreamError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| StreamError::Unavailable(format!("stream high-water mark has {} bytes, not 8", value.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn sequence_u64(sequence: &SequenceNumber) -> Result<u64, StreamError> {
    sequence.as_u64().ok_or_else(|| StreamError::Invalid(format!("sequence number {sequence} is out of range")))
}

fn unavailable(error: impl std::fmt::Display) -> StreamError {
    StreamError::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_values_round_trip() {
        let record = AppendRecord { partition_key: "customer-1".into(), data: Bytes::from_static(b"\x01payload") };
        let value = encode_value(Timestamp::from_millis(42), &record);
        let decoded = decode_record(7, &value);
        assert_eq!(decoded.partition_key, "customer-1");
        assert_eq!(&decoded.data[..], b"\x01payload");
        assert_eq!(decoded.arrived_at, Timestamp::from_millis(42));
        assert_eq!(decode_key(&encode_key(3, 7)), (3, 7));
    }

    #[tokio::test]
    async fn sequence_numbers_continue_after_reopen_and_records_are_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let first_batch = {
            let engine = Engine::open(dir.path()).unwrap();
            let stream = EmbeddedStream::open(&engine, 2, Duration::from_secs(60)).unwrap();
            let records =
                (0..10).map(|i| AppendRecord { partition_key: format!("k{i}"), data: Bytes::from("x") }).collect();
            stream.append(records).await.unwrap()
        };
        let engine = Engine::open(dir.path()).unwrap();
        let stream = EmbeddedStream::open(&engine, 2, Duration::from_secs(60)).unwrap();
        assert_eq!(stream.list_shards().await.unwrap().len(), 2);
        let after =
            stream.append(vec![AppendRecord { partition_key: "k0".into(), data: Bytes::from("y") }]).await.unwrap();
        let highest_before = first_batch.iter().map(|r| r.as_ref().unwrap().sequence_number.clone()).max().unwrap();
        assert!(after[0].as_ref().unwrap().sequence_number > highest_before);

        assert_eq!(stream.trim_expired(Timestamp::now()).unwrap(), 0);
        assert_eq!(stream.trim_expired(Timestamp::now().plus_millis(61_000)).unwrap(), 11);
        for shard in stream.list_shards().await.unwrap() {
            let mut reader = stream.open_reader(&shard.shard_id, StartPosition::TrimHorizon).await.unwrap();
            assert!(reader.next_batch(100).await.unwrap().records.is_empty());
        }
    }

    /// After a quiet spell the trim deletes every record; numbers given after a restart must still
    /// be above every number given before, or a reader resuming from its checkpoint skips them.
    #[tokio::test]
    async fn sequence_numbers_stay_above_a_checkpoint_after_the_trim_empties_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Duration::from_secs(60);
        let record = |key: &str| AppendRecord { partition_key: key.into(), data: Bytes::from("x") };
        let (shard, checkpoint) = {
            let engine = Engine::open(dir.path()).unwrap();
            let stream = EmbeddedStream::open(&engine, 1, retention).unwrap();
            let appended = stream.append((0..5).map(|i| record(&format!("k{i}"))).collect()).await.unwrap();
            let last = appended.into_iter().map(Result::unwrap).max_by_key(|a| a.sequence_number.clone()).unwrap();
            assert_eq!(stream.trim_expired(Timestamp::now().plus_millis(61_000)).unwrap(), 5);
            (last.shard_id, last.sequence_number)
        };

        let engine = Engine::open(dir.path()).unwrap();
        let stream = EmbeddedStream::open(&engine, 1, retention).unwrap();
        let appended = stream.append(vec![record("a"), record("b")]).await.unwrap();
        for landed in &appended {
            assert!(landed.as_ref().unwrap().sequence_number > checkpoint, "{landed:?} is not above {checkpoint}");
        }
        let mut reader = stream.open_reader(&shard, StartPosition::AfterSequence(checkpoint)).await.unwrap();
        let read = reader.next_batch(100).await.unwrap().records;
        let keys: Vec<_> = read.iter().map(|r| r.partition_key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
    }
}
