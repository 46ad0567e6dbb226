//! OffsetCommit, OffsetFetch and OffsetDelete: committed offsets of consumer
//! groups, stored durably by the core's group coordinator.

use conveyor_core::group::OffsetCommit;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::groups::{coordinator_refusal, subscribed_topics};
use conveyor_core::auth::{Operation, Resource};

use crate::Context;
use crate::connection::ConnectionInfo;
use crate::errors::{consumer_group_error, group_error};

pub async fn commit(context: &Context, connection: &ConnectionInfo, request: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
    // READ on the group refuses the whole request; READ on each topic its partitions.
    let group_refused = !connection.allowed(context, &Resource::Group(&request.group_id), Operation::Read);
    let generation = request.generation_id_or_member_epoch;
    // Generation -1 with no member: a commit from outside the group protocol
    // (kafka-python's or an admin's manual commit), allowed for empty groups.
    let member = (generation >= 0 || !request.member_id.is_empty())
        .then(|| (request.member_id.as_str(), request.group_instance_id.as_deref(), generation));
    // Which partitions exist decides each partition's error before anything is stored.
    let mut commits = Vec::new();
    let mut slots = Vec::new();
    let mut refused_topics = Vec::new();
    for topic in &request.topics {
        let topic_refused = group_refused || !connection.allowed(context, &Resource::Topic(&topic.name), Operation::Read);
        refused_topics.push(topic_refused);
        let known = context.broker.topic(&topic.name).filter(|_| !topic_refused);
        for partition in &topic.partitions {
            let exists = known
                .as_ref()
                .is_some_and(|found| u32::try_from(partition.partition_index).is_ok_and(|index| index < found.partition_count()));
            if exists {
                commits.push(OffsetCommit {
                    topic: topic.name.0.to_string(),
                    partition: partition.partition_index as u32,
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata: partition.committed_metadata.as_ref().map(|metadata| metadata.to_string()),
                });
            }
            slots.push(exists);
        }
    }
    let groups = context.broker.groups();
    let refusal = if group_refused { None } else { coordinator_refusal(context).await };
    let outcome = match member {
        _ if let Some(code) = refusal => Err(code),
        // A share group's id has no committed offsets, whoever commits.
        _ if let Err(error) = context.broker.check_offsets_group(&request.group_id.0) => Err(group_error(&error).code()),
        // A KIP-848 group's member sends its member epoch (v9+), checked as Kafka does.
        Some((member_id, _, member_epoch)) if groups.is_consumer_group(&request.group_id.0) => {
            if version < 9 {
                Err(ResponseError::UnsupportedVersion.code())
            } else {
                groups
                    .commit_consumer_offsets(&request.group_id.0, member_id, member_epoch, commits)
                    .await
                    .map_err(|error| consumer_group_error(&error).code())
            }
        }
        _ => groups
            .commit_offsets(&request.group_id.0, member, commits)
            .await
            .map_err(|error| group_error(&error).code()),
    };
    let mut stored = match &outcome {
        Ok(results) => results
            .iter()
            .map(|result| result.as_ref().err().map_or(0, |error| group_error(error).code()))
            .collect::<Vec<_>>()
            .into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let whole_request_error = if group_refused {
        Some(ResponseError::GroupAuthorizationFailed.code())
    } else {
        outcome.as_ref().err().copied()
    };
    let mut slots = slots.into_iter();
    let mut refused_topics = refused_topics.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let topic_refused = refused_topics.next().unwrap_or(true);
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let exists = slots.next().unwrap_or(false);
                    let error_code = match (whole_request_error, exists) {
                        (Some(code), _) => code,
                        (None, false) if topic_refused => ResponseError::TopicAuthorizationFailed.code(),
                        (None, false) => ResponseError::UnknownTopicOrPartition.code(),
                        (None, true) => stored.next().unwrap_or(0),
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(error_code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One fetched partition: (index, offset, leader epoch, metadata).
type Fetched = (i32, i64, i32, String);

/// Committed offsets of topics the client may describe only, as Kafka
/// leaves the others out.
fn visible(context: &Context, connection: &ConnectionInfo, fetched: Vec<(TopicName, Vec<Fetched>)>) -> Vec<(TopicName, Vec<Fetched>)> {
    fetched
        .into_iter()
        .filter(|(name, _)| connection.allowed(context, &Resource::Topic(name), Operation::Describe))
        .collect()
}

/// Committed offsets of `group` for `topics` (`None`: every committed partition).
fn fetch_group(context: &Context, group: &str, topics: Option<Vec<(TopicName, Vec<i32>)>>) -> Vec<(TopicName, Vec<Fetched>)> {
    let store = context.broker.groups().offsets();
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let fetched = partitions
                    .into_iter()
                    .map(
                        |index| match u32::try_from(index).ok().and_then(|partition| store.get(group, &name.0, partition)) {
                            Some(committed) => (index, committed.offset, committed.leader_epoch, committed.metadata),
                            None => (index, -1, -1, String::new()),
                        },
                    )
                    .collect();
                (name, fetched)
            })
            .collect(),
        None => {
            let mut by_topic: Vec<(TopicName, Vec<Fetched>)> = Vec::new();
            for (topic, partition, committed) in store.of_group(group) {
                let entry = (partition as i32, committed.offset, committed.leader_epoch, committed.metadata);
                match by_topic.last_mut() {
                    Some((name, partitions)) if *name.0 == *topic => partitions.push(entry),
                    _ => by_topic.push((TopicName(StrBytes::from_string(topic)), vec![entry])),
                }
            }
            by_topic
        }
    }
}

/// With `require_stable` (OffsetFetch v7+, a read_committed consumer's),
/// the partitions of `group` whose offset a transaction has pending:
/// answered UNSTABLE_OFFSET_COMMIT, which clients retry, until it ends.
fn unstable_partitions(context: &Context, group: &str, require_stable: bool) -> std::collections::BTreeSet<(String, u32)> {
    if !require_stable {
        return std::collections::BTreeSet::new();
    }
    context.broker.transactions().pending_offset_partitions(group)
}

pub async fn fetch(context: &Context, connection: &ConnectionInfo, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    // One node coordinates every group: the answer is the same for each.
    let refusal = coordinator_refusal(context).await;
    if version >= 8 {
        response.groups = request
            .groups
            .into_iter()
            .map(|group| {
                let topics = group
                    .topics
                    .map(|topics| topics.into_iter().map(|topic| (topic.name, topic.partition_indexes)).collect());
                if !connection.allowed(context, &Resource::Group(&group.group_id), Operation::Describe) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(group.group_id)
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code());
                }
                if let Some(code) = refusal {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(group.group_id)
                        .with_error_code(code);
                }
                // A KIP-848 member (v9+) must send its current member epoch.
                if let Some(member_id) = group.member_id.as_ref().filter(|id| !id.is_empty()) {
                    let checked = context
                        .broker
                        .groups()
                        .check_consumer_member(&group.group_id.0, member_id, group.member_epoch);
                    if let Some(Err(error)) = checked {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(group.group_id)
                            .with_error_code(consumer_group_error(&error).code());
                    }
                }
                let fetched = visible(context, connection, fetch_group(context, &group.group_id.0, topics));
                let unstable = unstable_partitions(context, &group.group_id.0, request.require_stable);
                let topics = fetched
                    .into_iter()
                    .map(|(name, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|(index, offset, epoch, metadata)| {
                                let answer = OffsetFetchResponsePartitions::default().with_partition_index(index);
                                if unstable.contains(&(name.0.to_string(), index.max(0) as u32)) {
                                    return answer
                                        .with_committed_offset(-1)
                                        .with_error_code(ResponseError::UnstableOffsetCommit.code());
                                }
                                answer
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(StrBytes::from_string(metadata)))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default().with_name(name).with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id)
                    .with_topics(topics)
            })
            .collect();
        return response;
    }
    // v1 lists topics explicitly; from v2 a null list means "all".
    if !connection.allowed(context, &Resource::Group(&request.group_id), Operation::Describe) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    if let Some(code) = refusal {
        // Before v2 a response has no top-level error: each partition has it.
        if version < 2 {
            response.topics = request
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_indexes
                        .into_iter()
                        .map(|index| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(-1)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect();
        }
        response.error_code = code;
        return response;
    }
    let topics = request
        .topics
        .map(|topics| topics.into_iter().map(|topic| (topic.name, topic.partition_indexes)).collect());
    let unstable = unstable_partitions(context, &request.group_id.0, version >= 7 && request.require_stable);
    response.topics = visible(context, connection, fetch_group(context, &request.group_id.0, topics))
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, offset, epoch, metadata)| {
                    if unstable.contains(&(name.0.to_string(), index.max(0) as u32)) {
                        return OffsetFetchResponsePartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(-1)
                            .with_error_code(ResponseError::UnstableOffsetCommit.code());
                    }
                    let mut partition = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_metadata(Some(StrBytes::from_string(metadata)));
                    if version >= 5 {
                        partition.committed_leader_epoch = epoch;
                    }
                    partition
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    response
}

pub async fn delete(context: &Context, connection: &ConnectionInfo, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    if !connection.allowed(context, &Resource::Group(&request.group_id), Operation::Delete) {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Some(code) = coordinator_refusal(context).await {
        return OffsetDeleteResponse::default().with_error_code(code);
    }
    let partitions: Vec<(String, u32)> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| (topic.name.0.to_string(), partition.partition_index.max(0) as u32))
        })
        .collect();
    let mut response = OffsetDeleteResponse::default();
    match context
        .broker
        .groups()
        .delete_offsets(&request.group_id.0, partitions, subscribed_topics)
        .await
    {
        Ok(results) => {
            let mut results = results.into_iter();
            response.topics = request
                .topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            let code = results.next().and_then(Result::err).map_or(0, |error| group_error(&error).code());
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect();
        }
        Err(error) => response.error_code = group_error(&error).code(),
    }
    response
}
