//! A removed node's partition replicas move to the remaining members, as
//! Kafka's reassignment does (the new replica is added and caught up, then
//! the old one dropped). Two loops, both driven by the catalog, so a leader
//! change or a restart only delays them:
//!
//! - the metadata group's leader decides: every partition with a replica
//!   on a node that is no longer a voter gets a new replica set, the
//!   replicas that remain plus, for each one gone, the voter holding the
//!   fewest replicas that is not one yet ([`moves`]; none when too few
//!   voters remain), proposed as `PartitionReplicasSet` catalog events
//!   (applied by the catalog's one `apply` on every node, kept across
//!   restarts);
//! - each partition group's leader carries the catalog's replica set out
//!   in its Raft group ([`carry_out`]): openraft's `add_learner` (blocking
//!   until the new replica has caught up with the log) for each new
//!   replica, then `change_membership` to exactly the new set, which drops
//!   the old one; tried again, each try bounded by [`MOVE_TIMEOUT`], until
//!   the group's voters are the catalog's replicas.
//!
//! Knows Raft's membership API and the catalog's topic events; nothing of
//! Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::catalog::Event;
use openraft::{BasicNode, ServerState};
use tokio::sync::watch;
use tracing::{info, warn};
use uuid::Uuid;

use crate::node::ClusterNode;
use crate::partition_groups::{PartitionGroups, TopicReplicas};
use crate::type_config::{GroupId, NodeId};

/// How often both loops look again even without news.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long one try at changing a group's replicas may take (catching a
/// new replica up included); the next try goes on from where it stopped.
pub const MOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A replicated topic as the catalog records it.
#[derive(Debug, Clone)]
pub struct PlacedTopic {
    pub id: Uuid,
    pub name: String,
    pub replicas: TopicReplicas,
}

/// The replicas of each partition of `topic`, in partition order.
fn placed(topic: &PlacedTopic) -> impl Iterator<Item = Vec<NodeId>> + '_ {
    (0..topic.replicas.partitions).map(|partition| topic.replicas.of(topic.id, partition))
}

/// The new replica sets that move every replica off nodes that are not
/// `voters`, in topic id and partition order. Each replaced replica goes
/// to the voter that holds the fewest replicas (counted over every
/// partition, moves so far included; the lowest id of equals) and is not
/// a replica of the partition yet. A partition none of whose replicas is
/// a voter has no copy to take the data from and is left as it is.
pub fn moves(topics: &[PlacedTopic], voters: &BTreeSet<NodeId>) -> Vec<Event> {
    let mut topics: Vec<&PlacedTopic> = topics.iter().collect();
    topics.sort_by_key(|topic| topic.id);
    let mut held: BTreeMap<NodeId, usize> = voters.iter().map(|id| (*id, 0)).collect();
    for replica in topics.iter().flat_map(|topic| placed(topic)).flatten() {
        if let Some(count) = held.get_mut(&replica) {
            *count += 1;
        }
    }
    let mut events = Vec::new();
    for topic in topics {
        for (partition, replicas) in (0..).zip(placed(topic)) {
            if replicas.iter().all(|id| voters.contains(id)) {
                continue;
            }
            let mut next: Vec<NodeId> = replicas.iter().copied().filter(|id| voters.contains(id)).collect();
            if next.is_empty() {
                continue;
            }
            for _ in next.len()..replicas.len() {
                let Some((&chosen, _)) = held
                    .iter()
                    .filter(|(id, _)| !next.contains(id))
                    .min_by_key(|(id, count)| (**count, **id))
                else {
                    break;
                };
                next.push(chosen);
                *held.entry(chosen).or_default() += 1;
            }
            events.push(Event::PartitionReplicasSet {
                id: topic.id,
                name: topic.name.clone(),
                partition,
                replicas: next,
            });
        }
    }
    events
}

