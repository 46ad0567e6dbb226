//! What a queue does beyond delivering: message TTL and retention, length limits and
//! their overflow behaviour, dead-lettering and the delivery limit. Declared
//! with RabbitMQ's argument names (`x-message-ttl`, …), which are the
//! canonical ones here; the SQS front door maps its attributes onto them.
//! Also how a declaration's typed arguments (an AMQP field table, or the
//! JSON of the admin API mapped onto one) become the text the definition
//! keeps, with RabbitMQ's type checks, so every way in declares alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exchange::{FieldTable, HeaderValue};

/// Queue argument names.
pub mod arguments {
    pub const MESSAGE_TTL: &str = "x-message-ttl";
    pub const MAX_LENGTH: &str = "x-max-length";
    /// Bounds the body bytes of the messages ready for delivery.
    pub const MAX_LENGTH_BYTES: &str = "x-max-length-bytes";
    pub const OVERFLOW: &str = "x-overflow";
    pub const DEAD_LETTER_EXCHANGE: &str = "x-dead-letter-exchange";
    pub const DEAD_LETTER_ROUTING_KEY: &str = "x-dead-letter-routing-key";
    pub const DELIVERY_LIMIT: &str = "x-delivery-limit";
    /// The queue is deleted after this many milliseconds unused: no
    /// consumers, no gets or receives, not declared again.
    pub const EXPIRES: &str = "x-expires";
    /// Conveyor's own: a message given back with requeue (AMQP nack or
    /// reject) is delivered again no sooner than this many milliseconds
    /// later, growing by `x-retry-backoff` each time, up to
    /// `x-retry-delay-max-ms` — retries with exponential backoff, and with
    /// `x-delivery-limit` and a dead-letter exchange, then the DLQ.
    pub const RETRY_DELAY: &str = "x-retry-delay-ms";
    pub const RETRY_BACKOFF: &str = "x-retry-backoff";
    pub const RETRY_DELAY_MAX: &str = "x-retry-delay-max-ms";
    /// Conveyor's own: a message older than this many milliseconds (since
    /// it was appended) is removed when a consumer reaches it, never
    /// delivered and not dead-lettered (SQS's MessageRetentionPeriod).
    pub const RETENTION: &str = "x-message-retention-ms";
    /// `"true"`: messages with the same key (group) are delivered in order,
    /// one acquisition at a time (SQS FIFO queues; see `share_cursor.rs`).
    pub const MESSAGE_GROUPS: &str = "x-message-groups";
    /// The highest message priority, 0–255 (0: none): a priority queue
    /// delivers the messages of higher priority first (see `share_cursor.rs`).
    pub const MAX_PRIORITY: &str = "x-max-priority";
    /// Conveyor's own, `"true"`: messages may carry a not-before time
    /// (header [`super::headers::NOT_BEFORE_MS`]) and are not delivered
    /// before it (SQS queues; see `share_cursor.rs`).
    pub const MESSAGE_DELAYS: &str = "x-message-delays";
    /// `classic` (the default), `quorum` or `stream` ([`QueueType`]).
    pub const QUEUE_TYPE: &str = "x-queue-type";
    /// Quorum queues: `at-most-once` (the default) or `at-least-once`.
    pub const DEAD_LETTER_STRATEGY: &str = "x-dead-letter-strategy";
    /// Quorum queues: how many replicas to start with (a positive integer).
    /// Accepted and kept; a single node has one.
    pub const QUORUM_INITIAL_GROUP_SIZE: &str = "x-quorum-initial-group-size";
    /// Streams: messages older than this go with their segment: a number
    /// and a unit, `Y`, `M`, `D`, `h`, `m` or `s` ("7D"), as RabbitMQ takes it.
    pub const MAX_AGE: &str = "x-max-age";
    /// Streams: the size a segment of the log grows to before a new one starts.
    pub const STREAM_MAX_SEGMENT_SIZE_BYTES: &str = "x-stream-max-segment-size-bytes";
    /// `true`: one consumer at a time gets the messages, the next (in the
    /// order they attached) when it goes (classic and quorum queues, streams).
    pub const SINGLE_ACTIVE_CONSUMER: &str = "x-single-active-consumer";
    /// Milliseconds a consumer may hold a delivery unacknowledged before
    /// its channel is closed (RabbitMQ's per-queue `consumer_timeout`).
    pub const CONSUMER_TIMEOUT: &str = "x-consumer-timeout";
}

