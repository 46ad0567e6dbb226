//! One write to a partition's log, as the broker's one append path
//! (`Broker::write_partition`) takes it and a partition's Raft group
//! replicates it: record batches with the conditions they carry, or the
//! marker that ends a transaction there. Applying one to a [`Partition`]
//! is the single-node append (`Partition::append_if`, `append_marker`);
//! everything a replica needs to write the same bytes is in it (a marker
//! carries its timestamp). Knows the partition's append calls; nothing of
//! Raft or of the doors.

use bytes::Bytes;

use crate::append_condition::AppendCondition;
use crate::producer::{Partition, PendingAppend};
use crate::transaction::MarkerKind;
use crate::transaction::marker::control_batch;

/// What is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionWrite {
    /// Record batches as a producer sent them, appended only if every
    /// condition holds.
    Records { batches: Bytes, conditions: Vec<AppendCondition> },
    /// The control batch ending `producer_id`'s transaction, stamped `now_ms`.
    Marker {
        producer_id: i64,
        producer_epoch: i16,
        kind: MarkerKind,
        now_ms: i64,
    },
}

/// Who may take a write of a replicated partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only its leader: another node refuses with `CoreError::NotLeader`
    /// (Kafka's producers find the leader themselves).
    Leader,
    /// Any node: one that does not lead sends it to the leader (the
    /// transaction coordinator's markers, exchanges, the admin API).
    AnyNode,
}

impl PartitionWrite {
    /// Plain record batches, with no condition.
    pub fn records(batches: Bytes) -> PartitionWrite {
        PartitionWrite::Records {
            batches,
            conditions: Vec::new(),
        }
    }

    /// The bytes it puts in the log.
    pub fn batch_bytes(&self) -> Bytes {
        match self {
            PartitionWrite::Records { batches, .. } => batches.clone(),
            PartitionWrite::Marker {
                producer_id,
                producer_epoch,
                kind,
                now_ms,
            } => control_batch(*producer_id, *producer_epoch, *kind, 0, *now_ms),
        }
    }
}

impl Partition {
    /// Writes `write` to this partition's log here, as a single node does.
    pub fn write(&self, write: PartitionWrite) -> PendingAppend {
        match write {
            PartitionWrite::Records { batches, conditions } => self.append_if(batches, &conditions),
            PartitionWrite::Marker {
                producer_id,
                producer_epoch,
                kind,
                now_ms,
            } => self.append_marker(producer_id, producer_epoch, kind, now_ms),
        }
    }
}
