//! The members of every share group (KIP-932's ShareGroupHeartbeat
//! semantics): member epochs, the group epoch, what each member subscribes
//! to, session expiry, and the assignment — every member of a share group is
//! assigned every partition of the topics it subscribes to, because a share
//! group splits records, not partitions. A pure state machine: time comes in
//! as `now_ms`; it knows topic names, not topic ids, partitions or the wire.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// KIP-932's `group.share.session.timeout.ms` default.
pub const SESSION_TIMEOUT_MS_DEFAULT: i64 = 45_000;
/// KIP-932's `group.share.heartbeat.interval.ms` default.
pub const HEARTBEAT_INTERVAL_MS_DEFAULT: i64 = 5_000;
/// The member epoch a member sends to join.
pub const JOIN_EPOCH: i32 = 0;
/// The member epoch a member sends to leave.
pub const LEAVE_EPOCH: i32 = -1;

/// One heartbeat, as a member sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Chosen by the member (a UUID, KIP-1082); kept for its whole life.
    pub member_id: String,
    /// [`JOIN_EPOCH`] to join, [`LEAVE_EPOCH`] to leave, else the epoch the
    /// member was last given.
    pub member_epoch: i32,
    /// The topics it subscribes to; `None` when unchanged since the last
    /// heartbeat.
    pub subscribed_topics: Option<Vec<String>>,
    /// The client's id and address, as ShareGroupDescribe shows them.
    pub client_id: String,
    pub client_host: String,
}

/// What a heartbeat is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub member_id: String,
    /// [`LEAVE_EPOCH`] once the member has left.
    pub member_epoch: i32,
    /// The topics whose partitions are all the member's, sorted; empty
    /// once it has left.
    pub assigned_topics: Vec<String>,
}

/// Why a heartbeat (or an admin request on a share group) was refused;
/// nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The member sent an epoch other than its current one (a zombie).
    #[error("member {member_id} sent epoch {sent}, its epoch is {current}")]
    FencedMemberEpoch { member_id: String, sent: i32, current: i32 },
    /// A heartbeat other than a join from a member the group does not know
    /// (it left, or its session expired).
    #[error("member {member_id} is not a member of share group {group}")]
    UnknownMember { group: String, member_id: String },
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The id names a consumer group of another protocol.
    #[error("Group {0} is not a share group.")]
    NotShareGroup(String),
    /// No group of any protocol has this id.
    #[error("Group {0} not found.")]
    GroupNotFound(String),
    /// The group has members: its start offsets stay, and so does it
    /// (Kafka's NON_EMPTY_GROUP text).
    #[error("The group is not empty.")]
    NonEmptyGroup(String),
    /// The change could not be made durable (the groups' journal failed):
    /// the member tries again, as after Kafka's COORDINATOR_NOT_AVAILABLE.
    #[error("the share groups' journal failed: {0}")]
    Storage(String),
}

/// One member as the group knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub subscribed_topics: BTreeSet<String>,
    pub client_id: String,
    pub client_host: String,
    /// Its session ends unless it heartbeats before this.
    pub(super) deadline_ms: i64,
}

/// One share group: its epoch (bumped by every change of its members or
/// their subscriptions) and its members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareGroup {
    pub group_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    /// The session timeout its members last heartbeated with (its
    /// `share.session.timeout.ms`), which their sessions get after a
    /// restart; `None` before any heartbeat.
    pub session_timeout_ms: Option<i64>,
}

impl ShareGroup {
    /// Every topic some member subscribes to (KIP-932's subscribed topics,
    /// which DescribeShareGroupOffsets and the share-partitions follow).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|member| member.subscribed_topics.iter().cloned())
            .collect()
    }

    /// Kafka's share group states: `Empty` without members, else `Stable`
    /// (assignment never waits for anyone in a share group).
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() { "Empty" } else { "Stable" }
    }
}

/// The members of every share group. See the module documentation.
#[derive(Debug, Default)]
pub struct ShareGroups {
    groups: HashMap<String, ShareGroup>,
    session_timeout_ms: i64,
}

impl ShareGroups {
    pub fn new(session_timeout_ms: i64) -> ShareGroups {
        ShareGroups::of(HashMap::new(), session_timeout_ms)
    }

    /// The membership of `groups` (as they were loaded after a restart).
    pub fn of(groups: HashMap<String, ShareGroup>, session_timeout_ms: i64) -> ShareGroups {
        ShareGroups {
            groups,
            session_timeout_ms,
        }
    }

    /// Applies one heartbeat of `group`: joins, renews the session and
    /// takes a new subscription, or leaves.
    pub fn heartbeat(&mut self, group: &str, heartbeat: Heartbeat, now_ms: i64) -> Result<HeartbeatReply, MembershipError> {
        self.heartbeat_within(group, heartbeat, now_ms, self.session_timeout_ms)
    }

    /// The session timeout of groups that set none.
    pub fn session_timeout_ms(&self) -> i64 {
        self.session_timeout_ms
    }

