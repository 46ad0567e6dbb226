//! Idempotent producers: per partition, the last five batches of each
//! producer id (sequence ranges and the offsets they got), so a retried batch
//! is answered with its original offsets instead of being written twice, and
//! a gap in sequences is refused (Kafka's `ProducerStateManager` rules).
//!
//! Atomicity: the sequence check and the enqueue of the append happen under
//! the partition's producer-state mutex. `Log::append` enqueues synchronously
//! and the writer assigns offsets in enqueue order, so two batches of one
//! producer can never be checked in one order and written in the other. The
//! offsets of an accepted batch are filled in when its append is acknowledged;
//! until then a retry of it is answered DUPLICATE_SEQUENCE_NUMBER (which
//! clients treat as success).
//!
//! State is rebuilt on start from the headers of the tail of the active
//! segment; a producer silent for longer than that starts afresh (its next
//! batch is accepted whatever its sequence), as Kafka does once the state of
//! an expired producer is gone.
//!
//! Conditional appends (`Partition::append_if`) are checked against the
//! partition's `KeyIndex` in the same critical section, and every append
//! (plain, idempotent, marker) is enqueued under that lock too, so the
//! offsets the index predicts are the ones the writer gives. The index is
//! rebuilt on start by reading the whole log once.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use conveyor_log::batch::{BatchHeader, whole_batches};
use conveyor_log::codec::DECOMPRESSED_BYTES_MAX;
use conveyor_log::record::BatchRecords;
use conveyor_log::{AppendInfo, Log};
use parking_lot::Mutex;

use crate::append_condition::AppendCondition;
use crate::error::{CoreError, Result};
use crate::key_index::{AppendKeys, KeyIndex};
use crate::queue::Committed;
use crate::stats::Flow;
use crate::transaction::marker::{control_batch, marker_kind};
use crate::transaction::{AbortedTransaction, MarkerKind, PartitionTransactions};

/// Batches remembered per producer (Kafka's `max.in.flight` bound for idempotence).
const BATCHES_REMEMBERED: usize = 5;
/// How much of the active segment's tail is scanned to rebuild producer state.
pub const REBUILD_SCAN_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_sequence: i32,
    last_sequence: i32,
    /// Filled once the append is acknowledged.
    offsets: Option<(u64, u64)>,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// What the check decided for one batch.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Append,
    /// A retry of a remembered batch: its offsets, if already known.
    Duplicate(Option<(u64, u64)>),
}

/// Producer state of one partition.
#[derive(Debug)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions, for the last stable offset.
    transactions: PartitionTransactions,
    /// Each key's latest offset and the offsets appends in flight will get,
    /// for conditional appends.
    keys: KeyIndex,
}

impl Default for ProducerState {
    fn default() -> ProducerState {
        ProducerState {
            producers: HashMap::new(),
            transactions: PartitionTransactions::default(),
            keys: KeyIndex::new(std::collections::hash_map::RandomState::new(), 0),
        }
    }
}

/// Kafka's sequence arithmetic: sequences wrap from `i32::MAX` to 0.
fn last_sequence(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX { 0 } else { sequence + 1 }
}

impl ProducerState {
    /// Rebuilds state from batch headers in log order; `marker_kind` reads
    /// what a control batch's marker says.
    pub fn rebuild(headers: &[BatchHeader], marker_kind: impl Fn(&BatchHeader) -> Option<MarkerKind>) -> ProducerState {
        let mut state = ProducerState::default();
        for header in headers.iter().filter(|header| header.producer_id >= 0) {
            if header.is_control() {
                state.marker(header.producer_id, header.producer_epoch);
                if marker_kind(header).is_some() {
                    state.transactions.ended(header.producer_id, header.base_offset as u64);
                }
                continue;
            }
            if header.is_transactional() {
                state.transactions.data_enqueued(header.producer_id, header.base_offset as u64);
                state.transactions.data_written(header.producer_id, header.base_offset as u64);
            }
            if header.base_sequence < 0 {
                continue;
            }
            state.accept(header, Some((header.base_offset as u64, header.last_offset() as u64)));
        }
        state
    }

