//! KIP-932's share-group offsets admin on the wire:
//! DescribeShareGroupOffsets (DESCRIBE on the group; topics without
//! DESCRIBE are answered TOPIC_AUTHORIZATION_FAILED, or left out when all
//! are asked for), AlterShareGroupOffsets (READ on the group and each topic)
//! and DeleteShareGroupOffsets (DELETE on the group, READ on each topic),
//! answered as Kafka 4.1's `KafkaApis` answers them. What a start offset is
//! and when it may change are the core's (`Broker::share_group_offsets`).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition, DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use conveyor_core::auth::{Operation, Resource};
use conveyor_core::broker::ShareOffsetError;

use super::message;
use super::share_groups::membership_error;
use crate::Context;
use crate::connection::ConnectionInfo;

/// Kafka's texts of the errors these APIs answer with (`Errors.message()`).
const TOPIC_AUTHORIZATION_FAILED: &str = "Topic authorization failed.";
const GROUP_AUTHORIZATION_FAILED: &str = "Group authorization failed.";
const INVALID_GROUP_ID: &str = "The configured groupId is invalid.";
/// The start offset of a share-partition the group does not have.
const UNINITIALIZED: i64 = -1;

fn name(text: String) -> TopicName {
    TopicName(StrBytes::from_string(text))
}

fn offset_error(error: &ShareOffsetError) -> ResponseError {
    match error {
        ShareOffsetError::UnknownTopicOrPartition | ShareOffsetError::NoOffsets => ResponseError::UnknownTopicOrPartition,
        ShareOffsetError::Storage(_) => ResponseError::KafkaStorageError,
    }
}

/// A topic's name and the partitions asked of it.
type TopicPartitions = (String, Vec<i32>);

pub async fn describe(
    context: &Context,
    connection: &ConnectionInfo,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for group in request.groups {
        let answer = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(group.group_id.clone());
        if !connection.allowed(context, &Resource::Group(&group.group_id), Operation::Describe) {
            groups.push(answer.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        let may_describe = |topic: &str| connection.allowed(context, &Resource::Topic(topic), Operation::Describe);
        let (asked, refused): (Option<Vec<TopicPartitions>>, Vec<TopicPartitions>) = match group.topics {
            None => (None, Vec::new()),
            Some(topics) => {
                let (allowed, refused) = topics
                    .into_iter()
                    .map(|topic| (topic.topic_name.0.to_string(), topic.partitions))
                    .partition(|(topic, _)| may_describe(topic.as_str()));
                (Some(allowed), refused)
            }
        };
        let all = asked.is_none();
        let read = if asked.as_ref().is_some_and(Vec::is_empty) {
            Vec::new()
        } else {
            context.broker.share_group_offsets(&group.group_id, asked).await
        };
        let mut topics: Vec<DescribeShareGroupOffsetsResponseTopic> = read
            .into_iter()
            // Asked for all: the topics the client may not describe are left out.
            .filter(|topic| !all || may_describe(topic.name.as_str()))
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .into_iter()
                    .map(|(index, start)| {
                        let answer = DescribeShareGroupOffsetsResponsePartition::default().with_partition_index(index);
                        match start {
                            Ok(start) => {
                                answer.with_start_offset(start.and_then(|start| i64::try_from(start).ok()).unwrap_or(UNINITIALIZED))
                            }
                            Err(error) => answer
                                .with_start_offset(UNINITIALIZED)
                                .with_error_code(offset_error(&error).code())
                                .with_error_message(message(error)),
                        }
                    })
                    .collect();
                DescribeShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(name(topic.name))
                    .with_topic_id(topic.id.unwrap_or(Uuid::nil()))
                    .with_partitions(partitions)
            })
            .collect();
        topics.extend(refused.into_iter().map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    DescribeShareGroupOffsetsResponsePartition::default()
                        .with_partition_index(index)
                        .with_start_offset(UNINITIALIZED)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_error_message(message(TOPIC_AUTHORIZATION_FAILED))
                })
                .collect();
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(name(topic))
                .with_partitions(partitions)
        }));
        groups.push(answer.with_topics(topics));
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

