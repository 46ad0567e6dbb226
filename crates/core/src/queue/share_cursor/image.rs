//! The durable part of a share cursor: the events it journals, the image
//! a snapshot holds and replay rebuilds, and the cursor made from one and
//! back. Knows the cursor's states, not where the journal is kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{ShareCursor, ShareCursorConfig, Sizes, State};

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
    /// The message was given back to be delivered again no sooner than
    /// `not_before_ms` (a retry delay).
    Delayed {
        offset: u64,
        not_before_ms: i64,
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
    /// Available entries given back with a retry delay: not delivered
    /// again before this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_before: BTreeMap<u64, i64>,
}

impl CursorImage {
    /// Applies one replayed event. Events below the start are already settled.
    pub fn apply(&mut self, event: JournalEvent) {
        let (offset, state, count) = match event {
            JournalEvent::Delivered { offset, delivery_count } => (offset, DurableState::Available, Some(delivery_count)),
            JournalEvent::Acknowledged { offset } => (offset, DurableState::Acknowledged, None),
            JournalEvent::Archived { offset, delivery_count } => (offset, DurableState::Archived, Some(delivery_count)),
            JournalEvent::Delayed { offset, not_before_ms } => {
                let available = self.entries.get(&offset).is_some_and(|entry| entry.0 == DurableState::Available);
                if offset >= self.start && available {
                    self.not_before.insert(offset, not_before_ms);
                }
                return;
            }
        };
        if offset < self.start {
            return;
        }
        // Delivered again (its delay was over) or settled: no longer waiting.
        self.not_before.remove(&offset);
        let entry = self.entries.entry(offset).or_insert((DurableState::Available, 0));
        // A settled message stays settled whatever a stale event says.
        if entry.0 == DurableState::Available {
            entry.0 = state;
        }
        if let Some(count) = count {
            // The latest count, as the cursor journals them in order: an
            // acquisition given back undelivered ([`ShareCursor::defer`])
            // lowers it again.
            entry.1 = count;
        }
    }
}

impl ShareCursor {
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
            ready_ranked: BTreeSet::new(),
            delayed: BTreeSet::new(),
            locks: BTreeSet::new(),
            held: HashMap::new(),
            events: Vec::new(),
            groups: HashMap::new(),
            priorities: HashMap::new(),
            not_before: HashMap::new(),
            order_known_end: image.start,
            first_acquired_ms: HashMap::new(),
            sizes: Sizes {
                known_end: image.start,
                ..Sizes::default()
            },
        };
        for (offset, (state, delivery_count)) in image.entries.range(image.start..) {
            let state = match state {
                DurableState::Available => State::Available {
                    not_before_ms: image.not_before.get(offset).copied().unwrap_or(i64::MIN),
                },
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
                // An available entry never delivered (a message group skipped
                // it) is the same as no entry.
                .filter(|(_, entry)| entry.delivery_count > 0 || !matches!(entry.state, State::Available { .. }))
                .map(|(offset, entry)| {
                    let state = match entry.state {
                        State::Available { .. } | State::Acquired { .. } => DurableState::Available,
                        State::Acknowledged => DurableState::Acknowledged,
                        State::Archived => DurableState::Archived,
                    };
                    (*offset, (state, entry.delivery_count))
                })
                .collect(),
            not_before: self
                .entries
                .iter()
                .filter_map(|(offset, entry)| match entry.state {
                    State::Available { not_before_ms } if not_before_ms != i64::MIN && entry.delivery_count > 0 => {
                        Some((*offset, not_before_ms))
                    }
                    _ => None,
                })
                .collect(),
        }
    }
}
