//! Messages through the admin API: peek at a topic partition or a queue
//! without consuming, and publish to a topic (one record or a batch), an
//! exchange or a queue.
//! Keys, values and header values travel as UTF-8 text when they are, as
//! base64 otherwise, with an `*_encoding` field that says which.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use conveyor_core::append_condition::{AppendCondition, Expectation};
use conveyor_core::broker::RouteTarget;
use conveyor_core::envelope::Envelope;
use conveyor_core::exchange::{DEFAULT_EXCHANGE, FieldTable, HeaderValue};
use conveyor_core::partition_write::{PartitionWrite, Reach};
use conveyor_core::{Broker, Topic, partitioner, vhost};
use conveyor_log::batch::{HEADER_BYTES, check_batch};
use conveyor_log::record::{BatchBuilder, Header, Record, decode_records};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, blocking};
use super::vhosts::InVhost;
use super::{queues, topics};
use crate::HttpState;

/// Most messages one peek returns.
pub const PEEK_COUNT_MAX: usize = 1000;
const PEEK_COUNT_DEFAULT: usize = 10;
/// Bytes read from a partition log per read while peeking.
const PEEK_READ_BYTES: usize = 1 << 20;
/// Reads one partition peek may make (bounds a peek over compressed batches).
const PEEK_READS_MAX: usize = 64;
/// The name the admin API gives the default exchange (`""`), as RabbitMQ's management API does.
pub const DEFAULT_EXCHANGE_ALIAS: &str = "amq.default";