    fn check(&mut self, header: &BatchHeader) -> Result<Verdict> {
        let first_sequence = header.base_sequence;
        let Some(entry) = self.producers.get_mut(&header.producer_id) else {
            // New producer, or one whose state has expired: accept.
            return Ok(Verdict::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(CoreError::InvalidProducerEpoch {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            // A bumped epoch restarts sequences at 0.
            if first_sequence != 0 {
                return Err(CoreError::OutOfOrderSequence {
                    producer_id: header.producer_id,
                    expected: 0,
                    received: first_sequence,
                });
            }
            return Ok(Verdict::Append);
        }
        let last = last_sequence(header);
        if let Some(known) = entry
            .batches
            .iter()
            .find(|batch| batch.first_sequence == first_sequence && batch.last_sequence == last)
        {
            return Ok(Verdict::Duplicate(known.offsets));
        }
        match entry.batches.back() {
            Some(previous) if first_sequence != next_sequence(previous.last_sequence) => Err(CoreError::OutOfOrderSequence {
                producer_id: header.producer_id,
                expected: next_sequence(previous.last_sequence),
                received: first_sequence,
            }),
            _ => Ok(Verdict::Append),
        }
    }

    /// A transaction marker of `producer_id` at `epoch`: a higher epoch (the
    /// coordinator fenced an older producer) restarts its sequences and
    /// refuses the older epoch from now on.
    fn marker(&mut self, producer_id: i64, epoch: i16) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
    }

    /// Records `header`'s batch as its producer's newest (a new epoch forgets
    /// the older epoch's batches); `offsets` once it is in the log.
    fn accept(&mut self, header: &BatchHeader, offsets: Option<(u64, u64)>) {
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.record(BatchMeta {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            offsets,
        });
    }

    fn settle(&mut self, header: &BatchHeader, outcome: Option<(u64, u64)>) {
        let Some(entry) = self.producers.get_mut(&header.producer_id) else {
            return;
        };
        let last = last_sequence(header);
        let position = entry
            .batches
            .iter()
            .position(|batch| batch.first_sequence == header.base_sequence && batch.last_sequence == last);
        match (position, outcome) {
            (Some(at), Some(offsets)) => entry.batches[at].offsets = Some(offsets),
            // Not written: forget it, so the producer's retry is accepted.
            (Some(at), None) => {
                entry.batches.remove(at);
            }
            (None, _) => {}
        }
    }

    /// Producers and their last sequence, for DescribeProducers:
    /// (producer id, epoch, last sequence, last offset).
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64)> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .filter_map(|(id, entry)| {
                let last = entry.batches.back()?;
                Some((
                    *id,
                    entry.epoch,
                    last.last_sequence,
                    last.offsets.map_or(-1, |(_, last)| last as i64),
                ))
            })
            .collect();
        out.sort_unstable();
        out
    }
}

impl ProducerEntry {
    fn record(&mut self, batch: BatchMeta) {
        if self.batches.len() == BATCHES_REMEMBERED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }
}

/// One partition: its log and its producers.
#[derive(Debug, Clone)]
pub struct Partition {
    pub log: Log,
    producers: Arc<Mutex<ProducerState>>,
    /// The topic's traffic counters (shared by its partitions).
    flow: Arc<Flow>,
    /// The key index's hasher (random per process), read outside the lock.
    key_hasher: std::collections::hash_map::RandomState,
    /// The last stable offset as of the last marker: `read_committed`
    /// fetches park on it, since a marker's own high-watermark move comes
    /// before the transaction it ends is known to be decided.
    stable: Arc<tokio::sync::watch::Sender<u64>>,
    /// The topic is compacted (`cleanup.policy` has `compact`): a record
    /// without a key is refused. Shared by the topic's partitions and set
    /// by the topic when its config changes.
    keys_required: Arc<AtomicBool>,
}

/// Kafka's `LogValidator.validateKey` for a compacted topic: the records
/// without a key, by their index in their batch (Kafka's `batch_index`).
/// Every batch but a control batch is read, a compressed one decompressed
/// within the log's bound ([`DECOMPRESSED_BYTES_MAX`]); one that does not
/// decompress or whose records do not parse is refused whole
/// ([`CoreError::CorruptRecords`]), as it could hide a keyless record.
fn keyless_records(batches: &[u8]) -> Result<Vec<usize>> {
    let mut keyless = Vec::new();
    for (header, bytes) in whole_batches(batches) {
        if header.is_control() {
            continue;
        }
        let records = BatchRecords::open(bytes, DECOMPRESSED_BYTES_MAX).map_err(CoreError::CorruptRecords)?;
        let views = records.views().map_err(CoreError::CorruptRecords)?;
        keyless.extend(
            views
                .iter()
                .enumerate()
                .filter(|(_, view)| view.key.is_none())
                .map(|(index, _)| index),
        );
    }
    Ok(keyless)
}

/// Whether a transactional producer (id, epoch) may write to this
/// partition now: `Ok` lets its batch in (see [`Partition::append_in_transaction`]).
pub type InTransaction<'a> = dyn Fn(i64, i16) -> Result<()> + 'a;

