//! A queue as the broker holds it: its name and definition, the open
//! [`Queue`], and what consumers waiting for messages park on. The
//! definition's arguments (and the policy read from them) can change while
//! the queue is in use ([`Broker::update_queue_arguments`](crate::broker::Broker::update_queue_arguments)):
//! readers load the current ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use uuid::Uuid;

use super::{ConsumerId, Deduplication, Queue, QueuePolicy, QueueType, deduplication};
use crate::catalog::QueueDefinition;

/// How long a deduplication id is remembered: SQS's five minutes.
const DEDUPLICATION_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The consumers attached to a queue.
#[derive(Debug, Default)]
struct Consumers {
    ranks: std::collections::HashMap<ConsumerId, Rank>,
    /// In the order they attached: with `x-single-active-consumer` the
    /// first is the one that gets messages, and the next takes over when
    /// it goes.
    order: Vec<ConsumerId>,
    /// One of them holds the queue exclusively.
    exclusive: bool,
    /// The single active consumer of a quorum queue, once chosen: it keeps
    /// the role until it goes or hands over to one of higher priority.
    active: Option<ConsumerId>,
}

impl Consumers {
    /// The consumer of highest priority, the earliest attached among equals.
    fn preferred(&self) -> Option<ConsumerId> {
        let priority = |consumer: &ConsumerId| self.ranks.get(consumer).map_or(i64::MIN, |rank| rank.priority);
        self.order.iter().copied().fold(None, |best, consumer| match best {
            Some(best) if priority(&best) >= priority(&consumer) => Some(best),
            _ => Some(consumer),
        })
    }
}

/// A consumer's priority, and whether it had room for more deliveries when
/// it last looked (see [`DeclaredQueue::outranked`]).
#[derive(Debug, Clone, Copy)]
struct Rank {
    priority: i64,
    room: bool,
}

#[derive(Debug)]
pub struct DeclaredQueue {
    pub id: Uuid,
    pub name: String,
    definition: ArcSwap<QueueDefinition>,
    /// What the definition's arguments ask for (TTL, limits, dead-lettering).
    policy: ArcSwap<QueuePolicy>,
    pub queue: Queue,
    /// When it was declared (ms since the epoch); for a durable queue the
    /// catalog's record of it, so a restart keeps it (SQS's CreatedTimestamp).
    pub created_ms: i64,
    /// Publishes with a deduplication id seen in the last five minutes are
    /// not enqueued again (SQS FIFO's window).
    pub deduplication: Deduplication,
    next_consumer: AtomicU64,
    /// Publishes appended but not yet committed: counted against length
    /// limits, which the committed count alone would let a burst overrun.
    publishing: AtomicU64,
    /// Consumers attached through any front door.
    consumers: parking_lot::Mutex<Consumers>,
    /// When it was last declared, read or consumed from (ms since the
    /// epoch), for `x-expires`; a restart counts as a use, as in RabbitMQ.
    used_ms: AtomicI64,
    /// Whether it may hold messages with their own TTL (the `expiration`
    /// property): set by such a publish, cleared when the queue is empty.
    /// Starts set, as a reopened queue's log may hold some.
    may_hold_own_ttls: AtomicBool,
    /// Whether the policy has `x-message-ttl` and `x-expires`: what the
    /// queue timers ask of every queue every sweep, kept beside the policy
    /// so that asking costs an atomic load, not a policy load (with ten
    /// thousand queues that load was most of an idle broker's CPU).
    has_message_ttl: AtomicBool,
    has_expiry: AtomicBool,
    /// Taken out of the views and closed: its consumers are told (AMQP's
    /// broker-initiated `basic.cancel`) and settlements go nowhere.
    deleted: AtomicBool,
}

impl DeclaredQueue {
    pub fn new(id: Uuid, name: String, definition: QueueDefinition, policy: QueuePolicy, queue: Queue, created_ms: i64) -> DeclaredQueue {
        let (has_message_ttl, has_expiry) = (policy.message_ttl_ms.is_some(), policy.expires_ms.is_some());
        DeclaredQueue {
            id,
            name,
            definition: ArcSwap::from_pointee(definition),
            policy: ArcSwap::from_pointee(policy),
            queue,
            created_ms,
            deduplication: Deduplication::new(DEDUPLICATION_WINDOW_MS),
            // Random, not 1: a receipt handle from before a restart names
            // a consumer of the old process, and must not name one of this
            // process that holds the same message again. Half the range
            // leaves room to count up without wrapping.
            next_consumer: AtomicU64::new(Uuid::new_v4().as_u64_pair().0 >> 1),
            publishing: AtomicU64::new(0),
            consumers: parking_lot::Mutex::new(Consumers::default()),
            used_ms: AtomicI64::new(created_ms),
            may_hold_own_ttls: AtomicBool::new(true),
            has_message_ttl: AtomicBool::new(has_message_ttl),
            has_expiry: AtomicBool::new(has_expiry),
            deleted: AtomicBool::new(false),
        }
    }

