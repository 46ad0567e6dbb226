//! The transactional producer's APIs: InitProducerId with a
//! `transactional.id`, AddPartitionsToTxn (v0-3 for clients, the batched
//! v4+), AddOffsetsToTxn, TxnOffsetCommit and EndTxn; the admin's
//! ListTransactions and DescribeTransactions. Translates to and from the core's transaction
//! coordinator; every rule is the core's. Each API is authorized as Kafka's
//! KafkaApis does it: WRITE on the transactional id, then the group or
//! topics the request names.

use super::groups::{coordinator_error, coordinator_refusal};
use conveyor_core::auth::{Operation, Resource};
use conveyor_core::broker::TransactionalCommitter;
use conveyor_core::transaction::{PendingOffset, TopicPartition, TransactionError};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState as DescribedTransaction};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTransaction;
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use kafka_protocol::protocol::StrBytes;

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

/// InitProducerId for a request that carries a transactional id.
pub async fn init_producer_id(context: &Context, request: InitProducerIdRequest, version: i16) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string()).unwrap_or_default();
    let expected = (version >= 3 && request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
    if let Some(code) = coordinator_refusal(context).await {
        return response.with_error_code(code);
    }
    match context
        .broker
        .init_transactional_producer(&transactional_id, request.transaction_timeout_ms, expected)
        .await
    {
        Ok((producer_id, epoch)) => response.with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch),
        Err(error) => {
            tracing::info!(transactional_id, %error, "InitProducerId refused");
            // KIP-588: PRODUCER_FENCED from InitProducerId v4 on.
            response.with_error_code(errors::transaction_error(&error, version >= 4).code())
        }
    }
}

pub async fn add_partitions(
    context: &Context,
    connection: &ConnectionInfo,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let response = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let results = add_one(
            context,
            connection,
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            false,
            request.v3_and_below_topics,
            // KIP-588: PRODUCER_FENCED from AddPartitionsToTxn v2 on.
            version >= 2,
        )
        .await;
        return response.with_results_by_topic_v3_and_below(results);
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        let topic_results = add_one(
            context,
            connection,
            &transaction.transactional_id,
            transaction.producer_id,
            transaction.producer_epoch,
            transaction.verify_only,
            transaction.topics,
            true,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id)
                .with_topic_results(topic_results),
        );
    }
    response.with_results_by_transaction(results)
}

/// One transaction's partitions added (or, with `verify_only`, checked): a
/// result per partition, all carrying the error when the whole request fails.
#[allow(clippy::too_many_arguments)]
async fn add_one(
    context: &Context,
    connection: &ConnectionInfo,
    transactional_id: &TransactionalId,
    producer_id: ProducerId,
    producer_epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
    fenced_code: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let requested: Vec<(usize, TopicPartition)> = topics
        .iter()
        .enumerate()
        .flat_map(|(index, topic)| {
            topic.partitions.iter().filter_map(move |&partition| {
                u32::try_from(partition)
                    .ok()
                    .map(|partition| (index, (topic.name.0.to_string(), partition)))
            })
        })
        .collect();
    let partitions: Vec<TopicPartition> = requested.iter().map(|(_, partition)| partition.clone()).collect();
    let transactional_id = transactional_id.0.to_string();
    // The error code of each requested partition, in request order.
    let codes: Vec<i16> = if let Some(refused) = refused_partitions(context, connection, &transactional_id, &partitions) {
        refused
    } else if let Some(code) = coordinator_refusal(context).await {
        vec![code; partitions.len()]
    } else if verify_only {
        match context
            .broker
            .transactions()
            .verify_partitions(&transactional_id, producer_id.0, producer_epoch, &partitions)
        {
            Ok(added) => added
                .into_iter()
                .map(|added| if added { 0 } else { ResponseError::InvalidTxnState.code() })
                .collect(),
            Err(error) => vec![errors::transaction_error(&error, fenced_code).code(); partitions.len()],
        }
    } else {
        match context
            .broker
            .add_partitions_to_transaction(&transactional_id, producer_id.0, producer_epoch, &partitions)
            .await
        {
            Ok(()) => vec![0; partitions.len()],
            Err(TransactionError::UnknownPartitions(unknown)) => partitions
                .iter()
                .map(|partition| {
                    if unknown.contains(partition) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        // Kafka's answer for the partitions of a request refused as a whole.
                        ResponseError::OperationNotAttempted.code()
                    }
                })
                .collect(),
            Err(error) => {
                tracing::info!(transactional_id, %error, "AddPartitionsToTxn refused");
                vec![errors::transaction_error(&error, fenced_code).code(); partitions.len()]
            }
        }
    };
    topics
        .into_iter()
        .enumerate()
        .map(|(index, topic)| {
            let results = topic
                .partitions
                .iter()
                .map(|&partition| {
                    let position = requested
                        .iter()
                        .position(|(at, (_, number))| *at == index && i64::from(*number) == i64::from(partition));
                    // A negative partition number was never requested.
                    let code = position
                        .and_then(|position| codes.get(position).copied())
                        .unwrap_or(ResponseError::UnknownTopicOrPartition.code());
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(partition)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name)
                .with_results_by_partition(results)
        })
        .collect()
}

