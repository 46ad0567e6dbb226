//! The share cursor: the delivery state of every message of one queue's log
//! (Kafka KIP-932's share-partition states: available → acquired →
//! acknowledged | archived), delivery counts and acquisition locks. A pure,
//! synchronous state machine: no I/O, time passed in as `now_ms`. It records
//! the changes that must survive a crash as [`JournalEvent`]s for the caller
//! to persist; it knows nothing of files, records or protocols.
//!
//! State is kept for the unsettled window only: everything below `start` is
//! acknowledged or archived and forgotten, offsets at or above `fresh` that
//! have no entry were never delivered, and only offsets with an entry in
//! `entries` have a state other than "available, never delivered".
//!
//! With message groups on (SQS FIFO queues), every message belongs to the
//! group its record key names, and a group delivers in offset order, one
//! acquisition at a time: while any message of a group is acquired or waits
//! out a delayed retry, no other message of that group is handed out (an
//! acquisition may take several messages of a group, in order). The cursor
//! learns each offset's group from the caller ([`ShareCursor::learn_order`])
//! before it may deliver it.
//!
//! With priorities on (a queue with `x-max-priority`, and no message groups),
//! an acquisition takes the available messages of the highest priority
//! first, lowest offset first within a priority. Each offset's priority is
//! learned with its group ([`ShareCursor::learn_order`]); a message whose
//! priority is not known yet is not delivered. The in-flight window still
//! applies: a message past it waits for the head to settle, whatever its
//! priority.
//!
//! With delays on (an SQS queue), a message may carry a not-before time,
//! learned with its order ([`OrderFacts::not_before_ms`]): it is not
//! acquired before then, so an early acquisition never counts as a
//! delivery. A message given back with a retry delay waits the same way;
//! that not-before time is journaled ([`JournalEvent::Delayed`]).
//!
//! With byte counting on (a queue with `x-max-length-bytes`), the cursor
//! also keeps the body size of every unsettled message, learned the same
//! way ([`ShareCursor::learn_sizes`]), so it can tell the bytes of the
//! messages ready for delivery.
//!
//! The delivery order (groups, priorities, delays) is `share_cursor/ordering.rs`;
//! the durable image (journal events, snapshots, restore) is
//! `share_cursor/image.rs`.

mod image;
mod ordering;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use image::{CursorImage, DurableState, JournalEvent};
pub use ordering::{GroupKey, OrderFacts};

/// Who holds an acquisition: an AMQP consumer (channel + consumer tag), an
/// SQS receive, a Kafka share-group member. The front door picks the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConsumerId(pub u64);

/// Settings of one share cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareCursorConfig {
    /// A message is delivered at most this many times; the acquisition that
    /// would exceed it archives the message instead (dead-lettering). `None`
    /// redelivers forever. A limit of 0 is treated as 1.
    pub delivery_limit: Option<u32>,
    /// At most this many offsets between the start and the newest delivered
    /// offset (KIP-932's `group.share.partition.max.record.locks`): bounds the
    /// cursor's memory when a message at the head is never settled.
    pub in_flight_max: u64,
    /// Deliver each message group (record key) in order, one acquisition at
    /// a time (see the module documentation).
    pub message_groups: bool,
    /// Keep the body size of every unsettled message (see
    /// [`ShareCursor::ready_bytes`]).
    pub count_bytes: bool,
    /// The highest message priority (`x-max-priority`); higher ones count
    /// as this. 0 is no priorities, as is having message groups (see the
    /// module documentation).
    pub max_priority: u8,
    /// Messages may carry a not-before time the cursor learns before
    /// delivering them (see the module documentation).
    pub delays: bool,
}

impl Default for ShareCursorConfig {
    fn default() -> ShareCursorConfig {
        ShareCursorConfig {
            delivery_limit: None,
            in_flight_max: 100_000,
            message_groups: false,
            count_bytes: false,
            max_priority: 0,
            delays: false,
        }
    }
}

impl ShareCursorConfig {
    /// Whether acquisitions go by priority.
    fn ranked(&self) -> bool {
        self.max_priority > 0 && !self.message_groups
    }
}

/// One message handed to a consumer by [`ShareCursor::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub offset: u64,
    /// Deliveries so far, this one included: 1 on the first delivery, so
    /// `delivery_count > 1` is AMQP's `redelivered` flag.
    pub delivery_count: u32,
}

/// A message archived (dead): rejected by its consumer or past the delivery
/// limit. The caller dead-letters it if the queue says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archived {
    pub offset: u64,
    pub delivery_count: u32,
}

/// What one [`ShareCursor::acquire`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acquisition {
    /// Handed to the consumer, in delivery order: lowest offset first (with
    /// priorities, highest priority first).
    pub acquired: Vec<Acquired>,
    /// Archived instead of delivered because the delivery limit was reached.
    pub archived: Vec<Archived>,
}

/// A request the cursor refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("offset {offset} is not a message of this queue awaiting settlement")]
    UnknownOffset { offset: u64 },
    #[error("offset {offset} is not acquired")]
    NotAcquired { offset: u64 },
    #[error("offset {offset} is not held by consumer {}", consumer.0)]
    NotHolder { offset: u64, consumer: ConsumerId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Deliverable, but not before `not_before_ms` (a delayed retry).
    Available {
        not_before_ms: i64,
    },
    Acquired {
        consumer: ConsumerId,
        deadline_ms: i64,
    },
    Acknowledged,
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    state: State,
    delivery_count: u32,
}

/// The delivery state of one queue. See the module documentation.
#[derive(Debug)]
pub struct ShareCursor {
    config: ShareCursorConfig,
    /// Everything below is acknowledged or archived.
    start: u64,
    /// The log's high watermark: offsets at or above do not exist yet.
    end: u64,
    /// Offsets at or above without an entry were never delivered.
    fresh: u64,
    entries: BTreeMap<u64, Entry>,
    /// Indexes over `entries`, kept in step by `set_state`: available entries
    /// deliverable now, available entries delayed (by not-before time), and
    /// acquisitions by deadline and by consumer.
    ready: BTreeSet<u64>,
    /// With priorities: the ready offsets whose priority is known (below
    /// `order_known_end`), highest priority first, then lowest offset.
    ready_ranked: BTreeSet<(Reverse<u8>, u64)>,
    delayed: BTreeSet<(i64, u64)>,
    locks: BTreeSet<(i64, u64)>,
    held: HashMap<ConsumerId, BTreeSet<u64>>,
    /// Changes not yet taken by the journal.
    events: Vec<JournalEvent>,
    /// With message groups: the group of every unsettled offset below
    /// `order_known_end` (settled ones are forgotten). Offsets at or above
    /// it are not delivered until the caller has told their groups (and
    /// priorities).
    groups: HashMap<u64, GroupKey>,
    /// With priorities: the priority (at most the maximum) of every
    /// unsettled offset below `order_known_end` that has one above 0.
    priorities: HashMap<u64, u8>,
    /// With delays: the not-before time of every never-acquired offset
    /// below `order_known_end` that has one.
    not_before: HashMap<u64, i64>,
    order_known_end: u64,
    /// When each unsettled message was first acquired (SQS's
    /// ApproximateFirstReceiveTimestamp). Not durable: after a restart, the
    /// first acquisition since.
    first_acquired_ms: HashMap<u64, i64>,
    /// With byte counting: what the caller told of message sizes.
    sizes: Sizes,
}

/// The body size of every unsettled offset below `known_end` whose size the
/// caller told (settled ones are forgotten), and their sum.
#[derive(Debug, Default)]
struct Sizes {
    by_offset: HashMap<u64, u32>,
    known_end: u64,
    total: u64,
}

impl Sizes {
    fn forget(&mut self, offset: u64) {
        if let Some(size) = self.by_offset.remove(&offset) {
            self.total -= u64::from(size);
        }
    }

    fn forget_below(&mut self, offset: u64) {
        let total = &mut self.total;
        self.by_offset.retain(|known, size| {
            let keep = *known >= offset;
            if !keep {
                *total -= u64::from(*size);
            }
            keep
        });
    }
}

impl ShareCursor {
    /// An empty cursor at offset 0.
    pub fn new(config: ShareCursorConfig) -> ShareCursor {
        ShareCursor::restore(config, CursorImage::default())
    }

    pub fn config(&self) -> ShareCursorConfig {
        self.config
    }

