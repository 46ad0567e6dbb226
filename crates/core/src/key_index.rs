//! One partition's key index for conditional appends: the latest offset of
//! each key (hashed), the offsets predicted for appends in flight, and the
//! check of an append's conditions against both. Pure: the keys of batches
//! and the offsets appends were acknowledged at go in, verdicts come out;
//! the partition (`producer.rs`) feeds it under its lock, in enqueue order,
//! and reads the log. Knows nothing of headers or wire formats.
//!
//! A partition's index remembers keys only from its first key condition
//! on (it then reads the partition's log once): partitions nobody
//! conditions on keys cost no memory and no read at start.
//!
//! Bounds: keys are kept as 64-bit SipHash values under a per-process random
//! key (about 40 bytes a key), at most [`KEYS_MAX`] per partition. Past that
//! the half with the oldest offsets is forgotten; a condition on a key the
//! index does not hold is then refused as unknown (`KeyUnknown`), never
//! accepted. Two keys with one hash can only make a condition fail, never
//! pass: an accepted condition always names an offset of its own key.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use conveyor_log::batch::whole_batches;
use conveyor_log::record::record_views;

use crate::append_condition::{AppendCondition, ConditionFailed, Expectation, offset_or_new};

/// Keys remembered per partition before the oldest half is forgotten.
pub const KEYS_MAX: usize = 1 << 20;

/// What the index needs of one batch: how many offsets it takes and, if its
/// records could be read (uncompressed, well formed), their offset deltas
/// and key hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchKeys {
    offset_count: u64,
    /// `None`: the batch's keys are unknown (compressed or unreadable).
    records: Option<Vec<(u64, Option<u64>)>>,
}

/// The keys of the batches of one append, read before it is enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendKeys {
    batches: Vec<BatchKeys>,
}

impl AppendKeys {
    /// Reads the keys of every batch in `bytes` (whole batches, as appended
    /// or read from a log). Stops at bytes that are not a whole batch.
    pub fn read(bytes: &[u8], hasher: &RandomState) -> AppendKeys {
        let batches = whole_batches(bytes)
            .map(|(header, batch)| BatchKeys {
                offset_count: header.offset_count(),
                records: record_views(batch).ok().map(|views| {
                    views
                        .iter()
                        .map(|view| (view.offset_delta.max(0) as u64, view.key.map(|key| hasher.hash_one(key))))
                        .collect()
                }),
            })
            .collect();
        AppendKeys { batches }
    }

    /// A control batch (a transaction marker): one offset, no keys.
    pub fn marker() -> AppendKeys {
        AppendKeys {
            batches: vec![BatchKeys {
                offset_count: 1,
                records: Some(Vec::new()),
            }],
        }
    }

    fn offset_count(&self) -> u64 {
        self.batches.iter().map(|batch| batch.offset_count).sum()
    }

    /// Every readable record's (offset, key hash) from `base_offset`, in
    /// order, and the last offset of the last batch whose keys are unknown.
    fn placed(&self, base_offset: u64) -> (Vec<(u64, Option<u64>)>, Option<u64>) {
        let mut records = Vec::new();
        let mut opaque_last = None;
        let mut batch_base = base_offset;
        for batch in &self.batches {
            match &batch.records {
                Some(keys) => records.extend(keys.iter().map(|&(delta, hash)| (batch_base + delta, hash))),
                None => opaque_last = Some(batch_base + batch.offset_count.saturating_sub(1)),
            }
            batch_base += batch.offset_count;
        }
        (records, opaque_last)
    }
}

/// An append enqueued on the log whose acknowledgement is awaited.
#[derive(Debug)]
struct InFlight {
    ticket: u64,
    base_offset: u64,
    /// (predicted offset, key hash) of its keyed records.
    keys: Vec<(u64, u64)>,
    opaque_last: Option<u64>,
}

/// A claim on an enqueued append, handed back with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// What the index can say about a key's latest record.
enum Latest {
    At(Option<u64>),
    Unknown(String),
}

