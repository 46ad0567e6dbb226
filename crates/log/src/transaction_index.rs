//! The aborted-transactions index of a segment (Kafka's `TransactionIndex`,
//! `.txnindex`): one entry per ABORT marker in the segment whose
//! transaction had data in this log (producer id, first offset, the
//! marker's offset, the last stable offset once it was aborted), plus the
//! transactions still open at the segment's end, which is what the next
//! segment's index is rebuilt from after a crash. A `read_committed` fetch
//! collects the entries overlapping what it returns, so clients drop the
//! aborted records. Built by [`TransactionTracker`] from batch headers and
//! control keys, by the writer and by the recovery scan alike; written
//! whole with the segment's other index files. Knows batches, producer ids
//! and offsets; nothing of coordinators or fetches.
//!
//! ```text
//! .txnindex  entry = version i16 (0) | producer id i64 | first offset i64
//!                    | last offset i64 | last stable offset i64     (34 bytes)
//!            aborted: last offset = the ABORT marker's offset
//!            open at the segment's end: last offset = last stable offset = -1
//! ```

use std::collections::HashMap;

use crate::batch::BatchHeader;
use crate::transaction_outcomes::ControlType;

/// Bytes of one `.txnindex` entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ENTRY_BYTES: usize = 34;
/// The only entry version (Kafka's `AbortedTxn.CURRENT_VERSION`).
const VERSION: i16 = 0;

/// A transaction aborted in this log: its records are those of
/// `producer_id` from `first_offset` up to its ABORT marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: u64,
    pub last_offset: u64,
    /// The last stable offset right after the abort: no transaction aborted
    /// later has data below it (ends a collection early, as in Kafka).
    pub last_stable_offset: u64,
}

/// A transaction with data and no marker yet: where it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenTxn {
    pub producer_id: i64,
    pub first_offset: u64,
}

/// One segment's transaction index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransactionIndex {
    /// In marker order.
    pub aborted: Vec<AbortedTxn>,
    /// Open at the segment's end (known once it is sealed or closed).
    pub open_at_end: Vec<OpenTxn>,
}

impl TransactionIndex {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity((self.aborted.len() + self.open_at_end.len()) * ENTRY_BYTES);
        let mut entry = |producer_id: i64, first: i64, last: i64, stable: i64| {
            bytes.extend_from_slice(&VERSION.to_be_bytes());
            for field in [producer_id, first, last, stable] {
                bytes.extend_from_slice(&field.to_be_bytes());
            }
        };
        for aborted in &self.aborted {
            entry(
                aborted.producer_id,
                aborted.first_offset as i64,
                aborted.last_offset as i64,
                aborted.last_stable_offset as i64,
            );
        }
        for open in &self.open_at_end {
            entry(open.producer_id, open.first_offset as i64, -1, -1);
        }
        bytes
    }

    /// Reads a file written by [`TransactionIndex::encode`] for the segment
    /// holding offsets `base_offset..end_offset`. Any doubt (a torn entry,
    /// an unknown version, an offset outside the segment, entries out of
    /// order) gives `None`: the caller rebuilds the index by scanning.
    pub fn decode(bytes: &[u8], base_offset: u64, end_offset: u64) -> Option<TransactionIndex> {
        if !bytes.len().is_multiple_of(ENTRY_BYTES) {
            return None;
        }
        let mut index = TransactionIndex::default();
        for chunk in bytes.chunks_exact(ENTRY_BYTES) {
            let version = i16::from_be_bytes([chunk[0], chunk[1]]);
            let field = |at: usize| i64::from_be_bytes(chunk[2 + at * 8..10 + at * 8].try_into().expect("8 bytes"));
            let (producer_id, first, last, stable) = (field(0), field(1), field(2), field(3));
            if version != VERSION || producer_id < 0 || first < 0 || first as u64 >= end_offset {
                return None;
            }
            if last == -1 && stable == -1 {
                index.open_at_end.push(OpenTxn {
                    producer_id,
                    first_offset: first as u64,
                });
                continue;
            }
            let inside = last >= first && (last as u64) >= base_offset && (last as u64) < end_offset && stable >= 0 && stable <= last + 1;
            let ordered = index.aborted.last().is_none_or(|previous| (previous.last_offset as i64) < last);
            if !inside || !ordered || !index.open_at_end.is_empty() {
                return None;
            }
            index.aborted.push(AbortedTxn {
                producer_id,
                first_offset: first as u64,
                last_offset: last as u64,
                last_stable_offset: stable as u64,
            });
        }
        Some(index)
    }

    /// The aborted transactions of this segment with records in `from..to`
    /// (Kafka's `TransactionIndex.collectAbortedTxns`); true when no later
    /// segment can hold more.
    pub fn collect(&self, from: u64, to: u64, into: &mut Vec<AbortedTxn>) -> bool {
        let mut complete = false;
        for aborted in &self.aborted {
            if aborted.last_offset >= from && aborted.first_offset < to {
                into.push(*aborted);
            }
            if aborted.last_stable_offset >= to {
                complete = true;
                break;
            }
        }
        complete
    }
}

/// The open transactions of a log as its batches go by, in offset order
/// (the writer's, and each scan's from the open transactions at its start).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransactionTracker {
    /// Per producer, the first offset of its transaction with no marker yet.
    open: HashMap<i64, u64>,
}

