//! One share-partition (KIP-932): a share group's delivery state over one
//! topic partition's log. It is the share cursor AMQP and SQS queues use
//! (`Queue::open_over`), journaled in its own directory, over a log it
//! neither cuts nor closes. Speaks share-group semantics — acquisition
//! locks, accept/release/reject, the delivery count limit, the start offset
//! of `share.auto.offset.reset`, the records `share.isolation.level` lets
//! out (`record_filter.rs`) — and knows no wire format, no members'
//! heartbeats and no assignment.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use conveyor_log::clock::Clock;
use parking_lot::Mutex;
use tracing::warn;

use super::record_filter::{IsolationLevel, RecordFilter};
use crate::producer::Partition;
use crate::queue::{Acquisition, ConsumerId, CursorStart, Durable, Queue, QueueConfig, QueueError, ShareCursorConfig};

/// KIP-932's `group.share.record.lock.duration.ms` default.
pub const RECORD_LOCK_DURATION_MS_DEFAULT: i64 = 30_000;
/// KIP-932's `group.share.delivery.count.limit` default.
pub const DELIVERY_COUNT_LIMIT_DEFAULT: u32 = 5;
/// KIP-932's `group.share.partition.max.record.locks` default: at most this
/// many records between the start offset and the last one acquired.
pub const RECORD_LOCKS_MAX_DEFAULT: u64 = 2_000;

/// Settings of one share-partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharePartitionConfig {
    /// How long an acquired record stays locked to its member.
    pub record_lock_duration_ms: i64,
    /// A record is delivered at most this many times, then archived.
    pub delivery_count_limit: u32,
    pub record_locks_max: u64,
}

impl Default for SharePartitionConfig {
    fn default() -> SharePartitionConfig {
        SharePartitionConfig {
            record_lock_duration_ms: RECORD_LOCK_DURATION_MS_DEFAULT,
            delivery_count_limit: DELIVERY_COUNT_LIMIT_DEFAULT,
            record_locks_max: RECORD_LOCKS_MAX_DEFAULT,
        }
    }
}

/// How a member settles records it acquired (KIP-932's acknowledge types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcknowledgeType {
    /// Processed: never delivered again.
    Accept,
    /// Given back: available again at once, its delivery count kept.
    Release,
    /// Unprocessable: archived, never delivered again.
    Reject,
}

/// A run of consecutive acquired offsets with the same delivery count
/// (KIP-932's AcquiredRecords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first_offset: u64,
    pub last_offset: u64,
    /// 1 on the first delivery.
    pub delivery_count: u32,
}

/// The delivery state of one share group over one partition.
#[derive(Debug)]
pub struct SharePartition {
    cursor: Queue,
    /// The in-flight window, the group's `share.partition.max.record.locks`
    /// (see [`SharePartition::set_limits`]).
    record_locks_max: AtomicU64,
    /// The partition the cursor runs over: its markers, last stable
    /// offset and aborted transactions.
    partition: Partition,
    /// How far the log is known to hold records that may be handed out.
    /// Lock order: `filter` before the cursor's state.
    filter: Mutex<RecordFilter>,
}

