//! Produce: checks each partition's batches (size limit by the core's
//! rule, framing and CRC-32C in the log) and appends them as received. Appends to existing
//! topics are queued before `start` returns, so pipelined requests on one
//! connection land in order; the reply waits for the acknowledgements (durable
//! under the topic's policy for acks=1 and acks=all alike on a single node;
//! on a cluster node a replicated partition's append answers once a quorum
//! of its replicas holds it, for both, and a node that does not lead the
//! partition answers NOT_LEADER_OR_FOLLOWER; acks=all answers
//! NOT_ENOUGH_REPLICAS, writing nothing, while fewer replicas are in sync
//! than the topic's `min.insync.replicas`; a write not committed within
//! the request's `timeout_ms` answers REQUEST_TIMED_OUT, as Kafka's
//! acks=all does, and may still be committed later). Records carrying Conveyor's conditional-append
//! headers (`conditions.rs`) are appended only if the partition meets them
//! (on a replicated partition, checked as its group applies them);
//! a mismatch is INVALID_RECORD for the whole batch, with the blamed record
//! in `record_errors`. On a compacted topic every record needs a key (the
//! core reads each batch, compressed ones decompressed within the log's
//! bound): keyless ones are INVALID_RECORD with each blamed in
//! `record_errors`, in Kafka's words; a batch that does not decompress or
//! parse is CORRUPT_MESSAGE. Nothing of a refused batch is written.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conveyor_core::producer::PendingAppend;
use conveyor_core::transaction::TransactionError;
use conveyor_core::{CoreError, Topic};
use conveyor_log::AppendInfo;
use conveyor_log::batch::whole_batches;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{conditions, message};
use conveyor_core::auth::{Operation, Resource};

use crate::connection::{ConnectionInfo, Reply};
use crate::{Context, errors, frame};

/// The outcome of one partition, known or pending.
enum Outcome {
    Appending(PendingAppend),
    /// The topic must be auto-created first; the bytes wait for it.
    AfterCreate(Bytes),
    Failed(ResponseError, Option<String>),
}

struct PartitionWork {
    index: i32,
    outcome: Outcome,
}

/// What every partition of one Produce is written under.
struct Terms {
    transactional_id: Option<String>,
    acks: i16,
    /// How long a replicated partition's write waits for its commit.
    timeout: Duration,
}

impl Terms {
    /// Kafka bounds an acks=all produce's wait for its replicas by the
    /// request's `timeout_ms`; here acks=1 waits for the commit too, so it
    /// is bounded the same way. A `timeout_ms` that is not positive (no
    /// client sends one; Kafka would time out at once) gets the core's
    /// bound for other writers.
    fn of(request: &ProduceRequest) -> Terms {
        let timeout = u64::try_from(request.timeout_ms)
            .ok()
            .filter(|timeout_ms| *timeout_ms > 0)
            .map_or(conveyor_core::broker::REPLICATED_WRITE_TIMEOUT, Duration::from_millis);
        Terms {
            transactional_id: request.transactional_id.as_ref().map(|id| id.to_string()),
            acks: request.acks,
            timeout,
        }
    }
}

struct TopicWork {
    name: TopicName,
    topic_id: uuid::Uuid,
    partitions: Vec<PartitionWork>,
}

