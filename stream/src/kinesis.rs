//! The Kinesis Data Streams adapter of the stream port, on the AWS SDK.
//!
//! It speaks to real Kinesis and to moto (the test double). Where moto differs from Kinesis in a way
//! that matters to consumers, the adapter papers over it: moto never signals the end of a closed
//! shard, so a reader that finds nothing to read asks ListShards (rarely) whether its shard is
//! closed and which shards replaced it.
//!
//! Every call is bounded in time ([`ATTEMPT_TIMEOUT`], [`CALL_TIMEOUT`]): the AWS SDK sets no
//! operation timeout of its own, and an endpoint that accepts a connection and never answers would
//! otherwise hold the caller for good. A call that runs out of time is
//! [`StreamError::Unavailable`], like any other transport failure.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::get_records::GetRecordsOutput;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    HashKeyRange as SdkHashKeyRange, PutRecordsRequestEntry, PutRecordsResultEntry, Record, Shard, ShardIteratorType,
    StreamStatus,
};
use bytes::Bytes;
use tracing::{debug, info, warn};
use triggers_schemas::Timestamp;

use crate::hashing::HashKeyRange;
use crate::port::{
    AppendRecord, Appended, ReadBatch, SequenceNumber, ShardId, ShardInfo, ShardReader, ShardRecord, StartPosition,
    Stream, StreamError,
};

/// How long one attempt of a Kinesis call may take. Kinesis answers in milliseconds; the bound is
/// there for a service or network that stopped answering.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one Kinesis call may take, the SDK's retries of failed attempts included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// PutRecords accepts at most this many records per call.
const MAX_RECORDS_PER_PUT: usize = 500;
/// PutRecords accepts at most this many bytes (data plus partition keys) per call.
const MAX_BYTES_PER_PUT: usize = 5 * 1024 * 1024;
/// GetRecords returns at most this many records per call.
const MAX_RECORDS_PER_GET: usize = 10_000;
/// How often one reader may ask ListShards whether its shard closed. ListShards is limited per
/// stream, and every idle reader would otherwise ask on every poll.
const CLOSURE_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How often, and how long, to wait for the stream to become ACTIVE again after a split or merge.
const RESHARD_POLL: Duration = Duration::from_millis(100);
const RESHARD_TIMEOUT: Duration = Duration::from_secs(30);
/// How often, and how long, to wait for a new stream to become ACTIVE. Kinesis takes tens of
/// seconds to create a stream; moto does it at once.
const CREATE_POLL: Duration = Duration::from_millis(250);
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Error messages carry at most this many characters of the service's or transport's text.
const MAX_MESSAGE_CHARS: usize = 300;

/// A Kinesis data stream behind the stream port.
#[derive(Debug, Clone)]
pub struct KinesisStream {
    client: Client,
    stream_name: Arc<str>,
}

impl KinesisStream {
    /// The stream named `stream_name`, reached through a client configured like `client`, with
    /// the adapter's timeouts where that configuration sets none ([`with_call_timeouts`]). Nothing
    /// is checked until the first call; see [`create_if_missing`] to make sure the stream exists.
    pub fn new(client: &Client, stream_name: impl Into<String>) -> Self {
        Self { client: with_call_timeouts(client), stream_name: Arc::from(stream_name.into()) }
    }

    /// The name of the stream.
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    /// The error for a failed call that names shards; see [`shard_call_error`].
    async fn shard_call_error<E>(&self, operation: &str, error: &SdkError<E>, shards: &[&ShardId]) -> StreamError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        shard_call_error(&self.client, &self.stream_name, operation, error, shards).await
    }
}

/// `client`, with [`ATTEMPT_TIMEOUT`] and [`CALL_TIMEOUT`] wherever its configuration sets no
/// attempt or operation timeout. A timeout the caller set, or explicitly disabled, is kept.
pub fn with_call_timeouts(client: &Client) -> Client {
    let config = client.config();
    let defaults = TimeoutConfig::builder().operation_attempt_timeout(ATTEMPT_TIMEOUT).operation_timeout(CALL_TIMEOUT);
    let timeouts = match config.timeout_config() {
        Some(set) => set.to_builder().take_unset_from(defaults).build(),
        None => defaults.build(),
    };
    Client::from_conf(config.to_builder().timeout_config(timeouts).build())
}

/// The error for a failed call that names shards. Kinesis answers ResourceNotFoundException both
/// for a missing stream and for a missing shard, and a shard it has just created or whose state it
/// has not yet propagated may briefly be "not found" too. Only a shard that ListShards confirms
/// absent is [`StreamError::NoSuchShard`] (its readers end for good); a shard ListShards still
/// shows, or a ListShards that fails, makes the error [`StreamError::Unavailable`], to be retried.
async fn shard_call_error<E>(
    client: &Client,
    stream_name: &str,
    operation: &str,
    error: &SdkError<E>,
    shards: &[&ShardId],
) -> StreamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (failure, message) = describe_sdk_error(operation, error);
    if failure != Failure::NotFound {
        return failure.into_error(message, || StreamError::NoSuchStream(stream_name.to_owned()));
    }
    debug!(stream = stream_name, shards = ?shards, %message, "resource not found");
    match list_all_shards(client, stream_name).await {
        Ok(listed) => missing_shard(shards, &listed).map_or_else(
            || StreamError::Unavailable(format!("{message} (yet ListShards shows every shard named)")),
            StreamError::NoSuchShard,
        ),
        Err(missing @ StreamError::NoSuchStream(_)) => missing,
        Err(listing) => StreamError::Unavailable(format!("{message} (and ListShards failed: {listing})")),
    }
}

/// The first of `shards` that `listed` does not hold.
fn missing_shard(shards: &[&ShardId], listed: &[ShardInfo]) -> Option<ShardId> {
    shards.iter().find(|shard| !listed.iter().any(|info| &info.shard_id == **shard)).map(|shard| (*shard).clone())
}

