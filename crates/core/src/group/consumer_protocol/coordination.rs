//! The group coordinator's entry points for KIP-848 consumer groups:
//! ConsumerGroupHeartbeat, the member-epoch checks of OffsetCommit and
//! OffsetFetch, session expiry, and the groups as ListGroups,
//! DescribeGroups and ConsumerGroupDescribe show them. Owns the rule that a group id speaks one
//! protocol at a time; the state machine itself is `consumer_group.rs`, and
//! topic shapes come from the caller (the coordinator knows no topics).

use uuid::Uuid;

use super::assignor::Assignor;
use super::consumer_group::{ConsumerGroup, ConsumerGroupError, ConsumerHeartbeat, HeartbeatReply};
use super::description::ConsumerGroupDescription;
use super::subscription::TopicLookup;
use crate::group::coordinator::{GroupCoordinator, GroupDescription, GroupError, GroupType, MemberDescription, OffsetCommit};
use crate::journal::{Appended, JournalError};

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat. A group id held by a classic group with
    /// members is refused with GroupIdNotFound, as Kafka answers "not a
    /// consumer group"; an empty classic group gives way. Returns the reply
    /// and the heartbeat interval the member should keep.
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: ConsumerHeartbeat,
        topics: &(dyn TopicLookup + Sync),
    ) -> Result<(HeartbeatReply, i32), ConsumerGroupError> {
        self.consumer_heartbeat_timed(group_id, request, topics, None).await
    }

    /// [`GroupCoordinator::consumer_heartbeat`] of a group with its own
    /// `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
    /// (`timing`; `None`: the broker's). Answers once what the heartbeat
    /// changed of the group (its epochs, members, assignments) is durable,
    /// as Kafka answers once its records are written.
    pub async fn consumer_heartbeat_timed(
        &self,
        group_id: &str,
        request: ConsumerHeartbeat,
        topics: &(dyn TopicLookup + Sync),
        timing: Option<(i64, i64)>,
    ) -> Result<(HeartbeatReply, i32), ConsumerGroupError> {
        let (reply, interval_ms, recorded) = self.consumer_heartbeat_now(group_id, request, topics, timing)?;
        let storage = |error: crate::journal::JournalError| ConsumerGroupError::Storage(error.to_string());
        recorded.map_err(storage)?.await.map_err(storage)?;
        self.consumer_group_store.maybe_snapshot().await;
        Ok((reply, interval_ms))
    }

    /// The heartbeat under the groups' locks, and its changes enqueued on
    /// the groups' journal.
    fn consumer_heartbeat_now(
        &self,
        group_id: &str,
        request: ConsumerHeartbeat,
        topics: &dyn TopicLookup,
        timing: Option<(i64, i64)>,
    ) -> Result<(HeartbeatReply, i32, Result<Appended, JournalError>), ConsumerGroupError> {
        if group_id.is_empty() {
            return Err(ConsumerGroupError::InvalidRequest("GroupId can't be empty.".to_owned()));
        }
        let now_ms = self.clock.now_ms();
        let mut classic = self.groups.lock();
        if let Some(group) = classic.get(group_id) {
            if !group.members.is_empty() || !group.pending_member_ids.is_empty() {
                return Err(ConsumerGroupError::GroupIdNotFound(group_id.to_owned()));
            }
            classic.remove(group_id);
        }
        let mut groups = self.consumer_groups.lock();
        let limits = self.config.limits.config();
        if !groups.contains_key(group_id) {
            if request.member_epoch != 0 {
                return Err(ConsumerGroupError::UnknownMemberId);
            }
            groups.insert(group_id.to_owned(), ConsumerGroup::new(group_id, Assignor::Uniform));
        }
        let group = groups.get_mut(group_id).ok_or(ConsumerGroupError::UnknownMemberId)?;
        if request.member_epoch == 0
            && !group.members.contains_key(&request.member_id)
            && !request.instance_id.as_ref().is_some_and(|instance_id| {
                group
                    .members
                    .values()
                    .any(|member| member.instance_id.as_ref() == Some(instance_id))
            })
            && group.members.len() as u64 >= u64::from(limits.group_members_max)
        {
            return Err(ConsumerGroupError::GroupMaxSizeReached(format!(
                "group {group_id:?} has reached group_members_max ({})",
                limits.group_members_max
            )));
        }
        let reply = group.heartbeat(request, now_ms, || Uuid::new_v4().to_string(), topics);
        if reply.is_ok() {
            group.session_timeout_ms = timing.map(|(session_timeout_ms, _)| session_timeout_ms);
        }
        // A refused heartbeat may have changed the group too (a new empty
        // group, the assignor): recorded, but nobody waits for it.
        let recorded = self.consumer_group_store.record(group_id, Some(group));
        let reply = reply?;
        let interval_ms = match timing {
            Some((_, interval_ms)) => i32::try_from(interval_ms).unwrap_or(i32::MAX),
            None => i32::try_from(limits.group_consumer_heartbeat_interval_ms).unwrap_or(i32::MAX),
        };
        Ok((reply, interval_ms, recorded))
    }

    /// Whether `group_id` is a KIP-848 group with members.
    pub(in crate::group) fn consumer_group_in_use(&self, group_id: &str) -> bool {
        let mut groups = self.consumer_groups.lock();
        match groups.get(group_id) {
            Some(group) if !group.members.is_empty() => true,
            Some(_) => {
                // An empty consumer group gives way to a classic one.
                groups.remove(group_id);
                self.consumer_group_store.record_in_background(group_id, None);
                false
            }
            None => false,
        }
    }

    /// Whether `group_id` is a KIP-848 consumer group (members or not).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.consumer_groups.lock().contains_key(group_id)
    }

    /// The OffsetCommit/OffsetFetch check of a KIP-848 group's member
    /// (`None`: not a consumer group, the classic rules apply). A request
    /// from outside the group (empty member id, negative epoch) passes only
    /// while the group has no members.
    pub fn check_consumer_member(&self, group_id: &str, member_id: &str, member_epoch: i32) -> Option<Result<(), ConsumerGroupError>> {
        let groups = self.consumer_groups.lock();
        let group = groups.get(group_id)?;
        if member_id.is_empty() && member_epoch < 0 {
            return Some(if group.members.is_empty() {
                Ok(())
            } else {
                Err(ConsumerGroupError::UnknownMemberId)
            });
        }
        Some(group.check_member_epoch(member_id, member_epoch))
    }

    /// OffsetCommit v9+ from a member of a KIP-848 group: the member and its
    /// epoch are checked, then the offsets stored as any commit's.
    pub async fn commit_consumer_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        commits: Vec<OffsetCommit>,
    ) -> Result<Vec<Result<(), GroupError>>, ConsumerGroupError> {
        match self.check_consumer_member(group_id, member_id, member_epoch) {
            Some(Ok(())) => {}
            Some(Err(error)) => return Err(error),
            None => return Err(ConsumerGroupError::GroupIdNotFound(group_id.to_owned())),
        }
        self.write_offsets(group_id, commits)
            .await
            .map_err(|error| ConsumerGroupError::Storage(error.to_string()))
    }

    /// Removes members whose session (the group's
    /// `consumer.session.timeout.ms`, else `group_consumer_session_timeout_ms`)
    /// or revocation (their rebalance timeout) expired.
    pub(in crate::group) fn expire_consumer_members(&self, now_ms: i64) {
        let session_timeout_ms = i64::try_from(self.config.limits.config().group_consumer_session_timeout_ms).unwrap_or(i64::MAX);
        let mut groups = self.consumer_groups.lock();
        for group in groups.values_mut() {
            let expired = group.expire(now_ms, group.session_timeout_ms.unwrap_or(session_timeout_ms));
            if !expired.is_empty() {
                tracing::info!(group = group.id, members = ?expired, "consumer group session timeout expired; rebalancing");
                self.consumer_group_store.record_in_background(&group.id, Some(group));
            }
        }
    }

    /// ConsumerGroupDescribe of one group: GroupIdNotFound for a group of
    /// the classic protocol (a group with members, or only committed
    /// offsets), GroupNotFound for an id no group has, as Kafka answers.
    pub fn describe_kip848_group(&self, group_id: &str) -> Result<ConsumerGroupDescription, ConsumerGroupError> {
        if let Some(group) = self.consumer_groups.lock().get(group_id) {
            return Ok(ConsumerGroupDescription::of(group));
        }
        if self.groups.lock().contains_key(group_id) || !self.offsets().of_group(group_id).is_empty() {
            return Err(ConsumerGroupError::GroupIdNotFound(group_id.to_owned()));
        }
        Err(ConsumerGroupError::GroupNotFound(group_id.to_owned()))
    }

    /// DescribeGroups describes classic groups only: a KIP-848 group is
    /// GroupIdNotFound ("not a classic group"), which Kafka answers as a
    /// Dead group (DescribeGroups v5 and below) or with the error (v6).
    pub fn describe_classic(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        if self.is_consumer_group(group_id) {
            return Err(GroupError::GroupIdNotFound(group_id.to_owned()));
        }
        Ok(self.describe(group_id))
    }

    pub(in crate::group) fn describe_consumer_group(&self, group_id: &str) -> Option<GroupDescription> {
        self.consumer_groups.lock().get(group_id).map(describe)
    }

    pub(in crate::group) fn list_consumer_groups(&self) -> Vec<GroupDescription> {
        self.consumer_groups.lock().values().map(describe).collect()
    }
}