/// Why an Alter or Delete request is refused before its group is looked
/// at: an empty group id, or `operation` on the group not allowed.
fn refused_up_front(
    context: &Context,
    connection: &ConnectionInfo,
    group: &str,
    operation: Operation,
) -> Option<(ResponseError, &'static str)> {
    if group.is_empty() {
        return Some((ResponseError::InvalidGroupId, INVALID_GROUP_ID));
    }
    if !connection.allowed(context, &Resource::Group(group), operation) {
        return Some((ResponseError::GroupAuthorizationFailed, GROUP_AUTHORIZATION_FAILED));
    }
    None
}

pub async fn alter(
    context: &Context,
    connection: &ConnectionInfo,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    // The whole request refused: `code` with its text.
    let refused = |code: ResponseError, text: String| {
        AlterShareGroupOffsetsResponse::default()
            .with_error_code(code.code())
            .with_error_message(message(text))
    };
    let GroupId(group) = &request.group_id;
    if let Some((code, text)) = refused_up_front(context, connection, group, Operation::Read) {
        return refused(code, text.to_owned());
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = request
        .topics
        .into_iter()
        .partition(|topic| connection.allowed(context, &Resource::Topic(&topic.topic_name), Operation::Read));
    let changes = allowed
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| (partition.partition_index, partition.start_offset))
                .collect();
            (topic.topic_name.0.to_string(), partitions)
        })
        .collect();
    let altered = match context.broker.alter_share_group_offsets(group, changes).await {
        Ok(altered) => altered,
        Err(error) => return refused(membership_error(&error), error.to_string()),
    };
    let mut responses: Vec<AlterShareGroupOffsetsResponseTopic> = altered
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|(index, result)| {
                    let answer = AlterShareGroupOffsetsResponsePartition::default().with_partition_index(index);
                    match result {
                        Ok(()) => answer,
                        Err(error) => answer
                            .with_error_code(offset_error(&error).code())
                            .with_error_message(message(error)),
                    }
                })
                .collect();
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(name(topic.name))
                .with_topic_id(topic.id.unwrap_or(Uuid::nil()))
                .with_partitions(partitions)
        })
        .collect();
    responses.extend(denied.into_iter().map(|topic| {
        let partitions = topic
            .partitions
            .iter()
            .map(|partition| {
                AlterShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(message(TOPIC_AUTHORIZATION_FAILED))
            })
            .collect();
        AlterShareGroupOffsetsResponseTopic::default()
            .with_topic_name(topic.topic_name)
            .with_partitions(partitions)
    }));
    AlterShareGroupOffsetsResponse::default().with_responses(responses)
}

pub async fn delete(
    context: &Context,
    connection: &ConnectionInfo,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    // The whole request refused: `code` with its text.
    let refused = |code: ResponseError, text: String| {
        DeleteShareGroupOffsetsResponse::default()
            .with_error_code(code.code())
            .with_error_message(message(text))
    };
    let GroupId(group) = &request.group_id;
    if let Some((code, text)) = refused_up_front(context, connection, group, Operation::Delete) {
        return refused(code, text.to_owned());
    }
    let (allowed, denied): (Vec<String>, Vec<String>) = request
        .topics
        .into_iter()
        .map(|topic| topic.topic_name.0.to_string())
        .partition(|topic| connection.allowed(context, &Resource::Topic(topic), Operation::Read));
    let deleted = match context.broker.delete_share_group_offsets(group, allowed).await {
        Ok(deleted) => deleted,
        Err(error) => return refused(membership_error(&error), error.to_string()),
    };
    let denied = denied.into_iter().map(|topic| {
        DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(name(topic))
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_error_message(message(TOPIC_AUTHORIZATION_FAILED))
    });
    let responses = deleted
        .into_iter()
        .map(|(topic, id, result)| {
            let answer = DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(name(topic))
                .with_topic_id(id.unwrap_or(Uuid::nil()));
            match result {
                Ok(()) => answer,
                Err(error) => answer
                    .with_error_code(offset_error(&error).code())
                    .with_error_message(message(error)),
            }
        })
        .chain(denied)
        .collect();
    DeleteShareGroupOffsetsResponse::default().with_responses(responses)
}
