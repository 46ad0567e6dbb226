//! How each transaction in the range a cleaning covers ended, as the log
//! itself shows it (Kafka's cleaner reads the same from its transaction
//! index and `CleanedTransactionMetadata`): a producer's transactional
//! batches up to its next COMMIT or ABORT control batch belong to one
//! transaction, committed or aborted by that marker; batches with no marker
//! after them in the range are undecided, and the first of them bounds what
//! the cleaner may compact (Kafka never cleans past the last stable offset).
//! Also which batch is each producer's last in the range (kept, if only as
//! an empty header, for its sequence and epoch), and when a marker may go
//! (`MarkerRetention`). Knows batch headers and control record keys; nothing
//! of coordinators, fetches or files.

use std::collections::{HashMap, HashSet};

use crate::batch::BatchHeader;

/// The kind of a control batch, from its one record's key
/// (version i16 | type i16, Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
    /// Another kind (Kafka's leader-change and snapshot records), or an
    /// empty or unreadable key: it ends no transaction and is never removed.
    Other,
}

impl ControlType {
    /// The type a control record's key names.
    pub fn of_key(key: Option<&[u8]>) -> ControlType {
        match key {
            Some([_, _, 0, 0, ..]) => ControlType::Abort,
            Some([_, _, 0, 1, ..]) => ControlType::Commit,
            _ => ControlType::Other,
        }
    }
}

/// How the transaction a transactional data batch belongs to ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A COMMIT marker follows it (or it is not transactional).
    Committed,
    /// An ABORT marker follows it: its records go when cleaned.
    Aborted,
    /// No marker follows it in the range: the transaction may still be open.
    Undecided,
}

/// Every transaction's outcome over one cleaning's segments, built by
/// [`TransactionOutcomes::observe`] on each batch in offset order.
#[derive(Debug, Default)]
pub struct TransactionOutcomes {
    /// Per producer, its aborted transactions as (first offset, marker
    /// offset), in offset order.
    aborted: HashMap<i64, Vec<(u64, u64)>>,
    /// Per producer, the first offset of its transaction with no marker yet.
    open: HashMap<i64, u64>,
    /// Per producer, the last offset of its last batch (data or marker).
    last_batch: HashMap<i64, i64>,
}

impl TransactionOutcomes {
    /// Takes in the next batch of the range; `control` is its type when it
    /// is a control batch.
    pub fn observe(&mut self, header: &BatchHeader, control: ControlType) {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return;
        }
        self.last_batch.insert(producer_id, header.last_offset());
        let base_offset = header.base_offset.max(0) as u64;
        if header.is_control() {
            if control == ControlType::Other {
                return;
            }
            if let Some(first_offset) = self.open.remove(&producer_id)
                && control == ControlType::Abort
            {
                self.aborted.entry(producer_id).or_default().push((first_offset, base_offset));
            }
        } else if header.is_transactional() {
            self.open.entry(producer_id).or_insert(base_offset);
        }
    }

    /// The first offset of the oldest transaction with no marker in the
    /// range: nothing at or past it is compacted.
    pub fn first_undecided_offset(&self) -> Option<u64> {
        self.open.values().copied().min()
    }

    /// How the transaction of the data batch `header` ended.
    pub fn outcome(&self, header: &BatchHeader) -> Outcome {
        if header.is_control() || !header.is_transactional() {
            return Outcome::Committed;
        }
        let base_offset = header.base_offset.max(0) as u64;
        if self.open.get(&header.producer_id).is_some_and(|first| base_offset >= *first) {
            return Outcome::Undecided;
        }
        let aborted = self.aborted.get(&header.producer_id).is_some_and(|ranges| {
            // The ranges are sorted and disjoint: the last one starting at
            // or before the batch is the only one that may hold it.
            let after = ranges.partition_point(|(first, _)| *first <= base_offset);
            after > 0 && base_offset < ranges[after - 1].1
        });
        if aborted { Outcome::Aborted } else { Outcome::Committed }
    }

    /// Whether `header` is its producer's last batch in the range: kept (its
    /// records may go) so the producer's last sequence and epoch survive.
    pub fn is_last_of_producer(&self, header: &BatchHeader) -> bool {
        header.producer_id >= 0 && self.last_batch.get(&header.producer_id) == Some(&header.last_offset())
    }
}

