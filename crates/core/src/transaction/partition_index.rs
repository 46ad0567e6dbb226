//! One partition's open transactions: the first offset of each producer's
//! transaction with no marker yet, which bounds the last stable offset. A
//! pure structure kept under the partition's producer-state lock; rebuilt
//! on start from the batches of the log's tail. The aborted transactions a
//! `read_committed` fetch returns are the log's, in each segment's
//! transaction index (`conveyor_log::transaction_index`), not kept here.
//! Knows offsets and producer ids, no files.

use std::collections::HashMap;

/// Where a producer's open transaction begins in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenTransaction {
    first_offset: u64,
    /// False until its first batch is acknowledged: until then
    /// `first_offset` is a lower bound (the high watermark when the batch
    /// was enqueued), which keeps the last stable offset conservative.
    exact: bool,
}

#[derive(Debug, Default)]
pub struct PartitionTransactions {
    open: HashMap<i64, OpenTransaction>,
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

    /// `producer_id` has had a transaction open since `first_offset` (at
    /// the latest): known from the log's transaction index on open.
    pub fn open_since(&mut self, producer_id: i64, first_offset: u64) {
        let open = self
            .open
            .entry(producer_id)
            .or_insert(OpenTransaction { first_offset, exact: true });
        open.first_offset = open.first_offset.min(first_offset);
        open.exact = true;
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
    /// (Commit or abort alike: the log's transaction index records aborts.)
    pub fn ended(&mut self, producer_id: i64, marker_offset: u64) {
        if self.open.get(&producer_id).is_some_and(|open| open.first_offset <= marker_offset) {
            self.open.remove(&producer_id);
        }
        // Otherwise: no data of it here, or a later transaction's data that
        // this marker does not end.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_stable_offset_stops_at_the_oldest_open_transaction() {
        let mut transactions = PartitionTransactions::default();
        assert_eq!(transactions.last_stable_offset(10), 10);
        transactions.data_enqueued(1, 10);
        assert_eq!(transactions.last_stable_offset(10), 10);
        transactions.data_written(1, 12);
        transactions.data_enqueued(2, 13);
        transactions.data_written(2, 14);
        transactions.data_written(1, 16);
        assert_eq!(transactions.last_stable_offset(20), 12, "the first batch of producer 1");
        transactions.ended(1, 20);
        assert_eq!(transactions.last_stable_offset(21), 14);
        transactions.ended(2, 21);
        assert_eq!(transactions.last_stable_offset(22), 22);
    }

    #[test]
    fn a_marker_without_data_here_changes_nothing() {
        let mut transactions = PartitionTransactions::default();
        transactions.data_written(5, 7);
        transactions.data_enqueued(5, 7);
        transactions.ended(5, 3);
        assert_eq!(
            transactions.last_stable_offset(9),
            7,
            "a marker before its data ends an earlier transaction"
        );
    }
}
