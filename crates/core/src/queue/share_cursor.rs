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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

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
}

impl Default for ShareCursorConfig {
    fn default() -> ShareCursorConfig {
        ShareCursorConfig {
            delivery_limit: None,
            in_flight_max: 100_000,
        }
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
    /// Handed to the consumer, lowest offset first.
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

/// A state change that must survive a crash, in the order it happened.
/// Releases, renewals and lock expiries are not among them: after a restart
/// every acquired message is available again anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// The message was acquired; it has now been delivered `delivery_count` times.
    Delivered {
        offset: u64,
        delivery_count: u32,
    },
    Acknowledged {
        offset: u64,
    },
    Archived {
        offset: u64,
        delivery_count: u32,
    },
}

/// How a message's state survives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurableState {
    /// Delivered before (acquired or released when saved): available again.
    Available,
    Acknowledged,
    Archived,
}

/// The durable part of a cursor: what a snapshot holds and replay rebuilds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorImage {
    /// Every offset below is acknowledged or archived.
    pub start: u64,
    /// Offsets at or above `start` with a delivery count or a final state.
    pub entries: BTreeMap<u64, (DurableState, u32)>,
}

impl CursorImage {
    /// Applies one replayed event. Events below the start are already settled.
    pub fn apply(&mut self, event: JournalEvent) {
        let (offset, state, count) = match event {
            JournalEvent::Delivered { offset, delivery_count } => (offset, DurableState::Available, Some(delivery_count)),
            JournalEvent::Acknowledged { offset } => (offset, DurableState::Acknowledged, None),
            JournalEvent::Archived { offset, delivery_count } => (offset, DurableState::Archived, Some(delivery_count)),
        };
        if offset < self.start {
            return;
        }
        let entry = self.entries.entry(offset).or_insert((DurableState::Available, 0));
        // A settled message stays settled whatever a stale event says.
        if entry.0 == DurableState::Available {
            entry.0 = state;
        }
        if let Some(count) = count {
            entry.1 = entry.1.max(count);
        }
    }
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
    delayed: BTreeSet<(i64, u64)>,
    locks: BTreeSet<(i64, u64)>,
    held: HashMap<ConsumerId, BTreeSet<u64>>,
    /// Changes not yet taken by the journal.
    events: Vec<JournalEvent>,
}

impl ShareCursor {
    /// An empty cursor at offset 0.
    pub fn new(config: ShareCursorConfig) -> ShareCursor {
        ShareCursor::restore(config, CursorImage::default())
    }

    /// Rebuilds a cursor from its durable image: acknowledged and archived
    /// messages stay so; every other message with a delivery count is
    /// available again and keeps its count.
    pub fn restore(config: ShareCursorConfig, image: CursorImage) -> ShareCursor {
        let mut cursor = ShareCursor {
            config,
            start: image.start,
            end: image.start,
            fresh: image.start,
            entries: BTreeMap::new(),
            ready: BTreeSet::new(),
            delayed: BTreeSet::new(),
            locks: BTreeSet::new(),
            held: HashMap::new(),
            events: Vec::new(),
        };
        for (offset, (state, delivery_count)) in image.entries.range(image.start..) {
            let state = match state {
                DurableState::Available => State::Available { not_before_ms: i64::MIN },
                DurableState::Acknowledged => State::Acknowledged,
                DurableState::Archived => State::Archived,
            };
            cursor.set_state(*offset, state, *delivery_count);
        }
        cursor.advance_start();
        cursor
    }

    /// The durable part of the state, for a snapshot.
    pub fn image(&self) -> CursorImage {
        CursorImage {
            start: self.start,
            entries: self
                .entries
                .iter()
                .map(|(offset, entry)| {
                    let state = match entry.state {
                        State::Available { .. } | State::Acquired { .. } => DurableState::Available,
                        State::Acknowledged => DurableState::Acknowledged,
                        State::Archived => DurableState::Archived,
                    };
                    (*offset, (state, entry.delivery_count))
                })
                .collect(),
        }
    }

    pub fn config(&self) -> ShareCursorConfig {
        self.config
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
        self.start = offset;
        self.end = self.end.max(offset);
        self.advance_start();
    }

    /// Messages currently acquired by anyone.
    pub fn acquired_count(&self) -> usize {
        self.locks.len()
    }

    /// Messages that can be acquired now or after a delay (not counting
    /// never-delivered ones above the in-flight window).
    pub fn available_count(&self) -> u64 {
        let never_delivered = self.end.saturating_sub(self.fresh);
        let below_fresh = self.entries.range(self.fresh..).count() as u64;
        (self.ready.len() + self.delayed.len()) as u64 + never_delivered.saturating_sub(below_fresh)
    }

