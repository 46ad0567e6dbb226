//! RabbitMQ's queue arguments (`x-message-ttl`, `x-max-length`, …): the
//! vocabulary of the doors that speak RabbitMQ's words — the AMQP door, the
//! admin API and its definitions import and export. A declaration's typed
//! arguments become the text a definition keeps ([`arguments_from_table`]),
//! that text becomes the core's typed [`QueuePolicy`](conveyor_core::queue::QueuePolicy) ([`policy`]), and a
//! redeclaration is compared with the queue as RabbitMQ compares it
//! ([`differing_argument`]). The core knows the typed policy only; it never
//! reads `x-…` text. Knows nothing about frames, HTTP or the broker's state.

mod equivalence;
mod policy;
mod table;

use std::collections::BTreeMap;

use conveyor_core::catalog::{ArgumentVocabulary, QueueDefinition};
use conveyor_core::{CoreError, Result};

pub use equivalence::{compared_arguments, differing_argument, equivalent_argument};
pub use policy::{age_ms, policy, stream_retention_shown};
pub use table::{argument_texts, arguments_from_table};

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
    /// (header `conveyor.not-before-ms`) and are not delivered
    /// before it (SQS queues; see `share_cursor.rs`).
    pub const MESSAGE_DELAYS: &str = "x-message-delays";
    /// `classic` (the default), `quorum` or `stream` (`QueueType`).
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

/// What the core asks of this vocabulary without knowing it (the binary
/// gives it in `BrokerConfig`): the policy of a queue a catalog recorded
/// before definitions kept a typed policy, and the arguments a stream shows
/// once a Kafka config change set its retention.
pub const VOCABULARY: ArgumentVocabulary = ArgumentVocabulary {
    policy,
    stream_retention_shown,
};

/// A definition declared with RabbitMQ's `x-…` arguments (the AMQP door,
/// the admin API): its policy is what they ask for, or why they are
/// refused for queue `name`.
pub fn definition(name: &str, durable: bool, auto_delete: bool, arguments: BTreeMap<String, String>) -> Result<QueueDefinition> {
    let policy = policy(&arguments).map_err(|reason| CoreError::InvalidQueueArgument {
        name: name.to_owned(),
        reason,
    })?;
    Ok(QueueDefinition {
        durable,
        auto_delete,
        arguments,
        policy,
    })
}