/// How a key, value or header value is written in JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The bytes are UTF-8 text.
    #[default]
    Utf8,
    /// The bytes, base64-encoded (standard alphabet, padded).
    Base64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeaderView {
    pub key: String,
    pub value: Option<String>,
    pub value_encoding: Encoding,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub offset: u64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<String>,
    pub key_encoding: Encoding,
    pub value: Option<String>,
    pub value_encoding: Encoding,
    pub headers: Vec<HeaderView>,
    /// Queues only: deliveries so far (0: never delivered).
    pub delivery_count: Option<u32>,
    /// Queues only: held by a consumer right now.
    pub acquired: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionMessages {
    pub messages: Vec<MessageView>,
    /// Where the next peek continues.
    pub next_offset: u64,
    pub end_offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueMessages {
    pub messages: Vec<MessageView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartitionPeek {
    /// First offset to read; the log start offset when absent or below it.
    pub offset: Option<u64>,
    /// At most this many messages (1 to 1000, default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub count: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueuePeek {
    /// At most this many messages (1 to 1000, default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub count: Option<usize>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    /// The record key (topics: picks the partition as Kafka's partitioner
    /// does). For exchanges and queues use `routing_key`.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_encoding: Encoding,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_encoding: Encoding,
    /// Record headers (UTF-8 values).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Topics only: the partition, instead of the key's.
    #[serde(default)]
    pub partition: Option<u32>,
    /// Exchanges and queues: the routing key (stored as the record key).
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Topics only (`/topics/{name}/messages`), Conveyor's conditional
    /// append: store the record only if it gets exactly this offset in its
    /// partition; else 409 with the offset it would get.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub expected_offset: Option<u64>,
    /// Topics only (`/topics/{name}/messages`), Conveyor's conditional
    /// append: store the record only if the latest record with its key in
    /// its partition is at this offset (-1: no record has the key); else
    /// 409 with that latest offset.
    #[serde(default)]
    #[schema(minimum = -1)]
    pub expected_key_offset: Option<i64>,
}

impl PublishMessage {
    /// The conditions a topic publish asks for, on its one record.
    fn conditions(&self) -> Result<Vec<AppendCondition>, ApiError> {
        let mut conditions = Vec::new();
        if let Some(offset) = self.expected_offset {
            conditions.push(AppendCondition {
                record: 0,
                expectation: Expectation::Offset(offset),
            });
        }
        if let Some(offset) = self.expected_key_offset {
            let offset = match offset {
                -1 => None,
                offset => Some(
                    u64::try_from(offset)
                        .map_err(|_| ApiError::bad_request(format!("expected_key_offset must be -1 or more, not {offset}")))?,
                ),
            };
            if self.key.is_none() {
                return Err(ApiError::bad_request("expected_key_offset needs a key"));
            }
            conditions.push(AppendCondition {
                record: 0,
                expectation: Expectation::KeyOffset(offset),
            });
        }
        Ok(conditions)
    }

    /// Refuses the conditional-append fields where they mean nothing.
    fn unconditional(&self, what: &str) -> Result<(), ApiError> {
        match self.expected_offset.is_some() || self.expected_key_offset.is_some() {
            true => Err(ApiError::bad_request(format!(
                "expected_offset and expected_key_offset apply to one publish to a topic, not to {what}"
            ))),
            false => Ok(()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicPublished {
    pub partition: u32,
    pub offset: u64,
}

/// Most messages one batch publish carries.
pub const PUBLISH_BATCH_MAX: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatch {
    /// 1 to 1000 messages, appended in this order.
    pub messages: Vec<PublishMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicBatchPublished {
    /// Where each message went, in the request's order.
    pub published: Vec<TopicPublished>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Routed {
    /// Whether any queue or topic stored the message. `false` means it went
    /// nowhere (as an AMQP `mandatory` publish would be returned): no
    /// binding matched, or every queue it matched refused it.
    pub routed: bool,
    /// Queues that stored the message (durable when this answers).
    pub queues: Vec<String>,
    /// Kafka topics that stored it.
    pub topics: Vec<String>,
    /// Full queues that refused it (`x-overflow` `reject-publish`).
    pub refused: Vec<String>,
}

fn decode(field: &str, text: Option<String>, encoding: Encoding) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    match encoding {
        Encoding::Utf8 => Ok(Some(text.into_bytes())),
        Encoding::Base64 => BASE64
            .decode(text.as_bytes())
            .map(Some)
            .map_err(|error| ApiError::bad_request(format!("{field} is not valid base64: {error}"))),
    }
}

fn encode(bytes: Option<Vec<u8>>) -> (Option<String>, Encoding) {
    match bytes {
        None => (None, Encoding::Utf8),
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), Encoding::Utf8),
            Err(error) => (Some(BASE64.encode(error.into_bytes())), Encoding::Base64),
        },
    }
}

/// A record as the admin API shows it.
pub fn view(record: Record, fallback_offset: u64) -> MessageView {
    let (key, key_encoding) = encode(record.key);
    let (value, value_encoding) = encode(record.value);
    MessageView {
        offset: record
            .offset
            .and_then(|offset| u64::try_from(offset).ok())
            .unwrap_or(fallback_offset),
        timestamp_ms: record.timestamp_ms,
        key,
        key_encoding,
        value,
        value_encoding,
        headers: record
            .headers
            .into_iter()
            .map(|Header { key, value }| {
                let (value, value_encoding) = encode(value);
                HeaderView {
                    key,
                    value,
                    value_encoding,
                }
            })
            .collect(),
        delivery_count: None,
        acquired: None,
    }
}

/// The record a publish request describes; `key` is the record key for
/// topics and the routing key for exchanges and queues.
fn record_of(request: PublishMessage, key: Option<Vec<u8>>) -> Result<Record, ApiError> {
    let mut record = Record::new(key, decode("value", request.value, request.value_encoding)?);
    for (name, value) in request.headers.unwrap_or_default() {
        record = record.with_header(name, Some(value.into_bytes()));
    }
    Ok(record)
}

/// Peeks at a topic partition from an offset, without a consumer group.
#[utoipa::path(get, operation_id = "peek_partition", path = "/topics/{name}/partitions/{partition}/messages", tag = "topics",
    params(("name" = String, Path, description = "topic name"), ("partition" = u32, Path), PartitionPeek),
    responses((status = 200, body = PartitionMessages), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn peek_partition(
    State(state): State<Arc<HttpState>>,
    ApiPath((name, partition)): ApiPath<(String, u32)>,
    ApiQuery(query): ApiQuery<PartitionPeek>,
) -> Result<Json<PartitionMessages>, ApiError> {
    let count = peek_count(query.count)?;
    let log = topics::find(&state.broker, &name)?
        .partition(partition)
        .ok_or_else(|| ApiError::not_found(format!("topic {name:?} has no partition {partition}")))?;
    let peeked = blocking(move || {
        let end_offset = log.high_watermark();
        let mut offset = query.offset.unwrap_or(0).max(log.start_offset());
        let mut messages = Vec::new();
        for _ in 0..PEEK_READS_MAX {
            if offset >= log.high_watermark() || messages.len() >= count {
                break;
            }
            let read = match log.read(offset, PEEK_READ_BYTES, true) {
                Ok(read) => read,
                // Retention removed it meanwhile: go on from the new start.
                Err(conveyor_log::LogError::OffsetOutOfRange { start, .. }) if start > offset => {
                    offset = start;
                    continue;
                }
                Err(error) => return Err(ApiError::from(conveyor_core::CoreError::from(error))),
            };
            let mut bytes = &read.bytes[..];
            if bytes.is_empty() {
                break;
            }
            // Each step consumes one whole batch (at least a header).
            for _ in 0..read.bytes.len() / HEADER_BYTES + 1 {
                if bytes.len() < HEADER_BYTES {
                    break;
                }
                let Ok(header) = check_batch(bytes) else { break };
                let total = header.total_bytes().min(bytes.len());
                // Compressed batches are not decoded here (the broker never
                // decompresses); they are stepped over.
                for record in decode_records(&bytes[..total]).unwrap_or_default() {
                    let record_offset = record.offset.and_then(|offset| u64::try_from(offset).ok()).unwrap_or(0);
                    if record_offset >= offset && messages.len() < count {
                        messages.push(view(record, record_offset));
                    }
                }
                offset = offset.max(header.last_offset().saturating_add(1) as u64);
                bytes = &bytes[total..];
                if messages.len() >= count {
                    break;
                }
            }
        }
        let next_offset = messages.last().map_or(offset, |last: &MessageView| last.offset + 1);
        Ok(PartitionMessages {
            messages,
            next_offset,
            end_offset,
        })
    })
    .await?;
    Ok(Json(peeked))
}

/// Peeks at a queue's unsettled messages, lowest first, without acquiring them.
#[utoipa::path(get, operation_id = "peek_queue", path = "/queues/{name}/messages", tag = "queues",
    params(("name" = String, Path, description = "queue name"), QueuePeek, InVhost),
    responses((status = 200, body = QueueMessages), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn peek_queue(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<QueuePeek>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
) -> Result<Json<QueueMessages>, ApiError> {
    let count = peek_count(query.count)?;
    let declared = queues::find(&state.broker, &in_vhost, &name)?;
    let peeked = blocking(move || Ok(declared.queue()?.peek(count)?)).await?;
    let messages = peeked
        .into_iter()
        .map(|peeked| MessageView {
            delivery_count: Some(peeked.delivery_count),
            acquired: Some(peeked.acquired),
            ..view(peeked.record, peeked.offset)
        })
        .collect();
    Ok(Json(QueueMessages { messages }))
}

fn peek_count(count: Option<usize>) -> Result<usize, ApiError> {
    match count.unwrap_or(PEEK_COUNT_DEFAULT) {
        count @ 1..=PEEK_COUNT_MAX => Ok(count),
        other => Err(ApiError::bad_request(format!(
            "count {other} is not between 1 and {PEEK_COUNT_MAX}"
        ))),
    }
}

/// Appends one record to a topic: to `partition`, or to the one Kafka's partitioner picks for the key.
#[utoipa::path(post, operation_id = "publish_to_topic", path = "/topics/{name}/messages", tag = "topics",
    params(("name" = String, Path, description = "topic name")),
    request_body = PublishMessage,
    responses(
        (status = 201, description = "durable under the topic's policy", body = TopicPublished),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 409, description = "a conditional append (`expected_offset`, `expected_key_offset`) was refused: nothing was stored; `expected_offset` and `actual_offset` in the error say why", body = ErrorBody),
        (status = 503, description = "a resource alarm (the disk floor, the memory ceiling) held it past 5 s; nothing was stored, retry later", body = ErrorBody),
        (status = 507, description = "the file system is full; retry once space is freed", body = ErrorBody),
    ))]
pub async fn publish_to_topic(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PublishMessage>,
) -> Result<(StatusCode, Json<TopicPublished>), ApiError> {
    let topic = topics::find(&state.broker, &name)?;
    let conditions = request.conditions()?;
    let (partition, batch) = topic_batch(&state.broker, &topic, request)?;
    crate::disk_admission::admit(state.broker.alarms(), batch.len() as u64).await?;
    // The core's one write path: through the partition's group (sent on to
    // its leader) when it is replicated.
    let write = PartitionWrite::Records {
        batches: batch,
        conditions,
    };
    let appended = state.broker.write_partition(&topic, partition, write, Reach::AnyNode).await?;
    Ok((
        StatusCode::CREATED,
        Json(TopicPublished {
            partition,
            offset: appended.base_offset,
        }),
    ))
}

/// Appends up to 1000 records to a topic in order, each as a publish to
/// `/topics/{name}/messages` would, and answers once all are durable.
#[utoipa::path(post, operation_id = "publish_batch_to_topic", path = "/topics/{name}/messages/batch", tag = "topics",
    params(("name" = String, Path, description = "topic name")),
    request_body = PublishBatch,
    responses(
        (status = 201, description = "every record durable under the topic's policy", body = TopicBatchPublished),
        (status = 400, description = "no messages or too many, or one is invalid (then none is appended)", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "a resource alarm (the disk floor, the memory ceiling) held it past 5 s; nothing was stored, retry later", body = ErrorBody),
    ))]
pub async fn publish_batch_to_topic(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PublishBatch>,
) -> Result<(StatusCode, Json<TopicBatchPublished>), ApiError> {
    if request.messages.is_empty() || request.messages.len() > PUBLISH_BATCH_MAX {
        return Err(ApiError::bad_request(format!(
            "{} messages: publish between 1 and {PUBLISH_BATCH_MAX}",
            request.messages.len()
        )));
    }
    for message in &request.messages {
        message.unconditional("a batch publish")?;
    }
    let topic = topics::find(&state.broker, &name)?;
    let batches = request
        .messages
        .into_iter()
        .map(|message| topic_batch(&state.broker, &topic, message))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let bytes: usize = batches.iter().map(|(_, batch)| batch.len()).sum();
    crate::disk_admission::admit(state.broker.alarms(), bytes as u64).await?;
    // Every append is queued before any is awaited, in the request's order:
    // the log's group commit makes them durable with one fsync.
    let appends: Vec<_> = batches
        .into_iter()
        .map(|(partition, batch)| {
            let write = PartitionWrite::records(batch);
            (partition, state.broker.write_partition(&topic, partition, write, Reach::AnyNode))
        })
        .collect();
    let mut published = Vec::with_capacity(appends.len());
    for (partition, append) in appends {
        published.push(TopicPublished {
            partition,
            offset: append.await?.base_offset,
        });
    }
    Ok((StatusCode::CREATED, Json(TopicBatchPublished { published })))
}

/// The partition a publish request goes to (its own, or the one Kafka's
/// partitioner picks for its key), that partition, and the one-record batch
/// to append, checked against the topic's `max.message.bytes`.
fn topic_batch(broker: &Broker, topic: &Topic, request: PublishMessage) -> Result<(u32, Bytes), ApiError> {
    let key = decode("key", request.key.clone(), request.key_encoding)?;
    let partition = match request.partition {
        Some(partition) => partition,
        // As the core routes exchange messages into topics: keyless ones to partition 0.
        None => key
            .as_deref()
            .map_or(0, |key| partitioner::partition_for_key(key, topic.partition_count())),
    };
    if partition >= topic.partition_count() {
        return Err(ApiError::not_found(format!("topic {:?} has no partition {partition}", topic.name)));
    }
    let record = record_of(request, key)?;
    let mut builder = BatchBuilder::new(broker.clock().now_ms());
    builder.push(record);
    let batch = builder.build();
    broker.check_batch_bytes(topic, batch.len())?;
    Ok((partition, batch))
}

/// Publishes through an exchange (`amq.default` is the default exchange),
/// as an AMQP `basic.publish` with the routing key would.
#[utoipa::path(post, operation_id = "publish_to_exchange", path = "/exchanges/{name}/messages", tag = "exchanges",
    params(("name" = String, Path, description = "exchange name; amq.default for the default exchange"), InVhost),
    request_body = PublishMessage,
    responses(
        (status = 200, description = "stored in every queue and topic it was routed to", body = Routed),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "a resource alarm (the disk floor, the memory ceiling) held it past 5 s; nothing was stored, retry later", body = ErrorBody),
    ))]
