//! Fetch: reads stored batches as they are on disk, honouring max_bytes,
//! per-partition limits and min_bytes, and long-polls on the partitions' high
//! watermarks for up to max_wait_ms. Sessionless: the reply's session id is
//! always 0, so clients keep sending full fetch requests (KIP-227 allows it).
//! With `isolation_level=read_committed` a partition is read up to its last
//! stable offset only, and the reply lists the aborted transactions in what
//! it returns, which the clients drop.

use std::time::Duration;

use bytes::Bytes;
use conveyor_core::producer::Partition;
use conveyor_log::batch::BatchHeader;
use conveyor_log::{Log, LogError};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;

use conveyor_core::auth::{Operation, Resource};

use crate::connection::ConnectionInfo;
use crate::{Context, errors};

/// Kafka's `isolation_level` for `read_committed`.
const READ_COMMITTED: i8 = 1;

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT_CEILING: Duration = Duration::from_secs(60);

/// One requested partition, resolved.
struct Slot {
    topic: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    target: Result<Partition, ResponseError>,
}

struct Read {
    error: Option<ResponseError>,
    records: Bytes,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// For `read_committed`: (producer id, first offset) of each aborted
    /// transaction with records in what is returned.
    aborted: Option<Vec<(i64, i64)>>,
}

pub async fn handle(context: &Context, connection: &ConnectionInfo, request: FetchRequest, version: i16) -> FetchResponse {
    if version >= 7 && request.session_id != 0 {
        // We never create sessions, so a client cannot hold one.
        return FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut slots = Vec::new();
    for (topic_index, requested) in request.topics.iter().enumerate() {
        let topic = if version >= 13 {
            context.broker.topic_by_id(requested.topic_id)
        } else {
            context.broker.topic(&requested.topic)
        };
        // READ on the topic, asked by name (a topic id resolves first).
        let refused = match &topic {
            Some(topic) => !connection.allowed(context, &Resource::Topic(&topic.name), Operation::Read),
            None => version < 13 && !connection.allowed(context, &Resource::Topic(&requested.topic), Operation::Read),
        };
        let missing = if version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        topics.push((
            requested.topic.clone(),
            requested.topic_id,
            topic.as_ref().map(|topic| topic.name.clone()),
        ));
        for partition in &requested.partitions {
            let target = match &topic {
                _ if refused => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(missing),
                Some(topic) => u32::try_from(partition.partition)
                    .ok()
                    .and_then(|index| topic.partition_handle(index))
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            slots.push(Slot {
                topic: topic_index,
                partition: partition.partition,
                fetch_offset: partition.fetch_offset,
                partition_max_bytes: partition.partition_max_bytes,
                target,
            });
        }
    }

    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CEILING);
    let deadline = Instant::now() + max_wait;
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        request.max_bytes as usize
    };
    let min_bytes = request.min_bytes.max(0) as usize;
    let read_committed = request.isolation_level == READ_COMMITTED;
    // Data arrives with the high watermark; for read_committed, decisions with markers too.
    let mut watermarks: Vec<watch::Receiver<u64>> = slots
        .iter()
        .filter_map(|slot| slot.target.as_ref().ok())
        .flat_map(|partition| {
            let stable = read_committed.then(|| partition.subscribe_stable());
            std::iter::once(partition.log.subscribe()).chain(stable)
        })
        .collect();
    let reads = loop {
        for receiver in &mut watermarks {
            receiver.borrow_and_update();
        }
        let reads = read_all(&slots, max_bytes, read_committed).await;
        let bytes: usize = reads.iter().map(|read| read.records.len()).sum();
        let failed = reads.iter().any(|read| read.error.is_some());
        if bytes >= min_bytes.max(1) || failed || Instant::now() >= deadline || watermarks.is_empty() {
            break reads;
        }
        // Park until some requested partition's high watermark moves.
        let changed = async {
            let waits = watermarks.iter_mut().map(|receiver| Box::pin(receiver.changed()));
            let _ = futures_select_all(waits).await;
        };
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break read_all(&slots, max_bytes, read_committed).await;
        }
    };

    // What the fetch hands out counts as the topics' traffic out.
    for (slot, read) in slots.iter().zip(&reads) {
        if let Some((_, _, Some(name))) = topics.get(slot.topic) {
            context.broker.stats().topic(name).add_out_batches(&read.records);
        }
    }
    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, topic_id, _)| {
            let mut response = FetchableTopicResponse::default();
            if version >= 13 {
                response.topic_id = topic_id;
            } else {
                response.topic = TopicName(StrBytes::from_string(name.0.to_string()));
            }
            response
        })
        .collect();
    for (slot, read) in slots.iter().zip(reads) {
        let mut partition = PartitionData::default()
            .with_partition_index(slot.partition)
            .with_error_code(read.error.map_or(0, |error| error.code()))
            .with_high_watermark(read.high_watermark)
            .with_last_stable_offset(read.last_stable_offset)
            .with_aborted_transactions(read.aborted.map(|aborted| {
                aborted
                    .into_iter()
                    .map(|(producer_id, first_offset)| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(producer_id))
                            .with_first_offset(first_offset)
                    })
                    .collect()
            }))
            // librdkafka rejects a null records field: always send bytes, maybe empty.
            .with_records(Some(read.records));
        if version >= 5 {
            partition.log_start_offset = read.log_start_offset;
        }
        responses[slot.topic].partitions.push(partition);
    }
    FetchResponse::default().with_responses(responses)
}

