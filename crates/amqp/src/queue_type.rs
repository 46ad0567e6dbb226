//! What RabbitMQ's queue types (`x-queue-type`) mean at the AMQP door: the
//! declarations quorum queues and streams refuse, in RabbitMQ's words, and
//! the headers their deliveries carry that the publisher did not set
//! (`x-delivery-count`). The rules themselves are the core's
//! (`QueueType`); this file only says them in AMQP.

use std::collections::BTreeMap;

use amq_protocol::types::AMQPValue;
use conveyor_core::queue::{Delivery, QueuePolicy, QueueType};
use conveyor_rabbit_args::policy;

use crate::message::Message;
use crate::reply::{self, Exception};

/// Quorum queues: redeliveries carry how many times the message was
/// returned before (RabbitMQ leaves it off the first delivery).
pub const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// Refuses a declaration of a quorum queue or stream that is not durable,
/// or is exclusive or auto-delete, with RabbitMQ's 406 and text:
/// "invalid property 'non-durable' for queue 'q' in vhost '/'". Arguments
/// that do not parse are left for the core to refuse with its reason.
pub fn check_declaration(
    arguments: &BTreeMap<String, String>,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    queue: &str,
    vhost: &str,
) -> Result<(), Exception> {
    let Ok(policy) = policy(arguments) else {
        return Ok(());
    };
    match policy.queue_type.refused_property(durable, exclusive, auto_delete) {
        Some(property) => Err(Exception::new(
            reply::PRECONDITION_FAILED,
            format!("invalid property '{property}' for queue '{queue}' in vhost '{vhost}'"),
        )),
        None => Ok(()),
    }
}

/// The message a delivery from a queue of this policy's type is sent as.
pub fn delivered(policy: &QueuePolicy, delivery: Delivery) -> Message {
    let returns = delivery.delivery_count.saturating_sub(1);
    let mut message = Message::from_record(delivery.record);
    if policy.queue_type == QueueType::Quorum && returns > 0 {
        let mut headers = message.properties.headers().clone().unwrap_or_default();
        headers.insert(DELIVERY_COUNT_HEADER.into(), AMQPValue::LongLongInt(i64::from(returns)));
        message.properties = message.properties.with_headers(headers);
    }
    message
}

/// A message's headers (none: an empty table).
#[cfg(test)]
fn headers_of(message: &Message) -> amq_protocol::types::FieldTable {
    message.properties.headers().clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(delivery_count: u32) -> Delivery {
        Delivery {
            offset: 7,
            delivery_count,
            first_delivered_ms: 0,
            record: Message {
                exchange: String::new(),
                routing_key: "q".into(),
                properties: Default::default(),
                body: b"poison".to_vec(),
            }
            .into_record(),
        }
    }

    fn policy(queue_type: &str) -> QueuePolicy {
        let arguments: BTreeMap<String, String> = [("x-queue-type".to_owned(), queue_type.to_owned())].into_iter().collect();
        conveyor_rabbit_args::policy(&arguments).expect("valid")
    }

    #[test]
    fn quorum_redeliveries_carry_the_returns_so_far_and_first_deliveries_and_classic_queues_none() {
        let quorum = policy("quorum");
        assert_eq!(
            headers_of(&delivered(&quorum, delivery(1))).inner().get(DELIVERY_COUNT_HEADER),
            None
        );
        assert_eq!(
            headers_of(&delivered(&quorum, delivery(3))).inner().get(DELIVERY_COUNT_HEADER),
            Some(&AMQPValue::LongLongInt(2))
        );
        assert_eq!(
            headers_of(&delivered(&policy("classic"), delivery(3)))
                .inner()
                .get(DELIVERY_COUNT_HEADER),
            None
        );
    }

    #[test]
    fn durable_only_types_are_refused_with_rabbitmqs_text() {
        let arguments: BTreeMap<String, String> = [("x-queue-type".to_owned(), "quorum".to_owned())].into_iter().collect();
        let refused = check_declaration(&arguments, false, false, false, "orders", "/").expect_err("non-durable");
        assert_eq!(refused.code, reply::PRECONDITION_FAILED);
        assert_eq!(refused.text, "invalid property 'non-durable' for queue 'orders' in vhost '/'");
        assert!(check_declaration(&arguments, true, false, false, "orders", "/").is_ok());
        assert!(check_declaration(&BTreeMap::new(), false, true, true, "orders", "/").is_ok());
    }
}
