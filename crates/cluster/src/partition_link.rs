//! The broker's `PartitionReplication` on a cluster node: the members and
//! their advertised Kafka doors, the replication factor rules, each
//! partition's placement as its group's Raft metrics show it (leader,
//! term as the leader epoch, replicas whose match index is within
//! [`IN_SYNC_LAG_ENTRIES_MAX`] of the leader's log and that answered it
//! within [`IN_SYNC_SILENCE_MAX`] as the ISR), and
//! writes through the partition's group (`partition_writes.rs`). Knows both sides' entry
//! points; no rules of Kafka's wire.

use std::sync::Arc;

use conveyor_core::Topic;
use conveyor_core::broker::{KafkaNode, PartitionReplication, Placement};
use conveyor_core::partition_write::{PartitionWrite, Reach};
use conveyor_core::producer::PendingAppend;
use uuid::Uuid;

use crate::node::ClusterNode;
use crate::partition_groups::PartitionGroups;
use crate::type_config::{GroupId, NodeId};

/// A replica whose log is at most this many entries behind the leader's
/// is in sync...
pub const IN_SYNC_LAG_ENTRIES_MAX: u64 = 1000;
/// ...and that answered the leader's heartbeats or entries within this
/// long (Kafka's `replica.lag.time.max.ms` is 30 s; Raft heartbeats come
/// every 150 ms, so a replica silent this long is down or cut off).
pub const IN_SYNC_SILENCE_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Partition replication through this node's groups.
#[derive(Debug)]
pub struct ClusterReplication {
    node: Arc<ClusterNode>,
    groups: Arc<PartitionGroups>,
}

impl ClusterReplication {
    pub fn new(node: Arc<ClusterNode>, groups: Arc<PartitionGroups>) -> ClusterReplication {
        ClusterReplication { node, groups }
    }
}

fn kafka_id(id: NodeId) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX)
}

impl PartitionReplication for ClusterReplication {
    fn node_id(&self) -> i32 {
        kafka_id(self.node.node_id())
    }

    fn controller(&self) -> Option<i32> {
        self.node.status().leader_id.map(kafka_id)
    }

    fn kafka_nodes(&self) -> Vec<KafkaNode> {
        self.node.applied_doors(|doors| {
            doors
                .iter()
                .filter_map(|(id, doors)| {
                    let addr: std::net::SocketAddr = doors.kafka_addr.parse().ok()?;
                    Some(KafkaNode {
                        node_id: kafka_id(*id),
                        host: addr.ip().to_string(),
                        port: i32::from(addr.port()),
                    })
                })
                .collect()
        })
    }

    fn replication_factor(&self, requested: Option<u16>) -> Result<u16, String> {
        let nodes = self.node.config().peers.len();
        let factor = requested.unwrap_or(self.node.config().default_replication_factor);
        if factor == 0 || usize::from(factor) > nodes {
            return Err(format!("Replication factor: {factor} larger than available brokers: {nodes}."));
        }
        Ok(factor)
    }

    fn placement(&self, topic: Uuid, partition: u32) -> Option<Placement> {
        let replicas = self.groups.replicas(topic, partition)?;
        let mut placement = Placement {
            leader: None,
            replicas: replicas.iter().copied().map(kafka_id).collect(),
            in_sync: Vec::new(),
            leader_epoch: 0,
        };
        let group_id = GroupId { topic, partition };
        let pool = self.groups.pool();
        let Some(group) = self.groups.group(&group_id) else {
            // Not a replica here, or its group is starting: no leader known.
            return Some(placement);
        };
        let metrics = group.raft.metrics().borrow().clone();
        placement.leader = metrics.current_leader.map(kafka_id);
        placement.leader_epoch = i32::try_from(metrics.current_term).unwrap_or(i32::MAX);
        let last_index = metrics.last_log_index.unwrap_or(0);
        placement.in_sync = match (&metrics.replication, metrics.current_leader) {
            // The leader knows each replica's match index.
            (Some(matched), _) => replicas
                .iter()
                .filter(|id| {
                    **id == self.node.node_id()
                        || (matched
                            .get(id)
                            .and_then(|log_id| *log_id)
                            .is_some_and(|log_id| log_id.index + IN_SYNC_LAG_ENTRIES_MAX >= last_index)
                            && pool.answered_within(Some(group_id), **id, IN_SYNC_SILENCE_MAX))
                })
                .copied()
                .map(kafka_id)
                .collect(),
            // A follower knows the leader and itself.
            (None, Some(leader)) => {
                let mut in_sync = vec![kafka_id(leader)];
                let applied = metrics.last_applied.map_or(0, |log_id| log_id.index);
                if leader != self.node.node_id() && applied + IN_SYNC_LAG_ENTRIES_MAX >= last_index {
                    in_sync.push(self.node_id());
                }
                in_sync
            }
            (None, None) => Vec::new(),
        };
        Some(placement)
    }

    fn write(&self, topic: &Topic, partition: u32, write: PartitionWrite, reach: Reach) -> PendingAppend {
        let groups = Arc::clone(&self.groups);
        let pool = Arc::clone(self.groups.pool());
        let group = GroupId {
            topic: topic.id,
            partition,
        };
        Box::pin(crate::partition_writes::write(
            groups,
            pool,
            group,
            topic.name.clone(),
            write,
            reach,
        ))
    }
}