/// The key index of one partition (see the module's comment).
#[derive(Debug)]
pub struct KeyIndex {
    hasher: RandomState,
    /// Latest acknowledged offset of each key hash.
    latest: HashMap<u64, u64>,
    /// Keys whose latest offset was below this were forgotten (0: none).
    forgotten_below: u64,
    /// The last offset of the latest acknowledged batch whose keys are unknown.
    opaque_last: Option<u64>,
    /// Enqueued appends, oldest first, at their predicted offsets.
    in_flight: VecDeque<InFlight>,
    /// The offset the next enqueued append will get, while not `stale`.
    next_offset: u64,
    /// An append failed or got other offsets than predicted: predictions are
    /// wrong until nothing is in flight and the log says where it is.
    stale: bool,
    tickets: u64,
    /// Why the rebuild could not read the whole log, if it could not: key
    /// conditions are then refused as unknown until the next start.
    unreadable: Option<String>,
    /// Whether acknowledged keys are remembered. A partition's index starts
    /// without (no memory, no read of the log at start) and is read from
    /// the log on its first key condition ([`KeyIndex::tracks_keys`]).
    tracking: bool,
}

impl KeyIndex {
    /// An empty index for a log whose next offset is `next_offset`.
    pub fn new(hasher: RandomState, next_offset: u64) -> KeyIndex {
        KeyIndex {
            hasher,
            latest: HashMap::new(),
            forgotten_below: 0,
            opaque_last: None,
            in_flight: VecDeque::new(),
            next_offset,
            stale: false,
            tickets: 0,
            unreadable: None,
            tracking: true,
        }
    }

    /// An index that remembers no keys until [`KeyIndex::start_tracking`]:
    /// what a partition opens with, so that only partitions whose appends
    /// carry key conditions pay for the index (offset conditions need none).
    pub fn untracked(hasher: RandomState, next_offset: u64) -> KeyIndex {
        KeyIndex {
            tracking: false,
            ..KeyIndex::new(hasher, next_offset)
        }
    }

    /// Whether acknowledged keys are remembered (see [`KeyIndex::untracked`]).
    pub fn tracks_keys(&self) -> bool {
        self.tracking
    }

    /// Remembers keys from now on; the caller then [`KeyIndex::learn`]s the
    /// acknowledged part of the log (appends in flight carry their keys).
    pub fn start_tracking(&mut self) {
        self.tracking = true;
    }

    pub fn hasher(&self) -> &RandomState {
        &self.hasher
    }

    /// Keys held, for tests and metrics.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Learns an append already in the log at `base_offset` (the rebuild
    /// at start reads every batch through here).
    pub fn learn(&mut self, base_offset: u64, keys: &AppendKeys) {
        let (records, opaque_last) = keys.placed(base_offset);
        for (offset, hash) in records {
            if let Some(hash) = hash {
                self.remember(hash, offset);
            }
        }
        if let Some(last) = opaque_last {
            self.opaque_last = Some(self.opaque_last.map_or(last, |known| known.max(last)));
        }
        self.next_offset = self.next_offset.max(base_offset + keys.offset_count());
    }

    /// The rebuild could not read the log past some point: no key is known
    /// for sure.
    pub fn set_unreadable(&mut self, why: String) {
        self.unreadable = Some(why);
    }