impl TransactionTracker {
    /// Starts from the transactions open at a segment's start (the end of
    /// the segment before it).
    pub fn starting_with(open: &[OpenTxn]) -> TransactionTracker {
        TransactionTracker {
            open: open.iter().map(|open| (open.producer_id, open.first_offset)).collect(),
        }
    }

    /// Whether [`TransactionTracker::observe`] needs the control type of
    /// this batch (only markers have one).
    pub fn concerns(header: &BatchHeader) -> bool {
        header.producer_id >= 0 && header.is_transactional()
    }

    /// Takes in the next batch; `control` is its control type when it is a
    /// control batch. An ABORT marker of a transaction with data here
    /// gives its index entry.
    pub fn observe(&mut self, header: &BatchHeader, control: ControlType) -> Option<AbortedTxn> {
        if !TransactionTracker::concerns(header) {
            return None;
        }
        let producer_id = header.producer_id;
        let base_offset = header.base_offset.max(0) as u64;
        if !header.is_control() {
            self.open.entry(producer_id).or_insert(base_offset);
            return None;
        }
        if control == ControlType::Other {
            return None;
        }
        let first_offset = self.open.remove(&producer_id)?;
        (control == ControlType::Abort).then(|| AbortedTxn {
            producer_id,
            first_offset,
            last_offset: base_offset,
            last_stable_offset: self.open.values().copied().min().unwrap_or(base_offset + 1).min(base_offset + 1),
        })
    }

    /// The transactions open now, sorted by producer id.
    pub fn open(&self) -> Vec<OpenTxn> {
        let mut open: Vec<OpenTxn> = self
            .open
            .iter()
            .map(|(producer_id, first_offset)| OpenTxn {
                producer_id: *producer_id,
                first_offset: *first_offset,
            })
            .collect();
        open.sort_unstable();
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::attributes;
    use crate::transaction_outcomes::tests::header;

    const DATA: i16 = attributes::TRANSACTIONAL;
    const MARKER: i16 = attributes::TRANSACTIONAL | attributes::CONTROL;

    #[test]
    fn an_abort_marker_indexes_its_transaction_from_its_first_batch() {
        let mut tracker = TransactionTracker::starting_with(&[OpenTxn {
            producer_id: 9,
            first_offset: 3,
        }]);
        assert_eq!(tracker.observe(&header(1, 10, 2, DATA), ControlType::Other), None);
        assert_eq!(tracker.observe(&header(2, 12, 1, DATA), ControlType::Other), None);
        assert_eq!(tracker.observe(&header(1, 13, 1, DATA), ControlType::Other), None);
        assert_eq!(tracker.observe(&header(-1, 14, 1, 0), ControlType::Other), None);
        assert_eq!(
            tracker.observe(&header(1, 15, 1, MARKER), ControlType::Abort),
            Some(AbortedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 15,
                last_stable_offset: 3,
            }),
            "producer 9's transaction from the segment before is still open"
        );
        assert_eq!(tracker.observe(&header(9, 16, 1, MARKER), ControlType::Commit), None);
        assert_eq!(
            tracker.observe(&header(2, 17, 1, MARKER), ControlType::Abort),
            Some(AbortedTxn {
                producer_id: 2,
                first_offset: 12,
                last_offset: 17,
                last_stable_offset: 18,
            })
        );
        assert_eq!(
            tracker.observe(&header(2, 18, 1, MARKER), ControlType::Abort),
            None,
            "a marker with no data here hides nothing"
        );
        tracker.observe(&header(4, 19, 1, DATA), ControlType::Other);
        assert_eq!(
            tracker.open(),
            vec![OpenTxn {
                producer_id: 4,
                first_offset: 19
            }]
        );
    }

    fn index() -> TransactionIndex {
        TransactionIndex {
            aborted: vec![
                AbortedTxn {
                    producer_id: 1,
                    first_offset: 90,
                    last_offset: 105,
                    last_stable_offset: 100,
                },
                AbortedTxn {
                    producer_id: 2,
                    first_offset: 101,
                    last_offset: 110,
                    last_stable_offset: 111,
                },
            ],
            open_at_end: vec![OpenTxn {
                producer_id: 3,
                first_offset: 112,
            }],
        }
    }

    #[test]
    fn the_file_round_trips_and_damage_is_refused() {
        let bytes = index().encode();
        assert_eq!(bytes.len(), 3 * ENTRY_BYTES);
        assert_eq!(TransactionIndex::decode(&bytes, 100, 120), Some(index()));
        assert_eq!(TransactionIndex::decode(&[], 100, 120), Some(TransactionIndex::default()));
        assert_eq!(TransactionIndex::decode(&bytes[..bytes.len() - 5], 100, 120), None, "a torn entry");
        assert_eq!(TransactionIndex::decode(&bytes, 100, 108), None, "a marker past the segment");
        let mut unknown = bytes.clone();
        unknown[1] = 7;
        assert_eq!(TransactionIndex::decode(&unknown, 100, 120), None, "an unknown version");
    }

    #[test]
    fn collect_returns_the_overlapping_aborts_and_stops_past_the_bound() {
        let index = index();
        let mut found = Vec::new();
        assert!(!index.collect(0, 200, &mut found), "a later segment may hold more");
        assert_eq!(found, index.aborted);
        found.clear();
        assert!(index.collect(106, 109, &mut found));
        assert_eq!(found, vec![index.aborted[1]], "the first ended before 106");
        found.clear();
        assert!(index.collect(0, 95, &mut found), "aborted when the stable offset was already 100");
        assert_eq!(found, vec![index.aborted[0]]);
    }
}
