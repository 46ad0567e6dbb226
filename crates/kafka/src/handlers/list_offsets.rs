//! ListOffsets: earliest (-2), latest (-1), the record with the largest
//! timestamp (-3, v7+), the local log start (-4, v8+), the latest tiered
//! offset (-5, v9+) or the first offset at or after a timestamp. Latest is
//! the high watermark (the last record's offset + 1), or the last stable
//! offset for `isolation_level=read_committed`. Nothing is tiered, so -4 is
//! the log start offset and -5 answers as Kafka does without remote storage:
//! offset -1.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use conveyor_core::auth::Operation;

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// KIP-734's MAX_TIMESTAMP.
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405's EARLIEST_LOCAL_TIMESTAMP.
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005's LATEST_TIERED_TIMESTAMP.
const LATEST_TIERED: i64 = -5;
/// No timestamp, no offset: Kafka's answer where nothing matches.
const NONE: (i64, i64) = (-1, -1);
/// Kafka's `isolation_level` for `read_committed`.
const READ_COMMITTED: i8 = 1;

pub async fn handle(context: &Context, connection: &ConnectionInfo, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let requests = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                // What read_committed readers may read up to, taken before the look-up.
                let last_stable_offset = (read_committed && partition.timestamp == LATEST)
                    .then(|| {
                        let topic = context.broker.topic(&topic.name)?;
                        let index = u32::try_from(partition.partition_index).ok()?;
                        Some(topic.partition_handle(index)?.last_stable_offset())
                    })
                    .flatten();
                (
                    super::records::partition_log(context, connection, &topic.name, partition.partition_index, Operation::Describe),
                    (partition.timestamp, last_stable_offset),
                )
            })
        })
        .collect();
    let mut results = super::records::on_partitions(requests, |log, (timestamp, last_stable_offset)| match timestamp {
        LATEST => Ok((last_stable_offset.unwrap_or_else(|| log.high_watermark()) as i64, -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((log.start_offset() as i64, -1)),
        LATEST_TIERED => Ok(NONE),
        MAX_TIMESTAMP => match log.max_timestamp_record() {
            Ok(found) => Ok(found.map_or(NONE, |(offset, timestamp)| (offset as i64, timestamp))),
            Err(error) => Err(errors::log_error(&error)),
        },
        timestamp if timestamp >= 0 => match log.offset_for_timestamp(timestamp) {
            Ok(Some((offset, found))) => Ok((offset as i64, found)),
            Ok(None) => Ok(NONE),
            Err(error) => Err(errors::log_error(&error)),
        },
        _ => Err(ResponseError::InvalidRequest),
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
                    let mut response = ListOffsetsPartitionResponse::default().with_partition_index(partition.partition_index);
                    match results.next().unwrap_or(Err(ResponseError::UnknownServerError)) {
                        Ok((offset, timestamp)) => {
                            response.offset = offset;
                            response.timestamp = timestamp;
                            // No offset found has no epoch either (Kafka's -1).
                            if version >= 4 && offset >= 0 {
                                response.leader_epoch = super::records::LEADER_EPOCH;
                            }
                        }
                        Err(error) => response.error_code = error.code(),
                    }
                    response
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