impl SharePartition {
    /// Opens the share-partition whose state lives in `dir` over `partition`. A
    /// share-partition opened for the first time starts at `start`; later
    /// opens resume where the journal says (acquired records are available
    /// again, with their delivery counts). Blocking.
    pub fn open(
        dir: impl Into<PathBuf>,
        partition: Partition,
        start: CursorStart,
        config: SharePartitionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<SharePartition, QueueError> {
        // The journal's durability is the default queue's (`always`).
        let queue_config = QueueConfig {
            cursor: ShareCursorConfig {
                delivery_limit: Some(config.delivery_count_limit),
                in_flight_max: config.record_locks_max,
                ..ShareCursorConfig::default()
            },
            ..QueueConfig::default()
        };
        let cursor = Queue::open_over(dir, partition.log.clone(), start, queue_config, clock)?;
        Ok(SharePartition {
            cursor,
            record_locks_max: AtomicU64::new(config.record_locks_max),
            partition,
            filter: Mutex::new(RecordFilter::default()),
        })
    }

    /// Locks up to `max_records` available records to `member` for
    /// `lock_ms` (the group's record lock duration), lowest offset first, as ranges; the journal
    /// append of their delivery counts resolves with the returned
    /// [`Durable`]. Records past the delivery count limit are archived
    /// instead. Transaction markers are archived, never acquired; under
    /// `read_committed` so are aborted transactions' records, and nothing
    /// at or past the last stable offset is acquired. Blocking (reads the
    /// log's batch headers).
    pub fn acquire(
        &self,
        member: ConsumerId,
        max_records: usize,
        isolation: IsolationLevel,
        lock_ms: i64,
    ) -> (Vec<AcquiredRange>, Durable) {
        let below = {
            let mut filter = self.filter.lock();
            let from = self.cursor.settled_below();
            let window_end = from.saturating_add(self.record_locks_max.load(Ordering::Relaxed));
            match filter.classify(&self.partition, isolation, from, window_end) {
                Ok(classified) => {
                    for offset in classified.skipped.into_iter().flatten() {
                        // Journal appends complete in order: the acquisition's covers these.
                        drop(self.cursor.archive_available(offset));
                    }
                    classified.below
                }
                Err(error) => {
                    // Nothing unvetted is handed out: the next fetch tries again.
                    warn!(%error, "reading a share-partition's log failed");
                    from
                }
            }
        };
        let (acquisition, durable) = self.cursor.acquire_offsets_below(member, max_records, lock_ms, below);
        (ranges(&acquisition), durable)
    }

    /// Takes the group's own delivery count limit and in-flight window
    /// (`share.delivery.count.limit`, `share.partition.max.record.locks`)
    /// from the next acquisition on: a record delivered as often as the
    /// limit already is archived at its next acquisition, a record in
    /// flight stays so when the window shrinks.
    pub fn set_limits(&self, delivery_count_limit: u32, record_locks_max: u64) {
        let record_locks_max = record_locks_max.max(1);
        if self.record_locks_max.swap(record_locks_max, Ordering::Relaxed) != record_locks_max {
            self.cursor.set_in_flight_max(record_locks_max);
        }
        self.cursor.set_delivery_limit(Some(delivery_count_limit));
    }

    /// Settles `first_offset..=last_offset`, every offset of which `member`
    /// must hold. Stops at the first offset it cannot settle (not acquired,
    /// or held by another member) and returns that error; what was settled
    /// before it stays settled. The returned [`Durable`] resolves once every
    /// settlement is journaled (releases are not: after a restart every
    /// unsettled record is available again anyway).
    pub fn acknowledge(
        &self,
        member: ConsumerId,
        first_offset: u64,
        last_offset: u64,
        kind: AcknowledgeType,
    ) -> Result<Option<Durable>, QueueError> {
        let mut durable = None;
        for offset in first_offset..=last_offset {
            // Journal appends complete in order: the last one covers the others.
            match kind {
                AcknowledgeType::Accept => durable = Some(self.cursor.ack(member, offset)?),
                AcknowledgeType::Release => self.cursor.release(member, offset, 0)?,
                AcknowledgeType::Reject => durable = Some(self.cursor.reject(member, offset)?.1),
            }
        }
        if kind == AcknowledgeType::Release {
            self.cursor.notify_available();
        }
        Ok(durable)
    }

    /// Gives back acquired records `member` was never sent (they did not
    /// fit the response): that acquisition was no delivery, so their
    /// delivery counts go back.
    pub fn give_back(&self, member: ConsumerId, offsets: impl IntoIterator<Item = u64>) -> Result<(), QueueError> {
        for offset in offsets {
            drop(self.cursor.defer(member, offset, 0)?);
        }
        self.cursor.notify_available();
        Ok(())
    }

    /// Makes the records whose lock ran out available again; their offsets.
    pub fn expire_locks(&self) -> Vec<u64> {
        let expired = self.cursor.expire_locks();
        if !expired.is_empty() {
            self.cursor.notify_available();
        }
        expired
    }

    /// When [`SharePartition::expire_locks`] next has something to do.
    pub fn next_lock_deadline_ms(&self) -> Option<i64> {
        self.cursor.next_deadline_ms()
    }

    /// The member left (or was fenced): its records are available again.
    pub fn release_member(&self, member: ConsumerId) -> Vec<u64> {
        let released = self.cursor.release_all(member);
        if !released.is_empty() {
            self.cursor.notify_available();
        }
        released
    }

    /// KIP-932's share-partition start offset: every record below it is
    /// acknowledged or archived.
    pub fn start_offset(&self) -> u64 {
        self.cursor.settled_below()
    }

    /// Records acquired by some member right now.
    pub fn acquired_count(&self) -> usize {
        self.cursor.acquired_count()
    }

    /// Resolves when records may have become available without the log
    /// growing (a release, an expired lock, a member gone).
    pub fn available(&self) -> tokio::sync::futures::Notified<'_> {
        self.cursor.available()
    }

