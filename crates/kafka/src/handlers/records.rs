//! DeleteRecords (move a partition's start offset up) and
//! OffsetForLeaderEpoch (where an epoch ends: a one-node cluster has only
//! epoch 0, which ends at the high watermark; a replicated partition's
//! epochs are its group's terms, and each ends at the log end).

use std::collections::HashMap;

use conveyor_log::Log;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use conveyor_core::auth::{Operation, Resource};

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

/// The leader epoch of every partition (Metadata reports it too).
pub const LEADER_EPOCH: i32 = 0;
/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// The log of partition `index` of topic `name`, if both exist and the
/// connection may do `operation` on the topic (asked first, as Kafka does,
/// so an unauthorized client cannot tell which topics exist).
pub fn partition_log(
    context: &Context,
    connection: &ConnectionInfo,
    name: &str,
    index: i32,
    operation: Operation,
) -> Result<Log, ResponseError> {
    if !connection.allowed(context, &Resource::Topic(name), operation) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    let topic = context.broker.topic(name).ok_or(ResponseError::UnknownTopicOrPartition)?;
    let index = u32::try_from(index).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let log = topic.partition(index).ok_or(ResponseError::UnknownTopicOrPartition)?;
    // A replicated partition is read, listed and cut on its leader.
    context
        .broker
        .check_leads(&topic, index)
        .map_err(|error| errors::core_error(&error))?;
    Ok(log)
}

/// Runs `work` on each requested partition's log, in request order, in one
/// blocking task (look-ups read segment files, truncation unlinks them); a
/// partition that could not be had keeps its error.
pub async fn on_partitions<P, T>(
    requests: Vec<(Result<Log, ResponseError>, P)>,
    work: impl Fn(Log, P) -> Result<T, ResponseError> + Send + 'static,
) -> std::vec::IntoIter<Result<T, ResponseError>>
where
    P: Send + 'static,
    T: Send + 'static,
{
    let count = requests.len();
    let results = tokio::task::spawn_blocking(move || {
        requests
            .into_iter()
            .map(|(log, parameter)| work(log?, parameter))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|_| (0..count).map(|_| Err(ResponseError::UnknownServerError)).collect());
    results.into_iter()
}

pub async fn delete_records(context: &Context, connection: &ConnectionInfo, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    // A partition listed twice gets INVALID_REQUEST at each listing and is
    // left alone: which of its offsets was meant is not ours to guess (the
    // rule of Kafka's ListOffsets and OffsetForLeaderEpoch for duplicates).
    let mut listings: HashMap<(&str, i32), usize> = HashMap::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            *listings.entry((topic.name.as_str(), partition.partition_index)).or_default() += 1;
        }
    }
    let requests = request
        .topics
        .iter()
        .flat_map(|topic| {
            let listings = &listings;
            topic.partitions.iter().map(move |partition| {
                let log = if listings
                    .get(&(topic.name.as_str(), partition.partition_index))
                    .copied()
                    .unwrap_or(0)
                    > 1
                {
                    Err(ResponseError::InvalidRequest)
                } else {
                    partition_log(context, connection, &topic.name, partition.partition_index, Operation::Delete)
                };
                (log, partition.offset)
            })
        })
        .collect();
    let mut outcomes = on_partitions(requests, |log, offset| {
        let target = match offset {
            HIGH_WATERMARK => log.high_watermark(),
            offset => u64::try_from(offset).map_err(|_| ResponseError::OffsetOutOfRange)?,
        };
        log.truncate_prefix(target).map_err(|error| errors::log_error(&error))
    })
    .await;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(partition.partition_index);
                    match outcomes.next().unwrap_or(Err(ResponseError::UnknownServerError)) {
                        Ok(start) => result.with_low_watermark(start as i64),
                        Err(code) => result.with_low_watermark(-1).with_error_code(code.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

pub fn offset_for_leader_epoch(
    context: &Context,
    connection: &ConnectionInfo,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let result = EpochEndOffset::default()
                        .with_partition(partition.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let log = match partition_log(context, connection, &topic.topic, partition.partition, Operation::Describe) {
                        Ok(log) => log,
                        Err(error) => return result.with_error_code(error.code()),
                    };
                    // A replicated partition: answered by its leader, in its
                    // epochs (the Raft terms). Its log holds committed
                    // records only, so no epoch of it ever ends before the
                    // log does: every epoch up to the current one ends at
                    // the log end (nothing for a client to truncate).
                    let replicated = context.broker.topic(&topic.topic).and_then(|found| {
                        let index = u32::try_from(partition.partition).ok()?;
                        Some((context.broker.check_leads(&found, index), context.broker.placement(&found, index)?))
                    });
                    if let Some((leads, placement)) = replicated {
                        if let Err(error) = leads {
                            return result.with_error_code(errors::core_error(&error).code());
                        }
                        let current = placement.leader_epoch;
                        return match partition.current_leader_epoch {
                            asked if asked > current => result.with_error_code(ResponseError::UnknownLeaderEpoch.code()),
                            asked if asked < current && asked != -1 => result.with_error_code(ResponseError::FencedLeaderEpoch.code()),
                            _ if (0..=current).contains(&partition.leader_epoch) => result
                                .with_leader_epoch(partition.leader_epoch)
                                .with_end_offset(log.high_watermark() as i64),
                            _ => result,
                        };
                    }
                    // -1: the client does not know the current epoch; skip the check.
                    match partition.current_leader_epoch {
                        current if current > LEADER_EPOCH => result.with_error_code(ResponseError::UnknownLeaderEpoch.code()),
                        current if current < LEADER_EPOCH && current != -1 => {
                            result.with_error_code(ResponseError::FencedLeaderEpoch.code())
                        }
                        // Epoch 0 ends at the log end; any other epoch was never seen.
                        _ if partition.leader_epoch == LEADER_EPOCH => {
                            result.with_leader_epoch(LEADER_EPOCH).with_end_offset(log.high_watermark() as i64)
                        }
                        _ => result,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
