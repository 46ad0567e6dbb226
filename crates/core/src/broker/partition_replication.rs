//! What a cluster node's broker asks of the replication of Kafka
//! partitions: the nodes and their Kafka doors, a partition's leader,
//! replicas, in-sync replicas and leader epoch, the replication factor a
//! new topic gets, and writes that answer once a quorum of the
//! partition's replicas holds them. Also the broker's one write path of a
//! partition (`Broker::write_partition`): every door and the transaction
//! coordinator write through it, and it goes through the partition's group
//! when the partition is replicated. The binary installs an implementation
//! (`crates/cluster`); without one a broker is a single node and nothing
//! here changes what it does. Knows no consensus and no sockets.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

use super::Broker;
use crate::append_condition::AppendCondition;
use crate::error::{CoreError, Result};
use crate::partition_write::{PartitionWrite, Reach};
use crate::producer::PendingAppend;
use crate::topic::Topic;

/// How long a write to a replicated partition that is not a producer's
/// (an exchange's routing, the admin API's publish, a transaction's
/// marker) waits for a majority of the partition's replicas: past it, it
/// fails with [`CoreError::ReplicationTimedOut`] and may still commit
/// later. A producer's write waits as long as its request says.
pub const REPLICATED_WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// A node as Kafka clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaNode {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// Where one partition lives now, as this node knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The node that takes appends, if one is elected and known here.
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    /// Replicas close enough to the leader's log (always the leader).
    pub in_sync: Vec<i32>,
    /// Raises with every new leader.
    pub leader_epoch: i32,
}

/// The replication of partitions, as the broker sees it.
pub trait PartitionReplication: Send + Sync + std::fmt::Debug {
    /// This node's id.
    fn node_id(&self) -> i32;
    /// The node that leads the metadata (Kafka's controller), if known.
    fn controller(&self) -> Option<i32>;
    /// Every member that is not down, with its advertised Kafka address.
    fn kafka_nodes(&self) -> Vec<KafkaNode>;
    /// The replication factor a new topic gets for `requested` (`None`:
    /// the cluster's default), or why it cannot have it.
    fn replication_factor(&self, requested: Option<u16>) -> std::result::Result<u16, String>;
    /// Where partition `partition` of the topic with id `topic` lives;
    /// `None` when it is not replicated (a topic made before the cluster).
    fn placement(&self, topic: Uuid, partition: u32) -> Option<Placement>;
    /// Writes `write` through the partition's group: resolves once a
    /// quorum of its replicas has it durable and the leader has written it
    /// to the partition log, with the offsets it got there. On a node that
    /// does not lead, fails with [`CoreError::NotLeader`] when `reach` is
    /// [`Reach::Leader`], else is sent to the leader. Not committed within
    /// `timeout`, it fails with [`CoreError::ReplicationTimedOut`] (and may
    /// still be committed later).
    fn write(&self, topic: &Topic, partition: u32, write: PartitionWrite, reach: Reach, timeout: Duration) -> PendingAppend;
}

impl Broker {
    /// Makes this broker's partitions replicated through `replication`.
    /// Call before the doors serve; a second call changes nothing.
    pub fn replicate_partitions_through(&self, replication: Arc<dyn PartitionReplication>) {
        let _ = self.partition_replication.set(replication);
    }

    /// The replication of partitions, on a cluster node.
    pub fn partition_replication(&self) -> Option<&Arc<dyn PartitionReplication>> {
        self.partition_replication.get()
    }

    /// The replication factor a new topic gets: the cluster's rules on a
    /// cluster node (`Some`), else one copy here (`None`; only 1 may be
    /// asked for).
    pub fn replication_factor_for(&self, requested: Option<u16>) -> Result<Option<u16>> {
        match self.partition_replication() {
            Some(replication) => replication
                .replication_factor(requested)
                .map(Some)
                .map_err(CoreError::InvalidReplicationFactor),
            None if matches!(requested, None | Some(1)) => Ok(None),
            None => Err(CoreError::InvalidReplicationFactor(format!(
                "replication factor {} cannot be reached: this cluster has 1 broker",
                requested.unwrap_or_default()
            ))),
        }
    }

    /// Where a partition lives, when it is replicated.
    pub fn placement(&self, topic: &Topic, partition: u32) -> Option<Placement> {
        self.partition_replication()?.placement(topic.id, partition)
    }

