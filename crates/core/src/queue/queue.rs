//! One queue: its message log (`<dir>/messages/`) and its journaled share
//! cursor (`<dir>/cursor/`). Publishes append records; acquisitions read them
//! back with their delivery counts. Knows records and delivery state, no
//! protocol: AMQP, SQS and Kafka share groups translate to it. A Kafka share
//! group's cursor runs over a partition log the queue does not own
//! ([`Queue::open_over`]): it never cuts nor closes that log.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conveyor_log::clock::Clock;
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Appending, Log, LogConfig, Visibility};
use parking_lot::Mutex;
use tracing::{info, warn};

use super::QueueError;
use super::durable::Durable;
use super::queue_writes::{LocalWrites, QueueWrites};
use super::share_cursor::{Acquisition, Archived, ConsumerId, CursorImage, OrderFacts, ShareCursor, ShareCursorConfig};
use super::snapshot_writer::SnapshotWriter;
use crate::journal::{JournalConfig, Journaled};
use crate::record_batches::decode_batches;

/// Where the cursor of a queue opened over someone else's log
/// ([`Queue::open_over`]) starts the first time it is opened (KIP-932's
/// `share.auto.offset.reset`); later opens resume from its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CursorStart {
    /// The log's start offset: every record still there is delivered.
    Earliest,
    /// The log's high watermark: only records appended from now on.
    #[default]
    Latest,
    /// This offset, kept within the log's start and high watermark (KIP-932's
    /// AlterShareGroupOffsets).
    At(u64),
}

/// Settings of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The message log's settings; its durability applies to the cursor
    /// journal too. Retention (SQS's message retention period) removes
    /// messages whatever their state.
    pub log: LogConfig,
    pub cursor: ShareCursorConfig,
    /// Write a cursor snapshot (and drop the journal it covers) after this
    /// many journal records, so replay stays bounded.
    pub snapshot_every_records: u64,
    /// Bytes read from the message log per read while fetching acquired records.
    pub read_bytes_max: usize,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            log: LogConfig {
                // A queue keeps a message until it is settled.
                retention_ms: None,
                retention_bytes: None,
                ..LogConfig::default()
            },
            cursor: ShareCursorConfig::default(),
            snapshot_every_records: 10_000,
            read_bytes_max: 1 << 20,
        }
    }
}

/// One message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub offset: u64,
    /// 1 on the first delivery.
    pub delivery_count: u32,
    /// When it was first delivered (ms since the epoch; after a restart, the
    /// first delivery since).
    pub first_delivered_ms: i64,
    pub record: Record,
}

impl Delivery {
    /// AMQP's `redelivered` flag: delivered (possibly to someone else) before.
    pub fn redelivered(&self) -> bool {
        self.delivery_count > 1
    }
}

/// One message seen by [`Queue::peek`], left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub offset: u64,
    /// Deliveries so far (0: never delivered).
    pub delivery_count: u32,
    /// Held by a consumer right now.
    pub acquired: bool,
    pub record: Record,
}

/// What one [`Queue::acquire`] returned.
#[derive(Debug)]
pub struct Deliveries {
    /// Acquired by the consumer, in the cursor's delivery order.
    pub messages: Vec<Delivery>,
    /// Archived because they reached the delivery limit: the caller
    /// dead-letters them. Never delivered again.
    pub dead_letters: Vec<Delivery>,
    /// Resolves when the delivery counts are durable. A caller that needs
    /// the delivery limit to hold across a crash waits for it before handing
    /// the messages out.
    pub durable: Durable,
}

/// Bytes [`Queue::acquire`] reads per offset it wants (see `read_records`).
const READ_BYTES_PER_OFFSET: usize = 2048;

/// Offsets and their message groups, as read from the log.
/// What the cursor learns of each message from the log: its offset, its
/// group (record key) and its body size.
/// What the cursor learns of one message from the log.
struct Fact {
    offset: u64,
    order: OrderFacts,
    /// Body bytes.
    size: u32,
}

#[derive(Debug)]
struct State {
    cursor: ShareCursor,
}

