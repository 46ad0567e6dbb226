//! Moving messages into and out of queues under their policies: length
//! limits on publish, TTL and the delivery limit on acquisition, and
//! dead-lettering — routing a dead message through its queue's
//! dead-letter exchange with headers that say why. Front doors call these
//! instead of the bare [`Queue`](crate::queue::Queue) so every protocol gets
//! the same rules.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use conveyor_log::record::Record;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::error::{CoreError, Result};
use crate::exchange::FieldTable;
use crate::queue::policy::headers;
use crate::queue::{ConsumerId, DeclaredQueue, Delivery, Durable, Overflow, QueuePolicy};

/// A lock long enough for the broker's own short-lived acquisitions.
const INTERNAL_LOCK_MS: i64 = 60_000;
/// Acquisition rounds when every message found had expired.
const EXPIRED_ROUNDS_MAX: usize = 16;

/// An append under way (to a queue or a topic); resolves once durable.
pub type Storing = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// What became of a publish into a queue: the appends it caused (its own,
/// and those of messages it pushed into dead-letter queues), which resolve
/// once durable, and whether the message itself was refused by
/// `x-overflow = reject-publish(-dlx)`.
pub struct Published {
    pub refused: bool,
    pub appends: Vec<Storing>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Published")
            .field("refused", &self.refused)
            .field("appends", &self.appends.len())
            .finish()
    }
}

/// What [`Broker::acquire_live`] handed out.
pub struct Live {
    /// Acquired by the consumer, lowest offset first.
    pub messages: Vec<Delivery>,
    /// Resolves when the delivery counts (and settlements) are durable.
    pub durable: Option<Durable>,
    /// The appends of messages dead-lettered on the way.
    pub dead_letters: Vec<Storing>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Live")
            .field("messages", &self.messages.len())
            .field("dead_letters", &self.dead_letters.len())
            .finish()
    }
}

/// Why a message is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathReason {
    Rejected,
    Expired,
    MaxLength,
    DeliveryLimit,
}

impl DeathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLength => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

impl Broker {
    /// Publishes `record` into `declared` under its length limits (messages
    /// and bytes, as RabbitMQ counts them: ready messages only): a full
    /// `reject-publish` queue refuses it; a full `drop-head` queue takes it
    /// and then dead-letters its oldest messages down to the limits (once
    /// the append is committed, so every earlier publish counts).
    pub fn publish_to_queue(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, record: Record) -> Published {
        let mut appends = Vec::new();
        let policy = declared.policy();
        let bytes = record.value.as_ref().map_or(0, Vec::len) as u64;
        if would_overflow(declared, &policy, bytes) {
            match policy.overflow {
                Overflow::DropHead => {}
                Overflow::RejectPublish => return Published { refused: true, appends },
                Overflow::RejectPublishDlx => {
                    appends.extend(self.dead_letter(declared, record, DeathReason::MaxLength, 0));
                    return Published { refused: true, appends };
                }
            }
        }
        if record.headers.iter().any(|header| header.key == headers::TTL_MS) {
            declared.set_may_hold_own_ttls(true);
        }
        let guard = declared.publishing();
        let flow = self.stats().queue(&declared.name);
        let appending = declared.queue.publish(vec![record]);
        let limited = policy.max_length.is_some() || policy.max_length_bytes.is_some();
        let trim = (policy.overflow == Overflow::DropHead && limited).then(|| (Arc::clone(self), Arc::clone(declared)));
        appends.push(Box::pin(async move {
            let stored = appending.await.map(drop).map_err(CoreError::from);
            drop(guard);
            if stored.is_ok() {
                flow.add_in(1, bytes);
            }
            if let Some((broker, declared)) = trim {
                for dead in broker.trim_to_limits(&declared) {
                    dead.await?;
                }
            }
            stored
        }));
        Published { refused: false, appends }
    }

    /// Dead-letters (or drops, without a dead-letter exchange) the messages
    /// among the oldest unsettled ones of `declared` that expired while
    /// waiting, so no consumer has to come by first; held messages are
    /// left to their consumers. Returns how many expired and the appends
    /// made. Blocking (reads the log).
    pub fn expire_waiting_messages(self: &Arc<Self>, declared: &Arc<DeclaredQueue>) -> (u64, Vec<Storing>) {
        /// Messages looked at per round; a round that expires them all looks further.
        const PEEK_MAX: usize = 64;
        const ROUNDS_MAX: usize = 16;
        let mut expired = 0;
        let mut appends = Vec::new();
        for _ in 0..ROUNDS_MAX {
            let peeked = match declared.queue.peek(PEEK_MAX) {
                Ok(peeked) => peeked,
                Err(error) => {
                    warn!(queue = declared.name, %error, "looking for expired messages failed");
                    break;
                }
            };
            if peeked.is_empty() {
                declared.set_may_hold_own_ttls(false);
                break;
            }
            let now_ms = self.clock().now_ms();
            let mut expired_now = 0;
            for message in peeked.iter().filter(|message| !message.acquired) {
                if !is_expired(declared, &message.record, now_ms) {
                    continue;
                }
                // A consumer may have taken it since the peek: then it is theirs.
                if let Some((archived, durable)) = declared.queue.archive_available(message.offset) {
                    expired_now += 1;
                    appends.push(Box::pin(async move { durable.await.map_err(CoreError::from) }) as Storing);
                    appends.extend(self.dead_letter(declared, message.record.clone(), DeathReason::Expired, archived.delivery_count));
                }
            }
            expired += expired_now;
            if expired_now < peeked.len() as u64 {
                break;
            }
        }
        (expired, appends)
    }