    /// The one write path of a partition: through its group when it is
    /// replicated (see [`PartitionReplication::write`]), else straight to
    /// its log here. Every door and the transaction coordinator write
    /// through it, so none needs to know whether the partition is
    /// replicated. A replicated write waits at most
    /// [`REPLICATED_WRITE_TIMEOUT`] for its commit.
    pub fn write_partition(&self, topic: &Topic, partition: u32, write: PartitionWrite, reach: Reach) -> PendingAppend {
        self.write_partition_within(topic, partition, write, reach, REPLICATED_WRITE_TIMEOUT)
    }

    /// [`Broker::write_partition`] with a replicated write waiting at most
    /// `timeout` for its commit (a single node's append is not bounded:
    /// it waits for its own disk only).
    fn write_partition_within(
        &self,
        topic: &Topic,
        partition: u32,
        write: PartitionWrite,
        reach: Reach,
        timeout: Duration,
    ) -> PendingAppend {
        if let Some(replication) = self.partition_replication()
            && replication.placement(topic.id, partition).is_some()
        {
            return replication.write(topic, partition, write, reach, timeout);
        }
        match topic.partition_handle(partition) {
            Some(handle) => handle.write(write),
            None => unknown_partition(topic, partition),
        }
    }

    /// A Kafka producer's records for `partition`, under KIP-890's rule that
    /// a transactional batch goes only to a partition of its ongoing
    /// transaction: on a partition that is not replicated the check runs
    /// under the partition's lock, from the append's one header parse; on
    /// a replicated one it runs here, then the leader writes through the
    /// group (`Reach::Leader`), waiting at most `timeout` (the Produce's
    /// `timeout_ms`) for the commit.
    pub fn write_produced(
        &self,
        topic: &Topic,
        partition: u32,
        transactional_id: Option<&str>,
        batches: Bytes,
        conditions: Vec<AppendCondition>,
        timeout: Duration,
    ) -> PendingAppend {
        let replicated = self
            .partition_replication()
            .is_some_and(|replication| replication.placement(topic.id, partition).is_some());
        if !replicated {
            return match topic.partition_handle(partition) {
                Some(handle) => {
                    let in_transaction = self.in_transaction(transactional_id, &topic.name, partition);
                    handle.append_in_transaction(batches, &conditions, &in_transaction)
                }
                None => unknown_partition(topic, partition),
            };
        }
        if let Err(error) = self.verify_transactional_append(transactional_id, &topic.name, partition, &batches) {
            let error = CoreError::from(error);
            return Box::pin(async move { Err(error) });
        }
        self.write_partition_within(
            topic,
            partition,
            PartitionWrite::Records { batches, conditions },
            Reach::Leader,
            timeout,
        )
    }

    /// Kafka's `min.insync.replicas` rule for an `acks=all` write: on the
    /// leader of a replicated partition, fewer in-sync replicas than the
    /// topic's `min.insync.replicas` refuse it before anything is written.
    /// Nothing to check on a single node or a partition that is not
    /// replicated, nor on a node that does not lead (the write answers
    /// `NotLeader` there).
    pub fn check_min_in_sync(&self, topic: &Topic, partition: u32) -> Result<()> {
        let Some(replication) = self.partition_replication() else {
            return Ok(());
        };
        let Some(placement) = replication.placement(topic.id, partition) else {
            return Ok(());
        };
        if placement.leader != Some(replication.node_id()) {
            return Ok(());
        }
        let required = topic.config().min_insync_replicas(&self.config().topic_defaults);
        if placement.in_sync.len() < usize::from(required) {
            return Err(CoreError::NotEnoughReplicas {
                topic: topic.name.clone(),
                partition,
                in_sync: placement.in_sync.len(),
                required,
            });
        }
        Ok(())
    }

    /// Whether a partition is replicated through a group (on a cluster
    /// node, a topic created with a replication factor).
    pub fn is_replicated(&self, topic: &Topic, partition: u32) -> bool {
        self.placement(topic, partition).is_some()
    }

    /// Refuses reads of a replicated partition this node does not lead:
    /// clients read from the leader, which holds every committed record.
    pub fn check_leads(&self, topic: &Topic, partition: u32) -> Result<()> {
        let Some(replication) = self.partition_replication() else {
            return Ok(());
        };
        match replication.placement(topic.id, partition) {
            Some(placement) if placement.leader != Some(replication.node_id()) => Err(CoreError::NotLeader {
                topic: topic.name.clone(),
                partition,
            }),
            _ => Ok(()),
        }
    }
}

/// The append of a partition `topic` does not have, failed.
fn unknown_partition(topic: &Topic, partition: u32) -> PendingAppend {
    let error = CoreError::UnknownPartition {
        topic: topic.name.clone(),
        partition,
    };
    Box::pin(async move { Err(error) })
}
