//! A queue as the broker holds it: its name and definition, its
//! [`Queue`] (opened on first use after a restart, see [`Opener`]), and
//! what consumers waiting for messages park on. The definition's arguments
//! (and the policy read from them) can change while the queue is in use
//! ([`Broker::redefine_queue`](crate::broker::Broker::redefine_queue)):
//! readers load the current ones. Opens no file itself (its opener does)
//! and knows not where the counts of an unopened queue are kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use uuid::Uuid;

use super::{ConsumerId, Deduplication, Queue, QueueError, QueuePolicy, QueueType, deduplication};
use crate::catalog::QueueDefinition;
use crate::open_once::OpenOnce;

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

/// Opens a queue's logs with its definition and policy as they are then
/// (blocking); called at most once at a time, and again only after it failed.
pub type Opener = Box<dyn Fn(&QueueDefinition, &QueuePolicy) -> Result<Queue, QueueError> + Send + Sync>;

/// What an unopened queue answers for its counts: the figures its queue
/// had when the broker last shut down cleanly (after a restart every
/// acquisition is given back, so every unsettled message is ready).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCounts {
    /// Unsettled messages.
    pub messages: u64,
    /// Committed bytes of the message log.
    pub size_bytes: u64,
    /// Whether it may hold messages with their own TTL.
    pub may_hold_own_ttls: bool,
}

/// The queue's logs: open, or how to open them and what to answer until then.
#[derive(Debug)]
struct Lazy {
    queue: OpenOnce<Queue, Opener>,
    stored: StoredCounts,
    /// Woken when the queue opens: a consumer parked before that parks on
    /// the queue's own notifications from then on.
    unopened_wakeups: tokio::sync::Notify,
}

#[derive(Debug)]
pub struct DeclaredQueue {
    pub id: Uuid,
    pub name: String,
    definition: ArcSwap<QueueDefinition>,
    /// What the definition's arguments ask for (TTL, limits, dead-lettering).
    policy: ArcSwap<QueuePolicy>,
    /// The queue's directory (`queue::Queue::dir` once open).
    dir: PathBuf,
    /// Whether its message log is its own (not a Kafka topic's).
    owns_messages: bool,
    lazy: Lazy,
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
    /// A queue whose logs are open.
    pub fn new(id: Uuid, name: String, definition: QueueDefinition, queue: Queue, created_ms: i64) -> DeclaredQueue {
        let (dir, owns_messages) = (queue.dir().to_owned(), queue.owns_messages());
        let mut declared = DeclaredQueue::with(id, name, definition, dir, owns_messages, None, StoredCounts::default(), created_ms);
        declared.lazy.queue = OpenOnce::open(queue);
        declared
    }

    /// A queue (owning its message log, in `dir`) whose logs `opener` opens
    /// on first use; until then its counts are `stored`.
    #[allow(clippy::too_many_arguments)] // Each is one part of a queue; a builder would only rename them.
    pub fn unopened(
        id: Uuid,
        name: String,
        definition: QueueDefinition,
        dir: PathBuf,
        opener: Opener,
        stored: StoredCounts,
        created_ms: i64,
    ) -> DeclaredQueue {
        let declared = DeclaredQueue::with(id, name, definition, dir, true, Some(opener), stored, created_ms);
        declared.may_hold_own_ttls.store(stored.may_hold_own_ttls, Ordering::Relaxed);
        declared
    }

