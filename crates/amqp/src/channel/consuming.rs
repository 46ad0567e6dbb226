//! A channel's consumers being set up: `basic.consume` (classic and quorum
//! queues, streams, Direct Reply-to, with `x-priority` and the single active
//! consumer) and `basic.get`. Delivering is `delivery.rs`'s and
//! `stream_consumer.rs`'s; acks are the channel's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::{AMQPValue, FieldTable, LongUInt};
use conveyor_core::auth::Operation;
use conveyor_core::limits::Limit;
use conveyor_core::queue::{QueueType, Visibility};
use tracing::warn;

use super::delivery::{Delivering, deliver};
use super::{Channel, Consumer, DELIVERY_LOCK_MS, Unacked, check_access, content_frames};
use crate::Context;
use crate::prefetch::Window;
use crate::queue_type;
use crate::reply::{self, Exception, short};
use crate::reply_to;
use crate::stream_consumer::{self, Reader};

impl Channel {
    pub(super) async fn consume(&mut self, context: &Context, connection_id: u64, consume: basic::Consume) -> Result<(), Exception> {
        let name = consume.queue.to_string();
        if name == reply_to::PSEUDO_QUEUE {
            return self.consume_replies(consume).await;
        }
        let resource = self.resource(&name)?;
        let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
        check_access(context, connection_id, &self.vhost, &resource)?;
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Read)?;
        let tag = self.consumer_tag(&consume)?;
        let consumers_max = context.broker.limits().config().amqp_consumers_per_channel_max;
        if self.consumers.len() >= consumers_max as usize {
            // RabbitMQ's answer past `consumer_max_per_channel`.
            context
                .broker
                .limits()
                .reach(Limit::AmqpConsumersPerChannel, format!("basic.consume on channel {}", self.id()));
            return Err(Exception::new(
                reply::NOT_ALLOWED,
                format!("reached maximum ({consumers_max}) of consumers per channel"),
            ));
        }
        let priority = consumer_priority(&consume.arguments)?;
        let stream = declared.policy().queue_type == QueueType::Stream;
        let stream_next = if stream {
            stream_consumer::check_consume(consume.no_ack, self.prefetch, &name, self.vhost.name())?;
            let start = stream_consumer::start(&consume.arguments, context.broker.clock().now_ms())?;
            // Resolved before consume-ok: "next" means after what the client could have published before.
            let reading = Arc::clone(&declared);
            Some(
                tokio::task::spawn_blocking(move || reading.queue()?.stream_offset(start))
                    .await
                    .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?
                    .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?,
            )
        } else {
            None
        };
        let id = declared.new_consumer();
        declared.add_consumer(id, priority, consume.exclusive).map_err(|why| {
            Exception::new(
                reply::ACCESS_REFUSED,
                format!("queue '{name}' in vhost '{}' {why}", self.vhost.name()),
            )
        })?;
        if !consume.nowait {
            self.reply(AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: short(tag.clone()),
            })))
            .await;
        }
        let consumer = Consumer {
            id,
            queue: declared,
            window: Arc::new(Window::new(self.prefetch)),
        };
        match stream_next {
            Some(next) => tokio::spawn(stream_consumer::deliver(
                Arc::clone(&self.shared),
                Arc::clone(&consumer.queue),
                Reader {
                    consumer: consumer.id,
                    window: Arc::clone(&consumer.window),
                    tag: tag.clone(),
                    next,
                },
            )),
            None => tokio::spawn(deliver(
                Arc::clone(&self.shared),
                Arc::clone(&consumer.queue),
                Delivering {
                    consumer: consumer.id,
                    priority,
                    window: Arc::clone(&consumer.window),
                    tag: tag.clone(),
                    no_ack: consume.no_ack,
                },
            )),
        };
        self.consumers.insert(tag, consumer);
        Ok(())
    }

    /// The tag a `basic.consume` names, or one the server makes up
    /// (`amq.ctag-…`); a tag the channel already uses is refused with 530.
    fn consumer_tag(&mut self, consume: &basic::Consume) -> Result<String, Exception> {
        let tag = if consume.consumer_tag.as_str().is_empty() {
            let tag = format!("amq.ctag-{}-{}", self.id(), self.next_consumer_tag);
            self.next_consumer_tag += 1;
            tag
        } else {
            consume.consumer_tag.to_string()
        };
        self.forget_cancelled_by_broker();
        if self.consumers.contains_key(&tag) {
            return Err(Exception::new(reply::NOT_ALLOWED, format!("attempt to reuse consumer tag '{tag}'")));
        }
        Ok(tag)
    }

    /// `basic.consume` of `amq.rabbitmq.reply-to` (`reply_to.rs`).
    async fn consume_replies(&mut self, consume: basic::Consume) -> Result<(), Exception> {
        let tag = self.consumer_tag(&consume)?;
        let replies = reply_to::consume(&self.shared, self.replies.as_ref(), tag.clone(), consume.no_ack)?;
        self.replies = Some(replies);
        if !consume.nowait {
            self.reply(AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: short(tag),
            })))
            .await;
        }
        Ok(())
    }

    pub(super) async fn get(&mut self, context: &Context, connection_id: u64, get: basic::Get) -> Result<(), Exception> {
        let name = get.queue.to_string();
        let resource = self.resource(&name)?;
        let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
        check_access(context, connection_id, &self.vhost, &resource)?;
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Read)?;
        if declared.policy().queue_type == QueueType::Stream {
            return Err(stream_consumer::get_refused(&name, self.vhost.name()));
        }
        let consumer = declared.new_consumer();
        let acquiring = Arc::clone(&declared);
        let broker = Arc::clone(&context.broker);
        let deliveries =
            tokio::task::spawn_blocking(move || broker.acquire_live(&acquiring, consumer, 1, DELIVERY_LOCK_MS, Visibility::Written))
                .await
                .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?
                .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?;
        let (deliveries, dead) = (deliveries.messages, deliveries.dead_letters);
        for append in dead {
            if let Err(error) = append.await {
                warn!(%error, "a dead-lettered message could not be stored");
            }
        }
        let Some(delivery) = deliveries.into_iter().next() else {
            self.reply(AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))).await;
            return Ok(());
        };
        let tag = self.shared.next_tag.fetch_add(1, Ordering::Relaxed);
        if get.no_ack {
            let _ = declared.queue().and_then(|queue| queue.ack(consumer, delivery.offset));
        } else {
            self.shared.unacked.lock().insert(
                tag,
                Unacked {
                    queue: Arc::clone(&declared),
                    consumer,
                    offset: delivery.offset,
                    delivery_count: delivery.delivery_count,
                    record: declared.policy().dead_letter_exchange.as_ref().map(|_| delivery.record.clone()),
                    window: None,
                    delivered: Instant::now(),
                },
            );
        }
        let redelivered = delivery.redelivered();
        let message = queue_type::delivered(&declared.policy(), delivery);
        let remaining = declared.available_count().min(u64::from(u32::MAX)) as LongUInt;
        let method = basic::AMQPMethod::GetOk(basic::GetOk {
            delivery_tag: tag,
            redelivered,
            exchange: short(message.exchange.clone()),
            routing_key: short(message.routing_key.clone()),
            message_count: remaining,
        });
        self.send(&content_frames(&self.shared, method, &message)).await;
        Ok(())
    }
}

/// A consumer's `x-priority` argument (0 without one); RabbitMQ takes any
/// integer and refuses other values with 406.
fn consumer_priority(arguments: &FieldTable) -> Result<i64, Exception> {
    let Some(value) = arguments.inner().get("x-priority") else {
        return Ok(0);
    };
    let priority = match value {
        AMQPValue::ShortShortInt(number) => Some(i64::from(*number)),
        AMQPValue::ShortShortUInt(number) => Some(i64::from(*number)),
        AMQPValue::ShortInt(number) => Some(i64::from(*number)),
        AMQPValue::ShortUInt(number) => Some(i64::from(*number)),
        AMQPValue::LongInt(number) => Some(i64::from(*number)),
        AMQPValue::LongUInt(number) => Some(i64::from(*number)),
        AMQPValue::LongLongInt(number) => Some(*number),
        _ => None,
    };
    priority.ok_or_else(|| Exception::new(reply::PRECONDITION_FAILED, format!("invalid arg 'x-priority' of type {value:?}")))
}