/// Record headers the core reads and writes (front doors map them to their
/// protocol: AMQP's `expiration` property and `x-death` header); the typed
/// view of the ones a door writes at publish is `crate::envelope`.
pub mod headers {
    /// The message's own TTL in milliseconds, from the publisher.
    pub const TTL_MS: &str = "conveyor.ttl-ms";
    /// Why the message was dead-lettered: rejected, expired, maxlen or delivery_limit.
    pub const DEATH_REASON: &str = "conveyor.death-reason";
    /// The queue it died in.
    pub const DEATH_QUEUE: &str = "conveyor.death-queue";
    /// When, in milliseconds since the epoch.
    pub const DEATH_TIME_MS: &str = "conveyor.death-time-ms";
    /// How many times it had been delivered.
    pub const DEATH_DELIVERIES: &str = "conveyor.death-deliveries";
    /// How many times it died this way in this queue (see `queue::deaths`).
    pub const DEATH_COUNT: &str = "conveyor.death-count";
    /// The routing key it had before dead-lettering.
    pub const DEATH_ROUTING_KEY: &str = "conveyor.death-routing-key";
    /// The message's priority (0–255 as decimal text), from the publisher;
    /// a queue with `x-max-priority` delivers higher ones first.
    pub const PRIORITY: &str = "conveyor.priority";
    /// Not delivered before this time (ms since the epoch, decimal text),
    /// on a queue with `x-message-delays` (SQS's DelaySeconds).
    pub const NOT_BEFORE_MS: &str = "conveyor.not-before-ms";
    /// The message's content type (AMQP's `content_type` property), UTF-8.
    pub const CONTENT_TYPE: &str = "conveyor.content-type";
    /// The message's own headers (AMQP's `headers` property, SQS message
    /// attributes) as a headers exchange matches them, CBOR-encoded (see
    /// `envelope.rs`).
    pub const APPLICATION_HEADERS: &str = "conveyor.headers";
}

/// What happens to a publish into a full queue (`x-overflow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// The oldest available message is dropped (dead-lettered).
    #[default]
    DropHead,
    /// The new message is refused (a publisher confirm nack).
    RejectPublish,
    /// The new message is refused and dead-lettered.
    RejectPublishDlx,
}

/// A queue's type (`x-queue-type`), as RabbitMQ names them. Every type is
/// a log with a share cursor here; the type decides the rules RabbitMQ
/// gives it (see [`QueueType::refused_property`] and the delivery limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueType {
    #[default]
    Classic,
    /// RabbitMQ's replicated FIFO queue: durable only, a delivery limit of
    /// [`QueueType::QUORUM_DELIVERY_LIMIT_DEFAULT`] returns unless told
    /// otherwise, redeliveries counted in a header.
    Quorum,
    /// RabbitMQ's append-only log with non-destructive reads.
    Stream,
}

impl QueueType {
    /// RabbitMQ 4's default `x-delivery-limit` for quorum queues.
    pub const QUORUM_DELIVERY_LIMIT_DEFAULT: u32 = 20;

    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }

    /// The declaration property this type refuses, in RabbitMQ's order
    /// and words (`invalid property '…' for queue …`): quorum queues and
    /// streams are durable, not exclusive and not auto-delete.
    pub fn refused_property(self, durable: bool, exclusive: bool, auto_delete: bool) -> Option<&'static str> {
        if self == QueueType::Classic {
            return None;
        }
        if auto_delete {
            Some("auto-delete")
        } else if exclusive {
            Some("exclusive-owner")
        } else if !durable {
            Some("non-durable")
        } else {
            None
        }
    }
}

/// What a quorum queue does with a message it dead-letters
/// (`x-dead-letter-strategy`). Both are accepted; dead letters here are
/// appended with the settlement that produces them, so both behave as
/// `at-least-once` does in RabbitMQ once the append is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadLetterStrategy {
    #[default]
    AtMostOnce,
    AtLeastOnce,
}

/// A stream's log retention: whole segments go once the log is larger than
/// `max_bytes` or their newest message is older than `max_age_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamRetention {
    pub max_bytes: Option<u64>,
    pub max_age_ms: Option<i64>,
    pub segment_bytes_max: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueuePolicy {
    pub queue_type: QueueType,
    pub message_ttl_ms: Option<i64>,
    pub retention_ms: Option<i64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    /// How many times a message may be delivered; past it, it is
    /// dead-lettered. Classic queues (and SQS's maxReceiveCount) count
    /// deliveries in `x-delivery-limit`; quorum queues count returns, as
    /// RabbitMQ does ("returned more times than the limit"), so theirs is
    /// `x-delivery-limit + 1` deliveries, 21 by default.
    pub delivery_limit: Option<u32>,
    pub dead_letter_strategy: DeadLetterStrategy,
    /// Streams: how their log is kept (`x-max-length-bytes`, `x-max-age`,
    /// `x-stream-max-segment-size-bytes`); retention drops whole segments.
    pub stream_retention: StreamRetention,
    pub retry: Option<RetryBackoff>,
    pub expires_ms: Option<i64>,
    pub message_groups: bool,
    /// `x-message-delays`: messages may carry a not-before time.
    pub message_delays: bool,
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// `x-consumer-timeout`: overrides the broker's consumer timeout.
    pub consumer_timeout_ms: Option<i64>,
    /// `x-max-priority`; 0 or none is no priorities.
    pub max_priority: Option<u8>,
}

