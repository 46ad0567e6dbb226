//! A KIP-848 consumer group as ConsumerGroupDescribe shows it: the group and
//! assignment epochs, the assignor and, per member, its epoch, subscription,
//! current assignment and target assignment. A read-only copy taken under
//! the coordinator's lock; knows topic ids, not topic names (the door
//! resolves them) and nothing of the wire format.

use super::assignor::Assignment;
use super::consumer_group::{ConsumerGroup, ConsumerMember};
use crate::group::coordinator::GroupState;

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    pub members: Vec<ConsumerMemberDescription>,
}

/// One member of a [`ConsumerGroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    /// Sorted.
    pub subscribed_topic_names: Vec<String>,
    /// `SubscribedTopicRegex`, as the member sent it.
    pub subscribed_topic_regex: Option<String>,
    /// What the member may own now (partitions it must still revoke are
    /// left out, as Kafka's describe leaves them out).
    pub assignment: Assignment,
    /// What the group's assignor gave it at the assignment epoch.
    pub target_assignment: Assignment,
}

impl ConsumerGroupDescription {
    pub(super) fn of(group: &ConsumerGroup) -> ConsumerGroupDescription {
        ConsumerGroupDescription {
            group_id: group.id.clone(),
            state: group.state(),
            group_epoch: group.group_epoch,
            assignment_epoch: group.assignment_epoch,
            assignor_name: group.assignor.name().to_owned(),
            members: group
                .members
                .values()
                .map(|member| describe_member(member, group.target.get(&member.id)))
                .collect(),
        }
    }
}

fn describe_member(member: &ConsumerMember, target: Option<&Assignment>) -> ConsumerMemberDescription {
    ConsumerMemberDescription {
        member_id: member.id.clone(),
        instance_id: member.instance_id.clone(),
        member_epoch: member.epoch,
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        subscribed_topic_names: member.subscribed.iter().cloned().collect(),
        subscribed_topic_regex: member.subscribed_regex.as_ref().map(|regex| regex.source().to_owned()),
        assignment: member.assigned.clone(),
        target_assignment: target.cloned().unwrap_or_default(),
    }
}
