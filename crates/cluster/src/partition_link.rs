//! The broker's `PartitionReplication` on a cluster node: the members and
//! their advertised Kafka doors, the replication factor rules, each
//! partition's placement as its leader reports it (leader, term as the
//! leader epoch, in-sync replicas: `placement_reports.rs`; the same on
//! every node, replica or not), and writes through the partition's group
//! (`partition_writes.rs`). Knows both sides' entry points; no rules of
//! Kafka's wire.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::Topic;
use conveyor_core::broker::{KafkaNode, PartitionReplication, Placement};
use conveyor_core::partition_write::{PartitionWrite, Reach};
use conveyor_core::producer::PendingAppend;
use uuid::Uuid;

use crate::node::ClusterNode;
use crate::partition_groups::PartitionGroups;
use crate::placement_reports::leader_report;
use crate::type_config::{GroupId, NodeId};

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
        // The members now (a removed node's doors stay advertised) that
        // are not down: clients that ask every broker would wait on one.
        let members: Vec<NodeId> = self
            .node
            .status()
            .members
            .iter()
            .map(|member| member.node_id)
            .filter(|id| !self.groups.reports().is_down(*id))
            .collect();
        self.node.applied_doors(|doors| {
            doors
                .iter()
                .filter(|(id, _)| members.contains(*id))
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
        let nodes = self.node.status().members.iter().filter(|member| member.voter).count();
        let factor = requested.unwrap_or(self.node.config().default_replication_factor);
        if factor == 0 || usize::from(factor) > nodes {
            return Err(format!("Replication factor: {factor} larger than available brokers: {nodes}."));
        }
        Ok(factor)
    }

    fn placement(&self, topic: Uuid, partition: u32) -> Option<Placement> {
        let replicas = self.groups.replicas(topic, partition)?;
        let group = GroupId { topic, partition };
        // This node's own view when it leads, else the leader's report.
        let report = leader_report(&self.groups, group).or_else(|| self.groups.reports().get(&group));
        Some(Placement {
            leader: report.as_ref().map(|report| kafka_id(report.leader)),
            replicas: replicas.into_iter().map(kafka_id).collect(),
            in_sync: report
                .as_ref()
                .map(|report| report.in_sync.iter().copied().map(kafka_id).collect())
                .unwrap_or_default(),
            leader_epoch: report.map_or(0, |report| i32::try_from(report.term).unwrap_or(i32::MAX)),
        })
    }

    fn write(&self, topic: &Topic, partition: u32, write: PartitionWrite, reach: Reach, timeout: Duration) -> PendingAppend {
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
            timeout,
        ))
    }
}
