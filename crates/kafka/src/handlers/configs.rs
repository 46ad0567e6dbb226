//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs. Topics carry
//! the configs in `conveyor_core::topic_config`, groups those of
//! `conveyor_core::group_config` (IncrementalAlterConfigs and DescribeConfigs
//! only, as in Kafka); the broker resource shows
//! the defaults they inherit, read-only (they come from `conveyor serve`'s
//! settings, not from the wire).

use std::collections::BTreeMap;

use conveyor_core::group_config;
use conveyor_core::topic_config::{ConfigEntry, TopicConfig, TopicDefaults, keys};
use conveyor_core::{BrokerConfig, CoreError};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::message;
use conveyor_core::auth::{Operation, Resource};

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

/// Resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// KIP-848/KIP-932's GROUP config resource.
const RESOURCE_GROUP: i8 = 32;

/// Config sources (also used in CreateTopics v5+ replies).
pub const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;
/// A group's own config (KIP-848's GROUP_CONFIG).
const SOURCE_GROUP: i8 = 8;

/// Config types (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Each topic key: its type, the broker setting it defaults to (Kafka's
/// synonym), and its documentation.
fn topic_key(name: &str) -> (i8, &'static str, &'static str) {
    match name {
        keys::CLEANUP_POLICY => (
            TYPE_LIST,
            "log.cleanup.policy",
            "What happens to old segments: delete (time and size retention), compact (latest record per key) or both.",
        ),
        keys::DELETE_RETENTION_MS => (
            TYPE_LONG,
            "log.cleaner.delete.retention.ms",
            "How long a tombstone stays in a compacted topic.",
        ),
        keys::MIN_COMPACTION_LAG_MS => (
            TYPE_LONG,
            "log.cleaner.min.compaction.lag.ms",
            "The least time a record stays uncompacted.",
        ),
        keys::MAX_COMPACTION_LAG_MS => (
            TYPE_LONG,
            "log.cleaner.max.compaction.lag.ms",
            "The most time a record stays ineligible for compaction.",
        ),
        keys::MIN_CLEANABLE_DIRTY_RATIO => (
            TYPE_DOUBLE,
            "log.cleaner.min.cleanable.ratio",
            "Compact once the uncompacted part is at least this share of the log.",
        ),
        keys::DURABILITY => (
            TYPE_STRING,
            "durability",
            "When an append is acknowledged: always (after fdatasync), interval:<ms> or never.",
        ),
        keys::INDEX_INTERVAL_BYTES => (TYPE_INT, "log.index.interval.bytes", "Bytes between offset-index entries."),
        keys::MAX_MESSAGE_BYTES => (TYPE_INT, "message.max.bytes", "The largest record batch the topic accepts."),
        keys::MESSAGE_TIMESTAMP_TYPE => (
            TYPE_STRING,
            "log.message.timestamp.type",
            "CreateTime (the producer's timestamp) or LogAppendTime (the broker's).",
        ),
        keys::RETENTION_BYTES => (
            TYPE_LONG,
            "log.retention.bytes",
            "Delete old segments while a partition is larger; -1: no limit.",
        ),
        keys::RETENTION_MS => (
            TYPE_LONG,
            "log.retention.ms",
            "Delete segments whose newest record is older; -1: keep forever.",
        ),
        keys::SEGMENT_BYTES => (TYPE_INT, "log.segment.bytes", "Roll to a new segment before one grows past this."),
        keys::SEGMENT_MS => (TYPE_LONG, "log.roll.ms", "Roll to a new segment once the active one is this old."),
        _ => (TYPE_STRING, "", ""),
    }
}

