//! A channel's publishes: content reassembly (header, then body frames,
//! within the connection's budget and the resource alarms), routing, the
//! `mandatory` return, and handing the appends to the store task with their
//! confirm. Knows the channel's state, not consumers or acks.

use std::time::Instant;

use amq_protocol::frame::AMQPContentHeader;
use amq_protocol::protocol::basic;
use conveyor_core::connection_budget::Reservation;
use conveyor_core::limits::Limit;
use conveyor_core::vhost;

use super::{Channel, Confirm, Stored, content_frames, stored};
use crate::Context;
use crate::message::{Message, header_table};
use crate::reply::{self, Exception, short};
use crate::reply_to;

impl Channel {
    /// A content header: the publish's properties and body size.
    pub async fn content_header(&mut self, context: &Context, header: AMQPContentHeader) -> Result<(), Exception> {
        let Some(publishing) = self.publishing.as_mut().filter(|publishing| publishing.properties.is_none()) else {
            return Err(Exception::new(reply::UNEXPECTED_FRAME, "content header without a publish"));
        };
        if header.body_size > context.config.message_bytes_max {
            self.publishing = None;
            context.broker.limits().reach(
                Limit::AmqpMessageBytes,
                format!("a message of {} bytes was refused", header.body_size),
            );
            return Err(Exception::new(
                reply::PRECONDITION_FAILED,
                format!(
                    "message size {} is larger than the configured maximum {}",
                    header.body_size, context.config.message_bytes_max
                ),
            ));
        }
        if let Some(expiration) = header.properties.expiration()
            && let Err(reason) = expiration_ms(expiration.as_str())
        {
            self.publishing = None;
            return Err(Exception::new(
                reply::PRECONDITION_FAILED,
                format!("invalid expiration '{}': {reason}", expiration.as_str()),
            ));
        }
        publishing.properties = Some(header.properties);
        publishing.body_size = header.body_size;
        self.keep_frame_bytes();
        if header.body_size == 0 {
            self.finish_publish(context).await?;
        }
        Ok(())
    }

    /// A body frame of the publish in progress.
    pub async fn content_body(&mut self, context: &Context, body: Vec<u8>) -> Result<(), Exception> {
        let Some(publishing) = self.publishing.as_mut().filter(|publishing| publishing.properties.is_some()) else {
            return Err(Exception::new(reply::UNEXPECTED_FRAME, "content body without a content header"));
        };
        if publishing.body.len() as u64 + body.len() as u64 > publishing.body_size {
            return Err(Exception::new(reply::FRAME_ERROR, "content body larger than the header said"));
        }
        if publishing.body.is_empty() {
            publishing.body = body;
        } else {
            // Exactly what arrived: a body never waits in twice its size
            // (the budget counts the bytes sent, not a doubled capacity).
            publishing.body.reserve_exact(body.len());
            publishing.body.extend_from_slice(&body);
        }
        let complete = publishing.body.len() as u64 == publishing.body_size;
        self.keep_frame_bytes();
        if complete {
            self.finish_publish(context).await?;
        }
        Ok(())
    }

    pub(super) async fn finish_publish(&mut self, context: &Context) -> Result<(), Exception> {
        let Some(publishing) = self.publishing.take() else { return Ok(()) };
        let mut properties = publishing.properties.unwrap_or_default();
        reply_to::rewrite(&mut properties, self.replies.as_ref())?;
        let message = Message {
            exchange: publishing.exchange,
            routing_key: publishing.routing_key,
            properties,
            body: publishing.body,
        };
        match self.tx.as_mut() {
            Some(transaction) => {
                let limits = context.broker.limits();
                let body_bytes = transaction.body_bytes + message.body.len() as u64;
                let messages_max = limits.config().amqp_transaction_messages_max as usize;
                let refused = if transaction.publishes.len() >= messages_max {
                    Some(Limit::AmqpTransactionMessages)
                } else if body_bytes > limits.config().amqp_transaction_bytes_max {
                    Some(Limit::AmqpTransactionBytes)
                } else {
                    None
                };
                if let Some(limit) = refused {
                    // The channel closes and the transaction goes with it: nothing of it was stored.
                    let reached = limits.reach(limit, "an AMQP transaction grew past its limit");
                    return Err(Exception::new(
                        reply::PRECONDITION_FAILED,
                        format!("transaction too large: commit or roll back sooner ({reached})"),
                    ));
                }
                transaction.body_bytes = body_bytes;
                transaction.publishes.push((message, publishing.mandatory, publishing.bytes));
            }
            None => self.publish(context, message, publishing.mandatory, publishing.bytes).await,
        }
        Ok(())
    }

