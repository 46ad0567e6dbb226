//! One consumer group's membership as the coordinator keeps it: its members
//! (protocols, session and rebalance timeouts, assignment), generation,
//! leader and the joins and syncs waiting for the rebalance to complete;
//! choosing the protocol and completing a join round. The coordinator
//! (`coordinator.rs`) owns the groups, the clock and the offsets.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::coordinator::{GroupDescription, GroupError, GroupState, GroupType, JoinResult, MemberDescription};

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) assignment: Bytes,
    pub(super) last_heartbeat_ms: i64,
    /// Joined (or rejoined) during the current rebalance.
    pub(super) joined: bool,
    pub(super) join_order: u64,
}

impl Member {
    pub(super) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

pub(super) type JoinWaiter = oneshot::Sender<Result<JoinResult, GroupError>>;
pub(super) type SyncWaiter = oneshot::Sender<Result<Bytes, GroupError>>;

#[derive(Debug)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined with, each
    /// with the time it expires (the join's session timeout from then on, as
    /// Kafka expires pending members).
    pub(super) pending_member_ids: HashMap<String, i64>,
    /// group.instance.id → member id.
    pub(super) static_members: HashMap<String, String>,
    /// When the current rebalance gives up on members that have not rejoined.
    pub(super) rebalance_deadline_ms: i64,
    /// The first rebalance of an empty group waits at least until then.
    pub(super) join_not_before_ms: i64,
    pub(super) join_waiters: Vec<(String, JoinWaiter)>,
    pub(super) sync_waiters: Vec<(String, SyncWaiter)>,
    pub(super) next_join_order: u64,
}

impl Group {
    pub(super) fn new(id: &str) -> Group {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_member_ids: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            join_not_before_ms: 0,
            join_waiters: Vec::new(),
            sync_waiters: Vec::new(),
            next_join_order: 0,
        }
    }

    pub(super) fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if let Some(instance) = instance_id
            && let Some(owner) = self.static_members.get(instance)
            && owner != member_id
        {
            return Err(GroupError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        Ok(())
    }

    /// The protocol every member supports with the most votes (each member
    /// votes for its most preferred protocol among the common ones).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let mut in_join_order: Vec<&Member> = self.members.values().collect();
        in_join_order.sort_by_key(|member| member.join_order);
        let mut common: Option<Vec<String>> = None;
        for member in &in_join_order {
            let names: Vec<String> = member.protocols.iter().map(|(name, _)| name.clone()).collect();
            common = Some(match common {
                None => names,
                Some(previous) => previous.into_iter().filter(|name| names.contains(name)).collect(),
            });
        }
        let common = common?;
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(name, _)| common.contains(name)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        // Most votes; ties go to the earliest member's preference.
        common
            .iter()
            .max_by_key(|name| {
                (
                    votes.get(name).copied().unwrap_or(0),
                    std::cmp::Reverse(common.iter().position(|other| other == *name)),
                )
            })
            .cloned()
    }

    pub(super) fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        // Every member must share at least one protocol with the newcomer.
        self.members.values().all(|member| {
            member
                .protocols
                .iter()
                .any(|(name, _)| protocols.iter().any(|(other, _)| other == name))
        })
    }

    pub(super) fn prepare_rebalance(&mut self, now_ms: i64) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        // Members waiting for their assignment must rejoin instead.
        for (_, waiter) in self.sync_waiters.drain(..) {
            let _ = waiter.send(Err(GroupError::RebalanceInProgress));
        }
        let timeout = self
            .members
            .values()
            .map(|member| i64::from(member.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.rebalance_deadline_ms = now_ms + timeout;
        self.state = GroupState::PreparingRebalance;
        for member in self.members.values_mut() {
            member.joined = false;
        }
    }

    pub(super) fn remove_member(&mut self, member_id: &str) {
        if let Some(member) = self.members.remove(member_id)
            && let Some(instance) = member.instance_id
        {
            self.static_members.remove(&instance);
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = None;
        }
    }

    /// Kafka's `onExpireHeartbeat`, in every state: removes the pending
    /// member ids and the members whose session timed out, and returns the
    /// members removed. A member that rejoined during the current rebalance
    /// is waiting for it to complete and needs no heartbeat; every other
    /// member, including one that has not rejoined yet, must heartbeat
    /// within its session timeout, or a member killed during a rebalance
    /// would hold its group in PreparingRebalance until the rebalance
    /// timeout (`max.poll.interval.ms`). A Stable or CompletingRebalance
    /// group that loses a member rebalances; a rebalancing one completes
    /// without it at the next [`Group::maybe_complete_join`].
    pub(super) fn expire_sessions(&mut self, now_ms: i64) -> Vec<String> {
        self.pending_member_ids.retain(|_, expires_at_ms| *expires_at_ms > now_ms);
        let rebalancing = self.state == GroupState::PreparingRebalance;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| !(rebalancing && member.joined))
            .filter(|member| now_ms - member.last_heartbeat_ms > i64::from(member.session_timeout_ms))
            .map(|member| member.id.clone())
            .collect();
        if expired.is_empty() {
            return expired;
        }
        for member_id in &expired {
            self.remove_member(member_id);
        }
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(now_ms);
        }
        expired
    }

    /// Completes the rebalance if every member rejoined (and the initial
    /// delay passed), or if the rebalance timeout expired.
    pub(super) fn maybe_complete_join(&mut self, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|member| member.joined);
        let expired = now_ms >= self.rebalance_deadline_ms;
        let ready = all_joined && now_ms >= self.join_not_before_ms;
        if !(ready || expired) {
            return;
        }
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|member| !member.joined)
            .map(|member| member.id.clone())
            .collect();
        for member_id in absent {
            self.remove_member(&member_id);
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader_id = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        let leader = match &self.leader_id {
            Some(leader) if self.members.contains_key(leader) => leader.clone(),
            _ => self
                .members
                .values()
                .min_by_key(|member| member.join_order)
                .map(|member| member.id.clone())
                .unwrap_or_default(),
        };
        self.leader_id = Some(leader.clone());
        self.state = GroupState::CompletingRebalance;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members: Vec<(String, Option<String>, Bytes)> = {
            let mut ordered: Vec<&Member> = self.members.values().collect();
            ordered.sort_by_key(|member| member.join_order);
            ordered
                .into_iter()
                .map(|member| (member.id.clone(), member.instance_id.clone(), member.metadata_for(&protocol)))
                .collect()
        };
        for member in self.members.values_mut() {
            member.joined = false;
            member.last_heartbeat_ms = now_ms;
            member.assignment = Bytes::new();
        }
        for (member_id, waiter) in self.join_waiters.drain(..) {
            let result = JoinResult {
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocol_name: protocol.clone(),
                leader_id: leader.clone(),
                members: if member_id == leader { members.clone() } else { Vec::new() },
                member_id,
            };
            let _ = waiter.send(Ok(result));
        }
    }

    pub(super) fn describe(&self) -> GroupDescription {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|member| member.join_order);
        GroupDescription {
            group_id: self.id.clone(),
            group_type: GroupType::Classic,
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            // Kafka shows the protocol only once it is in use.
            protocol_name: if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
                protocol.clone()
            } else {
                String::new()
            },
            generation_id: self.generation_id,
            members: members
                .into_iter()
                .map(|member| MemberDescription {
                    member_id: member.id.clone(),
                    group_instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    metadata: if self.state == GroupState::Stable {
                        member.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if self.state == GroupState::Stable {
                        member.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }
}
