//! The record written to the stream for each accepted event.
//!
//! Encoding: one version byte, then the record as MessagePack (rmp-serde, with field names so that
//! fields can be added without breaking older readers). The version byte lets a later format be
//! introduced while records of the old one are still inside the stream's retention window.

use serde::{Deserialize, Serialize};

use crate::event::NewEvent;
use crate::ids::{CustomerId, EventId};
use crate::time::Timestamp;

/// The format version written by this build.
pub const RECORD_FORMAT_V1: u8 = 1;

/// What the stream carries for one accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The event's id, given at ingest.
    pub event_id: EventId,
    /// Whose event it is; also the stream's partition key.
    pub customer_id: CustomerId,
    /// When ingest accepted it.
    pub received_at: Timestamp,
    /// The event as the customer sent it, validated.
    pub event: NewEvent,
}

/// A stream record that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordDecodeError {
    /// The record was empty: not even a version byte.
    #[error("empty record")]
    Empty,
    /// The version byte names a format this build does not know.
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    /// The MessagePack body did not decode.
    #[error("malformed record body: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
}

impl StreamRecord {
    /// Encodes the record for the stream.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(256);
        bytes.push(RECORD_FORMAT_V1);
        // Serialising plain data into a Vec cannot fail: every field is a string, number, map or
        // JSON value, all of which MessagePack represents.
        rmp_serde::encode::write_named(&mut bytes, self).expect("stream record encodes");
        bytes
    }

    /// Decodes a record read from the stream.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordDecodeError> {
        match bytes.split_first() {
            None => Err(RecordDecodeError::Empty),
            Some((&RECORD_FORMAT_V1, body)) => Ok(rmp_serde::from_slice(body)?),
            Some((&other, _)) => Err(RecordDecodeError::UnknownVersion(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> StreamRecord {
        StreamRecord {
            event_id: EventId::generate(),
            customer_id: CustomerId::generate(),
            received_at: Timestamp::from_millis(1_790_000_000_123),
            event: NewEvent::from_json(
                json!({"type": "order.created", "data": {"n": 1.5, "tags": ["a", null], "ok": true},
                       "subject": "user-1", "metadata": {"k": "v"}}),
                "",
            )
            .unwrap(),
        }
    }

    #[test]
    fn round_trips_with_a_version_byte() {
        let record = sample();
        let bytes = record.encode();
        assert_eq!(bytes[0], RECORD_FORMAT_V1);
        assert_eq!(StreamRecord::decode(&bytes).unwrap(), record);
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let mut bytes = sample().encode();
        bytes[0] = 9;
        assert!(matches!(StreamRecord::decode(&bytes), Err(RecordDecodeError::UnknownVersion(9))));
        assert!(matches!(StreamRecord::decode(&[]), Err(RecordDecodeError::Empty)));
        assert!(matches!(StreamRecord::decode(&[1, 0xc1, 0xff]), Err(RecordDecodeError::Malformed(_))));
    }
}