/// Creates the stream with `shard_count` shards unless it exists, then waits until it is ACTIVE.
///
/// An existing stream is left as it is, whatever its shard count.
pub async fn create_if_missing(client: &Client, stream_name: &str, shard_count: u32) -> Result<(), StreamError> {
    let client = &with_call_timeouts(client);
    let no_such_stream = || StreamError::NoSuchStream(stream_name.to_owned());
    // Describe first, so that a deployment whose stream exists needs no CreateStream permission.
    match client.describe_stream_summary().stream_name(stream_name).send().await {
        Ok(_) => debug!(stream = stream_name, "stream exists"),
        Err(error) => {
            let (failure, message) = describe_sdk_error("DescribeStreamSummary", &error);
            if failure != Failure::NotFound {
                return Err(failure.into_error(message, no_such_stream));
            }
            let count = i32::try_from(shard_count)
                .map_err(|_| StreamError::Invalid(format!("shard count {shard_count} is too large")))?;
            match client.create_stream().stream_name(stream_name).shard_count(count).send().await {
                Ok(_) => info!(stream = stream_name, shard_count, "created stream"),
                // Someone else created it since the describe: just as good.
                Err(error) if error.code() == Some("ResourceInUseException") => {
                    debug!(stream = stream_name, "stream created concurrently");
                }
                Err(error) => {
                    let (failure, message) = describe_sdk_error("CreateStream", &error);
                    return Err(failure.into_error(message, no_such_stream));
                }
            }
        }
    }
    wait_until_active(client, stream_name, CREATE_POLL, CREATE_TIMEOUT).await
}

/// Polls DescribeStreamSummary until the stream is ACTIVE.
///
/// A freshly created stream may briefly be unknown to DescribeStreamSummary, so "not found" counts
/// as "not yet" until the deadline; so do throttling and transient failures.
async fn wait_until_active(
    client: &Client,
    stream_name: &str,
    poll: Duration,
    timeout: Duration,
) -> Result<(), StreamError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_seen = match client.describe_stream_summary().stream_name(stream_name).send().await {
            Ok(output) => match output
                .stream_description_summary()
                .map(aws_sdk_kinesis::types::StreamDescriptionSummary::stream_status)
            {
                Some(StreamStatus::Active) => return Ok(()),
                Some(StreamStatus::Deleting) => {
                    warn!(stream = stream_name, "the stream is being deleted");
                    return Err(StreamError::NoSuchStream(stream_name.to_owned()));
                }
                Some(status) => format!("status {}", status.as_str()),
                None => "no summary".to_owned(),
            },
            Err(error) => describe_sdk_error("DescribeStreamSummary", &error).1,
        };
        if Instant::now() + poll > deadline {
            return Err(StreamError::Unavailable(format!(
                "stream {stream_name} not ACTIVE after {}s ({last_seen})",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

#[async_trait]
impl Stream for KinesisStream {
    async fn append(&self, records: Vec<AppendRecord>) -> Result<Vec<Result<Appended, StreamError>>, StreamError> {
        let total = records.len();
        // One slot per record, in order. A record over the size limit is refused here, alone:
        // Kinesis would fail the whole call with it, and retrying could never help.
        let mut slots: Vec<Option<Result<Appended, StreamError>>> = Vec::with_capacity(total);
        let mut sendable = Vec::with_capacity(total);
        let mut positions = Vec::with_capacity(total);
        for (position, record) in records.into_iter().enumerate() {
            match record.check_size() {
                Ok(()) => {
                    sendable.push(record);
                    positions.push(position);
                    slots.push(None);
                }
                Err(too_large) => slots.push(Some(Err(too_large))),
            }
        }
        let chunks = chunk_ranges(&sendable);
        let mut remaining = sendable.into_iter();
        for chunk in chunks {
            let entries =
                remaining.by_ref().take(chunk.len()).map(request_entry).collect::<Result<Vec<_>, StreamError>>()?;
            let sent = entries.len();
            let response =
                self.client.put_records().stream_name(&*self.stream_name).set_records(Some(entries)).send().await;
            match response {
                Ok(output) => {
                    let chunk_results = append_results(output.records(), sent);
                    let failed = chunk_results.iter().filter(|result| result.is_err()).count();
                    if failed > 0 {
                        warn!(stream = %self.stream_name, failed, sent, "PutRecords rejected some records");
                    }
                    for (position, result) in positions[chunk].iter().zip(chunk_results) {
                        slots[*position] = Some(result);
                    }
                }
                Err(error) => {
                    let (failure, message) = describe_sdk_error("PutRecords", &error);
                    let error = failure.into_error(message, || StreamError::NoSuchStream(self.stream_name.to_string()));
                    // Nothing was sent or refused yet: the whole call failed.
                    if slots.iter().all(Option::is_none) {
                        return Err(error);
                    }
                    // Earlier chunks are durable and must be reported as such, or the caller would
                    // resend them; the records not sent yet share this chunk's failure.
                    let unsent = slots.iter().filter(|slot| slot.is_none()).count();
                    warn!(stream = %self.stream_name, %error, unsent, "PutRecords failed part-way");
                    for slot in slots.iter_mut().filter(|slot| slot.is_none()) {
                        *slot = Some(Err(error.clone()));
                    }
                    break;
                }
            }
        }
        Ok(slots
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    Err(StreamError::Unavailable("PutRecords returned no result for the record".into()))
                })
            })
            .collect())
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        list_all_shards(&self.client, &self.stream_name).await
    }

    async fn open_reader(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        let iterator = match get_shard_iterator(&self.client, &self.stream_name, shard, &from).await {
            Ok(iterator) => iterator,
            Err(error) => return Err(self.shard_call_error("GetShardIterator", &error, &[shard]).await),
        };
        debug!(stream = %self.stream_name, shard = %shard, position = ?from, "opened shard reader");
        Ok(Box::new(KinesisShardReader {
            client: self.client.clone(),
            stream_name: Arc::clone(&self.stream_name),
            shard: shard.clone(),
            start: from,
            iterator,
            last_sequence: None,
            listing: None,
            get_records_calls: 0,
            finished: None,
        }))
    }

    async fn split_shard(&self, shard: &ShardId, new_starting_hash_key: u128) -> Result<(), StreamError> {
        let response = self
            .client
            .split_shard()
            .stream_name(&*self.stream_name)
            .shard_to_split(&shard.0)
            .new_starting_hash_key(new_starting_hash_key.to_string())
            .send()
            .await;
        if let Err(error) = response {
            return Err(self.shard_call_error("SplitShard", &error, &[shard]).await);
        }
        info!(stream = %self.stream_name, shard = %shard, %new_starting_hash_key, "split shard");
        wait_until_active(&self.client, &self.stream_name, RESHARD_POLL, RESHARD_TIMEOUT).await
    }

    async fn merge_shards(&self, shard: &ShardId, adjacent: &ShardId) -> Result<(), StreamError> {
        let response = self
            .client
            .merge_shards()
            .stream_name(&*self.stream_name)
            .shard_to_merge(&shard.0)
            .adjacent_shard_to_merge(&adjacent.0)
            .send()
            .await;
        if let Err(error) = response {
            return Err(self.shard_call_error("MergeShards", &error, &[shard, adjacent]).await);
        }
        info!(stream = %self.stream_name, shard = %shard, adjacent = %adjacent, "merged shards");
        wait_until_active(&self.client, &self.stream_name, RESHARD_POLL, RESHARD_TIMEOUT).await
    }
}