    /// Changes the delivery limit; messages delivered more often already are
    /// archived at their next acquisition.
    pub fn set_delivery_limit(&mut self, delivery_limit: Option<u32>) {
        self.config.delivery_limit = delivery_limit;
    }

    /// Changes the in-flight window; a smaller one delivers no new offset
    /// until the start moves into it, what is in flight stays so.
    pub fn set_in_flight_max(&mut self, in_flight_max: u64) {
        self.config.in_flight_max = in_flight_max.max(1);
    }

    /// Every offset below is acknowledged or archived.
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Tells the cursor the log's high watermark. It never moves back.
    pub fn set_end(&mut self, end: u64) {
        self.end = self.end.max(end);
    }

    /// Forgets everything below `offset` because the log no longer holds it
    /// (retention removed it). Acquisitions below it end without an event.
    pub fn truncate_to(&mut self, offset: u64) {
        if offset <= self.start {
            return;
        }
        let below: Vec<u64> = self.entries.range(..offset).map(|(offset, _)| *offset).collect();
        for gone in below {
            self.remove_entry(gone);
        }
        self.groups.retain(|known, _| *known >= offset);
        self.priorities.retain(|known, _| *known >= offset);
        self.not_before.retain(|known, _| *known >= offset);
        self.sizes.forget_below(offset);
        self.start = offset;
        self.end = self.end.max(offset);
        self.advance_start();
    }

    /// Messages currently acquired by anyone.
    pub fn acquired_count(&self) -> usize {
        self.locks.len()
    }

    /// Messages neither settled nor acquired: deliverable now, after a
    /// delayed retry, or once the in-flight window lets them through (SQS's
    /// ApproximateNumberOfMessages).
    pub fn available_count(&self) -> u64 {
        // Offsets at or above `fresh` were never delivered unless they have
        // an entry (possible after a restore); those with one are counted by
        // the indexes or are settled.
        let end = self.end.max(self.fresh);
        let never_delivered = end - self.fresh;
        let with_entry = self.entries.range(self.fresh..end).count() as u64;
        (self.ready.len() + self.delayed.len()) as u64 + never_delivered.saturating_sub(with_entry)
    }

    /// Messages available but not before a retry delay ends (part of
    /// [`ShareCursor::available_count`]).
    pub fn delayed_count(&self) -> u64 {
        self.delayed.len() as u64
    }

    /// When `offset` was first acquired (in this process), if it is unsettled.
    pub fn first_acquired_ms(&self, offset: u64) -> Option<i64> {
        self.first_acquired_ms.get(&offset).copied()
    }

    /// The changes since the last call, oldest first, for the journal.
    pub fn take_events(&mut self) -> Vec<JournalEvent> {
        std::mem::take(&mut self.events)
    }

    /// Hands `consumer` up to `max_messages` of the lowest available offsets
    /// below the end, locked until `now_ms + lock_ms`, each with its delivery
    /// count incremented. Expired locks and elapsed delays are applied first.
    /// A message whose count would pass the delivery limit is archived and
    /// reported instead of delivered. With message groups, messages of a
    /// group that is held or waiting out a retry delay are passed over. With
    /// priorities, the highest priority comes first, then the lowest offset.
    pub fn acquire(&mut self, consumer: ConsumerId, max_messages: usize, lock_ms: i64, now_ms: i64) -> Acquisition {
        self.acquire_with(consumer, max_messages, lock_ms, now_ms, true, u64::MAX)
    }

    /// [`ShareCursor::acquire`] of offsets below `below` only: for a reader
    /// that may hand out only durable messages while the end also counts
    /// messages written but not yet durable (which another reader may take).
    pub fn acquire_below(&mut self, consumer: ConsumerId, max_messages: usize, lock_ms: i64, now_ms: i64, below: u64) -> Acquisition {
        self.acquire_with(consumer, max_messages, lock_ms, now_ms, true, below)
    }

    /// [`ShareCursor::acquire`] without the message-group rule or delays:
    /// for the broker's own acquisitions that settle at once (purging).
    pub fn acquire_regardless_of_groups(&mut self, consumer: ConsumerId, max_messages: usize, lock_ms: i64, now_ms: i64) -> Acquisition {
        self.acquire_with(consumer, max_messages, lock_ms, now_ms, false, u64::MAX)
    }

    fn acquire_with(
        &mut self,
        consumer: ConsumerId,
        max_messages: usize,
        lock_ms: i64,
        now_ms: i64,
        ordered: bool,
        below: u64,
    ) -> Acquisition {
        self.expire_locks(now_ms);
        if !ordered {
            // The broker's own acquisitions (a purge) take delayed messages too.
            let waiting: Vec<u64> = self.delayed.iter().map(|(_, offset)| *offset).collect();
            for offset in waiting {
                let delivery_count = self.delivery_count(offset);
                self.set_state(offset, State::Available { not_before_ms: i64::MIN }, delivery_count);
            }
        }
        let delayed = ordered && self.config.delays;
        if self.config.ranked() {
            return self.acquire_ranked(consumer, max_messages, lock_ms, now_ms, below, delayed);
        }
        let grouped = ordered && self.config.message_groups;
        let mut acquisition = Acquisition::default();
        let deadline_ms = now_ms.saturating_add(lock_ms.max(0));
        let mut blocked = if grouped { self.blocked_groups() } else { HashSet::new() };
        // Each pass takes or passes over one ready offset or one fresh offset;
        // fresh offsets passed over are bounded by the in-flight window.
        let skips_max = if grouped || delayed {
            self.config.in_flight_max as usize
        } else {
            0
        };
        let passes_max = self.ready.len().saturating_add(max_messages).saturating_add(skips_max);
        // Ready offsets below this were passed over in this call.
        let mut ready_from = 0;
        for _ in 0..passes_max {
            if acquisition.acquired.len() >= max_messages {
                break;
            }
            let ready = self.ready.range(ready_from..).next().copied();
            let fresh = self.next_fresh();
            let offset = match (ready, fresh) {
                (Some(ready), Some(fresh)) => ready.min(fresh),
                (Some(offset), None) | (None, Some(offset)) => offset,
                (None, None) => break,
            };
            if offset >= below {
                // Ready and fresh offsets are taken lowest first: none is left below.
                break;
            }
            ready_from = offset + 1;
            if (grouped || delayed) && offset >= self.order_known_end {
                break;
            }
            if delayed && self.wait_if_early(offset, now_ms) {
                if fresh == Some(offset) {
                    self.fresh = offset + 1;
                }
                if grouped {
                    // Later messages of its group wait behind it.
                    blocked.insert(self.groups.get(&offset).cloned().unwrap_or_default());
                }
                continue;
            }
            if grouped && blocked.contains(self.groups.get(&offset).map(Vec::as_slice).unwrap_or_default()) {
                if fresh == Some(offset) {
                    // Remembered as available, so later calls find it among the ready ones.
                    self.fresh = offset + 1;
                    self.set_state(offset, State::Available { not_before_ms: i64::MIN }, 0);
                }
                continue;
            }
            if fresh == Some(offset) {
                self.fresh = offset + 1;
            }
            self.take(offset, consumer, deadline_ms, now_ms, &mut acquisition);
        }
        self.advance_start();
        acquisition
    }

    /// Delivers `offset` to `consumer`, or archives it instead if this
    /// delivery would pass the delivery limit.
    fn take(&mut self, offset: u64, consumer: ConsumerId, deadline_ms: i64, now_ms: i64, acquisition: &mut Acquisition) {
        let delivery_count = self
            .entries
            .get(&offset)
            .map(|entry| entry.delivery_count)
            .unwrap_or(0)
            .saturating_add(1);
        if self.config.delivery_limit.is_some_and(|limit| delivery_count > limit.max(1)) {
            let delivery_count = delivery_count - 1;
            self.set_state(offset, State::Archived, delivery_count);
            self.events.push(JournalEvent::Archived { offset, delivery_count });
            acquisition.archived.push(Archived { offset, delivery_count });
            return;
        }
        self.set_state(offset, State::Acquired { consumer, deadline_ms }, delivery_count);
        // Due, or it would not be taken: its not-before time is spent.
        self.not_before.remove(&offset);
        self.first_acquired_ms.entry(offset).or_insert(now_ms);
        self.events.push(JournalEvent::Delivered { offset, delivery_count });
        acquisition.acquired.push(Acquired { offset, delivery_count });
    }

