//! The broker's transaction operations: the coordinator's decisions
//! (`transaction/coordinator.rs`) joined to the partitions they touch — a
//! fresh producer id from the catalog, markers appended to the partitions'
//! logs. Knows no wire format.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Broker;
use crate::error::CoreError;
use crate::group::CommittedOffset;
use crate::partition_write::{PartitionWrite, Reach};
use crate::transaction::{MarkerKind, Participants, PendingOffset, TopicPartition, TransactionCoordinator, TransactionError};

/// How often expired transactions are looked for (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` is 10 s;
/// shorter here, the sweep is a scan of a map).
const TRANSACTION_TIMER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// This broker's partitions and consumer groups, as a transaction touches them.
struct PartitionMarkers<'a> {
    broker: &'a Broker,
}

impl Participants for PartitionMarkers<'_> {
    fn write_markers<'a>(
        &'a self,
        partitions: &'a BTreeSet<TopicPartition>,
        producer_id: i64,
        producer_epoch: i16,
        kind: MarkerKind,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let now_ms = self.broker.clock().now_ms();
            // Enqueued on every partition first, so their fsyncs overlap.
            let pending: Vec<_> = partitions
                .iter()
                .filter_map(|(topic, partition)| {
                    let found = self.broker.topic(topic).filter(|found| *partition < found.partition_count());
                    if found.is_none() {
                        tracing::warn!(topic, partition, "no marker for a partition that no longer exists");
                    }
                    let marker = PartitionWrite::Marker {
                        producer_id,
                        producer_epoch,
                        kind,
                        now_ms,
                    };
                    // Through the partition's group when it is replicated,
                    // sent to its leader from any node.
                    found.map(|found| {
                        (
                            (topic, partition),
                            self.broker.write_partition(&found, *partition, marker, Reach::AnyNode),
                        )
                    })
                })
                .collect();
            let mut first_error = None;
            for ((topic, partition), appending) in pending {
                if let Err(error) = appending.await {
                    first_error.get_or_insert(format!("the {kind:?} marker for {topic}-{partition}: {error}"));
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }

    fn commit_offsets<'a>(&'a self, offsets: &'a [PendingOffset]) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let commit_ms = self.broker.clock().now_ms();
            let changes = offsets
                .iter()
                .map(|pending| {
                    let key = (pending.group.clone(), pending.topic.clone(), pending.partition);
                    let committed = CommittedOffset {
                        offset: pending.offset,
                        leader_epoch: pending.leader_epoch,
                        metadata: pending.metadata.clone(),
                        commit_ms,
                    };
                    (key, Some(committed))
                })
                .collect();
            self.broker
                .groups()
                .offsets()
                .write(changes)
                .await
                .map_err(|error| format!("committing the transaction's offsets: {error}"))
        })
    }
}

/// Who a TxnOffsetCommit says it commits for: the group and, when it is in
/// the group protocol, its member id, static instance id and generation
/// (none of them, generation -1, from a producer outside it).
#[derive(Debug, Clone, Copy)]
pub struct TransactionalCommitter<'a> {
    pub group: &'a str,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation_id: i32,
}

impl Broker {
    /// The transaction coordinator (transactional ids and their state).
    pub fn transactions(&self) -> &Arc<TransactionCoordinator> {
        &self.transactions
    }

    /// InitProducerId with a transactional id: its producer id and a new
    /// epoch that fences every older producer of the id (see
    /// [`TransactionCoordinator::init_producer`]).
    pub async fn init_transactional_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TransactionError> {
        let fresh_producer_id = self
            .allocate_producer_id()
            .await
            .map_err(|error| TransactionError::Storage(error.to_string()))?;
        let markers = PartitionMarkers { broker: self };
        self.transactions
            .init_producer(transactional_id, timeout_ms, expected, fresh_producer_id, &markers)
            .await
    }

    /// AddPartitionsToTxn: refused as a whole, naming them, if some partition does not exist.
    pub async fn add_partitions_to_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<(), TransactionError> {
        let unknown: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(topic, partition)| self.topic(topic).is_none_or(|found| *partition >= found.partition_count()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(TransactionError::UnknownPartitions(unknown));
        }
        self.transactions
            .add_partitions(transactional_id, producer_id, producer_epoch, partitions)
            .await
    }