pub fn describe(context: &Context, connection: &ConnectionInfo, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries = match resource.resource_type {
                RESOURCE_TOPIC if !connection.allowed(context, &Resource::Topic(&resource.resource_name), Operation::DescribeConfigs) => {
                    Err((ResponseError::TopicAuthorizationFailed, "Topic authorization failed.".into()))
                }
                RESOURCE_BROKER if !connection.allowed(context, &Resource::Cluster, Operation::DescribeConfigs) => {
                    Err((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".into()))
                }
                RESOURCE_GROUP if !connection.allowed(context, &Resource::Group(&resource.resource_name), Operation::DescribeConfigs) => {
                    Err((ResponseError::GroupAuthorizationFailed, "Group authorization failed.".into()))
                }
                RESOURCE_GROUP => Ok(group_entries(context, &resource.resource_name)),
                RESOURCE_TOPIC => topic_entries(context, &resource.resource_name, request.include_synonyms),
                RESOURCE_BROKER => broker_entries(context, &resource.resource_name),
                other => Err((ResponseError::InvalidRequest, format!("resource type {other} has no configs here"))),
            };
            match entries {
                Ok(entries) => {
                    let wanted = |name: &StrBytes| resource.configuration_keys.as_ref().is_none_or(|keys| keys.contains(name));
                    result.configs = entries
                        .into_iter()
                        .filter(|entry| wanted(&entry.name))
                        .map(|mut entry| {
                            if version < 3 {
                                entry.config_type = 0;
                            }
                            if !(version >= 3 && request.include_documentation) {
                                entry.documentation = None;
                            }
                            entry
                        })
                        .collect();
                }
                Err((code, text)) => {
                    result.error_code = code.code();
                    result.error_message = message(text);
                }
            }
            result
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

type Failure = (ResponseError, String);

fn topic_entries(context: &Context, name: &str, include_synonyms: bool) -> Result<Vec<DescribeConfigsResourceResult>, Failure> {
    let topic = context
        .broker
        .topic(name)
        .ok_or_else(|| (ResponseError::UnknownTopicOrPartition, format!("no topic named {name:?}")))?;
    let defaults = &context.broker.config().topic_defaults;
    let inherited = TopicConfig::default().entries(defaults);
    Ok(topic
        .config()
        .entries(defaults)
        .into_iter()
        .zip(inherited)
        .map(|(entry, default)| {
            let (config_type, broker_key, documentation) = topic_key(entry.name);
            let source = if entry.is_default { SOURCE_DEFAULT } else { SOURCE_TOPIC };
            let mut synonyms = Vec::new();
            if include_synonyms {
                if !entry.is_default {
                    synonyms.push(synonym(entry.name, &entry.value, SOURCE_TOPIC));
                }
                synonyms.push(synonym(broker_key, &default.value, broker_source(default.name, &default.value)));
            }
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(entry.name))
                .with_value(Some(StrBytes::from_string(entry.value)))
                .with_config_source(source)
                .with_config_type(config_type)
                .with_synonyms(synonyms)
                .with_documentation(Some(StrBytes::from_static_str(documentation)))
        })
        .collect())
}

fn synonym(name: &'static str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value.to_owned())))
        .with_source(source)
}

/// STATIC_BROKER_CONFIG when `conveyor serve`'s settings changed a topic
/// default, DEFAULT_CONFIG when it is the built-in one.
fn broker_source(name: &str, value: &str) -> i8 {
    // The built-in defaults never change: worked out once, not per entry and request.
    static BUILT_IN: std::sync::OnceLock<Vec<ConfigEntry>> = std::sync::OnceLock::new();
    let built_in = BUILT_IN.get_or_init(|| TopicConfig::default().entries(&TopicDefaults::default()));
    let unchanged = built_in.iter().any(|entry| entry.name == name && entry.value == value);
    if unchanged { SOURCE_DEFAULT } else { SOURCE_STATIC_BROKER }
}

/// The broker's settings under Kafka's broker config names; all read-only.
fn broker_entries(context: &Context, name: &str) -> Result<Vec<DescribeConfigsResourceResult>, Failure> {
    check_broker_name(context, name)?;
    let config = context.broker.config();
    let built_in = BrokerConfig::new("");
    let node_id = context.config.node_id.to_string();
    let mut entries: Vec<(&'static str, String, i8, bool, &'static str)> = vec![
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
            config.auto_create_topics == built_in.auto_create_topics,
            "Create a topic when a client produces to or asks metadata of an unknown one.",
        ),
        ("broker.id", node_id.clone(), TYPE_INT, true, "This broker's id."),
        (
            "default.replication.factor",
            "1".into(),
            TYPE_INT,
            true,
            "Replicas per partition: a one-node cluster has one.",
        ),
        ("node.id", node_id, TYPE_INT, true, "This broker's id."),
        (
            "num.partitions",
            config.default_partitions.to_string(),
            TYPE_INT,
            config.default_partitions == built_in.default_partitions,
            "Partitions of a topic created without a count.",
        ),
    ];
    for ConfigEntry { name, value, .. } in TopicConfig::default().entries(&config.topic_defaults) {
        let (config_type, broker_key, documentation) = topic_key(name);
        let is_default = broker_source(name, &value) == SOURCE_DEFAULT;
        entries.push((broker_key, value, config_type, is_default, documentation));
    }
    entries.sort_by_key(|entry| entry.0);
    Ok(entries
        .into_iter()
        .map(|(name, value, config_type, is_default, documentation)| {
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_read_only(true)
                .with_config_source(if is_default { SOURCE_DEFAULT } else { SOURCE_STATIC_BROKER })
                .with_config_type(config_type)
                .with_documentation(Some(StrBytes::from_static_str(documentation)))
        })
        .collect())
}

/// A broker resource names this broker's id, or "" for the cluster-wide defaults.
fn check_broker_name(context: &Context, name: &str) -> Result<(), Failure> {
    if name.is_empty() || name == context.config.node_id.to_string() {
        Ok(())
    } else {
        Err((
            ResponseError::InvalidRequest,
            format!("no broker {name:?}: this is broker {}", context.config.node_id),
        ))
    }
}

/// Where a config change applies, checked before the change is worked out.
fn alter_target(context: &Context, connection: &ConnectionInfo, resource_type: i8, name: &str) -> Result<(), Failure> {
    match resource_type {
        RESOURCE_TOPIC if !connection.allowed(context, &Resource::Topic(name), Operation::AlterConfigs) => {
            Err((ResponseError::TopicAuthorizationFailed, "Topic authorization failed.".into()))
        }
        RESOURCE_BROKER if !connection.allowed(context, &Resource::Cluster, Operation::AlterConfigs) => {
            Err((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".into()))
        }
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER => {
            check_broker_name(context, name)?;
            Err((
                ResponseError::InvalidRequest,
                "broker configs are read-only: set them in conveyor serve's settings".into(),
            ))
        }
        other => Err((ResponseError::InvalidRequest, format!("resource type {other} has no configs here"))),
    }
}

async fn alter_topic(
    context: &Context,
    name: &str,
    changes: BTreeMap<String, Option<String>>,
    replace: bool,
    validate_only: bool,
) -> Result<(), Failure> {
    context
        .broker
        .alter_topic_config(name, changes, replace, validate_only)
        .await
        .map(drop)
        .map_err(|error: CoreError| (errors::core_error(&error), error.to_string()))
}

/// AlterConfigs: the named configs replace the topic's whole set.
pub async fn alter(context: &Context, connection: &ConnectionInfo, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let outcome = match alter_target(context, connection, resource.resource_type, &name) {
            Ok(()) => {
                let changes = resource
                    .configs
                    .iter()
                    .map(|config| (config.name.to_string(), config.value.as_ref().map(|value| value.to_string())))
                    .collect();
                alter_topic(context, &name, changes, true, request.validate_only).await
            }
            Err(failure) => Err(failure),
        };
        let mut response = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        if let Err((code, text)) = outcome {
            response.error_code = code.code();
            response.error_message = message(text);
        }
        responses.push(response);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// A group's own configs (KIP-848, KIP-932), SET or DELETE; the core
/// checks them as Kafka does and keeps them in the catalog.
async fn alter_group(
    context: &Context,
    connection: &ConnectionInfo,
    group: &str,
    changes: Vec<(String, i8, Option<String>)>,
    validate_only: bool,
) -> Result<(), Failure> {
    if !connection.allowed(context, &Resource::Group(group), Operation::AlterConfigs) {
        return Err((ResponseError::GroupAuthorizationFailed, "Group authorization failed.".into()));
    }
    let mut edits = Vec::with_capacity(changes.len());
    for (key, operation, value) in changes {
        match operation {
            OP_SET => edits.push((key, value)),
            OP_DELETE => edits.push((key, None)),
            OP_APPEND | OP_SUBTRACT => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Config value append or subtract is not allowed for config key: {key}"),
                ));
            }
            other => return Err((ResponseError::InvalidRequest, format!("unknown config operation {other}"))),
        }
    }
    context
        .broker
        .alter_group_configs(group, edits, validate_only)
        .await
        .map_err(|error: CoreError| (errors::core_error(&error), error.to_string()))
}

/// A group's configs: each key its group may set, with the group's own
/// value (GROUP_CONFIG) or the broker's default.
fn group_entries(context: &Context, group: &str) -> Vec<DescribeConfigsResourceResult> {
    let defaults = context.broker.group_config_defaults();
    let overrides = context.broker.group_configs(group);
    group_config::KEYS
        .iter()
        .map(|key| {
            let (value, source) = match overrides.get(*key) {
                Some(value) => (value.clone(), SOURCE_GROUP),
                None => (defaults.default_value(key).unwrap_or_default(), SOURCE_DEFAULT),
            };
            let config_type = if key.ends_with(".ms") { TYPE_INT } else { TYPE_STRING };
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(key))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
                .with_config_type(config_type)
        })
        .collect()
}