    /// Writes a snapshot of the state and closes its journal; the
    /// partition's log stays open. Blocking.
    pub fn close(&self) -> Result<(), QueueError> {
        self.cursor.close()
    }
}

/// Consecutive acquired offsets with equal delivery counts, as ranges.
fn ranges(acquisition: &Acquisition) -> Vec<AcquiredRange> {
    let mut acquired: Vec<(u64, u32)> = acquisition
        .acquired
        .iter()
        .map(|acquired| (acquired.offset, acquired.delivery_count))
        .collect();
    acquired.sort_unstable();
    let mut ranges: Vec<AcquiredRange> = Vec::new();
    for (offset, delivery_count) in acquired {
        match ranges.last_mut() {
            Some(last) if last.last_offset + 1 == offset && last.delivery_count == delivery_count => last.last_offset = offset,
            _ => ranges.push(AcquiredRange {
                first_offset: offset,
                last_offset: offset,
                delivery_count,
            }),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use conveyor_log::clock::ManualClock;
    use conveyor_log::record::{BatchBuilder, Record};
    use conveyor_log::{Log, LogConfig};

    use super::*;
    use crate::queue::CursorError;

    const ALICE: ConsumerId = ConsumerId(1);
    const BOB: ConsumerId = ConsumerId(2);
    const LOCK_MS: i64 = RECORD_LOCK_DURATION_MS_DEFAULT;

    fn partition_log(dir: &Path, clock: &Arc<ManualClock>) -> Log {
        Log::open_with_clock(dir.join("partition"), LogConfig::default(), Arc::clone(clock) as Arc<dyn Clock>).expect("open log")
    }

    fn produce(log: &Log, count: u64) {
        let mut builder = BatchBuilder::new(1_000);
        for index in 0..count {
            builder.push(Record::new(None, Some(format!("r{index}").into_bytes())));
        }
        log.append(builder.build()).wait().expect("append");
    }

    fn open(dir: &Path, log: &Log, start: CursorStart, clock: &Arc<ManualClock>) -> SharePartition {
        SharePartition::open(
            dir.join("share"),
            Partition::new(log.clone()).expect("partition"),
            start,
            SharePartitionConfig::default(),
            Arc::clone(clock) as Arc<dyn Clock>,
        )
        .expect("open share-partition")
    }

    fn range(first_offset: u64, last_offset: u64, delivery_count: u32) -> AcquiredRange {
        AcquiredRange {
            first_offset,
            last_offset,
            delivery_count,
        }
    }

    #[test]
    fn two_members_split_the_records_of_one_partition_each_record_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let log = partition_log(dir.path(), &clock);
        let share = open(dir.path(), &log, CursorStart::Earliest, &clock);
        produce(&log, 10);
        let (alice, _) = share.acquire(ALICE, 4, IsolationLevel::ReadUncommitted, LOCK_MS);
        let (bob, _) = share.acquire(BOB, 100, IsolationLevel::ReadUncommitted, LOCK_MS);
        assert_eq!((alice, bob), (vec![range(0, 3, 1)], vec![range(4, 9, 1)]));
        assert!(
            share.acquire(ALICE, 100, IsolationLevel::ReadUncommitted, LOCK_MS).0.is_empty(),
            "nothing left to acquire"
        );
        share.acknowledge(ALICE, 0, 3, AcknowledgeType::Accept).expect("accept");
        assert!(matches!(
            share.acknowledge(ALICE, 4, 4, AcknowledgeType::Accept),
            Err(QueueError::Cursor(CursorError::NotHolder { offset: 4, .. }))
        ));
        assert_eq!(share.start_offset(), 4);
        share.close().expect("close");
    }

    #[test]
    fn released_records_come_back_with_delivery_count_2_and_rejected_ones_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let log = partition_log(dir.path(), &clock);
        let share = open(dir.path(), &log, CursorStart::Earliest, &clock);
        produce(&log, 3);
        assert_eq!(
            share.acquire(ALICE, 3, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 2, 1)]
        );
        share.acknowledge(ALICE, 0, 0, AcknowledgeType::Release).expect("release");
        share.acknowledge(ALICE, 1, 1, AcknowledgeType::Reject).expect("reject");
        share.acknowledge(ALICE, 2, 2, AcknowledgeType::Accept).expect("accept");
        assert_eq!(
            share.acquire(BOB, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 0, 2)]
        );
        share.acknowledge(BOB, 0, 0, AcknowledgeType::Accept).expect("accept");
        assert!(
            share.acquire(BOB, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0.is_empty(),
            "the rejected record is never redelivered"
        );
        assert_eq!(share.start_offset(), 3);
        share.close().expect("close");
    }

    #[test]
    fn an_unacknowledged_record_is_redelivered_after_the_lock_duration_and_archived_at_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let log = partition_log(dir.path(), &clock);
        let share = open(dir.path(), &log, CursorStart::Earliest, &clock);
        produce(&log, 1);
        assert_eq!(
            share.acquire(ALICE, 1, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 0, 1)]
        );
        clock.set_ms(RECORD_LOCK_DURATION_MS_DEFAULT - 1);
        assert!(
            share.expire_locks().is_empty() && share.acquire(BOB, 1, IsolationLevel::ReadUncommitted, LOCK_MS).0.is_empty(),
            "still locked"
        );
        for delivery in 2..=DELIVERY_COUNT_LIMIT_DEFAULT {
            clock.set_ms(clock.now_ms() + RECORD_LOCK_DURATION_MS_DEFAULT);
            assert_eq!(share.expire_locks(), vec![0]);
            assert_eq!(
                share.acquire(BOB, 1, IsolationLevel::ReadUncommitted, LOCK_MS).0,
                vec![range(0, 0, delivery)]
            );
        }
        clock.set_ms(clock.now_ms() + RECORD_LOCK_DURATION_MS_DEFAULT);
        share.expire_locks();
        assert!(
            share.acquire(BOB, 1, IsolationLevel::ReadUncommitted, LOCK_MS).0.is_empty(),
            "archived after 5 deliveries"
        );
        assert_eq!(share.start_offset(), 1);
        share.close().expect("close");
    }

    #[test]
    fn a_groups_own_delivery_count_limit_and_window_apply_from_the_next_acquisition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let log = partition_log(dir.path(), &clock);
        let share = open(dir.path(), &log, CursorStart::Earliest, &clock);
        produce(&log, 5);
        share.set_limits(2, 2);
        assert_eq!(
            share.acquire(ALICE, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 1, 1)],
            "two records in flight at most"
        );
        share.acknowledge(ALICE, 1, 1, AcknowledgeType::Accept).expect("accept");
        share.acknowledge(ALICE, 0, 0, AcknowledgeType::Release).expect("release");
        assert_eq!(
            share.acquire(ALICE, 1, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 0, 2)]
        );
        share.acknowledge(ALICE, 0, 0, AcknowledgeType::Release).expect("release");
        assert!(
            share.acquire(ALICE, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0.is_empty(),
            "archived instead of a third delivery"
        );
        assert_eq!(share.start_offset(), 2);
        assert_eq!(
            share.acquire(ALICE, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(2, 3, 1)],
            "the window moved on"
        );
        share.close().expect("close");
    }

    #[test]
    fn share_state_survives_a_restart_and_the_partition_log_is_neither_cut_nor_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let log = partition_log(dir.path(), &clock);
        let share = open(dir.path(), &log, CursorStart::Earliest, &clock);
        produce(&log, 4);
        let (acquired, durable) = share.acquire(ALICE, 4, IsolationLevel::ReadUncommitted, LOCK_MS);
        assert_eq!(acquired, vec![range(0, 3, 1)]);
        durable.wait().expect("delivery counts durable");
        let accepted = share.acknowledge(ALICE, 0, 1, AcknowledgeType::Accept).expect("accept");
        accepted.expect("journaled").wait().expect("durable");
        share.close().expect("close");
        // The partition stays whole and writable for its other readers.
        assert_eq!((log.start_offset(), log.high_watermark()), (0, 4));
        produce(&log, 1);
        let share = open(dir.path(), &log, CursorStart::Latest, &clock);
        assert_eq!(
            share.start_offset(),
            2,
            "accepted records stay accepted; the reset applies to a new cursor only"
        );
        assert_eq!(
            share.acquire(BOB, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(2, 3, 2), range(4, 4, 1)]
        );
        share.close().expect("close");
    }

    #[test]
    fn a_new_share_partition_starts_at_the_end_by_default_or_at_the_start_when_earliest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let log = partition_log(dir.path(), &clock);
        produce(&log, 3);
        let latest = open(dir.path(), &log, CursorStart::Latest, &clock);
        assert!(
            latest.acquire(ALICE, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0.is_empty(),
            "records from before the group are skipped"
        );
        produce(&log, 1);
        assert_eq!(
            latest.acquire(ALICE, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(3, 3, 1)]
        );
        latest.close().expect("close");
        let other = tempfile::tempdir().expect("tempdir");
        let earliest = SharePartition::open(
            other.path().join("share"),
            Partition::new(log.clone()).expect("partition"),
            CursorStart::Earliest,
            SharePartitionConfig::default(),
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .expect("open");
        assert_eq!(
            earliest.acquire(ALICE, 10, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 3, 1)]
        );
        earliest.close().expect("close");
    }

    #[tokio::test]
    async fn markers_are_never_acquired_and_read_committed_skips_aborted_records_and_stops_at_the_last_stable_offset() {
        use crate::share_group::record_filter::tests::{append_transactions, partition};
        use crate::transaction::marker::MarkerKind;
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(0);
        let partition = partition(dir.path());
        append_transactions(&partition).await;
        let open = |name: &str| {
            SharePartition::open(
                dir.path().join(name),
                partition.clone(),
                CursorStart::Earliest,
                SharePartitionConfig::default(),
                Arc::clone(&clock) as Arc<dyn Clock>,
            )
            .expect("open share-partition")
        };
        let uncommitted = open("uncommitted");
        assert_eq!(
            uncommitted.acquire(ALICE, 100, IsolationLevel::ReadUncommitted, LOCK_MS).0,
            vec![range(0, 4, 1), range(6, 6, 1), range(8, 9, 1)],
            "every data record, no marker"
        );
        let committed = open("committed");
        assert_eq!(
            committed.acquire(ALICE, 100, IsolationLevel::ReadCommitted, LOCK_MS).0,
            vec![range(0, 1, 1), range(6, 6, 1)],
            "no aborted record, nothing of the open transaction"
        );
        committed.acknowledge(ALICE, 0, 1, AcknowledgeType::Accept).expect("accept");
        assert_eq!(committed.start_offset(), 6, "the aborted records and the marker were archived");
        partition.append_marker(9, 0, MarkerKind::Commit, 1).await.expect("commit at 10");
        assert_eq!(
            committed.acquire(BOB, 100, IsolationLevel::ReadCommitted, LOCK_MS).0,
            vec![range(8, 9, 1)],
            "the committed transaction, once decided"
        );
        uncommitted.close().expect("close");
        committed.close().expect("close");
    }
}
