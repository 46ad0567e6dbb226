//! The transaction coordinator's durable state, a [`StateMachine`]: per
//! transactional id its producer id and epoch, timeout, status and the
//! partitions of the ongoing transaction. Each event is the whole new
//! metadata of one transactional id (as Kafka's `__transaction_state` log
//! holds it), so `apply` only replaces. Knows no partitions' data and no
//! clock.

use std::collections::{BTreeMap, BTreeSet};

use conveyor_log::record::Record;
use serde::{Deserialize, Serialize};

use crate::journal::{EncodedEvent, StateMachine};

/// A partition of a topic, by name.
pub type TopicPartition = (String, u32);

/// Where a transactional id's current transaction is (Kafka's `TransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransactionStatus {
    /// No transaction since the producer id was handed out or the last one ended.
    Empty,
    Ongoing,
    /// The commit is decided; markers are being written.
    PrepareCommit,
    /// The abort is decided; markers are being written.
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TransactionStatus {
    /// Kafka's name of the state, as DescribeTransactions and ListTransactions show it.
    pub fn kafka_name(self) -> &'static str {
        match self {
            TransactionStatus::Empty => "Empty",
            TransactionStatus::Ongoing => "Ongoing",
            TransactionStatus::PrepareCommit => "PrepareCommit",
            TransactionStatus::PrepareAbort => "PrepareAbort",
            TransactionStatus::CompleteCommit => "CompleteCommit",
            TransactionStatus::CompleteAbort => "CompleteAbort",
        }
    }

    /// The status Kafka calls `name`.
    pub fn from_kafka_name(name: &str) -> Option<TransactionStatus> {
        [
            TransactionStatus::Empty,
            TransactionStatus::Ongoing,
            TransactionStatus::PrepareCommit,
            TransactionStatus::PrepareAbort,
            TransactionStatus::CompleteCommit,
            TransactionStatus::CompleteAbort,
        ]
        .into_iter()
        .find(|status| status.kafka_name() == name)
    }

    /// Whether markers are decided but not all known to be written.
    pub fn is_prepared(self) -> bool {
        matches!(self, TransactionStatus::PrepareCommit | TransactionStatus::PrepareAbort)
    }
}

/// One transactional id's coordinator state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TransactionStatus,
    /// Partitions written to in the current transaction (kept through
    /// Prepare*, so the markers can be written again after a crash).
    pub partitions: BTreeSet<TopicPartition>,
    /// When the current transaction began (its first partition), or -1.
    pub started_ms: i64,
    pub updated_ms: i64,
    /// Consumer groups whose offsets the current transaction commits (AddOffsetsToTxn).
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// Offsets committed in the current transaction (TxnOffsetCommit): they
    /// become the groups' committed offsets when it commits, and are
    /// dropped when it aborts. One per (group, topic, partition).
    #[serde(default)]
    pub pending_offsets: Vec<PendingOffset>,
}

/// One offset committed inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// One event: `transactional_id` now has `metadata` (`None`: forgotten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionChange {
    pub transactional_id: String,
    pub metadata: Option<TransactionMetadata>,
}

/// Every transactional id's metadata: the replay of the changes.
/// Serialized as its snapshot (the index by group is derived).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TransactionsSnapshot", into = "TransactionsSnapshot")]
pub struct Transactions {
    by_id: BTreeMap<String, TransactionMetadata>,
    /// The transactional ids with offsets pending for each group, derived
    /// from `by_id` (kept in step by [`Transactions::set`]), so OffsetFetch's
    /// `require_stable` reads one group's without scanning every id.
    pending_by_group: BTreeMap<String, BTreeSet<String>>,
}

/// What the snapshot file holds besides its offset.
#[derive(Debug, Serialize, Deserialize)]
pub struct TransactionsSnapshot {
    transactions: Vec<(String, TransactionMetadata)>,
}

impl From<TransactionsSnapshot> for Transactions {
    fn from(snapshot: TransactionsSnapshot) -> Transactions {
        <Transactions as StateMachine>::restore(snapshot)
    }
}

impl From<Transactions> for TransactionsSnapshot {
    fn from(transactions: Transactions) -> TransactionsSnapshot {
        transactions.snapshot()
    }
}

impl Transactions {
    pub fn get(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.by_id.get(transactional_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &TransactionMetadata)> {
        self.by_id.iter()
    }

    /// The offsets pending for `group` in every transaction.
    pub fn pending_offsets_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a PendingOffset> {
        self.pending_by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|transactional_id| self.by_id.get(transactional_id))
            .flat_map(|metadata| metadata.pending_offsets.iter())
            .filter(move |pending| pending.group == group)
    }

