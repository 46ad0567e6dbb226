//! The order a share cursor delivers in: message groups (one acquisition
//! of a group at a time, in offset order), priorities (highest first) and
//! not-before times (a delayed message waits), from what the caller tells
//! of each message ([`ShareCursor::learn_order`]). Knows offsets and their
//! facts, not records.

use std::cmp::Reverse;
use std::collections::HashSet;

use super::{Acquisition, ConsumerId, ShareCursor, State};

/// The group of a message: its record key (no key is the empty group).
pub type GroupKey = Vec<u8>;

/// What decides a message's place in the delivery order, which the cursor
/// learns from the log ([`ShareCursor::learn_order`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFacts {
    /// Its group (the empty one without a key).
    pub group: GroupKey,
    /// Its priority as published (0 without one).
    pub priority: u8,
    /// Not delivered before this time (ms since the epoch), with delays on.
    pub not_before_ms: Option<i64>,
}

impl ShareCursor {
    /// [`ShareCursor::acquire`] with priorities: every candidate is a ready
    /// entry, ranked, so the first of the ranking is the next to go.
    pub(super) fn acquire_ranked(
        &mut self,
        consumer: ConsumerId,
        max_messages: usize,
        lock_ms: i64,
        now_ms: i64,
        below: u64,
        delayed: bool,
    ) -> Acquisition {
        let mut acquisition = Acquisition::default();
        let deadline_ms = now_ms.saturating_add(lock_ms.max(0));
        self.rank_fresh();
        // Each pass takes (or archives, past the delivery limit) the first
        // ranked offsets below `below` out of the ranking.
        for _ in 0..=self.ready_ranked.len() {
            let wanted = max_messages.saturating_sub(acquisition.acquired.len());
            let next: Vec<u64> = self
                .ready_ranked
                .iter()
                .map(|&(_, offset)| offset)
                .filter(|offset| *offset < below)
                .take(wanted)
                .collect();
            if next.is_empty() {
                break;
            }
            for offset in next {
                // A message still early leaves the ranking until it is due.
                if !(delayed && self.wait_if_early(offset, now_ms)) {
                    self.take(offset, consumer, deadline_ms, now_ms, &mut acquisition);
                }
            }
        }
        self.advance_start();
        acquisition
    }

    /// With priorities: makes the never-delivered offsets inside the
    /// in-flight window whose priorities are known ready entries, so they
    /// are ranked against the messages given back.
    fn rank_fresh(&mut self) {
        // `next_fresh` stops at the window's end.
        for _ in 0..self.config.in_flight_max {
            let Some(offset) = self.next_fresh().filter(|offset| *offset < self.order_known_end) else {
                break;
            };
            self.fresh = offset + 1;
            self.set_state(offset, State::Available { not_before_ms: i64::MIN }, 0);
        }
    }

    /// With delays: if `offset`'s not-before time is after `now_ms`, makes
    /// it an available entry that waits until then (without counting a
    /// delivery) and says so.
    pub(super) fn wait_if_early(&mut self, offset: u64, now_ms: i64) -> bool {
        let Some(not_before_ms) = self
            .not_before
            .get(&offset)
            .copied()
            .filter(|not_before_ms| *not_before_ms > now_ms)
        else {
            return false;
        };
        let delivery_count = self.delivery_count(offset);
        self.set_state(offset, State::Available { not_before_ms }, delivery_count);
        true
    }

    /// With message groups: the groups that may not deliver now, because one
    /// of their messages is acquired or waits out a retry delay.
    pub(super) fn blocked_groups(&self) -> HashSet<GroupKey> {
        if !self.config.message_groups {
            return HashSet::new();
        }
        let held = self.locks.iter().map(|(_, offset)| offset);
        let delayed = self.delayed.iter().map(|(_, offset)| offset);
        held.chain(delayed)
            .map(|offset| self.groups.get(offset).cloned().unwrap_or_default())
            .collect()
    }

    /// Whether the cursor orders deliveries by what it learns of messages.
    pub(super) fn wants_order(&self) -> bool {
        self.config.message_groups || self.config.ranked() || self.config.delays
    }

    /// With message groups, priorities or delays: the offsets whose groups,
    /// priorities and not-before times the caller should tell ([`ShareCursor::learn_order`])
    /// before they can be delivered, if any. Only offsets inside the
    /// in-flight window are asked for, which bounds what is kept in memory.
    pub fn order_wanted(&self) -> Option<std::ops::Range<u64>> {
        let from = self.order_known_end.max(self.start);
        let to = self.end.min(self.start.saturating_add(self.config.in_flight_max));
        (self.wants_order() && from < to).then_some(from..to)
    }

    /// Tells the cursor the groups and priorities of the offsets in `range`
    /// (which starts at or below where [`ShareCursor::order_wanted`]
    /// starts): `facts` lists some of them; the others have no key and
    /// priority 0.
    pub fn learn_order(&mut self, range: std::ops::Range<u64>, facts: impl IntoIterator<Item = (u64, OrderFacts)>) {
        let known_end = self.order_known_end.max(self.start);
        if !self.wants_order() || range.start > known_end {
            return;
        }
        let ranked = self.config.ranked();
        for (
            offset,
            OrderFacts {
                group,
                priority,
                not_before_ms,
            },
        ) in facts
        {
            if !range.contains(&offset) || self.is_settled(offset) {
                continue;
            }
            // Only a message never acquired waits: one delivered was due.
            if let Some(not_before_ms) =
                not_before_ms.filter(|_| self.config.delays && offset >= known_end && self.delivery_count(offset) == 0)
            {
                self.not_before.insert(offset, not_before_ms);
            }
            if self.config.message_groups && !group.is_empty() {
                self.groups.insert(offset, group);
            }
            // A priority once known never changes: the ranking relies on it.
            let priority = priority.min(self.config.max_priority);
            if ranked && priority > 0 && offset >= known_end {
                self.priorities.insert(offset, priority);
            }
        }
        let learned_end = self.order_known_end.max(range.end);
        if ranked {
            // Ready offsets whose priority is known now join the ranking
            // (entries restored from the journal, before it was known).
            let newly: Vec<u64> = self.ready.range(known_end..learned_end).copied().collect();
            for offset in newly {
                self.ready_ranked.insert((Reverse(self.priority(offset)), offset));
            }
        }
        self.order_known_end = learned_end;
    }

    /// An offset's priority as learned (0 if none or not known yet).
    pub(super) fn priority(&self, offset: u64) -> u8 {
        self.priorities.get(&offset).copied().unwrap_or(0)
    }

    /// Adds a ready offset to the ranking, with priorities on and its
    /// priority known.
    pub(super) fn rank(&mut self, offset: u64) {
        if self.config.ranked() && offset < self.order_known_end {
            self.ready_ranked.insert((Reverse(self.priority(offset)), offset));
        }
    }
}