/// An append in flight.
pub type PendingAppend = Pin<Box<dyn Future<Output = Result<AppendInfo>> + Send>>;

impl Partition {
    /// Opens the partition's producer state from its log's tail. Blocking.
    pub fn new(log: Log) -> Result<Partition> {
        let headers = log.tail_batch_headers(REBUILD_SCAN_BYTES)?;
        let read_marker = |header: &BatchHeader| {
            let read = log.read(header.base_offset as u64, header.total_bytes(), true).ok()?;
            marker_kind(header, read.bytes.get(..header.total_bytes())?)
        };
        let mut state = ProducerState::rebuild(&headers, read_marker);
        // The tail holds only the last batches: a transaction still open may
        // have begun segments back, which the log's transaction index knows.
        for open in log.open_transactions_at_open() {
            state.transactions.open_since(open.producer_id, open.first_offset);
        }
        state.keys = KeyIndex::untracked(std::collections::hash_map::RandomState::new(), log.high_watermark());
        let stable = state.transactions.last_stable_offset(log.high_watermark());
        Ok(Partition {
            log,
            key_hasher: state.keys.hasher().clone(),
            producers: Arc::new(Mutex::new(state)),
            flow: Arc::default(),
            stable: Arc::new(tokio::sync::watch::Sender::new(stable)),
            keys_required: Arc::default(),
        })
    }

    /// The same partition, refusing records without a key while `required`
    /// is set (its topic's flag: the topic is compacted).
    pub(crate) fn with_keys_required(mut self, required: Arc<AtomicBool>) -> Partition {
        self.keys_required = required;
        self
    }

    /// The same partition, counting its appends in `flow`.
    pub fn with_flow(mut self, flow: Arc<Flow>) -> Partition {
        self.flow = flow;
        self
    }

    /// Appends batches, applying idempotent-producer rules when the batch
    /// carries a producer id. The check and the enqueue happen before this
    /// returns; the future resolves when the append is acknowledged, and
    /// the records then count as the topic's traffic in.
    pub fn append(&self, batches: Bytes) -> PendingAppend {
        self.append_if(batches, &[])
    }

    /// Appends batches only if every condition holds (checked with the
    /// producer's sequence, before the enqueue, under the same lock);
    /// otherwise nothing is written and the future fails with
    /// `CoreError::ConditionFailed`. A retry of an idempotent batch already
    /// appended is answered with its offsets without checking again.
    pub fn append_if(&self, batches: Bytes, conditions: &[AppendCondition]) -> PendingAppend {
        self.append_in_transaction(batches, conditions, &|_, _| Ok(()))
    }

    /// [`Partition::append_if`] for a produce that may be transactional:
    /// a transactional batch goes in only if `in_transaction` accepts its
    /// producer id and epoch (KIP-890: the partition is part of that
    /// producer's ongoing transaction). Asked under the partition's lock,
    /// with the one header parse the sequence check uses, before it.
    pub fn append_in_transaction(
        &self,
        batches: Bytes,
        conditions: &[AppendCondition],
        in_transaction: &InTransaction<'_>,
    ) -> PendingAppend {
        let bytes = batches.len() as u64;
        let flow = Arc::clone(&self.flow);
        let appending = self.append_checked(batches, conditions, in_transaction);
        Box::pin(async move {
            let info = appending.await?;
            flow.add_in(info.last_offset.saturating_sub(info.base_offset) + 1, bytes);
            Ok(info)
        })
    }

