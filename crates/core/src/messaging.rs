//! Moving messages into and out of queues under their policies: the
//! deduplication window and length limits on publish, TTL, retention and the
//! delivery limit on acquisition, and
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
use crate::queue::policy::headers;
use crate::queue::{
    Claim, ConsumerId, DeclaredQueue, Deduplicated, Delivery, Durable, Original, Overflow, QueuePolicy, Visibility, deduplication,
};

/// A lock long enough for the broker's own short-lived acquisitions.
const INTERNAL_LOCK_MS: i64 = 60_000;
/// Acquisition rounds when every message found had expired.
const EXPIRED_ROUNDS_MAX: usize = 16;

/// An append under way (to a queue or a topic); resolves once durable.
pub type Storing = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// What became of a publish into a queue: the appends it caused (its own,
/// and those of messages it pushed into dead-letter queues), which resolve
/// once durable, whether the message itself was refused by
/// `x-overflow = reject-publish(-dlx)`, and whether it was a duplicate.
pub struct Published {
    pub refused: bool,
    pub appends: Vec<Storing>,
    /// Set when the queue's deduplication window had seen the message's
    /// deduplication id: nothing was appended, and the publish counts as the
    /// original (which this resolves to).
    pub duplicate_of: Option<Original>,
}

/// What became of one record of [`Broker::publish_batch_to_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Appended {
        offset: u64,
    },
    /// A duplicate within the deduplication window: not appended; answered
    /// with the original's token and offset (`None` if its append failed).
    Duplicate {
        token: String,
        offset: Option<u64>,
    },
    /// Refused by a full queue whose `x-overflow` is `reject-publish`
    /// (`-dlx`: dead-lettered instead); not appended.
    Refused,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Published")
            .field("refused", &self.refused)
            .field("appends", &self.appends.len())
            .field("duplicate", &self.duplicate_of.is_some())
            .finish()
    }
}

/// What [`Broker::acquire_live`] handed out.
pub struct Live {
    /// Acquired by the consumer, in the queue's delivery order.
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
    /// Checks a record's deduplication id (its `conveyor.deduplication-*`
    /// headers) against the queue's window, on a queue with message groups
    /// (SQS FIFO) — the one place every publish path goes through.
    fn deduplicate(&self, declared: &DeclaredQueue, record: &Record) -> Option<Deduplicated> {
        if !declared.policy().message_groups {
            return None;
        }
        let text = |name: &str| {
            record
                .header(name)
                .and_then(|header| header.value.as_deref())
                .and_then(|value| std::str::from_utf8(value).ok())
        };
        let id = text(deduplication::ID_HEADER)?;
        let token = text(deduplication::TOKEN_HEADER).unwrap_or_default();
        // Opening the queue (its first use since the start) rebuilds its
        // window from the log; the check must come after that. A queue that
        // cannot open fails the append that follows.
        if let Err(error) = declared.queue() {
            warn!(queue = declared.name, %error, "opening a queue to check a deduplication id failed");
        }
        Some(declared.deduplication.check(id, token, self.clock().now_ms()))
    }

    /// Publishes `record` into `declared` under its deduplication window and
    /// length limits (messages and bytes, as RabbitMQ counts them: ready
    /// messages only): a duplicate within the window is not appended; a full
    /// `reject-publish` queue refuses it; a full `drop-head` queue takes it
    /// and then dead-letters its oldest messages down to the limits (once
    /// the append is committed, so every earlier publish counts).
    pub fn publish_to_queue(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, record: Record) -> Published {
        let claim = match self.deduplicate(declared, &record) {
            Some(Deduplicated::Duplicate(original)) => {
                return Published {
                    refused: false,
                    appends: Vec::new(),
                    duplicate_of: Some(original),
                };
            }
            Some(Deduplicated::New(claim)) => Some(claim),
            None => None,
        };
        self.enqueue(declared, record, claim)
    }

    /// Publishes a message the broker moves (dead-lettering, redrive) under
    /// the queue's length limit but not its deduplication window: the
    /// message was deduplicated when first published, and moving it again
    /// within the window must not drop it.
    pub fn republish_to_queue(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, record: Record) -> Published {
        self.enqueue(declared, record, None)
    }

