//! One KIP-848 consumer group as a pure state machine (heartbeats and time
//! in, member epochs and assignments out): the group epoch, bumped when
//! membership, subscriptions or the subscribed topics' partitions change; the
//! target assignment computed by the group's assignor at that epoch; and each
//! member's reconciliation towards its target, revoke before assign (a
//! partition goes to its new owner only once the previous owner's heartbeat
//! no longer reports it). Knows topic ids and partition numbers, nothing of
//! the Kafka wire format, the clock or the offsets.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::assignor::{Assignment, Assignor, AssignorMember, TopicShape};
use super::subscription::{SubscribedRegex, TopicLookup};
use crate::group::coordinator::GroupState;

/// Why a heartbeat was refused. The door maps these to Kafka's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerGroupError {
    #[error("the member id is not known to the group")]
    UnknownMemberId,
    #[error("the member epoch {received} is fenced; the member's epoch is {current}")]
    FencedMemberEpoch { received: i32, current: i32 },
    #[error("the member epoch {received} is stale; the member's epoch is {current}")]
    StaleMemberEpoch { received: i32, current: i32 },
    #[error("assignor {0:?} is not supported")]
    UnsupportedAssignor(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// SubscribedTopicRegex does not compile.
    #[error("{0}")]
    InvalidRegularExpression(String),
    /// The id names a group of the classic protocol.
    #[error("Group {0} is not a consumer group.")]
    GroupIdNotFound(String),
    /// No group of any protocol has this id.
    #[error("Group {0} not found.")]
    GroupNotFound(String),
    /// `group_members_max` (Kafka's `group.consumer.max.size`).
    #[error("{0}")]
    GroupMaxSizeReached(String),
    /// A static member joined with the instance id of a member that has
    /// not left temporarily (epoch -2): KIP-848's UNRELEASED_INSTANCE_ID.
    #[error("Static member with instance id {0} is not released.")]
    UnreleasedInstanceId(String),
    /// The instance id belongs to another member id now.
    #[error("Static member {member_id} with instance id {instance_id} was fenced by member {holder}.")]
    FencedInstanceId {
        member_id: String,
        instance_id: String,
        holder: String,
    },
    #[error("Instance id {0} is unknown.")]
    UnknownInstanceId(String),
    #[error("storing offsets failed: {0}")]
    Storage(String),
}

/// Where a member stands in its reconciliation (KIP-848's member states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Holds its target assignment.
    Stable,
    /// Must stop owning `revoking` before it gets anything new.
    UnrevokedPartitions,
    /// Waits for other members to release partitions of its target.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// [`LEAVE_GROUP_STATIC_MEMBER_EPOCH`] while a static member is away:
    /// it keeps its assignment until it rejoins or its session expires.
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    /// `SubscribedTopicRegex`, if the member subscribes by pattern.
    pub subscribed_regex: Option<SubscribedRegex>,
    /// The existing topics `subscribed_regex` matched at the last refresh.
    pub matched: BTreeSet<String>,
    pub rebalance_timeout_ms: i32,
    /// What the member may own now (revoked partitions excluded).
    pub assigned: Assignment,
    /// What the member must give up before anything new is assigned.
    pub revoking: Assignment,
    pub last_heartbeat_ms: i64,
    /// When a member still holding `revoking` is removed (its rebalance timeout).
    pub revocation_deadline_ms: Option<i64>,
}

/// One ConsumerGroupHeartbeat, in the core's words. `None` fields mean
/// "unchanged since my last heartbeat", as in the protocol.
#[derive(Debug, Clone, Default)]
pub struct ConsumerHeartbeat {
    pub member_id: String,
    /// `group.instance.id`: the member is static.
    pub instance_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `Some("")` clears the member's regex, as Kafka reads an empty one.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub member_id: String,
    pub member_epoch: i32,
    /// `None` after a leave.
    pub assignment: Option<Assignment>,
}

/// The epoch a leaving member sends (and gets back).
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The epoch a static member sends to leave temporarily (and gets back): it
/// stays in the group with its assignment, and a member that joins with the
/// same instance id takes its place without a rebalance.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
    pub assignor: Assignor,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics' shapes the target was computed from.
    pub topics: BTreeMap<String, TopicShape>,
    /// The group's own `consumer.session.timeout.ms`, as of its last
    /// heartbeat (`None`: the broker's).
    pub session_timeout_ms: Option<i64>,
}