pub fn start(context: &Arc<Context>, connection: &ConnectionInfo, request: ProduceRequest, version: i16, correlation_id: i32) -> Reply {
    let terms = Terms::of(&request);
    let acks = terms.acks;
    // A transactional produce needs WRITE on its transactional id first.
    let transaction_refused = request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !connection.allowed(context, &Resource::TransactionalId(id), Operation::Write));
    let mut work = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let (topic, name) = if version >= 13 {
            let topic = context.broker.topic_by_id(topic_data.topic_id);
            let name = topic
                .as_ref()
                .map(|topic| TopicName(StrBytes::from_string(topic.name.clone())))
                .unwrap_or_default();
            (topic, name)
        } else {
            (context.broker.topic(&topic_data.name.0), topic_data.name.clone())
        };
        let refused = if transaction_refused {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !connection.allowed(context, &Resource::Topic(&name), Operation::Write) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        // Producing to a topic that does not exist creates it only with CREATE.
        let may_create = topic.is_some()
            || connection.allowed(context, &Resource::Cluster, Operation::Create)
            || connection.allowed(context, &Resource::Topic(&name), Operation::Create);
        let partitions = topic_data
            .partition_data
            .into_iter()
            .map(|data| PartitionWork {
                index: data.index,
                outcome: if let Some(error) = refused {
                    Outcome::Failed(error, None)
                } else if !may_create {
                    Outcome::Failed(ResponseError::UnknownTopicOrPartition, None)
                } else if !(-1..=1).contains(&acks) {
                    Outcome::Failed(
                        ResponseError::InvalidRequiredAcks,
                        Some(format!("acks must be 0, 1 or -1, not {acks}")),
                    )
                } else {
                    plan(context, topic.as_ref(), &terms, version, data.index, data.records)
                },
            })
            .collect();
        work.push(TopicWork {
            name,
            topic_id: topic_data.topic_id,
            partitions,
        });
    }
    let context = Arc::clone(context);
    Box::pin(async move {
        let mut responses = Vec::with_capacity(work.len());
        for topic in work {
            let mut partition_responses = Vec::with_capacity(topic.partitions.len());
            for partition in topic.partitions {
                let result = finish(&context, &topic.name, &terms, partition.index, partition.outcome).await;
                partition_responses.push(partition_response(partition.index, result, version));
            }
            let mut response = TopicProduceResponse::default().with_partition_responses(partition_responses);
            if version >= 13 {
                response.topic_id = topic.topic_id;
            } else {
                response.name = topic.name;
            }
            responses.push(response);
        }
        if acks == 0 {
            // Kafka sends no reply at all to acks=0.
            return Ok(None);
        }
        frame::encode_response(
            ApiKey::Produce,
            version,
            correlation_id,
            &ProduceResponse::default().with_responses(responses),
        )
        .map(Some)
    })
}

fn plan(context: &Context, topic: Option<&Arc<Topic>>, terms: &Terms, version: i16, index: i32, records: Option<Bytes>) -> Outcome {
    let Some(records) = records.filter(|records| !records.is_empty()) else {
        return Outcome::Failed(ResponseError::CorruptMessage, Some("the request carries no record batch".into()));
    };
    let Some(topic) = topic else {
        if version >= 13 {
            return Outcome::Failed(ResponseError::UnknownTopicId, None);
        }
        return match context.broker.config().auto_create_topics {
            true => Outcome::AfterCreate(records),
            false => Outcome::Failed(ResponseError::UnknownTopicOrPartition, None),
        };
    };
    match append(context, topic, terms, index, records) {
        Ok(appending) => Outcome::Appending(appending),
        Err(refused) => Outcome::Failed(refused.code, refused.message),
    }
}

/// Starts the append of one partition's batches: each within the topic's
/// `max.message.bytes` (the core's rule), appended if the partition meets
/// the conditions they carry; transactional ones only to a partition of
/// their ongoing transaction (KIP-890). Framing problems are the log's to
/// report (CORRUPT_MESSAGE).
fn append(context: &Context, topic: &Topic, terms: &Terms, index: i32, records: Bytes) -> Result<PendingAppend, Refused> {
    for (_, batch) in whole_batches(&records) {
        context
            .broker
            .check_batch_bytes(topic, batch.len())
            .map_err(|error| Refused::from(&error))?;
    }
    let Some(partition) = u32::try_from(index).ok().filter(|index| *index < topic.partition_count()) else {
        return Err((ResponseError::UnknownTopicOrPartition, None).into());
    };
    let conditions = conditions::conditions_of(&records).map_err(|text| Refused::from((ResponseError::InvalidRecord, Some(text))))?;
    if terms.acks == -1 {
        // Kafka's min.insync.replicas: NOT_ENOUGH_REPLICAS, nothing written.
        context
            .broker
            .check_min_in_sync(topic, partition)
            .map_err(|error| Refused::from(&error))?;
    }
    // The core's one write path of a producer's records: through the
    // partition's group when it is replicated (refused on a node that does
    // not lead it), with KIP-890's check either way.
    Ok(context.broker.write_produced(
        topic,
        partition,
        terms.transactional_id.as_deref(),
        records,
        conditions,
        terms.timeout,
    ))
}