/// Kafka's authorization of AddPartitionsToTxn, as an error code per
/// partition when refused: WRITE on the transactional id, then WRITE on
/// each topic; a request naming a refused topic is refused as a whole (its
/// other partitions: OPERATION_NOT_ATTEMPTED).
fn refused_partitions(
    context: &Context,
    connection: &ConnectionInfo,
    transactional_id: &str,
    partitions: &[TopicPartition],
) -> Option<Vec<i16>> {
    if !may_write(context, connection, transactional_id) {
        return Some(vec![ResponseError::TransactionalIdAuthorizationFailed.code(); partitions.len()]);
    }
    let refused: Vec<bool> = partitions
        .iter()
        .map(|(topic, _)| !connection.allowed(context, &Resource::Topic(topic), Operation::Write))
        .collect();
    refused.contains(&true).then(|| {
        refused
            .into_iter()
            .map(|refused| {
                if refused {
                    ResponseError::TopicAuthorizationFailed.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            })
            .collect()
    })
}

/// WRITE on the transactional id: what every transactional request needs.
fn may_write(context: &Context, connection: &ConnectionInfo, transactional_id: &str) -> bool {
    connection.allowed(context, &Resource::TransactionalId(transactional_id), Operation::Write)
}

pub async fn end(context: &Context, connection: &ConnectionInfo, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    if !may_write(context, connection, &transactional_id) {
        return EndTxnResponse::default().with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if let Some(code) = coordinator_refusal(context).await {
        return EndTxnResponse::default().with_error_code(code);
    }
    match context
        .broker
        .end_transaction(&transactional_id, request.producer_id.0, request.producer_epoch, request.committed)
        .await
    {
        Ok(()) => EndTxnResponse::default(),
        Err(error) => {
            tracing::info!(transactional_id, %error, committed = request.committed, "EndTxn refused");
            // KIP-588: PRODUCER_FENCED from EndTxn v2 on.
            EndTxnResponse::default().with_error_code(errors::transaction_error(&error, version >= 2).code())
        }
    }
}

pub async fn add_offsets(
    context: &Context,
    connection: &ConnectionInfo,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    if !may_write(context, connection, &transactional_id) {
        return AddOffsetsToTxnResponse::default().with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !connection.allowed(context, &Resource::Group(&request.group_id.0), Operation::Read) {
        return AddOffsetsToTxnResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Some(code) = coordinator_refusal(context).await {
        return AddOffsetsToTxnResponse::default().with_error_code(code);
    }
    match context
        .broker
        .add_offsets_to_transaction(
            &transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id.0,
        )
        .await
    {
        Ok(()) => AddOffsetsToTxnResponse::default(),
        Err(error) => {
            tracing::info!(transactional_id, %error, "AddOffsetsToTxn refused");
            // KIP-588: PRODUCER_FENCED from AddOffsetsToTxn v2 on.
            AddOffsetsToTxnResponse::default().with_error_code(errors::transaction_error(&error, version >= 2).code())
        }
    }
}

pub async fn commit_offsets(
    context: &Context,
    connection: &ConnectionInfo,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    // Refused as a whole (every partition gets the code), as Kafka does.
    let request_refused = if !may_write(context, connection, &transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !connection.allowed(context, &Resource::Group(&group), Operation::Read) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        coordinator_error(context).await
    };
    // Topics without READ are refused; the others are committed.
    let topic_refused = |topic: &str| !connection.allowed(context, &Resource::Topic(topic), Operation::Read);
    let offsets: Vec<PendingOffset> = request
        .topics
        .iter()
        .filter(|topic| request_refused.is_none() && !topic_refused(&topic.name.0))
        .flat_map(|topic| {
            let group = &group;
            topic.partitions.iter().filter_map(move |partition| {
                Some(PendingOffset {
                    group: group.clone(),
                    topic: topic.name.0.to_string(),
                    partition: u32::try_from(partition.partition_index).ok()?,
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata: partition
                        .committed_metadata
                        .as_ref()
                        .map(|metadata| metadata.to_string())
                        .unwrap_or_default(),
                })
            })
        })
        .collect();
    let committer = TransactionalCommitter {
        group: &group,
        member_id: &request.member_id,
        instance_id: request.group_instance_id.as_deref(),
        generation_id: request.generation_id,
    };
    let outcome = if request_refused.is_some() || offsets.is_empty() {
        Ok(())
    } else {
        context
            .broker
            .commit_transactional_offsets(
                &transactional_id,
                request.producer_id.0,
                request.producer_epoch,
                &committer,
                offsets,
            )
            .await
    };
    if let Err(error) = &outcome {
        tracing::info!(transactional_id, group, %error, "TxnOffsetCommit refused");
    }
    let code_of = |topic: &str, partition: i32| match &outcome {
        _ if let Some(refused) = request_refused => refused.code(),
        _ if topic_refused(topic) => ResponseError::TopicAuthorizationFailed.code(),
        Ok(()) if partition < 0 => ResponseError::UnknownTopicOrPartition.code(),
        Ok(()) => 0,
        Err(TransactionError::UnknownPartitions(unknown)) => {
            if unknown
                .iter()
                .any(|(name, index)| name == topic && i64::from(*index) == i64::from(partition))
            {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            }
        }
        // Refused as a whole, with the group's error.
        Err(TransactionError::NotGroupMember(error)) => errors::group_error(error).code(),
        // KIP-588: PRODUCER_FENCED from TxnOffsetCommit v3 on.
        Err(error) => errors::transaction_error(error, version >= 3).code(),
    };
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code_of(&topic.name.0, partition.partition_index))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Only the transactional ids the principal may describe are listed.
pub fn list(context: &Context, connection: &ConnectionInfo, request: ListTransactionsRequest, version: i16) -> ListTransactionsResponse {
    let states: Vec<String> = request.state_filters.iter().map(ToString::to_string).collect();
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|id| id.0).collect();
    let running_ms_min = if version >= 1 { request.duration_filter } else { -1 };
    let (matching, unknown) = context.broker.transactions().list_matching(&states, &producer_ids, running_ms_min);
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.into_iter().map(StrBytes::from_string).collect())
        .with_transaction_states(
            matching
                .into_iter()
                .filter(|(transactional_id, _)| {
                    connection.allowed(context, &Resource::TransactionalId(transactional_id), Operation::Describe)
                })
                .map(|(transactional_id, metadata)| {
                    ListedTransaction::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(transactional_id)))
                        .with_producer_id(ProducerId(metadata.producer_id))
                        .with_transaction_state(StrBytes::from_static_str(metadata.status.kafka_name()))
                })
                .collect(),
        )
}

