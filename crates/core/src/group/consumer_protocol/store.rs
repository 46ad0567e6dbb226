//! What of the KIP-848 groups survives a restart, in
//! `<data>/groups/consumer-groups/` (a [`GroupStore`], `../store.rs`), as
//! Kafka keeps them in `__consumer_offsets`: per group its metadata (group
//! epoch, the target's assignment epoch, assignor, subscribed topics'
//! shapes, session timeout), each member (epochs, reconciliation state,
//! subscription, current and revoking partitions: Kafka's
//! ConsumerGroupMemberMetadata and ConsumerGroupCurrentMemberAssignment
//! records) and each member's target (ConsumerGroupTargetAssignmentMember).
//! A group loaded after a restart gives every member a full session (and a
//! member still revoking its rebalance timeout) from the load, as Kafka's
//! coordinator does on loading. Knows these records, nothing of the wire
//! format.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::assignor::{Assignment, Assignor, TopicShape};
use super::consumer_group::{ConsumerGroup, ConsumerMember, MemberState};
use super::subscription::SubscribedRegex;
use crate::group::store::{GroupImage, GroupKind, GroupStore};

/// A group's own fields (Kafka's ConsumerGroupMetadata, target assignment
/// metadata and partition metadata records in one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMetadata {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub topics: BTreeMap<String, TopicShape>,
    pub session_timeout_ms: Option<i64>,
}

/// One member as it is kept: everything but its liveness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    pub matched: BTreeSet<String>,
    pub rebalance_timeout_ms: i32,
    pub assigned: Assignment,
    pub revoking: Assignment,
}

/// The KIP-848 groups' records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerGroupRecords;

/// Where the KIP-848 groups are kept.
pub type ConsumerGroupStore = GroupStore<ConsumerGroupRecords>;

impl GroupKind for ConsumerGroupRecords {
    type Metadata = GroupMetadata;
    type Member = MemberMetadata;
    type Target = Assignment;
    type Live = ConsumerGroup;
    const NAME: &'static str = "KIP-848 consumer groups";

    fn image(group: &ConsumerGroup) -> GroupImage<ConsumerGroupRecords> {
        GroupImage {
            metadata: GroupMetadata {
                group_epoch: group.group_epoch,
                assignment_epoch: group.assignment_epoch,
                assignor: group.assignor.name().to_owned(),
                topics: group.topics.clone(),
                session_timeout_ms: group.session_timeout_ms,
            },
            members: group
                .members
                .iter()
                .map(|(id, member)| (id.clone(), MemberMetadata::of(member)))
                .collect(),
            target: group.target.clone(),
        }
    }

    /// Each member's session (and revocation, if it was revoking) starts at `now_ms`.
    fn load(id: &str, image: &GroupImage<ConsumerGroupRecords>, now_ms: i64) -> ConsumerGroup {
        let metadata = &image.metadata;
        let mut group = ConsumerGroup::new(id, Assignor::from_name(&metadata.assignor).unwrap_or(Assignor::Uniform));
        group.group_epoch = metadata.group_epoch;
        group.assignment_epoch = metadata.assignment_epoch;
        group.topics = metadata.topics.clone();
        group.session_timeout_ms = metadata.session_timeout_ms;
        group.target = image.target.clone();
        group.members = image
            .members
            .iter()
            .map(|(member_id, member)| (member_id.clone(), member.member(member_id, now_ms)))
            .collect();
        group
    }
}

impl MemberMetadata {
    fn of(member: &ConsumerMember) -> MemberMetadata {
        MemberMetadata {
            instance_id: member.instance_id.clone(),
            epoch: member.epoch,
            previous_epoch: member.previous_epoch,
            state: member.state,
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            subscribed: member.subscribed.clone(),
            subscribed_regex: member.subscribed_regex.as_ref().map(|regex| regex.source().to_owned()),
            matched: member.matched.clone(),
            rebalance_timeout_ms: member.rebalance_timeout_ms,
            assigned: member.assigned.clone(),
            revoking: member.revoking.clone(),
        }
    }