    /// Whether a message waiting in the queue may expire: the queue has a
    /// TTL, or may hold messages with their own.
    pub fn may_expire_messages(&self) -> bool {
        self.has_message_ttl.load(Ordering::Relaxed) || self.may_hold_own_ttls.load(Ordering::Relaxed)
    }

    /// Whether it has `x-expires` (cheap: the queue timers ask every queue).
    pub fn may_expire(&self) -> bool {
        self.has_expiry.load(Ordering::Relaxed)
    }

    /// Notes a publish of a message with its own TTL (`true`), or that the
    /// queue was seen empty (`false`).
    pub fn set_may_hold_own_ttls(&self, may: bool) {
        self.may_hold_own_ttls.store(may, Ordering::Relaxed);
    }

    /// Whether the queue was deleted (by any door, the admin API, its
    /// vhost's deletion or `x-expires`). Its consumers find out when they
    /// next wake: [`Broker`](crate::broker::Broker) wakes them as it deletes.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// Marks the queue deleted, before its consumers are woken.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    /// Records a use (declare, get, receive, consume) at `now_ms`.
    pub fn touch(&self, now_ms: i64) {
        self.used_ms.fetch_max(now_ms, Ordering::SeqCst);
    }

    /// Whether `x-expires` has run out at `now_ms`: unused for that long and
    /// without consumers.
    pub fn expired(&self, now_ms: i64) -> bool {
        let Some(expires_ms) = self.policy().expires_ms else { return false };
        self.consumer_count() == 0 && now_ms.saturating_sub(self.used_ms.load(Ordering::SeqCst)) >= expires_ms
    }