/// Delays before redelivering a requeued message (see [`arguments::RETRY_DELAY`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryBackoff {
    pub delay_ms: i64,
    /// Each further retry waits this many times longer (1 = a fixed delay).
    pub multiplier: f64,
    pub delay_max_ms: i64,
}

impl Eq for RetryBackoff {}

impl RetryBackoff {
    /// Without `x-retry-backoff`, each delay doubles.
    pub const MULTIPLIER_DEFAULT: f64 = 2.0;
    /// Without `x-retry-delay-max-ms`, no retry waits longer than an hour.
    pub const DELAY_MAX_MS_DEFAULT: i64 = 3_600_000;
    /// A multiplier above this is refused (it would only be a typo).
    const MULTIPLIER_MAX: f64 = 1000.0;

    /// How long a message that has been delivered `delivery_count` times
    /// waits before it is delivered again.
    pub fn delay_ms(&self, delivery_count: u32) -> i64 {
        let retries = i32::try_from(delivery_count.saturating_sub(1)).unwrap_or(i32::MAX);
        let delay = self.delay_ms as f64 * self.multiplier.powi(retries);
        if delay.is_finite() && delay < self.delay_max_ms as f64 {
            delay as i64
        } else {
            self.delay_max_ms
        }
    }
}

impl QueuePolicy {
    /// Reads the arguments this module knows; others are kept but ignored,
    /// as RabbitMQ does. A known argument with a bad value is an error.
    pub fn from_arguments(arguments: &BTreeMap<String, String>) -> Result<QueuePolicy, String> {
        let queue_type = match arguments.get(arguments::QUEUE_TYPE).map(String::as_str) {
            None | Some("classic") => QueueType::Classic,
            Some("quorum") => QueueType::Quorum,
            Some("stream") => QueueType::Stream,
            Some(other) => return Err(format!("invalid arg '{}': unknown queue type {other:?}", arguments::QUEUE_TYPE)),
        };
        if queue_type == QueueType::Stream
            && let Some(refused) = STREAM_REFUSED_ARGUMENTS.iter().find(|name| arguments.contains_key(**name))
        {
            return Err(format!("invalid arg '{refused}' of queue type stream"));
        }
        let number = |key: &str| -> Result<Option<i64>, String> {
            arguments
                .get(key)
                .map(|value| {
                    value
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|number| *number >= 0)
                        .ok_or_else(|| format!("invalid arg '{key}': {value:?} is not a non-negative integer"))
                })
                .transpose()
        };
        let overflow = match arguments.get(arguments::OVERFLOW).map(String::as_str) {
            None | Some("drop-head") => Overflow::DropHead,
            Some("reject-publish") => Overflow::RejectPublish,
            Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
            Some(other) => return Err(format!("invalid arg '{}': {other:?}", arguments::OVERFLOW)),
        };
        let retry = match number(arguments::RETRY_DELAY)? {
            None => None,
            Some(delay_ms) => {
                let multiplier = match arguments.get(arguments::RETRY_BACKOFF) {
                    None => RetryBackoff::MULTIPLIER_DEFAULT,
                    Some(value) => value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|multiplier| (1.0..=RetryBackoff::MULTIPLIER_MAX).contains(multiplier))
                        .ok_or_else(|| {
                            format!(
                                "invalid arg '{}': {value:?} is not a number from 1 to {}",
                                arguments::RETRY_BACKOFF,
                                RetryBackoff::MULTIPLIER_MAX
                            )
                        })?,
                };
                let delay_max_ms = number(arguments::RETRY_DELAY_MAX)?.unwrap_or(RetryBackoff::DELAY_MAX_MS_DEFAULT);
                Some(RetryBackoff {
                    delay_ms,
                    multiplier,
                    delay_max_ms,
                })
            }
        };
        let delivery_limit = match queue_type {
            QueueType::Quorum => quorum_delivery_limit(arguments)?,
            _ => number(arguments::DELIVERY_LIMIT)?.map(|limit| limit.clamp(1, i64::from(u32::MAX)) as u32),
        };
        let mut dead_letter_strategy = DeadLetterStrategy::default();
        if queue_type == QueueType::Quorum {
            dead_letter_strategy = match arguments.get(arguments::DEAD_LETTER_STRATEGY).map(String::as_str) {
                None | Some("at-most-once") => DeadLetterStrategy::AtMostOnce,
                Some("at-least-once") => DeadLetterStrategy::AtLeastOnce,
                Some(other) => return Err(format!("invalid arg '{}': {other:?}", arguments::DEAD_LETTER_STRATEGY)),
            };
            if number(arguments::QUORUM_INITIAL_GROUP_SIZE)? == Some(0) {
                return Err(format!(
                    "invalid arg '{}': 0 is not a positive integer",
                    arguments::QUORUM_INITIAL_GROUP_SIZE
                ));
            }
        }
        let mut max_length_bytes = number(arguments::MAX_LENGTH_BYTES)?.map(|bytes| bytes as u64);
        let mut stream_retention = StreamRetention::default();
        if queue_type == QueueType::Stream {
            // A stream's byte limit is its log's retention, not a limit on ready messages.
            stream_retention = StreamRetention {
                max_bytes: max_length_bytes.take(),
                max_age_ms: arguments
                    .get(arguments::MAX_AGE)
                    .map(|age| age_ms(age).ok_or_else(|| format!("invalid arg '{}': {age:?}", arguments::MAX_AGE)))
                    .transpose()?,
                segment_bytes_max: match number(arguments::STREAM_MAX_SEGMENT_SIZE_BYTES)? {
                    Some(0) => {
                        return Err(format!(
                            "invalid arg '{}': 0 is not a positive integer",
                            arguments::STREAM_MAX_SEGMENT_SIZE_BYTES
                        ));
                    }
                    bytes => bytes.map(|bytes| bytes as u64),
                },
            };
        }
        Ok(QueuePolicy {
            queue_type,
            stream_retention,
            dead_letter_strategy,
            message_ttl_ms: number(arguments::MESSAGE_TTL)?,
            retention_ms: match number(arguments::RETENTION)? {
                Some(0) => return Err(format!("invalid arg '{}': 0 is not a positive integer", arguments::RETENTION)),
                retention_ms => retention_ms,
            },
            max_length: number(arguments::MAX_LENGTH)?.map(|length| length as u64),
            max_length_bytes,
            overflow,
            dead_letter_exchange: arguments.get(arguments::DEAD_LETTER_EXCHANGE).cloned(),
            dead_letter_routing_key: arguments.get(arguments::DEAD_LETTER_ROUTING_KEY).cloned(),
            delivery_limit,
            retry,
            expires_ms: match number(arguments::EXPIRES)? {
                Some(0) => return Err(format!("invalid arg '{}': 0 is not a positive integer", arguments::EXPIRES)),
                expires_ms => expires_ms,
            },
            message_groups: flag(arguments, arguments::MESSAGE_GROUPS)?,
            message_delays: flag(arguments, arguments::MESSAGE_DELAYS)?,
            consumer_timeout_ms: match number(arguments::CONSUMER_TIMEOUT)? {
                Some(0) => {
                    return Err(format!(
                        "invalid arg '{}': 0 is not a positive integer",
                        arguments::CONSUMER_TIMEOUT
                    ));
                }
                timeout_ms => timeout_ms,
            },
            single_active_consumer: flag(arguments, arguments::SINGLE_ACTIVE_CONSUMER)?,
            max_priority: max_priority(arguments)?,
        })
    }

    /// How long a message requeued by its consumer after `delivery_count`
    /// deliveries waits before it is available again (0: at once).
    pub fn requeue_delay_ms(&self, delivery_count: u32) -> i64 {
        self.retry.map_or(0, |retry| retry.delay_ms(delivery_count))
    }
}

