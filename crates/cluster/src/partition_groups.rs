//! Every partition group this node is a replica of: which topics are
//! replicated and how widely (learned from the catalog's events), where
//! each partition's replicas are (a pure function of the topic id, the
//! partition and the metadata group's voters when the topic was created,
//! until a `PartitionReplicasSet` moves them off a removed node:
//! `reassignment.rs`), and one openraft `Raft` per local replica,
//! its log in a `Journaled` journal under
//! `<data>/cluster/partitions/<topic id>/<partition>/raft-log/` and its
//! state machine the broker's partition log (`partition_machine.rs`).
//! Groups start when their topic appears (the lowest replica initializes
//! the membership of a partition never moved; a moved-to replica waits to
//! be added by the group's leader) and stop, with their files removed,
//! when their topic goes; a replica moved off this node stops, files
//! kept, once the group's own membership no longer has it. Knows
//! Raft and the catalog's topic events; nothing of Kafka.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use conveyor_core::Broker;
use conveyor_core::catalog::{CatalogState, Event, TopicRecord};
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft};
use parking_lot::RwLock;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};
use uuid::Uuid;

use crate::error::ClusterError;
use crate::log_store::LogStore;
use crate::network::{Network, PeerPool};
use crate::partition_machine::PartitionMachine;
use crate::placement_reports::PlacementReports;
use crate::type_config::{GroupId, NodeId, TypeConfig, raft_config};

/// How often the groups are reconciled with the topics even without news.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// How one replicated topic is spread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReplicas {
    pub partitions: u32,
    pub replication_factor: u16,
    /// The nodes its replicas are chosen from: the voters of the metadata
    /// group when it was created (`--peers` for a topic created before
    /// those were recorded).
    members: Vec<NodeId>,
    /// The partitions whose replicas were set since (`PartitionReplicasSet`).
    moved: BTreeMap<u32, Vec<NodeId>>,
}

impl TopicReplicas {
    /// A topic of `partitions` whose replicas are chosen from `members`.
    pub fn new(partitions: u32, replication_factor: u16, members: Vec<NodeId>) -> TopicReplicas {
        TopicReplicas {
            partitions,
            replication_factor,
            members,
            moved: BTreeMap::new(),
        }
    }

    /// The replicas of `partition` now: as set last, else as chosen at
    /// the topic's creation.
    pub fn of(&self, topic: Uuid, partition: u32) -> Vec<NodeId> {
        match self.moved.get(&partition) {
            Some(replicas) => replicas.clone(),
            None => replicas_of(topic, partition, self.replication_factor, &self.members),
        }
    }

    /// Whether `partition`'s replicas were set since the topic's creation.
    pub fn moved(&self, partition: u32) -> bool {
        self.moved.contains_key(&partition)
    }
}

/// One partition group running on this node.
pub struct PartitionGroup {
    pub raft: Raft<TypeConfig>,
    pub machine: PartitionMachine,
    log_store: LogStore,
    dir: PathBuf,
}