/// Which markers a cleaning may remove (Kafka's rule): an ABORT marker once
/// the cleaning met none of its transaction's batches, a COMMIT marker once
/// it met none of its transaction's batches (its records all compacted
/// away). Fed the batches of one cleaning in offset order. The caller also
/// waits out `delete.retention.ms`, as for tombstones, so a consumer that
/// read the data has time to read the marker.
#[derive(Debug, Default)]
pub struct MarkerRetention {
    aborted_seen: HashSet<i64>,
    committed_seen: HashSet<i64>,
}

impl MarkerRetention {
    /// A transactional data batch with this outcome was met.
    pub fn data(&mut self, producer_id: i64, outcome: Outcome) {
        match outcome {
            Outcome::Aborted => {
                self.aborted_seen.insert(producer_id);
            }
            Outcome::Committed => {
                self.committed_seen.insert(producer_id);
            }
            Outcome::Undecided => {}
        }
    }

    /// A marker was met: whether its transaction's data is gone.
    pub fn marker_removable(&mut self, producer_id: i64, control: ControlType) -> bool {
        match control {
            ControlType::Abort => !self.aborted_seen.remove(&producer_id),
            ControlType::Commit => !self.committed_seen.remove(&producer_id),
            ControlType::Other => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::batch::attributes;

    /// A batch header of `records` records of `producer_id` at `base_offset`
    /// with attribute `flags`.
    pub(crate) fn header(producer_id: i64, base_offset: i64, records: i32, flags: i16) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: flags,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            records_count: records,
        }
    }

    const DATA: i16 = attributes::TRANSACTIONAL;
    const MARKER: i16 = attributes::TRANSACTIONAL | attributes::CONTROL;

    #[test]
    fn batches_take_the_outcome_of_the_next_marker_of_their_producer() {
        let mut outcomes = TransactionOutcomes::default();
        let batches = [
            (header(1, 0, 2, DATA), ControlType::Other),
            (header(2, 2, 1, DATA), ControlType::Other),
            (header(1, 3, 1, DATA), ControlType::Other),
            (header(1, 4, 1, MARKER), ControlType::Abort),
            (header(2, 5, 1, MARKER), ControlType::Commit),
            (header(1, 6, 1, DATA), ControlType::Other),
            (header(1, 7, 1, MARKER), ControlType::Commit),
            (header(3, 8, 1, 0), ControlType::Other),
            (header(2, 9, 1, DATA), ControlType::Other),
        ];
        for (batch, control) in &batches {
            outcomes.observe(batch, *control);
        }
        let outcome = |index: usize| outcomes.outcome(&batches[index].0);
        assert_eq!(outcome(0), Outcome::Aborted);
        assert_eq!(outcome(1), Outcome::Committed);
        assert_eq!(outcome(2), Outcome::Aborted);
        assert_eq!(outcome(5), Outcome::Committed, "a later transaction of the aborting producer");
        assert_eq!(outcome(7), Outcome::Committed, "not transactional");
        assert_eq!(outcome(8), Outcome::Undecided, "no marker yet");
        assert_eq!(outcomes.first_undecided_offset(), Some(9));
        assert!(
            outcomes.is_last_of_producer(&batches[6].0),
            "producer 1 ends with its commit marker"
        );
        assert!(!outcomes.is_last_of_producer(&batches[5].0));
        assert!(outcomes.is_last_of_producer(&batches[8].0));
    }

    #[test]
    fn a_marker_goes_only_once_a_cleaning_meets_none_of_its_data() {
        let mut first_pass = MarkerRetention::default();
        first_pass.data(1, Outcome::Aborted);
        first_pass.data(2, Outcome::Committed);
        assert!(
            !first_pass.marker_removable(1, ControlType::Abort),
            "its data was met in this cleaning"
        );
        assert!(!first_pass.marker_removable(2, ControlType::Commit));
        let mut second_pass = MarkerRetention::default();
        assert!(second_pass.marker_removable(1, ControlType::Abort));
        assert!(second_pass.marker_removable(2, ControlType::Commit));
        assert!(!second_pass.marker_removable(3, ControlType::Other));
    }

    #[test]
    fn control_types_come_from_the_record_key() {
        assert_eq!(ControlType::of_key(Some(&[0, 0, 0, 0])), ControlType::Abort);
        assert_eq!(ControlType::of_key(Some(&[0, 0, 0, 1])), ControlType::Commit);
        assert_eq!(ControlType::of_key(Some(&[0, 0, 0, 2])), ControlType::Other);
        assert_eq!(ControlType::of_key(Some(&[0])), ControlType::Other);
        assert_eq!(ControlType::of_key(None), ControlType::Other);
    }
}
