//! Identifiers. Event and key ids are time-ordered (UUIDv7 underneath) and carry a prefix that says
//! what they name; customer and workflow ids are plain UUIDs, as the contract fixes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// The text every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new id; ids made later sort after ids made earlier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The UUID underneath, whose bytes sort in creation order.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Rebuilds an id from the UUID underneath.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", Self::PREFIX, self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let hex = text.strip_prefix(Self::PREFIX).ok_or(InvalidId)?;
                if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Err(InvalidId);
                }
                Uuid::try_parse(hex).map(Self).map_err(|_| InvalidId)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(|_| serde::de::Error::custom(format!("invalid id: {text}")))
            }
        }
    };
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(text).map(Self).map_err(|_| InvalidId)
            }
        }
    };
}

prefixed_id!(
    /// Names one accepted event: `evt_` followed by 32 lowercase hex digits.
    EventId,
    "evt_"
);
prefixed_id!(
    /// Names one API key (not the secret itself): `key_` followed by 32 lowercase hex digits.
    KeyId,
    "key_"
);
uuid_id!(
    /// Names one customer; also the stream's partition key, so one customer's events stay in order.
    CustomerId
);
uuid_id!(
    /// Names one workflow, and so the subscription that starts it.
    WorkflowId
);

/// The text given was not an id of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_prefixed_and_time_ordered() {
        let first = EventId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = EventId::generate();
        assert!(first.to_string().starts_with("evt_"));
        assert!(first.to_string() < second.to_string());
        assert_eq!(first.to_string().parse::<EventId>().unwrap(), first);
    }

    #[test]
    fn ids_of_another_kind_or_shape_are_refused() {
        let key = KeyId::generate().to_string();
        assert!(key.parse::<EventId>().is_err());
        assert!("evt_xyz".parse::<EventId>().is_err());
        assert!("evt_0193E0B7C6D27A3F8E4B5C6D7E8F9A0B".parse::<EventId>().is_err());
        assert!("not-a-uuid".parse::<CustomerId>().is_err());
    }
}