/// Arguments a stream refuses, as RabbitMQ's stream queues do: each would
/// settle messages in the share cursor (expire, drop, dead-letter them),
/// and a settled prefix of a queue's log is truncated, which a stream's
/// readers must never see. Its retention is by bytes and age instead.
const STREAM_REFUSED_ARGUMENTS: [&str; 11] = [
    arguments::MESSAGE_TTL,
    arguments::MAX_LENGTH,
    arguments::OVERFLOW,
    arguments::DEAD_LETTER_EXCHANGE,
    arguments::DEAD_LETTER_ROUTING_KEY,
    arguments::DELIVERY_LIMIT,
    arguments::EXPIRES,
    arguments::RETRY_DELAY,
    arguments::RETENTION,
    arguments::MESSAGE_GROUPS,
    arguments::MAX_PRIORITY,
];

/// The arguments a declaration of an existing queue of `queue_type` must
/// repeat, in the order RabbitMQ compares them (its queue type's
/// `queue_arguments`, `rabbit_amqqueue:assert_args_equivalence`), then the
/// ones Conveyor's own rules read for that type. Others are not compared, as
/// in RabbitMQ: unknown arguments, `x-message-delays` (set by the SQS door,
/// which an AMQP client does not repeat), a door's own entries (`sqs.…`).
pub fn compared_arguments(queue_type: QueueType) -> Vec<&'static str> {
    let rabbitmq: &[&'static str] = match queue_type {
        QueueType::Classic => &[
            arguments::EXPIRES,
            arguments::MESSAGE_TTL,
            arguments::DEAD_LETTER_EXCHANGE,
            arguments::DEAD_LETTER_ROUTING_KEY,
            arguments::MAX_LENGTH,
            arguments::MAX_LENGTH_BYTES,
            arguments::MAX_PRIORITY,
            arguments::OVERFLOW,
            "x-queue-mode",
            "x-queue-version",
            arguments::SINGLE_ACTIVE_CONSUMER,
            arguments::QUEUE_TYPE,
            "x-queue-master-locator",
            "x-queue-leader-locator",
        ],
        QueueType::Quorum => &[
            arguments::DEAD_LETTER_EXCHANGE,
            arguments::DEAD_LETTER_ROUTING_KEY,
            arguments::DEAD_LETTER_STRATEGY,
            arguments::EXPIRES,
            arguments::MAX_LENGTH,
            arguments::MAX_LENGTH_BYTES,
            "x-max-in-memory-length",
            "x-max-in-memory-bytes",
            arguments::OVERFLOW,
            arguments::SINGLE_ACTIVE_CONSUMER,
            arguments::QUEUE_TYPE,
            arguments::QUORUM_INITIAL_GROUP_SIZE,
            "x-member-placement-tag",
            arguments::DELIVERY_LIMIT,
            arguments::MESSAGE_TTL,
            "x-queue-leader-locator",
            "x-consumer-disconnected-timeout",
            arguments::CONSUMER_TIMEOUT,
            "x-delayed-retry-type",
            "x-delayed-retry-min",
            "x-delayed-retry-max",
        ],
        QueueType::Stream => &[
            arguments::MAX_LENGTH_BYTES,
            arguments::QUEUE_TYPE,
            arguments::MAX_AGE,
            arguments::STREAM_MAX_SEGMENT_SIZE_BYTES,
            "x-stream-filter-size-bytes",
            "x-initial-cluster-size",
            "x-queue-leader-locator",
        ],
    };
    let conveyor: &[&'static str] = match queue_type {
        QueueType::Stream => &[],
        _ => &[
            arguments::DELIVERY_LIMIT,
            arguments::CONSUMER_TIMEOUT,
            arguments::RETRY_DELAY,
            arguments::RETRY_BACKOFF,
            arguments::RETRY_DELAY_MAX,
            arguments::RETENTION,
            arguments::MESSAGE_GROUPS,
        ],
    };
    let mut names = rabbitmq.to_vec();
    names.extend(conveyor.iter().filter(|name| !rabbitmq.contains(name)));
    names
}