    /// With byte counting: the offsets whose sizes the caller should tell
    /// ([`ShareCursor::learn_sizes`]) before [`ShareCursor::ready_bytes`]
    /// counts them, if any.
    pub fn sizes_wanted(&self) -> Option<std::ops::Range<u64>> {
        let from = self.sizes.known_end.max(self.start);
        (self.config.count_bytes && from < self.end).then_some(from..self.end)
    }

    /// Tells the cursor the body sizes of the offsets in `range` (which
    /// starts at or below where [`ShareCursor::sizes_wanted`] starts);
    /// offsets not listed count as empty.
    pub fn learn_sizes(&mut self, range: std::ops::Range<u64>, sizes: impl IntoIterator<Item = (u64, u32)>) {
        if !self.config.count_bytes || range.start > self.sizes.known_end.max(self.start) {
            return;
        }
        for (offset, size) in sizes {
            if range.contains(&offset) && !self.is_settled(offset) && !self.sizes.by_offset.contains_key(&offset) {
                self.sizes.by_offset.insert(offset, size);
                self.sizes.total += u64::from(size);
            }
        }
        self.sizes.known_end = self.sizes.known_end.max(range.end);
    }

    /// With byte counting: the body bytes of the messages neither settled
    /// nor acquired, as far as their sizes were told (RabbitMQ's
    /// `message_bytes_ready`, which `x-max-length-bytes` bounds).
    pub fn ready_bytes(&self) -> u64 {
        let acquired: u64 = self
            .locks
            .iter()
            .filter_map(|(_, offset)| self.sizes.by_offset.get(offset))
            .map(|size| u64::from(*size))
            .sum();
        self.sizes.total.saturating_sub(acquired)
    }

    /// The lowest never-delivered offset that may be delivered now, if any.
    fn next_fresh(&mut self) -> Option<u64> {
        // After a restore, entries may sit above `fresh`; skip them (bounded by their number).
        let skips_max = self.entries.len() + 1;
        for _ in 0..skips_max {
            if !self.entries.contains_key(&self.fresh) {
                break;
            }
            self.fresh += 1;
        }
        self.fresh = self.fresh.max(self.start);
        let window_full = self.fresh.saturating_sub(self.start) >= self.config.in_flight_max;
        (self.fresh < self.end && !window_full && !self.entries.contains_key(&self.fresh)).then_some(self.fresh)
    }

    /// The consumer is done with the message: it is never delivered again.
    /// A lock past its deadline still counts until `expire_locks` or the
    /// next `acquire` ends it.
    pub fn ack(&mut self, consumer: ConsumerId, offset: u64) -> Result<(), CursorError> {
        let delivery_count = self.held_by(consumer, offset)?;
        self.set_state(offset, State::Acknowledged, delivery_count);
        self.events.push(JournalEvent::Acknowledged { offset });
        self.advance_start();
        Ok(())
    }

    /// The consumer gives the message back: available again, but not before
    /// `now_ms + delay_ms` (a delayed retry). The delivery count stays.
    /// A delay is journaled ([`JournalEvent::Delayed`]), so it survives a restart.
    pub fn release(&mut self, consumer: ConsumerId, offset: u64, delay_ms: i64, now_ms: i64) -> Result<(), CursorError> {
        let delivery_count = self.held_by(consumer, offset)?;
        let state = available_after(delay_ms, now_ms);
        if let State::Available { not_before_ms } = state
            && not_before_ms != i64::MIN
        {
            self.events.push(JournalEvent::Delayed { offset, not_before_ms });
        }
        self.set_state(offset, state, delivery_count);
        Ok(())
    }

    /// Like [`ShareCursor::release`], for a message acquired but never
    /// handed over (a Kafka share fetch's records that did not fit the
    /// response): that was no real delivery, so its delivery count goes
    /// back (journaled) and its first-acquisition time is forgotten.
    pub fn defer(&mut self, consumer: ConsumerId, offset: u64, delay_ms: i64, now_ms: i64) -> Result<(), CursorError> {
        let delivery_count = self.held_by(consumer, offset)?.saturating_sub(1);
        self.set_state(offset, available_after(delay_ms, now_ms), delivery_count);
        self.events.push(JournalEvent::Delivered { offset, delivery_count });
        self.first_acquired_ms.remove(&offset);
        Ok(())
    }

    /// The consumer refuses the message for good: archived, never delivered
    /// again; the caller dead-letters it.
    pub fn reject(&mut self, consumer: ConsumerId, offset: u64) -> Result<Archived, CursorError> {
        let delivery_count = self.held_by(consumer, offset)?;
        self.set_state(offset, State::Archived, delivery_count);
        self.events.push(JournalEvent::Archived { offset, delivery_count });
        self.advance_start();
        Ok(Archived { offset, delivery_count })
    }

    /// Archives `offset` if it is available (not held by anyone, not
    /// settled, below the end): the broker's own settlement of a message
    /// that expired while waiting. The caller dead-letters it.
    pub fn archive_available(&mut self, offset: u64) -> Option<Archived> {
        if offset < self.start || offset >= self.end {
            return None;
        }
        let delivery_count = match self.entries.get(&offset) {
            Some(Entry {
                state: State::Available { .. },
                delivery_count,
            }) => *delivery_count,
            Some(_) => return None,
            None => 0,
        };
        self.set_state(offset, State::Archived, delivery_count);
        self.events.push(JournalEvent::Archived { offset, delivery_count });
        self.advance_start();
        Some(Archived { offset, delivery_count })
    }

    /// Extends (or shortens) the consumer's lock to `now_ms + lock_ms`
    /// (SQS ChangeMessageVisibility).
    pub fn renew(&mut self, consumer: ConsumerId, offset: u64, lock_ms: i64, now_ms: i64) -> Result<(), CursorError> {
        let delivery_count = self.held_by(consumer, offset)?;
        let deadline_ms = now_ms.saturating_add(lock_ms.max(0));
        self.set_state(offset, State::Acquired { consumer, deadline_ms }, delivery_count);
        Ok(())
    }

    /// The consumer went away: every message it holds is available again at
    /// once, lowest first. Returns their offsets.
    pub fn release_all(&mut self, consumer: ConsumerId) -> Vec<u64> {
        let offsets: Vec<u64> = self
            .held
            .get(&consumer)
            .map(|held| held.iter().copied().collect())
            .unwrap_or_default();
        for &offset in &offsets {
            if let Some(entry) = self.entries.get(&offset).copied() {
                self.set_state(offset, State::Available { not_before_ms: i64::MIN }, entry.delivery_count);
            }
        }
        offsets
    }

    /// Whether `consumer` holds any message (acquired, not yet settled).
    pub fn holds_any(&self, consumer: ConsumerId) -> bool {
        self.held.get(&consumer).is_some_and(|held| !held.is_empty())
    }

    /// Ends every lock whose deadline is at or before `now_ms`: those
    /// messages are available again. Returns their offsets.
    pub fn expire_locks(&mut self, now_ms: i64) -> Vec<u64> {
        let expired: Vec<u64> = self.locks.range(..=(now_ms, u64::MAX)).map(|(_, offset)| *offset).collect();
        for &offset in &expired {
            if let Some(entry) = self.entries.get(&offset).copied() {
                self.set_state(offset, State::Available { not_before_ms: i64::MIN }, entry.delivery_count);
            }
        }
        let due: Vec<(i64, u64)> = self.delayed.range(..=(now_ms, u64::MAX)).copied().collect();
        for (not_before_ms, offset) in due {
            self.delayed.remove(&(not_before_ms, offset));
            self.ready.insert(offset);
            self.rank(offset);
        }
        expired
    }

