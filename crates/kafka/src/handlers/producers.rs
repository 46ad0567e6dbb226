//! InitProducerId and DescribeProducers: idempotent producers get ids that
//! are never reused; a transactional id goes to `transactions.rs`.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};

use conveyor_core::auth::{Operation, Resource};

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

pub async fn init_producer_id(
    context: &Context,
    connection: &ConnectionInfo,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.as_ref().is_some_and(|id| id.0.is_empty()) {
        // Kafka's answer to an empty transactional id.
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    if let Some(transactional_id) = &request.transactional_id
        && !connection.allowed(context, &Resource::TransactionalId(&transactional_id.0), Operation::Write)
    {
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or, since
    // KIP-679, WRITE on any topic.
    if request.transactional_id.is_none()
        && !connection.allowed_on_any(context, &Resource::Cluster, Operation::IdempotentWrite)
        && !connection.allowed_on_any(context, &Resource::Topic(""), Operation::Write)
    {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if request.transactional_id.is_some() {
        return super::transactions::init_producer_id(context, request, version).await;
    }
    // Like Kafka for idempotent (non-transactional) producers: always a fresh id, epoch 0.
    match context.broker.allocate_producer_id().await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(error) => response.with_error_code(errors::core_error(&error).code()),
    }
}

pub fn describe_producers(context: &Context, connection: &ConnectionInfo, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let authorized = connection.allowed(context, &Resource::Topic(&topic.name), Operation::Read);
            let found = context.broker.topic(&topic.name).filter(|_| authorized);
            let missing = if authorized {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::TopicAuthorizationFailed
            };
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let handle = found
                        .as_ref()
                        .and_then(|found| u32::try_from(index).ok().and_then(|index| found.partition_handle(index)));
                    match handle {
                        None => PartitionResponse::default()
                            .with_partition_index(index)
                            .with_error_code(missing.code()),
                        Some(partition) => PartitionResponse::default().with_partition_index(index).with_active_producers(
                            partition
                                .producers()
                                .into_iter()
                                .map(|(producer_id, epoch, last_sequence, _last_offset)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(producer_id))
                                        .with_producer_epoch(i32::from(epoch))
                                        .with_last_sequence(last_sequence)
                                        .with_last_timestamp(-1)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(
                                            partition.open_transaction_start(producer_id).map_or(-1, |offset| offset as i64),
                                        )
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