/// A queue: a message log plus a journaled share cursor. Methods are
/// blocking (they read the log); a front door calls them off the reactor.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    config: QueueConfig,
    messages: Log,
    /// Whether `messages` is the queue's own (cut below the settled prefix,
    /// closed with the queue) or a partition's log the cursor only reads.
    owns_messages: bool,
    /// The cursor's journal: its events, appended under `state`. Shared
    /// with the snapshot writer, which runs off the async reactor.
    journal: Arc<Journaled<CursorImage>>,
    /// Where publishes and cursor events are written: `messages` and
    /// `journal` here, or through a replicated queue's group.
    writes: Arc<dyn QueueWrites>,
    clock: Arc<dyn Clock>,
    /// Taken while the cursor changes and its events are enqueued on the
    /// journal, so the journal's order is the cursor's. Never held while
    /// reading messages or waiting for an append. Lock order: `snapshot`
    /// before `state`.
    state: Mutex<State>,
    /// Serializes snapshots so that a later one never loses to an earlier
    /// one; `true` once the queue is closed (a snapshot handed to a
    /// blocking thread before the close is then dropped, not written into
    /// closed logs).
    snapshot: Arc<Mutex<bool>>,
    /// Notified whenever messages may have become available without the
    /// log growing (see [`Queue::available`]).
    available: tokio::sync::Notify,
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, recovering both logs and
    /// replaying the cursor: acknowledged and archived messages stay so;
    /// messages that were acquired are available again with their delivery
    /// counts. Blocking.
    pub fn open(dir: impl Into<PathBuf>, config: QueueConfig, clock: Arc<dyn Clock>) -> Result<Queue, QueueError> {
        let dir = dir.into();
        Queue::open_through(dir, config, clock, |local| Arc::new(local))
    }

    /// [`Queue::open`] whose writes go through what `through` makes of the
    /// queue's own logs (a replicated queue's group, which writes them on
    /// every replica). Blocking.
    pub fn open_through(
        dir: impl Into<PathBuf>,
        config: QueueConfig,
        clock: Arc<dyn Clock>,
        through: impl FnOnce(LocalWrites) -> Arc<dyn QueueWrites>,
    ) -> Result<Queue, QueueError> {
        let dir = dir.into();
        let messages = Log::open_with_clock(dir.join("messages"), config.log.clone(), Arc::clone(&clock))?;
        Queue::open_on(dir, messages, true, None, config, clock, through)
    }

    /// Opens (or creates) a share cursor in `dir` over `messages`, a log the
    /// queue does not own (a Kafka partition's): snapshots never cut it and
    /// closing the queue leaves it open. A cursor opened for the first time
    /// starts at `start`, made durable before this returns. Blocking.
    pub fn open_over(
        dir: impl Into<PathBuf>,
        messages: Log,
        start: CursorStart,
        config: QueueConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Queue, QueueError> {
        let dir = dir.into();
        let fresh = !dir.join("cursor").exists();
        let first_start = fresh.then(|| match start {
            CursorStart::Earliest => messages.start_offset(),
            CursorStart::Latest => messages.high_watermark(),
            CursorStart::At(offset) => offset,
        });
        Queue::open_on(dir, messages, false, first_start, config, clock, |local| Arc::new(local))
    }

    fn open_on(
        dir: PathBuf,
        messages: Log,
        owns_messages: bool,
        first_start: Option<u64>,
        config: QueueConfig,
        clock: Arc<dyn Clock>,
        through: impl FnOnce(LocalWrites) -> Arc<dyn QueueWrites>,
    ) -> Result<Queue, QueueError> {
        let journal_config = JournalConfig {
            durability: config.log.durability,
            segment_bytes: 16 * 1024 * 1024,
            snapshot_every_events: config.snapshot_every_records,
            // Acks and receives are journaled: with this much room kept
            // reserved they still settle (about ten thousand of them) on a
            // full file system, while publishers are refused.
            reserve_bytes: super::JOURNAL_RESERVE_BYTES,
        };
        let (journal, replayed) = Journaled::<CursorImage>::open(&dir.join("cursor"), journal_config, Arc::clone(&clock))?;
        let (mut image, replayed) = (replayed.state, replayed.events);
        if let Some(first_start) = first_start {
            image.start = first_start;
        }
        let end = messages.high_watermark();
        // A journal ahead of the messages (a tail lost under a weaker
        // durability policy) must not settle messages published later at the
        // same offsets.
        let entries_before = image.entries.len();
        image.entries.retain(|offset, _| *offset < end);
        let ahead_of_messages = image.entries.len() != entries_before || image.start > end;
        image.start = image.start.min(end).max(messages.start_offset());
        let mut cursor = ShareCursor::restore(config.cursor, image);
        cursor.set_end(end);
        info!(
            queue = %dir.display(),
            start = cursor.start(),
            end,
            replayed,
            "queue opened"
        );
        let journal = Arc::new(journal);
        let writes = through(LocalWrites::new(messages.clone(), Arc::clone(&journal)));
        let queue = Queue {
            dir,
            config,
            messages,
            owns_messages,
            journal,
            writes,
            clock,
            state: Mutex::new(State { cursor }),
            snapshot: Arc::new(Mutex::new(false)),
            available: tokio::sync::Notify::new(),
        };
        if ahead_of_messages || first_start.is_some() {
            // The journal's events for the lost offsets would otherwise be
            // replayed again at the next open, onto new messages. A snapshot
            // of the trimmed state covers (and hides) them.
            // A first start is kept the same way.
            if ahead_of_messages {
                warn!(queue = %queue.dir.display(), end, "cursor state past the end of the message log discarded");
            }
            queue.write_snapshot()?;
        }
        Ok(queue)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The queue's clock's time (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Whether the message log is the queue's own (not another's it was
    /// opened over: a share group's partition, a stream's Kafka topic).
    pub fn owns_messages(&self) -> bool {
        self.owns_messages
    }

    /// Appends `records` as one batch; the future resolves with their offsets
    /// once durable. Consumers see them after that.
    pub fn publish(&self, records: Vec<Record>) -> Appending {
        let mut builder = BatchBuilder::new(self.clock.now_ms());
        for record in records {
            builder.push(record);
        }
        self.writes.append_messages(builder.build())
    }

    /// Hands `consumer` up to `max_messages` available messages, lowest
    /// offset first (on a priority queue, highest priority first), locked
    /// for `lock_ms`. Messages past the delivery limit
    /// come back in `dead_letters` instead.
    pub fn acquire(&self, consumer: ConsumerId, max_messages: usize, lock_ms: i64) -> Result<Deliveries, QueueError> {
        self.acquire_with(consumer, max_messages, lock_ms, true, Visibility::Durable)
    }

    /// [`Queue::acquire`] that may also hand out messages written but not
    /// yet durable (`Visibility::Written`), as RabbitMQ delivers a persistent
    /// message before its fsync. Sound because publishers are confirmed only
    /// once durable, and because reopening the queue after a crash discards
    /// the cursor state (deliveries, acks) of offsets the message log lost,
    /// so messages published later at those offsets are new
    /// (`acks_of_messages_delivered_before_their_fsync_do_not_settle_what_is_published_at_their_offsets_after_a_loss`).
    pub fn acquire_visible(
        &self,
        consumer: ConsumerId,
        max_messages: usize,
        lock_ms: i64,
        visibility: Visibility,
    ) -> Result<Deliveries, QueueError> {
        self.acquire_with(consumer, max_messages, lock_ms, true, visibility)
    }

    /// [`Queue::acquire`] without the message-group rule, for the broker's
    /// own acquisitions that settle at once (purging a queue).
    pub fn acquire_regardless_of_groups(&self, consumer: ConsumerId, max_messages: usize, lock_ms: i64) -> Result<Deliveries, QueueError> {
        self.acquire_with(consumer, max_messages, lock_ms, false, Visibility::Durable)
    }

    fn acquire_with(
        &self,
        consumer: ConsumerId,
        max_messages: usize,
        lock_ms: i64,
        grouped: bool,
        visibility: Visibility,
    ) -> Result<Deliveries, QueueError> {
        // The cursor's end counts written messages (so a consumer allowed to
        // see them can take them); `below` keeps the others to durable ones.
        let below = match visibility {
            Visibility::Durable => self.messages.high_watermark(),
            Visibility::Written => u64::MAX,
        };
        // The whole in-flight window is learned before acquiring: a priority
        // ranks every message there, and a message left unknown would wait
        // for a later call that a parked consumer might never make. Each
        // pass covers at least one offset and usually a whole read's worth.
        const PASSES_MAX: usize = 1024;
        for _ in 0..PASSES_MAX {
            let wanted = {
                let mut state = self.state.lock();
                state.cursor.truncate_to(self.messages.start_offset());
                state.cursor.set_end(self.messages.written());
                state.cursor.order_wanted()
            };
            let Some(range) = wanted else { break };
            // Read outside the state lock; telling a range twice (two
            // acquisitions racing here) tells the same facts.
            let (range, facts) = self.read_facts(range)?;
            let order = facts.into_iter().map(|fact| (fact.offset, fact.order));
            self.state.lock().cursor.learn_order(range, order);
        }
        let now_ms = self.clock.now_ms();
        let (acquisition, durable, first_delivered_ms) = {
            let mut state = self.state.lock();
            let acquisition = if grouped {
                state.cursor.acquire_below(consumer, max_messages, lock_ms, now_ms, below)
            } else {
                state.cursor.acquire_regardless_of_groups(consumer, max_messages, lock_ms, now_ms)
            };
            let durable = self.enqueue_events(&mut state);
            let first_delivered_ms: std::collections::HashMap<u64, i64> = acquisition
                .acquired
                .iter()
                .map(|acquired| (acquired.offset, state.cursor.first_acquired_ms(acquired.offset).unwrap_or(now_ms)))
                .collect();
            (acquisition, durable, first_delivered_ms)
        };
        let mut wanted: Vec<u64> = acquisition.acquired.iter().map(|acquired| acquired.offset).collect();
        wanted.extend(acquisition.archived.iter().map(|archived| archived.offset));
        wanted.sort_unstable();
        let mut records = self.read_records(&wanted)?;
        let mut messages = Vec::with_capacity(acquisition.acquired.len());
        let mut unreadable = Vec::new();
        for acquired in acquisition.acquired {
            match records.remove(&acquired.offset) {
                Some(record) => messages.push(Delivery {
                    offset: acquired.offset,
                    delivery_count: acquired.delivery_count,
                    first_delivered_ms: first_delivered_ms.get(&acquired.offset).copied().unwrap_or(now_ms),
                    record,
                }),
                None => unreadable.push(acquired.offset),
            }
        }
        let dead_letters = acquisition
            .archived
            .iter()
            .filter_map(|archived| {
                records.remove(&archived.offset).map(|record| Delivery {
                    offset: archived.offset,
                    delivery_count: archived.delivery_count,
                    first_delivered_ms: now_ms,
                    record,
                })
            })
            .collect();
        let durable = if unreadable.is_empty() {
            durable
        } else {
            // A message the log cannot give back (removed by retention
            // meanwhile, or not a record the broker wrote) would otherwise be
            // acquired and redelivered forever. It is archived instead.
            warn!(queue = %self.dir.display(), ?unreadable, "archiving messages that cannot be read");
            let mut state = self.state.lock();
            for &offset in &unreadable {
                let _ = state.cursor.reject(consumer, offset);
            }
            let later = self.enqueue_events(&mut state);
            drop(state);
            // Journal appends complete in order: the later one covers both.
            drop(durable);
            later
        };
        self.maybe_snapshot();
        Ok(Deliveries {
            messages,
            dead_letters,
            durable,
        })
    }

    /// [`Queue::acquire`] that reads no record: the offsets acquired (with
    /// their delivery counts, lowest first) and those archived past the
    /// delivery limit, for a caller that serves the log's stored batches
    /// itself (a Kafka share fetch). Durable messages only; no message
    /// groups or priorities (a partition's cursor has neither).
    pub fn acquire_offsets(&self, consumer: ConsumerId, max_messages: usize, lock_ms: i64) -> (Acquisition, Durable) {
        self.acquire_offsets_below(consumer, max_messages, lock_ms, u64::MAX)
    }

    /// [`Queue::acquire_offsets`] of offsets below `below` only (a reader
    /// that has vetted the log up to there, as a share group skipping
    /// transaction markers does).
    pub fn acquire_offsets_below(&self, consumer: ConsumerId, max_messages: usize, lock_ms: i64, below: u64) -> (Acquisition, Durable) {
        let now_ms = self.clock.now_ms();
        let mut state = self.state.lock();
        state.cursor.truncate_to(self.messages.start_offset());
        let end = self.messages.high_watermark();
        state.cursor.set_end(end);
        let acquisition = state.cursor.acquire_below(consumer, max_messages, lock_ms, now_ms, end.min(below));
        let durable = self.enqueue_events(&mut state);
        drop(state);
        self.maybe_snapshot();
        (acquisition, durable)
    }

    /// The consumer is done with the message; it is never delivered again.
    pub fn ack(&self, consumer: ConsumerId, offset: u64) -> Result<Durable, QueueError> {
        let durable = {
            let mut state = self.state.lock();
            state.cursor.ack(consumer, offset)?;
            self.enqueue_events(&mut state)
        };
        self.settled();
        self.maybe_snapshot();
        Ok(durable)
    }

    /// A settlement may unblock a message group: wake the consumers waiting
    /// for one (without message groups it frees nothing).
    fn settled(&self) {
        if self.config.cursor.message_groups {
            self.notify_available();
        }
    }

    /// Wakes consumers parked in [`Queue::available`].
    pub fn notify_available(&self) {
        self.available.notify_waiters();
    }

    /// Resolves when messages may have become available without the log
    /// growing: a release, a consumer leaving, an expired lock, a settled
    /// message of a group. Register interest before checking the queue.
    pub fn available(&self) -> tokio::sync::futures::Notified<'_> {
        self.available.notified()
    }

    /// The consumer gives the message back, to be delivered again no sooner
    /// than `delay_ms` from now. A delay is journaled without waiting: a
    /// crash before it is durable makes the message available at once.
    pub fn release(&self, consumer: ConsumerId, offset: u64, delay_ms: i64) -> Result<(), QueueError> {
        let now_ms = self.clock.now_ms();
        let mut state = self.state.lock();
        state.cursor.release(consumer, offset, delay_ms, now_ms)?;
        // Journal appends complete in order; nobody needs to wait for this one.
        drop(self.enqueue_events(&mut state));
        Ok(())
    }

    /// Gives back a message acquired but never handed over, to be delivered
    /// no sooner than `delay_ms` from now: that acquisition was no delivery,
    /// so its count goes back (resolved once journaled) and its
    /// first-delivery time is forgotten.
    pub fn defer(&self, consumer: ConsumerId, offset: u64, delay_ms: i64) -> Result<Durable, QueueError> {
        let now_ms = self.clock.now_ms();
        let mut state = self.state.lock();
        state.cursor.defer(consumer, offset, delay_ms, now_ms)?;
        Ok(self.enqueue_events(&mut state))
    }

    /// The consumer refuses the message for good: archived; the caller
    /// dead-letters it (it has the record from the acquisition).
    pub fn reject(&self, consumer: ConsumerId, offset: u64) -> Result<(Archived, Durable), QueueError> {
        let result = {
            let mut state = self.state.lock();
            let archived = state.cursor.reject(consumer, offset)?;
            (archived, self.enqueue_events(&mut state))
        };
        self.settled();
        self.maybe_snapshot();
        Ok(result)
    }

    /// Archives `offset` if no consumer holds it and it is not settled (a
    /// message that expired while waiting); the caller dead-letters it.
    pub fn archive_available(&self, offset: u64) -> Option<(Archived, Durable)> {
        let result = {
            let mut state = self.state.lock();
            state.cursor.set_end(self.messages.high_watermark());
            let archived = state.cursor.archive_available(offset)?;
            (archived, self.enqueue_events(&mut state))
        };
        self.settled();
        self.maybe_snapshot();
        Some(result)
    }

    /// Changes the delivery limit (from the next acquisition on).
    pub fn set_delivery_limit(&self, delivery_limit: Option<u32>) {
        self.state.lock().cursor.set_delivery_limit(delivery_limit);
    }

    /// Changes the in-flight window (from the next acquisition on).
    pub fn set_in_flight_max(&self, in_flight_max: u64) {
        self.state.lock().cursor.set_in_flight_max(in_flight_max);
    }

    /// Moves the consumer's lock deadline to `lock_ms` from now.
    pub fn renew(&self, consumer: ConsumerId, offset: u64, lock_ms: i64) -> Result<(), QueueError> {
        let now_ms = self.clock.now_ms();
        self.state.lock().cursor.renew(consumer, offset, lock_ms, now_ms)?;
        Ok(())
    }

    /// The consumer went away: its messages are available again.
    pub fn release_all(&self, consumer: ConsumerId) -> Vec<u64> {
        self.state.lock().cursor.release_all(consumer)
    }

    /// Ends the locks whose deadline has passed; returns their offsets.
    pub fn expire_locks(&self) -> Vec<u64> {
        let now_ms = self.clock.now_ms();
        self.state.lock().cursor.expire_locks(now_ms)
    }

    /// When [`Queue::expire_locks`] next has something to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.state.lock().cursor.next_deadline_ms()
    }

    /// Every offset below is acknowledged or archived.
    pub fn settled_below(&self) -> u64 {
        self.state.lock().cursor.start()
    }

    /// Whether `consumer` holds any message it has not settled.
    pub fn holds_any(&self, consumer: ConsumerId) -> bool {
        self.state.lock().cursor.holds_any(consumer)
    }

    /// Messages acquired by some consumer right now.
    pub fn acquired_count(&self) -> usize {
        self.state.lock().cursor.acquired_count()
    }

    /// The body bytes of the messages neither settled nor acquired, with
    /// byte counting on (else 0). Blocking: reads the sizes of messages
    /// published since the last call from the log.
    pub fn ready_bytes(&self) -> Result<u64, QueueError> {
        // Each pass covers at least one offset and usually a whole read's worth.
        const PASSES_MAX: usize = 1024;
        for _ in 0..PASSES_MAX {
            let wanted = {
                let mut state = self.state.lock();
                state.cursor.truncate_to(self.messages.start_offset());
                state.cursor.set_end(self.messages.high_watermark());
                state.cursor.sizes_wanted()
            };
            let Some(range) = wanted else { break };
            let (range, facts) = self.read_facts(range)?;
            let sizes = facts.into_iter().map(|fact| (fact.offset, fact.size));
            self.state.lock().cursor.learn_sizes(range, sizes);
        }
        Ok(self.state.lock().cursor.ready_bytes())
    }

    /// Messages neither settled nor acquired (SQS's ApproximateNumberOfMessages).
    pub fn available_count(&self) -> u64 {
        let mut state = self.state.lock();
        state.cursor.set_end(self.messages.high_watermark());
        state.cursor.available_count()
    }

    /// Available messages waiting out a retry delay (SQS's
    /// ApproximateNumberOfMessagesDelayed, as far as a receive has seen them).
    pub fn delayed_count(&self) -> u64 {
        self.state.lock().cursor.delayed_count()
    }

    /// The message log's high watermark.
    pub fn end(&self) -> u64 {
        self.messages.high_watermark()
    }

    /// Committed bytes of the message log.
    pub fn size_bytes(&self) -> u64 {
        self.messages.size_bytes()
    }

    /// Up to `max_messages` unsettled messages, lowest offset first, without
    /// acquiring them (an operator's peek): settled ones are skipped, held
    /// ones are included and say so. Blocking (reads the log).
    pub fn peek(&self, max_messages: usize) -> Result<Vec<Peeked>, QueueError> {
        const READS_MAX: usize = 64;
        let end = self.messages.high_watermark();
        let mut offset = self.settled_below().max(self.messages.start_offset());
        let mut peeked = Vec::new();
        // Bounded in reads: a long run of settled messages ends the peek early.
        for _ in 0..READS_MAX {
            if offset >= end || peeked.len() >= max_messages {
                break;
            }
            let read = match self.messages.read(offset, self.config.read_bytes_max, true) {
                Ok(read) => read,
                // Settled and removed meanwhile: start again from the new start.
                Err(conveyor_log::LogError::OffsetOutOfRange { start, .. }) if start > offset => {
                    offset = start;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let records = decode_batches(&read.bytes).map_err(|reason| QueueError::Journal {
                path: self.dir.join("messages"),
                reason,
            })?;
            let Some(next) = records
                .iter()
                .filter_map(|record| record.offset.and_then(|offset| u64::try_from(offset).ok()))
                .max()
            else {
                break;
            };
            let state = self.state.lock();
            for record in records {
                let Some(record_offset) = record.offset.and_then(|offset| u64::try_from(offset).ok()) else {
                    continue;
                };
                if record_offset < offset || state.cursor.is_settled(record_offset) || peeked.len() >= max_messages {
                    continue;
                }
                peeked.push(Peeked {
                    offset: record_offset,
                    delivery_count: state.cursor.delivery_count(record_offset),
                    acquired: state.cursor.holder(record_offset).is_some(),
                    record,
                });
            }
            drop(state);
            offset = next + 1;
        }
        Ok(peeked)
    }

    /// A receiver that changes when messages are published (durable);
    /// waiting consumers park on it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.messages.subscribe()
    }

    /// A receiver that changes when messages are written, durable or not:
    /// for consumers that acquire with `Visibility::Written`.
    pub fn subscribe_written(&self) -> tokio::sync::watch::Receiver<u64> {
        self.messages.subscribe_written()
    }

    /// Writes a cursor snapshot (if anything changed since the last one)
    /// and closes both logs. Blocking; a second call does nothing more.
    /// The message log.
    pub fn message_log(&self) -> &Log {
        &self.messages
    }

    /// The cursor journal's log.
    pub fn journal_log(&self) -> &Log {
        self.journal.log()
    }

    pub fn close(&self) -> Result<(), QueueError> {
        // A snapshot that cannot be written (a full file system) only makes
        // the next open replay more of the journal.
        if self.journal.has_events_after_snapshot()
            && let Err(error) = self.write_snapshot()
        {
            warn!(queue = %self.dir.display(), %error, "could not write the cursor snapshot on close; the next open replays the journal");
        }
        // Held while the logs close, so a snapshot still queued on a blocking
        // thread finds the queue closed and skips (this one covered it).
        let mut closed = self.snapshot.lock();
        *closed = true;
        self.journal.close()?;
        if self.owns_messages {
            self.messages.close()?;
        }
        Ok(())
    }

    /// Enqueues the cursor's pending events on the journal (through the
    /// queue's writes). Called with the state lock held, which makes the
    /// journal's order the cursor's.
    fn enqueue_events(&self, state: &mut State) -> Durable {
        let events = state.cursor.take_events();
        self.writes.append_cursor(&events)
    }

    /// Writes a cursor snapshot when one is due. Its image is taken here
    /// (memory only, under the state lock); its writing (an fsync, a file
    /// written and renamed, a directory fsync, prefix truncations of both
    /// logs) runs on a blocking thread when called inside an async runtime
    /// (an AMQP channel acks on its task), inline otherwise. Acks do not
    /// wait for it: their durability is the journal append's.
    fn maybe_snapshot(&self) {
        if !self.journal.claim_snapshot() {
            return;
        }
        let (image, journal_offset) = self.snapshot_image();
        let writer = SnapshotWriter {
            dir: self.dir.clone(),
            journal: Arc::clone(&self.journal),
            messages: self.owns_messages.then(|| self.messages.clone()),
            serial: Arc::clone(&self.snapshot),
        };
        let write = move || {
            if let Err(error) = writer.write(&image, journal_offset) {
                // Replay from the previous snapshot still works, only slower.
                warn!(queue = %writer.dir.display(), %error, "could not write the cursor snapshot");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(write)),
            Err(_) => write(),
        }
    }

    /// The cursor's image and the journal offset it covers. Events are
    /// enqueued under the state lock, so the image reflects exactly the
    /// journal below that offset.
    fn snapshot_image(&self) -> (CursorImage, u64) {
        let state = self.state.lock();
        (state.cursor.image(), self.journal.end())
    }

    /// Writes a snapshot of the current state now. Blocking.
    fn write_snapshot(&self) -> Result<(), QueueError> {
        let serial = self.snapshot.lock();
        let (image, journal_offset) = self.snapshot_image();
        let messages = self.owns_messages.then_some(&self.messages);
        SnapshotWriter::write_locked(&self.journal, messages, &image, journal_offset)?;
        drop(serial);
        Ok(())
    }

    /// The records (with their offsets) stamped at or after `timestamp_ms`,
    /// oldest first, at most `bytes_max` of them. Blocking.
    pub fn records_since(&self, timestamp_ms: i64, bytes_max: usize) -> Result<Vec<Record>, QueueError> {
        let Some((mut next, _)) = self.messages.offset_for_timestamp(timestamp_ms)? else {
            return Ok(Vec::new());
        };
        let mut records = Vec::new();
        let mut bytes = 0;
        // Each read moves `next` past at least one record or ends the loop.
        let reads_max = bytes_max / self.config.read_bytes_max.max(1) + 2;
        for _ in 0..reads_max {
            if next >= self.messages.high_watermark() || bytes >= bytes_max {
                break;
            }
            let read = match self.messages.read(next, self.config.read_bytes_max, true) {
                Ok(read) => read,
                Err(conveyor_log::LogError::OffsetOutOfRange { .. }) => break,
                Err(error) => return Err(error.into()),
            };
            bytes += read.bytes.len();
            let before = next;
            for record in decode_batches(&read.bytes).unwrap_or_default() {
                if let Some(offset) = record.offset.and_then(|offset| u64::try_from(offset).ok())
                    && offset >= next
                {
                    next = offset + 1;
                    if record.timestamp_ms.is_some_and(|at_ms| at_ms >= timestamp_ms) {
                        records.push(record);
                    }
                }
            }
            if next == before {
                break;
            }
        }
        Ok(records)
    }

    /// What the cursor learns of the messages at the offsets in `range`
    /// (groups, priorities, body sizes), as far as a bounded number of reads
    /// gets; returns the range covered (at least its first offset, so a
    /// caller always makes progress).
    fn read_facts(&self, range: Range<u64>) -> Result<(Range<u64>, Vec<Fact>), QueueError> {
        const READS_MAX: usize = 8;
        let mut facts = Vec::new();
        let mut next = range.start;
        for _ in 0..READS_MAX {
            if next >= range.end {
                break;
            }
            // Written, not only durable: the cursor's end counts written messages.
            let records = match self.messages.read_written(next, self.config.read_bytes_max, true) {
                Ok(read) => decode_batches(&read.bytes).unwrap_or_default(),
                Err(conveyor_log::LogError::OffsetOutOfRange { .. }) => Vec::new(),
                Err(error) => return Err(error.into()),
            };
            let before = next;
            for record in records {
                let Some(offset) = record.offset.and_then(|offset| u64::try_from(offset).ok()) else {
                    continue;
                };
                if offset >= next && offset < range.end {
                    let size = record
                        .value
                        .as_ref()
                        .map_or(0, |value| u32::try_from(value.len()).unwrap_or(u32::MAX));
                    // A priority the core cannot read counts as none.
                    let priority = crate::envelope::priority(&record);
                    let not_before_ms = crate::envelope::not_before_ms(&record);
                    facts.push(Fact {
                        offset,
                        order: OrderFacts {
                            group: record.key.unwrap_or_default(),
                            priority,
                            not_before_ms,
                        },
                        size,
                    });
                    next = offset + 1;
                }
            }
            if next == before {
                // Nothing readable there: it counts as the empty group.
                next += 1;
                break;
            }
        }
        Ok((range.start..next.min(range.end), facts))
    }

    /// The records at `offsets` (ascending) that the log still holds.
    fn read_records(&self, offsets: &[u64]) -> Result<std::collections::HashMap<u64, Record>, QueueError> {
        let mut found = std::collections::HashMap::with_capacity(offsets.len());
        let mut next = 0;
        // An acquisition is mostly a short run of adjacent offsets: read about
        // the bytes they span, not `read_bytes_max`, every record of which
        // would be checksummed and decoded (an SQS receive of 10 from a deep
        // queue read 1 MiB). A short read only costs another pass.
        let span = offsets.first().zip(offsets.last()).map_or(1, |(first, last)| last - first + 1);
        let read_bytes = usize::try_from(span)
            .unwrap_or(usize::MAX)
            .saturating_mul(READ_BYTES_PER_OFFSET)
            .min(self.config.read_bytes_max);
        // Each step settles at least `offsets[next]`, found or not.
        for _ in 0..offsets.len() {
            let Some(&offset) = offsets.get(next) else {
                break;
            };
            // Written, not only durable: an acquisition may have taken a
            // message not yet fsynced (and would archive it as unreadable).
            let records = match self.messages.read_written(offset, read_bytes, true) {
                Ok(read) => decode_batches(&read.bytes).unwrap_or_else(|reason| {
                    warn!(queue = %self.dir.display(), offset, %reason, "undecodable message batch");
                    Vec::new()
                }),
                // Removed by retention since the cursor looked.
                Err(conveyor_log::LogError::OffsetOutOfRange { .. }) => Vec::new(),
                Err(error) => return Err(error.into()),
            };
            for record in records {
                let Some(record_offset) = record.offset.and_then(|offset| u64::try_from(offset).ok()) else {
                    continue;
                };
                if offsets.binary_search(&record_offset).is_ok() {
                    found.insert(record_offset, record);
                }
            }
            next += 1;
            while offsets.get(next).is_some_and(|offset| found.contains_key(offset)) {
                next += 1;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;

    use crate::queue::CursorError;
    use crate::queue::policy::headers;

    const ALICE: ConsumerId = ConsumerId(1);
    const BOB: ConsumerId = ConsumerId(2);

    fn message(index: u64) -> Record {
        Record::new(None, Some(format!("message {index}").into_bytes()))
    }

    fn open(dir: &Path, config: QueueConfig, clock: &Arc<ManualClock>) -> Queue {
        let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
        Queue::open(dir, config, clock).expect("open queue")
    }

    fn publish(queue: &Queue, count: u64) {
        queue.publish((0..count).map(message).collect()).wait().expect("publish");
    }

    fn summary(deliveries: &[Delivery]) -> Vec<(u64, u32, Vec<u8>)> {
        deliveries
            .iter()
            .map(|delivery| {
                (
                    delivery.offset,
                    delivery.delivery_count,
                    delivery.record.value.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Copies a directory tree as a crash would leave it: whatever is on
    /// disk now, without the clean-shutdown markers a close writes.
    fn copy_tree(from: &Path, to: &Path, depth_max: u32) {
        assert!(depth_max > 0, "directory tree deeper than expected");
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("dir entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                copy_tree(&entry.path(), &target, depth_max - 1);
            } else {
                std::fs::copy(entry.path(), target).expect("copy");
            }
        }
    }

    #[test]
    fn peek_skips_settled_messages_shows_held_ones_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        publish(&queue, 4);
        let held = queue.acquire(ALICE, 3, 30_000).expect("acquire");
        queue.ack(ALICE, 0).expect("ack").wait().expect("durable");
        queue.ack(ALICE, 2).expect("ack").wait().expect("durable");
        let seen: Vec<(u64, u32, bool)> = queue
            .peek(10)
            .expect("peek")
            .iter()
            .map(|peeked| (peeked.offset, peeked.delivery_count, peeked.acquired))
            .collect();
        assert_eq!(seen, vec![(1, 1, true), (3, 0, false)]);
        assert_eq!(queue.peek(1).expect("peek").len(), 1);
        assert_eq!((queue.available_count(), queue.acquired_count()), (1, 1));
        drop(held);
        queue.close().expect("close");
    }

    #[test]
    fn published_messages_are_delivered_in_order_with_their_records_and_acks_settle_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        publish(&queue, 3);
        let deliveries = queue.acquire(ALICE, 2, 30_000).expect("acquire");
        assert_eq!(
            summary(&deliveries.messages),
            vec![(0, 1, b"message 0".to_vec()), (1, 1, b"message 1".to_vec())]
        );
        assert!(!deliveries.messages[0].redelivered());
        deliveries.durable.wait().expect("delivery counts durable");
        queue.ack(ALICE, 0).expect("ack").wait().expect("ack durable");
        assert!(matches!(
            queue.ack(BOB, 1),
            Err(QueueError::Cursor(CursorError::NotHolder { offset: 1, .. }))
        ));
        assert_eq!(queue.settled_below(), 1);
        let rest = queue.acquire(BOB, 10, 30_000).expect("acquire");
        assert_eq!(summary(&rest.messages), vec![(2, 1, b"message 2".to_vec())]);
        queue.close().expect("close");
    }

    #[test]
    fn unacked_message_is_redelivered_after_its_lock_expires_and_after_a_delayed_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        publish(&queue, 1);
        assert_eq!(queue.acquire(ALICE, 1, 1_000).expect("acquire").messages.len(), 1);
        assert!(queue.acquire(BOB, 1, 1_000).expect("acquire").messages.is_empty());
        clock.set_ms(1_000);
        let again = queue.acquire(BOB, 1, 1_000).expect("acquire");
        assert_eq!(summary(&again.messages), vec![(0, 2, b"message 0".to_vec())]);
        assert!(again.messages[0].redelivered());
        queue.release(BOB, 0, 5_000).expect("release");
        assert!(
            queue.acquire(ALICE, 1, 1_000).expect("acquire").messages.is_empty(),
            "retry is delayed"
        );
        clock.set_ms(6_000);
        assert_eq!(queue.acquire(ALICE, 1, 1_000).expect("acquire").messages[0].delivery_count, 3);
        queue.close().expect("close");
    }

    #[test]
    fn message_past_the_delivery_limit_is_handed_back_for_dead_lettering_even_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            cursor: ShareCursorConfig {
                delivery_limit: Some(2),
                ..ShareCursorConfig::default()
            },
            ..QueueConfig::default()
        };
        {
            let queue = open(dir.path(), config.clone(), &clock);
            publish(&queue, 2);
            for _ in 0..2 {
                let deliveries = queue.acquire(ALICE, 1, 1_000).expect("acquire");
                assert_eq!(deliveries.messages[0].offset, 0);
                deliveries.durable.wait().expect("durable");
                queue.release(ALICE, 0, 0).expect("release");
            }
            // No close: the delivery counts come from the journal alone.
        }
        let queue = open(dir.path(), config, &clock);
        let deliveries = queue.acquire(ALICE, 1, 1_000).expect("acquire");
        assert_eq!(summary(&deliveries.dead_letters), vec![(0, 2, b"message 0".to_vec())]);
        assert_eq!(summary(&deliveries.messages), vec![(1, 1, b"message 1".to_vec())]);
        deliveries.durable.wait().expect("durable");
        queue.close().expect("close");
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        assert_eq!(queue.settled_below(), 1, "the archived message stays archived");
        queue.close().expect("close");
    }

    #[test]
    fn after_a_crash_acked_messages_are_never_delivered_again_and_unacked_ones_return_with_their_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let crashed = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        publish(&queue, 6);
        let first = queue.acquire(ALICE, 4, 60_000).expect("acquire");
        first.durable.wait().expect("durable");
        // 0 and 2 acked, 1 released and acquired again by Bob, 3 still held by
        // Alice, 4 and 5 never delivered.
        queue.ack(ALICE, 0).expect("ack").wait().expect("durable");
        queue.ack(ALICE, 2).expect("ack").wait().expect("durable");
        queue.release(ALICE, 1, 0).expect("release");
        let second = queue.acquire(BOB, 1, 60_000).expect("acquire");
        assert_eq!(summary(&second.messages), vec![(1, 2, b"message 1".to_vec())]);
        second.durable.wait().expect("durable");

        copy_tree(dir.path(), crashed.path(), 4);
        let recovered = open(crashed.path(), QueueConfig::default(), &clock);
        assert_eq!(recovered.settled_below(), 1);
        let redelivered = recovered.acquire(BOB, 10, 60_000).expect("acquire");
        assert_eq!(
            summary(&redelivered.messages),
            vec![
                (1, 3, b"message 1".to_vec()),
                (3, 2, b"message 3".to_vec()),
                (4, 1, b"message 4".to_vec()),
                (5, 1, b"message 5".to_vec()),
            ]
        );
        recovered.close().expect("close");
        queue.close().expect("close");
    }

    #[test]
    fn cursor_survives_a_restart_from_a_snapshot_plus_the_journal_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            snapshot_every_records: 4,
            ..QueueConfig::default()
        };
        let queue = open(dir.path(), config.clone(), &clock);
        publish(&queue, 20);
        for round in 0..5u64 {
            let deliveries = queue.acquire(ALICE, 2, 60_000).expect("acquire");
            deliveries.durable.wait().expect("durable");
            // Ack the first of each pair; the second stays in flight.
            queue.ack(ALICE, round * 2).expect("ack").wait().expect("durable");
        }
        assert!(dir.path().join("cursor/snapshot.json").exists());
        drop(queue);
        let queue = open(dir.path(), config, &clock);
        let deliveries = queue.acquire(BOB, 100, 60_000).expect("acquire");
        let got: Vec<(u64, u32)> = deliveries
            .messages
            .iter()
            .map(|delivery| (delivery.offset, delivery.delivery_count))
            .collect();
        let mut want: Vec<(u64, u32)> = (0..5).map(|round| (round * 2 + 1, 2)).collect();
        want.extend((10..20).map(|offset| (offset, 1)));
        assert_eq!(got, want);
        queue.close().expect("close");
    }

    #[test]
    fn settled_prefix_of_the_message_log_is_dropped_when_a_snapshot_covers_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            // About one batch per segment, so settled segments can go.
            log: LogConfig {
                segment_bytes: 128,
                ..QueueConfig::default().log
            },
            ..QueueConfig::default()
        };
        let queue = open(dir.path(), config.clone(), &clock);
        for _ in 0..8 {
            publish(&queue, 1);
        }
        let deliveries = queue.acquire(ALICE, 8, 60_000).expect("acquire");
        assert_eq!(deliveries.messages.len(), 8);
        for offset in [0, 1, 2, 3, 5] {
            queue.ack(ALICE, offset).expect("ack").wait().expect("durable");
        }
        queue.close().expect("close");
        queue.close().expect("closing twice is harmless");
        let messages = Log::open(dir.path().join("messages"), config.log.clone()).expect("open messages");
        assert_eq!(messages.start_offset(), 4, "offsets below the first unsettled one are gone");
        assert!(messages.segment_count() < 8, "{} segments", messages.segment_count());
        messages.close().expect("close");
        let queue = open(dir.path(), config, &clock);
        let again = queue.acquire(BOB, 10, 60_000).expect("acquire");
        let got: Vec<(u64, u32)> = again
            .messages
            .iter()
            .map(|delivery| (delivery.offset, delivery.delivery_count))
            .collect();
        assert_eq!(got, vec![(4, 2), (6, 2), (7, 2)]);
        queue.close().expect("close");
    }

    #[test]
    fn ready_bytes_count_bodies_neither_acquired_nor_settled_and_are_relearned_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            cursor: ShareCursorConfig {
                count_bytes: true,
                ..ShareCursorConfig::default()
            },
            ..QueueConfig::default()
        };
        let queue = open(dir.path(), config.clone(), &clock);
        // "message 0" .. "message 3": 9 bytes each.
        publish(&queue, 4);
        assert_eq!(queue.ready_bytes().expect("bytes"), 36);
        let held = queue.acquire(ALICE, 2, 60_000).expect("acquire");
        assert_eq!(queue.ready_bytes().expect("bytes"), 18, "acquired messages are not ready");
        queue.ack(ALICE, held.messages[0].offset).expect("ack").wait().expect("durable");
        assert_eq!(queue.ready_bytes().expect("bytes"), 18);
        queue.release(ALICE, held.messages[1].offset, 0).expect("release");
        assert_eq!(queue.ready_bytes().expect("bytes"), 27, "a released message is ready again");
        queue.close().expect("close");
        let queue = open(dir.path(), config, &clock);
        assert_eq!(queue.ready_bytes().expect("bytes"), 27, "sizes are read again from the log");
        let plain = tempfile::tempdir().expect("tempdir");
        let uncounted = open(plain.path(), QueueConfig::default(), &clock);
        publish(&uncounted, 2);
        assert_eq!(uncounted.ready_bytes().expect("bytes"), 0, "no byte counting unless asked for");
    }

    #[test]
    fn message_groups_are_read_from_record_keys_and_relearned_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            cursor: ShareCursorConfig {
                message_groups: true,
                ..ShareCursorConfig::default()
            },
            ..QueueConfig::default()
        };
        let keyed = |key: &str, index: u64| Record::new(Some(key.as_bytes().to_vec()), message(index).value);
        let queue = open(dir.path(), config.clone(), &clock);
        queue
            .publish(vec![keyed("a", 0), keyed("b", 1), keyed("a", 2)])
            .wait()
            .expect("publish");
        let first = queue.acquire(ALICE, 1, 60_000).expect("acquire");
        assert_eq!(summary(&first.messages), vec![(0, 1, b"message 0".to_vec())]);
        let second = queue.acquire(BOB, 10, 60_000).expect("acquire");
        assert_eq!(summary(&second.messages), vec![(1, 1, b"message 1".to_vec())], "a is held by ALICE");
        queue.close().expect("close");
        // After a restart nothing is held: a's head comes again, then its next.
        let queue = open(dir.path(), config, &clock);
        let again = queue.acquire(BOB, 10, 60_000).expect("acquire");
        let offsets: Vec<u64> = again.messages.iter().map(|delivery| delivery.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2]);
        let waiting = queue.available();
        tokio::pin!(waiting);
        waiting.as_mut().enable();
        queue.ack(BOB, 0).expect("ack").wait().expect("durable");
        assert!(futures_ready(waiting), "a settled message of a group wakes waiting consumers");
        queue.close().expect("close");
    }

    #[test]
    fn priorities_are_read_from_the_priority_header_and_relearned_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            cursor: ShareCursorConfig {
                max_priority: 5,
                ..ShareCursorConfig::default()
            },
            ..QueueConfig::default()
        };
        let with_priority = |index: u64, priority: &str| message(index).with_header(headers::PRIORITY, Some(priority.as_bytes().to_vec()));
        let queue = open(dir.path(), config.clone(), &clock);
        // No header, a priority, one above the maximum, one unreadable (none).
        queue
            .publish(vec![
                message(0),
                with_priority(1, "2"),
                with_priority(2, "200"),
                with_priority(3, "high"),
            ])
            .wait()
            .expect("publish");
        let first = queue.acquire(ALICE, 2, 60_000).expect("acquire");
        let offsets: Vec<u64> = first.messages.iter().map(|delivery| delivery.offset).collect();
        assert_eq!(offsets, vec![2, 1]);
        queue.ack(ALICE, 2).expect("ack").wait().expect("durable");
        queue.close().expect("close");
        // After a restart offset 1 is available again and still outranks 0 and 3.
        let queue = open(dir.path(), config, &clock);
        let again = queue.acquire(BOB, 10, 60_000).expect("acquire");
        assert_eq!(
            summary(&again.messages),
            vec![
                (1, 2, b"message 1".to_vec()),
                (0, 1, b"message 0".to_vec()),
                (3, 1, b"message 3".to_vec())
            ]
        );
        queue.close().expect("close");
    }

    #[test]
    fn the_first_acquisition_knows_the_priorities_of_the_whole_window_however_many_reads_it_takes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            cursor: ShareCursorConfig {
                max_priority: 9,
                ..ShareCursorConfig::default()
            },
            // A read of the facts covers about one message.
            read_bytes_max: 64,
            ..QueueConfig::default()
        };
        let queue = open(dir.path(), config, &clock);
        // One batch each: a read returns whole batches.
        for index in 0..200 {
            queue.publish(vec![message(index)]).wait().expect("publish");
        }
        let last = message(200).with_header(headers::PRIORITY, Some(b"9".to_vec()));
        queue.publish(vec![last]).wait().expect("publish");
        let first = queue.acquire(ALICE, 2, 60_000).expect("acquire");
        let offsets: Vec<u64> = first.messages.iter().map(|delivery| delivery.offset).collect();
        assert_eq!(offsets, vec![200, 0]);
        queue.close().expect("close");
    }

    fn futures_ready(future: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
        let waker = std::task::Waker::noop();
        future.poll(&mut std::task::Context::from_waker(waker)).is_ready()
    }

    #[test]
    fn queue_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Queue>();
        assert_send_sync::<Durable>();
    }

    #[test]
    fn concurrent_consumers_lose_no_durable_ack_across_a_crash() {
        const THREADS: u64 = 4;
        const MESSAGES: u64 = 120;
        let dir = tempfile::tempdir().expect("tempdir");
        let crashed = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let config = QueueConfig {
            snapshot_every_records: 40,
            ..QueueConfig::default()
        };
        let queue = Arc::new(open(dir.path(), config.clone(), &clock));
        for batch in 0..MESSAGES / 10 {
            queue
                .publish((0..10).map(|index| message(batch * 10 + index)).collect())
                .wait()
                .expect("publish");
        }
        let acked = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let queue = Arc::clone(&queue);
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || {
                    // Every round takes at least one message or stops.
                    for _ in 0..MESSAGES {
                        let deliveries = queue.acquire(ConsumerId(thread), 3, 600_000).expect("acquire");
                        if deliveries.messages.is_empty() {
                            break;
                        }
                        deliveries.durable.wait().expect("durable");
                        for delivery in deliveries.messages {
                            assert_eq!(delivery.record.value, message(delivery.offset).value, "the record at its offset");
                            // Every third message stays in flight when the broker dies.
                            if delivery.offset % 3 != 0 {
                                queue
                                    .ack(ConsumerId(thread), delivery.offset)
                                    .expect("ack")
                                    .wait()
                                    .expect("durable");
                                acked.lock().insert(delivery.offset);
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("consumer thread");
        }
        assert_eq!(acked.lock().len() as u64, MESSAGES - MESSAGES / 3);

        copy_tree(dir.path(), crashed.path(), 4);
        let recovered = open(crashed.path(), config, &clock);
        assert_eq!(recovered.available_count(), MESSAGES / 3);
        let again = recovered.acquire(BOB, MESSAGES as usize, 600_000).expect("acquire");
        let got: Vec<(u64, u32)> = again
            .messages
            .iter()
            .map(|delivery| (delivery.offset, delivery.delivery_count))
            .collect();
        let want: Vec<(u64, u32)> = (0..MESSAGES).filter(|offset| offset % 3 == 0).map(|offset| (offset, 2)).collect();
        assert_eq!(got, want, "exactly the unacked messages come back, each delivered once before");
        recovered.close().expect("close");
        queue.close().expect("close");
    }

    #[test]
    fn acks_after_a_lost_journal_tail_are_not_hidden_behind_an_older_snapshot_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        publish(&queue, 4);
        queue.acquire(ALICE, 2, 60_000).expect("acquire");
        queue.ack(ALICE, 0).expect("ack").wait().expect("durable");
        queue.close().expect("close");
        // The journal's records vanish (as its tail can under `never`), so
        // the snapshot now says it covers offsets the journal no longer has.
        std::fs::remove_dir_all(dir.path().join("cursor/log")).expect("remove journal");
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        let deliveries = queue.acquire(ALICE, 1, 60_000).expect("acquire");
        assert_eq!(summary(&deliveries.messages), vec![(1, 2, b"message 1".to_vec())]);
        queue.ack(ALICE, 1).expect("ack").wait().expect("durable");
        drop(queue);
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        assert_eq!(queue.settled_below(), 2, "the ack written after the loss is replayed");
        queue.close().expect("close");
    }

    #[test]
    fn a_lost_message_tail_does_not_settle_the_messages_later_published_at_its_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        {
            let queue = open(dir.path(), QueueConfig::default(), &clock);
            publish(&queue, 4);
            queue.acquire(ALICE, 4, 60_000).expect("acquire");
            for offset in 0..4 {
                queue.ack(ALICE, offset).expect("ack").wait().expect("durable");
            }
            // Dropped without a snapshot: the acks live in the journal only.
        }
        // The messages vanish (as an unsynced tail can under `never`) while
        // the journal keeps its acks for offsets 0..4.
        std::fs::remove_dir_all(dir.path().join("messages")).expect("remove messages");
        {
            let queue = open(dir.path(), QueueConfig::default(), &clock);
            assert_eq!(queue.settled_below(), 0);
            publish(&queue, 3);
        }
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        let deliveries = queue.acquire(BOB, 10, 60_000).expect("acquire");
        let got: Vec<(u64, u32)> = deliveries
            .messages
            .iter()
            .map(|delivery| (delivery.offset, delivery.delivery_count))
            .collect();
        assert_eq!(got, vec![(0, 1), (1, 1), (2, 1)], "the new messages are new");
        queue.close().expect("close");
    }

    #[test]
    fn acks_of_messages_delivered_before_their_fsync_do_not_settle_what_is_published_at_their_offsets_after_a_loss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        {
            let queue = open(dir.path(), QueueConfig::default(), &clock);
            for index in 0..3 {
                queue.publish(vec![message(index)]).wait().expect("publish");
            }
            // A consumer that may see written messages (AMQP's) takes and acks all three.
            let taken = queue.acquire_visible(ALICE, 3, 60_000, Visibility::Written).expect("acquire");
            assert_eq!(taken.messages.len(), 3);
            for offset in 0..3 {
                queue.ack(ALICE, offset).expect("ack").wait().expect("durable");
            }
            // Dropped without a snapshot: the acks live in the journal only.
        }
        // A power loss before the fsync of the last two messages: only the
        // first batch is on disk, and no clean-shutdown marker or index
        // vouches for more.
        let messages = dir.path().join("messages");
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&messages)
            .expect("messages dir")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        segments.retain(|path| path.extension().is_some_and(|extension| extension == "log"));
        assert_eq!(segments.len(), 1, "one segment: {segments:?}");
        let bytes = std::fs::read(&segments[0]).expect("read segment");
        let first_batch_bytes = 12 + u32::from_be_bytes(bytes[8..12].try_into().expect("batch length")) as u64;
        let file = std::fs::OpenOptions::new().write(true).open(&segments[0]).expect("open segment");
        file.set_len(first_batch_bytes).expect("cut the unsynced tail");
        for entry in std::fs::read_dir(&messages).expect("messages dir").filter_map(Result::ok) {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|extension| extension == "index" || extension == "timeindex")
                || path.file_name().is_some_and(|name| name == ".clean-shutdown")
            {
                std::fs::remove_file(&path).expect("remove");
            }
        }
        {
            let queue = open(dir.path(), QueueConfig::default(), &clock);
            assert_eq!(queue.end(), 1, "the log recovered its durable prefix");
            assert_eq!(queue.settled_below(), 1, "the ack of the message that survived stands");
            for index in 10..12 {
                queue.publish(vec![message(index)]).wait().expect("publish");
            }
        }
        let queue = open(dir.path(), QueueConfig::default(), &clock);
        let deliveries = queue.acquire_visible(BOB, 10, 60_000, Visibility::Written).expect("acquire");
        assert_eq!(
            summary(&deliveries.messages),
            vec![(1, 1, b"message 10".to_vec()), (2, 1, b"message 11".to_vec())],
            "the messages published at the lost offsets are new, not settled by the old acks"
        );
        queue.close().expect("close");
    }

    mod crash_model {
        //! The queue against a whole-log model through random operations,
        //! crashes (the directory copied as it is on disk) and clean
        //! restarts, with snapshots and message-log trimming at random
        //! intervals; on a priority queue too, whose order the model knows
        //! from the priority each message was published with.

        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Held {
            Available,
            Acquired(ConsumerId),
            Settled,
        }

        #[derive(Debug, Clone)]
        enum Op {
            /// Messages, with a priority.
            Publish(u64, u8),
            Acquire {
                consumer: u64,
                max: usize,
            },
            Ack {
                consumer: u64,
                offset: u64,
            },
            Release {
                consumer: u64,
                offset: u64,
            },
            Reject {
                consumer: u64,
                offset: u64,
            },
            ReleaseAll {
                consumer: u64,
            },
            Crash,
            Restart,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                2 => (1u64..4, 0u8..4).prop_map(|(count, priority)| Op::Publish(count, priority)),
                3 => (0u64..2, 0usize..4).prop_map(|(consumer, max)| Op::Acquire { consumer, max }),
                3 => (0u64..2, 0u64..16).prop_map(|(consumer, offset)| Op::Ack { consumer, offset }),
                1 => (0u64..2, 0u64..16).prop_map(|(consumer, offset)| Op::Release { consumer, offset }),
                1 => (0u64..2, 0u64..16).prop_map(|(consumer, offset)| Op::Reject { consumer, offset }),
                1 => (0u64..2).prop_map(|consumer| Op::ReleaseAll { consumer }),
                1 => Just(Op::Crash),
                1 => Just(Op::Restart),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn queue_after_crashes_and_restarts_matches_the_model(
                ops in proptest::collection::vec(op(), 1..40),
                snapshot_every_records in 1u64..8,
                delivery_limit in proptest::option::of(1u32..3),
                max_priority in prop_oneof![Just(0u8), Just(2u8)],
            ) {
                let clock = ManualClock::new(0);
                let config = QueueConfig {
                    log: LogConfig { segment_bytes: 128, ..QueueConfig::default().log },
                    cursor: ShareCursorConfig { delivery_limit, max_priority, ..ShareCursorConfig::default() },
                    snapshot_every_records,
                    ..QueueConfig::default()
                };
                let mut dirs = vec![tempfile::tempdir().expect("tempdir")];
                let mut queue = Some(open(dirs[0].path(), config.clone(), &clock));
                let mut model: Vec<(Held, u32)> = Vec::new();
                // Each offset's priority as published.
                let mut priorities: Vec<u8> = Vec::new();
                for op in ops {
                    let Some(current) = queue.as_ref() else { break };
                    match op {
                        Op::Publish(count, priority) => {
                            let first = model.len() as u64;
                            let records = (first..first + count)
                                .map(|index| message(index).with_header(headers::PRIORITY, Some(priority.to_string().into_bytes())))
                                .collect();
                            current.publish(records).wait().expect("publish");
                            model.extend((0..count).map(|_| (Held::Available, 0)));
                            priorities.extend((0..count).map(|_| priority));
                        }
                        Op::Acquire { consumer, max } => {
                            let deliveries = current.acquire(ConsumerId(consumer), max, 600_000).expect("acquire");
                            deliveries.durable.wait().expect("durable");
                            let mut want = Vec::new();
                            let mut want_dead = Vec::new();
                            // Highest priority (at most the maximum) first, then by offset.
                            let mut order: Vec<usize> = (0..model.len()).collect();
                            order.sort_by_key(|offset| (std::cmp::Reverse(priorities[*offset].min(max_priority)), *offset));
                            for offset in order {
                                let (held, count) = &mut model[offset];
                                if want.len() >= max {
                                    break;
                                }
                                if *held != Held::Available {
                                    continue;
                                }
                                if delivery_limit.is_some_and(|limit| *count + 1 > limit) {
                                    *held = Held::Settled;
                                    want_dead.push((offset as u64, *count));
                                    continue;
                                }
                                *held = Held::Acquired(ConsumerId(consumer));
                                *count += 1;
                                want.push((offset as u64, *count));
                            }
                            for delivery in deliveries.messages.iter().chain(&deliveries.dead_letters) {
                                prop_assert_eq!(&delivery.record.value, &message(delivery.offset).value);
                            }
                            let got: Vec<(u64, u32)> = deliveries.messages.iter().map(|d| (d.offset, d.delivery_count)).collect();
                            let got_dead: Vec<(u64, u32)> = deliveries.dead_letters.iter().map(|d| (d.offset, d.delivery_count)).collect();
                            prop_assert_eq!(got, want);
                            prop_assert_eq!(got_dead, want_dead);
                        }
                        Op::Ack { consumer, offset } | Op::Reject { consumer, offset } | Op::Release { consumer, offset } => {
                            let holds = model.get(offset as usize).is_some_and(|(held, _)| *held == Held::Acquired(ConsumerId(consumer)));
                            let ok = match op {
                                Op::Ack { .. } => current.ack(ConsumerId(consumer), offset).map(|durable| durable.wait().expect("durable")).is_ok(),
                                Op::Reject { .. } => current.reject(ConsumerId(consumer), offset).map(|(_, durable)| durable.wait().expect("durable")).is_ok(),
                                _ => current.release(ConsumerId(consumer), offset, 0).is_ok(),
                            };
                            prop_assert_eq!(ok, holds, "{:?}", op);
                            if holds {
                                model[offset as usize].0 = if matches!(op, Op::Release { .. }) { Held::Available } else { Held::Settled };
                            }
                        }
                        Op::ReleaseAll { consumer } => {
                            let mut want = Vec::new();
                            for (offset, (held, _)) in model.iter_mut().enumerate() {
                                if *held == Held::Acquired(ConsumerId(consumer)) {
                                    *held = Held::Available;
                                    want.push(offset as u64);
                                }
                            }
                            prop_assert_eq!(current.release_all(ConsumerId(consumer)), want);
                        }
                        Op::Crash | Op::Restart => {
                            let from = dirs.last().expect("a directory").path().to_owned();
                            let previous = queue.take().expect("open queue");
                            let to = if matches!(op, Op::Crash) {
                                let crashed = tempfile::tempdir().expect("tempdir");
                                copy_tree(&from, crashed.path(), 4);
                                let to = crashed.path().to_owned();
                                dirs.push(crashed);
                                drop(previous);
                                to
                            } else {
                                previous.close().expect("close");
                                from
                            };
                            queue = Some(open(&to, config.clone(), &clock));
                            for (held, _) in &mut model {
                                if matches!(held, Held::Acquired(_)) {
                                    *held = Held::Available;
                                }
                            }
                        }
                    }
                    let Some(current) = queue.as_ref() else { break };
                    let start = model.iter().position(|(held, _)| *held != Held::Settled).unwrap_or(model.len()) as u64;
                    prop_assert_eq!(current.settled_below(), start);
                    let available = model.iter().filter(|(held, _)| *held == Held::Available).count() as u64;
                    prop_assert_eq!(current.available_count(), available);
                }
                if let Some(current) = queue {
                    current.close().expect("close");
                }
            }
        }
    }
}
