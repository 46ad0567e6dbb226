//! Every replicated partition's group as operators read it (`GET
//! /api/v1/cluster`, `conveyor cluster status`, `/metrics`): its replicas,
//! its leader, term and in-sync replicas as the leader reports them (the
//! same on every node), and, where this node is a replica, its own
//! group's Raft state (on the leader each replica's matched index and
//! lag). Knows the groups' metrics; no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::partition_groups::PartitionGroups;
use crate::placement_reports::leader_report;
use crate::status::ClusterStatus;
use crate::type_config::{GroupId, NodeId};

/// One partition's group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionGroupStatus {
    pub topic_id: Uuid,
    pub partition: u32,
    pub replicas: Vec<NodeId>,
    /// As its leader reports it; `None` while none is known.
    pub leader_id: Option<NodeId>,
    /// The leader's term (Kafka's leader epoch); 0 while no leader is known.
    pub term: u64,
    pub in_sync: Vec<NodeId>,
    /// This node's replica of the group, when it is one.
    pub replica: Option<ClusterStatus>,
}

impl PartitionGroups {
    /// Every partition of every replicated topic, in topic id and
    /// partition order.
    pub fn statuses(&self) -> Vec<PartitionGroupStatus> {
        let mut groups: Vec<(GroupId, Vec<NodeId>)> = self.replicated_partitions();
        groups.sort_by_key(|(group, _)| *group);
        let no_doors = BTreeMap::new();
        groups
            .into_iter()
            .map(|(group, replicas)| {
                let report = leader_report(self, group).or_else(|| self.reports().get(&group));
                let replica = self.group(&group).map(|running| {
                    let metrics = running.raft.metrics().borrow().clone();
                    ClusterStatus::of(&metrics, &no_doors)
                });
                PartitionGroupStatus {
                    topic_id: group.topic,
                    partition: group.partition,
                    replicas,
                    leader_id: report.as_ref().map(|report| report.leader),
                    term: report.as_ref().map_or(0, |report| report.term),
                    in_sync: report.map(|report| report.in_sync).unwrap_or_default(),
                    replica,
                }
            })
            .collect()
    }
}
