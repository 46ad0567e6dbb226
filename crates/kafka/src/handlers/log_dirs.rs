//! DescribeLogDirs: the one log directory (the data directory), the size of
//! every partition in it, and its file system's total and usable bytes (v4).
//! A single node has no replicas to lag behind, so every offset lag is 0 and
//! nothing is a future replica. Knows nothing of how partitions are stored.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use conveyor_core::alarms::file_system_bytes;
use conveyor_core::auth::{Operation, Resource};

use crate::Context;
use crate::connection::ConnectionInfo;

/// Kafka's "unknown" for a size it could not measure.
const UNKNOWN_BYTES: i64 = -1;

pub async fn describe(context: &Context, connection: &ConnectionInfo, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    // Kafka asks DESCRIBE on the cluster and answers a refusal with no directories.
    if !connection.allowed(context, &Resource::Cluster, Operation::Describe) {
        return DescribeLogDirsResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    // `None` asks for every partition.
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.topic.0.to_string(), topic.partitions))
            .collect()
    });
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    let mut all = context.broker.topics();
    all.sort_by(|left, right| left.name.cmp(&right.name));
    for topic in all {
        if !connection.allowed(context, &Resource::Topic(&topic.name), Operation::Describe) {
            continue;
        }
        let indexes: Vec<i32> = match &wanted {
            None => (0..topic.partition_count()).filter_map(|index| i32::try_from(index).ok()).collect(),
            Some(wanted) => match wanted.iter().find(|(name, _)| *name == topic.name) {
                Some((_, partitions)) => partitions.clone(),
                None => continue,
            },
        };
        let summaries = topic.partition_summaries();
        let partitions: Vec<DescribeLogDirsPartition> = indexes
            .into_iter()
            .filter_map(|index| {
                // The stored size of an unopened partition: no log opens for this.
                let summary = *summaries.get(usize::try_from(index).ok()?)?;
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(index)
                        .with_partition_size(i64::try_from(summary.size_bytes).unwrap_or(i64::MAX))
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                )
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    let data_dir = context.broker.config().data_dir.clone();
    let shown_dir = std::path::absolute(&data_dir).unwrap_or_else(|_| data_dir.clone());
    let measured = tokio::task::spawn_blocking(move || file_system_bytes(&data_dir))
        .await
        .ok()
        .flatten();
    let (total_bytes, usable_bytes) = measured.map_or((UNKNOWN_BYTES, UNKNOWN_BYTES), |bytes| {
        (
            i64::try_from(bytes.total_bytes).unwrap_or(i64::MAX),
            i64::try_from(bytes.usable_bytes).unwrap_or(i64::MAX),
        )
    });
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(shown_dir.to_string_lossy().into_owned()))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    DescribeLogDirsResponse::default().with_results(vec![result])
}
