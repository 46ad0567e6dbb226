//! Per-segment indexes: the sparse offset index (relative offset → byte
//! position), the sparse time index (max timestamp so far → relative
//! offset) and the aborted-transactions index (`transaction_index.rs`).
//! All live in memory while the segment is open and are written whole to
//! `.index` / `.timeindex` / `.txnindex` files when the segment is sealed or
//! the log closes.
//! The files are a cache of what a scan of the segment would find: a missing or
//! damaged file is rebuilt, never trusted blindly.
//!
//! ```text
//! .index      entry = relative offset u32 BE | position u32 BE          (8 bytes)
//! .timeindex  entry = timestamp ms i64 BE   | relative offset u32 BE   (12 bytes)
//! ```

use std::path::{Path, PathBuf};

use crate::file_system::FileSystem;
use crate::storage::Storage;
use crate::transaction_index::TransactionIndex;

/// The index files of the segment file `segment_path`: offset, time and
/// transaction index, in that order.
pub fn index_paths(segment_path: &Path) -> [PathBuf; 3] {
    ["index", "timeindex", "txnindex"].map(|extension| segment_path.with_extension(extension))
}

/// Offset index entry: the batch whose base offset is `segment base +
/// relative_offset` starts at byte `position` of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// Time index entry: up to and including the batch at `relative_offset`, the
/// largest timestamp seen in the segment is `timestamp_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

/// The indexes of one segment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    pub transactions: TransactionIndex,
}

impl SegmentIndex {
    /// The last entry at or before `relative_offset`, or the segment start.
    pub fn position_floor(&self, relative_offset: u32) -> OffsetEntry {
        let after = self.offsets.partition_point(|entry| entry.relative_offset <= relative_offset);
        match after {
            0 => OffsetEntry {
                relative_offset: 0,
                position: 0,
            },
            n => self.offsets[n - 1],
        }
    }

    /// The relative offset to start scanning from to find the first batch
    /// whose max timestamp is at least `timestamp_ms`: every batch before the
    /// returned one has a smaller max timestamp.
    pub fn scan_start_for_timestamp(&self, timestamp_ms: i64) -> u32 {
        let below = self.times.partition_point(|entry| entry.timestamp_ms < timestamp_ms);
        match below {
            0 => 0,
            n => self.times[n - 1].relative_offset,
        }
    }

    /// Writes the index files of the segment file `segment_path`, each
    /// atomically (temp file, fsync, rename).
    pub fn write_files(&self, storage: &dyn Storage, segment_path: &Path) -> std::io::Result<()> {
        let [offset_path, time_path, transaction_path] = index_paths(segment_path);
        let mut offsets = Vec::with_capacity(self.offsets.len() * 8);
        for entry in &self.offsets {
            offsets.extend_from_slice(&entry.relative_offset.to_be_bytes());
            offsets.extend_from_slice(&entry.position.to_be_bytes());
        }
        let mut times = Vec::with_capacity(self.times.len() * 12);
        for entry in &self.times {
            times.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
            times.extend_from_slice(&entry.relative_offset.to_be_bytes());
        }
        storage.write_atomically(&offset_path, &offsets)?;
        storage.write_atomically(&time_path, &times)?;
        storage.write_atomically(&transaction_path, &self.transactions.encode())
    }

