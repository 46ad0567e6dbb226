//! The names of the client methods that get a reply, as RabbitMQ spells them
//! (`queue.declare`), for request-latency metrics. Asynchronous methods
//! (`basic.publish`, acks) have no reply to time here; a publish is timed to
//! its storage by the channel's store task instead.

use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, exchange, queue, tx};

/// The name of `method` if it is a synchronous request a client sends on a
/// channel; `None` for asynchronous methods and anything a client does not send.
pub fn synchronous_name(method: &AMQPClass) -> Option<&'static str> {
    Some(match method {
        AMQPClass::Channel(channel::AMQPMethod::Flow(_)) => "channel.flow",
        AMQPClass::Exchange(exchange::AMQPMethod::Declare(_)) => "exchange.declare",
        AMQPClass::Exchange(exchange::AMQPMethod::Delete(_)) => "exchange.delete",
        AMQPClass::Exchange(exchange::AMQPMethod::Bind(_)) => "exchange.bind",
        AMQPClass::Exchange(exchange::AMQPMethod::Unbind(_)) => "exchange.unbind",
        AMQPClass::Queue(queue::AMQPMethod::Declare(_)) => "queue.declare",
        AMQPClass::Queue(queue::AMQPMethod::Bind(_)) => "queue.bind",
        AMQPClass::Queue(queue::AMQPMethod::Purge(_)) => "queue.purge",
        AMQPClass::Queue(queue::AMQPMethod::Delete(_)) => "queue.delete",
        AMQPClass::Queue(queue::AMQPMethod::Unbind(_)) => "queue.unbind",
        AMQPClass::Basic(basic::AMQPMethod::Qos(_)) => "basic.qos",
        AMQPClass::Basic(basic::AMQPMethod::Consume(_)) => "basic.consume",
        AMQPClass::Basic(basic::AMQPMethod::Cancel(_)) => "basic.cancel",
        AMQPClass::Basic(basic::AMQPMethod::Get(_)) => "basic.get",
        AMQPClass::Basic(basic::AMQPMethod::Recover(_)) => "basic.recover",
        AMQPClass::Tx(tx::AMQPMethod::Select(_)) => "tx.select",
        AMQPClass::Tx(tx::AMQPMethod::Commit(_)) => "tx.commit",
        AMQPClass::Tx(tx::AMQPMethod::Rollback(_)) => "tx.rollback",
        AMQPClass::Confirm(confirm::AMQPMethod::Select(_)) => "confirm.select",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_methods_are_named_and_asynchronous_ones_are_not() {
        let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare::default()));
        assert_eq!(synchronous_name(&declare), Some("queue.declare"));
        let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish::default()));
        assert_eq!(synchronous_name(&publish), None);
    }
}