    /// KIP-890's server-side defence: a transactional batch for a partition
    /// goes in only while the partition is part of its producer's ongoing
    /// transaction — a late write after the transaction ended, or one for a
    /// partition never added, would hang or join the wrong transaction.
    /// This is the check [`crate::producer::Partition::append_in_transaction`]
    /// asks under the partition's lock, with the header it already parsed.
    pub fn in_transaction<'a>(
        &'a self,
        transactional_id: Option<&'a str>,
        topic: &'a str,
        partition: u32,
    ) -> impl Fn(i64, i16) -> crate::Result<()> + 'a {
        move |producer_id, producer_epoch| {
            self.check_in_transaction(transactional_id.unwrap_or_default(), topic, partition, producer_id, producer_epoch)
                .map_err(CoreError::from)
        }
    }

    /// The same check for batches that do not go through a local
    /// partition's producer state (a replicated partition's append, which
    /// its leader orders): other batches pass.
    pub(crate) fn verify_transactional_append(
        &self,
        transactional_id: Option<&str>,
        topic: &str,
        partition: u32,
        records: &[u8],
    ) -> Result<(), TransactionError> {
        match conveyor_log::batch::BatchHeader::parse(records).filter(|header| header.is_transactional()) {
            Some(header) => self.check_in_transaction(
                transactional_id.unwrap_or_default(),
                topic,
                partition,
                header.producer_id,
                header.producer_epoch,
            ),
            None => Ok(()),
        }
    }

    fn check_in_transaction(
        &self,
        transactional_id: &str,
        topic: &str,
        partition: u32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), TransactionError> {
        let verified = self
            .transactions
            .verify_partitions(transactional_id, producer_id, producer_epoch, &[(topic.to_owned(), partition)]);
        // On a cluster node that does not coordinate transactions (the
        // metadata leader does) the coordinator's state arrives a moment
        // after the coordinator committed it, and a produce may follow
        // AddPartitionsToTxn sooner: such a node cannot tell, so it takes
        // the batch as a broker before KIP-890 did; the coordinator still
        // ends the transaction with its markers here.
        let lagging = self
            .partition_replication()
            .is_some_and(|replication| replication.controller() != Some(replication.node_id()));
        let added = match verified {
            Err(_) if lagging => return Ok(()),
            verified => verified?,
        };
        if added.first() == Some(&true) || lagging {
            return Ok(());
        }
        Err(TransactionError::InvalidTxnState {
            transactional_id: transactional_id.to_owned(),
            status: "not writing to this partition",
            operation: "append to a partition not added to the ongoing transaction",
        })
    }

    /// AddOffsetsToTxn: the group's offsets join the transaction.
    pub async fn add_offsets_to_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
    ) -> Result<(), TransactionError> {
        self.transactions
            .add_offsets(transactional_id, producer_id, producer_epoch, group)
            .await
    }

    /// TxnOffsetCommit: offsets of `committer`'s group pending until the
    /// transaction ends. A committer outside the group's current generation
    /// is refused first (`TransactionError::NotGroupMember`), as Kafka's
    /// `validateOffsetCommit` does; offsets of partitions that do not exist
    /// are refused as a whole, naming them.
    pub async fn commit_transactional_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        committer: &TransactionalCommitter<'_>,
        offsets: Vec<PendingOffset>,
    ) -> Result<(), TransactionError> {
        // A share group's id has no committed offsets (Kafka: GROUP_ID_NOT_FOUND).
        self.check_offsets_group(committer.group)
            .map_err(TransactionError::NotGroupMember)?;
        self.groups
            .check_transactional_committer(committer.group, committer.member_id, committer.instance_id, committer.generation_id)
            .map_err(TransactionError::NotGroupMember)?;
        let unknown: Vec<TopicPartition> = offsets
            .iter()
            .filter(|offset| {
                self.topic(&offset.topic)
                    .and_then(|found| found.partition(offset.partition))
                    .is_none()
            })
            .map(|offset| (offset.topic.clone(), offset.partition))
            .collect();
        if !unknown.is_empty() {
            return Err(TransactionError::UnknownPartitions(unknown));
        }
        self.transactions
            .commit_offsets(transactional_id, producer_id, producer_epoch, offsets)
            .await
    }

    /// Finishes transactions decided before a restart (or a failover) and
    /// aborts those open past their timeout, every
    /// `TRANSACTION_TIMER_INTERVAL`, until `shutdown`.
    pub async fn run_transaction_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(TRANSACTION_TIMER_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    // On a cluster only the coordinator (the metadata
                    // leader) finishes and aborts: a new one finishes what
                    // the last one decided (Kafka's coordinator does so
                    // when it loads its partition of __transaction_state).
                    if self.groups.coordinator().await != crate::group::Coordinator::Here {
                        continue;
                    }
                    let participants = PartitionMarkers { broker: &self };
                    self.transactions.complete_prepared(&participants).await;
                    self.transactions.abort_expired(&participants).await;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// EndTxn: commits or aborts the transaction, its markers in every partition.
    pub async fn end_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), TransactionError> {
        let markers = PartitionMarkers { broker: self };
        self.transactions
            .end(transactional_id, producer_id, producer_epoch, commit, &markers)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::BrokerConfig;
    use crate::group::GroupError;

    #[tokio::test]
    async fn a_transactional_offset_commit_from_outside_the_groups_generation_is_refused_before_the_transaction_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open broker");
        let offset = PendingOffset {
            group: "g".to_owned(),
            topic: "t".to_owned(),
            partition: 0,
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
        };
        let zombie = TransactionalCommitter {
            group: "g",
            member_id: "zombie",
            instance_id: None,
            generation_id: 3,
        };
        let refused = broker
            .commit_transactional_offsets("txn", 1, 0, &zombie, vec![offset.clone()])
            .await;
        assert!(
            matches!(refused, Err(TransactionError::NotGroupMember(GroupError::UnknownMemberId))),
            "{refused:?}"
        );
        // A producer outside the group protocol names no member: the
        // transaction is what refuses it here (no producer id was handed out).
        let outside = TransactionalCommitter {
            member_id: "",
            generation_id: -1,
            ..zombie
        };
        let refused = broker.commit_transactional_offsets("txn", 1, 0, &outside, vec![offset]).await;
        assert!(!matches!(refused, Err(TransactionError::NotGroupMember(_)) | Ok(())), "{refused:?}");
        broker.close().expect("close");
    }
}