/// Reads one shard through GetRecords, renewing its iterator when it expires.
struct KinesisShardReader {
    client: Client,
    stream_name: Arc<str>,
    shard: ShardId,
    /// Where the reader was opened: where a renewed iterator starts when no record was read yet.
    start: StartPosition,
    /// The iterator for the next GetRecords; `None` once Kinesis said the shard has no more data.
    iterator: Option<String>,
    /// The last record returned, so a renewed iterator resumes just after it.
    last_sequence: Option<SequenceNumber>,
    /// The shard's state as ListShards last told it.
    listing: Option<Listing>,
    /// How many GetRecords calls this reader has issued: tells which came after a listing.
    get_records_calls: u64,
    /// The children, once the end of the shard was reached.
    finished: Option<Vec<ShardId>>,
}

#[async_trait]
impl ShardReader for KinesisShardReader {
    async fn next_batch(&mut self, max_records: usize) -> Result<ReadBatch, StreamError> {
        if let Some(children) = &self.finished {
            return Ok(ReadBatch { shard_end: Some(children.clone()), ..ReadBatch::default() });
        }
        let Some(iterator) = self.iterator.clone() else {
            // Kinesis ended the shard on an earlier call but the children could not be looked up then.
            let children = self.children_from_listing().await?;
            return Ok(self.finish(ReadBatch::default(), children));
        };
        let Some(output) = self.get_records(iterator, max_records).await? else {
            self.iterator = None;
            let children = self.children_from_listing().await?;
            return Ok(self.finish(ReadBatch::default(), children));
        };
        let signalled_end = signalled_shard_end(&output);
        let millis_behind_latest = output.millis_behind_latest().map_or(0, |millis| u64::try_from(millis).unwrap_or(0));
        // Parsed before the iterator moves on, so that a malformed answer can be read again.
        let records = output.records.iter().map(shard_record).collect::<Result<Vec<_>, _>>()?;
        self.iterator = output.next_shard_iterator;
        if let Some(last) = records.last() {
            self.last_sequence = Some(last.sequence_number.clone());
        }
        let batch = ReadBatch { records, millis_behind_latest, shard_end: None };

        match signalled_end {
            Some(children) if !children.is_empty() => Ok(self.finish(batch, children)),
            Some(_) => {
                // The iterator ran out without naming the children: find them by lineage. The
                // records in hand must not be lost if that fails, so the lookup is retried on the
                // next call (the missing iterator marks it) instead of failing this one.
                match self.children_from_listing().await {
                    Ok(children) => Ok(self.finish(batch, children)),
                    Err(error) => {
                        warn!(
                            stream = %self.stream_name, shard = %self.shard, %error,
                            "could not list the children of an ended shard"
                        );
                        Ok(batch)
                    }
                }
            }
            // Only a reader at the tip asks: an empty answer with records still ahead (Kinesis gives
            // those at times) says so through MillisBehindLatest.
            None if batch.records.is_empty() && batch.millis_behind_latest == 0 => {
                match self.closed_by_listing(self.get_records_calls).await {
                    Some(children) => Ok(self.finish(batch, children)),
                    None => Ok(batch),
                }
            }
            None => Ok(batch),
        }
    }
}

impl KinesisShardReader {
    /// One GetRecords call; an expired iterator is renewed once, where the reader had got to.
    /// `None` when the renewal found the shard read to its end (Kinesis gives no iterator then).
    async fn get_records(
        &mut self,
        iterator: String,
        max_records: usize,
    ) -> Result<Option<GetRecordsOutput>, StreamError> {
        let limit = get_records_limit(max_records);
        self.get_records_calls += 1;
        let error = match self.client.get_records().shard_iterator(iterator).limit(limit).send().await {
            Ok(output) => return Ok(Some(output)),
            Err(error) => error,
        };
        if describe_sdk_error("GetRecords", &error).0 != Failure::ExpiredIterator {
            return Err(self.shard_call_error("GetRecords", &error).await);
        }
        let position = self.last_sequence.clone().map_or_else(|| self.start.clone(), StartPosition::AfterSequence);
        debug!(stream = %self.stream_name, shard = %self.shard, ?position, "shard iterator expired; renewing");
        let renewed = match get_shard_iterator(&self.client, &self.stream_name, &self.shard, &position).await {
            Ok(Some(renewed)) => renewed,
            Ok(None) => return Ok(None),
            Err(error) => return Err(self.shard_call_error("GetShardIterator", &error).await),
        };
        // Kept at once, so that a retry after a failure below starts from the fresh iterator.
        self.iterator = Some(renewed.clone());
        self.get_records_calls += 1;
        match self.client.get_records().shard_iterator(renewed).limit(limit).send().await {
            Ok(output) => Ok(Some(output)),
            Err(error) => Err(self.shard_call_error("GetRecords", &error).await),
        }
    }

