//! A redeclaration compared with the queue as RabbitMQ compares it
//! (`rabbit_amqqueue:assert_equivalence`): the arguments its queue type
//! compares, in its order, and what counts as the same value.

use std::collections::BTreeMap;

use conveyor_core::broker::ArgumentDifference;
use conveyor_core::catalog::QueueDefinition;
use conveyor_core::queue::QueueType;

use crate::arguments;

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

/// The first argument [`compared_arguments`] names for `current`'s type
/// in which `received` (a declaration's arguments as text) is not
/// [`equivalent_argument`] to it: the AMQP door's and the admin API's
/// comparison of a redeclaration (`conveyor_core::broker::Redeclaration`).
pub fn differing_argument(received: &BTreeMap<String, String>, current: &QueueDefinition) -> Option<ArgumentDifference> {
    compared_arguments(current.policy.queue_type).into_iter().find_map(|name| {
        let (received, current) = (received.get(name), current.arguments.get(name));
        (!equivalent_argument(name, current.map(String::as_str), received.map(String::as_str))).then(|| ArgumentDifference {
            name: name.to_owned(),
            received: received.cloned(),
            current: current.cloned(),
        })
    })
}
