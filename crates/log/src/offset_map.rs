//! The cleaner's map from a record key to the offset of its latest record in
//! the dirty part of a log, in bounded memory (Kafka's `SkimpyOffsetMap`,
//! which keeps MD5 hashes; here the keys themselves, so two keys never
//! collide and a record is never dropped for another key's update). Knows
//! keys and offsets; nothing of batches or files.

use std::collections::HashMap;

/// What one entry costs beyond its key's bytes: the map's slot and the key's
/// allocation header, roughly.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Key -> latest offset, refusing new keys once `bytes_max` is used.
#[derive(Debug)]
pub struct OffsetMap {
    latest: HashMap<Vec<u8>, u64>,
    bytes_used: usize,
    bytes_max: usize,
}

impl OffsetMap {
    pub fn new(bytes_max: usize) -> OffsetMap {
        OffsetMap {
            latest: HashMap::new(),
            bytes_used: 0,
            bytes_max,
        }
    }

    /// Records that `key`'s latest record is at `offset` (offsets arrive in
    /// order). False when the key is new and the map is full: the caller
    /// stops the dirty range before this record.
    pub fn insert(&mut self, key: &[u8], offset: u64) -> bool {
        if let Some(latest) = self.latest.get_mut(key) {
            *latest = offset;
            return true;
        }
        let cost = key.len() + ENTRY_OVERHEAD_BYTES;
        if self.bytes_used + cost > self.bytes_max {
            return false;
        }
        self.bytes_used += cost;
        self.latest.insert(key.to_vec(), offset);
        true
    }

    /// The offset of `key`'s latest record in the mapped range.
    pub fn latest(&self, key: &[u8]) -> Option<u64> {
        self.latest.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_offsets_replace_earlier_ones() {
        let mut map = OffsetMap::new(1 << 20);
        assert!(map.insert(b"k", 1));
        assert!(map.insert(b"k", 7));
        assert_eq!(map.latest(b"k"), Some(7));
        assert_eq!(map.latest(b"other"), None);
    }

    #[test]
    fn a_full_map_refuses_new_keys_but_updates_known_ones() {
        let mut map = OffsetMap::new(2 * (ENTRY_OVERHEAD_BYTES + 1));
        assert!(map.insert(b"a", 1));
        assert!(map.insert(b"b", 2));
        assert!(!map.insert(b"c", 3), "over the bound");
        assert!(map.insert(b"a", 4), "a known key still moves");
        assert_eq!(map.len(), 2);
    }
}