/// Reads every slot in one blocking task: whole batches, within the
/// per-partition and total limits; the first data returned may exceed them
/// by one batch (KIP-74) so a large batch never blocks a consumer.
async fn read_all(slots: &[Slot], max_bytes: usize, read_committed: bool) -> Vec<Read> {
    let plan: Vec<(Result<Partition, ResponseError>, i64, i32)> = slots
        .iter()
        .map(|slot| (slot.target.clone(), slot.fetch_offset, slot.partition_max_bytes))
        .collect();
    let task = tokio::task::spawn_blocking(move || {
        let mut remaining = max_bytes;
        plan.into_iter()
            .map(|(target, offset, partition_max)| {
                let partition = match target {
                    Ok(partition) => partition,
                    Err(error) => return failed(error),
                };
                let log: &Log = &partition.log;
                // Read before the data, so no record past it is returned.
                let last_stable_offset = partition.last_stable_offset();
                let high_watermark = log.high_watermark() as i64;
                let log_start_offset = log.start_offset() as i64;
                let empty = |error: Option<ResponseError>| Read {
                    error,
                    records: Bytes::new(),
                    high_watermark,
                    last_stable_offset: last_stable_offset as i64,
                    log_start_offset,
                    aborted: read_committed.then(Vec::new),
                };
                if offset < 0 {
                    return empty(Some(ResponseError::OffsetOutOfRange));
                }
                if read_committed && offset as u64 >= last_stable_offset && offset <= high_watermark {
                    // Nothing decided to hand out yet.
                    return empty(None);
                }
                let limit = remaining.min(partition_max.max(0) as usize);
                let min_one = remaining == max_bytes;
                match log.read(offset as u64, limit, min_one) {
                    Ok(outcome) => {
                        let (records, aborted) = if read_committed {
                            let records = below(outcome.bytes, last_stable_offset);
                            let end = batches_end(&records).unwrap_or(offset as u64);
                            let aborted = partition
                                .aborted_transactions(offset as u64, end)
                                .into_iter()
                                .map(|aborted| (aborted.producer_id, aborted.first_offset as i64))
                                .collect();
                            (records, Some(aborted))
                        } else {
                            (outcome.bytes, None)
                        };
                        remaining = remaining.saturating_sub(records.len());
                        Read {
                            error: None,
                            records,
                            high_watermark: outcome.high_watermark as i64,
                            last_stable_offset: last_stable_offset.min(outcome.high_watermark) as i64,
                            log_start_offset: outcome.log_start_offset as i64,
                            aborted,
                        }
                    }
                    Err(error @ LogError::OffsetOutOfRange { .. }) => empty(Some(errors::log_error(&error))),
                    Err(error) => failed(errors::log_error(&error)),
                }
            })
            .collect::<Vec<Read>>()
    });
    match task.await {
        Ok(reads) => reads,
        Err(_) => slots.iter().map(|_| failed(ResponseError::UnknownServerError)).collect(),
    }
}

fn failed(error: ResponseError) -> Read {
    Read {
        error: Some(error),
        records: Bytes::new(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted: None,
    }
}

/// The whole batches of `records` that begin below `offset_end`.
fn below(records: Bytes, offset_end: u64) -> Bytes {
    let mut position = 0;
    while let Some(header) = BatchHeader::parse(&records[position..]) {
        if header.base_offset < 0 || header.base_offset as u64 >= offset_end || position + header.total_bytes() > records.len() {
            break;
        }
        position += header.total_bytes();
    }
    records.slice(..position)
}

/// The offset after the last whole batch of `records`.
fn batches_end(records: &[u8]) -> Option<u64> {
    let mut position = 0;
    let mut end = None;
    while let Some(header) = BatchHeader::parse(&records[position..]) {
        if position + header.total_bytes() > records.len() {
            break;
        }
        end = Some(header.last_offset() as u64 + 1);
        position += header.total_bytes();
    }
    end
}

/// Resolves when the first of `futures` does.
async fn futures_select_all<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(|cx| {
        for future in &mut futures {
            if std::pin::Pin::new(future).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}
