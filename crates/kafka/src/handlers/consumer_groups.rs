//! ConsumerGroupHeartbeat and ConsumerGroupDescribe (KIP-848,
//! `group.protocol=consumer`): translates the request to the core's
//! heartbeat and its reply back, topic ids and partitions both ways, and the
//! core's description of a group to the wire (topic ids given their names).
//! Membership, epochs and assignments are the core's (`conveyor_core::group`);
//! the classic protocol's handlers are `groups.rs`.

use conveyor_core::auth::{Operation, Resource};
use conveyor_core::group::{Assignment, ConsumerGroupDescription, ConsumerHeartbeat, TopicLookup, TopicShape};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{self, DescribedGroup, Member};
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment as WireAssignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::Context;
use crate::connection::ConnectionInfo;
use crate::errors::consumer_group_error;

pub async fn heartbeat(
    context: &Context,
    connection: &ConnectionInfo,
    client_id: String,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
) -> ConsumerGroupHeartbeatResponse {
    if !connection.allowed(context, &Resource::Group(&request.group_id), Operation::Read) {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Some(code) = super::groups::coordinator_refusal(context).await {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(code);
    }
    // KIP-1082: from v1 the client chooses its member id, as Kafka's
    // throwIfConsumerGroupHeartbeatRequestIsInvalid requires.
    if version >= CLIENT_MEMBER_ID_VERSION && request.member_id.is_empty() {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str("MemberId can't be empty.")));
    }
    let owned = request.topic_partitions.map(|topics| {
        let mut owned = Assignment::new();
        for topic in topics {
            owned.entry(topic.topic_id).or_default().extend(topic.partitions);
        }
        owned
    });
    let heartbeat = ConsumerHeartbeat {
        member_id: request.member_id.to_string(),
        instance_id: request.instance_id.map(|instance_id| instance_id.to_string()),
        member_epoch: request.member_epoch,
        client_id,
        client_host: format!("/{}", connection.peer.ip()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|name| name.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|regex| regex.to_string()),
        server_assignor: request.server_assignor.map(|name| name.to_string()),
        owned,
    };
    let topics = DescribableTopics { context, connection };
    match context
        .broker
        .consumer_group_heartbeat(&request.group_id.0, heartbeat, &topics)
        .await
    {
        Ok((reply, heartbeat_interval_ms)) => {
            let assignment = reply.assignment.map(|assignment| {
                let topic_partitions = assignment
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        TopicPartitions::default()
                            .with_topic_id(topic_id)
                            .with_partitions(partitions.into_iter().collect())
                    })
                    .collect();
                WireAssignment::default().with_topic_partitions(topic_partitions)
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(reply.member_id)))
                .with_member_epoch(reply.member_epoch)
                .with_heartbeat_interval_ms(heartbeat_interval_ms)
                .with_assignment(assignment)
        }
        Err(error) => {
            tracing::debug!(group = %request.group_id.0, %error, "ConsumerGroupHeartbeat refused");
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(consumer_group_error(&error).code())
                .with_error_message(Some(StrBytes::from_string(error.to_string())))
        }
    }
}

/// The broker's topics as a member's subscription sees them: topics the
/// client may not describe are absent, as Kafka's subscription treats them.
struct DescribableTopics<'a> {
    context: &'a Context,
    connection: &'a ConnectionInfo,
}

impl TopicLookup for DescribableTopics<'_> {
    fn shape(&self, name: &str) -> Option<TopicShape> {
        if !self.connection.allowed(self.context, &Resource::Topic(name), Operation::Describe) {
            return None;
        }
        self.context.broker.topic(name).map(|topic| TopicShape {
            id: topic.id,
            partition_count: topic.partition_count(),
        })
    }

    fn names(&self) -> Vec<String> {
        self.context.broker.topics().iter().map(|topic| topic.name.clone()).collect()
    }
}

/// The first ConsumerGroupHeartbeat version whose member id the client
/// generates (KIP-1082).
const CLIENT_MEMBER_ID_VERSION: i16 = 1;

/// KIP-1099's member type of a member that speaks the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

/// ConsumerGroupDescribe: each group's epochs, assignor and members with
/// their current and target assignments. A group of the classic protocol, or
/// no group, is GROUP_ID_NOT_FOUND (clients then fall back to DescribeGroups).
/// On a cluster, a node that does not coordinate answers NOT_COORDINATOR.
pub async fn describe(
    context: &Context,
    connection: &ConnectionInfo,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let refusal = super::groups::coordinator_refusal(context).await;
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let failed = |code: i16, message: Option<String>| {
                DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_authorized_operations(super::AUTHORIZED_OPERATIONS_OMITTED)
            };
            if !connection.allowed(context, &Resource::Group(&group_id), Operation::Describe) {
                return failed(ResponseError::GroupAuthorizationFailed.code(), None);
            }
            if let Some(code) = refusal {
                return failed(code, None);
            }
            match context.broker.groups().describe_kip848_group(&group_id) {
                Ok(description) => {
                    let authorized_operations = if request.include_authorized_operations {
                        super::authorized_operations(context, connection, &Resource::Group(&group_id), &super::GROUP_OPERATIONS)
                    } else {
                        super::AUTHORIZED_OPERATIONS_OMITTED
                    };
                    described(context, group_id.clone(), description).with_authorized_operations(authorized_operations)
                }
                Err(error) => failed(consumer_group_error(&error).code(), Some(error.to_string())),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn described(context: &Context, group_id: GroupId, description: ConsumerGroupDescription) -> DescribedGroup {
    let members = description
        .members
        .into_iter()
        .map(|member| {
            Member::default()
                .with_member_id(StrBytes::from_string(member.member_id))
                .with_instance_id(member.instance_id.map(StrBytes::from_string))
                .with_member_epoch(member.member_epoch)
                .with_client_id(StrBytes::from_string(member.client_id))
                .with_client_host(StrBytes::from_string(member.client_host))
                .with_subscribed_topic_names(
                    member
                        .subscribed_topic_names
                        .into_iter()
                        .map(|name| TopicName(StrBytes::from_string(name)))
                        .collect(),
                )
                .with_subscribed_topic_regex(member.subscribed_topic_regex.map(StrBytes::from_string))
                .with_assignment(named_assignment(context, member.assignment))
                .with_target_assignment(named_assignment(context, member.target_assignment))
                .with_member_type(MEMBER_TYPE_CONSUMER)
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(group_id)
        .with_group_state(StrBytes::from_static_str(description.state.name()))
        .with_group_epoch(description.group_epoch)
        .with_assignment_epoch(description.assignment_epoch)
        .with_assignor_name(StrBytes::from_string(description.assignor_name))
        .with_members(members)
}

/// An assignment by topic id, with each topic's name (a topic deleted since
/// is left out: it has no name to show).
fn named_assignment(context: &Context, assignment: Assignment) -> consumer_group_describe_response::Assignment {
    let topic_partitions = assignment
        .into_iter()
        .filter_map(|(topic_id, partitions)| {
            let topic = context.broker.topic_by_id(topic_id)?;
            Some(
                consumer_group_describe_response::TopicPartitions::default()
                    .with_topic_id(topic_id)
                    .with_topic_name(TopicName(StrBytes::from_string(topic.name.clone())))
                    .with_partitions(partitions.into_iter().collect()),
            )
        })
        .collect();
    consumer_group_describe_response::Assignment::default().with_topic_partitions(topic_partitions)
}