    fn member(&self, id: &str, now_ms: i64) -> ConsumerMember {
        ConsumerMember {
            id: id.to_owned(),
            instance_id: self.instance_id.clone(),
            epoch: self.epoch,
            previous_epoch: self.previous_epoch,
            state: self.state,
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed: self.subscribed.clone(),
            // It compiled when it was kept; one that no longer does (a
            // stricter build) subscribes to nothing by pattern.
            subscribed_regex: self
                .subscribed_regex
                .as_deref()
                .and_then(|source| SubscribedRegex::parse(source).ok()),
            matched: self.matched.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            assigned: self.assigned.clone(),
            revoking: self.revoking.clone(),
            last_heartbeat_ms: now_ms,
            revocation_deadline_ms: (!self.revoking.is_empty()).then(|| now_ms + i64::from(self.rebalance_timeout_ms.max(0))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::sync::Arc;

    use conveyor_log::clock::ManualClock;

    use super::*;
    use crate::group::consumer_protocol::consumer_group::{ConsumerHeartbeat, HeartbeatReply};
    use crate::group::consumer_protocol::subscription::fixtures::{OneTopic, TOPIC};
    use crate::group::coordinator::tests::consumer_group_store;
    use crate::group::store::{GroupChange, StoredGroups, changes};
    use crate::group::{GroupConfig, GroupCoordinator, OffsetStore};

    fn member(epoch: i32) -> MemberMetadata {
        MemberMetadata {
            instance_id: None,
            epoch,
            previous_epoch: epoch - 1,
            state: MemberState::Stable,
            client_id: "c".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            subscribed: ["t".to_owned()].into(),
            subscribed_regex: None,
            matched: BTreeSet::new(),
            rebalance_timeout_ms: 30_000,
            assigned: [(TOPIC, [epoch % 4].into())].into(),
            revoking: Assignment::new(),
        }
    }

    impl crate::journal::suite::Fixture for StoredGroups<ConsumerGroupRecords> {
        fn events(count: usize) -> Vec<GroupChange<ConsumerGroupRecords>> {
            // Members set with a new epoch each time; every seventh event
            // removes the member set just before, every fifth sets the
            // group's epochs, every third a target.
            (0..count)
                .map(|index| {
                    let epoch = index as i32 + 1;
                    let group = "g".to_owned();
                    if index % 7 == 6 {
                        GroupChange::Member {
                            group,
                            member: format!("m{}", (index - 1) % 3),
                            metadata: None,
                        }
                    } else if index % 5 == 4 {
                        GroupChange::Group {
                            group,
                            metadata: Some(GroupMetadata {
                                group_epoch: epoch,
                                assignment_epoch: epoch,
                                assignor: "uniform".to_owned(),
                                ..GroupMetadata::default()
                            }),
                        }
                    } else if index % 3 == 2 {
                        GroupChange::Target {
                            group,
                            member: format!("m{}", index % 3),
                            assignment: Some([(TOPIC, [epoch].into())].into()),
                        }
                    } else {
                        GroupChange::Member {
                            group,
                            member: format!("m{}", index % 3),
                            metadata: Some(member(epoch)),
                        }
                    }
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(StoredGroups<ConsumerGroupRecords>);

    fn heartbeat(member_id: &str, epoch: i32, owned: &[i32]) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: member_id.to_owned(),
            member_epoch: epoch,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_owned()]),
            owned: Some([(TOPIC, owned.iter().copied().collect())].into()),
            ..ConsumerHeartbeat::default()
        }
    }

    fn assigned(reply: &HeartbeatReply) -> Vec<i32> {
        let assignment = reply.assignment.as_ref().and_then(|assignment| assignment.get(&TOPIC));
        assignment
            .map(|partitions| partitions.iter().copied().collect())
            .unwrap_or_default()
    }

    fn open(dir: &Path, clock: &Arc<ManualClock>) -> GroupCoordinator {
        let offsets = OffsetStore::open(dir, clock.clone()).expect("offsets");
        GroupCoordinator::new(offsets, consumer_group_store(dir, clock), clock.clone(), GroupConfig::default())
    }

    /// Every KIP-848 group as the coordinator holds it.
    fn images(coordinator: &GroupCoordinator) -> BTreeMap<String, GroupImage<ConsumerGroupRecords>> {
        let groups = coordinator.consumer_groups.lock();
        groups
            .iter()
            .map(|(id, group)| (id.clone(), ConsumerGroupRecords::image(group)))
            .collect()
    }

    /// a holds all four partitions, b joins, a revokes two and b gets them.
    async fn two_members_with_two_partitions_each(coordinator: &GroupCoordinator) -> (HeartbeatReply, HeartbeatReply) {
        let beat = |member: &'static str, epoch: i32, owned: &'static [i32]| async move {
            let reply = coordinator
                .consumer_heartbeat("g", heartbeat(member, epoch, owned), &OneTopic)
                .await;
            reply.expect("heartbeat accepted").0
        };
        let a = beat("a", 0, &[]).await;
        let b = beat("b", 0, &[]).await;
        let a = beat("a", a.member_epoch, &[0, 1, 2, 3]).await;
        let a = beat("a", a.member_epoch, &[0, 1]).await;
        let b = beat("b", b.member_epoch, &[]).await;
        assert_eq!((assigned(&a), assigned(&b)), (vec![0, 1], vec![2, 3]));
        (a, b)
    }

    #[tokio::test]
    async fn a_group_after_a_restart_is_the_group_before_it_and_its_members_keep_their_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = open(dir.path(), &clock);
        // a holds all four, b joins, a revokes two, b gets them; c joins and
        // a is left revoking one (the group mid-reconciliation).
        let (a, b) = two_members_with_two_partitions_each(&coordinator).await;
        coordinator
            .consumer_heartbeat("g", heartbeat("c", 0, &[]), &OneTopic)
            .await
            .expect("c");
        let a = (coordinator
            .consumer_heartbeat("g", heartbeat("a", a.member_epoch, &[0, 1]), &OneTopic)
            .await)
            .expect("a");
        assert_eq!(assigned(&a.0).len(), 1, "a revokes one for c");
        let before = images(&coordinator);
        assert_eq!(before["g"].members.len(), 3);
        assert!(!before["g"].members["a"].revoking.is_empty());

        // Reopened from the journal alone (no snapshot: as after a SIGKILL).
        drop(coordinator);
        clock.advance_ms(60_000);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(images(&coordinator), before, "the replayed groups are the groups before");

        // b heartbeats with its epoch and what it owns: not fenced, and it
        // reconciles to the target computed before the restart, keeping its
        // partitions; the group epoch does not move (no new rebalance).
        let again = (coordinator
            .consumer_heartbeat("g", heartbeat("b", b.member_epoch, &[2, 3]), &OneTopic)
            .await)
            .expect("b is still a member");
        let target = &before["g"].target["b"][&TOPIC];
        assert_eq!(
            (again.0.member_epoch, assigned(&again.0)),
            (before["g"].metadata.assignment_epoch, target.iter().copied().collect())
        );
        assert_eq!(images(&coordinator)["g"].metadata, before["g"].metadata, "no epoch moved");

        // And from its snapshot (as after a SIGTERM).
        let after_heartbeat = images(&coordinator);
        coordinator.consumer_group_store().close().expect("close");
        drop(coordinator);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(images(&coordinator), after_heartbeat);
    }

    #[tokio::test]
    async fn a_member_that_does_not_come_back_expires_a_session_after_the_restart_and_its_partitions_go_to_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = open(dir.path(), &clock);
        let (a, b) = two_members_with_two_partitions_each(&coordinator).await;
        // Down for longer than a session: the sessions count from the load.
        drop(coordinator);
        clock.advance_ms(100_000);
        let coordinator = open(dir.path(), &clock);
        let session_ms = 45_000;
        clock.advance_ms(session_ms - 1);
        let a = coordinator
            .consumer_heartbeat("g", heartbeat("a", a.member_epoch, &[0, 1]), &OneTopic)
            .await;
        let a = a.expect("a came back in time").0;
        coordinator.tick();
        assert_eq!(
            coordinator.check_consumer_member("g", "b", b.member_epoch),
            Some(Ok(())),
            "b still has time"
        );
        clock.advance_ms(1);
        coordinator.tick();
        assert_eq!(
            coordinator.check_consumer_member("g", "b", b.member_epoch),
            Some(Err(crate::group::ConsumerGroupError::UnknownMemberId))
        );
        let a = coordinator
            .consumer_heartbeat("g", heartbeat("a", a.member_epoch, &[0, 1]), &OneTopic)
            .await;
        assert_eq!(assigned(&a.expect("a").0), vec![0, 1, 2, 3], "b's partitions went to a");
        // The expiry is journaled too.
        let expired = images(&coordinator);
        drop(coordinator);
        assert_eq!(images(&open(dir.path(), &clock)), expired);
    }

    #[test]
    fn a_group_gone_is_one_event_and_an_unchanged_group_none() {
        let mut group = ConsumerGroup::new("g", Assignor::Range);
        let image = ConsumerGroupRecords::image(&group);
        assert_eq!(changes("g", Some(&image), Some(&image)), Vec::new());
        group.group_epoch = 3;
        let moved = ConsumerGroupRecords::image(&group);
        assert!(matches!(
            changes("g", Some(&image), Some(&moved)).as_slice(),
            [GroupChange::Group { metadata: Some(_), .. }]
        ));
        assert_eq!(
            changes("g", Some(&moved), None),
            vec![GroupChange::Group {
                group: "g".to_owned(),
                metadata: None
            }]
        );
    }
}
