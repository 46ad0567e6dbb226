//! DeleteRecords (move a partition's start offset up) and
//! OffsetForLeaderEpoch (where an epoch ends: a one-node cluster has only
//! epoch 0, which ends at the high watermark).

use conveyor_log::Log;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::{Context, errors};

/// The leader epoch of every partition (Metadata reports it too).
pub const LEADER_EPOCH: i32 = 0;
/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// The log of partition `index` of topic `name`, if both exist.
pub fn partition_log(context: &Context, name: &str, index: i32) -> Option<Log> {
    let topic = context.broker.topic(name)?;
    topic.partition(u32::try_from(index).ok()?)
}

pub async fn delete_records(context: &Context, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut work = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            work.push((partition_log(context, &topic.name, partition.partition_index), partition.offset));
        }
    }
    // Truncation waits for the partition's writer thread and unlinks files.
    let outcomes = tokio::task::spawn_blocking(move || {
        work.into_iter()
            .map(|(log, offset)| {
                let log = log.ok_or(ResponseError::UnknownTopicOrPartition)?;
                let target = match offset {
                    HIGH_WATERMARK => log.high_watermark(),
                    offset => u64::try_from(offset).map_err(|_| ResponseError::OffsetOutOfRange)?,
                };
                log.truncate_prefix(target).map_err(|error| errors::log_error(&error))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut outcomes = outcomes.into_iter();
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

pub fn offset_for_leader_epoch(context: &Context, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
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
                    let Some(log) = partition_log(context, &topic.topic, partition.partition) else {
                        return result.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
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