    fn append_checked(&self, batches: Bytes, conditions: &[AppendCondition], in_transaction: &InTransaction<'_>) -> PendingAppend {
        if self.keys_required.load(Ordering::Acquire) {
            match keyless_records(&batches) {
                Ok(records) if records.is_empty() => {}
                Ok(records) => return Box::pin(async move { Err(CoreError::RecordWithoutKey { records }) }),
                Err(error) => return Box::pin(async move { Err(error) }),
            }
        }
        let header = BatchHeader::parse(&batches);
        let idempotent = header.filter(|header| header.producer_id >= 0 && header.base_sequence >= 0);
        // Read outside the lock: it only looks at the bytes.
        let keys = AppendKeys::read(&batches, &self.key_hasher);
        let (appending, ticket) = {
            let mut state = self.producers.lock();
            // A request carries one batch per partition (Kafka: exactly one
            // since Produce v3): its header speaks for the request.
            if let Some(header) = header.as_ref().filter(|header| header.is_transactional())
                && let Err(error) = in_transaction(header.producer_id, header.producer_epoch)
            {
                return Box::pin(async move { Err(error) });
            }
            if let Some(header) = &idempotent {
                match state.check(header) {
                    Err(error) => return Box::pin(async move { Err(error) }),
                    Ok(Verdict::Duplicate(Some((base_offset, last_offset)))) => {
                        let log_start_offset = self.log.start_offset();
                        return Box::pin(async move {
                            Ok(AppendInfo {
                                base_offset,
                                last_offset,
                                log_start_offset,
                                // Kafka answers a duplicate without the original's append time too.
                                log_append_time_ms: None,
                            })
                        });
                    }
                    Ok(Verdict::Duplicate(None)) => return Box::pin(async move { Err(CoreError::DuplicateSequence) }),
                    Ok(Verdict::Append) => {}
                }
            }
            if !state.keys.tracks_keys() && conditions.iter().any(AppendCondition::is_on_key) {
                // The first key condition here: the index reads the
                // acknowledged log once (appends in flight carry their keys).
                state.keys.start_tracking();
                read_keys_into(&self.log, &mut state.keys);
            }
            // A refused condition leaves the producer's sequence where it
            // was, as Kafka leaves it after INVALID_RECORD.
            if let Err(failed) = state.keys.check(&keys, conditions, self.log.high_watermark()) {
                return Box::pin(async move { Err(CoreError::from(failed)) });
            }
            if let Some(header) = &idempotent {
                // Accepted before the enqueue, under the lock: log order is check order.
                state.accept(header, None);
                if header.is_transactional() {
                    // Its offset will be at or above the high watermark now.
                    state.transactions.data_enqueued(header.producer_id, self.log.high_watermark());
                }
            }
            let ticket = state.keys.enqueued(&keys);
            let appending = self.log.append(batches);
            if matches!(appending, conveyor_log::Appending::Ready(_)) {
                // Refused before the enqueue (framing, CRC, a closed log).
                state.keys.withdrawn(ticket);
            }
            (appending, ticket)
        };
        let producers = Arc::clone(&self.producers);
        Box::pin(async move {
            let outcome = appending.await;
            let offsets = outcome.as_ref().ok().map(|info| (info.base_offset, info.last_offset));
            let mut state = producers.lock();
            state.keys.settled(ticket, offsets.map(|(base_offset, _)| base_offset));
            if let Some(header) = &idempotent {
                state.settle(header, offsets);
                if let Some((base_offset, _)) = offsets.filter(|_| header.is_transactional()) {
                    state.transactions.data_written(header.producer_id, base_offset);
                }
            }
            drop(state);
            outcome.map_err(CoreError::from)
        })
    }

    /// Appends the marker that ends `producer_id`'s transaction here. The
    /// producer state learns the marker's epoch before the enqueue, under
    /// the lock, so no batch of an older epoch is checked in after it.
    pub fn append_marker(&self, producer_id: i64, producer_epoch: i16, kind: MarkerKind, now_ms: i64) -> PendingAppend {
        let batch = control_batch(producer_id, producer_epoch, kind, 0, now_ms);
        let (appending, ticket) = {
            let mut state = self.producers.lock();
            state.marker(producer_id, producer_epoch);
            let ticket = state.keys.enqueued(&AppendKeys::marker());
            let appending = self.log.append(batch);
            if matches!(appending, conveyor_log::Appending::Ready(_)) {
                state.keys.withdrawn(ticket);
            }
            (appending, ticket)
        };
        let producers = Arc::clone(&self.producers);
        let log = self.log.clone();
        let stable = Arc::clone(&self.stable);
        Box::pin(async move {
            let outcome = appending.await;
            producers
                .lock()
                .keys
                .settled(ticket, outcome.as_ref().ok().map(|info| info.base_offset));
            let info = outcome?;
            let last_stable_offset = {
                let mut state = producers.lock();
                state.transactions.ended(producer_id, info.base_offset);
                state.transactions.last_stable_offset(log.high_watermark())
            };
            stable.send_replace(last_stable_offset);
            Ok(info)
        })
    }

    /// Changes when a marker moves the last stable offset (see `stable`).
    pub fn subscribe_stable(&self) -> tokio::sync::watch::Receiver<u64> {
        self.stable.subscribe()
    }

    /// The last stable offset: below it every transaction is decided
    /// (what a `read_committed` reader may read up to).
    pub fn last_stable_offset(&self) -> u64 {
        let high_watermark = self.log.high_watermark();
        self.producers.lock().transactions.last_stable_offset(high_watermark)
    }

    /// Where `producer_id`'s open transaction begins in this partition, if it has one.
    pub fn open_transaction_start(&self, producer_id: i64) -> Option<u64> {
        self.producers.lock().transactions.open_first_offset(producer_id)
    }

