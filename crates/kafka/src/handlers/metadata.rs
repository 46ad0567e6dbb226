//! Metadata and DescribeCluster: the brokers (this one, or on a cluster
//! node every member with its advertised Kafka address), and every
//! requested topic with its partitions (on a single node this broker leads
//! them all; on a cluster node each replicated partition's leader,
//! replicas, in-sync replicas and leader epoch are the core's
//! `Placement`). Unknown topics are auto-created when both the client and
//! the broker allow it.

use std::sync::Arc;

use conveyor_core::Topic;
use conveyor_core::broker::{KafkaNode, Placement};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use conveyor_core::auth::{Operation, Resource};

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

pub async fn handle(context: &Context, connection: &ConnectionInfo, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node_id = context.config.node_id;
    let brokers = brokers(context, connection)
        .into_iter()
        .map(|node| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(node.node_id))
                .with_host(StrBytes::from_string(node.host))
                .with_port(node.port)
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(BrokerId(controller(context)));
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(context.broker.cluster_id()));
    }
    // v0: an empty list means every topic; v1+: null means every topic.
    let all = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut topics = Vec::new();
    if all {
        // Only the topics the client may describe, as Kafka lists them.
        for topic in context.broker.topics() {
            if connection.allowed(context, &Resource::Topic(&topic.name), Operation::Describe) {
                topics.push(describe(context, &topic, node_id, version));
            }
        }
    } else {
        for requested in request.topics.unwrap_or_default() {
            let entry = match requested.name {
                Some(name) if !connection.allowed(context, &Resource::Topic(&name), Operation::Describe) => {
                    MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                }
                Some(name) => {
                    // Auto-creation needs CREATE on the cluster or the topic.
                    let may_create = auto_create
                        && (connection.allowed(context, &Resource::Cluster, Operation::Create)
                            || connection.allowed(context, &Resource::Topic(&name), Operation::Create));
                    by_name(context, name, may_create, node_id, version).await
                }
                None => match context
                    .broker
                    .topic_by_id(requested.topic_id)
                    .filter(|topic| connection.allowed(context, &Resource::Topic(&topic.name), Operation::Describe))
                {
                    Some(topic) => describe(context, &topic, node_id, version),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(requested.topic_id)
                        .with_error_code(ResponseError::UnknownTopicId.code()),
                },
            };
            topics.push(entry);
        }
    }
    for topic in &mut topics {
        if version >= 8 && request.include_topic_authorized_operations {
            let name = topic.name.as_ref().map(|name| name.to_string()).unwrap_or_default();
            topic.topic_authorized_operations =
                super::authorized_operations(context, connection, &Resource::Topic(&name), &super::TOPIC_OPERATIONS);
        }
        if version < 10 {
            topic.topic_id = uuid::Uuid::nil();
        }
    }
    response.topics = topics;
    response
}

/// Endpoint type 1: brokers (2, controllers, is for KRaft controllers only).
const ENDPOINT_BROKERS: i8 = 1;

pub fn describe_cluster(context: &Context, connection: &ConnectionInfo, request: DescribeClusterRequest) -> DescribeClusterResponse {
    if !connection.allowed(context, &Resource::Cluster, Operation::Describe) {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(super::message("Cluster authorization failed."));
    }
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(context.broker.cluster_id()))
        .with_controller_id(BrokerId(controller(context)))
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            super::authorized_operations(context, connection, &Resource::Cluster, &super::CLUSTER_OPERATIONS)
        } else {
            super::AUTHORIZED_OPERATIONS_OMITTED
        });
    if request.endpoint_type != ENDPOINT_BROKERS {
        response.error_code = ResponseError::UnsupportedEndpointType.code();
        response.error_message = super::message("this node is a broker; it has no controller endpoints");
        return response;
    }
    response.brokers = brokers(context, connection)
        .into_iter()
        .map(|node| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(node.node_id))
                .with_host(StrBytes::from_string(node.host))
                .with_port(node.port)
        })
        .collect();
    response
}

/// The brokers clients may talk to: every member of a cluster that has
/// advertised its Kafka door (this node always), else this one.
fn brokers(context: &Context, connection: &ConnectionInfo) -> Vec<KafkaNode> {
    let node_id = context.config.node_id;
    let (host, port) = advertised(context, connection);
    let this = KafkaNode { node_id, host, port };
    let Some(replication) = context.broker.partition_replication() else {
        return vec![this];
    };
    let mut nodes: Vec<KafkaNode> = replication
        .kafka_nodes()
        .into_iter()
        .filter(|node| node.node_id != node_id)
        .collect();
    nodes.push(this);
    nodes.sort_by_key(|node| node.node_id);
    nodes
}

/// Kafka's controller: the metadata group's leader on a cluster node
/// (this node while none is known), else this node.
fn controller(context: &Context) -> i32 {
    context
        .broker
        .partition_replication()
        .and_then(|replication| replication.controller())
        .unwrap_or(context.config.node_id)
}

async fn by_name(context: &Context, name: TopicName, auto_create: bool, node_id: i32, version: i16) -> MetadataResponseTopic {
    let text = name.0.to_string();
    let outcome = if auto_create {
        context.broker.topic_or_auto_create(&text).await
    } else {
        Ok(context.broker.topic(&text))
    };
    match outcome {
        Ok(Some(topic)) => describe(context, &topic, node_id, version),
        Ok(None) => MetadataResponseTopic::default()
            .with_name(Some(name))
            .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
        Err(error) => MetadataResponseTopic::default()
            .with_name(Some(name))
            .with_error_code(errors::core_error(&error).code()),
    }
}

fn describe(context: &Context, topic: &Arc<Topic>, node_id: i32, version: i16) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|index| {
            let placement = context.broker.placement(topic, index).unwrap_or_else(|| Placement {
                leader: Some(node_id),
                replicas: vec![node_id],
                in_sync: vec![node_id],
                leader_epoch: super::records::LEADER_EPOCH,
            });
            let ids = |nodes: &[i32]| nodes.iter().copied().map(BrokerId).collect::<Vec<_>>();
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(placement.leader.unwrap_or(-1)))
                .with_replica_nodes(ids(&placement.replicas))
                .with_isr_nodes(ids(&placement.in_sync));
            if placement.leader.is_none() {
                // Retriable: an election is under way.
                partition.error_code = ResponseError::LeaderNotAvailable.code();
            }
            if version >= 7 {
                partition.leader_epoch = placement.leader_epoch;
            }
            partition
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

/// The host and port clients should use: the configured advertised address,
/// else the address this client reached us on.
pub fn advertised(context: &Context, connection: &ConnectionInfo) -> (String, i32) {
    match &context.config.advertised_addr {
        Some((host, port)) => (host.clone(), i32::from(*port)),
        None => (connection.local.ip().to_string(), i32::from(connection.local.port())),
    }
}
