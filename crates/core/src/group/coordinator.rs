//! The consumer group coordinator: Kafka's classic group membership protocol
//! (join, sync, heartbeat, leave) as a state machine per group, plus the
//! committed offsets (`offsets.rs`). Time comes from the `Clock`, and
//! [`GroupCoordinator::tick`] expires sessions and completes rebalances, so
//! tests drive time by hand. Knows members, generations and assignments as
//! opaque bytes; nothing of the Kafka wire format.
//!
//! States: Empty → PreparingRebalance (members (re)join) → CompletingRebalance
//! (the leader computes assignments) → Stable (members have them); any
//! membership change goes back to PreparingRebalance; Dead after deletion.
//!
//! Lock order: the groups mutex is never held across an await; waiters get
//! their answers through oneshot channels completed under the lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use conveyor_log::clock::Clock;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::consumer_protocol::{ConsumerGroup, ConsumerGroupStore};
use super::membership::{Group, Member};
use super::offsets::{CommittedOffset, OffsetStore};
use crate::error::CoreError;
use crate::limits::{Limit, Limits};

/// Why a group operation failed. Each front door maps these to its codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the member id is not known to the group")]
    UnknownMemberId,
    #[error("the generation id is not the group's current generation")]
    IllegalGeneration,
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    #[error("the member's protocol type or protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("session timeout {0} ms is outside the allowed range")]
    InvalidSessionTimeout(i32),
    /// The member must rejoin with this id (KIP-394).
    #[error("a member id is required: rejoin with the one given")]
    MemberIdRequired(String),
    #[error("group {0:?} does not exist")]
    GroupIdNotFound(String),
    /// The id is another kind of group's (a share group's, a KIP-848
    /// group's): Kafka's GROUP_ID_NOT_FOUND text.
    #[error("Group {0} is not a classic group.")]
    NotClassicGroup(String),
    #[error("group {0:?} still has members")]
    NonEmptyGroup(String),
    #[error("the group instance id is used by another member")]
    FencedInstanceId,
    #[error("the group id is empty")]
    InvalidGroupId,
    #[error("offset metadata of {0} bytes is too large")]
    OffsetMetadataTooLarge(usize),
    #[error("the group is subscribed to topic {0:?}")]
    GroupSubscribedToTopic(String),
    #[error("the group coordinator is shutting down")]
    CoordinatorNotAvailable,
    /// `group_members_max` (Kafka's `group.max.size`) or `groups_max`.
    #[error("{0}")]
    GroupMaxSizeReached(String),
    #[error("storing offsets failed: {0}")]
    Storage(String),
}

impl From<CoreError> for GroupError {
    fn from(error: CoreError) -> GroupError {
        GroupError::Storage(error.to_string())
    }
}

/// Limits, Kafka's broker settings of the same names.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub session_timeout_ms_min: i32,
    /// `group.max.session.timeout.ms`.
    pub session_timeout_ms_max: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an
    /// empty group waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_bytes_max: usize,
    /// `groups_max` (groups with members or members joining) and
    /// `group_members_max` (Kafka's `group.max.size`), counted when reached.
    pub limits: Arc<Limits>,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            session_timeout_ms_min: 1_000,
            session_timeout_ms_max: 1_800_000,
            initial_rebalance_delay_ms: 300,
            offset_metadata_bytes_max: 4096,
            limits: Arc::new(Limits::default()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
    /// A KIP-848 consumer group whose target assignment is being computed.
    Assigning,
    /// A KIP-848 consumer group whose members are moving to their targets.
    Reconciling,
}

/// Which membership protocol a group speaks (ListGroups' group type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    Classic,
    /// KIP-848 (`group.protocol=consumer`).
    Consumer,
    /// KIP-932 share groups.
    Share,
}

impl GroupType {
    pub fn name(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
            GroupType::Share => "share",
        }
    }
}

impl GroupState {
    /// The name Kafka's admin APIs use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
        }
    }
}

/// A JoinGroup request, as the core sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a new member.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Whether the client understands MEMBER_ID_REQUIRED (JoinGroup v4+).
    pub require_known_member_id: bool,
}

/// What a member learns when a rebalance completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation_id: i32,
    pub protocol_type: String,
    pub protocol_name: String,
    pub leader_id: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol; only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// One member, as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group, as DescribeGroups and ListGroups show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub group_type: GroupType,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub generation_id: i32,
    pub members: Vec<MemberDescription>,
}

/// An offset commit for one partition.
#[derive(Debug, Clone)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    /// Classic-protocol groups. Lock order: `groups` before `consumer_groups`.
    pub(super) groups: Mutex<HashMap<String, Group>>,
    /// KIP-848 consumer groups (`consumer_protocol/`); a group id is in one
    /// map or the other, never both with members.
    pub(super) consumer_groups: Mutex<HashMap<String, ConsumerGroup>>,
    /// Where `consumer_groups` is kept, changed under its lock.
    pub(super) consumer_group_store: ConsumerGroupStore,
    offsets: OffsetStore,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: GroupConfig,
}