    /// The earliest lock deadline or retry time, so a timer knows when to call
    /// [`ShareCursor::expire_locks`] next.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let lock = self.locks.first().map(|(deadline_ms, _)| *deadline_ms);
        let retry = self.delayed.first().map(|(not_before_ms, _)| *not_before_ms);
        lock.into_iter().chain(retry).min()
    }

    /// Who holds `offset` and until when, if it is acquired.
    pub fn holder(&self, offset: u64) -> Option<(ConsumerId, i64)> {
        match self.entries.get(&offset)?.state {
            State::Acquired { consumer, deadline_ms } => Some((consumer, deadline_ms)),
            _ => None,
        }
    }

    /// Whether `offset` is acknowledged or archived: never delivered again.
    pub fn is_settled(&self, offset: u64) -> bool {
        offset < self.start
            || self
                .entries
                .get(&offset)
                .is_some_and(|entry| matches!(entry.state, State::Acknowledged | State::Archived))
    }

    /// The delivery count of `offset` (0 if never delivered or already forgotten).
    pub fn delivery_count(&self, offset: u64) -> u32 {
        self.entries.get(&offset).map(|entry| entry.delivery_count).unwrap_or(0)
    }

    /// The delivery count of `offset` if `consumer` holds it.
    fn held_by(&self, consumer: ConsumerId, offset: u64) -> Result<u32, CursorError> {
        // An entry never delivered (a message group passed over it) is as good as none.
        let Some(entry) = self.entries.get(&offset).filter(|entry| entry.delivery_count > 0) else {
            return Err(CursorError::UnknownOffset { offset });
        };
        match entry.state {
            State::Acquired { consumer: holder, .. } if holder == consumer => Ok(entry.delivery_count),
            State::Acquired { .. } => Err(CursorError::NotHolder { offset, consumer }),
            _ => Err(CursorError::NotAcquired { offset }),
        }
    }

    /// Sets an entry's state and keeps every index in step. The only writer
    /// of `entries` besides `remove_entry`.
    fn set_state(&mut self, offset: u64, state: State, delivery_count: u32) {
        self.unindex(offset);
        match state {
            State::Available { not_before_ms } if not_before_ms == i64::MIN => {
                self.ready.insert(offset);
                self.rank(offset);
            }
            State::Available { not_before_ms } => {
                self.delayed.insert((not_before_ms, offset));
            }
            State::Acquired { consumer, deadline_ms } => {
                self.locks.insert((deadline_ms, offset));
                self.held.entry(consumer).or_default().insert(offset);
            }
            State::Acknowledged | State::Archived => {
                self.groups.remove(&offset);
                self.priorities.remove(&offset);
                self.not_before.remove(&offset);
                self.sizes.forget(offset);
                self.first_acquired_ms.remove(&offset);
            }
        }
        self.entries.insert(offset, Entry { state, delivery_count });
    }

    fn remove_entry(&mut self, offset: u64) {
        self.unindex(offset);
        self.groups.remove(&offset);
        self.priorities.remove(&offset);
        self.not_before.remove(&offset);
        self.sizes.forget(offset);
        self.first_acquired_ms.remove(&offset);
        self.entries.remove(&offset);
    }

    fn unindex(&mut self, offset: u64) {
        let Some(entry) = self.entries.get(&offset) else {
            return;
        };
        match entry.state {
            State::Available { not_before_ms } => {
                if self.ready.remove(&offset) && self.config.ranked() {
                    let priority = self.priority(offset);
                    self.ready_ranked.remove(&(Reverse(priority), offset));
                }
                self.delayed.remove(&(not_before_ms, offset));
            }
            State::Acquired { consumer, deadline_ms } => {
                self.locks.remove(&(deadline_ms, offset));
                if let Some(held) = self.held.get_mut(&consumer) {
                    held.remove(&offset);
                    if held.is_empty() {
                        self.held.remove(&consumer);
                    }
                }
            }
            State::Acknowledged | State::Archived => {}
        }
    }

    /// Moves the start past the settled prefix and forgets it.
    fn advance_start(&mut self) {
        let steps_max = self.entries.len();
        for _ in 0..steps_max {
            let Some((&offset, entry)) = self.entries.first_key_value() else {
                break;
            };
            if offset != self.start || !matches!(entry.state, State::Acknowledged | State::Archived) {
                break;
            }
            self.entries.remove(&offset);
            self.start += 1;
        }
        self.fresh = self.fresh.max(self.start);
        self.end = self.end.max(self.start);
    }
}