    /// Rebuilds the deduplication window from the records of its last
    /// window (on start). Blocking (reads the log); a failure only leaves
    /// the window emptier.
    pub fn restore_deduplication(&self, now_ms: i64) {
        /// Bounds what a start reads for it.
        const BYTES_MAX: usize = 64 << 20;
        let since_ms = now_ms.saturating_sub(self.deduplication.window_ms());
        let records = match self.queue.records_since(since_ms, BYTES_MAX) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(queue = self.name, %error, "could not rebuild the deduplication window");
                return;
            }
        };
        let text = |record: &conveyor_log::record::Record, name: &str| {
            record
                .header(name)
                .and_then(|header| header.value.as_deref())
                .and_then(|value| std::str::from_utf8(value).ok())
                .map(str::to_owned)
        };
        for record in records {
            let (Some(id), Some(token), Some(offset), Some(published_ms)) = (
                text(&record, deduplication::ID_HEADER),
                text(&record, deduplication::TOKEN_HEADER),
                record.offset.and_then(|offset| u64::try_from(offset).ok()),
                record.timestamp_ms,
            ) else {
                continue;
            };
            self.deduplication.remember(&id, &token, offset, published_ms);
        }
    }

    /// How the queue is declared now.
    pub fn definition(&self) -> Arc<QueueDefinition> {
        self.definition.load_full()
    }

    /// What its arguments ask for now.
    pub fn policy(&self) -> Arc<QueuePolicy> {
        self.policy.load_full()
    }

    /// Replaces the definition and its policy (the broker does, after the
    /// change is durable). The policy goes first: a reader that sees the new
    /// definition sees its policy.
    pub(crate) fn redefine(&self, definition: QueueDefinition, policy: QueuePolicy) {
        self.queue.set_delivery_limit(policy.delivery_limit);
        self.has_message_ttl.store(policy.message_ttl_ms.is_some(), Ordering::Relaxed);
        self.has_expiry.store(policy.expires_ms.is_some(), Ordering::Relaxed);
        self.policy.store(Arc::new(policy));
        self.definition.store(Arc::new(definition));
    }

    /// A consumer id not handed out before on this queue (in this process,
    /// and with overwhelming likelihood not in an earlier one: ids outlive
    /// the process in SQS receipt handles).
    pub fn new_consumer(&self) -> ConsumerId {
        ConsumerId(self.next_consumer.fetch_add(1, Ordering::Relaxed))
    }

    /// Attaches a consumer with its priority (AMQP's `x-priority`, 0 by
    /// default); an exclusive one only to a queue without consumers, and
    /// none while an exclusive one is attached.
    pub fn add_consumer(&self, consumer: ConsumerId, priority: i64, exclusive: bool) -> Result<(), &'static str> {
        let mut consumers = self.consumers.lock();
        if consumers.exclusive {
            return Err("has an exclusive consumer");
        }
        if exclusive && !consumers.ranks.is_empty() {
            return Err("has consumers: an exclusive one cannot join");
        }
        consumers.exclusive = exclusive;
        consumers.ranks.insert(consumer, Rank { priority, room: true });
        consumers.order.push(consumer);
        Ok(())
    }

    /// Detaches a consumer; returns how many remain.
    pub fn remove_consumer(&self, consumer: ConsumerId) -> usize {
        let remaining = {
            let mut consumers = self.consumers.lock();
            consumers.ranks.remove(&consumer);
            consumers.order.retain(|attached| *attached != consumer);
            consumers.exclusive = false;
            if consumers.active == Some(consumer) {
                consumers.active = None;
            }
            consumers.ranks.len()
        };
        // Consumers it outranked may take its share now; with a single
        // active consumer, the next in line takes over.
        self.notify_available();
        remaining
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.lock().ranks.len()
    }

    /// Notes whether `consumer` has room for more deliveries (prefetch). A
    /// consumer that just ran out wakes the consumers it outranks, which
    /// take the messages it cannot.
    pub fn set_room(&self, consumer: ConsumerId, room: bool) {
        let wake = {
            let mut consumers = self.consumers.lock();
            let Some(rank) = consumers.ranks.get_mut(&consumer) else { return };
            let ran_out = rank.room && !room;
            rank.room = room;
            let priority = rank.priority;
            ran_out && consumers.ranks.values().any(|other| other.priority < priority)
        };
        if wake {
            self.notify_available();
        }
    }

    /// Whether a consumer of `priority` leaves the messages to another: one
    /// of higher priority has room. RabbitMQ's consumer priorities: lower
    /// ones get messages only while every higher one is full. With a single
    /// active consumer, priorities only choose which one is active (see
    /// [`DeclaredQueue::waits_its_turn`]).
    pub fn outranked(&self, priority: i64) -> bool {
        if self.policy().single_active_consumer {
            return false;
        }
        self.consumers
            .lock()
            .ranks
            .values()
            .any(|other| other.priority > priority && other.room)
    }

    /// Whether `consumer` waits while another is the queue's single active
    /// consumer (`x-single-active-consumer`): the one attached longest
    /// gets every message; the others wait their turn, in the order they
    /// attached. Woken through [`DeclaredQueue::available`] when it goes.
    ///
    /// A quorum queue prefers the consumer of highest priority (`x-priority`),
    /// as RabbitMQ 4 does: when one of higher priority than the active one
    /// attaches, the active one gets nothing more and, once it holds no
    /// unacknowledged message, hands over; meanwhile both wait.
    pub fn waits_its_turn(&self, consumer: ConsumerId) -> bool {
        let policy = self.policy();
        if !policy.single_active_consumer {
            return false;
        }
        let mut consumers = self.consumers.lock();
        if policy.queue_type != QueueType::Quorum {
            return consumers.order.first().is_some_and(|active| *active != consumer);
        }
        let Some(preferred) = consumers.preferred() else { return false };
        let active = *consumers.active.get_or_insert(preferred);
        if active == preferred || self.queue.holds_any(active) {
            return consumer != active || active != preferred;
        }
        consumers.active = Some(preferred);
        drop(consumers);
        // The one taking over may be parked: wake it.
        self.notify_available();
        consumer != preferred
    }

    /// Messages waiting to be delivered, counting publishes not yet committed.
    pub fn backlog(&self) -> u64 {
        self.queue.available_count() + self.publishing.load(Ordering::SeqCst)
    }

    /// Marks a publish in flight until the returned guard is dropped.
    pub fn publishing(self: &std::sync::Arc<Self>) -> PublishGuard {
        self.publishing.fetch_add(1, Ordering::SeqCst);
        PublishGuard(std::sync::Arc::clone(self))
    }

    /// Wakes consumers parked in [`DeclaredQueue::available`].
    pub fn notify_available(&self) {
        self.queue.notify_available();
    }

    /// Resolves when messages may have become available without the log
    /// growing (see [`Queue::available`]). Register interest before
    /// checking the queue.
    pub fn available(&self) -> tokio::sync::futures::Notified<'_> {
        self.queue.available()
    }
}

/// A publish in flight (see [`DeclaredQueue::publishing`]).
#[derive(Debug)]
pub struct PublishGuard(std::sync::Arc<DeclaredQueue>);

impl Drop for PublishGuard {
    fn drop(&mut self) {
        self.0.publishing.fetch_sub(1, Ordering::SeqCst);
    }
}