    /// The error for a failed call on this reader's shard; see [`shard_call_error`].
    async fn shard_call_error<E>(&self, operation: &str, error: &SdkError<E>) -> StreamError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        shard_call_error(&self.client, &self.stream_name, operation, error, &[&self.shard]).await
    }

    /// Marks the shard finished and puts the children in the batch.
    fn finish(&mut self, mut batch: ReadBatch, children: Vec<ShardId>) -> ReadBatch {
        info!(stream = %self.stream_name, shard = %self.shard, children = ?children, "reached the end of the shard");
        self.iterator = None;
        self.finished = Some(children.clone());
        batch.shard_end = Some(children);
        batch
    }

    /// The shards that replaced this one, by the lineage ListShards reports.
    async fn children_from_listing(&self) -> Result<Vec<ShardId>, StreamError> {
        let shards = list_all_shards(&self.client, &self.stream_name).await?;
        Ok(children_of(&self.shard, &shards))
    }

    /// Whether ListShards says the shard is closed and this reader has read all of it, given that
    /// GetRecords call number `empty_call` came back empty at the tip: the children if so. Asked
    /// at most every [`CLOSURE_CHECK_INTERVAL`]; a failed ListShards is only logged, as the next
    /// empty batch asks again.
    ///
    /// This exists for moto, which for a closed shard keeps returning an iterator and never the
    /// child shards. Kinesis itself ends a shard through GetRecords before this is needed.
    async fn closed_by_listing(&mut self, empty_call: u64) -> Option<Vec<ShardId>> {
        let fresh = self.listing.as_ref().is_some_and(|listing| listing.at.elapsed() < CLOSURE_CHECK_INTERVAL);
        if !fresh {
            match list_all_shards(&self.client, &self.stream_name).await {
                Ok(shards) => {
                    self.listing = Some(Listing {
                        at: Instant::now(),
                        calls_before: self.get_records_calls,
                        lineage: lineage_of(&self.shard, &shards),
                    });
                }
                Err(error) => {
                    warn!(
                        stream = %self.stream_name, shard = %self.shard, %error,
                        "could not check whether the shard is closed"
                    );
                    return None;
                }
            }
        }
        let listing = self.listing.as_ref()?;
        let ended = ended_by_listing(listing, self.last_sequence.as_ref(), empty_call);
        if ended.is_none() && matches!(listing.lineage, Lineage::Closed { .. }) {
            debug!(
                stream = %self.stream_name, shard = %self.shard,
                "the shard is listed closed; reading on until a read issued after the listing finds nothing"
            );
        }
        ended
    }
}

/// Lists every shard of the stream, following NextToken.
async fn list_all_shards(client: &Client, stream_name: &str) -> Result<Vec<ShardInfo>, StreamError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        // Kinesis rejects a request that names the stream and also carries a NextToken: the token
        // already says which stream it is about.
        let request = match next_token.take() {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream_name),
        };
        let page = match request.send().await {
            Ok(page) => page,
            Err(error) => {
                let (failure, message) = describe_sdk_error("ListShards", &error);
                return Err(failure.into_error(message, || StreamError::NoSuchStream(stream_name.to_owned())));
            }
        };
        for shard in page.shards() {
            shards.push(shard_info(shard)?);
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => return Ok(shards),
        }
    }
}

/// GetShardIterator for a start position. `Ok(None)` when Kinesis has no iterator to give (a
/// closed shard read past its end).
async fn get_shard_iterator(
    client: &Client,
    stream_name: &str,
    shard: &ShardId,
    position: &StartPosition,
) -> Result<Option<String>, SdkError<aws_sdk_kinesis::operation::get_shard_iterator::GetShardIteratorError>> {
    let request = iterator_request(position);
    let output = client
        .get_shard_iterator()
        .stream_name(stream_name)
        .shard_id(&shard.0)
        .shard_iterator_type(request.kind)
        .set_starting_sequence_number(request.sequence)
        .set_timestamp(request.timestamp)
        .send()
        .await?;
    Ok(output.shard_iterator)
}

/// What GetShardIterator is asked for one start position.
#[derive(Debug, Clone, PartialEq)]
struct IteratorRequest {
    kind: ShardIteratorType,
    sequence: Option<String>,
    timestamp: Option<DateTime>,
}

/// The GetShardIterator parameters for a start position.
fn iterator_request(position: &StartPosition) -> IteratorRequest {
    let plain = |kind| IteratorRequest { kind, sequence: None, timestamp: None };
    match position {
        StartPosition::TrimHorizon => plain(ShardIteratorType::TrimHorizon),
        StartPosition::Latest => plain(ShardIteratorType::Latest),
        StartPosition::AtSequence(sequence) => IteratorRequest {
            kind: ShardIteratorType::AtSequenceNumber,
            sequence: Some(sequence.as_str().to_owned()),
            timestamp: None,
        },
        StartPosition::AfterSequence(sequence) => IteratorRequest {
            kind: ShardIteratorType::AfterSequenceNumber,
            sequence: Some(sequence.as_str().to_owned()),
            timestamp: None,
        },
        StartPosition::AtTimestamp(at) => IteratorRequest {
            kind: ShardIteratorType::AtTimestamp,
            sequence: None,
            timestamp: Some(DateTime::from_millis(at.as_millis())),
        },
    }
}

/// The GetRecords limit for a requested batch size: Kinesis takes 1 to 10,000.
fn get_records_limit(max_records: usize) -> i32 {
    let clamped = max_records.clamp(1, MAX_RECORDS_PER_GET);
    i32::try_from(clamped).unwrap_or(i32::MAX)
}