pub async fn publish_to_exchange(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(request): ApiJson<PublishMessage>,
) -> Result<Json<Routed>, ApiError> {
    let broker = &state.broker;
    let exchange = in_vhost.resource(broker, if name == DEFAULT_EXCHANGE_ALIAS { DEFAULT_EXCHANGE } else { &name })?;
    request.unconditional("an exchange")?;
    let routing_key = request.routing_key.clone().unwrap_or_default();
    let headers: FieldTable = request
        .headers
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), HeaderValue::String(value.clone())))
        .collect();
    let routed = broker.route(&exchange, &routing_key, &headers)?;
    // The headers also go into the core's envelope, so a headers exchange
    // that is a dead-letter exchange matches them later.
    let envelope = Envelope {
        headers,
        ..Envelope::default()
    };
    let record = envelope.stamp(record_of(request, Some(routing_key.into_bytes()))?);
    // Every copy is admitted before any is stored.
    let copies = routed.queues.len() + routed.topics.len();
    if copies > 0 {
        crate::disk_admission::admit(broker.alarms(), (record_bytes(&record) * copies) as u64).await?;
    }
    let fanned = broker.publish_routed(&routed, record);
    let mut result = Routed {
        routed: false,
        queues: Vec::new(),
        topics: Vec::new(),
        refused: fanned.refused.iter().map(|queue| vhost::local_name(queue).to_owned()).collect(),
    };
    for (target, appends) in fanned.stored {
        for append in appends {
            append.await?;
        }
        match target {
            RouteTarget::Queue(queue) if !fanned.refused.contains(&queue) => result.queues.push(vhost::local_name(&queue).to_owned()),
            RouteTarget::Queue(_) => {}
            RouteTarget::Topic(topic) => result.topics.push(topic),
        }
    }
    result.routed = !result.queues.is_empty() || !result.topics.is_empty();
    Ok(Json(result))
}