    /// Dead-letters the oldest available messages until the queue is within
    /// its length limits. Blocking (reads the log).
    fn trim_to_limits(self: &Arc<Self>, declared: &Arc<DeclaredQueue>) -> Vec<Storing> {
        let policy = declared.policy();
        let mut dead = Vec::new();
        if let Some(max_length) = policy.max_length {
            let excess = declared.queue.available_count().saturating_sub(max_length);
            if excess > 0 {
                dead.extend(self.drop_head(declared, excess));
            }
        }
        if let Some(max_bytes) = policy.max_length_bytes {
            // One message a pass, oldest first: sizes differ, so the count to
            // drop is only known by dropping. Bounded by the messages ready.
            for _ in 0..declared.queue.available_count() {
                match declared.queue.ready_bytes() {
                    Ok(ready_bytes) if ready_bytes > max_bytes => dead.extend(self.drop_head(declared, 1)),
                    Ok(_) => break,
                    Err(error) => {
                        warn!(queue = declared.name, %error, "counting the bytes of a full queue failed");
                        break;
                    }
                }
            }
        }
        dead
    }

    /// Dead-letters the `count` oldest available messages. Blocking (reads the log).
    fn drop_head(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, count: u64) -> Vec<Storing> {
        let consumer = declared.new_consumer();
        let mut appends = Vec::new();
        match declared.queue.acquire(consumer, count.min(1024) as usize, INTERNAL_LOCK_MS) {
            Ok(deliveries) => {
                for delivery in deliveries.messages {
                    let _ = declared.queue.reject(consumer, delivery.offset);
                    appends.extend(self.dead_letter(declared, delivery.record, DeathReason::MaxLength, delivery.delivery_count));
                }
            }
            Err(error) => warn!(queue = declared.name, %error, "dropping the head of a full queue failed"),
        }
        appends
    }

    /// Acquires up to `max` messages for `consumer`, dead-lettering those
    /// past their TTL or the delivery limit instead of handing them out.
    /// Blocking (reads the log).
    pub fn acquire_live(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, consumer: ConsumerId, max: usize, lock_ms: i64) -> Result<Live> {
        declared.touch(self.clock().now_ms());
        let mut dead_letters = Vec::new();
        let mut last_durable = None;
        for _ in 0..EXPIRED_ROUNDS_MAX {
            let deliveries = declared.queue.acquire(consumer, max, lock_ms)?;
            // A queue's journal appends complete in order: the latest stands for all.
            last_durable = Some(deliveries.durable);
            let mut dead = 0;
            for dead_letter in deliveries.dead_letters {
                dead += 1;
                dead_letters.extend(self.dead_letter(declared, dead_letter.record, DeathReason::DeliveryLimit, dead_letter.delivery_count));
            }
            let now_ms = self.clock().now_ms();
            let mut messages = Vec::with_capacity(deliveries.messages.len());
            for delivery in deliveries.messages {
                if is_expired(declared, &delivery.record, now_ms) {
                    dead += 1;
                    if let Ok((_, durable)) = declared.queue.reject(consumer, delivery.offset) {
                        last_durable = Some(durable);
                    }
                    dead_letters.extend(self.dead_letter(declared, delivery.record, DeathReason::Expired, delivery.delivery_count));
                } else {
                    messages.push(delivery);
                }
            }
            if !messages.is_empty() || dead == 0 {
                let flow = self.stats().queue(&declared.name);
                let bytes: usize = messages
                    .iter()
                    .map(|delivery| delivery.record.value.as_ref().map_or(0, Vec::len))
                    .sum();
                flow.add_out(messages.len() as u64, bytes as u64);
                let redelivered = messages.iter().filter(|delivery| delivery.redelivered()).count();
                flow.redelivered.fetch_add(redelivered as u64, std::sync::atomic::Ordering::Relaxed);
                return Ok(Live {
                    messages,
                    durable: last_durable,
                    dead_letters,
                });
            }
        }
        Ok(Live {
            messages: Vec::new(),
            durable: last_durable,
            dead_letters,
        })
    }