/// Groups records into PutRecords calls of at most 500 records and 5 MiB each, keeping their order.
/// A record too large on its own gets a call to itself (the adapter refuses such records before
/// they get here).
fn chunk_ranges(records: &[AppendRecord]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes: usize = 0;
    for (index, record) in records.iter().enumerate() {
        let size = record.size();
        let count = index - start;
        if count > 0 && (count == MAX_RECORDS_PER_PUT || bytes.saturating_add(size) > MAX_BYTES_PER_PUT) {
            ranges.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    ranges
}

/// One record as a PutRecords entry.
fn request_entry(record: AppendRecord) -> Result<PutRecordsRequestEntry, StreamError> {
    PutRecordsRequestEntry::builder()
        .partition_key(record.partition_key)
        .data(Blob::new(Vec::from(record.data)))
        .build()
        .map_err(|error| StreamError::Invalid(format!("PutRecords entry: {error}")))
}

/// The outcome of each record of one PutRecords call; `sent` records were sent.
fn append_results(entries: &[PutRecordsResultEntry], sent: usize) -> Vec<Result<Appended, StreamError>> {
    (0..sent)
        .map(|index| match entries.get(index) {
            Some(entry) => appended(entry),
            None => Err(StreamError::Unavailable("PutRecords returned no result for the record".to_owned())),
        })
        .collect()
}

/// One PutRecords result entry: where the record landed, or why it was rejected.
fn appended(entry: &PutRecordsResultEntry) -> Result<Appended, StreamError> {
    if let Some(code) = entry.error_code() {
        let message = bounded(&format!("PutRecords: {code}: {}", entry.error_message().unwrap_or("")));
        // Per-record failures are only ever throughput or internal ones: both are worth a retry.
        return Err(match code {
            "ProvisionedThroughputExceededException" => StreamError::Throttled(message),
            _ => StreamError::Unavailable(message),
        });
    }
    let (Some(shard_id), Some(sequence)) = (entry.shard_id(), entry.sequence_number()) else {
        return Err(StreamError::Unavailable("PutRecords result without shard or sequence number".to_owned()));
    };
    let sequence_number = SequenceNumber::parse(sequence).ok_or_else(|| {
        StreamError::Unavailable(format!("PutRecords returned a malformed sequence number {sequence:?}"))
    })?;
    Ok(Appended { shard_id: ShardId(shard_id.to_owned()), sequence_number })
}

/// A record read back through GetRecords.
fn shard_record(record: &Record) -> Result<ShardRecord, StreamError> {
    let sequence = record.sequence_number();
    let sequence_number = SequenceNumber::parse(sequence).ok_or_else(|| {
        StreamError::Unavailable(format!("GetRecords returned a malformed sequence number {sequence:?}"))
    })?;
    // Kinesis always sets the arrival time; should it be missing, "now" is the closest honest value.
    let arrived_at = record
        .approximate_arrival_timestamp()
        .and_then(|at| at.to_millis().ok())
        .map_or_else(Timestamp::now, Timestamp::from_millis);
    Ok(ShardRecord {
        sequence_number,
        partition_key: record.partition_key().to_owned(),
        data: Bytes::copy_from_slice(record.data().as_ref()),
        arrived_at,
    })
}

/// Whether GetRecords said the shard has ended, and the children it named. Kinesis says so with
/// ChildShards or by giving no next iterator; the children may then be empty (older services), in
/// which case they have to be looked up.
fn signalled_shard_end(output: &GetRecordsOutput) -> Option<Vec<ShardId>> {
    let children: Vec<ShardId> =
        output.child_shards().iter().map(|child| ShardId(child.shard_id().to_owned())).collect();
    if !children.is_empty() || output.next_shard_iterator().is_none() { Some(children) } else { None }
}

/// One shard of a ListShards answer.
fn shard_info(shard: &Shard) -> Result<ShardInfo, StreamError> {
    let malformed = |what: &str| StreamError::Unavailable(format!("ListShards: shard {} has {what}", shard.shard_id()));
    let hash_key_range = shard
        .hash_key_range()
        .ok_or_else(|| malformed("no hash key range"))
        .and_then(|range| parse_hash_key_range(range).map_err(|error| malformed(&error)))?;
    let sequences = shard.sequence_number_range().ok_or_else(|| malformed("no sequence number range"))?;
    let starting_sequence = SequenceNumber::parse(sequences.starting_sequence_number())
        .ok_or_else(|| malformed("a malformed starting sequence number"))?;
    let ending_sequence = sequences
        .ending_sequence_number()
        .map(|ending| SequenceNumber::parse(ending).ok_or_else(|| malformed("a malformed ending sequence number")))
        .transpose()?;
    Ok(ShardInfo {
        shard_id: ShardId(shard.shard_id().to_owned()),
        parent: shard.parent_shard_id().map(|id| ShardId(id.to_owned())),
        adjacent_parent: shard.adjacent_parent_shard_id().map(|id| ShardId(id.to_owned())),
        hash_key_range,
        starting_sequence,
        ending_sequence,
    })
}

/// A HashKeyRange's decimal bounds as numbers.
fn parse_hash_key_range(range: &SdkHashKeyRange) -> Result<HashKeyRange, String> {
    let parse = |text: &str| text.parse::<u128>().map_err(|_| format!("a malformed hash key {text:?}"));
    let (start, end) = (parse(range.starting_hash_key())?, parse(range.ending_hash_key())?);
    if start > end {
        return Err(format!("an empty hash key range {start}..={end}"));
    }
    Ok(HashKeyRange { start, end })
}

/// A shard's state as ListShards reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lineage {
    /// Open, or not listed at all (nothing can be concluded then).
    Open,
    /// Closed at `ending`, replaced by `children`.
    Closed { ending: SequenceNumber, children: Vec<ShardId> },
}

/// One ListShards answer about a reader's shard.
#[derive(Debug, Clone)]
struct Listing {
    /// When it came back.
    at: Instant,
    /// How many GetRecords calls the reader had issued by then.
    calls_before: u64,
    /// What it said about the shard.
    lineage: Lineage,
}

/// Whether a reader has read all of its shard as `listing` shows it, given that its GetRecords
/// call number `empty_call` came back empty at the tip and the last record it read was
/// `last_read`: the children if so.
///
/// A listing that shows the shard closed says nothing about the calls issued before it: their
/// empty answers may predate records appended just before the shard was closed. Once the listing
/// is in, no record can be added any more, so an empty answer to a call issued after it does show
/// the reader at the end.
fn ended_by_listing(listing: &Listing, last_read: Option<&SequenceNumber>, empty_call: u64) -> Option<Vec<ShardId>> {
    match &listing.lineage {
        Lineage::Closed { ending, children } if empty_call > listing.calls_before && read_to_end(last_read, ending) => {
            Some(children.clone())
        }
        _ => None,
    }
}

/// The state of `shard` among `shards`.
fn lineage_of(shard: &ShardId, shards: &[ShardInfo]) -> Lineage {
    match shards.iter().find(|info| &info.shard_id == shard).and_then(|info| info.ending_sequence.clone()) {
        Some(ending) => Lineage::Closed { ending, children: children_of(shard, shards) },
        None => Lineage::Open,
    }
}

/// The shards that name `shard` as a parent: two after a split, one after a merge.
fn children_of(shard: &ShardId, shards: &[ShardInfo]) -> Vec<ShardId> {
    shards
        .iter()
        .filter(|info| info.parent.as_ref() == Some(shard) || info.adjacent_parent.as_ref() == Some(shard))
        .map(|info| info.shard_id.clone())
        .collect()
}

/// Whether a reader whose last record was `last_read` has read a shard closed at `ending`.
///
/// A reader that read nothing takes the closed shard's empty answer at its word. One that read
/// records must have reached the ending sequence number: an empty GetRecords answer alone may
/// come with records still ahead.
fn read_to_end(last_read: Option<&SequenceNumber>, ending: &SequenceNumber) -> bool {
    last_read.is_none_or(|last| last >= ending)
}

/// What a failed call means for the caller, before it is tied to a stream or shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The stream or shard does not exist.
    NotFound,
    /// The request cannot succeed as it is.
    Invalid,
    /// Over a limit; retrying later helps.
    Throttled,
    /// A shard iterator outlived its five minutes.
    ExpiredIterator,
    /// Anything else.
    Unavailable,
}

