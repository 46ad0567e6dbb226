//! Who is in the cluster, changed at runtime (`conveyor cluster add|remove`,
//! `POST /api/v1/cluster/members`, `DELETE /api/v1/cluster/members/{id}`):
//! openraft's membership change of the metadata group, run by its leader
//! (a node that does not lead sends the change there). A new node, started
//! with its own `--node-id` and `--peers`, first joins as a learner and is
//! caught up with the log, then becomes a voter; a removed node leaves the
//! voters and gets no more entries, and its partition replicas then move
//! to the remaining members (`reassignment.rs`). A new node gets replicas
//! of the topics created after it joined (the others keep the replicas
//! chosen from the voters at their creation). Knows Raft's membership API;
//! nothing of the broker.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::node::ClusterNode;
use crate::partition_groups::PartitionGroups;
use crate::type_config::{NodeId, TypeConfig};
use crate::wire::{Request, Response};

/// How long a change may take: a learner is caught up with the whole
/// metadata log before it votes.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(45);
/// Pause between looks for a leader while none is known.
const LEADER_RETRY: Duration = Duration::from_millis(100);

/// One change to the metadata group's voters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Node `node_id`, reached on `cluster_addr`, joins: learner, then voter.
    Add { node_id: NodeId, cluster_addr: String },
    /// Node `node_id` stops being a member.
    Remove { node_id: NodeId },
}

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// The change cannot be made as asked (an unknown node, the last voter).
    #[error("{0}")]
    Invalid(String),
    /// No leader took it in time, or Raft refused it.
    #[error("{0}")]
    Failed(String),
}

impl ClusterNode {
    /// Makes `change` through the metadata leader, this node or another;
    /// answers once the new voters are committed.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), MembershipError> {
        if let MembershipChange::Add { cluster_addr, .. } = &change
            && cluster_addr.parse::<SocketAddr>().is_err()
        {
            return Err(MembershipError::Invalid(format!("{cluster_addr:?} is not HOST:PORT")));
        }
        let deadline = tokio::time::Instant::now() + MEMBERSHIP_TIMEOUT;
        let mut metrics = self.metrics();
        loop {
            let (leader, leader_addr) = {
                let now = metrics.borrow_and_update();
                let leader = now.current_leader;
                let addr = leader.and_then(|id| now.membership_config.membership().get_node(&id).map(|node| node.addr.clone()));
                (leader, addr)
            };
            match (leader, leader_addr) {
                (Some(leader), _) if leader == self.node_id() => {
                    return tokio::time::timeout_at(deadline, change_here(self.raft(), change))
                        .await
                        .unwrap_or_else(|_| Err(MembershipError::Failed(format!("not done within {MEMBERSHIP_TIMEOUT:?}"))));
                }
                (Some(leader), Some(addr)) => {
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let request = Request::ChangeMembership(change);
                    return match self.partition_groups().pool().call(&addr, &request, remaining).await {
                        Ok(Response::ChangeMembership(answer)) => answer,
                        Ok(_) => Err(MembershipError::Failed(format!("node {leader} answered another request"))),
                        Err(error) => Err(MembershipError::Failed(format!("asking the leader, node {leader}: {error:?}"))),
                    };
                }
                _ => {}
            }
            if tokio::time::Instant::now() + LEADER_RETRY >= deadline {
                return Err(MembershipError::Failed("no metadata leader".to_owned()));
            }
            // Woken by news of a leader, or looks again after a pause.
            if let Ok(Err(_)) = tokio::time::timeout(LEADER_RETRY, metrics.changed()).await {
                return Err(MembershipError::Failed("the node shut down".to_owned()));
            }
        }
    }
}

/// Makes `change` through `raft`, which must lead.
pub async fn change_here(raft: &Raft<TypeConfig>, change: MembershipChange) -> Result<(), MembershipError> {
    let voters: BTreeSet<NodeId> = raft.metrics().borrow().membership_config.membership().voter_ids().collect();
    let failed = |error: &dyn std::fmt::Display| MembershipError::Failed(error.to_string());
    let next = match change {
        MembershipChange::Add { node_id, cluster_addr } => {
            raft.add_learner(node_id, BasicNode::new(cluster_addr), true)
                .await
                .map_err(|error| failed(&error))?;
            let mut next = voters;
            next.insert(node_id);
            next
        }
        MembershipChange::Remove { node_id } => {
            if !voters.contains(&node_id) {
                return Err(MembershipError::Invalid(format!("node {node_id} is not a member")));
            }
            let mut next = voters;
            next.remove(&node_id);
            if next.is_empty() {
                return Err(MembershipError::Invalid(format!("node {node_id} is the last member")));
            }
            next
        }
    };
    raft.change_membership(next, false).await.map_err(|error| failed(&error))?;
    Ok(())
}

/// Keeps the partition groups' address book up to date with the metadata
/// group's members (a node added at runtime), until `shutdown`.
pub async fn follow_members(node: Arc<ClusterNode>, groups: Arc<PartitionGroups>, mut shutdown: watch::Receiver<bool>) {
    let mut metrics = node.metrics();
    loop {
        let members: Vec<(NodeId, SocketAddr)> = metrics
            .borrow_and_update()
            .membership_config
            .membership()
            .nodes()
            .filter_map(|(id, member)| member.addr.parse().ok().map(|addr| (*id, addr)))
            .collect();
        groups.note_addresses(members);
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}