fn describe(group: &ConsumerGroup) -> GroupDescription {
    GroupDescription {
        group_id: group.id.clone(),
        group_type: GroupType::Consumer,
        state: group.state(),
        protocol_type: "consumer".to_owned(),
        protocol_name: group.assignor.name().to_owned(),
        generation_id: group.group_epoch,
        members: group
            .members
            .values()
            .map(|member| MemberDescription {
                member_id: member.id.clone(),
                group_instance_id: member.instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: bytes::Bytes::new(),
                assignment: bytes::Bytes::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use conveyor_log::clock::ManualClock;

    use super::*;
    use crate::group::coordinator::tests::{consumer_group_store, join_request};
    use crate::group::coordinator::{GroupConfig, GroupState, JoinRequest};
    use crate::group::offsets::OffsetStore;

    use crate::group::consumer_protocol::subscription::fixtures::{OneTopic, TOPIC};

    fn join(member_id: &str) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: member_id.to_owned(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".to_owned()]),
            owned: Some(Default::default()),
            ..ConsumerHeartbeat::default()
        }
    }

    fn classic_join() -> JoinRequest {
        JoinRequest {
            protocols: vec![("range".into(), Bytes::new())],
            ..join_request("", &[])
        }
    }

    fn coordinator() -> (GroupCoordinator, Arc<ManualClock>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let offsets = OffsetStore::open(dir.path(), clock.clone()).expect("offsets");
        let stored = consumer_group_store(dir.path(), &clock);
        (
            GroupCoordinator::new(offsets, stored, clock.clone(), GroupConfig::default()),
            clock,
            dir,
        )
    }

    #[tokio::test]
    async fn a_group_with_kip848_members_refuses_classic_joins_and_is_listed_as_a_consumer_group() {
        let (coordinator, _clock, _dir) = coordinator();
        let (reply, interval_ms) = coordinator.consumer_heartbeat("g", join("a"), &OneTopic).await.expect("joined");
        assert_eq!(interval_ms, 5_000);
        assert_eq!(reply.member_epoch, 1);
        assert_eq!(coordinator.join(classic_join()).await, Err(GroupError::InconsistentGroupProtocol));
        let listed = coordinator.list();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].group_type, listed[0].state), (GroupType::Consumer, GroupState::Stable));
    }

    #[tokio::test]
    async fn a_kip848_group_with_members_is_not_deleted_and_an_empty_one_is() {
        let (coordinator, _clock, _dir) = coordinator();
        let (reply, _) = coordinator.consumer_heartbeat("g", join("a"), &OneTopic).await.expect("joined");
        assert_eq!(coordinator.delete_group("g").await, Err(GroupError::NonEmptyGroup("g".to_owned())));
        let mut leave = join("a");
        leave.member_epoch = -1;
        leave.subscribed_topic_names = None;
        assert_eq!(
            coordinator
                .consumer_heartbeat("g", leave, &OneTopic)
                .await
                .map(|(left, _)| left.member_epoch),
            Ok(-1)
        );
        assert!(reply.member_epoch > 0);
        assert_eq!(coordinator.delete_group("g").await, Ok(()));
        assert!(!coordinator.is_consumer_group("g"));
    }

    #[tokio::test]
    async fn consumer_group_describe_shows_epochs_assignments_and_targets_and_tells_classic_from_absent_groups() {
        let (coordinator, _clock, _dir) = coordinator();
        let (a, _) = coordinator.consumer_heartbeat("g", join("a"), &OneTopic).await.expect("a joins");
        assert_eq!(a.assignment.as_ref().map(|held| held[&TOPIC].len()), Some(4));
        // b joins: the target splits the topic, but a still owns all four until it revokes two.
        coordinator.consumer_heartbeat("g", join("b"), &OneTopic).await.expect("b joins");
        let described = coordinator.describe_kip848_group("g").expect("a consumer group");
        assert_eq!(
            (
                described.state,
                described.group_epoch,
                described.assignment_epoch,
                described.assignor_name.as_str()
            ),
            (GroupState::Reconciling, 2, 2, "uniform")
        );
        let members: Vec<(&str, i32, usize, usize)> = described
            .members
            .iter()
            .map(|member| {
                let count = |assignment: &super::super::Assignment| assignment.values().map(|partitions| partitions.len()).sum();
                (
                    member.member_id.as_str(),
                    member.member_epoch,
                    count(&member.assignment),
                    count(&member.target_assignment),
                )
            })
            .collect();
        assert_eq!(members, vec![("a", 1, 4, 2), ("b", 2, 0, 2)]);
        assert_eq!(described.members[1].subscribed_topic_names, vec!["t".to_owned()]);

        // A classic group (with a pending member) is "not a consumer group"; an unknown id is "not found".
        let mut classic = classic_join();
        classic.group_id = "classic".into();
        assert!(matches!(coordinator.join(classic).await, Err(GroupError::MemberIdRequired(_))));
        assert_eq!(
            coordinator.describe_kip848_group("classic"),
            Err(ConsumerGroupError::GroupIdNotFound("classic".to_owned()))
        );
        assert_eq!(
            coordinator.describe_kip848_group("nobody"),
            Err(ConsumerGroupError::GroupNotFound("nobody".to_owned()))
        );
    }

    #[tokio::test]
    async fn a_heartbeat_to_a_classic_group_with_members_is_group_id_not_found() {
        let (coordinator, _clock, _dir) = coordinator();
        // The first classic join hands out a member id; the group then has a pending member.
        assert!(matches!(
            coordinator.join(classic_join()).await,
            Err(GroupError::MemberIdRequired(_))
        ));
        assert_eq!(
            coordinator
                .consumer_heartbeat("g", join("a"), &OneTopic)
                .await
                .map(|(reply, _)| reply.member_epoch),
            Err(ConsumerGroupError::GroupIdNotFound("g".to_owned()))
        );
    }

    #[tokio::test]
    async fn offset_commits_carry_the_current_member_epoch_and_expired_members_are_gone() {
        let (coordinator, clock, _dir) = coordinator();
        let (reply, _) = coordinator.consumer_heartbeat("g", join("a"), &OneTopic).await.expect("joined");
        let commit = || {
            vec![OffsetCommit {
                topic: "t".into(),
                partition: 0,
                offset: 5,
                leader_epoch: -1,
                metadata: None,
            }]
        };
        let stale = coordinator
            .commit_consumer_offsets("g", "a", reply.member_epoch + 1, commit())
            .await;
        assert!(matches!(stale, Err(ConsumerGroupError::StaleMemberEpoch { .. })));
        let stored = coordinator.commit_consumer_offsets("g", "a", reply.member_epoch, commit()).await;
        assert_eq!(stored, Ok(vec![Ok(())]));
        assert_eq!(coordinator.offsets().get("g", "t", 0).map(|committed| committed.offset), Some(5));

        clock.advance_ms(44_999);
        coordinator.tick();
        assert_eq!(coordinator.check_consumer_member("g", "a", reply.member_epoch), Some(Ok(())));
        clock.advance_ms(1);
        coordinator.tick();
        assert_eq!(
            coordinator.check_consumer_member("g", "a", reply.member_epoch),
            Some(Err(ConsumerGroupError::UnknownMemberId))
        );
    }

    #[tokio::test]
    async fn describe_groups_does_not_describe_a_kip848_group() {
        let (coordinator, _clock, _dir) = coordinator();
        coordinator.consumer_heartbeat("g", join("a"), &OneTopic).await.expect("joined");
        assert_eq!(
            coordinator.describe_classic("g").map(|described| described.state),
            Err(GroupError::GroupIdNotFound("g".to_owned()))
        );
        assert_eq!(
            coordinator.describe_classic("other").map(|described| described.state),
            Ok(GroupState::Dead)
        );
    }
}