impl Failure {
    /// The port's error for this failure; `not_found` says what was missing.
    fn into_error(self, message: String, not_found: impl FnOnce() -> StreamError) -> StreamError {
        match self {
            Self::NotFound => not_found(),
            Self::Invalid => StreamError::Invalid(message),
            Self::Throttled => StreamError::Throttled(message),
            Self::ExpiredIterator | Self::Unavailable => StreamError::Unavailable(message),
        }
    }
}

/// The failure an AWS error code stands for.
fn classify_error_code(code: Option<&str>) -> Failure {
    match code {
        Some("ResourceNotFoundException") => Failure::NotFound,
        // ResourceInUse is a reshard of a stream that is not ACTIVE, or a create of one that exists.
        Some("InvalidArgumentException" | "ResourceInUseException" | "ValidationException") => Failure::Invalid,
        Some(
            "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "ThrottlingException"
            | "KMSThrottlingException",
        ) => Failure::Throttled,
        Some("ExpiredIteratorException") => Failure::ExpiredIterator,
        _ => Failure::Unavailable,
    }
}

/// Classifies a failed SDK call and describes it in one short line: the service's error code and
/// message, or the kind of transport failure and its root cause. The SDK's debug output (request
/// and response dumps) is never included.
fn describe_sdk_error<E, R>(operation: &str, error: &SdkError<E, R>) -> (Failure, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(_) => {
            let code = error.code();
            let text = format!("{operation}: {}: {}", code.unwrap_or("unknown error"), error.message().unwrap_or(""));
            (classify_error_code(code), bounded(text.trim_end_matches([' ', ':'])))
        }
        _ => {
            let mut root: &dyn std::error::Error = error;
            while let Some(source) = root.source() {
                root = source;
            }
            let text = if std::ptr::addr_eq(root, error) {
                format!("{operation}: {error}")
            } else {
                format!("{operation}: {error}: {root}")
            };
            (Failure::Unavailable, bounded(&text))
        }
    }
}