    /// Settles every message available now (AMQP's `queue.purge`, SQS's
    /// PurgeQueue); messages held by consumers stay theirs. Returns how many
    /// were purged, once that is durable. Blocking.
    pub fn purge_queue(&self, declared: &DeclaredQueue) -> Result<u64> {
        const BATCH: usize = 1024;
        let consumer = declared.new_consumer();
        // Bounded: each pass settles a batch of what was available at the start.
        let passes_max = declared.queue.available_count() as usize / BATCH + 1;
        let mut purged = 0;
        let mut last = None;
        for _ in 0..passes_max {
            // Message groups order deliveries; a purge delivers nothing.
            let deliveries = declared.queue.acquire_regardless_of_groups(consumer, BATCH, INTERNAL_LOCK_MS)?;
            if deliveries.messages.is_empty() {
                break;
            }
            for delivery in &deliveries.messages {
                last = Some(declared.queue.ack(consumer, delivery.offset)?);
                purged += 1;
            }
        }
        if let Some(durable) = last {
            durable.wait()?;
        }
        Ok(purged)
    }

    /// Sends a dead message to its queue's dead-letter exchange, if it has
    /// one (otherwise it is dropped, as in RabbitMQ).
    /// Returns the appends it made.
    pub fn dead_letter(self: &Arc<Self>, declared: &DeclaredQueue, record: Record, reason: DeathReason, deliveries: u32) -> Vec<Storing> {
        let policy = declared.policy();
        let Some(exchange) = policy.dead_letter_exchange.clone() else {
            debug!(
                queue = declared.name,
                reason = reason.as_str(),
                "dropping a dead message (no dead-letter exchange)"
            );
            return Vec::new();
        };
        self.stats()
            .queue(&declared.name)
            .dead_lettered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let routing_key = policy.dead_letter_routing_key.clone().unwrap_or_else(|| {
            record
                .key
                .as_deref()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .unwrap_or_default()
        });
        let mut record = record;
        let original_key = record.key.take().unwrap_or_default();
        record
            .headers
            .retain(|header| !header.key.starts_with("conveyor.death-") && header.key != headers::TTL_MS);
        record.key = Some(routing_key.clone().into_bytes());
        record.timestamp_ms = None;
        let record = record
            .with_header(headers::DEATH_REASON, Some(reason.as_str().as_bytes().to_vec()))
            .with_header(headers::DEATH_QUEUE, Some(declared.name.as_bytes().to_vec()))
            .with_header(headers::DEATH_TIME_MS, Some(self.clock().now_ms().to_string().into_bytes()))
            .with_header(headers::DEATH_DELIVERIES, Some(deliveries.to_string().into_bytes()))
            .with_header(headers::DEATH_ROUTING_KEY, Some(original_key));
        let routed = match self.route(&exchange, &routing_key, &FieldTable::new()) {
            Ok(routed) => routed,
            Err(error) => {
                warn!(queue = declared.name, exchange, %error, "dead-letter exchange cannot route; the message is dropped");
                return Vec::new();
            }
        };
        let mut appends = Vec::new();
        for name in &routed.queues {
            // A queue never dead-letters into itself (RabbitMQ drops such cycles).
            if *name == declared.name {
                continue;
            }
            if let Some(target) = self.queue(name) {
                appends.extend(self.publish_to_queue(&target, record.clone()).appends);
                target.notify_available();
            }
        }
        for name in &routed.topics {
            match self.publish_to_topic(name, record.clone()) {
                Ok(pending) => appends.push(Box::pin(async move { pending.await.map(drop) })),
                Err(error) => warn!(topic = name, %error, "dead-lettering into a topic failed"),
            }
        }
        appends
    }
}

/// Whether a publish of a message with a body of `bytes` would take
/// `declared` past a length limit (RabbitMQ's rule: the ready messages plus
/// this one). Blocking with a byte limit (reads new messages' sizes).
fn would_overflow(declared: &DeclaredQueue, policy: &QueuePolicy, bytes: u64) -> bool {
    let too_long = policy.max_length.is_some_and(|max_length| declared.backlog() >= max_length);
    too_long
        || policy.max_length_bytes.is_some_and(|max_bytes| match declared.queue.ready_bytes() {
            Ok(ready_bytes) => ready_bytes.saturating_add(bytes) > max_bytes,
            // Unknown: take the message rather than lose it.
            Err(error) => {
                warn!(queue = declared.name, %error, "counting the bytes of a queue failed");
                false
            }
        })
}

/// Past its TTL: the queue's `x-message-ttl` or the message's own, whichever is shorter.
fn is_expired(declared: &DeclaredQueue, record: &Record, now_ms: i64) -> bool {
    let own = record
        .headers
        .iter()
        .find(|header| header.key == headers::TTL_MS)
        .and_then(|header| header.value.as_deref())
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse::<i64>().ok());
    let ttl = match (declared.policy().message_ttl_ms, own) {
        (Some(queue), Some(own)) => queue.min(own),
        (queue, own) => match queue.or(own) {
            Some(ttl) => ttl,
            None => return false,
        },
    };
    let published_ms = record.timestamp_ms.unwrap_or(now_ms);
    now_ms >= published_ms.saturating_add(ttl)
}
