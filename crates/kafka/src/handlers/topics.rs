//! CreateTopics, DeleteTopics and CreatePartitions. A single node honours
//! replication factor 1 (or -1, "the default") only; a cluster node up to
//! its number of nodes (the core's rule).

use std::collections::BTreeMap;

use conveyor_core::CoreError;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::configs::{SOURCE_DEFAULT, SOURCE_TOPIC};
use super::message;
use conveyor_core::auth::{Operation, Resource};

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

pub async fn create(context: &Context, connection: &ConnectionInfo, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    // CREATE on the cluster covers every topic; else CREATE on each one.
    let on_cluster = connection.allowed(context, &Resource::Cluster, Operation::Create);
    let node_id = context.config.node_id;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        let outcome = async {
            if !on_cluster && !connection.allowed(context, &Resource::Topic(&name), Operation::Create) {
                return Err((ResponseError::TopicAuthorizationFailed, "Authorization failed.".into()));
            }
            // -1 is "the default"; the core says what a node can honour
            // (1 alone, or up to the cluster's size).
            let replication_factor = match topic.replication_factor {
                -1 => None,
                requested => match u16::try_from(requested) {
                    Ok(requested) if requested > 0 => Some(requested),
                    _ => {
                        return Err((
                            ResponseError::InvalidReplicationFactor,
                            format!("replication factor {requested} cannot be reached: it must be positive or -1"),
                        ));
                    }
                },
            };
            let replicas = context
                .broker
                .replication_factor_for(replication_factor)
                .map_err(|error| (errors::core_error(&error), error.to_string()))?
                .unwrap_or(1);
            let partitions = if topic.assignments.is_empty() {
                (topic.num_partitions != -1).then_some(topic.num_partitions)
            } else {
                if topic.num_partitions != -1 {
                    return Err((
                        ResponseError::InvalidRequest,
                        "give either num_partitions or assignments, not both".into(),
                    ));
                }
                if topic
                    .assignments
                    .iter()
                    .any(|assignment| assignment.broker_ids.iter().any(|broker| broker.0 != node_id))
                {
                    return Err((ResponseError::InvalidReplicaAssignment, format!("the only broker is {node_id}")));
                }
                Some(topic.assignments.len() as i32)
            };
            let partitions = match partitions.map(u32::try_from) {
                None => None,
                Some(Ok(count)) => Some(count),
                Some(Err(_)) => return Err((ResponseError::InvalidPartitions, "the partition count must be positive".into())),
            };
            let configs: BTreeMap<String, String> = topic
                .configs
                .iter()
                .filter_map(|config| config.value.as_ref().map(|value| (config.name.to_string(), value.to_string())))
                .collect();
            let map = |error: CoreError| (errors::core_error(&error), error.to_string());
            if request.validate_only {
                let (count, config) = context.broker.validate_new_topic(&name, partitions, &configs).map_err(map)?;
                return Ok((count, config, uuid::Uuid::nil(), replicas));
            }
            let created = context
                .broker
                .create_topic_with_replicas(&name, partitions, configs, replication_factor)
                .await
                .map_err(map)?;
            Ok((created.partition_count(), created.config(), created.id, replicas))
        }
        .await;
        match outcome {
            Ok((count, config, id, replicas)) => {
                if version >= 5 {
                    result.num_partitions = count as i32;
                    result.replication_factor = i16::try_from(replicas).unwrap_or(i16::MAX);
                    let defaults = &context.broker.config().topic_defaults;
                    result.configs = Some(
                        config
                            .entries(defaults)
                            .into_iter()
                            .map(|entry| {
                                CreatableTopicConfigs::default()
                                    .with_name(StrBytes::from_static_str(entry.name))
                                    .with_value(Some(StrBytes::from_string(entry.value)))
                                    .with_config_source(if entry.is_default { SOURCE_DEFAULT } else { SOURCE_TOPIC })
                            })
                            .collect(),
                    );
                }
                if version >= 7 {
                    result.topic_id = id;
                }
            }
            Err((code, text)) => {
                result.error_code = code.code();
                result.error_message = message(text);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub async fn delete(context: &Context, connection: &ConnectionInfo, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let targets: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        request.topics.into_iter().map(|state| (state.name, state.topic_id)).collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|name| (Some(name), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let resolved = match &name {
            Some(name) => Some(name.0.to_string()),
            None => context.broker.topic_by_id(id).map(|topic| topic.name.clone()),
        };
        let mut result = DeletableTopicResult::default();
        let topic_id = resolved
            .as_deref()
            .and_then(|name| context.broker.topic(name))
            .map(|topic| topic.id);
        let outcome = match &resolved {
            Some(name) if !connection.allowed(context, &Resource::Topic(name), Operation::Delete) => {
                Err((ResponseError::TopicAuthorizationFailed, "Authorization failed.".into()))
            }
            Some(name) => context
                .broker
                .delete_topic(name)
                .await
                .map_err(|error| (errors::core_error(&error), error.to_string())),
            None => Err((ResponseError::UnknownTopicId, format!("no topic has id {id}"))),
        };
        if let Err((code, text)) = outcome {
            result.error_code = code.code();
            if version >= 5 {
                result.error_message = message(text);
            }
        }
        result.name = resolved.map(|name| TopicName(StrBytes::from_string(name))).or(name);
        if version >= 6 {
            result.topic_id = topic_id.unwrap_or(id);
        }
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    context: &Context,
    connection: &ConnectionInfo,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node_id = context.config.node_id;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let outcome = async {
            if !connection.allowed(context, &Resource::Topic(&name), Operation::Alter) {
                return Err((ResponseError::TopicAuthorizationFailed, "Authorization failed.".into()));
            }
            let total = u32::try_from(topic.count)
                .map_err(|_| (ResponseError::InvalidPartitions, "the partition count must be positive".to_owned()))?;
            let map = |error: CoreError| (errors::core_error(&error), error.to_string());
            let existing = context.broker.validate_partition_count(&name, total).map_err(map)?;
            if let Some(assignments) = &topic.assignments {
                let added = (total - existing.partition_count()) as usize;
                if assignments.len() != added {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("{} assignments given for {added} new partitions", assignments.len()),
                    ));
                }
                if assignments
                    .iter()
                    .any(|assignment| assignment.broker_ids.iter().any(|broker| broker.0 != node_id))
                {
                    return Err((ResponseError::InvalidReplicaAssignment, format!("the only broker is {node_id}")));
                }
            }
            if request.validate_only {
                return Ok(());
            }
            context.broker.create_partitions(&name, total).await.map_err(map)
        }
        .await;
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name);
        if let Err((code, text)) = outcome {
            result.error_code = code.code();
            result.error_message = message(text);
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}