    /// Routes a complete message and hands its appends to the store task
    /// (with its bytes in the connection's budget, given back once stored).
    pub(super) async fn publish(&mut self, context: &Context, message: Message, mandatory: bool, bytes: Option<Reservation>) {
        let started = Instant::now();
        if let Some(token) = reply_to::token_of(&message.exchange, &message.routing_key) {
            // A direct reply: straight to its consumer, confirmed at once.
            let token = token.to_owned();
            if let Some(returned) = reply_to::send(&context.broker, &token, message)
                && mandatory
            {
                self.return_unroutable(&returned).await;
            }
            self.confirm_after(Confirm::Now, started, bytes);
            return;
        }
        let headers = message.properties.headers().as_ref().map(header_table).unwrap_or_default();
        // The message keeps the exchange as the client named it (deliveries show it).
        let routed = self
            .vhost
            .resource(&message.exchange)
            .ok()
            .and_then(|exchange| context.broker.route(&exchange, &message.routing_key, &headers).ok())
            .unwrap_or_default();
        let confirm = if routed.is_empty() {
            if mandatory {
                self.return_unroutable(&message).await;
            }
            Confirm::Now
        } else {
            let record = message.into_record();
            let fanned = context.broker.publish_routed(&routed, record);
            let mut appends: Vec<Stored> = fanned.stored.into_iter().flat_map(|(_, appends)| appends).map(stored).collect();
            for name in &fanned.refused {
                let refusal = format!("queue '{}' is full (x-overflow reject-publish)", vhost::local_name(name));
                appends.push(Box::pin(std::future::ready(Err(refusal))));
            }
            Confirm::Durable(appends, true)
        };
        self.confirm_after(confirm, started, bytes);
    }

    /// A mandatory publish that reached nobody goes back (312 NO_ROUTE).
    pub(super) async fn return_unroutable(&self, message: &Message) {
        let method = basic::AMQPMethod::Return(basic::Return {
            reply_code: reply::NO_ROUTE,
            reply_text: short("NO_ROUTE"),
            exchange: short(message.exchange.clone()),
            routing_key: short(message.routing_key.clone()),
        });
        self.send(&content_frames(&self.shared, method, message)).await;
    }

    /// Hands a publish's confirm to the store task, which sends it (in
    /// confirm mode) once what it waits for is stored; `bytes` are held
    /// in the connection's budget until then.
    pub(super) fn confirm_after(&mut self, confirm: Confirm, started: Instant, bytes: Option<Reservation>) {
        let confirm_tag = self.confirm_next;
        if let Some(next) = self.confirm_next.as_mut() {
            *next += 1;
        }
        self.published += 1;
        let _ = self.stores.send((confirm_tag, confirm, Some(started), bytes));
    }
}

/// Longest per-message TTL RabbitMQ takes (`?MAX_EXPIRY_TIMER`, 2^32 - 1 ms).
const EXPIRATION_MS_MAX: i64 = u32::MAX as i64;

/// A publish's `expiration` as RabbitMQ reads it (`rabbit_basic:parse_expiration`):
/// an integer of milliseconds from 0 to 2^32 - 1, or its refusal in
/// RabbitMQ's words (`no_integer`, `{value_negative,-1}`, …).
fn expiration_ms(text: &str) -> Result<i64, String> {
    let digits_end = text
        .char_indices()
        .find(|&(at, c)| !(c.is_ascii_digit() || (at == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(at, _)| at);
    let (number, rest) = text.split_at(digits_end);
    let Ok(value) = number.parse::<i64>() else {
        return Err("no_integer".to_owned());
    };
    if !rest.is_empty() {
        return Err(format!("{{leftover_string,{rest:?}}}"));
    }
    match value {
        ..0 => Err(format!("{{value_negative,{value}}}")),
        value if value > EXPIRATION_MS_MAX => Err(format!("{{value_too_large,{value}}}")),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_are_read_and_refused_as_rabbitmq_reads_them() {
        assert_eq!(expiration_ms("60000"), Ok(60_000));
        assert_eq!(expiration_ms("0"), Ok(0));
        assert_eq!(expiration_ms("abc"), Err("no_integer".to_owned()));
        assert_eq!(expiration_ms(""), Err("no_integer".to_owned()));
        assert_eq!(expiration_ms("-1"), Err("{value_negative,-1}".to_owned()));
        assert_eq!(expiration_ms("12abc"), Err("{leftover_string,\"abc\"}".to_owned()));
        assert_eq!(expiration_ms("4294967296"), Err("{value_too_large,4294967296}".to_owned()));
    }
}