/// Whether two values of argument `name` (`None`: not given) are the same
/// to RabbitMQ: equal, or a classic queue's type given and not given.
pub fn equivalent_argument(name: &str, current: Option<&str>, received: Option<&str>) -> bool {
    let classic = |value: Option<&str>| name == arguments::QUEUE_TYPE && value.is_none_or(|value| value == "classic");
    current == received || (classic(current) && classic(received))
}

/// A duration as RabbitMQ writes `x-max-age` and `x-stream-offset`
/// intervals, in milliseconds: a positive number and a unit, `Y` (365
/// days), `M` (30 days), `D`, `h`, `m` or `s`: "7D", "30m".
pub fn age_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let seconds_per_unit: i64 = match unit {
        'Y' => 365 * 86_400,
        'M' => 30 * 86_400,
        'D' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    let count: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|count| *count > 0)?;
    count.checked_mul(seconds_per_unit)?.checked_mul(1000)
}

/// A quorum queue's delivery limit in deliveries: `x-delivery-limit`
/// returns (20 without one, none with -1, as in RabbitMQ 4) plus the first
/// delivery.
fn quorum_delivery_limit(arguments: &BTreeMap<String, String>) -> Result<Option<u32>, String> {
    let returns_max = match arguments.get(arguments::DELIVERY_LIMIT) {
        None => i64::from(QueueType::QUORUM_DELIVERY_LIMIT_DEFAULT),
        Some(value) => match value.trim().parse::<i64>() {
            Ok(-1) => return Ok(None),
            Ok(returns_max) if returns_max >= 0 => returns_max,
            _ => {
                return Err(format!(
                    "invalid arg '{}': {value:?} is not a non-negative integer or -1",
                    arguments::DELIVERY_LIMIT
                ));
            }
        },
    };
    Ok(Some(returns_max.saturating_add(1).clamp(1, i64::from(u32::MAX)) as u32))
}

/// `x-max-priority`, with RabbitMQ's rules and reasons: an integer from 0
/// to 255 (0 makes no priority queue). Priorities order deliveries, as
/// message groups do, and the two do not mix.
/// A `"true"`/`"false"` argument (absent is false).
fn flag(arguments: &BTreeMap<String, String>, name: &str) -> Result<bool, String> {
    match arguments.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("invalid arg '{name}': {other:?}")),
    }
}

fn max_priority(arguments: &BTreeMap<String, String>) -> Result<Option<u8>, String> {
    let Some(value) = arguments.get(arguments::MAX_PRIORITY) else {
        return Ok(None);
    };
    let invalid = |reason: String| format!("invalid arg '{}': {reason}", arguments::MAX_PRIORITY);
    let number = value
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid(format!("{{unacceptable_type,{value:?}}}")))?;
    let max_priority = match number {
        ..0 => return Err(invalid(format!("{{value_negative,{number}}}"))),
        0..=255 => number as u8,
        _ => return Err(invalid(format!("{{max_value_exceeded,{number}}}"))),
    };
    if max_priority > 0 && arguments.get(arguments::MESSAGE_GROUPS).is_some_and(|groups| groups == "true") {
        return Err(invalid(format!("not with '{}'", arguments::MESSAGE_GROUPS)));
    }
    Ok(Some(max_priority))
}