/// While this node leads the metadata group, proposes the moves the
/// voters call for, until `shutdown`.
pub async fn propose_moves(node: Arc<ClusterNode>, groups: Arc<PartitionGroups>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let leads = node.metrics().borrow().current_leader == Some(node.node_id());
        // A new leader first applies what earlier leaders committed (a
        // move one of them proposed included), then decides.
        if leads && !pending_moves(&node, &groups).is_empty() && node.raft().ensure_linearizable().await.is_ok() {
            let events = pending_moves(&node, &groups);
            if !events.is_empty() {
                let count = events.len();
                match node.propose(events).await {
                    Ok(_) => info!(partitions = count, "partition replicas moved off nodes that left the cluster"),
                    Err(error) => warn!(%error, "proposing partition replicas' moves; trying again"),
                }
            }
        }
        // Looked at every LOOK_EVERY, not at every change of the metadata
        // group's metrics (each commit): a removal waits at most that long.
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The moves the metadata group's applied catalog and voters call for.
fn pending_moves(node: &ClusterNode, groups: &PartitionGroups) -> Vec<Event> {
    let voters: BTreeSet<NodeId> = node.metrics().borrow().membership_config.membership().voter_ids().collect();
    let topics: Vec<PlacedTopic> = node.machine().with_data(|data| {
        data.catalog
            .topics
            .values()
            .filter_map(|record| {
                groups.topic_replicas(record, &data.topic_voters).map(|replicas| PlacedTopic {
                    id: record.id,
                    name: record.name.clone(),
                    replicas,
                })
            })
            .collect()
    });
    moves(&topics, &voters)
}

/// Makes the voters of every group this node leads the catalog's
/// replicas of its partition, until `shutdown`.
pub async fn carry_out(groups: Arc<PartitionGroups>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let mut changes = tokio::task::JoinSet::new();
        for (group, replicas) in differing(&groups) {
            let groups = Arc::clone(&groups);
            changes.spawn(async move {
                match tokio::time::timeout(MOVE_TIMEOUT, change_replicas(&groups, group, &replicas)).await {
                    Ok(Ok(())) => info!(%group, ?replicas, "partition group's replicas changed"),
                    Ok(Err(reason)) => warn!(%group, ?replicas, %reason, "changing a partition group's replicas; trying again"),
                    Err(_) => warn!(%group, ?replicas, "changing a partition group's replicas took over {MOVE_TIMEOUT:?}; trying again"),
                }
            });
        }
        // Each change ends within MOVE_TIMEOUT.
        tokio::select! {
            _ = async { while changes.join_next().await.is_some() {} } => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The groups this node leads whose voters are not the catalog's replicas,
/// with those replicas.
fn differing(groups: &PartitionGroups) -> Vec<(GroupId, Vec<NodeId>)> {
    groups
        .running_ids()
        .into_iter()
        .filter_map(|group| {
            let raft = groups.raft(&group)?;
            let replicas = groups.replicas(group.topic, group.partition)?;
            let metrics = raft.metrics().borrow().clone();
            let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
            let wanted: BTreeSet<NodeId> = replicas.iter().copied().collect();
            (metrics.state == ServerState::Leader && voters != wanted && !wanted.is_empty()).then_some((group, replicas))
        })
        .collect()
}

/// Adds each of `replicas` the group lacks as a learner, caught up, then
/// makes `replicas` its voters (the others leave the group).
async fn change_replicas(groups: &PartitionGroups, group: GroupId, replicas: &[NodeId]) -> Result<(), String> {
    let raft = groups.raft(&group).ok_or("the group no longer runs here")?;
    let members: BTreeSet<NodeId> = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect();
    for id in replicas.iter().filter(|id| !members.contains(id)) {
        let addr = groups.peer_addr(*id).ok_or_else(|| format!("node {id}'s address is unknown"))?;
        raft.add_learner(*id, BasicNode::new(addr.to_string()), true)
            .await
            .map_err(|error| format!("adding node {id}: {error}"))?;
    }
    let voters: BTreeSet<NodeId> = replicas.iter().copied().collect();
    raft.change_membership(voters, false)
        .await
        .map_err(|error| format!("changing the voters: {error}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition_groups::replicas_of;

    fn topic(id: u128, partitions: u32, factor: u16, members: &[NodeId]) -> PlacedTopic {
        PlacedTopic {
            id: Uuid::from_u128(id),
            name: format!("t{id}"),
            replicas: TopicReplicas::new(partitions, factor, members.to_vec()),
        }
    }

    fn moved(events: &[Event]) -> Vec<(Uuid, u32, Vec<NodeId>)> {
        events
            .iter()
            .map(|event| match event {
                Event::PartitionReplicasSet {
                    id, partition, replicas, ..
                } => (*id, *partition, replicas.clone()),
                other => panic!("not a move: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_removed_node_s_replicas_go_to_the_voters_holding_the_fewest() {
        let members = [1, 2, 3, 4];
        let topics = [topic(7, 8, 3, &members), topic(9, 4, 2, &members)];
        let voters = BTreeSet::from([1, 2, 4]);
        let events = moves(&topics, &voters);
        let moved = moved(&events);
        let mut expected_moves = 0;
        for placed in &topics {
            for partition in 0..placed.replicas.partitions {
                let before = replicas_of(placed.id, partition, placed.replicas.replication_factor, &members);
                let after = moved.iter().find(|(id, at, _)| *id == placed.id && *at == partition);
                match after {
                    None => assert!(!before.contains(&3), "{before:?} keeps node 3"),
                    Some((_, _, after)) => {
                        expected_moves += 1;
                        assert!(before.contains(&3), "{before:?} moved without need");
                        assert_eq!(after.len(), before.len(), "{after:?}");
                        assert!(!after.contains(&3), "{after:?}");
                        let mut distinct = after.clone();
                        distinct.sort_unstable();
                        distinct.dedup();
                        assert_eq!(distinct.len(), after.len(), "{after:?}");
                        let kept: Vec<NodeId> = before.iter().copied().filter(|id| *id != 3).collect();
                        assert_eq!(after[..kept.len()], kept[..], "the remaining replicas stay, in order");
                    }
                }
            }
        }
        assert_eq!(moved.len(), expected_moves);
        assert!(expected_moves > 0);
        // The load ends as even as it can: every voter within one replica of the others.
        let mut held: BTreeMap<NodeId, usize> = BTreeMap::new();
        for placed in &topics {
            for partition in 0..placed.replicas.partitions {
                let replicas = moved
                    .iter()
                    .find(|(id, at, _)| *id == placed.id && *at == partition)
                    .map(|(_, _, after)| after.clone())
                    .unwrap_or_else(|| replicas_of(placed.id, partition, placed.replicas.replication_factor, &members));
                replicas.iter().for_each(|id| *held.entry(*id).or_default() += 1);
            }
        }
        let (least, most) = (held.values().min().copied(), held.values().max().copied());
        assert!(most.zip(least).is_some_and(|(most, least)| most - least <= 1), "{held:?}");
        // The same catalog and voters decide the same moves.
        assert_eq!(moves(&topics, &voters), events);
    }

    #[test]
    fn nothing_moves_while_every_replica_is_a_voter_or_no_replica_is_left() {
        let members = [1, 2, 3];
        assert!(moves(&[topic(7, 6, 3, &members)], &BTreeSet::from([1, 2, 3, 4])).is_empty());
        assert!(moves(&[topic(7, 6, 3, &members)], &BTreeSet::from([5, 6])).is_empty());
    }

    #[test]
    fn too_few_voters_leave_fewer_replicas() {
        let moved = moved(&moves(&[topic(7, 3, 3, &[1, 2, 3])], &BTreeSet::from([1, 2])));
        assert_eq!(moved.len(), 3);
        for (_, _, replicas) in moved {
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2], "{replicas:?}");
        }
    }
}