    /// Replaces (or, with `None`, forgets) one id's metadata, and its
    /// entries in the index by group.
    fn set(&mut self, transactional_id: &str, metadata: Option<TransactionMetadata>) {
        let before = match &metadata {
            Some(metadata) => self.by_id.insert(transactional_id.to_owned(), metadata.clone()),
            None => self.by_id.remove(transactional_id),
        };
        for pending in before.iter().flat_map(|metadata| &metadata.pending_offsets) {
            if let Some(ids) = self.pending_by_group.get_mut(&pending.group) {
                ids.remove(transactional_id);
                if ids.is_empty() {
                    self.pending_by_group.remove(&pending.group);
                }
            }
        }
        for pending in metadata.iter().flat_map(|metadata| &metadata.pending_offsets) {
            self.pending_by_group
                .entry(pending.group.clone())
                .or_default()
                .insert(transactional_id.to_owned());
        }
    }
}

impl StateMachine for Transactions {
    type Event = TransactionChange;
    type Snapshot = TransactionsSnapshot;

    fn apply(&mut self, change: &TransactionChange) {
        self.set(&change.transactional_id, change.metadata.clone());
    }

    fn encode(change: &TransactionChange) -> Result<EncodedEvent, String> {
        let value = match &change.metadata {
            Some(metadata) => Some(serde_json::to_vec(metadata).map_err(|error| error.to_string())?),
            None => None,
        };
        Ok((Some(change.transactional_id.as_bytes().to_vec()), value))
    }

    fn decode(record: &Record) -> Result<TransactionChange, String> {
        let key = record.key.as_deref().ok_or("no transactional id")?;
        let transactional_id = String::from_utf8(key.to_vec()).map_err(|error| format!("key: {error}"))?;
        let metadata = match &record.value {
            Some(value) => Some(serde_json::from_slice(value).map_err(|error| format!("value: {error}"))?),
            None => None,
        };
        Ok(TransactionChange {
            transactional_id,
            metadata,
        })
    }

    fn snapshot(&self) -> TransactionsSnapshot {
        TransactionsSnapshot {
            transactions: self.by_id.iter().map(|(id, metadata)| (id.clone(), metadata.clone())).collect(),
        }
    }

    fn restore(snapshot: TransactionsSnapshot) -> Transactions {
        let mut transactions = Transactions::default();
        for (transactional_id, metadata) in snapshot.transactions {
            transactions.set(&transactional_id, Some(metadata));
        }
        transactions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl crate::journal::suite::Fixture for Transactions {
        fn events(count: usize) -> Vec<TransactionChange> {
            // A few ids moving through their states, every fifth one forgotten.
            (0..count)
                .map(|index| TransactionChange {
                    transactional_id: format!("t{}", index % 4),
                    metadata: (index % 5 != 4).then(|| TransactionMetadata {
                        producer_id: index as i64,
                        producer_epoch: (index % 7) as i16,
                        timeout_ms: 60_000,
                        status: if index % 2 == 0 {
                            TransactionStatus::Ongoing
                        } else {
                            TransactionStatus::CompleteCommit
                        },
                        partitions: [("topic".to_owned(), (index % 3) as u32)].into(),
                        started_ms: index as i64,
                        updated_ms: index as i64,
                        groups: BTreeSet::new(),
                        pending_offsets: Vec::new(),
                    }),
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(Transactions);

    fn with_pending(groups: &[&str]) -> Option<TransactionMetadata> {
        let pending_offsets = groups
            .iter()
            .enumerate()
            .map(|(partition, group)| PendingOffset {
                group: (*group).to_owned(),
                topic: "t".to_owned(),
                partition: partition as u32,
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
            })
            .collect();
        Some(TransactionMetadata {
            producer_id: 1,
            producer_epoch: 0,
            timeout_ms: 60_000,
            status: TransactionStatus::Ongoing,
            partitions: BTreeSet::new(),
            started_ms: 0,
            updated_ms: 0,
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            pending_offsets,
        })
    }

    fn pending(transactions: &Transactions, group: &str) -> Vec<u32> {
        transactions.pending_offsets_of(group).map(|pending| pending.partition).collect()
    }

    #[test]
    fn pending_offsets_are_found_by_group_until_their_transaction_ends_and_after_a_restore() {
        let mut transactions = Transactions::default();
        let change = |id: &str, metadata| TransactionChange {
            transactional_id: id.to_owned(),
            metadata,
        };
        transactions.apply(&change("a", with_pending(&["g", "h"])));
        transactions.apply(&change("b", with_pending(&["g"])));
        assert_eq!(pending(&transactions, "g"), vec![0, 0]);
        assert_eq!(pending(&transactions, "h"), vec![1]);
        let restored = Transactions::restore(transactions.snapshot());
        assert_eq!(restored, transactions, "the index is rebuilt from a snapshot");
        // `a` commits (its pending offsets go), `b` is forgotten.
        transactions.apply(&change("a", with_pending(&[])));
        transactions.apply(&change("b", None));
        assert!(pending(&transactions, "g").is_empty());
        assert!(pending(&transactions, "h").is_empty());
        assert_eq!(
            transactions,
            Transactions::restore(transactions.snapshot()),
            "no stale entries left"
        );
    }
}