impl ConsumerGroup {
    pub fn new(id: &str, assignor: Assignor) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_owned(),
            group_epoch: 0,
            assignment_epoch: 0,
            assignor,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            topics: BTreeMap::new(),
            session_timeout_ms: None,
        }
    }

    /// The state Kafka's admin APIs show for a consumer group.
    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            GroupState::Assigning
        } else if self
            .members
            .values()
            // A static member away (epoch -2) keeps its assignment: it does not hold the group in Reconciling.
            .filter(|member| member.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH)
            .any(|member| member.epoch != self.assignment_epoch || member.state != MemberState::Stable)
        {
            GroupState::Reconciling
        } else {
            GroupState::Stable
        }
    }

    /// Handles one heartbeat at `now_ms`. `new_member_id` names a joining
    /// member that came without an id; `topics` gives the shape of a topic
    /// by name (`None` when it does not exist) and, for regex
    /// subscriptions, the names of all topics.
    pub fn heartbeat(
        &mut self,
        request: ConsumerHeartbeat,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
        topics: &dyn TopicLookup,
    ) -> Result<HeartbeatReply, ConsumerGroupError> {
        if request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH || request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return self.leave(request);
        }
        let regex = match request.subscribed_topic_regex.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(source) => Some(Some(SubscribedRegex::parse(source)?)),
        };
        if let Some(name) = &request.server_assignor {
            self.assignor = Assignor::from_name(name).ok_or_else(|| ConsumerGroupError::UnsupportedAssignor(name.clone()))?;
        }
        // One heartbeat moves the group epoch at most once, whatever changed.
        let mut changed = false;
        let member_id = if request.member_epoch == 0 {
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
                return Err(ConsumerGroupError::InvalidRequest(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.".to_owned(),
                ));
            }
            let member_id = if request.member_id.is_empty() {
                new_member_id()
            } else {
                request.member_id.clone()
            };
            let replaced = match &request.instance_id {
                Some(instance_id) => self.take_over_static_member(instance_id, &member_id)?,
                None => false,
            };
            if !replaced && !self.members.contains_key(&member_id) {
                self.members.insert(member_id.clone(), new_member(&member_id, &request, now_ms));
                changed = true;
            }
            member_id
        } else {
            if let Some(instance_id) = &request.instance_id {
                self.static_member(instance_id, &request.member_id)?;
            }
            let member = self.members.get(&request.member_id).ok_or(ConsumerGroupError::UnknownMemberId)?;
            check_epoch(member, request.member_epoch, request.owned.as_ref())?;
            request.member_id.clone()
        };
        let member = self.members.get_mut(&member_id).ok_or(ConsumerGroupError::UnknownMemberId)?;
        member.last_heartbeat_ms = now_ms;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        if request.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(names) = request.subscribed_topic_names {
            let names: BTreeSet<String> = names.into_iter().collect();
            if names != member.subscribed {
                member.subscribed = names;
                changed = true;
            }
        }
        if let Some(regex) = regex
            && regex != member.subscribed_regex
        {
            member.subscribed_regex = regex;
            changed = true;
        }
        changed |= self.refresh_topics(topics);
        if changed {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&member_id, request.owned.as_ref(), now_ms);
        let member = &self.members[&member_id];
        Ok(HeartbeatReply {
            member_id,
            member_epoch: member.epoch,
            assignment: Some(member.assigned.clone()),
        })
    }

    /// A heartbeat with epoch -1 or -2. A dynamic member, or a static one
    /// sending -1, leaves for good (the group epoch moves); a static member
    /// sending -2 leaves temporarily: it keeps its place and assignment, as
    /// Kafka's consumerGroupStaticMemberGroupLeave does, until a member with
    /// its instance id takes over or its session expires.
    fn leave(&mut self, request: ConsumerHeartbeat) -> Result<HeartbeatReply, ConsumerGroupError> {
        if let Some(instance_id) = &request.instance_id {
            self.static_member(instance_id, &request.member_id)?;
        }
        let temporary = request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH && request.instance_id.is_some();
        if temporary {
            let member = self
                .members
                .get_mut(&request.member_id)
                .ok_or(ConsumerGroupError::UnknownMemberId)?;
            member.previous_epoch = member.epoch;
            member.epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            member.revoking = Assignment::new();
            member.revocation_deadline_ms = None;
        } else {
            if self.members.remove(&request.member_id).is_none() {
                return Err(ConsumerGroupError::UnknownMemberId);
            }
            self.target.remove(&request.member_id);
            self.group_epoch += 1;
        }
        Ok(HeartbeatReply {
            member_id: request.member_id,
            member_epoch: request.member_epoch,
            assignment: None,
        })
    }

    /// The member holding `instance_id`, which must be `member_id`
    /// (Kafka's throwIfStaticMemberIsUnknown and throwIfInstanceIdIsFenced).
    fn static_member(&self, instance_id: &str, member_id: &str) -> Result<&ConsumerMember, ConsumerGroupError> {
        let member = self
            .members
            .values()
            .find(|member| member.instance_id.as_deref() == Some(instance_id))
            .ok_or_else(|| ConsumerGroupError::UnknownInstanceId(instance_id.to_owned()))?;
        if member.id != member_id {
            return Err(ConsumerGroupError::FencedInstanceId {
                member_id: member_id.to_owned(),
                instance_id: instance_id.to_owned(),
                holder: member.id.clone(),
            });
        }
        Ok(member)
    }

    /// A static member joining (epoch 0): if a member that left temporarily
    /// (epoch -2) holds `instance_id`, the newcomer takes its place under
    /// `member_id` with its subscription, assignment and target, and the
    /// group epoch does not move (no rebalance). A holder that has not left
    /// is UNRELEASED_INSTANCE_ID. Returns whether a member was replaced.
    fn take_over_static_member(&mut self, instance_id: &str, member_id: &str) -> Result<bool, ConsumerGroupError> {
        let Some(holder_id) = self
            .members
            .values()
            .find(|member| member.instance_id.as_deref() == Some(instance_id))
            .map(|member| member.id.clone())
        else {
            return Ok(false);
        };
        let Some(holder) = self.members.get(&holder_id) else {
            return Ok(false);
        };
        if holder.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return Err(ConsumerGroupError::UnreleasedInstanceId(instance_id.to_owned()));
        }
        let Some(mut member) = self.members.remove(&holder_id) else {
            return Ok(false);
        };
        member.id = member_id.to_owned();
        member.epoch = 0;
        member.previous_epoch = 0;
        member.state = MemberState::Stable;
        if let Some(target) = self.target.remove(&holder_id) {
            self.target.insert(member_id.to_owned(), target);
        }
        self.members.insert(member_id.to_owned(), member);
        Ok(true)
    }

    /// Removes members whose session expired (no heartbeat for
    /// `session_timeout_ms`) or who held revoked partitions past their
    /// rebalance timeout; returns their ids.
    pub fn expire(&mut self, now_ms: i64, session_timeout_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| {
                now_ms - member.last_heartbeat_ms >= session_timeout_ms
                    || member.revocation_deadline_ms.is_some_and(|deadline| now_ms >= deadline)
            })
            .map(|member| member.id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
            self.target.remove(id);
            self.group_epoch += 1;
        }
        expired
    }

    /// Checks a member's epoch for OffsetCommit/OffsetFetch (v9+), as
    /// Kafka's ConsumerGroup.validateOffsetCommit: the member must exist and
    /// send exactly its current epoch.
    pub fn check_member_epoch(&self, member_id: &str, member_epoch: i32) -> Result<(), ConsumerGroupError> {
        let member = self.members.get(member_id).ok_or(ConsumerGroupError::UnknownMemberId)?;
        if member_epoch != member.epoch {
            return Err(ConsumerGroupError::StaleMemberEpoch {
                received: member_epoch,
                current: member.epoch,
            });
        }
        Ok(())
    }

    /// Whether a subscribed topic appeared, vanished or changed its partition
    /// count since the target was computed, or a member's regex now matches
    /// other topics (either moves the group epoch). Regexes are re-evaluated
    /// against the topics that exist at each heartbeat, so a topic created
    /// or deleted is seen at the next heartbeat of any member.
    fn refresh_topics(&mut self, lookup: &dyn TopicLookup) -> bool {
        let mut changed = false;
        let all_names = if self.members.values().any(|member| member.subscribed_regex.is_some()) {
            lookup.names()
        } else {
            Vec::new()
        };
        for member in self.members.values_mut() {
            let matched = member
                .subscribed_regex
                .as_ref()
                .map(|regex| regex.matching(&all_names))
                .unwrap_or_default();
            if matched != member.matched {
                member.matched = matched;
                changed = true;
            }
        }
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|member| member.subscribed.iter().chain(member.matched.iter()))
            .collect();
        let topics: BTreeMap<String, TopicShape> = names
            .into_iter()
            .filter_map(|name| lookup.shape(name).map(|shape| (name.clone(), shape)))
            .collect();
        if topics != self.topics {
            self.topics = topics;
            changed = true;
        }
        changed
    }

    fn compute_target(&mut self) {
        // A member subscribes to its names and its regex's matches.
        let subscriptions: BTreeMap<&String, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, member)| (id, member.subscribed.union(&member.matched).cloned().collect()))
            .collect();
        let members: BTreeMap<String, AssignorMember<'_>> = self
            .members
            .iter()
            .filter_map(|(id, member)| {
                Some((
                    id.clone(),
                    AssignorMember {
                        subscribed: subscriptions.get(id)?,
                        current: &member.assigned,
                    },
                ))
            })
            .collect();
        self.target = self.assignor.assign(&members, &self.topics);
        self.assignment_epoch = self.group_epoch;
    }

    /// Whether a member other than `member_id` holds (assigned or still
    /// revoking) this partition.
    fn held_by_other(&self, member_id: &str, topic_id: Uuid, partition: i32) -> bool {
        self.members.values().any(|other| {
            other.id != member_id
                && [&other.assigned, &other.revoking]
                    .iter()
                    .any(|held| held.get(&topic_id).is_some_and(|partitions| partitions.contains(&partition)))
        })
    }

    /// Moves one member towards its target (Kafka's CurrentAssignmentBuilder).
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now_ms: i64) {
        let Some(member) = self.members.get(member_id) else {
            return;
        };
        match member.state {
            MemberState::UnrevokedPartitions => {
                // Still revoking until a heartbeat reports owning none of them.
                let released = owned.is_some_and(|owned| intersection(owned, &member.revoking).is_empty());
                if !released {
                    return;
                }
            }
            MemberState::Stable | MemberState::UnreleasedPartitions => {
                if member.epoch == self.assignment_epoch && member.state == MemberState::Stable {
                    return;
                }
            }
        }
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let kept = intersection(&member.assigned, &target);
        let to_revoke = difference(&member.assigned, &target);
        let mut next = kept.clone();
        let mut unreleased = false;
        if to_revoke.is_empty() {
            for (topic_id, partition) in difference(&target, &kept)
                .iter()
                .flat_map(|(id, ps)| ps.iter().map(move |p| (*id, *p)))
            {
                if self.held_by_other(member_id, topic_id, partition) {
                    unreleased = true;
                } else {
                    next.entry(topic_id).or_default().insert(partition);
                }
            }
        }
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        if !to_revoke.is_empty() {
            member.assigned = kept;
            member.revoking = to_revoke;
            member.state = MemberState::UnrevokedPartitions;
            member.revocation_deadline_ms = Some(now_ms + i64::from(member.rebalance_timeout_ms.max(0)));
            return;
        }
        member.assigned = next;
        member.revoking = Assignment::new();
        member.revocation_deadline_ms = None;
        if member.epoch != assignment_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = assignment_epoch;
        }
        member.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }
}