/// Queue arguments that must be integers, as RabbitMQ checks their type
/// (`check_int_arg`; their values are [`QueuePolicy::from_arguments`]'s to
/// check; as text they lose their type).
const INTEGER_ARGUMENTS: [&str; 8] = [
    arguments::EXPIRES,
    arguments::MESSAGE_TTL,
    arguments::MAX_LENGTH,
    arguments::MAX_LENGTH_BYTES,
    arguments::MAX_PRIORITY,
    arguments::CONSUMER_TIMEOUT,
    arguments::QUORUM_INITIAL_GROUP_SIZE,
    arguments::STREAM_MAX_SEGMENT_SIZE_BYTES,
];

/// Queue arguments that must be strings (RabbitMQ's `check_dlxname_arg`,
/// `check_dlxrk_arg`): a dead-letter exchange given as a number is refused,
/// not read as the exchange of that name.
const STRING_ARGUMENTS: [&str; 2] = [arguments::DEAD_LETTER_EXCHANGE, arguments::DEAD_LETTER_ROUTING_KEY];

/// A declaration's typed arguments as the text its definition keeps (so a
/// redeclaration compares them), or RabbitMQ's refusal of an argument of
/// the wrong type (`queue` and `vhost` as the client names them): "invalid
/// arg 'x-max-length' for queue 'q' in vhost '/': "expected integer, got
/// longstr"" (RabbitMQ 3.10 on), "invalid arg 'x-dead-letter-exchange' for
/// queue 'q' in vhost '/': {unacceptable_type,signedint}".
pub fn arguments_from_table(table: &FieldTable, queue: &str, vhost: &str) -> Result<BTreeMap<String, String>, String> {
    for name in INTEGER_ARGUMENTS.iter().chain(&STRING_ARGUMENTS) {
        let Some(value) = table.get(*name) else { continue };
        let refusal = if INTEGER_ARGUMENTS.contains(name) {
            (!value.is_integer()).then(|| format!("\"expected integer, got {}\"", value.type_name()))
        } else {
            (!matches!(value, HeaderValue::String(_))).then(|| format!("{{unacceptable_type,{}}}", value.type_name()))
        };
        if let Some(refusal) = refusal {
            return Err(format!("invalid arg '{name}' for queue '{queue}' in vhost '{vhost}': {refusal}"));
        }
    }
    Ok(argument_texts(table))
}

/// A declaration's typed arguments as text, unchecked: what a declaration
/// of an existing queue is compared with it by, before (and without) the
/// checks of [`arguments_from_table`], as RabbitMQ compares first.
pub fn argument_texts(table: &FieldTable) -> BTreeMap<String, String> {
    table.iter().map(|(key, value)| (key.clone(), argument_text(value))).collect()
}

