//! The stream port: an ordered, sharded, durable log of event records, shaped after Kinesis Data
//! Streams, with two adapters: [`kinesis::KinesisStream`] and [`embedded::EmbeddedStream`].
//!
//! The port keeps Kinesis' model because the consumer's lease, checkpoint and resharding logic is
//! written once against it: shards own ranges of the 128-bit MD5 hash-key space, a record goes to
//! the open shard whose range holds the MD5 of its partition key, sequence numbers grow within a
//! shard, and a split or merge closes the parents and opens children.

pub mod embedded;
pub mod hashing;
pub mod kinesis;
mod port;

pub use hashing::{HashKeyRange, hash_key};
pub use port::*;
