//! `/api/v1/topics`: list, create, describe (partitions with their offsets
//! and sizes, effective configs), alter configs and delete Kafka topics.
//! Creation and config changes go through the same core validation as
//! Kafka's CreateTopics and IncrementalAlterConfigs, so names, partition
//! counts and configs follow Kafka's rules and messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_core::{Broker, Topic};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, blocking};
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicSummary {
    pub name: String,
    pub id: String,
    pub partitions: u32,
    /// Records stored over all partitions (end offset minus log start offset).
    pub messages: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionInfo {
    pub partition: u32,
    /// The first offset still stored.
    pub log_start_offset: u64,
    /// The offset after the last committed record (the high watermark).
    pub end_offset: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigValue {
    pub name: String,
    pub value: String,
    /// True when the value is the broker's default, not set on the topic.
    pub is_default: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDetail {
    pub name: String,
    pub id: String,
    pub partitions: Vec<PartitionInfo>,
    /// Every effective config, Kafka's names.
    pub configs: Vec<ConfigValue>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    /// Defaults to the broker's `default_partitions`.
    #[serde(default)]
    pub partitions: Option<u32>,
    /// Kafka topic configs (`retention.ms`, `segment.bytes`, ...).
    #[serde(default)]
    pub configs: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigs {
    /// Kafka topic configs to set; a null value resets one to the broker's default.
    pub configs: BTreeMap<String, Option<String>>,
}

/// The topic, or 404.
pub(super) fn find(broker: &Broker, name: &str) -> Result<Arc<Topic>, ApiError> {
    broker
        .topic(name)
        .ok_or_else(|| ApiError::not_found(format!("topic {name:?} does not exist")))
}

fn summary(topic: &Topic) -> TopicSummary {
    // Opens no log: an unopened partition's figures are the stored ones.
    let summaries = topic.partition_summaries();
    TopicSummary {
        name: topic.name.clone(),
        id: topic.id.to_string(),
        partitions: summaries.len() as u32,
        messages: summaries
            .iter()
            .map(|summary| summary.high_watermark.saturating_sub(summary.start_offset))
            .sum(),
        size_bytes: summaries.iter().map(|summary| summary.size_bytes).sum(),
    }
}

fn detail(broker: &Broker, topic: &Topic) -> TopicDetail {
    let partitions = topic
        .partition_summaries()
        .iter()
        .enumerate()
        .map(|(index, summary)| PartitionInfo {
            partition: index as u32,
            log_start_offset: summary.start_offset,
            end_offset: summary.high_watermark,
            size_bytes: summary.size_bytes,
        })
        .collect();
    let configs = topic
        .config()
        .entries(&broker.config().topic_defaults)
        .into_iter()
        .map(|entry| ConfigValue {
            name: entry.name.to_owned(),
            value: entry.value,
            is_default: entry.is_default,
        })
        .collect();
    TopicDetail {
        name: topic.name.clone(),
        id: topic.id.to_string(),
        partitions,
        configs,
    }
}

/// Every topic, by name.
#[utoipa::path(get, operation_id = "list_topics", path = "/topics", tag = "topics",
    responses((status = 200, body = Vec<TopicSummary>), (status = 500, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<TopicSummary>>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let topics = blocking(move || Ok(broker.topics().iter().map(|topic| summary(topic)).collect())).await?;
    Ok(Json(topics))
}

/// Creates a topic (Kafka's rules for names, partition counts and configs).
#[utoipa::path(post, operation_id = "create_topic", path = "/topics", tag = "topics", request_body = CreateTopic,
    responses(
        (status = 201, body = TopicDetail),
        (status = 400, description = "invalid name, partition count or config, or malformed JSON", body = ErrorBody),
        (status = 409, description = "the topic exists", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "the body does not match the schema", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<Arc<HttpState>>,
    ApiJson(request): ApiJson<CreateTopic>,
) -> Result<(StatusCode, Json<TopicDetail>), ApiError> {
    let broker = &state.broker;
    let topic = broker
        .create_topic(&request.name, request.partitions, request.configs.unwrap_or_default())
        .await?;
    Ok((StatusCode::CREATED, Json(detail(broker, &topic))))
}

/// A topic's partitions (offsets, sizes) and effective configs.
#[utoipa::path(get, operation_id = "describe_topic", path = "/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "topic name")),
    responses((status = 200, body = TopicDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn describe(State(state): State<Arc<HttpState>>, ApiPath(name): ApiPath<String>) -> Result<Json<TopicDetail>, ApiError> {
    let topic = find(&state.broker, &name)?;
    Ok(Json(detail(&state.broker, &topic)))
}

/// Deletes a topic and all its data.
#[utoipa::path(delete, operation_id = "delete_topic", path = "/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "topic name")),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<Arc<HttpState>>, ApiPath(name): ApiPath<String>) -> Result<StatusCode, ApiError> {
    state.broker.delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets or resets some of a topic's configs, leaving the others as they are
/// (Kafka's IncrementalAlterConfigs); answers with the topic as it is now.
#[utoipa::path(patch, operation_id = "alter_topic_configs", path = "/topics/{name}/configs", tag = "topics",
    params(("name" = String, Path, description = "topic name")),
    request_body = AlterConfigs,
    responses(
        (status = 200, body = TopicDetail),
        (status = 400, description = "an unknown config or an invalid value, or malformed JSON", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn alter_configs(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<AlterConfigs>,
) -> Result<Json<TopicDetail>, ApiError> {
    let broker = &state.broker;
    broker.alter_topic_config(&name, request.configs, false, false).await?;
    let topic = find(broker, &name)?;
    Ok(Json(detail(broker, &topic)))
}