    /// [`ShareGroups::heartbeat`] of a group whose sessions last
    /// `session_timeout_ms` (its `share.session.timeout.ms`).
    pub fn heartbeat_within(
        &mut self,
        group: &str,
        heartbeat: Heartbeat,
        now_ms: i64,
        session_timeout_ms: i64,
    ) -> Result<HeartbeatReply, MembershipError> {
        if heartbeat.member_id.is_empty() {
            return Err(MembershipError::InvalidRequest("a share group member must send its member id"));
        }
        let deadline_ms = now_ms.saturating_add(session_timeout_ms);
        if heartbeat.member_epoch == LEAVE_EPOCH {
            if let Some(state) = self.groups.get_mut(group)
                && state.members.remove(&heartbeat.member_id).is_some()
            {
                state.group_epoch += 1;
            }
            return Ok(HeartbeatReply {
                member_id: heartbeat.member_id,
                member_epoch: LEAVE_EPOCH,
                assigned_topics: Vec::new(),
            });
        }
        let state = self.groups.entry(group.to_owned()).or_default();
        let known = state.members.get(&heartbeat.member_id).map(|member| member.member_epoch);
        match (heartbeat.member_epoch, known) {
            (JOIN_EPOCH, _) => {
                let subscribed_topics: BTreeSet<String> = heartbeat.subscribed_topics.unwrap_or_default().into_iter().collect();
                if subscribed_topics.is_empty() {
                    return Err(MembershipError::InvalidRequest(
                        "a joining share group member must subscribe to topics",
                    ));
                }
                // A member that joins again (it restarted) starts over.
                state.group_epoch += 1;
                state.members.insert(
                    heartbeat.member_id.clone(),
                    ShareMember {
                        member_id: heartbeat.member_id.clone(),
                        member_epoch: state.group_epoch,
                        subscribed_topics,
                        client_id: heartbeat.client_id,
                        client_host: heartbeat.client_host,
                        deadline_ms,
                    },
                );
            }
            (_, None) => {
                return Err(MembershipError::UnknownMember {
                    group: group.to_owned(),
                    member_id: heartbeat.member_id,
                });
            }
            (sent, Some(current)) if sent != current => {
                return Err(MembershipError::FencedMemberEpoch {
                    member_id: heartbeat.member_id,
                    sent,
                    current,
                });
            }
            (_, Some(_)) => {
                let changed = heartbeat
                    .subscribed_topics
                    .map(|topics| topics.into_iter().collect::<BTreeSet<String>>());
                let subscription_changed = changed.as_ref().is_some_and(|topics| {
                    state
                        .members
                        .get(&heartbeat.member_id)
                        .is_some_and(|member| member.subscribed_topics != *topics)
                });
                if subscription_changed {
                    state.group_epoch += 1;
                }
                let group_epoch = state.group_epoch;
                if let Some(member) = state.members.get_mut(&heartbeat.member_id) {
                    if let Some(topics) = changed {
                        member.subscribed_topics = topics;
                    }
                    // Nothing to reconcile in a share group: the member
                    // takes the group's epoch at once.
                    member.member_epoch = group_epoch;
                    member.deadline_ms = deadline_ms;
                }
            }
        }
        state.session_timeout_ms = Some(session_timeout_ms);
        let member = &state.members[&heartbeat.member_id];
        Ok(HeartbeatReply {
            member_id: member.member_id.clone(),
            member_epoch: member.member_epoch,
            assigned_topics: member.subscribed_topics.iter().cloned().collect(),
        })
    }

    /// Removes the members whose session ended before `now_ms`, as
    /// `(group, member id)`, so their acquired records can be released.
    pub fn expire(&mut self, now_ms: i64) -> Vec<(String, String)> {
        let mut expired = Vec::new();
        for (group, state) in &mut self.groups {
            let before = state.members.len();
            state.members.retain(|member_id, member| {
                let alive = member.deadline_ms > now_ms;
                if !alive {
                    expired.push((group.clone(), member_id.clone()));
                }
                alive
            });
            if state.members.len() != before {
                state.group_epoch += 1;
            }
        }
        expired.sort();
        expired
    }

    /// The group, if it exists (it has had a member since the broker
    /// started, or share-partitions on disk).
    pub fn group(&self, group: &str) -> Option<&ShareGroup> {
        self.groups.get(group)
    }

    /// Makes `group` known, without members, if it is not (a group whose
    /// share-partitions the broker found at start).
    pub fn ensure(&mut self, group: &str) {
        self.groups.entry(group.to_owned()).or_default();
    }

    /// Removes `group` if it has no members (DeleteGroups): `GroupNotFound`
    /// if unknown, `NonEmptyGroup` with members.
    pub fn remove_empty(&mut self, group: &str) -> Result<(), MembershipError> {
        self.check_empty(group)?;
        self.groups.remove(group);
        Ok(())
    }