impl std::fmt::Debug for PartitionGroup {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PartitionGroup")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// This node's partition groups.
#[derive(Debug)]
pub struct PartitionGroups {
    node_id: NodeId,
    /// `--peers`: the members of topics recorded without their own.
    peers: BTreeMap<NodeId, SocketAddr>,
    /// Every node's cluster address: `--peers` and the metadata group's
    /// members (a node added later too).
    addresses: RwLock<BTreeMap<NodeId, SocketAddr>>,
    dir: PathBuf,
    pool: Arc<PeerPool>,
    broker: OnceLock<Arc<Broker>>,
    topics: RwLock<HashMap<Uuid, TopicReplicas>>,
    running: RwLock<HashMap<GroupId, Arc<PartitionGroup>>>,
    changed: Notify,
    /// The placements other nodes lead, as they report them.
    reports: PlacementReports,
}

/// The replicas of `partition` of `topic`: `factor` consecutive members
/// (in id order, wrapping) from a start the topic id and the partition
/// choose, so partitions' leaders spread over the nodes.
pub fn replicas_of(topic: Uuid, partition: u32, factor: u16, members: &[NodeId]) -> Vec<NodeId> {
    if members.is_empty() {
        return Vec::new();
    }
    let seed = topic.as_u128() as u64 ^ (topic.as_u128() >> 64) as u64;
    let start = (seed.wrapping_add(u64::from(partition)) % members.len() as u64) as usize;
    (0..usize::from(factor).min(members.len()))
        .map(|step| members[(start + step) % members.len()])
        .collect()
}

impl PartitionGroups {
    /// No group runs until [`PartitionGroups::run`] is given the broker.
    pub fn new(node_id: NodeId, peers: BTreeMap<NodeId, SocketAddr>, dir: PathBuf, pool: Arc<PeerPool>) -> PartitionGroups {
        PartitionGroups {
            node_id,
            addresses: RwLock::new(peers.clone()),
            peers,
            dir,
            pool,
            broker: OnceLock::new(),
            topics: RwLock::new(HashMap::new()),
            running: RwLock::new(HashMap::new()),
            changed: Notify::new(),
            reports: PlacementReports::default(),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The cluster address of node `id`.
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addresses.read().get(&id).copied()
    }

    /// Learns the cluster addresses of the metadata group's members.
    pub fn note_addresses(&self, members: impl IntoIterator<Item = (NodeId, SocketAddr)>) {
        let mut addresses = self.addresses.write();
        for (id, addr) in members {
            addresses.insert(id, addr);
        }
    }

    /// The connections to the peers, shared by every group.
    pub fn pool(&self) -> &Arc<PeerPool> {
        &self.pool
    }

    /// Every node whose address is known, in id order.
    pub fn known_nodes(&self) -> Vec<NodeId> {
        self.addresses.read().keys().copied().collect()
    }

    /// The members a new replicated topic's replicas come from: the
    /// voters at its creation, else `--peers`.
    fn members_or_peers(&self, voters: &[NodeId]) -> Vec<NodeId> {
        if voters.is_empty() {
            self.peers.keys().copied().collect()
        } else {
            voters.to_vec()
        }
    }

    /// How the catalog's `record` is spread, if it is replicated, with
    /// the voters it was created with (`topic_voters`).
    pub fn topic_replicas(&self, record: &TopicRecord, topic_voters: &BTreeMap<Uuid, Vec<NodeId>>) -> Option<TopicReplicas> {
        let replication_factor = record.replication_factor?;
        let voters = topic_voters.get(&record.id).map(Vec::as_slice).unwrap_or_default();
        Some(TopicReplicas {
            moved: record.replicas.clone(),
            ..TopicReplicas::new(record.partitions, replication_factor, self.members_or_peers(voters))
        })
    }

    /// The Raft of `group`, if it runs here.
    pub fn raft(&self, group: &GroupId) -> Option<Raft<TypeConfig>> {
        self.running.read().get(group).map(|running| running.raft.clone())
    }

    /// The groups running here.
    pub fn running_ids(&self) -> Vec<GroupId> {
        self.running.read().keys().copied().collect()
    }

    /// What the leaders of other nodes report of their groups.
    pub fn reports(&self) -> &PlacementReports {
        &self.reports
    }

    /// The group, if it runs here.
    pub fn group(&self, group: &GroupId) -> Option<Arc<PartitionGroup>> {
        self.running.read().get(group).cloned()
    }

    /// The replicas of a partition of a replicated topic; `None` when the
    /// topic is not replicated (or unknown).
    pub fn replicas(&self, topic: Uuid, partition: u32) -> Option<Vec<NodeId>> {
        let topics = self.topics.read();
        let replicas = topics.get(&topic)?;
        (partition < replicas.partitions).then(|| replicas.of(topic, partition))
    }

    /// Every partition of every replicated topic, with its replicas.
    pub fn replicated_partitions(&self) -> Vec<(GroupId, Vec<NodeId>)> {
        self.topics
            .read()
            .iter()
            .flat_map(|(topic, replicas)| {
                (0..replicas.partitions).map(|partition| (GroupId { topic: *topic, partition }, replicas.of(*topic, partition)))
            })
            .collect()
    }

    /// Learns of replicated topics from catalog events applied by the
    /// metadata group (before the broker opens what they create), when
    /// `voters` were its voters.
    pub fn note(&self, events: &[Event], voters: &[NodeId]) {
        let mut topics = self.topics.write();
        for event in events {
            match event {
                Event::TopicCreated {
                    id,
                    partitions,
                    replication_factor: Some(replication_factor),
                    ..
                } => {
                    topics.insert(
                        *id,
                        TopicReplicas::new(*partitions, *replication_factor, self.members_or_peers(voters)),
                    );
                }
                Event::PartitionReplicasSet {
                    id, partition, replicas, ..
                } => {
                    if let Some(topic) = topics.get_mut(id).filter(|topic| *partition < topic.partitions) {
                        topic.moved.insert(*partition, replicas.clone());
                    }
                }
                Event::PartitionsCreated { id, partitions, .. } => {
                    if let Some(replicas) = topics.get_mut(id) {
                        replicas.partitions = replicas.partitions.max(*partitions);
                    }
                }
                Event::TopicDeleted { id, .. } => {
                    topics.remove(id);
                }
                _ => {}
            }
        }
        drop(topics);
        self.changed.notify_one();
    }

    /// Learns every replicated topic of `catalog` (at start), with the
    /// voters each was created with (`topic_voters`).
    pub fn note_catalog(&self, catalog: &CatalogState, topic_voters: &BTreeMap<Uuid, Vec<NodeId>>) {
        let mut topics = self.topics.write();
        for record in catalog.topics.values() {
            if let Some(replicas) = self.topic_replicas(record, topic_voters) {
                topics.insert(record.id, replicas);
            }
        }
        drop(topics);
        self.changed.notify_one();
    }

    /// Starts and stops groups as topics come and go, until `shutdown`.
    pub async fn run(self: Arc<Self>, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
        let _ = self.broker.set(broker);
        loop {
            self.reconcile().await;
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Starts the groups of local replicas not running yet; stops those
    /// whose topic is gone, and those this node was moved off once their
    /// own membership no longer has it (until then it may be needed for
    /// their quorum).
    async fn reconcile(&self) {
        let wanted: Vec<(GroupId, Vec<NodeId>, bool)> = self
            .topics
            .read()
            .iter()
            .flat_map(|(topic, replicas)| {
                (0..replicas.partitions).map(|partition| {
                    let group = GroupId { topic: *topic, partition };
                    (group, replicas.of(*topic, partition), replicas.moved(partition))
                })
            })
            .filter(|(_, replicas, _)| replicas.contains(&self.node_id))
            .collect();
        for (group, replicas, moved) in &wanted {
            if self.running.read().contains_key(group) {
                continue;
            }
            // A replica a partition was moved to is added by the group's
            // leader; initializing would found a second group.
            match self.start_group(*group, replicas, !moved).await {
                Ok(started) => {
                    self.running.write().insert(*group, started);
                }
                Err(error) => warn!(%group, %error, "starting a partition group; trying again"),
            }
        }
        // Each with whether its topic is gone (its files go too).
        let gone: Vec<(GroupId, bool)> = {
            let topics = self.topics.read();
            self.reports.retain(|group| topics.contains_key(&group.topic));
            self.running
                .read()
                .iter()
                .filter_map(|(group, running)| match topics.get(&group.topic) {
                    None => Some((*group, true)),
                    Some(replicas) => {
                        let moved_off = !replicas.of(group.topic, group.partition).contains(&self.node_id)
                            && !running
                                .raft
                                .metrics()
                                .borrow()
                                .membership_config
                                .membership()
                                .nodes()
                                .any(|(id, _)| *id == self.node_id);
                        moved_off.then_some((*group, false))
                    }
                })
                .collect()
        };
        for (group, topic_gone) in gone {
            let Some(stopped) = self.running.write().remove(&group) else {
                continue;
            };
            stop(&stopped).await;
            self.pool.forget_group(group);
            if !topic_gone {
                // Its Raft log and applied state stay with the partition
                // log they describe, should the partition come back here.
                info!(%group, "partition group stopped: its replica moved off this node");
                continue;
            }
            let dir = stopped.dir.clone();
            drop(stopped);
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
            info!(%group, "partition group removed with its topic");
        }
    }

    async fn start_group(&self, group: GroupId, replicas: &[NodeId], initialize: bool) -> Result<Arc<PartitionGroup>, ClusterError> {
        let Some(broker) = self.broker.get().cloned() else {
            return Err(ClusterError::Raft("no broker yet".to_owned()));
        };
        let dir = self.dir.join(group.topic.to_string()).join(group.partition.to_string());
        let opened_dir = dir.clone();
        let (log_store, machine) = tokio::task::spawn_blocking(move || -> Result<_, ClusterError> {
            conveyor_log::index::create_dir_all(&opened_dir).map_err(|error| ClusterError::Storage {
                path: opened_dir.clone(),
                reason: error.to_string(),
            })?;
            Ok((
                LogStore::open(&opened_dir.join("raft-log"))?,
                PartitionMachine::open(&opened_dir, group, broker)?,
            ))
        })
        .await
        .map_err(|error| ClusterError::Raft(error.to_string()))??;
        let pristine = log_store.is_pristine();
        // The partition log is the data: the Raft log is never cut for a
        // snapshot (see ARCHITECTURE.md, its cost).
        let config = raft_config(&format!("conveyor-partition-{group}"), openraft::SnapshotPolicy::Never)?;
        let network = Network::new(Arc::clone(&self.pool), Some(group));
        let raft = Raft::new(self.node_id, Arc::new(config), network, log_store.clone(), machine.clone())
            .await
            .map_err(|error| ClusterError::Raft(error.to_string()))?;
        if initialize && pristine && replicas.iter().min() == Some(&self.node_id) {
            let members: BTreeMap<NodeId, BasicNode> = replicas
                .iter()
                .filter_map(|id| self.peer_addr(*id).map(|addr| (*id, BasicNode::new(addr.to_string()))))
                .collect();
            match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(error) => return Err(ClusterError::Raft(error.to_string())),
            }
        }
        info!(%group, ?replicas, pristine, "partition group started");
        Ok(Arc::new(PartitionGroup {
            raft,
            machine,
            log_store,
            dir,
        }))
    }

    /// Stops every group (their logs are durable already).
    pub async fn shutdown(&self) {
        let running: Vec<Arc<PartitionGroup>> = self.running.write().drain().map(|(_, group)| group).collect();
        for group in running {
            stop(&group).await;
        }
    }
}

async fn stop(group: &PartitionGroup) {
    if let Err(error) = group.raft.shutdown().await {
        warn!(%error, "stopping a partition group");
    }
    let log_store = group.log_store.clone();
    let _ = tokio::task::spawn_blocking(move || log_store.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_distinct_consecutive_members_and_leaders_spread() {
        let members = [1, 2, 3];
        let topic = Uuid::from_u128(7);
        for partition in 0..6 {
            let replicas = replicas_of(topic, partition, 3, &members);
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, [1, 2, 3], "{replicas:?}");
        }
        let firsts: std::collections::BTreeSet<NodeId> = (0..3).map(|partition| replicas_of(topic, partition, 1, &members)[0]).collect();
        assert_eq!(firsts.len(), 3, "one partition starts on each node");
        assert_eq!(replicas_of(topic, 0, 5, &members).len(), 3, "never more replicas than members");
        assert!(replicas_of(topic, 0, 3, &[]).is_empty());
    }
}