/// `text`, cut to [`MAX_MESSAGE_CHARS`] characters.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kinesis::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_kinesis::operation::put_records::PutRecordsError;
    use aws_sdk_kinesis::types::{ChildShard, SequenceNumberRange};

    use super::*;

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).unwrap()
    }

    fn record(key: &str, size: usize) -> AppendRecord {
        AppendRecord { partition_key: key.to_owned(), data: Bytes::from(vec![0u8; size]) }
    }

    fn sdk_shard(id: &str, parents: (Option<&str>, Option<&str>), range: (&str, &str), ending: Option<&str>) -> Shard {
        Shard::builder()
            .shard_id(id)
            .set_parent_shard_id(parents.0.map(str::to_owned))
            .set_adjacent_parent_shard_id(parents.1.map(str::to_owned))
            .hash_key_range(
                SdkHashKeyRange::builder().starting_hash_key(range.0).ending_hash_key(range.1).build().unwrap(),
            )
            .sequence_number_range(
                SequenceNumberRange::builder()
                    .starting_sequence_number("49590338271490256608559692538361571095921575989136588898")
                    .set_ending_sequence_number(ending.map(str::to_owned))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn start_positions_map_to_iterator_types() {
        assert_eq!(iterator_request(&StartPosition::TrimHorizon).kind, ShardIteratorType::TrimHorizon);
        assert_eq!(
            iterator_request(&StartPosition::Latest),
            IteratorRequest { kind: ShardIteratorType::Latest, sequence: None, timestamp: None }
        );
        assert_eq!(
            iterator_request(&StartPosition::AtSequence(seq("17"))),
            IteratorRequest { kind: ShardIteratorType::AtSequenceNumber, sequence: Some("17".into()), timestamp: None }
        );
        assert_eq!(
            iterator_request(&StartPosition::AfterSequence(seq("18"))),
            IteratorRequest {
                kind: ShardIteratorType::AfterSequenceNumber,
                sequence: Some("18".into()),
                timestamp: None
            }
        );
        let at = iterator_request(&StartPosition::AtTimestamp(Timestamp::from_millis(1_700_000_000_123)));
        assert_eq!(at.kind, ShardIteratorType::AtTimestamp);
        assert_eq!(at.sequence, None);
        assert_eq!(at.timestamp.unwrap().to_millis().unwrap(), 1_700_000_000_123);
    }

    #[test]
    fn get_records_limit_is_clamped() {
        assert_eq!(get_records_limit(0), 1);
        assert_eq!(get_records_limit(250), 250);
        assert_eq!(get_records_limit(usize::MAX), 10_000);
    }

    #[test]
    fn chunks_respect_count_and_size_limits() {
        assert!(chunk_ranges(&[]).is_empty());
        let many: Vec<_> = (0..1201).map(|i| record(&i.to_string(), 10)).collect();
        assert_eq!(chunk_ranges(&many), vec![0..500, 500..1000, 1000..1201]);

        // Three records of 2 MiB (key included) cannot share a 5 MiB call with a third.
        let big = 2 * 1024 * 1024 - 1;
        let large = vec![record("a", big), record("b", big), record("c", big)];
        assert_eq!(chunk_ranges(&large), vec![0..2, 2..3]);

        // A record over the limit on its own still goes, alone, for Kinesis to judge.
        let huge = vec![record("a", 1), record("b", 6 * 1024 * 1024), record("c", 1)];
        assert_eq!(chunk_ranges(&huge), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn put_records_entries_map_to_outcomes() {
        let ok = PutRecordsResultEntry::builder().shard_id("shardId-000000000001").sequence_number("0042").build();
        let throttled = PutRecordsResultEntry::builder()
            .error_code("ProvisionedThroughputExceededException")
            .error_message("Rate exceeded for shard shardId-000000000001")
            .build();
        let internal = PutRecordsResultEntry::builder()
            .error_code("InternalFailure")
            .error_message("Internal service failure.")
            .build();

        let results = append_results(&[ok, throttled, internal], 4);
        assert_eq!(
            results[0].as_ref().unwrap(),
            &Appended { shard_id: ShardId::from_index(1), sequence_number: seq("42") }
        );
        assert!(matches!(&results[1], Err(StreamError::Throttled(m)) if m.contains("Rate exceeded")));
        assert!(
            matches!(&results[2], Err(StreamError::Unavailable(m)) if m.starts_with("PutRecords: InternalFailure"))
        );
        // Fewer entries than records sent: the missing ones are failures, not silently dropped.
        assert!(matches!(&results[3], Err(StreamError::Unavailable(_))));
    }

    #[test]
    fn hash_key_ranges_parse_from_decimal() {
        let range = |start: &str, end: &str| {
            parse_hash_key_range(
                &SdkHashKeyRange::builder().starting_hash_key(start).ending_hash_key(end).build().unwrap(),
            )
        };
        assert_eq!(range("0", "340282366920938463463374607431768211455"), Ok(HashKeyRange::ALL));
        assert_eq!(
            range("170141183460469231731687303715884105728", "340282366920938463463374607431768211455"),
            Ok(HashKeyRange { start: 1 << 127, end: u128::MAX })
        );
        assert!(range("-1", "5").is_err());
        assert!(range("340282366920938463463374607431768211456", "0").is_err());
        assert!(range("9", "5").is_err());
    }

    #[test]
    fn shards_map_to_shard_info() {
        let closed = sdk_shard(
            "shardId-000000000000",
            (None, None),
            ("0", "99"),
            Some("49590338271490256608559692538361571095921575989136588999"),
        );
        let info = shard_info(&closed).unwrap();
        assert_eq!(info.shard_id, ShardId::from_index(0));
        assert_eq!(info.hash_key_range, HashKeyRange { start: 0, end: 99 });
        assert_eq!(info.starting_sequence, seq("49590338271490256608559692538361571095921575989136588898"));
        assert_eq!(info.ending_sequence, Some(seq("49590338271490256608559692538361571095921575989136588999")));
        assert!(!info.is_open());

        let merged = sdk_shard(
            "shardId-000000000003",
            (Some("shardId-000000000001"), Some("shardId-000000000002")),
            ("0", "99"),
            None,
        );
        let info = shard_info(&merged).unwrap();
        assert!(info.is_open());
        assert_eq!(info.parents(), vec![ShardId::from_index(1), ShardId::from_index(2)]);

        let broken = sdk_shard("shardId-000000000004", (None, None), ("x", "99"), None);
        assert!(matches!(shard_info(&broken), Err(StreamError::Unavailable(m)) if m.contains("shardId-000000000004")));
    }

    #[test]
    fn shard_end_is_detected_from_get_records() {
        let output = |next: Option<&str>, children: &[&str]| {
            let children = children
                .iter()
                .map(|id| {
                    ChildShard::builder()
                        .shard_id(*id)
                        .parent_shards("shardId-000000000000")
                        .hash_key_range(
                            SdkHashKeyRange::builder().starting_hash_key("0").ending_hash_key("1").build().unwrap(),
                        )
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            GetRecordsOutput::builder()
                .set_records(Some(Vec::new()))
                .set_next_shard_iterator(next.map(str::to_owned))
                .set_child_shards(if children.is_empty() { None } else { Some(children) })
                .build()
                .unwrap()
        };
        assert_eq!(signalled_shard_end(&output(Some("it"), &[])), None);
        assert_eq!(
            signalled_shard_end(&output(None, &["shardId-000000000001", "shardId-000000000002"])),
            Some(vec![ShardId::from_index(1), ShardId::from_index(2)])
        );
        // Some services send an iterator along with the children; the children still end the shard.
        assert_eq!(
            signalled_shard_end(&output(Some("it"), &["shardId-000000000003"])),
            Some(vec![ShardId::from_index(3)])
        );
        // No iterator and no children: ended, children to be looked up.
        assert_eq!(signalled_shard_end(&output(None, &[])), Some(vec![]));
    }

    #[test]
    fn lineage_finds_closure_and_children() {
        let info = |index: u32, parents: (Option<u32>, Option<u32>), ending: Option<&str>| ShardInfo {
            shard_id: ShardId::from_index(index),
            parent: parents.0.map(ShardId::from_index),
            adjacent_parent: parents.1.map(ShardId::from_index),
            hash_key_range: HashKeyRange::ALL,
            starting_sequence: seq("0"),
            ending_sequence: ending.map(seq),
        };
        let shards = vec![
            info(0, (None, None), Some("5")),
            info(1, (None, None), Some("9")),
            info(2, (Some(0), None), Some("12")),
            info(3, (Some(0), None), None),
            info(4, (Some(2), Some(1)), None),
        ];
        assert_eq!(
            lineage_of(&ShardId::from_index(0), &shards),
            Lineage::Closed { ending: seq("5"), children: vec![ShardId::from_index(2), ShardId::from_index(3)] }
        );
        assert_eq!(
            lineage_of(&ShardId::from_index(1), &shards),
            Lineage::Closed { ending: seq("9"), children: vec![ShardId::from_index(4)] }
        );
        assert_eq!(lineage_of(&ShardId::from_index(3), &shards), Lineage::Open);
        assert_eq!(lineage_of(&ShardId::from_index(7), &shards), Lineage::Open);

        assert!(read_to_end(None, &seq("5")));
        assert!(read_to_end(Some(&seq("5")), &seq("5")));
        assert!(!read_to_end(Some(&seq("4")), &seq("5")));
    }

    #[test]
    fn a_closed_listing_ends_a_reader_only_after_an_empty_read_issued_after_it() {
        let children = vec![ShardId::from_index(1), ShardId::from_index(2)];
        let closed = Listing {
            at: Instant::now(),
            calls_before: 4,
            lineage: Lineage::Closed { ending: seq("3"), children: children.clone() },
        };
        // The empty answer that prompted the listing came from a call issued before it: records
        // may have been appended between that call and the closing of the shard.
        assert_eq!(ended_by_listing(&closed, None, 4), None);
        assert_eq!(ended_by_listing(&closed, Some(&seq("3")), 4), None);
        // An empty answer to a later call shows the reader at the end...
        assert_eq!(ended_by_listing(&closed, None, 5), Some(children.clone()));
        assert_eq!(ended_by_listing(&closed, Some(&seq("3")), 5), Some(children));
        // ...once it has read up to the ending sequence number.
        assert_eq!(ended_by_listing(&closed, Some(&seq("2")), 5), None);

        let open = Listing { lineage: Lineage::Open, ..closed };
        assert_eq!(ended_by_listing(&open, None, 9), None);
    }

    #[test]
    fn only_a_shard_absent_from_the_listing_is_missing() {
        let listed = |index: u32| ShardInfo {
            shard_id: ShardId::from_index(index),
            parent: None,
            adjacent_parent: None,
            hash_key_range: HashKeyRange::ALL,
            starting_sequence: seq("0"),
            ending_sequence: None,
        };
        let shards = [listed(0), listed(1)];
        let (zero, one, two) = (ShardId::from_index(0), ShardId::from_index(1), ShardId::from_index(2));
        assert_eq!(missing_shard(&[&zero], &shards), None);
        assert_eq!(missing_shard(&[&zero, &one], &shards), None);
        assert_eq!(missing_shard(&[&zero, &two], &shards), Some(two.clone()));
        assert_eq!(missing_shard(&[&two], &[]), Some(two));
    }

    #[test]
    fn clients_get_call_timeouts_where_they_set_none() {
        let client = |timeouts: Option<TimeoutConfig>| {
            let mut config = aws_sdk_kinesis::Config::builder()
                .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
                .region(aws_sdk_kinesis::config::Region::new("us-east-1"));
            config.set_timeout_config(timeouts);
            let config = config.build();
            with_call_timeouts(&Client::from_conf(config))
        };
        let timeouts = |client: &Client| {
            let set = client.config().timeout_config().expect("timeouts are configured");
            (set.operation_attempt_timeout(), set.operation_timeout())
        };
        assert_eq!(timeouts(&client(None)), (Some(ATTEMPT_TIMEOUT), Some(CALL_TIMEOUT)));
        // A timeout the caller chose is kept; only the missing one is filled in.
        let chosen = TimeoutConfig::builder().operation_timeout(Duration::from_secs(2)).build();
        assert_eq!(timeouts(&client(Some(chosen))), (Some(ATTEMPT_TIMEOUT), Some(Duration::from_secs(2))));
    }

    #[test]
    fn error_codes_map_to_failures() {
        assert_eq!(classify_error_code(Some("ResourceNotFoundException")), Failure::NotFound);
        assert_eq!(classify_error_code(Some("InvalidArgumentException")), Failure::Invalid);
        assert_eq!(classify_error_code(Some("ResourceInUseException")), Failure::Invalid);
        assert_eq!(classify_error_code(Some("ProvisionedThroughputExceededException")), Failure::Throttled);
        assert_eq!(classify_error_code(Some("LimitExceededException")), Failure::Throttled);
        assert_eq!(classify_error_code(Some("ExpiredIteratorException")), Failure::ExpiredIterator);
        assert_eq!(classify_error_code(Some("InternalFailure")), Failure::Unavailable);
        assert_eq!(classify_error_code(None), Failure::Unavailable);

        let missing = || StreamError::NoSuchStream("events".into());
        assert!(
            matches!(Failure::NotFound.into_error("m".into(), missing), StreamError::NoSuchStream(s) if s == "events")
        );
        assert!(matches!(Failure::Throttled.into_error("m".into(), missing), StreamError::Throttled(_)));
        assert!(matches!(Failure::ExpiredIterator.into_error("m".into(), missing), StreamError::Unavailable(_)));
    }

    #[test]
    fn sdk_errors_are_described_briefly() {
        let service = |code: &str, message: &str| {
            let meta = ErrorMetadata::builder().code(code).message(message).build();
            SdkError::<PutRecordsError, ()>::service_error(PutRecordsError::generic(meta), ())
        };
        let (failure, message) =
            describe_sdk_error("PutRecords", &service("ResourceNotFoundException", "Stream events not found."));
        assert_eq!(failure, Failure::NotFound);
        assert_eq!(message, "PutRecords: ResourceNotFoundException: Stream events not found.");

        let (failure, message) =
            describe_sdk_error("PutRecords", &service("ProvisionedThroughputExceededException", &"x".repeat(1000)));
        assert_eq!(failure, Failure::Throttled);
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 1, "{message}");

        let timeout = SdkError::<PutRecordsError, ()>::timeout_error(std::io::Error::other("deadline passed"));
        let (failure, message) = describe_sdk_error("PutRecords", &timeout);
        assert_eq!(failure, Failure::Unavailable);
        assert_eq!(message, "PutRecords: request has timed out: deadline passed");

        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let dispatch = SdkError::<PutRecordsError, ()>::dispatch_failure(ConnectorError::io(Box::new(refused)));
        let (failure, message) = describe_sdk_error("PutRecords", &dispatch);
        assert_eq!(failure, Failure::Unavailable);
        assert_eq!(message, "PutRecords: dispatch failure: connection refused");
    }
}