    /// `GroupNotFound` if `group` is unknown, `NonEmptyGroup` if it has
    /// members (the start offsets of a share group change only when empty).
    pub fn check_empty(&self, group: &str) -> Result<(), MembershipError> {
        match self.groups.get(group) {
            None => Err(MembershipError::GroupNotFound(group.to_owned())),
            Some(state) if !state.members.is_empty() => Err(MembershipError::NonEmptyGroup(group.to_owned())),
            Some(_) => Ok(()),
        }
    }

    /// The names of every share group, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.groups.keys().cloned().collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(member_id: &str, topics: &[&str]) -> Heartbeat {
        Heartbeat {
            member_id: member_id.to_owned(),
            member_epoch: JOIN_EPOCH,
            subscribed_topics: Some(topics.iter().map(|topic| (*topic).to_owned()).collect()),
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
        }
    }

    fn beat(member_id: &str, member_epoch: i32) -> Heartbeat {
        Heartbeat {
            member_id: member_id.to_owned(),
            member_epoch,
            subscribed_topics: None,
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
        }
    }

    #[test]
    fn every_member_is_assigned_every_topic_it_subscribes_to() {
        let mut groups = ShareGroups::new(SESSION_TIMEOUT_MS_DEFAULT);
        let alice = groups.heartbeat("g", join("alice", &["orders"]), 0).expect("join");
        let bob = groups.heartbeat("g", join("bob", &["orders", "audit"]), 0).expect("join");
        assert_eq!((alice.member_epoch, bob.member_epoch), (1, 2));
        assert_eq!(alice.assigned_topics, vec!["orders".to_owned()]);
        assert_eq!(bob.assigned_topics, vec!["audit".to_owned(), "orders".to_owned()]);
        // Alice catches up with the group's epoch at her next heartbeat.
        let alice = groups.heartbeat("g", beat("alice", 1), 10).expect("heartbeat");
        assert_eq!((alice.member_epoch, alice.assigned_topics.len()), (2, 1));
        let group = groups.group("g").expect("group");
        assert_eq!((group.state(), group.subscribed_topics().len()), ("Stable", 2));
    }

    #[test]
    fn a_stale_epoch_is_fenced_and_an_unknown_member_refused() {
        let mut groups = ShareGroups::new(SESSION_TIMEOUT_MS_DEFAULT);
        groups.heartbeat("g", join("alice", &["t"]), 0).expect("join");
        groups.heartbeat("g", join("bob", &["t"]), 0).expect("join");
        groups.heartbeat("g", beat("alice", 1), 0).expect("alice moves to epoch 2");
        assert!(matches!(
            groups.heartbeat("g", beat("alice", 1), 0),
            Err(MembershipError::FencedMemberEpoch { sent: 1, current: 2, .. })
        ));
        assert!(matches!(
            groups.heartbeat("g", beat("carol", 2), 0),
            Err(MembershipError::UnknownMember { .. })
        ));
        assert!(matches!(
            groups.heartbeat("g", join("dave", &[]), 0),
            Err(MembershipError::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_member_that_leaves_or_stops_heartbeating_is_gone_and_bumps_the_group_epoch() {
        let mut groups = ShareGroups::new(1_000);
        groups.heartbeat("g", join("alice", &["t"]), 0).expect("join");
        groups.heartbeat("g", join("bob", &["t"]), 0).expect("join");
        let left = groups.heartbeat("g", beat("bob", LEAVE_EPOCH), 0).expect("leave");
        assert_eq!((left.member_epoch, left.assigned_topics.len()), (LEAVE_EPOCH, 0));
        assert_eq!(groups.group("g").expect("group").group_epoch, 3);
        groups.heartbeat("g", beat("alice", 1), 500).expect("alive until 1500");
        assert!(groups.expire(1_400).is_empty());
        assert_eq!(groups.expire(1_500), vec![("g".to_owned(), "alice".to_owned())]);
        let group = groups.group("g").expect("group");
        assert_eq!((group.state(), group.group_epoch), ("Empty", 4));
        assert!(matches!(
            groups.heartbeat("g", beat("alice", 1), 1_600),
            Err(MembershipError::UnknownMember { .. })
        ));
        assert_eq!(groups.names(), vec!["g".to_owned()]);
    }

    #[test]
    fn a_new_subscription_bumps_the_group_epoch_and_changes_the_assignment() {
        let mut groups = ShareGroups::new(SESSION_TIMEOUT_MS_DEFAULT);
        groups.heartbeat("g", join("alice", &["a"]), 0).expect("join");
        let same = groups
            .heartbeat(
                "g",
                Heartbeat {
                    subscribed_topics: Some(vec!["a".to_owned()]),
                    ..beat("alice", 1)
                },
                0,
            )
            .expect("same subscription");
        assert_eq!(same.member_epoch, 1, "an unchanged subscription changes nothing");
        let changed = groups
            .heartbeat(
                "g",
                Heartbeat {
                    subscribed_topics: Some(vec!["b".to_owned()]),
                    ..beat("alice", 1)
                },
                0,
            )
            .expect("new subscription");
        assert_eq!((changed.member_epoch, changed.assigned_topics), (2, vec!["b".to_owned()]));
    }
}
