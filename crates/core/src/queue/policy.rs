//! What a queue does beyond delivering: message TTL, length limits and
//! their overflow behaviour, dead-lettering and the delivery limit. Declared
//! with RabbitMQ's argument names (`x-message-ttl`, …), which are the
//! canonical ones here; the SQS front door maps its attributes onto them.

use std::collections::BTreeMap;

/// Queue argument names.
pub mod arguments {
    pub const MESSAGE_TTL: &str = "x-message-ttl";
    pub const MAX_LENGTH: &str = "x-max-length";
    pub const OVERFLOW: &str = "x-overflow";
    pub const DEAD_LETTER_EXCHANGE: &str = "x-dead-letter-exchange";
    pub const DEAD_LETTER_ROUTING_KEY: &str = "x-dead-letter-routing-key";
    pub const DELIVERY_LIMIT: &str = "x-delivery-limit";
    /// `"true"`: messages with the same key (group) are delivered in order,
    /// one acquisition at a time (SQS FIFO queues; see `share_cursor.rs`).
    pub const MESSAGE_GROUPS: &str = "x-message-groups";
}

/// Record headers the core reads and writes (front doors map them to their
/// protocol: AMQP's `expiration` property and `x-death` header).
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
    /// The routing key it had before dead-lettering.
    pub const DEATH_ROUTING_KEY: &str = "conveyor.death-routing-key";
}

/// What happens to a publish into a full queue (`x-overflow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overflow {
    /// The oldest available message is dropped (dead-lettered).
    #[default]
    DropHead,
    /// The new message is refused (a publisher confirm nack).
    RejectPublish,
    /// The new message is refused and dead-lettered.
    RejectPublishDlx,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePolicy {
    pub message_ttl_ms: Option<i64>,
    pub max_length: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    pub delivery_limit: Option<u32>,
    pub message_groups: bool,
}

impl QueuePolicy {
    /// Reads the arguments this module knows; others are kept but ignored,
    /// as RabbitMQ does. A known argument with a bad value is an error.
    pub fn from_arguments(arguments: &BTreeMap<String, String>) -> Result<QueuePolicy, String> {
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
        Ok(QueuePolicy {
            message_ttl_ms: number(arguments::MESSAGE_TTL)?,
            max_length: number(arguments::MAX_LENGTH)?.map(|length| length as u64),
            overflow,
            dead_letter_exchange: arguments.get(arguments::DEAD_LETTER_EXCHANGE).cloned(),
            dead_letter_routing_key: arguments.get(arguments::DEAD_LETTER_ROUTING_KEY).cloned(),
            delivery_limit: number(arguments::DELIVERY_LIMIT)?.map(|limit| limit.clamp(1, i64::from(u32::MAX)) as u32),
            message_groups: match arguments.get(arguments::MESSAGE_GROUPS).map(String::as_str) {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => return Err(format!("invalid arg '{}': {other:?}", arguments::MESSAGE_GROUPS)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_a_policy_and_bad_values_are_refused() {
        let arguments: BTreeMap<String, String> = [
            ("x-message-ttl", "5000"),
            ("x-max-length", "10"),
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
        assert_eq!(policy.overflow, Overflow::RejectPublish);
        assert_eq!(policy.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(policy.delivery_limit, Some(3));
        let bad: BTreeMap<String, String> = [("x-message-ttl".to_owned(), "-1".to_owned())].into_iter().collect();
        assert!(QueuePolicy::from_arguments(&bad).is_err());
        let bad: BTreeMap<String, String> = [("x-overflow".to_owned(), "explode".to_owned())].into_iter().collect();
        assert!(QueuePolicy::from_arguments(&bad).is_err());
    }
}