    #[allow(clippy::too_many_arguments)] // See `unopened`.
    fn with(
        id: Uuid,
        name: String,
        definition: QueueDefinition,
        dir: PathBuf,
        owns_messages: bool,
        opener: Option<Opener>,
        stored: StoredCounts,
        created_ms: i64,
    ) -> DeclaredQueue {
        let policy = definition.policy.clone();
        let (has_message_ttl, has_expiry) = (policy.message_ttl_ms.is_some(), policy.expires_ms.is_some());
        DeclaredQueue {
            id,
            name,
            definition: ArcSwap::from_pointee(definition),
            policy: ArcSwap::from_pointee(policy),
            dir,
            owns_messages,
            lazy: Lazy {
                queue: OpenOnce::later(opener),
                stored,
                unopened_wakeups: tokio::sync::Notify::new(),
            },
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

    /// The queue's logs, opened now if this is their first use since the
    /// start (blocking then: it reads their files; on an async worker
    /// thread inside `block_in_place`, which hands the worker's other tasks
    /// to another thread first). Two first uses open it once.
    pub fn queue(&self) -> Result<&Queue, QueueError> {
        let opened = self
            .lazy
            .queue
            .get(|opener| blocking_in_place(|| opener(&self.definition(), &self.policy())))?;
        let (queue, now) = opened.ok_or(QueueError::Closed)?;
        if !now {
            return Ok(queue);
        }
        queue.set_delivery_limit(self.policy().delivery_limit);
        // Only queues with message groups (SQS FIFO) deduplicate; the
        // others need not read their last five minutes.
        if self.policy().message_groups {
            blocking_in_place(|| self.restore_deduplication(queue, queue.now_ms()));
        }
        self.lazy.unopened_wakeups.notify_waiters();
        Ok(queue)
    }

    /// The queue's logs if they are open; never opens them.
    pub fn opened(&self) -> Option<&Queue> {
        self.lazy.queue.opened()
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the message log is the queue's own (not a Kafka topic's).
    pub fn owns_messages(&self) -> bool {
        self.owns_messages
    }

    /// Messages ready for delivery (of an unopened queue: its stored count).
    pub fn available_count(&self) -> u64 {
        self.opened().map_or(self.lazy.stored.messages, Queue::available_count)
    }

    /// Messages held by consumers (none in an unopened queue).
    pub fn acquired_count(&self) -> usize {
        self.opened().map_or(0, Queue::acquired_count)
    }

    /// Ready messages waiting out a retry delay (none in an unopened queue).
    pub fn delayed_count(&self) -> u64 {
        self.opened().map_or(0, Queue::delayed_count)
    }

    /// Committed bytes of the message log (of an unopened queue: stored).
    pub fn size_bytes(&self) -> u64 {
        self.opened().map_or(self.lazy.stored.size_bytes, Queue::size_bytes)
    }

    /// What an unopened queue would answer after the next start: its
    /// counts now (every acquisition given back by then).
    pub fn counts_to_store(&self) -> StoredCounts {
        match self.opened() {
            None => self.lazy.stored,
            Some(queue) => StoredCounts {
                messages: queue.available_count() + queue.acquired_count() as u64,
                size_bytes: queue.size_bytes(),
                may_hold_own_ttls: self.may_hold_own_ttls.load(Ordering::Relaxed),
            },
        }
    }

    /// Closes its logs if they are open (an unopened queue has none open).
    pub fn close(&self) -> Result<(), QueueError> {
        // Sealed so that an open in progress finishes first, and none follows.
        match self.lazy.queue.seal() {
            Some(queue) => queue.close(),
            None => Ok(()),
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
    /// window (when the queue opens). Blocking (reads the log); a failure
    /// only leaves the window emptier.
    pub(crate) fn restore_deduplication(&self, queue: &Queue, now_ms: i64) {
        /// Bounds what a start reads for it.
        const BYTES_MAX: usize = 64 << 20;
        let since_ms = now_ms.saturating_sub(self.deduplication.window_ms());
        let records = match queue.records_since(since_ms, BYTES_MAX) {
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

    /// What its definition's policy is now (kept beside the definition so
    /// the hot paths load it alone).
    pub fn policy(&self) -> Arc<QueuePolicy> {
        self.policy.load_full()
    }

    /// Replaces the definition and its policy (the broker does, after the
    /// change is durable). The policy goes first: a reader that sees the new
    /// definition sees its policy.
    pub(crate) fn redefine(&self, definition: QueueDefinition) {
        let policy = definition.policy.clone();
        if let Some(queue) = self.opened() {
            queue.set_delivery_limit(policy.delivery_limit);
        }
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
        if active == preferred || self.opened().is_some_and(|queue| queue.holds_any(active)) {
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
        self.available_count() + self.publishing.load(Ordering::SeqCst)
    }

    /// Marks a publish in flight until the returned guard is dropped.
    pub fn publishing(self: &std::sync::Arc<Self>) -> PublishGuard {
        self.publishing.fetch_add(1, Ordering::SeqCst);
        PublishGuard(std::sync::Arc::clone(self))
    }

    /// Wakes consumers parked in [`DeclaredQueue::available`].
    pub fn notify_available(&self) {
        match self.opened() {
            Some(queue) => queue.notify_available(),
            None => self.lazy.unopened_wakeups.notify_waiters(),
        }
    }

    /// Resolves when messages may have become available without the log
    /// growing (see [`Queue::available`]). Register interest before
    /// checking the queue.
    pub fn available(&self) -> tokio::sync::futures::Notified<'_> {
        match self.opened() {
            Some(queue) => queue.available(),
            None => self.lazy.unopened_wakeups.notified(),
        }
    }
}

/// Runs `blocking` (the first use of a queue, which opens it) from any
/// thread: on a reactor thread of a multi-threaded runtime inside
/// `tokio::task::block_in_place`, which first hands the worker's other
/// tasks to another thread; elsewhere directly.
pub(crate) fn blocking_in_place<R>(blocking: impl FnOnce() -> R) -> R {
    let multi_threaded =
        tokio::runtime::Handle::try_current().is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if !conveyor_log::reactor_guard::on_reactor_thread() || !multi_threaded {
        return blocking();
    }
    tokio::task::block_in_place(|| conveyor_log::reactor_guard::off_reactor(blocking))
}

/// A publish in flight (see [`DeclaredQueue::publishing`]).
#[derive(Debug)]
pub struct PublishGuard(std::sync::Arc<DeclaredQueue>);

impl Drop for PublishGuard {
    fn drop(&mut self) {
        self.0.publishing.fetch_sub(1, Ordering::SeqCst);
    }
}