fn new_member(member_id: &str, request: &ConsumerHeartbeat, now_ms: i64) -> ConsumerMember {
    ConsumerMember {
        id: member_id.to_owned(),
        instance_id: request.instance_id.clone(),
        epoch: 0,
        previous_epoch: 0,
        state: MemberState::Stable,
        client_id: request.client_id.clone(),
        client_host: request.client_host.clone(),
        subscribed: BTreeSet::new(),
        subscribed_regex: None,
        matched: BTreeSet::new(),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        assigned: Assignment::new(),
        revoking: Assignment::new(),
        last_heartbeat_ms: now_ms,
        revocation_deadline_ms: None,
    }
}

/// Kafka's throwIfMemberEpochIsInvalid: a newer epoch than the member's is
/// fenced; an older one is accepted only if it is the previous epoch and the
/// member owns nothing beyond its assignment (it missed our last answer).
fn check_epoch(member: &ConsumerMember, received: i32, owned: Option<&Assignment>) -> Result<(), ConsumerGroupError> {
    let fenced = ConsumerGroupError::FencedMemberEpoch {
        received,
        current: member.epoch,
    };
    if received > member.epoch {
        return Err(fenced);
    }
    if received < member.epoch {
        let owns_only_assigned = owned.is_some_and(|owned| difference(owned, &member.assigned).is_empty());
        if received != member.previous_epoch || !owns_only_assigned {
            return Err(fenced);
        }
    }
    Ok(())
}

