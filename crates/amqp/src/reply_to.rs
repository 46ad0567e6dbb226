//! RabbitMQ's Direct Reply-to (<https://www.rabbitmq.com/docs/direct-reply-to>)
//! in AMQP's words: the `amq.rabbitmq.reply-to` pseudo-queue a channel
//! consumes in no-ack mode, the `reply_to` property rewritten to
//! `amq.rabbitmq.reply-to.<token>` on that channel's publishes, the
//! default-exchange publish that sends a reply straight to its consumer, and
//! RabbitMQ's errors on misuse. Where a token leads, and what becomes of a
//! reply to a token nobody holds, is the core's (`direct_reply.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amq_protocol::protocol::{BasicProperties, basic};
use conveyor_core::Broker;
use conveyor_core::direct_reply::ReplyConsumer;

use crate::channel::{Shared, content_frames};
use crate::frame;
use crate::message::Message;
use crate::reply::{self, Exception, short};

/// The pseudo-queue's name: consumed, named in `reply_to`, declared passively.
pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";

/// What a publish's `reply_to` becomes: the pseudo-queue's name, a dot, the token.
const TOKEN_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// The token a publish addresses, when it is a reply: on the default
/// exchange, with a routing key of [`TOKEN_PREFIX`] and a token.
pub fn token_of<'a>(exchange: &str, routing_key: &'a str) -> Option<&'a str> {
    if !exchange.is_empty() {
        return None;
    }
    routing_key.strip_prefix(TOKEN_PREFIX).filter(|token| !token.is_empty())
}

/// A channel's consumer of its direct replies. Dropping it (`basic.cancel`,
/// the channel closing) stops its delivery task, and the token with it.
#[derive(Debug)]
pub struct DirectReplyConsumer {
    pub tag: String,
    token: String,
    task: tokio::task::AbortHandle,
}

impl Drop for DirectReplyConsumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a channel's reply consumer (`basic.consume` of [`PSEUDO_QUEUE`]):
/// no-ack only, one per channel, as RabbitMQ has it.
pub fn consume(
    shared: &Arc<Shared>,
    current: Option<&DirectReplyConsumer>,
    tag: String,
    no_ack: bool,
) -> Result<DirectReplyConsumer, Exception> {
    if !no_ack {
        return Err(Exception::new(reply::PRECONDITION_FAILED, "reply consumer cannot acknowledge"));
    }
    if current.is_some() {
        return Err(Exception::new(reply::PRECONDITION_FAILED, "reply consumer already set"));
    }
    let registered = shared.broker.direct_replies().register();
    let token = registered.token().to_owned();
    let task = tokio::spawn(deliver(Arc::clone(shared), registered, tag.clone())).abort_handle();
    Ok(DirectReplyConsumer { tag, token, task })
}

/// A publish on a channel names the pseudo-queue as its `reply_to`: it gets
/// the channel's token, or RabbitMQ's 406 when the channel consumes no
/// replies.
pub fn rewrite(properties: &mut BasicProperties, consumer: Option<&DirectReplyConsumer>) -> Result<(), Exception> {
    if properties.reply_to().as_ref().map(|reply_to| reply_to.as_str()) != Some(PSEUDO_QUEUE) {
        return Ok(());
    }
    let Some(consumer) = consumer else {
        return Err(Exception::new(reply::PRECONDITION_FAILED, "fast reply consumer does not exist"));
    };
    *properties = properties.clone().with_reply_to(short(format!("{TOKEN_PREFIX}{}", consumer.token)));
    Ok(())
}

/// Sends a reply straight to the consumer of `token`. Returns the message
/// when no consumer takes it (gone, or not keeping up), for a mandatory
/// publish's `basic.return`; otherwise it is dropped, as RabbitMQ does.
pub fn send(broker: &Broker, token: &str, message: Message) -> Option<Message> {
    let kept = message.clone();
    match broker.direct_replies().send(token, message.into_record()) {
        Ok(()) => None,
        Err(why) => {
            tracing::debug!(%why, "a direct reply went nowhere");
            Some(kept)
        }
    }
}

/// Delivers a channel's replies as they come, each a `basic.deliver`
/// nobody acks; ends when the channel's writer is gone or the consumer is
/// dropped (aborted).
async fn deliver(shared: Arc<Shared>, mut registered: ReplyConsumer, tag: String) {
    // Bounded by the replies sent while the consumer lives.
    while let Some(record) = registered.replies.recv().await {
        let message = Message::from_record(record);
        let method = basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: short(tag.clone()),
            delivery_tag: shared.next_tag.fetch_add(1, Ordering::Relaxed),
            redelivered: false,
            exchange: short(message.exchange.clone()),
            routing_key: short(message.routing_key.clone()),
        });
        if shared
            .out
            .send(frame::encode(&content_frames(&shared, method, &message)))
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_default_exchange_publish_to_a_token_is_a_reply() {
        assert_eq!(token_of("", "amq.rabbitmq.reply-to.abc"), Some("abc"));
        assert_eq!(token_of("amq.direct", "amq.rabbitmq.reply-to.abc"), None);
        assert_eq!(token_of("", "amq.rabbitmq.reply-to"), None);
        assert_eq!(token_of("", "amq.rabbitmq.reply-to."), None);
        assert_eq!(token_of("", "rpc_queue"), None);
    }

    #[test]
    fn a_reply_to_of_the_pseudo_queue_needs_a_reply_consumer() {
        let mut properties = BasicProperties::default().with_reply_to(short(PSEUDO_QUEUE));
        let refused = rewrite(&mut properties, None).expect_err("no consumer");
        assert_eq!(refused.code, reply::PRECONDITION_FAILED);
        assert_eq!(refused.text, "fast reply consumer does not exist");
        let mut other = BasicProperties::default().with_reply_to(short("my-queue"));
        rewrite(&mut other, None).expect("an ordinary reply_to is left alone");
        assert_eq!(other.reply_to().as_ref().map(|name| name.as_str()), Some("my-queue"));
    }
}
