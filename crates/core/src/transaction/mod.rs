//! Kafka-style transactions in the core: the coordinator of transactional
//! ids (`coordinator.rs`) whose durable state is a journaled state machine
//! (`state.rs`), and the commit/abort markers it writes into partitions
//! (`marker.rs`). Knows producer ids, epochs and partitions by name; no
//! wire format (the Kafka door maps [`TransactionError`] onto error codes).

mod coordinator;
pub mod marker;
mod partition_index;
mod state;

pub use conveyor_log::transaction_index::AbortedTxn as AbortedTransaction;
pub use coordinator::{Participants, TRANSACTION_TIMEOUT_MS_MAX, TransactionCoordinator};
pub use marker::MarkerKind;
pub use partition_index::PartitionTransactions;
pub use state::{PendingOffset, TopicPartition, TransactionChange, TransactionMetadata, TransactionStatus, Transactions};

use crate::group::GroupError;
use crate::journal::JournalError;

/// Why a transaction operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// The producer id is not the one the transactional id has (or the
    /// transactional id has none): the producer must call InitProducerId.
    #[error("producer id {producer_id} is not the current one of transactional id {transactional_id:?}")]
    InvalidProducerIdMapping { transactional_id: String, producer_id: i64 },
    /// A newer producer with the same transactional id bumped the epoch.
    #[error("producer epoch {epoch} of transactional id {transactional_id:?} is fenced by epoch {current}")]
    ProducerFenced {
        transactional_id: String,
        epoch: i16,
        current: i16,
    },
    #[error("transactional id {transactional_id:?} is {status}: cannot {operation}")]
    InvalidTxnState {
        transactional_id: String,
        status: &'static str,
        operation: &'static str,
    },
    /// The previous transaction is still completing; retriable.
    #[error("transactional id {0:?} is completing its previous transaction")]
    ConcurrentTransactions(String),
    #[error("no such partitions: {0:?}")]
    UnknownPartitions(Vec<TopicPartition>),
    /// TxnOffsetCommit named a member, instance or generation that is not
    /// the group's current one (a zombie of an earlier generation).
    #[error("not a member of the group's current generation: {0}")]
    NotGroupMember(GroupError),
    #[error("transaction timeout {0} ms is outside 1..={TRANSACTION_TIMEOUT_MS_MAX} ms (transaction.max.timeout.ms)")]
    InvalidTransactionTimeout(i32),
    /// The coordinator's journal or a partition's marker write failed; retriable.
    #[error("transaction state storage: {0}")]
    Storage(String),
}

impl From<JournalError> for TransactionError {
    fn from(error: JournalError) -> TransactionError {
        TransactionError::Storage(error.to_string())
    }
}