/// Why a partition's append was refused: its code, the message for
/// Produce v8+, and the records to blame in `record_errors` (each by its
/// index in the batch, with its own message).
struct Refused {
    code: ResponseError,
    message: Option<String>,
    records: Vec<(usize, Option<String>)>,
}

impl From<(ResponseError, Option<String>)> for Refused {
    fn from((code, message): (ResponseError, Option<String>)) -> Refused {
        Refused {
            code,
            message,
            records: Vec::new(),
        }
    }
}

async fn finish(context: &Context, name: &TopicName, terms: &Terms, index: i32, outcome: Outcome) -> Result<AppendInfo, Refused> {
    let appending = match outcome {
        Outcome::Appending(appending) => appending,
        Outcome::Failed(code, text) => return Err((code, text).into()),
        Outcome::AfterCreate(records) => {
            let topic = match context.broker.topic_or_auto_create(&name.0).await {
                Ok(Some(topic)) => topic,
                Ok(None) => return Err((ResponseError::UnknownTopicOrPartition, None).into()),
                Err(error) => return Err((errors::core_error(&error), Some(error.to_string())).into()),
            };
            append(context, &topic, terms, index, records)?
        }
    };
    appending.await.map_err(|error: CoreError| match error {
        CoreError::RecordWithoutKey { records } => keyless_refused(&records, &format!("{}-{index}", name.0)),
        error => Refused::from(&error),
    })
}

/// Kafka's answer to records without a key on a compacted topic
/// (`LogValidator.validateKey`, then `processRecordErrors`): each record
/// blamed with the partition's name, and the first three of them in the
/// partition's message.
fn keyless_refused(records: &[usize], partition: &str) -> Refused {
    let blame = format!("Compacted topic cannot accept message without key in topic partition {partition}");
    let shown: Vec<String> = records
        .iter()
        .take(3)
        .map(|record| format!("RecordError(batchIndex={record}, message='{blame}')"))
        .collect();
    Refused {
        code: ResponseError::InvalidRecord,
        message: Some(format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            records.len(),
            shown.join(", ")
        )),
        records: records.iter().map(|record| (*record, Some(blame.clone()))).collect(),
    }
}

/// A transactional batch refused (KIP-890), in Kafka's words
/// (ReplicaManager) and with Produce's codes.
fn transaction_refused(error: &TransactionError) -> Refused {
    let message = match error {
        TransactionError::InvalidTxnState { .. } => "Partition was not added to the transaction".to_owned(),
        other => other.to_string(),
    };
    (errors::transaction_error(error, false), Some(message)).into()
}

impl From<&CoreError> for Refused {
    fn from(error: &CoreError) -> Refused {
        if let CoreError::Transaction(error) = error {
            return transaction_refused(error);
        }
        Refused {
            code: errors::core_error(error),
            message: Some(error.to_string()),
            records: match error {
                CoreError::ConditionFailed(failed) => failed
                    .record()
                    .map(|record| (record, Some(error.to_string())))
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            },
        }
    }
}

fn partition_response(index: i32, result: Result<AppendInfo, Refused>, version: i16) -> PartitionProduceResponse {
    let mut response = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(info) => {
            response.base_offset = info.base_offset as i64;
            if version >= 5 {
                response.log_start_offset = info.log_start_offset as i64;
            }
            if version >= 2 {
                response.log_append_time_ms = info.log_append_time_ms.unwrap_or(-1);
            }
        }
        Err(refused) => {
            response.error_code = refused.code.code();
            if version >= 8 {
                // Clients report the blamed record's message per record
                // (librdkafka, kafka-python), the others of the batch as
                // failed with it.
                response.record_errors = refused
                    .records
                    .into_iter()
                    .filter_map(|(record, text)| {
                        let index = i32::try_from(record).ok()?;
                        Some(
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(index)
                                .with_batch_index_error_message(text.and_then(message)),
                        )
                    })
                    .collect();
                response.error_message = refused.message.and_then(message);
            }
        }
    }
    response
}