fn intersection(left: &Assignment, right: &Assignment) -> Assignment {
    left.iter()
        .filter_map(|(id, partitions)| {
            let common: BTreeSet<i32> = right
                .get(id)
                .map(|other| partitions.intersection(other).copied().collect())
                .unwrap_or_default();
            (!common.is_empty()).then_some((*id, common))
        })
        .collect()
}

fn difference(left: &Assignment, right: &Assignment) -> Assignment {
    left.iter()
        .filter_map(|(id, partitions)| {
            let rest: BTreeSet<i32> = match right.get(id) {
                Some(other) => partitions.difference(other).copied().collect(),
                None => partitions.clone(),
            };
            (!rest.is_empty()).then_some((*id, rest))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::group::consumer_protocol::subscription::fixtures::{OneTopic, TOPIC};

    fn partitions(list: &[i32]) -> Assignment {
        if list.is_empty() {
            return Assignment::new();
        }
        [(TOPIC, list.iter().copied().collect())].into()
    }

    /// A heartbeat of member `id` (static with `instance_id`), subscribing
    /// to topic `t` when it joins (epoch 0).
    fn member_beat(
        group: &mut ConsumerGroup,
        id: &str,
        instance_id: Option<&str>,
        epoch: i32,
        owned: Option<&[i32]>,
        now_ms: i64,
    ) -> Result<HeartbeatReply, ConsumerGroupError> {
        let request = ConsumerHeartbeat {
            member_id: id.to_owned(),
            instance_id: instance_id.map(str::to_owned),
            member_epoch: epoch,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_owned()]),
            owned: owned.map(partitions),
            ..ConsumerHeartbeat::default()
        };
        group.heartbeat(request, now_ms, || format!("generated-{id}"), &OneTopic)
    }

    fn beat(
        group: &mut ConsumerGroup,
        id: &str,
        epoch: i32,
        owned: Option<&[i32]>,
        now_ms: i64,
    ) -> Result<HeartbeatReply, ConsumerGroupError> {
        member_beat(group, id, None, epoch, owned, now_ms)
    }

    fn assigned(reply: &HeartbeatReply) -> Vec<i32> {
        reply
            .assignment
            .as_ref()
            .and_then(|assignment| assignment.get(&TOPIC))
            .map(|partitions| partitions.iter().copied().collect())
            .unwrap_or_default()
    }

    #[test]
    fn first_member_gets_every_partition_at_epoch_one() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let reply = beat(&mut group, "", 0, Some(&[]), 0).expect("heartbeat accepted");
        assert_eq!(reply.member_id, "generated-");
        assert_eq!(reply.member_epoch, 1);
        assert_eq!(assigned(&reply), vec![0, 1, 2, 3]);
        assert_eq!(group.state(), GroupState::Stable);
    }

    #[test]
    fn a_partition_moves_only_after_its_previous_owner_stops_reporting_it() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let a = beat(&mut group, "a", 0, Some(&[]), 0).expect("heartbeat accepted");
        assert_eq!(assigned(&a), vec![0, 1, 2, 3]);
        let a_epoch = a.member_epoch;

        // b joins: the group epoch moves, but a still owns 2 and 3, so b gets nothing yet.
        let b = beat(&mut group, "b", 0, Some(&[]), 10).expect("heartbeat accepted");
        assert!(assigned(&b).is_empty());
        assert!(b.member_epoch > a_epoch);
        assert_eq!(group.state(), GroupState::Reconciling);

        // a is told to keep 0 and 1 (revoke 2 and 3) at its old epoch.
        let a = beat(&mut group, "a", a_epoch, Some(&[0, 1, 2, 3]), 20).expect("heartbeat accepted");
        assert_eq!(assigned(&a), vec![0, 1]);
        assert_eq!(a.member_epoch, a_epoch, "no new epoch before the revocation is done");

        // While a still reports 2, b still waits.
        let b2 = beat(&mut group, "b", b.member_epoch, Some(&[]), 30).expect("heartbeat accepted");
        assert!(assigned(&b2).is_empty());
        let a = beat(&mut group, "a", a_epoch, Some(&[0, 1, 2]), 40).expect("heartbeat accepted");
        assert_eq!(a.member_epoch, a_epoch);

        // a reports it revoked: it moves to the new epoch, and then b gets 2 and 3.
        let a = beat(&mut group, "a", a_epoch, Some(&[0, 1]), 50).expect("heartbeat accepted");
        assert_eq!(a.member_epoch, b.member_epoch);
        let b3 = beat(&mut group, "b", b.member_epoch, Some(&[]), 60).expect("heartbeat accepted");
        assert_eq!(assigned(&b3), vec![2, 3]);
        assert_eq!(group.state(), GroupState::Stable);
    }

    fn two_stable_members(group: &mut ConsumerGroup) -> (HeartbeatReply, HeartbeatReply) {
        settled_members(group, None)
    }

    /// a (static with `a_instance`, else dynamic) and b (dynamic) hold two
    /// partitions each: a, assigned all four first, gives two up.
    fn settled_members(group: &mut ConsumerGroup, a_instance: Option<&str>) -> (HeartbeatReply, HeartbeatReply) {
        let a = member_beat(group, "a", a_instance, 0, Some(&[]), 0).expect("heartbeat accepted");
        let b = beat(group, "b", 0, Some(&[]), 0).expect("heartbeat accepted");
        member_beat(group, "a", a_instance, a.member_epoch, Some(&[0, 1, 2, 3]), 0).expect("heartbeat accepted");
        let a = member_beat(group, "a", a_instance, a.member_epoch, Some(&[0, 1]), 0).expect("heartbeat accepted");
        let b = beat(group, "b", b.member_epoch, Some(&[]), 0).expect("heartbeat accepted");
        assert_eq!((assigned(&a), assigned(&b)), (vec![0, 1], vec![2, 3]));
        (a, b)
    }

    #[test]
    fn leave_with_epoch_minus_one_gives_the_partitions_to_the_rest() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let (a, b) = two_stable_members(&mut group);
        let left = beat(&mut group, "b", LEAVE_GROUP_MEMBER_EPOCH, None, 100).expect("heartbeat accepted");
        assert_eq!(left.member_epoch, LEAVE_GROUP_MEMBER_EPOCH);
        let a = beat(&mut group, "a", a.member_epoch, Some(&[0, 1]), 110).expect("heartbeat accepted");
        assert_eq!(assigned(&a), vec![0, 1, 2, 3]);
        assert!(a.member_epoch > b.member_epoch);
        assert_eq!(
            beat(&mut group, "b", b.member_epoch, None, 120),
            Err(ConsumerGroupError::UnknownMemberId)
        );
    }

    #[test]
    fn an_expired_session_removes_the_member_and_rebalances() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let (a, _) = two_stable_members(&mut group);
        beat(&mut group, "a", a.member_epoch, Some(&[0, 1]), 40_000).expect("heartbeat accepted");
        assert!(group.expire(44_999, 45_000).is_empty());
        assert_eq!(group.expire(45_000, 45_000), vec!["b".to_owned()]);
        let a = beat(&mut group, "a", a.member_epoch, Some(&[0, 1]), 45_001).expect("heartbeat accepted");
        assert_eq!(assigned(&a), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_member_that_never_revokes_is_removed_after_its_rebalance_timeout() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let a = beat(&mut group, "a", 0, Some(&[]), 0).expect("heartbeat accepted");
        beat(&mut group, "b", 0, Some(&[]), 0).expect("heartbeat accepted");
        beat(&mut group, "a", a.member_epoch, Some(&[0, 1, 2, 3]), 100).expect("heartbeat accepted");
        assert!(group.expire(10_099, 45_000).is_empty());
        assert_eq!(group.expire(10_100, 45_000), vec!["a".to_owned()]);
    }

    #[test]
    fn epochs_are_checked_as_kafka_does() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let (a, _) = two_stable_members(&mut group);
        let ahead = beat(&mut group, "a", a.member_epoch + 1, Some(&[0, 1]), 0);
        assert!(matches!(ahead, Err(ConsumerGroupError::FencedMemberEpoch { .. })));
        // The previous epoch is accepted from a member that missed our answer and owns nothing more than its assignment.
        assert_eq!(a.member_epoch, 2);
        assert!(beat(&mut group, "a", 1, Some(&[0, 1]), 0).is_ok());
        assert!(matches!(
            beat(&mut group, "a", 1, Some(&[0, 1, 2]), 0),
            Err(ConsumerGroupError::FencedMemberEpoch { .. })
        ));
        assert_eq!(beat(&mut group, "nobody", 3, None, 0), Err(ConsumerGroupError::UnknownMemberId));
        assert_eq!(group.check_member_epoch("a", a.member_epoch), Ok(()));
        assert!(matches!(
            group.check_member_epoch("a", a.member_epoch - 1),
            Err(ConsumerGroupError::StaleMemberEpoch { .. })
        ));
        assert_eq!(group.check_member_epoch("nobody", 1), Err(ConsumerGroupError::UnknownMemberId));
    }

    #[test]
    fn an_unknown_assignor_is_refused_and_a_first_heartbeat_needs_a_subscription() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let request = ConsumerHeartbeat {
            member_id: "a".to_owned(),
            server_assignor: Some("sticky".to_owned()),
            subscribed_topic_names: Some(vec!["t".to_owned()]),
            ..ConsumerHeartbeat::default()
        };
        assert!(matches!(
            group.heartbeat(request, 0, String::new, &OneTopic),
            Err(ConsumerGroupError::UnsupportedAssignor(_))
        ));
        let request = ConsumerHeartbeat {
            member_id: "a".to_owned(),
            ..ConsumerHeartbeat::default()
        };
        assert!(matches!(
            group.heartbeat(request, 0, String::new, &OneTopic),
            Err(ConsumerGroupError::InvalidRequest(_))
        ));
    }

    fn static_beat(
        group: &mut ConsumerGroup,
        id: &str,
        instance_id: &str,
        epoch: i32,
        owned: Option<&[i32]>,
        now_ms: i64,
    ) -> Result<HeartbeatReply, ConsumerGroupError> {
        member_beat(group, id, Some(instance_id), epoch, owned, now_ms)
    }

    /// a (static, instance "i") and b (dynamic) hold two partitions each.
    fn static_and_dynamic_members(group: &mut ConsumerGroup) -> (HeartbeatReply, HeartbeatReply) {
        settled_members(group, Some("i"))
    }

    #[test]
    fn a_static_member_that_leaves_temporarily_is_replaced_by_its_instance_id_without_a_rebalance() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let (a, b) = static_and_dynamic_members(&mut group);
        let group_epoch = group.group_epoch;
        let left = static_beat(&mut group, "a", "i", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None, 100).expect("left");
        assert_eq!(left.member_epoch, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
        assert_eq!(group.group_epoch, group_epoch, "a temporary leave is no rebalance");
        assert_eq!(group.state(), GroupState::Stable);
        // b is not given a's partitions while a is away.
        let b = beat(&mut group, "b", b.member_epoch, Some(&[2, 3]), 200).expect("heartbeat accepted");
        assert_eq!(assigned(&b), vec![2, 3]);
        // A new process with the same instance id takes a's place and partitions under its own member id.
        let a2 = static_beat(&mut group, "a2", "i", 0, Some(&[]), 300).expect("took over");
        assert_eq!((a2.member_id.as_str(), assigned(&a2)), ("a2", vec![0, 1]));
        assert_eq!(a2.member_epoch, a.member_epoch);
        assert_eq!(group.group_epoch, group_epoch);
        assert_eq!(group.members.len(), 2);
        assert_eq!(group.members["a2"].instance_id.as_deref(), Some("i"));
        let b = beat(&mut group, "b", b.member_epoch, Some(&[2, 3]), 400).expect("heartbeat accepted");
        assert_eq!(assigned(&b), vec![2, 3]);
        // The old member id is fenced off its instance id.
        assert!(matches!(
            static_beat(&mut group, "a", "i", a.member_epoch, Some(&[0, 1]), 500),
            Err(ConsumerGroupError::FencedInstanceId { .. })
        ));
    }

    #[test]
    fn an_instance_id_in_use_is_unreleased_and_an_unknown_one_is_refused() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        static_and_dynamic_members(&mut group);
        assert_eq!(
            static_beat(&mut group, "a2", "i", 0, Some(&[]), 100),
            Err(ConsumerGroupError::UnreleasedInstanceId("i".to_owned()))
        );
        assert_eq!(
            static_beat(&mut group, "x", "nobody", 3, Some(&[]), 100),
            Err(ConsumerGroupError::UnknownInstanceId("nobody".to_owned()))
        );
    }

    #[test]
    fn a_static_member_away_too_long_expires_and_one_leaving_for_good_rebalances() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let (_, b) = static_and_dynamic_members(&mut group);
        static_beat(&mut group, "a", "i", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None, 100).expect("left");
        beat(&mut group, "b", b.member_epoch, Some(&[2, 3]), 40_000).expect("heartbeat accepted");
        assert_eq!(group.expire(45_000, 45_000), vec!["a".to_owned()]);
        let b = beat(&mut group, "b", b.member_epoch, Some(&[2, 3]), 45_001).expect("heartbeat accepted");
        assert_eq!(assigned(&b), vec![0, 1, 2, 3]);

        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let (_, b) = static_and_dynamic_members(&mut group);
        let group_epoch = group.group_epoch;
        static_beat(&mut group, "a", "i", LEAVE_GROUP_MEMBER_EPOCH, None, 100).expect("left");
        assert_eq!(group.group_epoch, group_epoch + 1);
        let b = beat(&mut group, "b", b.member_epoch, Some(&[2, 3]), 200).expect("heartbeat accepted");
        assert_eq!(assigned(&b), vec![0, 1, 2, 3]);
    }

    /// Topics by name, each with two partitions and an id of its own name;
    /// its names can change between heartbeats.
    struct Named(std::cell::RefCell<Vec<&'static str>>);

    impl TopicLookup for Named {
        fn shape(&self, name: &str) -> Option<TopicShape> {
            self.0.borrow().contains(&name).then(|| TopicShape {
                id: Uuid::from_u128(
                    name.bytes()
                        .fold(0, |id: u128, byte| id.wrapping_mul(257).wrapping_add(u128::from(byte))),
                ),
                partition_count: 2,
            })
        }

        fn names(&self) -> Vec<String> {
            self.0.borrow().iter().map(|name| (*name).to_owned()).collect()
        }
    }

    fn regex_beat(
        group: &mut ConsumerGroup,
        epoch: i32,
        regex: Option<&str>,
        topics: &Named,
    ) -> Result<HeartbeatReply, ConsumerGroupError> {
        let request = ConsumerHeartbeat {
            member_id: "a".to_owned(),
            member_epoch: epoch,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_regex: regex.map(str::to_owned),
            owned: Some(Assignment::new()),
            ..ConsumerHeartbeat::default()
        };
        group.heartbeat(request, 0, String::new, topics)
    }

    fn partition_count(reply: &HeartbeatReply) -> usize {
        reply
            .assignment
            .as_ref()
            .map(|held| held.values().map(BTreeSet::len).sum())
            .unwrap_or_default()
    }

    #[test]
    fn a_regex_subscription_follows_topics_created_and_deleted_after_it() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let topics = Named(std::cell::RefCell::new(vec!["orders-1", "payments"]));
        let reply = regex_beat(&mut group, 0, Some("orders-.*"), &topics).expect("joined");
        assert_eq!(partition_count(&reply), 2, "only orders-1 matches");
        let epoch = reply.member_epoch;

        topics.0.borrow_mut().push("orders-2");
        let reply = regex_beat(&mut group, epoch, None, &topics).expect("heartbeat accepted");
        assert_eq!(
            partition_count(&reply),
            4,
            "the new matching topic is assigned at the next heartbeat"
        );
        assert!(reply.member_epoch > epoch);

        topics.0.borrow_mut().retain(|name| *name != "orders-1");
        let reply = regex_beat(&mut group, reply.member_epoch, None, &topics).expect("heartbeat accepted");
        assert_eq!(partition_count(&reply), 2, "a deleted topic leaves the assignment");

        // An empty regex clears the subscription.
        let reply = regex_beat(&mut group, reply.member_epoch, Some(""), &topics).expect("heartbeat accepted");
        assert_eq!(partition_count(&reply), 0);
    }

    #[test]
    fn an_invalid_regex_is_refused_and_a_regex_alone_is_a_subscription() {
        let mut group = ConsumerGroup::new("g", Assignor::Uniform);
        let topics = Named(std::cell::RefCell::new(vec!["t"]));
        assert!(matches!(
            regex_beat(&mut group, 0, Some("t("), &topics),
            Err(ConsumerGroupError::InvalidRegularExpression(_))
        ));
        assert!(group.members.is_empty());
        assert!(matches!(
            regex_beat(&mut group, 0, None, &topics),
            Err(ConsumerGroupError::InvalidRequest(_))
        ));
    }
}