    /// The changes since the last call, oldest first, for the journal.
    pub fn take_events(&mut self) -> Vec<JournalEvent> {
        std::mem::take(&mut self.events)
    }

    /// Hands `consumer` up to `max_messages` of the lowest available offsets
    /// below the end, locked until `now_ms + lock_ms`, each with its delivery
    /// count incremented. Expired locks and elapsed delays are applied first.
    /// A message whose count would pass the delivery limit is archived and
    /// reported instead of delivered.
    pub fn acquire(&mut self, consumer: ConsumerId, max_messages: usize, lock_ms: i64, now_ms: i64) -> Acquisition {
        self.expire_locks(now_ms);
        let mut acquisition = Acquisition::default();
        let deadline_ms = now_ms.saturating_add(lock_ms.max(0));
        // Each pass takes one ready offset or one fresh offset, so this bounds the loop.
        let passes_max = self.ready.len().saturating_add(max_messages);
        for _ in 0..passes_max {
            if acquisition.acquired.len() >= max_messages {
                break;
            }
            let ready = self.ready.first().copied();
            let fresh = self.next_fresh();
            let offset = match (ready, fresh) {
                (Some(ready), Some(fresh)) => ready.min(fresh),
                (Some(offset), None) | (None, Some(offset)) => offset,
                (None, None) => break,
            };
            let delivery_count = self
                .entries
                .get(&offset)
                .map(|entry| entry.delivery_count)
                .unwrap_or(0)
                .saturating_add(1);
            if fresh == Some(offset) {
                self.fresh = offset + 1;
            }
            if self.config.delivery_limit.is_some_and(|limit| delivery_count > limit.max(1)) {
                let delivery_count = delivery_count - 1;
                self.set_state(offset, State::Archived, delivery_count);
                self.events.push(JournalEvent::Archived { offset, delivery_count });
                acquisition.archived.push(Archived { offset, delivery_count });
                continue;
            }
            self.set_state(offset, State::Acquired { consumer, deadline_ms }, delivery_count);
            self.events.push(JournalEvent::Delivered { offset, delivery_count });
            acquisition.acquired.push(Acquired { offset, delivery_count });
        }
        self.advance_start();
        acquisition
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
    pub fn ack(&mut self, consumer: ConsumerId, offset: u64) -> Result<(), CursorError> {
        let delivery_count = self.held_by(consumer, offset)?;
        self.set_state(offset, State::Acknowledged, delivery_count);
        self.events.push(JournalEvent::Acknowledged { offset });
        self.advance_start();
        Ok(())
    }

    /// The consumer gives the message back: available again, but not before
    /// `now_ms + delay_ms` (a delayed retry). The delivery count stays.
    pub fn release(&mut self, consumer: ConsumerId, offset: u64, delay_ms: i64, now_ms: i64) -> Result<(), CursorError> {
        let delivery_count = self.held_by(consumer, offset)?;
        let not_before_ms = if delay_ms > 0 { now_ms.saturating_add(delay_ms) } else { i64::MIN };
        self.set_state(offset, State::Available { not_before_ms }, delivery_count);
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

    /// The delivery count of `offset` (0 if never delivered or already forgotten).
    pub fn delivery_count(&self, offset: u64) -> u32 {
        self.entries.get(&offset).map(|entry| entry.delivery_count).unwrap_or(0)
    }

    /// The delivery count of `offset` if `consumer` holds it.
    fn held_by(&self, consumer: ConsumerId, offset: u64) -> Result<u32, CursorError> {
        let Some(entry) = self.entries.get(&offset) else {
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
            }
            State::Available { not_before_ms } => {
                self.delayed.insert((not_before_ms, offset));
            }
            State::Acquired { consumer, deadline_ms } => {
                self.locks.insert((deadline_ms, offset));
                self.held.entry(consumer).or_default().insert(offset);
            }
            State::Acknowledged | State::Archived => {}
        }
        self.entries.insert(offset, Entry { state, delivery_count });
    }

    fn remove_entry(&mut self, offset: u64) {
        self.unindex(offset);
        self.entries.remove(&offset);
    }

    fn unindex(&mut self, offset: u64) {
        let Some(entry) = self.entries.get(&offset) else {
            return;
        };
        match entry.state {
            State::Available { not_before_ms } => {
                self.ready.remove(&offset);
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
