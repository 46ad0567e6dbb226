//! Moving messages into and out of queues under their policies: length
//! limits on publish, TTL, retention and the delivery limit on acquisition, and
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
use crate::queue::{ConsumerId, DeclaredQueue, Delivery, Durable, Overflow};

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
    /// Publishes `record` into `declared` under its length limit: a full
    /// `reject-publish` queue refuses it; a full `drop-head` queue takes it
    /// and then dead-letters its oldest messages down to the limit (once the
    /// append is committed, so every earlier publish counts).
    pub fn publish_to_queue(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, record: Record) -> Published {
        let mut appends = Vec::new();
        let policy = declared.policy();
        if let Some(max_length) = policy.max_length
            && declared.backlog() >= max_length
        {
            match policy.overflow {
                Overflow::DropHead => {}
                Overflow::RejectPublish => return Published { refused: true, appends },
                Overflow::RejectPublishDlx => {
                    appends.extend(self.dead_letter(declared, record, DeathReason::MaxLength, 0));
                    return Published { refused: true, appends };
                }
            }
        }
        let guard = declared.publishing();
        let flow = self.stats().queue(&declared.name);
        let bytes = record.value.as_ref().map_or(0, Vec::len) as u64;
        let appending = declared.queue.publish(vec![record]);
        let trim = (policy.overflow == Overflow::DropHead)
            .then_some(policy.max_length)
            .flatten()
            .map(|max_length| (Arc::clone(self), Arc::clone(declared), max_length));
        appends.push(Box::pin(async move {
            let stored = appending.await.map(drop).map_err(CoreError::from);
            drop(guard);
            if stored.is_ok() {
                flow.add_in(1, bytes);
            }
            if let Some((broker, declared, max_length)) = trim {
                let excess = declared.queue.available_count().saturating_sub(max_length);
                if excess > 0 {
                    for dead in broker.drop_head(&declared, excess) {
                        dead.await?;
                    }
                }
            }
            stored
        }));
        Published { refused: false, appends }
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
    /// past their TTL or the delivery limit instead of handing them out, and
    /// removing those past the queue's retention. Blocking (reads the log).
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
            let retention_ms = declared.policy().retention_ms;
            for delivery in deliveries.messages {
                if retention_ms.is_some_and(|retention_ms| is_older(&delivery.record, retention_ms, now_ms)) {
                    // Past retention a message is gone, as if never sent: settled, not dead-lettered.
                    dead += 1;
                    if let Ok(durable) = declared.queue.ack(consumer, delivery.offset) {
                        last_durable = Some(durable);
                    }
                } else if is_expired(declared, &delivery.record, now_ms) {
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
    is_older(record, ttl, now_ms)
}

/// Appended `age_ms` or more before `now_ms`.
fn is_older(record: &Record, age_ms: i64, now_ms: i64) -> bool {
    let published_ms = record.timestamp_ms.unwrap_or(now_ms);
    now_ms >= published_ms.saturating_add(age_ms)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use conveyor_log::clock::ManualClock;

    use crate::BrokerConfig;
    use crate::catalog::QueueDefinition;

    use super::*;

    #[tokio::test]
    async fn messages_past_the_queues_retention_are_removed_not_delivered_nor_dead_lettered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("open"));
        let (dead, _) = broker.declare_queue("dead", QueueDefinition::default()).await.expect("declare");
        let arguments = BTreeMap::from([
            ("x-message-retention-ms".to_owned(), "60000".to_owned()),
            ("x-dead-letter-exchange".to_owned(), String::new()),
            ("x-dead-letter-routing-key".to_owned(), "dead".to_owned()),
        ]);
        let definition = QueueDefinition {
            arguments,
            ..QueueDefinition::default()
        };
        let (queue, _) = broker.declare_queue("retained", definition).await.expect("declare");
        let publish = |value: &str| {
            let published = broker.publish_to_queue(&queue, Record::new(None, Some(value.as_bytes().to_vec())));
            async move {
                for append in published.appends {
                    append.await.expect("durable");
                }
            }
        };
        publish("old").await;
        clock.advance_ms(30_000);
        publish("young").await;
        clock.advance_ms(30_000);

        let consumer = queue.new_consumer();
        let live = broker.acquire_live(&queue, consumer, 10, 1000).expect("acquire");
        let values: Vec<&[u8]> = live
            .messages
            .iter()
            .filter_map(|delivery| delivery.record.value.as_deref())
            .collect();
        assert_eq!(values, [b"young".as_slice()], "the message 60 s old is past retention");
        assert!(live.dead_letters.is_empty(), "nothing is dead-lettered for its age");
        live.durable.expect("settled").await.expect("durable");
        assert_eq!(dead.queue.available_count(), 0);
        assert_eq!(queue.queue.acquired_count(), 1, "only the young one is held");

        queue.queue.release_all(consumer);
        clock.advance_ms(30_000);
        let again = broker.acquire_live(&queue, queue.new_consumer(), 10, 1000).expect("acquire");
        assert!(again.messages.is_empty(), "now the other one is past retention too");
        assert_eq!(queue.queue.available_count(), 0, "and removed");

        let zero = BTreeMap::from([("x-message-retention-ms".to_owned(), "0".to_owned())]);
        assert!(crate::queue::QueuePolicy::from_arguments(&zero).is_err());
    }
}
