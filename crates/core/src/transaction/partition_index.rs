//! One partition's transactions: the open transaction of each producer (its
//! first offset, which bounds the last stable offset) and the aborted ones
//! (producer id, first offset, marker offset), which a `read_committed`
//! fetch returns so clients drop their records. A pure structure kept
//! under the partition's producer-state lock; rebuilt on start from the
//! batches of the log's tail. Knows offsets and producer ids, no files.

use std::collections::{HashMap, VecDeque};

use super::marker::MarkerKind;

/// Where a producer's open transaction begins in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenTransaction {
    first_offset: u64,
    /// False until its first batch is acknowledged: until then
    /// `first_offset` is a lower bound (the high watermark when the batch
    /// was enqueued), which keeps the last stable offset conservative.
    exact: bool,
}

/// An aborted transaction in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: u64,
    /// The offset of its ABORT marker.
    pub last_offset: u64,
}

/// Aborted transactions remembered per partition; the oldest are forgotten
/// first (a `read_committed` reader that far behind would see their records).
const ABORTED_REMEMBERED_MAX: usize = 100_000;

#[derive(Debug, Default)]
pub struct PartitionTransactions {
    open: HashMap<i64, OpenTransaction>,
    /// In marker order, so by `last_offset`.
    aborted: VecDeque<AbortedTransaction>,
}

impl PartitionTransactions {
    /// A transactional batch of `producer_id` is enqueued; `lower_bound` is
    /// at or below the offset it will get.
    pub fn data_enqueued(&mut self, producer_id: i64, lower_bound: u64) {
        self.open.entry(producer_id).or_insert(OpenTransaction {
            first_offset: lower_bound,
            exact: false,
        });
    }

    /// A transactional batch of `producer_id` was written at `base_offset`.
    pub fn data_written(&mut self, producer_id: i64, base_offset: u64) {
        if let Some(open) = self.open.get_mut(&producer_id)
            && !open.exact
        {
            open.first_offset = base_offset;
            open.exact = true;
        }
    }

    /// The marker ending `producer_id`'s transaction was written at `marker_offset`.
    pub fn ended(&mut self, producer_id: i64, kind: MarkerKind, marker_offset: u64) {
        let Some(open) = self.open.get(&producer_id).copied() else {
            // No data of it here (or from before the rebuilt tail): nothing to hide.
            return;
        };
        if open.first_offset > marker_offset {
            // A later transaction's data; this marker is not its end.
            return;
        }
        self.open.remove(&producer_id);
        if kind == MarkerKind::Abort {
            if self.aborted.len() == ABORTED_REMEMBERED_MAX {
                self.aborted.pop_front();
            }
            self.aborted.push_back(AbortedTransaction {
                producer_id,
                first_offset: open.first_offset,
                last_offset: marker_offset,
            });
        }
    }

    /// Where `producer_id`'s open transaction begins here, if it has one.
    pub fn open_first_offset(&self, producer_id: i64) -> Option<u64> {
        self.open.get(&producer_id).map(|open| open.first_offset)
    }

    /// The offset below which every transaction is decided: the first
    /// offset of the oldest open transaction, else `high_watermark`.
    pub fn last_stable_offset(&self, high_watermark: u64) -> u64 {
        self.open
            .values()
            .map(|open| open.first_offset)
            .min()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// The aborted transactions with records in `from..to` (Kafka's rule
    /// for a fetch's `aborted_transactions`).
    pub fn aborted_between(&self, from: u64, to: u64) -> Vec<AbortedTransaction> {
        self.aborted
            .iter()
            .filter(|aborted| aborted.last_offset >= from && aborted.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below `log_start_offset`.
    pub fn forget_below(&mut self, log_start_offset: u64) {
        while self.aborted.front().is_some_and(|aborted| aborted.last_offset < log_start_offset) {
            self.aborted.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_stable_offset_stops_at_the_oldest_open_transaction_and_aborts_are_listed() {
        let mut transactions = PartitionTransactions::default();
        assert_eq!(transactions.last_stable_offset(10), 10);
        transactions.data_enqueued(1, 10);
        assert_eq!(transactions.last_stable_offset(10), 10);
        transactions.data_written(1, 12);
        transactions.data_enqueued(2, 13);
        transactions.data_written(2, 14);
        transactions.data_written(1, 16);
        assert_eq!(transactions.last_stable_offset(20), 12, "the first batch of producer 1");
        transactions.ended(1, MarkerKind::Commit, 20);
        assert_eq!(transactions.last_stable_offset(21), 14);
        transactions.ended(2, MarkerKind::Abort, 21);
        assert_eq!(transactions.last_stable_offset(22), 22);
        let aborted = AbortedTransaction {
            producer_id: 2,
            first_offset: 14,
            last_offset: 21,
        };
        assert_eq!(transactions.aborted_between(0, 22), vec![aborted]);
        assert_eq!(transactions.aborted_between(21, 22), vec![aborted]);
        assert_eq!(transactions.aborted_between(22, 30), vec![]);
        assert_eq!(transactions.aborted_between(0, 14), vec![]);
        transactions.forget_below(22);
        assert_eq!(transactions.aborted_between(0, 30), vec![]);
    }

    #[test]
    fn a_marker_without_data_here_changes_nothing() {
        let mut transactions = PartitionTransactions::default();
        transactions.ended(5, MarkerKind::Abort, 3);
        assert_eq!(transactions.aborted_between(0, 10), vec![]);
        assert_eq!(transactions.last_stable_offset(4), 4);
    }
}
