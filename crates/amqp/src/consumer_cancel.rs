//! The broker-initiated `basic.cancel` (RabbitMQ's `consumer_cancel_notify`
//! capability): a consumer whose queue is deleted — by any door, the admin
//! API, its vhost's deletion or `x-expires` — is told so, and its client
//! stops waiting. Knows the frame and when it is due; the queue's deletion
//! itself is the core's.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic};
use conveyor_core::queue::DeclaredQueue;

use crate::reply::short;

/// The `basic.cancel` a consumer of a deleted queue gets. `nowait` is set,
/// as RabbitMQ sends it: the client answers nothing.
pub fn notification(channel_id: u16, consumer_tag: &str) -> AMQPFrame {
    AMQPFrame::Method(
        channel_id,
        AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: short(consumer_tag.to_owned()),
            nowait: true,
        })),
    )
}

/// Whether a consumer of `queue` is gone with it: the channel forgets such
/// consumers (their tags may be used again) and drops settlements of their
/// deliveries, as RabbitMQ does for a deleted queue.
pub fn gone_with_queue(queue: &DeclaredQueue) -> bool {
    queue.is_deleted()
}