/// An argument's value as text: strings as they are, numbers and booleans
/// as written, anything else in a debugging form that no policy reads.
fn argument_text(value: &HeaderValue) -> String {
    match value {
        HeaderValue::String(text) => text.clone(),
        HeaderValue::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        HeaderValue::Bool(value) => value.to_string(),
        HeaderValue::I8(value) => value.to_string(),
        HeaderValue::U8(value) => value.to_string(),
        HeaderValue::I16(value) => value.to_string(),
        HeaderValue::U16(value) => value.to_string(),
        HeaderValue::I32(value) => value.to_string(),
        HeaderValue::U32(value) => value.to_string(),
        HeaderValue::I64(value) => value.to_string(),
        HeaderValue::F32(value) => value.to_string(),
        HeaderValue::F64(value) => value.to_string(),
        HeaderValue::Timestamp(value) => value.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_exchange_or_routing_key_that_is_no_string_is_refused_as_rabbitmq_does() {
        for name in ["x-dead-letter-exchange", "x-dead-letter-routing-key"] {
            let table: FieldTable = [(name.to_owned(), HeaderValue::I32(7))].into_iter().collect();
            assert_eq!(
                arguments_from_table(&table, "q", "/"),
                Err(format!(
                    "invalid arg '{name}' for queue 'q' in vhost '/': {{unacceptable_type,signedint}}"
                ))
            );
            let table: FieldTable = [(name.to_owned(), HeaderValue::String("dlx".into()))].into_iter().collect();
            assert!(arguments_from_table(&table, "q", "/").is_ok());
        }
    }

    #[test]
    fn typed_arguments_become_text_and_a_non_integer_priority_is_refused_as_rabbitmq_does() {
        let table: FieldTable = [
            ("x-message-ttl", HeaderValue::I64(5000)),
            ("x-dead-letter-exchange", HeaderValue::String("dlx".into())),
            ("x-retry-backoff", HeaderValue::F64(2.5)),
            ("x-single-active-consumer", HeaderValue::Bool(true)),
            ("x-max-priority", HeaderValue::U8(9)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let text = arguments_from_table(&table, "jobs", "/").expect("valid");
        assert_eq!(text["x-message-ttl"], "5000");
        assert_eq!(text["x-dead-letter-exchange"], "dlx");
        assert_eq!(text["x-retry-backoff"], "2.5");
        assert_eq!(text["x-single-active-consumer"], "true");
        assert_eq!(text["x-max-priority"], "9");
        assert!(QueuePolicy::from_arguments(&text).expect("valid").single_active_consumer);
        let text_priority: FieldTable = [("x-max-priority".to_owned(), HeaderValue::String("9".into()))]
            .into_iter()
            .collect();
        assert_eq!(
            arguments_from_table(&text_priority, "jobs", "staging").expect_err("a string priority"),
            "invalid arg 'x-max-priority' for queue 'jobs' in vhost 'staging': \"expected integer, got longstr\""
        );
    }

    #[test]
    fn arguments_become_a_policy_and_bad_values_are_refused() {
        let arguments: BTreeMap<String, String> = [
            ("x-message-ttl", "5000"),
            ("x-max-length", "10"),
            ("x-max-length-bytes", "4096"),
            ("x-overflow", "reject-publish"),
            ("x-dead-letter-exchange", "dlx"),
            ("x-delivery-limit", "3"),
            ("x-queue-type", "classic"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let policy = QueuePolicy::from_arguments(&arguments).expect("valid");
        assert_eq!(policy.message_ttl_ms, Some(5000));
        assert_eq!(policy.max_length, Some(10));
        assert_eq!(policy.max_length_bytes, Some(4096));
        assert_eq!(policy.overflow, Overflow::RejectPublish);
        assert_eq!(policy.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(policy.delivery_limit, Some(3));
        let bad: BTreeMap<String, String> = [("x-message-ttl".to_owned(), "-1".to_owned())].into_iter().collect();
        assert!(QueuePolicy::from_arguments(&bad).is_err());
        let bad: BTreeMap<String, String> = [("x-overflow".to_owned(), "explode".to_owned())].into_iter().collect();
        assert!(QueuePolicy::from_arguments(&bad).is_err());
        let bad: BTreeMap<String, String> = [("x-expires".to_owned(), "0".to_owned())].into_iter().collect();
        assert!(QueuePolicy::from_arguments(&bad).is_err(), "RabbitMQ refuses x-expires 0");
        assert_eq!(
            policy.requeue_delay_ms(3),
            0,
            "no retry policy: requeued messages come back at once"
        );
    }

    #[test]
    fn max_priority_takes_0_to_255_with_rabbitmqs_reasons_and_not_with_message_groups() {
        let policy = |pairs: &[(&str, &str)]| {
            let arguments: BTreeMap<String, String> = pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
            QueuePolicy::from_arguments(&arguments)
        };
        assert_eq!(policy(&[]).expect("valid").max_priority, None);
        assert_eq!(policy(&[("x-max-priority", "10")]).expect("valid").max_priority, Some(10));
        assert_eq!(policy(&[("x-max-priority", "255")]).expect("valid").max_priority, Some(255));
        assert_eq!(
            policy(&[("x-max-priority", "0")]).expect("valid").max_priority,
            Some(0),
            "RabbitMQ takes 0 (a queue of one priority)"
        );
        assert_eq!(
            policy(&[("x-max-priority", "256")]),
            Err("invalid arg 'x-max-priority': {max_value_exceeded,256}".to_owned())
        );
        assert_eq!(
            policy(&[("x-max-priority", "-1")]),
            Err("invalid arg 'x-max-priority': {value_negative,-1}".to_owned())
        );
        assert!(policy(&[("x-max-priority", "ten")]).is_err());
        assert!(policy(&[("x-max-priority", "5"), ("x-message-groups", "true")]).is_err());
        assert!(policy(&[("x-max-priority", "0"), ("x-message-groups", "true")]).is_ok());
    }

    #[test]
    fn quorum_queues_count_returns_against_a_default_limit_of_20_and_refuse_what_rabbitmq_refuses() {
        let policy = |pairs: &[(&str, &str)]| {
            let arguments: BTreeMap<String, String> = pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
            QueuePolicy::from_arguments(&arguments)
        };
        let quorum = policy(&[("x-queue-type", "quorum")]).expect("valid");
        assert_eq!(quorum.queue_type, QueueType::Quorum);
        assert_eq!(quorum.delivery_limit, Some(21), "20 returns: 21 deliveries");
        assert_eq!(
            policy(&[("x-queue-type", "quorum"), ("x-delivery-limit", "3")])
                .expect("valid")
                .delivery_limit,
            Some(4)
        );
        assert_eq!(
            policy(&[("x-queue-type", "quorum"), ("x-delivery-limit", "-1")])
                .expect("valid")
                .delivery_limit,
            None,
            "-1: no limit"
        );
        assert_eq!(
            policy(&[("x-delivery-limit", "3")]).expect("valid").delivery_limit,
            Some(3),
            "classic queues count deliveries"
        );
        assert_eq!(policy(&[]).expect("valid").delivery_limit, None, "classic queues have no default");
        assert_eq!(
            policy(&[("x-queue-type", "quorum"), ("x-dead-letter-strategy", "at-least-once")])
                .expect("valid")
                .dead_letter_strategy,
            DeadLetterStrategy::AtLeastOnce
        );
        assert!(policy(&[("x-queue-type", "quorum"), ("x-dead-letter-strategy", "twice")]).is_err());
        assert!(policy(&[("x-queue-type", "quorum"), ("x-quorum-initial-group-size", "3")]).is_ok());
        assert!(policy(&[("x-queue-type", "quorum"), ("x-quorum-initial-group-size", "0")]).is_err());
        assert!(policy(&[("x-queue-type", "bogus")]).is_err());
        assert_eq!(QueueType::Quorum.refused_property(false, false, false), Some("non-durable"));
        assert_eq!(QueueType::Quorum.refused_property(true, true, false), Some("exclusive-owner"));
        assert_eq!(QueueType::Quorum.refused_property(false, true, true), Some("auto-delete"));
        assert_eq!(QueueType::Stream.refused_property(false, false, false), Some("non-durable"));
        assert_eq!(QueueType::Quorum.refused_property(true, false, false), None);
        assert_eq!(QueueType::Classic.refused_property(false, true, true), None);
    }

    #[test]
    fn streams_keep_their_log_by_bytes_age_and_segment_size_instead_of_limiting_ready_messages() {
        let arguments: BTreeMap<String, String> = [
            ("x-queue-type", "stream"),
            ("x-max-length-bytes", "20000000000"),
            ("x-max-age", "7D"),
            ("x-stream-max-segment-size-bytes", "100000000"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let policy = QueuePolicy::from_arguments(&arguments).expect("valid");
        assert_eq!(policy.max_length_bytes, None);
        assert_eq!(
            policy.stream_retention,
            StreamRetention {
                max_bytes: Some(20_000_000_000),
                max_age_ms: Some(7 * 86_400_000),
                segment_bytes_max: Some(100_000_000),
            }
        );
        assert_eq!(age_ms("30m"), Some(1_800_000));
        assert_eq!(age_ms("1h"), Some(3_600_000));
        assert_eq!(age_ms("1Y"), Some(365 * 86_400_000));
        assert_eq!(age_ms("10s"), Some(10_000));
        assert_eq!(age_ms("0s"), None);
        assert_eq!(age_ms("7"), None);
        assert_eq!(age_ms("7w"), None);
        assert_eq!(age_ms(""), None);
        let bad: BTreeMap<String, String> = [("x-queue-type", "stream"), ("x-max-age", "soon")]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        assert!(QueuePolicy::from_arguments(&bad).is_err());
        for refused in ["x-message-ttl", "x-max-length", "x-dead-letter-exchange", "x-expires", "x-overflow"] {
            let arguments: BTreeMap<String, String> = [("x-queue-type", "stream"), (refused, "1")]
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            assert_eq!(
                QueuePolicy::from_arguments(&arguments),
                Err(format!("invalid arg '{refused}' of queue type stream")),
                "a stream must not settle messages"
            );
        }
    }

    #[test]
    fn retry_delays_grow_by_the_backoff_up_to_the_maximum() {
        let policy = |pairs: &[(&str, &str)]| {
            let arguments: BTreeMap<String, String> = pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
            QueuePolicy::from_arguments(&arguments)
        };
        let doubling = policy(&[("x-retry-delay-ms", "100"), ("x-retry-delay-max-ms", "1000")]).expect("valid");
        let delays: Vec<i64> = (1..=6).map(|count| doubling.requeue_delay_ms(count)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(doubling.requeue_delay_ms(u32::MAX), 1000, "no overflow on huge counts");
        let fixed = policy(&[("x-retry-delay-ms", "250"), ("x-retry-backoff", "1")]).expect("valid");
        assert_eq!(fixed.requeue_delay_ms(1), 250);
        assert_eq!(fixed.requeue_delay_ms(40), 250);
        let tripling = policy(&[("x-retry-delay-ms", "10"), ("x-retry-backoff", "3")]).expect("valid");
        assert_eq!(tripling.requeue_delay_ms(3), 90);
        assert!(policy(&[("x-retry-delay-ms", "10"), ("x-retry-backoff", "0.5")]).is_err());
        assert!(policy(&[("x-retry-delay-ms", "10"), ("x-retry-backoff", "NaN")]).is_err());
        assert!(policy(&[("x-retry-delay-ms", "soon")]).is_err());
    }
}
