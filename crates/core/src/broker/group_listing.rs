//! Every group of every protocol in one list (ListGroups): the group
//! coordinator's classic and KIP-848 groups and the share groups, and the
//! lookup of a share group that tells "not a share group" from "no group"
//! (ShareGroupDescribe); and the rule that a group id speaks one kind of
//! protocol, consumer or share, as Kafka 4.1 refuses the other kind's
//! heartbeat with GROUP_ID_NOT_FOUND. A group id held by both a consumer
//! group and a share group (from before that rule) is listed once, as the
//! group coordinator has it. The classic APIs meet share groups here too:
//! OffsetCommit on a share group's id is refused and DeleteGroups deletes
//! the share group, as Kafka 4.1 answers. Knows no wire format and no
//! filters. The check and the heartbeat are two steps under two
//! coordinators' locks: two first heartbeats of different kinds racing for
//! a new id can both be accepted.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Broker;
use crate::group::{
    ConsumerGroupError, ConsumerHeartbeat, GroupDescription, GroupError, GroupState, HeartbeatReply, JoinRequest, JoinResult, TopicLookup,
};
use crate::share_group::{self, Heartbeat, MembershipError, ShareGroup};

impl Broker {
    /// Every known group, sorted by id.
    pub fn list_groups(&self) -> Vec<GroupDescription> {
        let mut groups: BTreeMap<String, GroupDescription> = self
            .share_groups
            .list()
            .into_iter()
            .map(|group| (group.group_id.clone(), group))
            .collect();
        for group in self.groups.list() {
            groups.insert(group.group_id.clone(), group);
        }
        groups.into_values().collect()
    }

    /// A share group's members and epoch; `NotShareGroup` when the id is a
    /// consumer group's, `GroupNotFound` when no group has it, as Kafka
    /// answers ShareGroupDescribe.
    pub fn share_group(&self, group_id: &str) -> Result<ShareGroup, MembershipError> {
        if let Some(group) = self.share_groups.describe(group_id) {
            return Ok(group);
        }
        if self.groups.describe(group_id).state != GroupState::Dead {
            return Err(MembershipError::NotShareGroup(group_id.to_owned()));
        }
        Err(MembershipError::GroupNotFound(group_id.to_owned()))
    }

    /// ShareGroupHeartbeat, with the group's `share.session.timeout.ms`. An id a consumer group of either protocol holds
    /// (members or committed offsets) is `NotShareGroup`, as Kafka's
    /// getOrMaybeCreatePersistedShareGroup answers "Group g is not a share
    /// group.".
    pub async fn share_group_heartbeat(
        &self,
        group_id: &str,
        heartbeat: Heartbeat,
    ) -> Result<share_group::HeartbeatReply, MembershipError> {
        if self.share_groups.describe(group_id).is_none() && self.groups.describe(group_id).state != GroupState::Dead {
            return Err(MembershipError::NotShareGroup(group_id.to_owned()));
        }
        let session_timeout_ms = self.group_settings(group_id).share_session_timeout_ms;
        self.share_groups.heartbeat(group_id, heartbeat, session_timeout_ms).await
    }

    /// ConsumerGroupHeartbeat. An id a share group holds is
    /// `GroupIdNotFound` ("Group g is not a consumer group."), as Kafka's
    /// getOrMaybeCreateConsumerGroup answers. Returns the reply and the
    /// heartbeat interval.
    pub async fn consumer_group_heartbeat(
        &self,
        group_id: &str,
        request: ConsumerHeartbeat,
        topics: &(dyn TopicLookup + Sync),
    ) -> Result<(HeartbeatReply, i32), ConsumerGroupError> {
        if self.share_groups.describe(group_id).is_some() {
            return Err(ConsumerGroupError::GroupIdNotFound(group_id.to_owned()));
        }
        let settings = self.group_settings(group_id);
        let timing = (settings.consumer_session_timeout_ms, settings.consumer_heartbeat_interval_ms);
        self.groups.consumer_heartbeat_timed(group_id, request, topics, Some(timing)).await
    }

    /// JoinGroup of the classic protocol. An id a share group holds is
    /// refused with `InconsistentGroupProtocol`, as Kafka 4.1's
    /// `GroupMetadataManager.classicGroupJoin` answers a share group.
    pub async fn join_classic_group(&self, request: JoinRequest) -> Result<JoinResult, GroupError> {
        if self.share_groups.describe(&request.group_id).is_some() {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        self.groups.join(request).await
    }

    /// The check of OffsetCommit and TxnOffsetCommit: an id a share group
    /// holds has no committed offsets, `GroupIdNotFound`, as Kafka's
    /// `ShareGroup.validateOffsetCommit` answers ("Group g is not a
    /// consumer group.").
    pub fn check_offsets_group(&self, group_id: &str) -> Result<(), GroupError> {
        match self.share_groups.describe(group_id) {
            Some(_) => Err(GroupError::GroupIdNotFound(group_id.to_owned())),
            None => Ok(()),
        }
    }

    /// DescribeGroups: a classic group's description. A share group's or a
    /// KIP-848 group's id is `NotClassicGroup`, an unknown one
    /// `GroupIdNotFound`, as Kafka's `GroupMetadataManager.describeGroups`
    /// tells them apart (at v6; below it both are `Dead`).
    pub fn classic_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        if self.share_groups.describe(group_id).is_some() {
            return Err(GroupError::NotClassicGroup(group_id.to_owned()));
        }
        let description = self
            .groups
            .describe_classic(group_id)
            .map_err(|_| GroupError::NotClassicGroup(group_id.to_owned()))?;
        if description.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound(group_id.to_owned()));
        }
        Ok(description)
    }

    /// DeleteGroups: a share group's id deletes the share group and its
    /// share-partitions (`NonEmptyGroup` while it has members), any other
    /// the consumer group, as Kafka 4.1's `GroupCoordinatorService`
    /// deletes share groups' state before the groups.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        if self.share_groups.describe(group_id).is_none() {
            return self.groups.delete_group(group_id).await;
        }
        let (share_groups, group) = (Arc::clone(&self.share_groups), group_id.to_owned());
        match tokio::task::spawn_blocking(move || share_groups.delete_group(&group)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(MembershipError::NonEmptyGroup(_))) => Err(GroupError::NonEmptyGroup(group_id.to_owned())),
            Ok(Err(MembershipError::Storage(_))) => Err(GroupError::CoordinatorNotAvailable),
            Ok(Err(_)) => Err(GroupError::GroupIdNotFound(group_id.to_owned())),
            Err(_) => Err(GroupError::CoordinatorNotAvailable),
        }
    }
}