    /// Appends under the length limit; `claim` learns the offset once appended.
    fn enqueue(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, record: Record, claim: Option<Claim>) -> Published {
        let mut appends = Vec::new();
        // The first use since the start opens the queue.
        let queue = match declared.queue() {
            Ok(queue) => queue,
            Err(error) => {
                appends.push(Box::pin(std::future::ready(Err(CoreError::from(error)))) as Storing);
                return Published {
                    refused: false,
                    appends,
                    duplicate_of: None,
                };
            }
        };
        let policy = declared.policy();
        let bytes = record.value.as_ref().map_or(0, Vec::len) as u64;
        if would_overflow(declared, &policy, bytes) {
            // A refused publish drops its claim: its id is forgotten.
            match policy.overflow {
                Overflow::DropHead => {}
                Overflow::RejectPublish => {
                    return Published {
                        refused: true,
                        appends,
                        duplicate_of: None,
                    };
                }
                Overflow::RejectPublishDlx => {
                    appends.extend(self.dead_letter(declared, record, DeathReason::MaxLength, 0));
                    return Published {
                        refused: true,
                        appends,
                        duplicate_of: None,
                    };
                }
            }
        }
        let own_ttl = crate::envelope::has_ttl(&record);
        if own_ttl {
            declared.set_may_hold_own_ttls(true);
        }
        let guard = declared.publishing();
        let flow = self.stats().queue(&declared.name);
        let appending = queue.publish(vec![record]);
        let limited = policy.max_length.is_some() || policy.max_length_bytes.is_some();
        let trim = (policy.overflow == Overflow::DropHead && limited).then(|| (Arc::clone(self), Arc::clone(declared)));
        let ttl_holder = own_ttl.then(|| Arc::clone(declared));
        appends.push(Box::pin(async move {
            let stored = appending.await.map_err(CoreError::from).map(|appended| {
                if let Some(claim) = claim {
                    claim.appended(appended.base_offset);
                }
            });
            // Set again once readable: a sweep that peeked before the
            // record was (and so cleared the flag) must not miss it.
            if let Some(declared) = ttl_holder {
                declared.set_may_hold_own_ttls(true);
            }
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
        Published {
            refused: false,
            appends,
            duplicate_of: None,
        }
    }

    /// Appends `records` to `declared` as one batch (one write, one
    /// `fdatasync`) and waits until they are durable; SQS's send path. Records
    /// whose deduplication id the queue's window holds are not appended and
    /// answer as their original did. A queue's length limits (a queue
    /// declared over AMQP) apply as to every publish: in order, a full
    /// `reject-publish` queue refuses the records past its limit, a full
    /// `drop-head` one dead-letters its oldest messages once the batch is in.
    pub async fn publish_batch_to_queue(self: &Arc<Self>, declared: &Arc<DeclaredQueue>, records: Vec<Record>) -> Result<Vec<Stored>> {
        let policy = declared.policy();
        let limited = policy.max_length.is_some() || policy.max_length_bytes.is_some();
        let mut duplicates = Vec::new();
        // Records to append, each with its claim on a deduplication id.
        let mut fresh = Vec::new();
        let count = records.len();
        let mut stored: Vec<Option<Stored>> = vec![None; count];
        // Each accepted record counts in the backlog until appended.
        let mut guards = Vec::new();
        let mut accepted_bytes = 0u64;
        let mut dead_letters = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            let claim = match self.deduplicate(declared, &record) {
                Some(Deduplicated::Duplicate(original)) => {
                    duplicates.push((index, original));
                    continue;
                }
                Some(Deduplicated::New(claim)) => Some(claim),
                None => None,
            };
            let bytes = record.value.as_ref().map_or(0, Vec::len) as u64;
            if limited && policy.overflow != Overflow::DropHead && would_overflow(declared, &policy, accepted_bytes + bytes) {
                // Refused: its claim is dropped, which forgets its id.
                if policy.overflow == Overflow::RejectPublishDlx {
                    dead_letters.extend(self.dead_letter(declared, record, DeathReason::MaxLength, 0));
                }
                stored[index] = Some(Stored::Refused);
                continue;
            }
            accepted_bytes += bytes;
            guards.push(declared.publishing());
            fresh.push((index, record, claim));
        }
        if !fresh.is_empty() {
            let mut batch = Vec::with_capacity(fresh.len());
            let mut waiting = Vec::with_capacity(fresh.len());
            for (index, record, claim) in fresh {
                batch.push(record);
                waiting.push((index, claim));
            }
            let messages = batch.len() as u64;
            let bytes: u64 = batch.iter().map(|record| record.value.as_ref().map_or(0, Vec::len) as u64).sum();
            // On failure the claims are dropped, which forgets their ids.
            let appended = declared.queue()?.publish(batch).await;
            drop(guards);
            let appended = appended?;
            // Counted where every other publish into a queue is: in the core.
            self.stats().queue(&declared.name).add_in(messages, bytes);
            for (position, (index, claim)) in waiting.into_iter().enumerate() {
                let offset = appended.base_offset + position as u64;
                if let Some(claim) = claim {
                    claim.appended(offset);
                }
                stored[index] = Some(Stored::Appended { offset });
            }
            if limited && policy.overflow == Overflow::DropHead {
                dead_letters.extend(self.trim_to_limits(declared));
            }
        }
        for dead in dead_letters {
            dead.await?;
        }
        for (index, original) in duplicates {
            let token = original.token.clone();
            stored[index] = Some(Stored::Duplicate {
                token,
                offset: original.offset().await,
            });
        }
        Ok(stored.into_iter().flatten().collect())
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
        // A start opens the queues holding messages that may expire
        // (`data_dir::opens_at_start`); one given a TTL since opens here.
        let queue = match declared.queue() {
            Ok(queue) => queue,
            Err(error) => {
                warn!(queue = declared.name, %error, "opening a queue to expire its messages failed");
                return (0, appends);
            }
        };
        for _ in 0..ROUNDS_MAX {
            let peeked = match queue.peek(PEEK_MAX) {
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
            // Every message it holds was seen and none carries a TTL of its
            // own: the sweep need not read this queue again until a publish
            // with one (which sets the flag once its record is readable).
            // Without this, every queue holding anything was read every
            // sweep, forever: 10,000 reads per 100 ms with 10,000 queues.
            let holds = declared.available_count() + declared.acquired_count() as u64;
            if peeked.len() < PEEK_MAX
                && peeked.len() as u64 >= holds
                && !peeked.iter().any(|message| crate::envelope::has_ttl(&message.record))
            {
                declared.set_may_hold_own_ttls(false);
            }
            let now_ms = self.clock().now_ms();
            let mut expired_now = 0;
            for message in peeked.iter().filter(|message| !message.acquired) {
                if !is_expired(declared, &message.record, now_ms) {
                    continue;
                }
                // A consumer may have taken it since the peek: then it is theirs.
                if let Some((archived, durable)) = queue.archive_available(message.offset) {
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
            let excess = declared.available_count().saturating_sub(max_length);
            if excess > 0 {
                dead.extend(self.drop_head(declared, excess));
            }
        }
        if let Some(max_bytes) = policy.max_length_bytes {
            // One message a pass, oldest first: sizes differ, so the count to
            // drop is only known by dropping. Bounded by the messages ready.
            for _ in 0..declared.available_count() {
                match declared.queue().and_then(|queue| queue.ready_bytes()) {
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
        let queue = match declared.queue() {
            Ok(queue) => queue,
            Err(error) => {
                warn!(queue = declared.name, %error, "dropping the head of a full queue failed");
                return appends;
            }
        };
        match queue.acquire(consumer, count.min(1024) as usize, INTERNAL_LOCK_MS) {
            Ok(deliveries) => {
                for delivery in deliveries.messages {
                    let _ = queue.reject(consumer, delivery.offset);
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
    /// `visibility` says whether messages written but not yet durable may
    /// be handed out (AMQP consumers, as in RabbitMQ) or only durable ones
    /// (SQS receives, and the broker's own moves). See [`Queue::acquire_visible`](crate::queue::Queue::acquire_visible).
    pub fn acquire_live(
        self: &Arc<Self>,
        declared: &Arc<DeclaredQueue>,
        consumer: ConsumerId,
        max: usize,
        lock_ms: i64,
        visibility: Visibility,
    ) -> Result<Live> {
        declared.touch(self.clock().now_ms());
        let queue = declared.queue()?;
        let mut dead_letters = Vec::new();
        let mut last_durable = None;
        for _ in 0..EXPIRED_ROUNDS_MAX {
            let deliveries = queue.acquire_visible(consumer, max, lock_ms, visibility)?;
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
                    if let Ok(durable) = queue.ack(consumer, delivery.offset) {
                        last_durable = Some(durable);
                    }
                } else if is_expired(declared, &delivery.record, now_ms) {
                    dead += 1;
                    if let Ok((_, durable)) = queue.reject(consumer, delivery.offset) {
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
        // Settling a stream's messages would let its log drop them for every reader.
        if declared.policy().queue_type == crate::queue::QueueType::Stream {
            return Err(CoreError::StreamNotPurged(declared.name.clone()));
        }
        let consumer = declared.new_consumer();
        let queue = declared.queue()?;
        // Bounded: each pass settles a batch of what was available at the start.
        let passes_max = declared.available_count() as usize / BATCH + 1;
        let mut purged = 0;
        let mut last = None;
        for _ in 0..passes_max {
            // Message groups order deliveries; a purge delivers nothing.
            let deliveries = queue.acquire_regardless_of_groups(consumer, BATCH, INTERNAL_LOCK_MS)?;
            if deliveries.messages.is_empty() {
                break;
            }
            for delivery in &deliveries.messages {
                last = Some(queue.ack(consumer, delivery.offset)?);
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
        // Named as the client declared it: it is the one in the queue's vhost.
        let Some(exchange) = policy
            .dead_letter_exchange
            .as_deref()
            .map(|exchange| crate::vhost::sibling(&declared.name, exchange).into_owned())
        else {
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
        record.headers.retain(|header| header.key != headers::TTL_MS);
        let death = crate::queue::deaths::Death {
            queue: declared.name.clone(),
            reason: reason.as_str().to_owned(),
            count: 1,
            time_ms: self.clock().now_ms(),
            routing_key: String::from_utf8_lossy(&original_key).into_owned(),
        };
        crate::queue::deaths::record_death(&mut record, death, deliveries, original_key);
        record.key = Some(routing_key.clone().into_bytes());
        record.timestamp_ms = None;
        // Routed as RabbitMQ does: with the dead-letter routing key and the
        // message's own headers (a headers exchange can be the DLX), which
        // its front door wrote into the envelope at publish.
        let routed = match self.route(&exchange, &routing_key, &crate::envelope::application_headers(&record)) {
            Ok(routed) => routed,
            Err(error) => {
                warn!(queue = declared.name, exchange, %error, "dead-letter exchange cannot route; the message is dropped");
                return Vec::new();
            }
        };
        let mut appends = Vec::new();
        for name in &routed.queues {
            // A queue never dead-letters into itself, nor around a cycle no
            // consumer took part in (RabbitMQ drops such cycles).
            if *name == declared.name {
                continue;
            }
            if crate::queue::deaths::completes_automatic_cycle(&record, name) {
                warn!(queue = declared.name, target = %name, "dropping a dead message that would cycle back into a queue it died in");
                continue;
            }
            if let Some(target) = self.queue(name) {
                appends.extend(self.republish_to_queue(&target, record.clone()).appends);
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
        || policy
            .max_length_bytes
            .is_some_and(|max_bytes| match declared.queue().and_then(|queue| queue.ready_bytes()) {
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
    let own = crate::envelope::ttl_ms(record).map(|ttl_ms| i64::try_from(ttl_ms).unwrap_or(i64::MAX));
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
        let policy = crate::queue::QueuePolicy {
            retention_ms: Some(60_000),
            dead_letter_exchange: Some(String::new()),
            dead_letter_routing_key: Some("dead".to_owned()),
            ..Default::default()
        };
        let definition = QueueDefinition::of_policy(false, policy);
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
        let live = broker
            .acquire_live(&queue, consumer, 10, 1000, Visibility::Durable)
            .expect("acquire");
        let values: Vec<&[u8]> = live
            .messages
            .iter()
            .filter_map(|delivery| delivery.record.value.as_deref())
            .collect();
        assert_eq!(values, [b"young".as_slice()], "the message 60 s old is past retention");
        assert!(live.dead_letters.is_empty(), "nothing is dead-lettered for its age");
        live.durable.expect("settled").await.expect("durable");
        assert_eq!(dead.available_count(), 0);
        assert_eq!(queue.queue().expect("open").acquired_count(), 1, "only the young one is held");

        queue.queue().expect("open").release_all(consumer);
        clock.advance_ms(30_000);
        let again = broker
            .acquire_live(&queue, queue.new_consumer(), 10, 1000, Visibility::Durable)
            .expect("acquire");
        assert!(again.messages.is_empty(), "now the other one is past retention too");
        assert_eq!(queue.queue().expect("open").available_count(), 0, "and removed");
    }

    #[tokio::test]
    async fn an_expired_message_is_dead_lettered_through_a_headers_exchange_by_its_envelope_headers() {
        use crate::envelope::Envelope;
        use crate::exchange::{Binding, Destination, Exchange, ExchangeKind, HeaderValue};

        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("open"));
        broker
            .declare_exchange(Exchange::new("by-kind", ExchangeKind::Headers))
            .await
            .expect("exchange");
        let (invoices, _) = broker.declare_queue("invoices", QueueDefinition::default()).await.expect("declare");
        let invoice_only: crate::exchange::FieldTable = [
            ("x-match".to_owned(), HeaderValue::String("all".into())),
            ("kind".to_owned(), HeaderValue::String("invoice".into())),
        ]
        .into_iter()
        .collect();
        broker
            .bind(
                "by-kind",
                Binding::new(Destination::Queue("invoices".to_owned()), "").with_arguments(invoice_only),
            )
            .await
            .expect("bind");
        let policy = crate::queue::QueuePolicy {
            message_ttl_ms: Some(1000),
            dead_letter_exchange: Some("by-kind".to_owned()),
            ..Default::default()
        };
        let definition = QueueDefinition::of_policy(false, policy);
        let (typed, _) = broker.declare_queue("typed", definition).await.expect("declare");
        for (kind, body) in [("invoice", "bad-invoice"), ("receipt", "bad-receipt")] {
            let envelope = Envelope {
                headers: [("kind".to_owned(), HeaderValue::String(kind.into()))].into_iter().collect(),
                ..Envelope::default()
            };
            let record = envelope.stamp(Record::new(Some(b"typed".to_vec()), Some(body.as_bytes().to_vec())));
            for append in broker.publish_to_queue(&typed, record).appends {
                append.await.expect("durable");
            }
        }
        clock.advance_ms(2_000);
        // No front door is involved: the core reads the headers itself.
        let live = broker
            .acquire_live(&typed, typed.new_consumer(), 10, 1000, Visibility::Durable)
            .expect("acquire");
        assert!(live.messages.is_empty(), "both expired");
        for append in live.dead_letters {
            append.await.expect("durable");
        }
        let consumer = invoices.new_consumer();
        let dead = broker
            .acquire_live(&invoices, consumer, 10, 1000, Visibility::Durable)
            .expect("acquire");
        let values: Vec<&[u8]> = dead
            .messages
            .iter()
            .filter_map(|delivery| delivery.record.value.as_deref())
            .collect();
        assert_eq!(
            values,
            [b"bad-invoice".as_slice()],
            "routed by its kind header; the receipt matched no binding"
        );
    }

    #[tokio::test]
    async fn every_publish_into_a_message_group_queue_is_deduplicated_but_broker_moves_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("open"));
        let policy = crate::queue::QueuePolicy {
            message_groups: true,
            ..Default::default()
        };
        let definition = QueueDefinition::of_policy(false, policy);
        let (queue, _) = broker.declare_queue("orders", definition).await.expect("declare");
        let record = |token: &str| {
            Record::new(Some(b"group".to_vec()), Some(b"body".to_vec()))
                .with_header(deduplication::ID_HEADER, Some(b"id-1".to_vec()))
                .with_header(deduplication::TOKEN_HEADER, Some(token.as_bytes().to_vec()))
        };
        let first = broker.publish_to_queue(&queue, record("first"));
        assert!(first.duplicate_of.is_none());
        for append in first.appends {
            append.await.expect("durable");
        }
        let again = broker.publish_to_queue(&queue, record("second"));
        assert!(again.appends.is_empty(), "a duplicate is not appended");
        let original = again.duplicate_of.expect("a duplicate");
        assert_eq!(original.token, "first");
        assert_eq!(original.offset().await, Some(0));
        let batch = broker
            .publish_batch_to_queue(
                &queue,
                vec![record("third"), Record::new(Some(b"group".to_vec()), Some(b"other".to_vec()))],
            )
            .await
            .expect("batch");
        assert_eq!(
            batch,
            [
                Stored::Duplicate {
                    token: "first".to_owned(),
                    offset: Some(0)
                },
                Stored::Appended { offset: 1 }
            ]
        );
        for append in broker.republish_to_queue(&queue, record("moved")).appends {
            append.await.expect("durable");
        }
        assert_eq!(
            queue.queue().expect("open").available_count(),
            3,
            "a message the broker moves is not a duplicate"
        );
        clock.advance_ms(5 * 60 * 1000);
        assert!(
            broker.publish_to_queue(&queue, record("later")).duplicate_of.is_none(),
            "the window is five minutes"
        );
    }
}
