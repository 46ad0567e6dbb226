//! What a queue does beyond delivering: message TTL and retention, length
//! limits and their overflow behaviour, dead-lettering and the delivery
//! limit, as one typed [`QueuePolicy`]: the core's language. The doors
//! fill it from their own words — RabbitMQ's `x-…` arguments in the AMQP
//! door and the admin API (`conveyor-rabbit-args`), SQS attributes in the
//! SQS door; field comments name the argument each one stands for. The
//! core never reads argument text.

use serde::{Deserialize, Serialize};

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

/// Delays before redelivering a requeued message (`x-retry-delay-ms`, `x-retry-backoff`, `x-retry-delay-max-ms`).
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
    pub const MULTIPLIER_MAX: f64 = 1000.0;

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
    /// How long a message requeued by its consumer after `delivery_count`
    /// deliveries waits before it is available again (0: at once).
    pub fn requeue_delay_ms(&self, delivery_count: u32) -> i64 {
        self.retry.map_or(0, |retry| retry.delay_ms(delivery_count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_delays_grow_by_the_multiplier_up_to_the_maximum_and_none_without_a_retry_policy() {
        let doubling = QueuePolicy {
            retry: Some(RetryBackoff {
                delay_ms: 100,
                multiplier: RetryBackoff::MULTIPLIER_DEFAULT,
                delay_max_ms: 1000,
            }),
            ..QueuePolicy::default()
        };
        let delays: Vec<i64> = (1..=6).map(|count| doubling.requeue_delay_ms(count)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(doubling.requeue_delay_ms(u32::MAX), 1000, "no overflow on huge counts");
        assert_eq!(QueuePolicy::default().requeue_delay_ms(3), 0, "requeued messages come back at once");
    }
}