/// Available again once `delay_ms` from `now_ms` have passed (at once without a delay).
fn available_after(delay_ms: i64, now_ms: i64) -> State {
    let not_before_ms = if delay_ms > 0 { now_ms.saturating_add(delay_ms) } else { i64::MIN };
    State::Available { not_before_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: ConsumerId = ConsumerId(1);
    const BOB: ConsumerId = ConsumerId(2);

    fn cursor_with(end: u64, delivery_limit: Option<u32>) -> ShareCursor {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            delivery_limit,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(end);
        cursor
    }

    fn offsets(acquisition: &Acquisition) -> Vec<u64> {
        acquisition.acquired.iter().map(|acquired| acquired.offset).collect()
    }

    /// Each acquired offset with its delivery count.
    fn counted(acquisition: &Acquisition) -> Vec<(u64, u32)> {
        acquisition
            .acquired
            .iter()
            .map(|acquired| (acquired.offset, acquired.delivery_count))
            .collect()
    }

    #[test]
    fn acquire_below_leaves_offsets_at_or_above_its_bound_to_other_readers() {
        // End 6 counts messages written but not durable (4 and 5); a reader
        // that may only see durable ones acquires below 4.
        let mut cursor = cursor_with(6, None);
        assert_eq!(offsets(&cursor.acquire_below(ALICE, 10, 1_000, 0, 4)), vec![0, 1, 2, 3]);
        assert!(cursor.acquire_below(ALICE, 10, 1_000, 0, 4).acquired.is_empty());
        // A released message above the bound stays for a reader allowed to see it.
        assert_eq!(offsets(&cursor.acquire(BOB, 1, 1_000, 0)), vec![4]);
        cursor.release(BOB, 4, 0, 0).expect("release");
        assert!(cursor.acquire_below(ALICE, 10, 1_000, 0, 4).acquired.is_empty());
        assert_eq!(offsets(&cursor.acquire_below(ALICE, 10, 1_000, 0, 6)), vec![4, 5]);
    }

    #[test]
    fn acquire_hands_out_lowest_offsets_once_and_only_below_the_end() {
        let mut cursor = cursor_with(5, None);
        let first = cursor.acquire(ALICE, 3, 1_000, 0);
        assert_eq!(offsets(&first), vec![0, 1, 2]);
        assert!(first.acquired.iter().all(|acquired| acquired.delivery_count == 1));
        let second = cursor.acquire(BOB, 10, 1_000, 0);
        assert_eq!(offsets(&second), vec![3, 4], "held messages are not handed out twice");
        assert!(cursor.acquire(BOB, 10, 1_000, 0).acquired.is_empty(), "nothing past the end");
        cursor.set_end(6);
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 0)), vec![5]);
        assert_eq!(cursor.holder(1), Some((ALICE, 1_000)));
        assert_eq!(cursor.acquired_count(), 6);
    }

    #[test]
    fn acked_messages_are_never_delivered_again_and_start_advances_past_the_settled_prefix() {
        let mut cursor = cursor_with(4, None);
        cursor.acquire(ALICE, 4, 1_000, 0);
        cursor.ack(ALICE, 1).expect("ack 1");
        assert_eq!(cursor.start(), 0, "offset 0 is still in flight");
        cursor.ack(ALICE, 0).expect("ack 0");
        assert_eq!(cursor.start(), 2, "0 and 1 are settled");
        cursor.reject(ALICE, 2).expect("reject 2");
        assert_eq!(cursor.start(), 3, "archived counts as settled");
        // Even after every lock expires, settled messages stay settled.
        cursor.expire_locks(5_000);
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 5_000)), vec![3]);
        assert_eq!(cursor.image().entries.len(), 1, "only the unsettled window is kept");
    }

    #[test]
    fn released_message_comes_back_first_with_its_delivery_count() {
        let mut cursor = cursor_with(3, None);
        cursor.acquire(ALICE, 2, 1_000, 0);
        cursor.release(ALICE, 0, 0, 10).expect("release");
        let again = cursor.acquire(BOB, 2, 1_000, 10);
        assert_eq!(counted(&again), vec![(0, 2), (2, 1)]);
    }

    #[test]
    fn release_with_delay_holds_the_message_back_until_the_delay_passes() {
        let mut cursor = cursor_with(1, None);
        cursor.acquire(ALICE, 1, 1_000, 0);
        cursor.release(ALICE, 0, 500, 100).expect("release");
        assert!(cursor.acquire(BOB, 1, 1_000, 599).acquired.is_empty(), "not before 600");
        assert_eq!(cursor.next_deadline_ms(), Some(600));
        let again = cursor.acquire(BOB, 1, 1_000, 600);
        assert_eq!(counted(&again), vec![(0, 2)]);
    }

    #[test]
    fn expired_lock_makes_the_message_available_to_another_consumer() {
        let mut cursor = cursor_with(2, None);
        cursor.acquire(ALICE, 2, 1_000, 0);
        assert!(cursor.expire_locks(999).is_empty());
        assert_eq!(cursor.next_deadline_ms(), Some(1_000));
        assert_eq!(cursor.expire_locks(1_000), vec![0, 1]);
        assert_eq!(
            cursor.ack(ALICE, 0),
            Err(CursorError::NotAcquired { offset: 0 }),
            "the lock is gone"
        );
        let again = cursor.acquire(BOB, 1, 1_000, 1_000);
        assert_eq!(counted(&again), vec![(0, 2)]);
    }

    #[test]
    fn acquire_expires_locks_itself() {
        let mut cursor = cursor_with(1, None);
        cursor.acquire(ALICE, 1, 100, 0);
        assert_eq!(offsets(&cursor.acquire(BOB, 1, 100, 100)), vec![0]);
        assert_eq!(cursor.holder(0), Some((BOB, 200)));
    }

    #[test]
    fn renew_moves_the_lock_deadline() {
        let mut cursor = cursor_with(1, None);
        cursor.acquire(ALICE, 1, 100, 0);
        cursor.renew(ALICE, 0, 1_000, 50).expect("renew");
        assert!(cursor.expire_locks(500).is_empty());
        assert_eq!(cursor.expire_locks(1_050), vec![0]);
        assert_eq!(cursor.renew(BOB, 0, 10, 0), Err(CursorError::NotAcquired { offset: 0 }));
    }

    #[test]
    fn an_acquisition_deferred_before_the_message_was_due_is_no_delivery() {
        let mut cursor = cursor_with(1, Some(1));
        assert_eq!(offsets(&cursor.acquire(ALICE, 1, 100, 0)), vec![0]);
        cursor.take_events();
        cursor.defer(ALICE, 0, 500, 0).expect("defer");
        assert_eq!(
            cursor.take_events(),
            vec![JournalEvent::Delivered {
                offset: 0,
                delivery_count: 0
            }],
            "the count going back is journaled"
        );
        assert!(offsets(&cursor.acquire(BOB, 1, 100, 499)).is_empty(), "not before it is due");
        let due = cursor.acquire(BOB, 1, 100, 500);
        assert_eq!(offsets(&due), vec![0], "delivered, not archived, at a delivery limit of 1");
        assert!(due.archived.is_empty());
        assert_eq!(due.acquired[0].delivery_count, 1, "its first real delivery");
    }

    #[test]
    fn delivery_limit_archives_the_message_instead_of_delivering_it_again() {
        let mut cursor = cursor_with(2, Some(2));
        for now_ms in [0, 100] {
            let acquisition = cursor.acquire(ALICE, 1, 100, now_ms);
            assert_eq!(offsets(&acquisition), vec![0]);
        }
        let third = cursor.acquire(ALICE, 1, 100, 200);
        assert_eq!(
            third.archived,
            vec![Archived {
                offset: 0,
                delivery_count: 2
            }]
        );
        assert_eq!(offsets(&third), vec![1], "the next message is delivered in its place");
        assert_eq!(cursor.start(), 1);
        assert!(
            cursor.take_events().contains(&JournalEvent::Archived {
                offset: 0,
                delivery_count: 2
            }),
            "archiving is journaled"
        );
    }

    #[test]
    fn release_all_returns_every_message_of_the_departed_consumer_only() {
        let mut cursor = cursor_with(4, None);
        cursor.acquire(ALICE, 2, 1_000, 0);
        cursor.acquire(BOB, 2, 1_000, 0);
        cursor.ack(ALICE, 0).expect("ack");
        assert_eq!(cursor.release_all(ALICE), vec![1]);
        assert!(cursor.release_all(ALICE).is_empty());
        assert_eq!(cursor.holder(2), Some((BOB, 1_000)));
        let again = cursor.acquire(BOB, 5, 1_000, 0);
        assert_eq!(counted(&again), vec![(1, 2)]);
    }

    #[test]
    fn settling_someone_elses_or_an_unknown_message_is_an_error_and_changes_nothing() {
        let mut cursor = cursor_with(3, None);
        cursor.acquire(ALICE, 1, 1_000, 0);
        assert_eq!(cursor.ack(BOB, 0), Err(CursorError::NotHolder { offset: 0, consumer: BOB }));
        assert_eq!(cursor.reject(BOB, 0), Err(CursorError::NotHolder { offset: 0, consumer: BOB }));
        assert_eq!(
            cursor.release(BOB, 0, 0, 0),
            Err(CursorError::NotHolder { offset: 0, consumer: BOB })
        );
        assert_eq!(
            cursor.ack(ALICE, 1),
            Err(CursorError::UnknownOffset { offset: 1 }),
            "never delivered"
        );
        assert_eq!(
            cursor.ack(ALICE, 99),
            Err(CursorError::UnknownOffset { offset: 99 }),
            "past the end"
        );
        cursor.ack(ALICE, 0).expect("the holder may ack");
        assert_eq!(
            cursor.ack(ALICE, 0),
            Err(CursorError::UnknownOffset { offset: 0 }),
            "below the start"
        );
        assert_eq!(
            cursor.take_events(),
            vec![
                JournalEvent::Delivered {
                    offset: 0,
                    delivery_count: 1
                },
                JournalEvent::Acknowledged { offset: 0 }
            ]
        );
    }

    #[test]
    fn in_flight_window_bounds_new_deliveries_until_the_head_settles() {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            delivery_limit: None,
            in_flight_max: 2,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(10);
        assert_eq!(offsets(&cursor.acquire(ALICE, 10, 1_000, 0)), vec![0, 1]);
        cursor.ack(ALICE, 1).expect("ack");
        assert!(
            cursor.acquire(ALICE, 10, 1_000, 0).acquired.is_empty(),
            "offset 0 still holds the window"
        );
        cursor.ack(ALICE, 0).expect("ack");
        assert_eq!(offsets(&cursor.acquire(ALICE, 10, 1_000, 0)), vec![2, 3]);
    }

    #[test]
    fn restore_makes_acquired_messages_available_with_their_counts_and_keeps_settled_ones() {
        let mut cursor = cursor_with(4, None);
        cursor.acquire(ALICE, 4, 1_000, 0);
        cursor.ack(ALICE, 1).expect("ack");
        cursor.reject(ALICE, 2).expect("reject");
        cursor.release(ALICE, 3, 60_000, 0).expect("release");
        let mut replayed = CursorImage::default();
        for event in cursor.take_events() {
            replayed.apply(event);
        }
        let mut restored = ShareCursor::restore(cursor.config(), replayed);
        assert_eq!(restored.image(), cursor.image());
        restored.set_end(5);
        let again = restored.acquire(BOB, 10, 100_000, 0);
        assert_eq!(counted(&again), vec![(0, 2), (4, 1)]);
        // Offset 3's retry delay was journaled: it waits it out.
        assert_eq!(counted(&restored.acquire(BOB, 10, 1_000, 60_000)), vec![(3, 2)]);
    }

    #[test]
    fn truncate_to_forgets_messages_the_log_no_longer_holds() {
        let mut cursor = cursor_with(5, None);
        cursor.acquire(ALICE, 2, 1_000, 0);
        cursor.truncate_to(3);
        assert_eq!(cursor.start(), 3);
        assert_eq!(cursor.acquired_count(), 0);
        assert_eq!(cursor.ack(ALICE, 0), Err(CursorError::UnknownOffset { offset: 0 }));
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 0)), vec![3, 4]);
    }

    /// A cursor with message groups whose offsets 0.. are in `groups` (b'-' = no key).
    fn grouped(groups: &[u8]) -> ShareCursor {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            message_groups: true,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(groups.len() as u64);
        let range = cursor.order_wanted().expect("groups wanted");
        assert_eq!(range, 0..groups.len() as u64);
        let keys = groups
            .iter()
            .enumerate()
            .filter(|(_, group)| **group != b'-')
            .map(|(offset, group)| {
                let facts = OrderFacts {
                    group: vec![*group],
                    priority: 0,
                    not_before_ms: None,
                };
                (offset as u64, facts)
            });
        cursor.learn_order(range, keys);
        assert_eq!(cursor.order_wanted(), None);
        cursor
    }

    #[test]
    fn a_message_group_delivers_in_order_and_not_while_one_of_its_messages_is_held() {
        let mut cursor = grouped(b"aabab");
        // One acquisition may take several messages of a group, in order.
        assert_eq!(offsets(&cursor.acquire(ALICE, 2, 1_000, 0)), vec![0, 1]);
        // Group a is held: only b's messages come.
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 0)), vec![2, 4]);
        assert!(cursor.acquire(BOB, 10, 1_000, 0).acquired.is_empty(), "both groups held");
        cursor.ack(ALICE, 0).expect("ack");
        assert!(cursor.acquire(BOB, 10, 1_000, 0).acquired.is_empty(), "a is held while offset 1 is");
        cursor.ack(ALICE, 1).expect("ack");
        assert_eq!(
            offsets(&cursor.acquire(ALICE, 10, 1_000, 0)),
            vec![3],
            "a's next once a's held messages settle"
        );
        // An expired lock releases the group, and its head comes again first.
        assert_eq!(offsets(&cursor.acquire(ALICE, 10, 1_000, 1_000)), vec![2, 3, 4]);
        assert_eq!(cursor.delivery_count(2), 2);
    }

    #[test]
    fn acquiring_regardless_of_groups_takes_the_messages_of_held_groups_too() {
        let mut cursor = grouped(b"aab");
        assert_eq!(offsets(&cursor.acquire(ALICE, 1, 1_000, 0)), vec![0]);
        assert_eq!(offsets(&cursor.acquire_regardless_of_groups(BOB, 10, 1_000, 0)), vec![1, 2]);
    }

    /// A cursor with delays on whose offsets 0.. have the not-before times
    /// in `not_before_ms`, all of them learned, and a delivery limit of 1.
    fn delayed(not_before_ms: &[Option<i64>]) -> ShareCursor {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            delivery_limit: Some(1),
            delays: true,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(not_before_ms.len() as u64);
        let range = cursor.order_wanted().expect("delays are learned");
        let facts = range.clone().map(|offset| {
            let not_before_ms = not_before_ms[offset as usize];
            (
                offset,
                OrderFacts {
                    not_before_ms,
                    ..OrderFacts::default()
                },
            )
        });
        cursor.learn_order(range, facts);
        assert_eq!(cursor.order_wanted(), None);
        cursor
    }

    #[test]
    fn a_delayed_message_is_not_acquired_before_its_time_and_an_early_try_is_no_delivery() {
        let mut cursor = delayed(&[Some(1_000), None]);
        assert_eq!(offsets(&cursor.acquire(ALICE, 10, 100, 0)), vec![1], "offset 0 waits");
        assert_eq!(cursor.delivery_count(0), 0, "trying early counts nothing");
        assert_eq!(cursor.delayed_count(), 1);
        assert_eq!(cursor.next_deadline_ms(), Some(100), "the lock comes first");
        cursor.ack(ALICE, 1).expect("ack");
        assert_eq!(cursor.next_deadline_ms(), Some(1_000), "a timer wakes when it is due");
        assert!(cursor.acquire(ALICE, 10, 100, 999).acquired.is_empty());
        let due = cursor.acquire(BOB, 10, 100, 1_000);
        assert_eq!(counted(&due), vec![(0, 1)], "a delivery limit of 1 still lets it through once");
        assert!(due.archived.is_empty());
    }

    #[test]
    fn delayed_messages_of_a_group_hold_back_its_later_ones_and_purging_ignores_delays() {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            message_groups: true,
            delays: true,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(3);
        let facts = [(b"a", Some(500)), (b"a", None), (b"b", None)]
            .into_iter()
            .enumerate()
            .map(|(offset, (group, not_before_ms))| {
                (
                    offset as u64,
                    OrderFacts {
                        group: group.to_vec(),
                        priority: 0,
                        not_before_ms,
                    },
                )
            });
        cursor.learn_order(0..3, facts);
        assert_eq!(
            offsets(&cursor.acquire(ALICE, 10, 100, 0)),
            vec![2],
            "a waits behind its delayed head"
        );
        assert_eq!(offsets(&cursor.acquire_regardless_of_groups(BOB, 10, 100, 0)), vec![0, 1]);
    }

    #[test]
    fn a_retry_delay_survives_a_restart_and_a_given_back_acquisition_does_not_count_after_one() {
        let mut cursor = cursor_with(2, None);
        assert_eq!(offsets(&cursor.acquire(ALICE, 2, 1_000, 0)), vec![0, 1]);
        cursor.release(ALICE, 0, 5_000, 10).expect("release");
        cursor.defer(ALICE, 1, 0, 10).expect("given back undelivered");
        let mut image = CursorImage::default();
        for event in cursor.take_events() {
            image.apply(event);
        }
        assert_eq!(image.not_before, cursor.image().not_before, "replay and snapshot agree");
        let mut restored = ShareCursor::restore(cursor.config(), image);
        restored.set_end(2);
        assert_eq!(
            offsets(&restored.acquire(BOB, 10, 100_000, 20)),
            vec![1],
            "offset 0 still waits; 1 was never delivered"
        );
        assert_eq!(restored.delivery_count(1), 1);
        assert_eq!(offsets(&restored.acquire(BOB, 10, 1_000, 5_010)), vec![0]);
    }

    #[test]
    fn a_message_group_waits_for_its_delayed_head_and_groups_not_yet_learned_are_not_delivered() {
        let mut cursor = grouped(b"aa-");
        assert_eq!(offsets(&cursor.acquire(ALICE, 1, 1_000, 0)), vec![0]);
        cursor.release(ALICE, 0, 500, 0).expect("release");
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 0)), vec![2], "a waits for its delayed head");
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 500)), vec![0, 1]);
        cursor.set_end(4);
        assert!(
            cursor.acquire(BOB, 10, 1_000, 500).acquired.is_empty(),
            "offset 3's group is unknown"
        );
        let facts = OrderFacts {
            group: b"c".to_vec(),
            priority: 0,
            not_before_ms: None,
        };
        cursor.learn_order(3..4, [(3, facts)]);
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 500)), vec![3]);
    }

    /// A cursor with priorities up to `max_priority` whose offsets 0.. have
    /// the priorities in `priorities`, all of them learned.
    fn prioritized(max_priority: u8, priorities: &[u8]) -> ShareCursor {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            max_priority,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(priorities.len() as u64);
        learn_priorities(&mut cursor, priorities);
        cursor
    }

    /// Tells `cursor` the priorities of every offset it asks for.
    fn learn_priorities(cursor: &mut ShareCursor, priorities: &[u8]) {
        if let Some(range) = cursor.order_wanted() {
            let facts = range.clone().map(|offset| {
                let facts = OrderFacts {
                    group: Vec::new(),
                    priority: priorities[offset as usize],
                    not_before_ms: None,
                };
                (offset, facts)
            });
            cursor.learn_order(range, facts);
        }
        assert_eq!(cursor.order_wanted(), None);
    }

    #[test]
    fn higher_priorities_are_delivered_first_and_each_priority_in_offset_order() {
        let mut cursor = prioritized(5, &[0, 3, 9, 3, 1, 0]);
        // 9 counts as the maximum, 5: first.
        assert_eq!(offsets(&cursor.acquire(ALICE, 3, 1_000, 0)), vec![2, 1, 3]);
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 0)), vec![4, 0, 5]);
    }

    #[test]
    fn a_durable_only_reader_of_a_priority_queue_takes_the_highest_priorities_below_its_bound() {
        // 4 and 5 are written but not durable; 5 has the highest priority.
        let mut cursor = prioritized(5, &[0, 2, 1, 0, 3, 5]);
        assert_eq!(offsets(&cursor.acquire_below(ALICE, 2, 1_000, 0, 4)), vec![1, 2]);
        assert_eq!(offsets(&cursor.acquire_below(ALICE, 10, 1_000, 0, 4)), vec![0, 3]);
        assert!(cursor.acquire_below(ALICE, 10, 1_000, 0, 4).acquired.is_empty());
        assert_eq!(offsets(&cursor.acquire(BOB, 10, 1_000, 0)), vec![5, 4]);
    }

    #[test]
    fn a_requeued_message_keeps_its_priority_and_goes_before_lower_ones() {
        let mut cursor = prioritized(9, &[1, 0, 0, 5]);
        assert_eq!(offsets(&cursor.acquire(ALICE, 2, 1_000, 0)), vec![3, 0]);
        cursor.release(ALICE, 3, 0, 0).expect("release");
        cursor.release(ALICE, 0, 0, 0).expect("release");
        let again = cursor.acquire(BOB, 3, 1_000, 0);
        assert_eq!(offsets(&again), vec![3, 0, 1]);
        assert_eq!(again.acquired[0].delivery_count, 2);
        // A delayed retry joins its priority again once the delay is over.
        cursor.release(BOB, 3, 100, 0).expect("release");
        assert_eq!(offsets(&cursor.acquire(ALICE, 1, 1_000, 50)), vec![2]);
        assert_eq!(offsets(&cursor.acquire(ALICE, 1, 1_000, 100)), vec![3]);
    }

    #[test]
    fn priorities_are_relearned_after_a_restore_and_unknown_ones_are_not_delivered() {
        let priorities = [0, 0, 7, 2];
        let mut cursor = prioritized(9, &priorities);
        assert_eq!(offsets(&cursor.acquire(ALICE, 4, 1_000, 0)), vec![2, 3, 0, 1]);
        cursor.ack(ALICE, 0).expect("ack");
        let mut replayed = CursorImage::default();
        for event in cursor.take_events() {
            replayed.apply(event);
        }
        let mut restored = ShareCursor::restore(cursor.config(), replayed);
        restored.set_end(5);
        assert!(
            restored.acquire(BOB, 10, 1_000, 0).acquired.is_empty(),
            "nothing goes before its priority is known"
        );
        learn_priorities(&mut restored, &[0, 0, 7, 2, 9]);
        let again = restored.acquire(BOB, 10, 1_000, 0);
        assert_eq!(offsets(&again), vec![4, 2, 3, 1]);
        assert_eq!(again.acquired[1].delivery_count, 2, "redelivered");
    }

    #[test]
    fn with_priorities_the_delivery_limit_still_archives_and_the_window_still_bounds() {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            delivery_limit: Some(1),
            in_flight_max: 3,
            max_priority: 9,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(5);
        learn_priorities(&mut cursor, &[1, 2, 0, 9, 9]);
        // Offsets 3 and 4 are past the window (start 0, three in flight).
        assert_eq!(offsets(&cursor.acquire(ALICE, 1, 1_000, 0)), vec![1]);
        cursor.release(ALICE, 1, 0, 0).expect("release");
        let next = cursor.acquire(ALICE, 1, 1_000, 0);
        assert_eq!(
            next.archived,
            vec![Archived {
                offset: 1,
                delivery_count: 1
            }],
            "past the delivery limit"
        );
        assert_eq!(offsets(&next), vec![0]);
        cursor.ack(ALICE, 0).expect("ack");
        learn_priorities(&mut cursor, &[1, 2, 0, 9, 9]);
        assert_eq!(offsets(&cursor.acquire(ALICE, 10, 1_000, 0)), vec![3, 4, 2], "the window moved on");
    }

    #[test]
    fn message_groups_turn_priorities_off() {
        let mut cursor = ShareCursor::new(ShareCursorConfig {
            message_groups: true,
            max_priority: 9,
            ..ShareCursorConfig::default()
        });
        cursor.set_end(2);
        learn_priorities(&mut cursor, &[0, 9]);
        assert_eq!(offsets(&cursor.acquire(ALICE, 2, 1_000, 0)), vec![0, 1]);
    }

    mod model {
        //! The cursor against a reference model that keeps one state per
        //! offset of the whole log and finds everything by scanning.

        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum ModelState {
            Available { not_before_ms: i64 },
            Acquired { consumer: ConsumerId, deadline_ms: i64 },
            Acknowledged,
            Archived,
        }

        #[derive(Debug, Default)]
        struct Model {
            states: Vec<(ModelState, u32)>,
            /// Each offset's group (record key).
            keys: Vec<GroupKey>,
            /// Each offset's priority as published.
            priorities: Vec<u8>,
            delivery_limit: Option<u32>,
            in_flight_max: u64,
            message_groups: bool,
            max_priority: u8,
        }

        impl Model {
            fn start(&self) -> u64 {
                self.states
                    .iter()
                    .position(|(state, _)| !matches!(state, ModelState::Acknowledged | ModelState::Archived))
                    .unwrap_or(self.states.len()) as u64
            }

            fn expire(&mut self, now_ms: i64) -> Vec<u64> {
                let mut expired = Vec::new();
                for (offset, (state, _)) in self.states.iter_mut().enumerate() {
                    if let ModelState::Acquired { deadline_ms, .. } = *state
                        && deadline_ms <= now_ms
                    {
                        *state = ModelState::Available { not_before_ms: i64::MIN };
                        expired.push(offset as u64);
                    }
                }
                expired
            }

            fn acquire(&mut self, consumer: ConsumerId, max: usize, lock_ms: i64, now_ms: i64) -> Acquisition {
                self.expire(now_ms);
                let start = self.start();
                let mut acquisition = Acquisition::default();
                // A group with a message held or waiting out a delay delivers nothing.
                let blocked: HashSet<&GroupKey> = self
                    .states
                    .iter()
                    .zip(&self.keys)
                    .filter(|((state, _), _)| match state {
                        ModelState::Acquired { .. } => true,
                        ModelState::Available { not_before_ms } => *not_before_ms > now_ms,
                        _ => false,
                    })
                    .map(|(_, key)| key)
                    .collect();
                let blocked: HashSet<GroupKey> = blocked.into_iter().filter(|_| self.message_groups).cloned().collect();
                // Priorities (without message groups): highest first, then by offset.
                let mut order: Vec<usize> = (0..self.states.len()).collect();
                if self.max_priority > 0 && !self.message_groups {
                    order.sort_by_key(|offset| (std::cmp::Reverse(self.priorities[*offset].min(self.max_priority)), *offset));
                }
                for offset in order {
                    if acquisition.acquired.len() >= max {
                        break;
                    }
                    let (state, count) = self.states[offset];
                    let ModelState::Available { not_before_ms } = state else {
                        continue;
                    };
                    if not_before_ms > now_ms || blocked.contains(&self.keys[offset]) {
                        continue;
                    }
                    if count == 0 && offset as u64 - start >= self.in_flight_max {
                        continue;
                    }
                    let offset_u64 = offset as u64;
                    if self.delivery_limit.is_some_and(|limit| count + 1 > limit.max(1)) {
                        self.states[offset].0 = ModelState::Archived;
                        acquisition.archived.push(Archived {
                            offset: offset_u64,
                            delivery_count: count,
                        });
                        continue;
                    }
                    self.states[offset] = (
                        ModelState::Acquired {
                            consumer,
                            deadline_ms: now_ms + lock_ms,
                        },
                        count + 1,
                    );
                    acquisition.acquired.push(Acquired {
                        offset: offset_u64,
                        delivery_count: count + 1,
                    });
                }
                acquisition
            }

            fn held(&self, consumer: ConsumerId, offset: u64) -> Result<u32, CursorError> {
                let Some((state, count)) = self.states.get(offset as usize).copied() else {
                    return Err(CursorError::UnknownOffset { offset });
                };
                if offset < self.start() || count == 0 {
                    return Err(CursorError::UnknownOffset { offset });
                }
                match state {
                    ModelState::Acquired { consumer: holder, .. } if holder == consumer => Ok(count),
                    ModelState::Acquired { .. } => Err(CursorError::NotHolder { offset, consumer }),
                    _ => Err(CursorError::NotAcquired { offset }),
                }
            }

            fn set(&mut self, consumer: ConsumerId, offset: u64, state: ModelState) -> Result<u32, CursorError> {
                let count = self.held(consumer, offset)?;
                self.states[offset as usize].0 = state;
                Ok(count)
            }

            /// Acquired messages are available again; a retry delay is journaled and stays.
            fn restart(&mut self) {
                for (state, _) in &mut self.states {
                    if matches!(state, ModelState::Acquired { .. }) {
                        *state = ModelState::Available { not_before_ms: i64::MIN };
                    }
                }
            }
        }

        #[derive(Debug, Clone)]
        enum Op {
            /// Messages, of a group, with a priority.
            Publish(u64, u8, u8),
            Acquire {
                consumer: u64,
                max: usize,
                lock_ms: i64,
            },
            Ack {
                consumer: u64,
                offset: u64,
            },
            Release {
                consumer: u64,
                offset: u64,
                delay_ms: i64,
            },
            Reject {
                consumer: u64,
                offset: u64,
            },
            ArchiveAvailable {
                offset: u64,
            },
            Renew {
                consumer: u64,
                offset: u64,
                lock_ms: i64,
            },
            ReleaseAll {
                consumer: u64,
            },
            Expire,
            Tick(i64),
            Restart,
        }

        fn op() -> impl Strategy<Value = Op> {
            let consumer = 0u64..3;
            let offset = 0u64..24;
            prop_oneof![
                2 => (0u64..4, 0u8..3, prop_oneof![Just(0u8), 0u8..12, Just(255)]).prop_map(|(count, group, priority)| Op::Publish(count, group, priority)),
                4 => (consumer.clone(), 0usize..4, 1i64..100).prop_map(|(consumer, max, lock_ms)| Op::Acquire { consumer, max, lock_ms }),
                4 => (consumer.clone(), offset.clone()).prop_map(|(consumer, offset)| Op::Ack { consumer, offset }),
                2 => (consumer.clone(), offset.clone(), 0i64..50).prop_map(|(consumer, offset, delay_ms)| Op::Release { consumer, offset, delay_ms }),
                1 => (consumer.clone(), offset.clone()).prop_map(|(consumer, offset)| Op::Reject { consumer, offset }),
                1 => offset.clone().prop_map(|offset| Op::ArchiveAvailable { offset }),
                1 => (consumer.clone(), offset, 0i64..100).prop_map(|(consumer, offset, lock_ms)| Op::Renew { consumer, offset, lock_ms }),
                1 => consumer.prop_map(|consumer| Op::ReleaseAll { consumer }),
                1 => Just(Op::Expire),
                2 => (0i64..60).prop_map(Op::Tick),
                1 => Just(Op::Restart),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn cursor_matches_the_reference_model(
                ops in proptest::collection::vec(op(), 1..80),
                delivery_limit in proptest::option::of(1u32..4),
                in_flight_max in 1u64..30,
                message_groups in any::<bool>(),
                count_bytes in any::<bool>(),
                max_priority in prop_oneof![Just(0u8), 1u8..10, Just(255)],
            ) {
                let config = ShareCursorConfig { delivery_limit, in_flight_max, message_groups, count_bytes, max_priority, delays: false };
                let mut cursor = ShareCursor::new(config);
                let mut model = Model { delivery_limit, in_flight_max, message_groups, max_priority, ..Model::default() };
                // Each message's body size (any spread of values will do).
                let size_of = |offset: u64| (offset * 37 % 11) as u32;
                // Group 0 is the empty key (no key).
                let key = |group: u8| if group == 0 { Vec::new() } else { vec![group] };
                // Tells the cursor every group it does not know yet, as the queue does from the log.
                let learn = |cursor: &mut ShareCursor, model: &Model| {
                    if let Some(range) = cursor.order_wanted() {
                        let facts: Vec<(u64, OrderFacts)> = range
                            .clone()
                            .map(|offset| (offset, OrderFacts { group: model.keys[offset as usize].clone(), priority: model.priorities[offset as usize], not_before_ms: None }))
                            .collect();
                        cursor.learn_order(range, facts);
                    }
                    if let Some(range) = cursor.sizes_wanted() {
                        let sizes: Vec<(u64, u32)> = range.clone().map(|offset| (offset, size_of(offset))).collect();
                        cursor.learn_sizes(range, sizes);
                    }
                };
                // What the journal would hold: every event since the beginning.
                let mut replayed = CursorImage::default();
                let mut now_ms = 0i64;
                for op in ops {
                    match op {
                        Op::Publish(count, group, priority) => {
                            model.states.extend((0..count).map(|_| (ModelState::Available { not_before_ms: i64::MIN }, 0)));
                            model.keys.extend((0..count).map(|_| key(group)));
                            model.priorities.extend((0..count).map(|_| priority));
                            cursor.set_end(model.states.len() as u64);
                            learn(&mut cursor, &model);
                        }
                        Op::Acquire { consumer, max, lock_ms } => {
                            learn(&mut cursor, &model);
                            let got = cursor.acquire(ConsumerId(consumer), max, lock_ms, now_ms);
                            let want = model.acquire(ConsumerId(consumer), max, lock_ms, now_ms);
                            prop_assert_eq!(got, want);
                        }
                        Op::Ack { consumer, offset } => {
                            let got = cursor.ack(ConsumerId(consumer), offset);
                            let want = model.set(ConsumerId(consumer), offset, ModelState::Acknowledged).map(|_| ());
                            prop_assert_eq!(got, want);
                        }
                        Op::Release { consumer, offset, delay_ms } => {
                            let got = cursor.release(ConsumerId(consumer), offset, delay_ms, now_ms);
                            let not_before_ms = if delay_ms > 0 { now_ms + delay_ms } else { i64::MIN };
                            let want = model.set(ConsumerId(consumer), offset, ModelState::Available { not_before_ms }).map(|_| ());
                            prop_assert_eq!(got, want);
                        }
                        Op::Reject { consumer, offset } => {
                            let got = cursor.reject(ConsumerId(consumer), offset);
                            let want = model
                                .set(ConsumerId(consumer), offset, ModelState::Archived)
                                .map(|delivery_count| Archived { offset, delivery_count });
                            prop_assert_eq!(got, want);
                        }
                        Op::ArchiveAvailable { offset } => {
                            let got = cursor.archive_available(offset);
                            let want = match model.states.get_mut(offset as usize) {
                                Some((state, delivery_count)) if matches!(state, ModelState::Available { .. }) => {
                                    *state = ModelState::Archived;
                                    Some(Archived { offset, delivery_count: *delivery_count })
                                }
                                _ => None,
                            };
                            prop_assert_eq!(got, want);
                        }
                        Op::Renew { consumer, offset, lock_ms } => {
                            let got = cursor.renew(ConsumerId(consumer), offset, lock_ms, now_ms);
                            let want = model
                                .set(ConsumerId(consumer), offset, ModelState::Acquired { consumer: ConsumerId(consumer), deadline_ms: now_ms + lock_ms })
                                .map(|_| ());
                            prop_assert_eq!(got, want);
                        }
                        Op::ReleaseAll { consumer } => {
                            let got = cursor.release_all(ConsumerId(consumer));
                            let mut want = Vec::new();
                            for (offset, (state, _)) in model.states.iter_mut().enumerate() {
                                if matches!(*state, ModelState::Acquired { consumer: holder, .. } if holder == ConsumerId(consumer)) {
                                    *state = ModelState::Available { not_before_ms: i64::MIN };
                                    want.push(offset as u64);
                                }
                            }
                            prop_assert_eq!(got, want);
                        }
                        Op::Expire => {
                            let mut got = cursor.expire_locks(now_ms);
                            got.sort_unstable();
                            prop_assert_eq!(got, model.expire(now_ms));
                        }
                        Op::Tick(delta_ms) => now_ms += delta_ms,
                        Op::Restart => {
                            for event in cursor.take_events() {
                                replayed.apply(event);
                            }
                            cursor = ShareCursor::restore(config, replayed.clone());
                            cursor.set_end(model.states.len() as u64);
                            learn(&mut cursor, &model);
                            model.restart();
                        }
                    }
                    prop_assert_eq!(cursor.start(), model.start());
                    let available = model.states.iter().filter(|(state, _)| matches!(state, ModelState::Available { .. })).count() as u64;
                    prop_assert_eq!(cursor.available_count(), available);
                    let acquired = model.states.iter().filter(|(state, _)| matches!(state, ModelState::Acquired { .. })).count();
                    prop_assert_eq!(cursor.acquired_count(), acquired);
                    if count_bytes {
                        let ready_bytes: u64 = model
                            .states
                            .iter()
                            .enumerate()
                            .filter(|(_, (state, _))| matches!(state, ModelState::Available { .. }))
                            .map(|(offset, _)| u64::from(size_of(offset as u64)))
                            .sum();
                        prop_assert_eq!(cursor.ready_bytes(), ready_bytes);
                    }
                    for (offset, (_, count)) in model.states.iter().enumerate().skip(model.start() as usize) {
                        prop_assert_eq!(cursor.delivery_count(offset as u64), *count, "offset {}", offset);
                    }
                    // Replaying the journal rebuilds exactly the durable state.
                    for event in cursor.take_events() {
                        replayed.apply(event);
                    }
                    prop_assert_eq!(ShareCursor::restore(config, replayed.clone()).image(), cursor.image());
                }
            }
        }
    }
}