/// Publishes straight into a queue (as through the default exchange).
#[utoipa::path(post, operation_id = "publish_to_queue", path = "/queues/{name}/messages", tag = "queues",
    params(("name" = String, Path, description = "queue name"), InVhost),
    request_body = PublishMessage,
    responses(
        (status = 201, description = "durable under the queue's policy", body = Routed),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the queue is full and refuses publishes", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "a resource alarm (the disk floor, the memory ceiling) held it past 5 s; nothing was stored, retry later", body = ErrorBody),
        (status = 507, description = "the file system is full; retry once space is freed", body = ErrorBody),
    ))]
pub async fn publish_to_queue(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(request): ApiJson<PublishMessage>,
) -> Result<(StatusCode, Json<Routed>), ApiError> {
    let broker = &state.broker;
    request.unconditional("a queue")?;
    let declared = queues::find(broker, &in_vhost, &name)?;
    let routing_key = request.routing_key.clone().unwrap_or_else(|| name.clone());
    let record = record_of(request, Some(routing_key.into_bytes()))?;
    if !store_in_queue(broker, &declared, record).await? {
        return Err(ApiError::conflict(format!(
            "queue {name:?} is full and refuses publishes (x-overflow)"
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(Routed {
            routed: true,
            queues: vec![name],
            topics: Vec::new(),
            refused: Vec::new(),
        }),
    ))
}

/// What `record` adds to a log, about: its key, value and headers.
fn record_bytes(record: &Record) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|header| header.key.len() + header.value.as_ref().map_or(0, Vec::len))
        .sum();
    record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len) + headers
}

/// Publishes `record` into `declared` under its policies, once the
/// resource alarms admit it (`disk_admission.rs`), and waits until it
/// is durable; false if the queue refused it.
pub async fn store_in_queue(
    broker: &Arc<Broker>,
    declared: &Arc<conveyor_core::queue::DeclaredQueue>,
    record: Record,
) -> Result<bool, ApiError> {
    crate::disk_admission::admit(broker.alarms(), record_bytes(&record) as u64).await?;
    let published = broker.publish_to_queue(declared, record);
    for append in published.appends {
        append.await?;
    }
    declared.notify_available();
    Ok(!published.refused)
}