    /// The aborted transactions with records in `from..to`, from the
    /// transaction indexes of the log's segments (durable, and as old as
    /// the log: a `read_committed` reader from offset 0 after a restart
    /// still drops every aborted record).
    pub fn aborted_transactions(&self, from: u64, to: u64) -> Vec<AbortedTransaction> {
        self.log.aborted_transactions(from, to)
    }

    /// Kafka's `read_committed` view of this partition for a read from
    /// `from`: its last stable offset and the aborted transactions with
    /// records between the two (what a stream reader and a
    /// `read_committed` share group skip).
    pub fn committed_view(&self, from: u64) -> Committed {
        let last_stable_offset = self.last_stable_offset();
        Committed {
            last_stable_offset,
            aborted: self.aborted_transactions(from, last_stable_offset),
        }
    }

    /// Active idempotent producers of this partition.
    pub fn producers(&self) -> Vec<(i64, i16, i32, i64)> {
        self.producers.lock().describe()
    }
}

/// Reads every acknowledged batch of `log` once into `index`. Blocking
/// (once per partition and process, on its first key condition).
fn read_keys_into(log: &Log, index: &mut KeyIndex) {
    let end = log.high_watermark();
    let mut offset = log.start_offset();
    // Each read returns at least one batch of at least a header's length.
    let reads_max = log.size_bytes() / conveyor_log::batch::HEADER_BYTES as u64 + 2;
    for _ in 0..reads_max {
        if offset >= end {
            break;
        }
        // A log that cannot be read here still opens (its appends, fetches
        // and offset conditions work); only key conditions are refused.
        let read = match log.read(offset, KEY_INDEX_READ_BYTES, true) {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(log = %log.dir().display(), %error, offset, "the key index could not read the log; key conditions will be refused");
                index.set_unreadable(error.to_string());
                break;
            }
        };
        let mut moved = false;
        for (header, batch) in whole_batches(&read.bytes) {
            if header.last_offset() >= offset as i64 {
                index.learn(header.base_offset as u64, &AppendKeys::read(batch, index.hasher()));
                offset = header.last_offset() as u64 + 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    index.learn(end, &AppendKeys::default());
}

/// How much of the log one read of the key index's rebuild takes.
const KEY_INDEX_READ_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::LogConfig;
    use conveyor_log::record::{BatchBuilder, Record};

    fn batch(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Bytes {
        let mut builder = BatchBuilder::new(1_700_000_000_000).producer(producer_id, epoch, sequence);
        for index in 0..records {
            builder.push(Record::new(None, Some(format!("v{index}").into_bytes())));
        }
        builder.build()
    }

    fn partition(dir: &std::path::Path) -> Partition {
        Partition::new(Log::open(dir, LogConfig::default()).expect("log")).expect("partition")
    }

    /// Closes `partition`'s log as a clean shutdown does and opens the
    /// partition in `dir` again, off the async workers.
    async fn reopen(partition: Partition, dir: &std::path::Path) -> Partition {
        let log = partition.log.clone();
        drop(partition);
        tokio::task::spawn_blocking(move || log.close())
            .await
            .expect("join")
            .expect("close");
        let path = dir.to_owned();
        tokio::task::spawn_blocking(move || self::partition(&path)).await.expect("join")
    }

    #[tokio::test]
    async fn a_retried_batch_gets_its_original_offsets_and_is_not_written_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        let first = partition.append(batch(7, 0, 0, 3)).await.expect("append");
        let second = partition.append(batch(7, 0, 3, 2)).await.expect("append");
        assert_eq!((second.base_offset, second.last_offset), (3, 4));
        let retry = partition.append(batch(7, 0, 0, 3)).await.expect("duplicate answered");
        assert_eq!((retry.base_offset, retry.last_offset), (first.base_offset, first.last_offset));
        assert_eq!(partition.log.high_watermark(), 5, "nothing written twice");
    }

    #[tokio::test]
    async fn a_gap_is_out_of_order_and_a_stale_epoch_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(batch(7, 1, 0, 2)).await.expect("append");
        assert!(matches!(
            partition.append(batch(7, 1, 5, 1)).await,
            Err(CoreError::OutOfOrderSequence {
                expected: 2,
                received: 5,
                ..
            })
        ));
        assert!(matches!(
            partition.append(batch(7, 0, 2, 1)).await,
            Err(CoreError::InvalidProducerEpoch { .. })
        ));
        // A bumped epoch starts over at sequence 0.
        assert!(matches!(
            partition.append(batch(7, 2, 9, 1)).await,
            Err(CoreError::OutOfOrderSequence { .. })
        ));
        partition.append(batch(7, 2, 0, 1)).await.expect("new epoch from 0");
        assert_eq!(partition.log.high_watermark(), 3);
    }

    #[tokio::test]
    async fn state_is_rebuilt_from_the_log_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(batch(7, 0, 0, 3)).await.expect("append");
        partition.append(batch(7, 0, 3, 1)).await.expect("append");
        let partition = reopen(partition, dir.path()).await;
        let retry = partition.append(batch(7, 0, 3, 1)).await.expect("duplicate after restart");
        assert_eq!(retry.base_offset, 3);
        assert!(matches!(
            partition.append(batch(7, 0, 9, 1)).await,
            Err(CoreError::OutOfOrderSequence { expected: 4, .. })
        ));
        assert_eq!(partition.producers(), vec![(7, 0, 3, 3)]);
    }

    #[tokio::test]
    async fn a_marker_with_a_bumped_epoch_fences_the_older_epoch_also_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(batch(7, 0, 0, 2)).await.expect("append");
        partition.append_marker(7, 1, MarkerKind::Abort, 1).await.expect("marker");
        assert!(matches!(
            partition.append(batch(7, 0, 2, 1)).await,
            Err(CoreError::InvalidProducerEpoch { epoch: 0, current: 1, .. })
        ));
        let partition = reopen(partition, dir.path()).await;
        assert!(matches!(
            partition.append(batch(7, 0, 2, 1)).await,
            Err(CoreError::InvalidProducerEpoch { .. })
        ));
        partition
            .append(batch(7, 1, 0, 1))
            .await
            .expect("the new epoch starts at sequence 0");
        assert_eq!(partition.log.high_watermark(), 4, "two records, a marker, one record");
    }

    fn transactional(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Bytes {
        let mut bytes = bytes::BytesMut::from(&batch(producer_id, epoch, sequence, records)[..]);
        // Set the transactional attribute bit and re-sign the batch.
        bytes[22] |= 0x10;
        let crc = conveyor_log::batch::compute_crc(&bytes);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes.freeze()
    }

    #[tokio::test]
    async fn a_transactional_batch_outside_its_transaction_is_refused_under_the_lock_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        let asked = parking_lot::Mutex::new(Vec::new());
        let outside = |producer_id: i64, epoch: i16| {
            asked.lock().push((producer_id, epoch));
            Err(CoreError::Transaction(crate::transaction::TransactionError::InvalidTxnState {
                transactional_id: "tx".to_owned(),
                status: "not writing to this partition",
                operation: "append to a partition not added to the ongoing transaction",
            }))
        };
        let refused = partition.append_in_transaction(transactional(7, 3, 0, 2), &[], &outside).await;
        assert!(matches!(refused, Err(CoreError::Transaction(_))), "{refused:?}");
        assert_eq!(*asked.lock(), [(7, 3)], "asked with the batch's producer id and epoch");
        assert_eq!(partition.log.high_watermark(), 0, "nothing written");
        partition
            .append_in_transaction(batch(8, 0, 0, 1), &[], &outside)
            .await
            .expect("a batch that is not transactional is not asked about");
        assert_eq!(asked.lock().len(), 1);
        let inside = |_: i64, _: i16| Ok(());
        let written = partition
            .append_in_transaction(transactional(7, 3, 0, 2), &[], &inside)
            .await
            .expect("in its transaction");
        assert_eq!(
            written.base_offset, 1,
            "the refusal left the producer's sequence where it was: 0 is accepted"
        );
    }

    #[tokio::test]
    async fn the_last_stable_offset_and_aborted_transactions_follow_markers_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(batch(1, 0, 0, 2)).await.expect("plain data at 0..2");
        partition.append(transactional(7, 0, 0, 3)).await.expect("aborted at 2..5");
        assert_eq!(partition.last_stable_offset(), 2, "stops at the open transaction");
        partition
            .append_marker(7, 0, MarkerKind::Abort, 1)
            .await
            .expect("abort marker at 5");
        partition.append(transactional(7, 0, 3, 1)).await.expect("open at 6");
        assert_eq!((partition.last_stable_offset(), partition.log.high_watermark()), (6, 7));
        let partition = reopen(partition, dir.path()).await;
        assert_eq!(partition.last_stable_offset(), 6, "the open transaction is still open");
        let aborted = partition.aborted_transactions(0, 7);
        assert_eq!(
            aborted
                .iter()
                .map(|a| (a.producer_id, a.first_offset, a.last_offset))
                .collect::<Vec<_>>(),
            vec![(7, 2, 5)]
        );
        partition
            .append_marker(7, 0, MarkerKind::Commit, 1)
            .await
            .expect("commit marker at 7");
        assert_eq!(partition.last_stable_offset(), 8);
        assert_eq!(partition.aborted_transactions(6, 8), vec![], "the committed one is not listed");
    }

    #[tokio::test]
    async fn an_aborted_transaction_segments_back_is_still_listed_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(transactional(7, 0, 0, 3)).await.expect("aborted at 0..3");
        partition
            .append_marker(7, 0, MarkerKind::Abort, 1)
            .await
            .expect("abort marker at 3");
        // Committed data in later segments: the restart rebuilds producer
        // state from the active segment's tail only.
        for sequence in 0..3 {
            let log = partition.log.clone();
            tokio::task::spawn_blocking(move || log.roll()).await.expect("join").expect("roll");
            partition.append(batch(8, 0, sequence * 2, 2)).await.expect("committed data");
        }
        let partition = reopen(partition, dir.path()).await;
        assert_eq!(partition.log.segment_count(), 4);
        let listed: Vec<_> = partition
            .aborted_transactions(0, partition.last_stable_offset())
            .iter()
            .map(|aborted| (aborted.producer_id, aborted.first_offset, aborted.last_offset))
            .collect();
        assert_eq!(listed, vec![(7, 0, 3)], "a read_committed reader from 0 must be told to drop 0..3");
    }

    #[tokio::test]
    async fn a_transaction_open_since_segments_back_still_bounds_the_last_stable_offset_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(transactional(7, 0, 0, 3)).await.expect("open at 0..3");
        // Other producers' data in later segments: the restart rebuilds
        // producer state from the active segment's tail only.
        for sequence in 0..3 {
            let log = partition.log.clone();
            tokio::task::spawn_blocking(move || log.roll()).await.expect("join").expect("roll");
            partition.append(batch(8, 0, sequence * 2, 2)).await.expect("other data");
        }
        assert_eq!(partition.last_stable_offset(), 0);
        let partition = reopen(partition, dir.path()).await;
        assert_eq!(partition.log.segment_count(), 4);
        assert_eq!(
            partition.last_stable_offset(),
            0,
            "read_committed readers must not see 0..3 before its transaction is decided"
        );
        partition.append_marker(7, 0, MarkerKind::Abort, 1).await.expect("abort marker");
        assert_eq!(partition.last_stable_offset(), partition.log.high_watermark());
    }

    #[tokio::test]
    async fn a_marker_tells_read_committed_waiters_the_new_last_stable_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        let mut stable = partition.subscribe_stable();
        partition.append(transactional(7, 0, 0, 2)).await.expect("open at 0..2");
        assert!(!stable.has_changed().expect("sender alive"), "data alone decides nothing");
        partition
            .append_marker(7, 0, MarkerKind::Commit, 1)
            .await
            .expect("commit marker at 2");
        assert!(stable.has_changed().expect("sender alive"));
        assert_eq!(*stable.borrow_and_update(), 3);
    }

    #[tokio::test]
    async fn a_compacted_partition_refuses_a_record_without_a_key_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let required = Arc::new(AtomicBool::new(true));
        let partition = partition(dir.path()).with_keys_required(Arc::clone(&required));
        let refused = partition.append(batch(-1, -1, -1, 2)).await;
        assert!(
            matches!(&refused, Err(CoreError::RecordWithoutKey { records }) if records == &[0, 1]),
            "{refused:?}"
        );
        assert_eq!(partition.log.high_watermark(), 0, "nothing of the refused batch is written");
        partition.append(keyed("k")).await.expect("a keyed record is taken");
        // The topic's config changed back to delete: keyless records are fine again.
        required.store(false, Ordering::Release);
        partition.append(batch(-1, -1, -1, 1)).await.expect("keyless on a delete topic");
    }

    #[tokio::test]
    async fn a_compacted_partition_finds_a_keyless_record_inside_a_compressed_batch_of_every_codec() {
        use conveyor_log::codec::Codec;
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path()).with_keys_required(Arc::new(AtomicBool::new(true)));
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut builder = BatchBuilder::new(1_700_000_000_000).compression(codec);
            builder.push(Record::new(Some(b"k".to_vec()), Some(b"keyed".to_vec())));
            builder.push(Record::new(None, Some(b"keyless".to_vec())));
            let refused = partition.append(builder.build()).await;
            assert!(
                matches!(&refused, Err(CoreError::RecordWithoutKey { records }) if records == &[1]),
                "{codec:?}: {refused:?}"
            );
            let mut builder = BatchBuilder::new(1_700_000_000_000).compression(codec);
            builder.push(Record::new(Some(b"k".to_vec()), Some(b"keyed".to_vec())));
            partition.append(builder.build()).await.expect("a keyed compressed batch is taken");
        }
        assert_eq!(partition.log.high_watermark(), 4, "only the four keyed batches are written");
    }

    #[tokio::test]
    async fn a_compacted_partition_refuses_a_compressed_batch_that_does_not_decompress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path()).with_keys_required(Arc::new(AtomicBool::new(true)));
        // A plain batch relabelled lz4 (CRC recomputed, so only the codec
        // can tell): its records area is not an LZ4 frame.
        let mut bytes = keyed("k").to_vec();
        let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | 3;
        bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = conveyor_log::batch::compute_crc(&bytes);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let refused = partition.append(Bytes::from(bytes)).await;
        assert!(matches!(refused, Err(CoreError::CorruptRecords(_))), "{refused:?}");
        assert_eq!(partition.log.high_watermark(), 0, "nothing of the corrupt batch is written");
        partition.append(keyed("k")).await.expect("the partition still takes batches");
    }

    fn keyed(key: &str) -> Bytes {
        let mut builder = BatchBuilder::new(1_700_000_000_000);
        builder.push(Record::new(Some(key.as_bytes().to_vec()), Some(b"event".to_vec())));
        builder.build()
    }

    fn key_at(offset: Option<u64>) -> [AppendCondition; 1] {
        [AppendCondition {
            record: 0,
            expectation: crate::append_condition::Expectation::KeyOffset(offset),
        }]
    }

    #[tokio::test]
    async fn a_refused_condition_writes_nothing_and_the_key_index_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(keyed("order-1")).await.expect("plain append at 0");
        partition.append(keyed("order-2")).await.expect("plain append at 1");
        let refused = partition.append_if(keyed("order-1"), &key_at(None)).await;
        assert!(
            matches!(
                refused,
                Err(CoreError::ConditionFailed(crate::append_condition::ConditionFailed::KeyOffset {
                    expected: -1,
                    actual: 0,
                    ..
                }))
            ),
            "{refused:?}"
        );
        assert_eq!(partition.log.high_watermark(), 2, "nothing of a refused append is written");
        let info = partition.append_if(keyed("order-1"), &key_at(Some(0))).await.expect("at 0");
        assert_eq!(info.base_offset, 2);
        let partition = reopen(partition, dir.path()).await;
        assert_eq!(partition.producers.lock().keys.len(), 0, "no key is read at open");
        partition.append(keyed("order-9")).await.expect("a plain append remembers no key");
        assert_eq!(partition.producers.lock().keys.len(), 0, "nor does a plain append");
        assert!(
            partition.append_if(keyed("order-1"), &key_at(Some(0))).await.is_err(),
            "the index read back from the log knows order-1 moved to 2"
        );
        partition.append_if(keyed("order-2"), &key_at(Some(1))).await.expect("order-2 at 1");
        partition.append_if(keyed("order-3"), &key_at(None)).await.expect("order-3 is new");
        assert_eq!(
            partition.producers.lock().keys.len(),
            4,
            "the first key condition read the log's keys"
        );
        let offset_is_5 = [AppendCondition {
            record: 0,
            expectation: crate::append_condition::Expectation::Offset(5),
        }];
        partition.append_if(keyed("x"), &offset_is_5).await.expect_err("offset 5 is taken");
        assert_eq!(partition.log.high_watermark(), 6);
    }

    #[tokio::test]
    async fn a_refused_condition_leaves_the_producers_sequence_where_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        partition.append(batch(7, 0, 0, 1)).await.expect("seq 0");
        let mut builder = BatchBuilder::new(1_700_000_000_000).producer(7, 0, 1);
        builder.push(Record::new(Some(b"k".to_vec()), Some(b"v".to_vec())));
        let conditional = builder.build();
        let refused = partition.append_if(conditional.clone(), &key_at(Some(9))).await;
        assert!(matches!(refused, Err(CoreError::ConditionFailed(_))), "{refused:?}");
        let info = partition.append_if(conditional, &key_at(None)).await.expect("seq 1 is still next");
        assert_eq!(info.base_offset, 1);
    }

    #[test]
    fn sequences_wrap_like_kafkas() {
        let header = BatchHeader::parse(&batch(1, 0, i32::MAX, 2)).expect("header");
        assert_eq!(last_sequence(&header), 0);
        assert_eq!(next_sequence(i32::MAX), 0);
    }
}