    /// Reads the index files of the segment file `segment_path` (holding
    /// offsets from `base_offset`, `offset_span` of them) and checks them
    /// against what is known of the segment: entries strictly increasing,
    /// positions inside the file, offsets inside the segment. Any doubt
    /// (a file missing, as after an upgrade from before `.txnindex`) gives
    /// `None`, and the caller rebuilds the indexes by scanning.
    pub fn read_files(
        storage: &dyn Storage,
        segment_path: &Path,
        segment_bytes: u64,
        base_offset: u64,
        offset_span: u64,
    ) -> Option<SegmentIndex> {
        let [offset_path, time_path, transaction_path] = index_paths(segment_path);
        let offset_bytes = storage.read(&offset_path).ok()?;
        let time_bytes = storage.read(&time_path).ok()?;
        let transactions = TransactionIndex::decode(
            &storage.read(&transaction_path).ok()?,
            base_offset,
            base_offset.saturating_add(offset_span),
        )?;
        if offset_bytes.len() % 8 != 0 || time_bytes.len() % 12 != 0 {
            return None;
        }
        let offsets: Vec<OffsetEntry> = offset_bytes
            .chunks_exact(8)
            .map(|chunk| OffsetEntry {
                relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            })
            .collect();
        let times: Vec<TimeEntry> = time_bytes
            .chunks_exact(12)
            .map(|chunk| TimeEntry {
                timestamp_ms: i64::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]),
                relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            })
            .collect();
        let offsets_ok = offsets
            .windows(2)
            .all(|pair| pair[0].relative_offset < pair[1].relative_offset && pair[0].position < pair[1].position)
            && offsets
                .iter()
                .all(|entry| u64::from(entry.position) < segment_bytes && u64::from(entry.relative_offset) < offset_span);
        let times_ok = times
            .windows(2)
            .all(|pair| pair[0].timestamp_ms <= pair[1].timestamp_ms && pair[0].relative_offset <= pair[1].relative_offset)
            && times.iter().all(|entry| u64::from(entry.relative_offset) < offset_span);
        // A sealed non-empty segment always has a time entry for its max timestamp.
        let complete = segment_bytes == 0 || !times.is_empty();
        (offsets_ok && times_ok && complete).then_some(SegmentIndex {
            offsets,
            times,
            transactions,
        })
    }
}

/// Replaces `path` on the real file system with `bytes` so that a crash
/// leaves either the old or the new contents, never a mix
/// ([`Storage::write_atomically`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    FileSystem.write_atomically(path, bytes)
}

/// Makes a directory's entries (created, renamed or removed files) durable,
/// on the real file system.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    FileSystem.sync_dir(dir)
}

/// Creates a directory and its missing parents on the real file system, each
/// durably named ([`Storage::create_dir_all`]): what everything that makes a
/// directory in the data directory calls, so that what names it is never
/// acknowledged before the directory itself is on disk.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    FileSystem.create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SegmentIndex {
        SegmentIndex {
            transactions: TransactionIndex::default(),
            offsets: vec![
                OffsetEntry {
                    relative_offset: 10,
                    position: 4200,
                },
                OffsetEntry {
                    relative_offset: 25,
                    position: 9000,
                },
            ],
            times: vec![
                TimeEntry {
                    timestamp_ms: 100,
                    relative_offset: 0,
                },
                TimeEntry {
                    timestamp_ms: 250,
                    relative_offset: 10,
                },
            ],
        }
    }

    #[test]
    fn floor_lookup_finds_the_entry_at_or_before() {
        let index = index();
        assert_eq!(index.position_floor(3).position, 0);
        assert_eq!(index.position_floor(10).position, 4200);
        assert_eq!(index.position_floor(24).position, 4200);
        assert_eq!(index.position_floor(99).position, 9000);
    }

    #[test]
    fn time_lookup_starts_before_the_first_later_timestamp() {
        let index = index();
        assert_eq!(index.scan_start_for_timestamp(50), 0);
        assert_eq!(index.scan_start_for_timestamp(100), 0);
        assert_eq!(index.scan_start_for_timestamp(101), 0);
        assert_eq!(index.scan_start_for_timestamp(251), 10);
    }

    #[test]
    fn files_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = dir.path().join("0.log");
        let [offsets, _, transactions] = index_paths(&segment);
        let storage = FileSystem;
        index().write_files(&storage, &segment).expect("write");
        assert_eq!(SegmentIndex::read_files(&storage, &segment, 10_000, 0, 30), Some(index()));
        // A position past the end of the segment file is damage.
        assert_eq!(SegmentIndex::read_files(&storage, &segment, 5_000, 0, 30), None);
        // A missing transaction index (written before there was one) is rebuilt.
        let transaction_bytes = std::fs::read(&transactions).expect("read");
        std::fs::remove_file(&transactions).expect("remove");
        assert_eq!(SegmentIndex::read_files(&storage, &segment, 10_000, 0, 30), None);
        std::fs::write(&transactions, &transaction_bytes).expect("write");
        // A torn file is damage.
        let bytes = std::fs::read(&offsets).expect("read");
        std::fs::write(&offsets, &bytes[..bytes.len() - 3]).expect("write");
        assert_eq!(SegmentIndex::read_files(&storage, &segment, 10_000, 0, 30), None);
        std::fs::remove_file(&offsets).expect("remove");
        assert_eq!(SegmentIndex::read_files(&storage, &segment, 10_000, 0, 30), None);
    }
}
