//! ConsumerGroupHeartbeat (KIP-848, `group.protocol=consumer`): translates
//! the request to the core's heartbeat and its reply back, topic ids and
//! partitions both ways. Membership, epochs and assignments are the core's
//! (`conveyor_core::group`); the classic protocol's handlers are `groups.rs`.

use conveyor_core::auth::{Operation, Resource};
use conveyor_core::group::{Assignment, ConsumerHeartbeat, TopicShape};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment as WireAssignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::Context;
use crate::connection::ConnectionInfo;
use crate::errors::consumer_group_error;

pub fn heartbeat(
    context: &Context,
    connection: &ConnectionInfo,
    client_id: String,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if !connection.allowed(context, &Resource::Group(&request.group_id), Operation::Read) {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    // An empty regex means "no regex", as Kafka reads it (librdkafka sends one with a topic-name subscription).
    if request.subscribed_topic_regex.as_ref().is_some_and(|regex| !regex.is_empty()) {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SubscribedTopicRegex is not supported by Conveyor yet.",
            )));
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
        member_epoch: request.member_epoch,
        client_id,
        client_host: format!("/{}", connection.peer.ip()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|name| name.0.to_string()).collect()),
        server_assignor: request.server_assignor.map(|name| name.to_string()),
        owned,
    };
    // Topics the client may not describe are treated as absent, as Kafka's subscription does.
    let resolve = |name: &str| -> Option<TopicShape> {
        if !connection.allowed(context, &Resource::Topic(name), Operation::Describe) {
            return None;
        }
        context.broker.topic(name).map(|topic| TopicShape {
            id: topic.id,
            partition_count: topic.partition_count(),
        })
    };
    match context.broker.groups().consumer_heartbeat(&request.group_id.0, heartbeat, &resolve) {
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