    /// Checks `conditions` against the offsets `keys`' records would get if
    /// enqueued now. `idle_next_offset` is the log's next offset, trusted
    /// only when nothing is in flight.
    pub fn check(&mut self, keys: &AppendKeys, conditions: &[AppendCondition], idle_next_offset: u64) -> Result<(), ConditionFailed> {
        if conditions.is_empty() {
            return Ok(());
        }
        if self.stale {
            if !self.in_flight.is_empty() {
                return Err(ConditionFailed::Unsettled);
            }
            self.next_offset = idle_next_offset;
            self.stale = false;
        }
        let (records, _) = keys.placed(self.next_offset);
        let mut earlier: HashMap<u64, u64> = HashMap::new();
        for condition in conditions {
            if condition.record >= records.len() {
                return Err(ConditionFailed::NoSuchRecord { record: condition.record });
            }
        }
        for (position, &(offset, hash)) in records.iter().enumerate() {
            for condition in conditions.iter().filter(|condition| condition.record == position) {
                match condition.expectation {
                    Expectation::Offset(expected) if expected != offset => {
                        return Err(ConditionFailed::Offset {
                            record: position,
                            expected,
                            actual: offset,
                        });
                    }
                    Expectation::Offset(_) => {}
                    Expectation::KeyOffset(expected) => {
                        let hash = hash.ok_or(ConditionFailed::Keyless { record: position })?;
                        let latest = match earlier.get(&hash) {
                            Some(&offset) => Latest::At(Some(offset)),
                            None => self.latest_of(hash),
                        };
                        match latest {
                            Latest::At(actual) if actual == expected => {}
                            Latest::At(actual) => {
                                return Err(ConditionFailed::KeyOffset {
                                    record: position,
                                    expected: offset_or_new(expected),
                                    actual: offset_or_new(actual),
                                });
                            }
                            Latest::Unknown(why) => {
                                return Err(ConditionFailed::KeyUnknown {
                                    record: position,
                                    expected: offset_or_new(expected),
                                    why,
                                });
                            }
                        }
                    }
                }
            }
            if let Some(hash) = hash {
                earlier.insert(hash, offset);
            }
        }
        Ok(())
    }

    fn latest_of(&self, hash: u64) -> Latest {
        if let Some(why) = &self.unreadable {
            return Latest::Unknown(format!("the key index could not read the partition's log at start: {why}"));
        }
        for append in self.in_flight.iter().rev() {
            let keyed = append.keys.iter().rev().find(|(_, key)| *key == hash).map(|(offset, _)| *offset);
            match (keyed, append.opaque_last) {
                (Some(offset), Some(opaque)) if opaque > offset => return Latest::Unknown(compressed(opaque)),
                (Some(offset), _) => return Latest::At(Some(offset)),
                (None, Some(opaque)) => return Latest::Unknown(compressed(opaque)),
                (None, None) => {}
            }
        }
        let latest = self.latest.get(&hash).copied();
        match (latest, self.opaque_last) {
            (Some(offset), Some(opaque)) if opaque > offset => Latest::Unknown(compressed(opaque)),
            (Some(offset), _) => Latest::At(Some(offset)),
            (None, Some(opaque)) => Latest::Unknown(compressed(opaque)),
            (None, None) if self.forgotten_below > 0 => Latest::Unknown(format!(
                "the index holds at most {KEYS_MAX} keys and forgot those last written below offset {}",
                self.forgotten_below
            )),
            (None, None) => Latest::At(None),
        }
    }

    /// `keys` was enqueued on the log (after [`KeyIndex::check`], under the
    /// same lock): its records are predicted to follow what is in flight.
    pub fn enqueued(&mut self, keys: &AppendKeys) -> Ticket {
        self.tickets += 1;
        let (records, opaque_last) = keys.placed(self.next_offset);
        self.in_flight.push_back(InFlight {
            ticket: self.tickets,
            base_offset: self.next_offset,
            keys: records.into_iter().filter_map(|(offset, hash)| Some((offset, hash?))).collect(),
            opaque_last,
        });
        self.next_offset += keys.offset_count();
        Ticket(self.tickets)
    }

    /// The append of `ticket` was acknowledged at `base_offset`, or failed
    /// (`None`: nothing of it was written).
    pub fn settled(&mut self, ticket: Ticket, base_offset: Option<u64>) {
        let Some(at) = self.in_flight.iter().position(|append| append.ticket == ticket.0) else {
            return;
        };
        let Some(append) = self.in_flight.remove(at) else {
            return;
        };
        let Some(base_offset) = base_offset else {
            self.stale = true;
            return;
        };
        if base_offset != append.base_offset {
            self.stale = true;
        }
        let shift = |offset: u64| offset - append.base_offset + base_offset;
        for (offset, hash) in &append.keys {
            self.remember(*hash, shift(*offset));
        }
        if let Some(last) = append.opaque_last.map(shift) {
            self.opaque_last = Some(self.opaque_last.map_or(last, |known| known.max(last)));
        }
    }