/// IncrementalAlterConfigs: SET, DELETE, and APPEND / SUBTRACT on list configs.
pub async fn incremental_alter(
    context: &Context,
    connection: &ConnectionInfo,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let outcome = async {
            if resource.resource_type == RESOURCE_GROUP {
                let changes = resource.configs.iter().map(|config| {
                    (
                        config.name.to_string(),
                        config.config_operation,
                        config.value.as_ref().map(|value| value.to_string()),
                    )
                });
                return alter_group(context, connection, &name, changes.collect(), request.validate_only).await;
            }
            alter_target(context, connection, resource.resource_type, &name)?;
            let current = context
                .broker
                .topic(&name)
                .map(|topic| topic.config().entries(&context.broker.config().topic_defaults))
                .unwrap_or_default();
            let mut changes = BTreeMap::new();
            for config in &resource.configs {
                let key = config.name.to_string();
                let value = config.value.as_ref().map(|value| value.to_string());
                let change = match config.config_operation {
                    OP_SET => value,
                    OP_DELETE => None,
                    OP_APPEND | OP_SUBTRACT => {
                        if topic_key(&key).0 != TYPE_LIST {
                            return Err((
                                ResponseError::InvalidConfig,
                                format!("{key} is not a list: APPEND and SUBTRACT need one"),
                            ));
                        }
                        let existing = current.iter().find(|entry| entry.name == key).map(|entry| entry.value.clone());
                        Some(edit_list(
                            existing.as_deref().unwrap_or(""),
                            value.as_deref().unwrap_or(""),
                            config.config_operation,
                        ))
                    }
                    other => return Err((ResponseError::InvalidRequest, format!("unknown config operation {other}"))),
                };
                if changes.insert(key.clone(), change).is_some() {
                    return Err((ResponseError::InvalidRequest, format!("{key} is changed twice")));
                }
            }
            alter_topic(context, &name, changes, false, request.validate_only).await
        }
        .await;
        let mut response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        if let Err((code, text)) = outcome {
            response.error_code = code.code();
            response.error_message = message(text);
        }
        responses.push(response);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// A comma-separated list with `items` appended (skipping ones present) or removed.
fn edit_list(current: &str, items: &str, operation: i8) -> String {
    let mut list: Vec<&str> = current.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
    for item in items.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        if operation == OP_APPEND {
            if !list.contains(&item) {
                list.push(item);
            }
        } else {
            list.retain(|existing| *existing != item);
        }
    }
    list.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_edits_append_once_and_subtract_every_match() {
        assert_eq!(edit_list("delete", "compact", OP_APPEND), "delete,compact");
        assert_eq!(edit_list("delete", "delete", OP_APPEND), "delete");
        assert_eq!(edit_list("delete,compact", "delete", OP_SUBTRACT), "compact");
        assert_eq!(edit_list("", "delete", OP_APPEND), "delete");
    }
}