impl GroupCoordinator {
    /// The coordinator of the groups `offsets` and `consumer_groups` hold;
    /// the KIP-848 groups' members get a full session from now.
    pub fn new(offsets: OffsetStore, consumer_groups: ConsumerGroupStore, clock: Arc<dyn Clock>, config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            consumer_groups: Mutex::new(consumer_groups.groups(clock.now_ms())),
            consumer_group_store: consumer_groups,
            offsets,
            clock,
            config,
        }
    }

    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    /// Where the KIP-848 groups are kept.
    pub fn consumer_group_store(&self) -> &ConsumerGroupStore {
        &self.consumer_group_store
    }

    /// JoinGroup: resolves when the rebalance this join takes part in completes.
    pub async fn join(&self, request: JoinRequest) -> Result<JoinResult, GroupError> {
        let waiter = {
            let now_ms = self.clock.now_ms();
            let mut groups = self.groups.lock();
            if request.group_id.is_empty() {
                return Err(GroupError::InvalidGroupId);
            }
            // A group with KIP-848 members refuses classic joins, as Kafka
            // without online migration does.
            if self.consumer_group_in_use(&request.group_id) {
                return Err(GroupError::InconsistentGroupProtocol);
            }
            if request.session_timeout_ms < self.config.session_timeout_ms_min
                || request.session_timeout_ms > self.config.session_timeout_ms_max
            {
                return Err(GroupError::InvalidSessionTimeout(request.session_timeout_ms));
            }
            let occupied = |group: &Group| !group.members.is_empty() || !group.pending_member_ids.is_empty();
            let limits = &self.config.limits;
            if !groups.get(&request.group_id).is_some_and(occupied) {
                let occupied_groups = groups.values().filter(|group| occupied(group)).count() as u64;
                limits
                    .check_count(Limit::Groups, occupied_groups, 1, &format!("group {:?}", request.group_id))
                    .map_err(|reached| GroupError::GroupMaxSizeReached(reached.to_string()))?;
            }
            let group = groups
                .entry(request.group_id.clone())
                .or_insert_with(|| Group::new(&request.group_id));
            if group.state == GroupState::Dead {
                *group = Group::new(&request.group_id);
            }
            if !group.supports(&request.protocol_type, &request.protocols) {
                return Err(GroupError::InconsistentGroupProtocol);
            }
            let mut member_id = request.member_id.clone();
            if let Some(instance) = &request.group_instance_id
                && let Some(existing) = group.static_members.get(instance).cloned()
            {
                // A static member restarting: it takes over its old identity.
                if member_id.is_empty() || member_id != existing {
                    let new_id = new_member_id(&request.client_id);
                    if let Some(mut member) = group.members.remove(&existing) {
                        member.id = new_id.clone();
                        group.members.insert(new_id.clone(), member);
                    }
                    if group.leader_id.as_deref() == Some(existing.as_str()) {
                        group.leader_id = Some(new_id.clone());
                    }
                    group.static_members.insert(instance.clone(), new_id.clone());
                    member_id = new_id;
                    let same_protocols = group.members.get(&member_id).is_some_and(|member| {
                        member
                            .protocols
                            .iter()
                            .map(|(name, _)| name)
                            .eq(request.protocols.iter().map(|(name, _)| name))
                    });
                    if group.state == GroupState::Stable && same_protocols {
                        // No rebalance: hand back the current generation; the
                        // member syncs and gets its old assignment.
                        let protocol = group.protocol_name.clone().unwrap_or_default();
                        let leader = group.leader_id.clone().unwrap_or_default();
                        if let Some(member) = group.members.get_mut(&member_id) {
                            member.last_heartbeat_ms = now_ms;
                            member.protocols = request.protocols.clone();
                        }
                        return Ok(JoinResult {
                            generation_id: group.generation_id,
                            protocol_type: group.protocol_type.clone().unwrap_or_default(),
                            protocol_name: protocol,
                            members: Vec::new(),
                            leader_id: leader,
                            member_id,
                        });
                    }
                }
            } else if member_id.is_empty() {
                let members = (group.members.len() + group.pending_member_ids.len()) as u64;
                limits
                    .check_count(
                        Limit::GroupMembers,
                        members,
                        1,
                        &format!("a member of group {:?}", request.group_id),
                    )
                    .map_err(|reached| GroupError::GroupMaxSizeReached(reached.to_string()))?;
                member_id = new_member_id(&request.client_id);
                if request.require_known_member_id && request.group_instance_id.is_none() {
                    group
                        .pending_member_ids
                        .insert(member_id.clone(), now_ms + i64::from(request.session_timeout_ms));
                    return Err(GroupError::MemberIdRequired(member_id));
                }
            } else if !group.members.contains_key(&member_id) && group.pending_member_ids.remove(&member_id).is_none() {
                return Err(GroupError::UnknownMemberId);
            }
            let join_order = group.next_join_order;
            group.next_join_order += 1;
            let was_empty = group.members.is_empty();
            let changed = match group.members.get_mut(&member_id) {
                Some(member) => {
                    let changed = member.protocols != request.protocols;
                    member.protocols = request.protocols.clone();
                    member.session_timeout_ms = request.session_timeout_ms;
                    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
                    member.joined = true;
                    member.last_heartbeat_ms = now_ms;
                    changed
                }
                None => {
                    group.members.insert(
                        member_id.clone(),
                        Member {
                            id: member_id.clone(),
                            instance_id: request.group_instance_id.clone(),
                            client_id: request.client_id.clone(),
                            client_host: request.client_host.clone(),
                            session_timeout_ms: request.session_timeout_ms,
                            rebalance_timeout_ms: request.rebalance_timeout_ms,
                            protocols: request.protocols.clone(),
                            assignment: Bytes::new(),
                            last_heartbeat_ms: now_ms,
                            joined: true,
                            join_order,
                        },
                    );
                    if let Some(instance) = &request.group_instance_id {
                        group.static_members.insert(instance.clone(), member_id.clone());
                    }
                    true
                }
            };
            group.protocol_type = Some(request.protocol_type.clone());
            let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
            if group.state != GroupState::PreparingRebalance {
                if !changed && !is_leader && matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
                    // A known follower rejoining with the same protocols while
                    // nothing changed: Kafka answers from the current generation.
                    let protocol = group.protocol_name.clone().unwrap_or_default();
                    return Ok(JoinResult {
                        generation_id: group.generation_id,
                        protocol_type: group.protocol_type.clone().unwrap_or_default(),
                        protocol_name: protocol,
                        leader_id: group.leader_id.clone().unwrap_or_default(),
                        members: Vec::new(),
                        member_id,
                    });
                }
                group.prepare_rebalance(now_ms);
                if let Some(member) = group.members.get_mut(&member_id) {
                    member.joined = true;
                }
                if was_empty {
                    group.join_not_before_ms = now_ms + self.config.initial_rebalance_delay_ms;
                }
            }
            let (sender, receiver) = oneshot::channel();
            // A member joining twice (a retry) only waits once.
            group.join_waiters.retain(|(waiting, _)| waiting != &member_id);
            group.join_waiters.push((member_id, sender));
            group.maybe_complete_join(now_ms);
            receiver
        };
        waiter.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// SyncGroup: the leader hands in assignments; every member gets its own.
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes, GroupError> {
        let waiter = {
            let mut groups = self.groups.lock();
            let group = groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
            group.check_member(member_id, instance_id)?;
            if generation_id != group.generation_id {
                return Err(GroupError::IllegalGeneration);
            }
            match group.state {
                GroupState::PreparingRebalance => return Err(GroupError::RebalanceInProgress),
                GroupState::Stable => {
                    return Ok(group
                        .members
                        .get(member_id)
                        .map(|member| member.assignment.clone())
                        .unwrap_or_default());
                }
                GroupState::Empty | GroupState::Dead | GroupState::Assigning | GroupState::Reconciling => {
                    return Err(GroupError::UnknownMemberId);
                }
                GroupState::CompletingRebalance => {}
            }
            let (sender, receiver) = oneshot::channel();
            group.sync_waiters.retain(|(waiting, _)| waiting != member_id);
            group.sync_waiters.push((member_id.to_owned(), sender));
            if group.leader_id.as_deref() == Some(member_id) {
                let assigned: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in group.members.values_mut() {
                    member.assignment = assigned.get(&member.id).cloned().unwrap_or_default();
                }
                group.state = GroupState::Stable;
                for (waiting, waiter) in group.sync_waiters.drain(..) {
                    let assignment = group
                        .members
                        .get(&waiting)
                        .map(|member| member.assignment.clone())
                        .unwrap_or_default();
                    let _ = waiter.send(Ok(assignment));
                }
            }
            receiver
        };
        waiter.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    pub fn heartbeat(&self, group_id: &str, member_id: &str, instance_id: Option<&str>, generation_id: i32) -> Result<(), GroupError> {
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
        group.check_member(member_id, instance_id)?;
        if let Some(member) = group.members.get_mut(member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        match group.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ if generation_id != group.generation_id => Err(GroupError::IllegalGeneration),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for each (member id, instance id); returns one result per member.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
        let mut results = Vec::with_capacity(members.len());
        let mut left = false;
        for (member_id, instance_id) in members {
            // A static member may leave by instance id alone.
            let resolved = match (member_id.is_empty(), instance_id) {
                (true, Some(instance)) => group.static_members.get(instance).cloned(),
                _ => Some(member_id.clone()),
            };
            let result = match resolved {
                Some(id) => group.check_member(&id, instance_id.as_deref()).map(|()| {
                    group.remove_member(&id);
                    group.join_waiters.retain(|(waiting, _)| waiting != &id);
                    left = true;
                }),
                None => Err(GroupError::UnknownMemberId),
            };
            results.push(result);
        }
        if left {
            // The others rejoin; with nobody left the group becomes Empty at once.
            group.prepare_rebalance(now_ms);
            group.maybe_complete_join(now_ms);
        }
        Ok(results)
    }

    /// Expires sessions and completes rebalances whose time has come. Call
    /// periodically ([`GroupCoordinator::run_timers`]) or by hand in tests.
    pub fn tick(&self) {
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        for group in groups.values_mut() {
            let expired = group.expire_sessions(now_ms);
            if !expired.is_empty() {
                tracing::info!(group = group.id, members = ?expired, "session timeout expired; rebalancing");
            }
            group.maybe_complete_join(now_ms);
        }
        drop(groups);
        self.expire_consumer_members(now_ms);
    }

    /// Runs [`GroupCoordinator::tick`] every 50 ms until `shutdown` turns true.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(50));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.tick(),
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// TxnOffsetCommit's check of the member it names, as Kafka's
    /// `validateOffsetCommit` for a transactional commit: one that names a
    /// member, an instance or a generation must come from a current member
    /// of the group's current generation (UNKNOWN_MEMBER_ID,
    /// FENCED_INSTANCE_ID, ILLEGAL_GENERATION otherwise — a zombie of an
    /// earlier generation cannot commit); one that names none (a producer
    /// outside the group protocol, or TxnOffsetCommit before v3) passes.
    pub(crate) fn check_transactional_committer(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        if generation_id < 0 && member_id.is_empty() && instance_id.is_none() {
            return Ok(());
        }
        let groups = self.groups.lock();
        let group = groups.get(group_id).ok_or(GroupError::UnknownMemberId)?;
        group.check_member(member_id, instance_id)?;
        if generation_id != group.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// Commits offsets durably. `member` is `None` for a commit from outside
    /// the group protocol (generation -1), allowed only when the group has no
    /// members, as Kafka does.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        member: Option<(&str, Option<&str>, i32)>,
        commits: Vec<OffsetCommit>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        {
            let mut groups = self.groups.lock();
            let group = groups.entry(group_id.to_owned()).or_insert_with(|| Group::new(group_id));
            match member {
                None => {
                    if !group.members.is_empty() {
                        return Err(GroupError::UnknownMemberId);
                    }
                }
                Some((member_id, instance_id, generation_id)) => {
                    group.check_member(member_id, instance_id)?;
                    if group.state == GroupState::PreparingRebalance {
                        return Err(GroupError::RebalanceInProgress);
                    }
                    if generation_id != group.generation_id {
                        return Err(GroupError::IllegalGeneration);
                    }
                    let now_ms = self.clock.now_ms();
                    if let Some(member) = group.members.get_mut(member_id) {
                        member.last_heartbeat_ms = now_ms;
                    }
                }
            }
        }
        self.write_offsets(group_id, commits).await
    }

    /// Stores checked commits of one group (the classic and the KIP-848
    /// commit paths share it).
    pub(super) async fn write_offsets(
        &self,
        group_id: &str,
        commits: Vec<OffsetCommit>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let now_ms = self.clock.now_ms();
        let mut results = Vec::with_capacity(commits.len());
        let mut changes = Vec::new();
        for commit in commits {
            let metadata = commit.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_bytes_max {
                results.push(Err(GroupError::OffsetMetadataTooLarge(metadata.len())));
                continue;
            }
            changes.push((
                (group_id.to_owned(), commit.topic, commit.partition),
                Some(CommittedOffset {
                    offset: commit.offset,
                    leader_epoch: commit.leader_epoch,
                    metadata,
                    commit_ms: now_ms,
                }),
            ));
            results.push(Ok(()));
        }
        self.offsets.write(changes).await?;
        Ok(results)
    }

    /// Deletes an empty group and its offsets.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        let exists_with_offsets = !self.offsets.of_group(group_id).is_empty();
        {
            let mut groups = self.groups.lock();
            // A KIP-848 group with members is not empty either; an empty one goes.
            let was_consumer_group = self.is_consumer_group(group_id);
            if self.consumer_group_in_use(group_id) {
                return Err(GroupError::NonEmptyGroup(group_id.to_owned()));
            }
            match groups.get(group_id) {
                Some(group) if !group.members.is_empty() => return Err(GroupError::NonEmptyGroup(group_id.to_owned())),
                Some(_) => {
                    groups.remove(group_id);
                }
                None if exists_with_offsets || was_consumer_group => {}
                None => return Err(GroupError::GroupIdNotFound(group_id.to_owned())),
            }
        }
        let deletions = self
            .offsets
            .of_group(group_id)
            .into_iter()
            .map(|(topic, partition, _)| ((group_id.to_owned(), topic, partition), None))
            .collect();
        self.offsets.write(deletions).await?;
        Ok(())
    }

    /// Deletes the committed offsets of some partitions (OffsetDelete). Fails
    /// for a topic the group's members are subscribed to (per `subscribed`).
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, u32)>,
        subscribed: impl Fn(&[Bytes]) -> Vec<String>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let active_topics: HashSet<String> = {
            let groups = self.groups.lock();
            match groups.get(group_id) {
                Some(group) => {
                    let protocol = group.protocol_name.clone().unwrap_or_default();
                    let metadata: Vec<Bytes> = group.members.values().map(|member| member.metadata_for(&protocol)).collect();
                    subscribed(&metadata).into_iter().collect()
                }
                None if !self.offsets.of_group(group_id).is_empty() => HashSet::new(),
                None => return Err(GroupError::GroupIdNotFound(group_id.to_owned())),
            }
        };
        let mut results = Vec::with_capacity(partitions.len());
        let mut deletions = Vec::new();
        for (topic, partition) in partitions {
            if active_topics.contains(&topic) {
                results.push(Err(GroupError::GroupSubscribedToTopic(topic)));
            } else {
                deletions.push(((group_id.to_owned(), topic, partition), None));
                results.push(Ok(()));
            }
        }
        self.offsets.write(deletions).await?;
        Ok(results)
    }

    /// A group's description; an unknown group is "Dead" with no members, as Kafka shows it.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        if let Some(description) = self.describe_consumer_group(group_id) {
            return description;
        }
        let groups = self.groups.lock();
        match groups.get(group_id) {
            Some(group) => group.describe(),
            None => GroupDescription {
                group_id: group_id.to_owned(),
                group_type: GroupType::Classic,
                state: if self.offsets.of_group(group_id).is_empty() {
                    GroupState::Dead
                } else {
                    GroupState::Empty
                },
                protocol_type: String::new(),
                protocol_name: String::new(),
                generation_id: 0,
                members: Vec::new(),
            },
        }
    }

    /// Every known group (with members, or with committed offsets).
    pub fn list(&self) -> Vec<GroupDescription> {
        let mut descriptions: BTreeMap<String, GroupDescription> = {
            let groups = self.groups.lock();
            groups
                .values()
                .filter(|group| group.state != GroupState::Dead)
                .map(|group| (group.id.clone(), group.describe()))
                .collect()
        };
        for description in self.list_consumer_groups() {
            descriptions.insert(description.group_id.clone(), description);
        }
        for group_id in self.offsets.groups() {
            descriptions.entry(group_id.clone()).or_insert_with(|| GroupDescription {
                group_id,
                group_type: GroupType::Classic,
                state: GroupState::Empty,
                protocol_type: "consumer".to_owned(),
                protocol_name: String::new(),
                generation_id: 0,
                members: Vec::new(),
            });
        }
        descriptions.into_values().collect()
    }

    /// Wakes every waiting join and sync with "not available" (shutdown).
    pub fn shutdown(&self) {
        let mut groups = self.groups.lock();
        for group in groups.values_mut() {
            for (_, waiter) in group.join_waiters.drain(..) {
                let _ = waiter.send(Err(GroupError::CoordinatorNotAvailable));
            }
            for (_, waiter) in group.sync_waiters.drain(..) {
                let _ = waiter.send(Err(GroupError::CoordinatorNotAvailable));
            }
        }
    }
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;

    struct Fixture {
        coordinator: Arc<GroupCoordinator>,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let offsets = OffsetStore::open(dir.path(), clock.clone()).expect("offsets");
        let coordinator = Arc::new(GroupCoordinator::new(
            offsets,
            consumer_group_store(dir.path(), &clock),
            clock.clone(),
            GroupConfig::default(),
        ));
        Fixture {
            coordinator,
            clock,
            _dir: dir,
        }
    }

    /// A classic-protocol JoinGroup of group "g" (metadata `meta-{member_id}`).
    /// The KIP-848 groups' store of a coordinator whose offsets are in `dir`.
    pub(crate) fn consumer_group_store(dir: &std::path::Path, clock: &Arc<ManualClock>) -> ConsumerGroupStore {
        ConsumerGroupStore::open(&dir.join("consumer-groups"), clock.clone()).expect("consumer groups")
    }

    pub(crate) fn join_request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|name| (name.to_string(), Bytes::from(format!("meta-{member_id}"))))
                .collect(),
            require_known_member_id: true,
        }
    }

    /// Joins with the MEMBER_ID_REQUIRED round trip, returning the pending join.
    async fn join(fixture: &Fixture, protocols: &[&str]) -> tokio::task::JoinHandle<Result<JoinResult, GroupError>> {
        let member_id = match fixture.coordinator.join(join_request("", protocols)).await {
            Err(GroupError::MemberIdRequired(id)) => id,
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        };
        let coordinator = Arc::clone(&fixture.coordinator);
        let request = join_request(&member_id, protocols);
        let handle = tokio::spawn(async move { coordinator.join(request).await });
        tokio::task::yield_now().await;
        handle
    }

    /// The first member of group "g": joined past the initial rebalance
    /// delay and synced (generation 1, stable).
    async fn join_alone(fixture: &Fixture) -> JoinResult {
        let first = join(fixture, &["range"]).await;
        pass(fixture, 400);
        let first = first.await.expect("task").expect("join");
        fixture
            .coordinator
            .sync("g", &first.member_id, None, 1, Vec::new())
            .await
            .expect("sync");
        first
    }

    /// Two members of group "g" joined together, past the initial
    /// rebalance delay (generation 1, not synced yet).
    async fn join_two(fixture: &Fixture) -> (JoinResult, JoinResult) {
        let first = join(fixture, &["range"]).await;
        let second = join(fixture, &["range"]).await;
        pass(fixture, 400);
        (
            first.await.expect("task").expect("join"),
            second.await.expect("task").expect("join"),
        )
    }

    /// Moves time past the initial rebalance delay and runs the timers.
    fn pass(fixture: &Fixture, ms: i64) {
        fixture.clock.advance_ms(ms);
        fixture.coordinator.tick();
    }

    #[tokio::test]
    async fn joins_past_the_group_size_and_group_count_limits_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let offsets = OffsetStore::open(dir.path(), clock.clone()).expect("offsets");
        let limits = Arc::new(Limits::new(crate::limits::LimitsConfig {
            groups_max: 1,
            group_members_max: 2,
            ..crate::limits::LimitsConfig::default()
        }));
        let config = GroupConfig {
            limits: Arc::clone(&limits),
            ..GroupConfig::default()
        };
        let coordinator = GroupCoordinator::new(offsets, consumer_group_store(dir.path(), &clock), clock, config);
        for _ in 0..2 {
            let joined = coordinator.join(join_request("", &["range"])).await;
            assert!(matches!(joined, Err(GroupError::MemberIdRequired(_))), "{joined:?}");
        }
        // Pending members count: a third MEMBER_ID_REQUIRED round would grow the group past 2.
        let third = coordinator.join(join_request("", &["range"])).await;
        assert!(
            matches!(&third, Err(GroupError::GroupMaxSizeReached(text)) if text.contains("group_members_max")),
            "{third:?}"
        );
        let other_group = JoinRequest {
            group_id: "h".into(),
            ..join_request("", &["range"])
        };
        let refused = coordinator.join(other_group).await;
        assert!(
            matches!(&refused, Err(GroupError::GroupMaxSizeReached(text)) if text.contains("groups_max")),
            "{refused:?}"
        );
        assert_eq!(limits.reached_total(Limit::GroupMembers), 1);
        assert_eq!(limits.reached_total(Limit::Groups), 1);
    }

    #[tokio::test]
    async fn two_members_rebalance_once_and_each_gets_its_assignment() {
        let fixture = fixture();
        let first = join(&fixture, &["range", "roundrobin"]).await;
        let second = join(&fixture, &["roundrobin", "range"]).await;
        pass(&fixture, 400);
        let first = first.await.expect("task").expect("join");
        let second = second.await.expect("task").expect("join");
        assert_eq!(first.generation_id, 1);
        assert_eq!(second.generation_id, 1);
        assert_eq!(first.leader_id, first.member_id, "the first to join leads");
        assert_eq!(first.members.len(), 2, "the leader sees every member");
        assert!(second.members.is_empty(), "followers see none");
        // One vote each; the tie goes to the first protocol in the members' order.
        assert_eq!(first.protocol_name, "range");
        let coordinator = Arc::clone(&fixture.coordinator);
        let follower_id = second.member_id.clone();
        let follower = tokio::spawn(async move { coordinator.sync("g", &follower_id, None, 1, Vec::new()).await });
        tokio::task::yield_now().await;
        let assignments = vec![
            (first.member_id.clone(), Bytes::from_static(b"a")),
            (second.member_id.clone(), Bytes::from_static(b"b")),
        ];
        let mine = fixture
            .coordinator
            .sync("g", &first.member_id, None, 1, assignments)
            .await
            .expect("leader sync");
        assert_eq!(mine, Bytes::from_static(b"a"));
        assert_eq!(follower.await.expect("task").expect("follower sync"), Bytes::from_static(b"b"));
        assert_eq!(fixture.coordinator.heartbeat("g", &second.member_id, None, 1), Ok(()));
        assert_eq!(
            fixture.coordinator.heartbeat("g", &second.member_id, None, 0),
            Err(GroupError::IllegalGeneration)
        );
        let description = fixture.coordinator.describe("g");
        assert_eq!(description.state, GroupState::Stable);
        assert_eq!(description.members.len(), 2);
        assert_eq!(description.members[1].assignment, Bytes::from_static(b"b"));
    }

    #[tokio::test]
    async fn a_transactional_commit_must_come_from_a_current_member_of_the_current_generation() {
        let fixture = fixture();
        let joining = join(&fixture, &["range"]).await;
        pass(&fixture, 400);
        let joined = joining.await.expect("task").expect("join");
        let check = |member: &str, generation| fixture.coordinator.check_transactional_committer("g", member, None, generation);
        assert_eq!(check(&joined.member_id, joined.generation_id), Ok(()));
        assert_eq!(check("", -1), Ok(()), "a producer outside the group protocol names no member");
        assert_eq!(
            check(&joined.member_id, joined.generation_id - 1),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(check("zombie", joined.generation_id), Err(GroupError::UnknownMemberId));
        assert_eq!(
            fixture
                .coordinator
                .check_transactional_committer("nobody-here", &joined.member_id, None, 1),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[tokio::test]
    async fn an_expired_session_removes_the_member_and_the_other_rebalances() {
        let fixture = fixture();
        let (first, second) = join_two(&fixture).await;
        let assignments = vec![(first.member_id.clone(), Bytes::from_static(b"a"))];
        fixture
            .coordinator
            .sync("g", &first.member_id, None, 1, assignments)
            .await
            .expect("sync");
        // Only the first keeps heartbeating.
        for _ in 0..11 {
            fixture.clock.advance_ms(1_000);
            fixture.coordinator.heartbeat("g", &first.member_id, None, 1).ok();
            fixture.coordinator.tick();
        }
        assert_eq!(
            fixture.coordinator.heartbeat("g", &first.member_id, None, 1),
            Err(GroupError::RebalanceInProgress)
        );
        assert_eq!(
            fixture.coordinator.heartbeat("g", &second.member_id, None, 1),
            Err(GroupError::UnknownMemberId)
        );
        let rejoined = fixture
            .coordinator
            .join(join_request(&first.member_id, &["range"]))
            .await
            .expect("rejoin");
        assert_eq!(rejoined.generation_id, 2);
        assert_eq!(rejoined.members.len(), 1);
    }

    #[tokio::test]
    async fn a_member_that_does_not_rejoin_is_expired_during_a_rebalance_after_its_session_timeout() {
        let fixture = fixture();
        let (first, second) = join_two(&fixture).await;
        fixture
            .coordinator
            .sync("g", &first.member_id, None, 1, Vec::new())
            .await
            .expect("sync");
        // A third member starts a rebalance; the second is killed before it rejoins.
        let third = join(&fixture, &["range"]).await;
        assert_eq!(fixture.coordinator.describe("g").state, GroupState::PreparingRebalance);
        let coordinator = Arc::clone(&fixture.coordinator);
        let request = join_request(&first.member_id, &["range"]);
        let first_again = tokio::spawn(async move { coordinator.join(request).await });
        tokio::task::yield_now().await;
        // The session timeout is 10 s, the rebalance timeout 30 s: the round
        // completes without the second member after the former.
        for _ in 0..11 {
            assert!(!third.is_finished(), "the round waits for the second member's session");
            pass(&fixture, 1_000);
        }
        for _ in 0..100 {
            if third.is_finished() && first_again.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            third.is_finished() && first_again.is_finished(),
            "the round completed without the member that did not rejoin"
        );
        let third = third.await.expect("task").expect("join");
        let first_again = first_again.await.expect("task").expect("rejoin");
        assert_eq!((third.generation_id, first_again.generation_id), (2, 2));
        let leader = if first_again.members.is_empty() { &third } else { &first_again };
        let members: Vec<&String> = leader.members.iter().map(|(id, _, _)| id).collect();
        assert_eq!(members, vec![&first.member_id, &third.member_id]);
        assert_eq!(
            fixture.coordinator.heartbeat("g", &second.member_id, None, 1),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[tokio::test]
    async fn a_pending_member_id_expires_after_the_session_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let offsets = OffsetStore::open(dir.path(), clock.clone()).expect("offsets");
        let limits = Arc::new(Limits::new(crate::limits::LimitsConfig {
            group_members_max: 2,
            ..crate::limits::LimitsConfig::default()
        }));
        let config = GroupConfig {
            limits,
            ..GroupConfig::default()
        };
        let fixture = Fixture {
            coordinator: Arc::new(GroupCoordinator::new(
                offsets,
                consumer_group_store(dir.path(), &clock),
                clock.clone(),
                config,
            )),
            clock,
            _dir: dir,
        };
        let first = join_alone(&fixture).await;
        // A client asks for a member id and never comes back: the group is full.
        let abandoned = fixture.coordinator.join(join_request("", &["range"])).await;
        assert!(matches!(abandoned, Err(GroupError::MemberIdRequired(_))), "{abandoned:?}");
        let refused = fixture.coordinator.join(join_request("", &["range"])).await;
        assert!(matches!(refused, Err(GroupError::GroupMaxSizeReached(_))), "{refused:?}");
        // The first member heartbeats; after the session timeout the pending id is gone.
        for _ in 0..11 {
            pass(&fixture, 1_000);
            assert_eq!(fixture.coordinator.heartbeat("g", &first.member_id, None, 1), Ok(()));
        }
        let again = fixture.coordinator.join(join_request("", &["range"])).await;
        assert!(matches!(again, Err(GroupError::MemberIdRequired(_))), "room again: {again:?}");
    }

    #[tokio::test]
    async fn a_member_waiting_for_the_rebalance_to_complete_is_not_expired() {
        let fixture = fixture();
        let first = join_alone(&fixture).await;
        // The second member joins and waits; the first keeps heartbeating
        // (busy, it does not rejoin) until the 30 s rebalance timeout.
        let second = join(&fixture, &["range"]).await;
        for _ in 0..29 {
            pass(&fixture, 1_000);
            assert_eq!(
                fixture.coordinator.heartbeat("g", &first.member_id, None, 1),
                Err(GroupError::RebalanceInProgress)
            );
        }
        assert!(!second.is_finished(), "the round waits for the rebalance timeout");
        pass(&fixture, 1_000);
        let second = second.await.expect("task").expect("join past its session timeout");
        assert_eq!(second.generation_id, 2);
        assert_eq!(second.leader_id, second.member_id);
        assert_eq!(second.members.len(), 1, "the member that did not rejoin is out");
    }

    #[tokio::test]
    async fn a_static_member_restarting_keeps_its_assignment_without_a_rebalance() {
        let fixture = fixture();
        let mut request = join_request("", &["range"]);
        request.group_instance_id = Some("instance-1".into());
        let coordinator = Arc::clone(&fixture.coordinator);
        let pending = tokio::spawn({
            let request = request.clone();
            async move { coordinator.join(request).await }
        });
        tokio::task::yield_now().await;
        pass(&fixture, 400);
        let joined = pending.await.expect("task").expect("join");
        fixture
            .coordinator
            .sync(
                "g",
                &joined.member_id,
                Some("instance-1"),
                1,
                vec![(joined.member_id.clone(), Bytes::from_static(b"mine"))],
            )
            .await
            .expect("sync");
        // The process restarts: same instance id, no member id.
        let again = fixture.coordinator.join(request).await.expect("rejoin");
        assert_eq!(again.generation_id, 1, "no rebalance");
        assert_ne!(again.member_id, joined.member_id);
        let assignment = fixture
            .coordinator
            .sync("g", &again.member_id, Some("instance-1"), 1, Vec::new())
            .await
            .expect("sync");
        assert_eq!(assignment, Bytes::from_static(b"mine"));
        // The old incarnation is fenced.
        assert_eq!(
            fixture.coordinator.heartbeat("g", &joined.member_id, Some("instance-1"), 1),
            Err(GroupError::FencedInstanceId)
        );
    }

    #[tokio::test]
    async fn incompatible_protocols_and_bad_timeouts_are_refused() {
        let fixture = fixture();
        let first = join(&fixture, &["range"]).await;
        pass(&fixture, 400);
        first.await.expect("task").expect("join");
        let mut other = join_request("", &["cooperative-sticky"]);
        other.require_known_member_id = false;
        assert_eq!(fixture.coordinator.join(other).await, Err(GroupError::InconsistentGroupProtocol));
        let mut short = join_request("", &["range"]);
        short.session_timeout_ms = 10;
        assert_eq!(fixture.coordinator.join(short).await, Err(GroupError::InvalidSessionTimeout(10)));
    }

    #[tokio::test]
    async fn commits_need_the_current_generation_and_survive_in_the_store() {
        let fixture = fixture();
        let joined = join_alone(&fixture).await;
        let commit = || {
            vec![OffsetCommit {
                topic: "t".into(),
                partition: 0,
                offset: 42,
                leader_epoch: -1,
                metadata: Some("note".into()),
            }]
        };
        assert_eq!(
            fixture
                .coordinator
                .commit_offsets("g", Some((&joined.member_id, None, 7)), commit())
                .await
                .err(),
            Some(GroupError::IllegalGeneration)
        );
        assert_eq!(
            fixture.coordinator.commit_offsets("g", None, commit()).await.err(),
            Some(GroupError::UnknownMemberId)
        );
        let results = fixture
            .coordinator
            .commit_offsets("g", Some((&joined.member_id, None, 1)), commit())
            .await
            .expect("commit");
        assert_eq!(results, vec![Ok(())]);
        assert_eq!(
            fixture.coordinator.offsets().get("g", "t", 0).map(|committed| committed.offset),
            Some(42)
        );
        assert_eq!(
            fixture.coordinator.delete_group("g").await,
            Err(GroupError::NonEmptyGroup("g".into()))
        );
        fixture.coordinator.leave("g", &[(joined.member_id.clone(), None)]).expect("leave");
        assert_eq!(fixture.coordinator.describe("g").state, GroupState::Empty);
        fixture.coordinator.delete_group("g").await.expect("delete");
        assert_eq!(fixture.coordinator.offsets().get("g", "t", 0), None);
        assert_eq!(fixture.coordinator.describe("g").state, GroupState::Dead);
    }
}
