//! Partition keys to hash keys, and hash-key ranges: exactly as Kinesis maps records to shards.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// The 128-bit hash key of a partition key: the MD5 digest read as a big-endian integer.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// An inclusive range of hash keys, owned by one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HashKeyRange {
    /// The first hash key of the range.
    pub start: u128,
    /// The last hash key of the range (inclusive).
    pub end: u128,
}

impl HashKeyRange {
    /// The whole hash-key space.
    pub const ALL: Self = Self { start: 0, end: u128::MAX };

    /// Whether `key` falls in the range.
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// The whole space cut into `count` contiguous ranges of (nearly) equal size, as Kinesis'
    /// CreateStream and UpdateShardCount do. `count` must be at least 1.
    pub fn uniform(count: u32) -> Vec<Self> {
        // Shard i starts at floor(i * 2^128 / count). 2^128 does not fit in a u128, so it is
        // written as count * whole + remainder.
        if count <= 1 {
            return vec![Self::ALL];
        }
        let count = u128::from(count);
        let whole = u128::MAX / count + (u128::MAX % count + 1) / count;
        let remainder = (u128::MAX % count + 1) % count;
        let start_of = |i: u128| i * whole + i * remainder / count;
        (0..count)
            .map(|i| Self { start: start_of(i), end: if i + 1 == count { u128::MAX } else { start_of(i + 1) - 1 } })
            .collect()
    }

    /// The two halves of a split at `new_start`: `[start, new_start - 1]` and `[new_start, end]`.
    /// `None` when `new_start` would leave a half empty.
    pub fn split_at(&self, new_start: u128) -> Option<(Self, Self)> {
        if new_start <= self.start || new_start > self.end {
            return None;
        }
        Some((Self { start: self.start, end: new_start - 1 }, Self { start: new_start, end: self.end }))
    }

    /// The midpoint at which a split yields two equal halves (Kinesis' usual split point).
    pub fn midpoint(&self) -> u128 {
        self.start + (self.end - self.start) / 2 + 1
    }

    /// The union of two adjacent ranges, in either order; `None` if they do not touch.
    pub fn merge(&self, other: &Self) -> Option<Self> {
        if self.end.checked_add(1) == Some(other.start) {
            Some(Self { start: self.start, end: other.end })
        } else if other.end.checked_add(1) == Some(self.start) {
            Some(Self { start: other.start, end: self.end })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_key_is_big_endian_md5() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        // `printf customer-1 | md5sum`
        assert_eq!(hash_key("customer-1"), 0x9b11f2b6c86410c929233afa11655811);
    }

    #[test]
    fn uniform_ranges_tile_the_space() {
        for count in [1, 2, 3, 4, 7, 16] {
            let ranges = HashKeyRange::uniform(count);
            assert_eq!(ranges.len(), count as usize);
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, u128::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end + 1, pair[1].start);
            }
        }
        // Kinesis' first boundary for two shards is 2^127.
        assert_eq!(HashKeyRange::uniform(2)[1].start, 1u128 << 127);
        // And for three shards, the boundaries CreateStream gives.
        let three = HashKeyRange::uniform(3);
        assert_eq!(three[0].end, 113427455640312821154458202477256070484);
        assert_eq!(three[1].start, 113427455640312821154458202477256070485);
        assert_eq!(three[2].start, 226854911280625642308916404954512140970);
    }

    #[test]
    fn split_and_merge_are_inverse() {
        let range = HashKeyRange { start: 10, end: 99 };
        let (low, high) = range.split_at(range.midpoint()).unwrap();
        assert_eq!((low.end, high.start), (54, 55));
        assert_eq!(high.merge(&low), Some(range));
        assert_eq!(range.split_at(10), None);
        assert_eq!(range.split_at(100), None);
        assert_eq!(low.merge(&HashKeyRange { start: 60, end: 70 }), None);
    }
}