/// DESCRIBE on each transactional id; its partitions only of topics the
/// principal may describe.
pub fn describe(context: &Context, connection: &ConnectionInfo, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|transactional_id| {
            if !connection.allowed(context, &Resource::TransactionalId(&transactional_id.0), Operation::Describe) {
                return DescribedTransaction::default()
                    .with_transactional_id(transactional_id)
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            let Some(metadata) = context.broker.transactions().get(&transactional_id.0) else {
                return DescribedTransaction::default()
                    .with_transactional_id(transactional_id)
                    .with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic, partition) in &metadata.partitions {
                if !connection.allowed(context, &Resource::Topic(topic), Operation::Describe) {
                    continue;
                }
                match topics.last_mut() {
                    Some(last) if last.topic.0.as_str() == topic.as_str() => last.partitions.push(*partition as i32),
                    _ => topics.push(
                        TopicData::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(vec![*partition as i32]),
                    ),
                }
            }
            DescribedTransaction::default()
                .with_transactional_id(transactional_id)
                .with_transaction_state(StrBytes::from_static_str(metadata.status.kafka_name()))
                .with_transaction_timeout_ms(metadata.timeout_ms)
                .with_transaction_start_time_ms(metadata.started_ms)
                .with_producer_id(ProducerId(metadata.producer_id))
                .with_producer_epoch(metadata.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
