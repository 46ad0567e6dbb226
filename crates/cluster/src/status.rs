//! The metadata group's state as operators read it (`GET /api/v1/cluster`,
//! `conveyor cluster status`, `/metrics`): members and their advertised
//! door addresses, the leader, term, commit index, and on the leader each
//! replica's matched index and lag. Knows openraft's metrics; no I/O.

use std::collections::BTreeMap;

use openraft::{BasicNode, RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};

use crate::config::Doors;
use crate::type_config::NodeId;

/// One node's view of the metadata group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node answering.
    pub node_id: NodeId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The metadata leader this node knows of.
    pub leader_id: Option<NodeId>,
    pub term: u64,
    /// On the leader, the highest index a majority holds; elsewhere the
    /// highest index this node has applied (which is committed).
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub members: Vec<MemberStatus>,
}

/// One member of the metadata group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub node_id: NodeId,
    pub cluster_addr: String,
    /// Its door addresses, once it advertised them.
    pub kafka_addr: Option<String>,
    pub amqp_addr: Option<String>,
    pub http_addr: Option<String>,
    pub voter: bool,
    /// Known on the leader: the last index this replica holds.
    pub matched_index: Option<u64>,
    /// Known on the leader: how far this replica is behind the leader's log.
    pub lag: Option<u64>,
}

impl ClusterStatus {
    /// The status from Raft's metrics and the advertised doors.
    pub fn of(metrics: &RaftMetrics<NodeId, BasicNode>, doors: &BTreeMap<NodeId, Doors>) -> ClusterStatus {
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let applied_index = metrics.last_applied.map_or(0, |id| id.index);
        let membership = metrics.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let matched: Option<BTreeMap<NodeId, u64>> = metrics.replication.as_ref().map(|replication| {
            replication
                .iter()
                .map(|(id, log_id)| (*id, log_id.map_or(0, |log_id| log_id.index)))
                .collect()
        });
        let commit_index = match &matched {
            Some(matched) => quorum_index(&voters, matched).unwrap_or(applied_index),
            None => applied_index,
        };
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let advertised = doors.get(id);
                let matched_index = matched.as_ref().and_then(|matched| matched.get(id).copied());
                MemberStatus {
                    node_id: *id,
                    cluster_addr: node.addr.clone(),
                    kafka_addr: advertised.map(|doors| doors.kafka_addr.clone()),
                    amqp_addr: advertised.map(|doors| doors.amqp_addr.clone()),
                    http_addr: advertised.map(|doors| doors.http_addr.clone()),
                    voter: voters.contains(id),
                    matched_index,
                    lag: matched_index.map(|index| last_log_index.saturating_sub(index)),
                }
            })
            .collect();
        ClusterStatus {
            node_id: metrics.id,
            role: role_name(metrics.state).to_owned(),
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            commit_index,
            applied_index,
            last_log_index,
            members,
        }
    }

    /// Whether this node is a member of a group that has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader_id.is_some() && self.members.iter().any(|member| member.node_id == self.node_id)
    }
}

/// The highest index held by a majority of `voters`.
fn quorum_index(voters: &[NodeId], matched: &BTreeMap<NodeId, u64>) -> Option<u64> {
    if voters.is_empty() {
        return None;
    }
    let mut indexes: Vec<u64> = voters.iter().map(|id| matched.get(id).copied().unwrap_or(0)).collect();
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes.get(voters.len() / 2).copied()
}

fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_index_is_what_a_majority_of_voters_holds() {
        let matched = BTreeMap::from([(1, 10), (2, 7), (3, 3)]);
        assert_eq!(quorum_index(&[1, 2, 3], &matched), Some(7));
        assert_eq!(quorum_index(&[1, 2, 3, 4, 5], &matched), Some(3));
        assert_eq!(quorum_index(&[1], &matched), Some(10));
        assert_eq!(quorum_index(&[], &matched), None);
    }
}
