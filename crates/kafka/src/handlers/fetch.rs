//! Fetch: reads stored batches as they are on disk, honouring max_bytes
//! (within the broker's `fetch.max.bytes` and the connection's budget),
//! per-partition limits and min_bytes, and long-polls on the partitions'
//! high watermarks for up to max_wait_ms. A parked fetch does not read
//! again on every append: it adds up how much its logs grew, and reads
//! once that could satisfy min_bytes (or at the deadline). Sessionless: the
//! reply's session id is always 0, so clients keep sending full fetch
//! requests (KIP-227 allows it). With `isolation_level=read_committed` a
//! partition is read up to its last stable offset only (a parked fetch
//! reads again whenever that moves), and the reply lists the aborted
//! transactions in what it returns, which the clients drop.

use std::time::Duration;

use bytes::Bytes;
use conveyor_core::auth::{Operation, Resource};
use conveyor_core::connection_budget::{ConnectionBudget, Reservation};
use conveyor_core::limits::Limit;
use conveyor_core::producer::Partition;
use conveyor_log::batch::BatchHeader;
use conveyor_log::{Log, LogError};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;

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

/// Answers a Fetch, with the reservation of its bytes in the connection's
/// budget (to be held until the response is sent).
pub async fn handle(context: &Context, connection: &ConnectionInfo, request: FetchRequest, version: i16) -> (FetchResponse, Reservation) {
    if version >= 7 && request.session_id != 0 {
        // We never create sessions, so a client cannot hold one.
        return (
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code()),
            Reservation::empty(&connection.budget),
        );
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
                    .and_then(|index| topic.partition_handle(index).map(|handle| (index, handle)))
                    .ok_or(ResponseError::UnknownTopicOrPartition)
                    .and_then(|(index, handle)| match context.broker.check_leads(topic, index) {
                        Ok(()) => Ok(handle),
                        Err(error) => Err(errors::core_error(&error)),
                    }),
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
    let max_bytes = response_bytes_max(context, &connection.budget, request.max_bytes);
    let min_bytes = request.min_bytes.max(0) as usize;
    let read_committed = request.isolation_level == READ_COMMITTED;
    let logs: Vec<Log> = slots
        .iter()
        .filter_map(|slot| slot.target.as_ref().ok().map(|partition| partition.log.clone()))
        .collect();
    // Data arrives with the high watermark; for read_committed, decisions with markers too.
    let mut watermarks: Vec<watch::Receiver<u64>> = logs.iter().map(Log::subscribe).collect();
    let mut stables: Vec<watch::Receiver<u64>> = slots
        .iter()
        .filter_map(|slot| slot.target.as_ref().ok())
        .filter(|_| read_committed)
        .map(Partition::subscribe_stable)
        .collect();
    let reads = loop {
        for receiver in &mut watermarks {
            receiver.borrow_and_update();
        }
        let stable_offsets: Vec<u64> = stables.iter_mut().map(|receiver| *receiver.borrow_and_update()).collect();
        // Taken before the read: whatever is appended after it counts as new below.
        let mut sizes: Vec<u64> = logs.iter().map(Log::size_bytes).collect();
        let reads = read_all(&slots, max_bytes, read_committed).await;
        let bytes: usize = reads.iter().map(|read| read.records.len()).sum();
        let failed = reads.iter().any(|read| read.error.is_some());
        if bytes >= min_bytes.max(1) || failed || Instant::now() >= deadline || watermarks.is_empty() {
            break reads;
        }
        // Parked: each append wakes this fetch, which only adds up how much
        // the logs grew (no read) until that could reach min_bytes. A
        // decided transaction (the last stable offset moving) reads again.
        let mut estimate = bytes as u64;
        let woken = loop {
            let changed = async {
                let waits = watermarks
                    .iter_mut()
                    .chain(stables.iter_mut())
                    .map(|receiver| Box::pin(receiver.changed()));
                futures_select_all(waits).await;
            };
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break false;
            }
            if stables
                .iter()
                .zip(&stable_offsets)
                .any(|(receiver, seen)| *receiver.borrow() != *seen)
            {
                break true;
            }
            for (size, log) in sizes.iter_mut().zip(&logs) {
                let now = log.size_bytes();
                estimate += now.saturating_sub(*size);
                *size = now;
            }
            if estimate >= min_bytes as u64 {
                break true;
            }
        };
        if !woken {
            break read_all(&slots, max_bytes, read_committed).await;
        }
    };
    // The response is held until it is sent: it counts in the connection's budget.
    let read_bytes: usize = reads.iter().map(|read| read.records.len()).sum();
    let reservation = connection.budget.reserve_now(read_bytes as u64).hold_all();

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
    (FetchResponse::default().with_responses(responses), reservation)
}

/// The most one response may carry: what the client asked for (Kafka's
/// broker-side `fetch.max.bytes` when it asked for nothing, `max_bytes` ≤ 0,
/// or for more), within the connection's budget; a single batch (KIP-74's
/// minimum) while the memory alarm is on, so consumers shrink what the
/// broker holds instead of growing it.
fn response_bytes_max(context: &Context, budget: &ConnectionBudget, requested: i32) -> usize {
    let limits = context.broker.limits();
    let cap = limits.config().fetch_max_bytes;
    let asked = u64::try_from(requested).ok().filter(|bytes| *bytes > 0);
    if asked.is_none_or(|bytes| bytes > cap) {
        limits.reach(Limit::FetchBytes, format!("a Fetch asked for max_bytes {requested}"));
    }
    let bytes = asked.unwrap_or(cap).min(cap).min(budget.max_bytes());
    if context.broker.alarms().measured().alarms.memory {
        return 0;
    }
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Reads every slot in one blocking task: whole batches, within the
/// per-partition and total limits; the first data returned may exceed them
/// by one batch (KIP-74) so a large batch never blocks a consumer.
async fn read_all(slots: &[Slot], max_bytes: usize, read_committed: bool) -> Vec<Read> {
    if let Some(reads) = caught_up(slots, read_committed) {
        return reads;
    }
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

/// What [`read_all`] returns when every partition is caught up (asked
/// from its high watermark, where a read finds nothing without touching a
/// file), computed on the caller's thread: a consumer that keeps up
/// long-polls from there on every fetch, and handing such a read to a
/// blocking thread cost two thread wake-ups per fetch (issue 18). `None`
/// when any partition has something to read, is in error, or is read
/// committed (whose aborted transactions come from index files).
fn caught_up(slots: &[Slot], read_committed: bool) -> Option<Vec<Read>> {
    if read_committed {
        return None;
    }
    slots
        .iter()
        .map(|slot| {
            let partition = slot.target.as_ref().ok()?;
            // Read before the high watermark, as `read_all` does.
            let last_stable_offset = partition.last_stable_offset();
            let high_watermark = partition.log.high_watermark();
            let log_start_offset = partition.log.start_offset();
            (u64::try_from(slot.fetch_offset).ok()? == high_watermark).then(|| Read {
                error: None,
                records: Bytes::new(),
                high_watermark: high_watermark as i64,
                last_stable_offset: last_stable_offset.min(high_watermark) as i64,
                log_start_offset: log_start_offset as i64,
                aborted: None,
            })
        })
        .collect()
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
