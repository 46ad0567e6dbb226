//! `x-…` arguments as the core's typed [`QueuePolicy`], with RabbitMQ's
//! rules and refusals; and back, for what a stream shows of its retention.

use std::collections::BTreeMap;

use conveyor_core::queue::policy::RetryBackoff;
use conveyor_core::queue::{DeadLetterStrategy, Overflow, QueuePolicy, QueueType, StreamRetention};

use crate::arguments;

/// Reads the arguments this crate knows; others are kept but ignored,
/// as RabbitMQ does. A known argument with a bad value is an error.
pub fn policy(arguments: &BTreeMap<String, String>) -> Result<QueuePolicy, String> {
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

/// A `"true"`/`"false"` argument (absent is false).
fn flag(arguments: &BTreeMap<String, String>, name: &str) -> Result<bool, String> {
    match arguments.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("invalid arg '{name}': {other:?}")),
    }
}

/// `x-max-priority`, with RabbitMQ's rules and reasons: an integer from 0
/// to 255 (0 makes no priority queue). Priorities order deliveries, as
/// message groups do, and the two do not mix.
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

/// `arguments` showing a stream's retention changed from `before` to
/// `after` (by a Kafka config change): each limit that changed is written
/// as RabbitMQ writes it (`x-max-age` in whole seconds,
/// `x-max-length-bytes`, `x-stream-max-segment-size-bytes`) or removed;
/// the others keep the text they were declared with ("7D").
pub fn stream_retention_shown(
    arguments: &BTreeMap<String, String>,
    before: &StreamRetention,
    after: &StreamRetention,
) -> BTreeMap<String, String> {
    let mut shown = arguments.clone();
    let mut show = |name: &str, before: Option<String>, after: Option<String>| {
        if before != after {
            match after {
                Some(text) => shown.insert(name.to_owned(), text),
                None => shown.remove(name),
            };
        }
    };
    let seconds = |age_ms: Option<i64>| age_ms.map(|ms| format!("{}s", ms / 1000));
    show(arguments::MAX_AGE, seconds(before.max_age_ms), seconds(after.max_age_ms));
    show(
        arguments::MAX_LENGTH_BYTES,
        before.max_bytes.map(|bytes| bytes.to_string()),
        after.max_bytes.map(|bytes| bytes.to_string()),
    );
    show(
        arguments::STREAM_MAX_SEGMENT_SIZE_BYTES,
        before.segment_bytes_max.map(|bytes| bytes.to_string()),
        after.segment_bytes_max.map(|bytes| bytes.to_string()),
    );
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let policy = super::policy(&arguments).expect("valid");
        assert_eq!(policy.message_ttl_ms, Some(5000));
        assert_eq!(policy.max_length, Some(10));
        assert_eq!(policy.max_length_bytes, Some(4096));
        assert_eq!(policy.overflow, Overflow::RejectPublish);
        assert_eq!(policy.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(policy.delivery_limit, Some(3));
        let bad: BTreeMap<String, String> = [("x-message-ttl".to_owned(), "-1".to_owned())].into_iter().collect();
        assert!(super::policy(&bad).is_err());
        let bad: BTreeMap<String, String> = [("x-overflow".to_owned(), "explode".to_owned())].into_iter().collect();
        assert!(super::policy(&bad).is_err());
        let bad: BTreeMap<String, String> = [("x-expires".to_owned(), "0".to_owned())].into_iter().collect();
        assert!(super::policy(&bad).is_err(), "RabbitMQ refuses x-expires 0");
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
            super::policy(&arguments)
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
            super::policy(&arguments)
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
        let policy = super::policy(&arguments).expect("valid");
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
        assert!(super::policy(&bad).is_err());
        for refused in ["x-message-ttl", "x-max-length", "x-dead-letter-exchange", "x-expires", "x-overflow"] {
            let arguments: BTreeMap<String, String> = [("x-queue-type", "stream"), (refused, "1")]
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            assert_eq!(
                super::policy(&arguments),
                Err(format!("invalid arg '{refused}' of queue type stream")),
                "a stream must not settle messages"
            );
        }
    }

    #[test]
    fn retry_delays_grow_by_the_backoff_up_to_the_maximum() {
        let policy = |pairs: &[(&str, &str)]| {
            let arguments: BTreeMap<String, String> = pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
            super::policy(&arguments)
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