    /// The append of `ticket` never reached the log (refused before the
    /// enqueue): its offsets are given back.
    pub fn withdrawn(&mut self, ticket: Ticket) {
        if self.in_flight.back().is_some_and(|append| append.ticket == ticket.0) {
            if let Some(append) = self.in_flight.pop_back() {
                self.next_offset = append.base_offset;
            }
        } else {
            self.settled(ticket, None);
        }
    }

    fn remember(&mut self, hash: u64, offset: u64) {
        if !self.tracking {
            return;
        }
        // Acknowledgements may be handled out of order: keep the latest.
        let entry = self.latest.entry(hash).or_insert(offset);
        *entry = (*entry).max(offset);
        if self.latest.len() > KEYS_MAX {
            self.forget_oldest_half();
        }
    }

    fn forget_oldest_half(&mut self) {
        let mut offsets: Vec<u64> = self.latest.values().copied().collect();
        let middle = offsets.len() / 2;
        let (_, &mut threshold, _) = offsets.select_nth_unstable(middle);
        self.latest.retain(|_, offset| *offset >= threshold);
        self.forgotten_below = self.forgotten_below.max(threshold);
    }
}

fn compressed(last_offset: u64) -> String {
    format!("a batch up to offset {last_offset} is compressed, and the broker does not read the keys of compressed batches")
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::record::{BatchBuilder, Record};

    fn keyed(keys: &[&str]) -> bytes::Bytes {
        let mut builder = BatchBuilder::new(1);
        for key in keys {
            builder.push(Record::new(Some(key.as_bytes().to_vec()), Some(b"v".to_vec())));
        }
        builder.build()
    }

    fn key_at(record: usize, offset: Option<u64>) -> AppendCondition {
        AppendCondition {
            record,
            expectation: Expectation::KeyOffset(offset),
        }
    }

    fn offset_is(record: usize, offset: u64) -> AppendCondition {
        AppendCondition {
            record,
            expectation: Expectation::Offset(offset),
        }
    }

    /// Enqueues and acknowledges at the predicted offsets, as a healthy log does.
    fn append(index: &mut KeyIndex, keys: &AppendKeys) -> u64 {
        let base = index.next_offset;
        let ticket = index.enqueued(keys);
        index.settled(ticket, Some(base));
        base
    }

    #[test]
    fn a_key_condition_passes_only_at_the_keys_latest_offset() {
        let mut index = KeyIndex::new(RandomState::new(), 0);
        let first = AppendKeys::read(&keyed(&["a", "b", "a"]), index.hasher());
        index
            .check(&first, &[key_at(0, None), key_at(1, None), key_at(2, Some(0))], 0)
            .expect("new keys, then a at 0");
        append(&mut index, &first);
        let next = AppendKeys::read(&keyed(&["a"]), index.hasher());
        assert_eq!(
            index.check(&next, &[key_at(0, Some(0))], 3),
            Err(ConditionFailed::KeyOffset {
                record: 0,
                expected: 0,
                actual: 2
            })
        );
        assert_eq!(
            index.check(&next, &[key_at(0, None)], 3),
            Err(ConditionFailed::KeyOffset {
                record: 0,
                expected: -1,
                actual: 2
            })
        );
        index
            .check(&next, &[key_at(0, Some(2)), offset_is(0, 3)], 3)
            .expect("a at 2, next offset 3");
        assert_eq!(
            index.check(&next, &[offset_is(0, 4)], 3),
            Err(ConditionFailed::Offset {
                record: 0,
                expected: 4,
                actual: 3
            })
        );
    }

    #[test]
    fn appends_in_flight_count_before_they_are_acknowledged() {
        let mut index = KeyIndex::new(RandomState::new(), 10);
        let a = AppendKeys::read(&keyed(&["a"]), index.hasher());
        index.check(&a, &[key_at(0, None)], 10).expect("new");
        let ticket = index.enqueued(&a);
        // A second writer that read before the first append landed loses.
        assert_eq!(
            index.check(&a, &[key_at(0, None)], 10),
            Err(ConditionFailed::KeyOffset {
                record: 0,
                expected: -1,
                actual: 10
            })
        );
        index
            .check(&a, &[key_at(0, Some(10)), offset_is(0, 11)], 10)
            .expect("sees the prediction");
        index.settled(ticket, Some(10));
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_failed_append_makes_conditions_wait_until_the_log_says_where_it_is() {
        let mut index = KeyIndex::new(RandomState::new(), 0);
        let a = AppendKeys::read(&keyed(&["a"]), index.hasher());
        let failed = index.enqueued(&a);
        let later = index.enqueued(&a);
        index.settled(failed, None);
        assert_eq!(index.check(&a, &[key_at(0, None)], 0), Err(ConditionFailed::Unsettled));
        // The later append got offset 0, not the predicted 1.
        index.settled(later, Some(0));
        index
            .check(&a, &[key_at(0, Some(0)), offset_is(0, 1)], 1)
            .expect("resynced from the log");
    }

    #[test]
    fn a_withdrawn_append_gives_its_offsets_back() {
        let mut index = KeyIndex::new(RandomState::new(), 5);
        let a = AppendKeys::read(&keyed(&["a", "b"]), index.hasher());
        let ticket = index.enqueued(&a);
        index.withdrawn(ticket);
        index
            .check(&a, &[offset_is(0, 5), key_at(1, None)], 5)
            .expect("as if never enqueued");
    }

    #[test]
    fn a_compressed_batch_makes_key_conditions_unknown_but_not_offset_ones() {
        let mut index = KeyIndex::new(RandomState::new(), 0);
        let a = AppendKeys::read(&keyed(&["a"]), index.hasher());
        append(&mut index, &a);
        let mut compressed = bytes::BytesMut::from(&keyed(&["a", "b"])[..]);
        compressed[22] |= 1; // gzip
        let compressed = AppendKeys::read(&compressed, index.hasher());
        append(&mut index, &compressed);
        let next = AppendKeys::read(&keyed(&["a"]), index.hasher());
        assert!(matches!(
            index.check(&next, &[key_at(0, Some(0))], 3),
            Err(ConditionFailed::KeyUnknown { expected: 0, .. })
        ));
        index.check(&next, &[offset_is(0, 3)], 3).expect("offsets are still known");
    }

    #[test]
    fn past_the_cap_the_oldest_keys_are_forgotten_and_their_conditions_refused() {
        let mut index = KeyIndex::new(RandomState::new(), 0);
        for offset in 0..=KEYS_MAX as u64 {
            index.remember(offset, offset);
        }
        assert!(index.len() <= KEYS_MAX / 2 + 1, "the older half is gone: {}", index.len());
        assert!(matches!(index.latest_of(0), Latest::Unknown(_)), "an old key is unknown, not new");
        assert!(
            matches!(index.latest_of(KEYS_MAX as u64), Latest::At(Some(_))),
            "a recent key is kept"
        );
    }

    #[test]
    fn an_index_that_could_not_read_its_log_refuses_key_conditions_but_not_offset_ones() {
        let mut index = KeyIndex::new(RandomState::new(), 4);
        index.set_unreadable("segment 0 is gone".into());
        let a = AppendKeys::read(&keyed(&["a"]), index.hasher());
        assert!(matches!(
            index.check(&a, &[key_at(0, None)], 4),
            Err(ConditionFailed::KeyUnknown { .. })
        ));
        index.check(&a, &[offset_is(0, 4)], 4).expect("offsets are known");
    }

    #[test]
    fn no_record_or_no_key_is_refused_not_ignored() {
        let mut index = KeyIndex::new(RandomState::new(), 0);
        let mut builder = BatchBuilder::new(1);
        builder.push(Record::new(None, Some(b"v".to_vec())));
        let keyless = AppendKeys::read(&builder.build(), index.hasher());
        assert_eq!(
            index.check(&keyless, &[key_at(0, None)], 0),
            Err(ConditionFailed::Keyless { record: 0 })
        );
        assert_eq!(
            index.check(&keyless, &[offset_is(1, 1)], 0),
            Err(ConditionFailed::NoSuchRecord { record: 1 })
        );
    }
}
