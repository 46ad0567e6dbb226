//! Reading a stream (`x-queue-type: stream`): a reader at an offset on the
//! queue's message log, as a Kafka consumer reads a partition. Reading
//! settles nothing — the share cursor is not involved — so every reader
//! sees every message the log still retains, and retention (by bytes, by
//! age) is the log's. Knows offsets and timestamps; nothing of how a front
//! door spells a starting point (AMQP's `x-stream-offset`).
//!
//! A stream whose log a Kafka producer may write transactionally is read
//! as Kafka's `read_committed` consumers read a partition
//! ([`Queue::read_stream_committed`]): up to the last stable offset, and
//! without the records of aborted transactions.

use conveyor_log::LogError;
use conveyor_log::record::Record;

use super::{Queue, QueueError};
use crate::record_batches::decode_data_batches_where;
use crate::transaction::AbortedTransaction;

/// Bytes one read takes from the log (at least one batch, however large).
const READ_BYTES_MAX: usize = 1 << 20;
/// Reads of the log one call makes at most.
const READS_MAX: usize = 16;
/// Bytes of the active segment's tail searched for its last batch.
const TAIL_BYTES_MAX: u64 = 1 << 20;

/// What a `read_committed` reader of a partition may see: everything below
/// its last stable offset except the batches of aborted transactions
/// (Kafka's rule: a transactional batch of producer P at or after an
/// aborted transaction's first offset and before its ABORT marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub last_stable_offset: u64,
    /// The aborted transactions with records at or after the read's offset.
    pub aborted: Vec<AbortedTransaction>,
}

impl Committed {
    /// Whether the batch under `header` belongs to an aborted transaction.
    pub fn aborts(&self, header: &conveyor_log::batch::BatchHeader) -> bool {
        let Ok(base_offset) = u64::try_from(header.base_offset) else {
            return false;
        };
        header.is_transactional()
            && self.aborted.iter().any(|aborted| {
                aborted.producer_id == header.producer_id && (aborted.first_offset..aborted.last_offset).contains(&base_offset)
            })
    }
}

/// Where a new reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The oldest message retained.
    First,
    /// The last batch written (RabbitMQ's "last chunk").
    Last,
    /// Only what is written from now on.
    Next,
    /// This offset; before the oldest retained, the oldest; past the end, the end.
    Offset(u64),
    /// The first message stamped at or after this time (ms since the epoch);
    /// none: the end.
    Timestamp(i64),
}

impl Queue {
    /// The offset a reader starting at `start` reads first. Blocking (may
    /// search the log's time index).
    pub fn stream_offset(&self, start: StreamStart) -> Result<u64, QueueError> {
        let log = self.message_log();
        let (first, end) = (log.start_offset(), log.written());
        let offset = match start {
            StreamStart::First => first,
            StreamStart::Next => end,
            StreamStart::Offset(offset) => offset,
            StreamStart::Last => match log.tail_batch_headers(TAIL_BYTES_MAX)?.last() {
                Some(last) => u64::try_from(last.base_offset).unwrap_or(0),
                None => end.saturating_sub(1),
            },
            StreamStart::Timestamp(at_ms) => log.offset_for_timestamp(at_ms)?.map_or(end, |(offset, _)| offset),
        };
        Ok(offset.clamp(first, end.max(first)))
    }

    /// Up to `max_records` records from `offset` on, oldest first, each
    /// with its offset; written ones too, before their fsync, as consumers
    /// get them from queues. A reader left behind by retention continues
    /// from the oldest retained. Empty at the end. Blocking.
    pub fn read_stream(&self, offset: u64, max_records: usize) -> Result<Vec<Record>, QueueError> {
        self.read_stream_within(offset, max_records, None)
    }

    /// [`Queue::read_stream`] as a `read_committed` reader: nothing at or
    /// past `committed`'s last stable offset (a reader there waits for the
    /// open transaction to end), and no record of an aborted transaction.
    pub fn read_stream_committed(&self, offset: u64, max_records: usize, committed: &Committed) -> Result<Vec<Record>, QueueError> {
        self.read_stream_within(offset, max_records, Some(committed))
    }

    fn read_stream_within(&self, offset: u64, max_records: usize, committed: Option<&Committed>) -> Result<Vec<Record>, QueueError> {
        let log = self.message_log();
        let end = committed.map_or(u64::MAX, |committed| committed.last_stable_offset);
        let mut from = offset;
        // Once more from the log's new start after retention, and once more
        // past each read that held only skipped batches (markers, aborted
        // records), up to a bound; a reader then comes back for the rest.
        for _ in 0..READS_MAX {
            if from >= log.written().min(end) || max_records == 0 {
                return Ok(Vec::new());
            }
            let read = match log.read_written(from, READ_BYTES_MAX, true) {
                Ok(read) => read,
                Err(LogError::OffsetOutOfRange { start, .. }) if start > from => {
                    from = start;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let keep = |header: &conveyor_log::batch::BatchHeader| committed.is_none_or(|committed| !committed.aborts(header));
            let records = decode_data_batches_where(&read.bytes, keep).map_err(|reason| QueueError::Journal {
                path: self.dir().join("messages"),
                reason,
            })?;
            let records: Vec<Record> = records
                .into_iter()
                .filter(|record| {
                    record
                        .offset
                        .and_then(|at| u64::try_from(at).ok())
                        .is_some_and(|at| at >= from && at < end)
                })
                .take(max_records)
                .collect();
            let read_end = conveyor_log::batch::whole_batches(&read.bytes)
                .last()
                .and_then(|(header, _)| u64::try_from(header.last_offset()).ok())
                .map(|last| last + 1);
            match read_end {
                Some(read_end) if records.is_empty() && read_end > from => from = read_end,
                _ => return Ok(records),
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use conveyor_log::clock::ManualClock;

    use super::*;
    use crate::queue::QueueConfig;

    fn body(record: &Record) -> String {
        String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
    }

    #[test]
    fn readers_start_where_asked_and_reading_removes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let queue = Queue::open(dir.path(), QueueConfig::default(), clock.clone()).expect("open");
        for (at_ms, text) in [(1_000, "a"), (2_000, "b"), (3_000, "c")] {
            clock.set_ms(at_ms);
            queue
                .publish(vec![Record::new(None, Some(text.as_bytes().to_vec()))])
                .wait()
                .expect("stored");
        }
        let read = |start| {
            let from = queue.stream_offset(start).expect("offset");
            queue.read_stream(from, 10).expect("read").iter().map(body).collect::<Vec<_>>()
        };
        assert_eq!(read(StreamStart::First), ["a", "b", "c"]);
        assert_eq!(read(StreamStart::First), ["a", "b", "c"], "a second reader sees the same");
        assert_eq!(read(StreamStart::Offset(1)), ["b", "c"]);
        assert_eq!(read(StreamStart::Offset(99)), Vec::<String>::new(), "past the end: the end");
        assert_eq!(read(StreamStart::Last), ["c"]);
        assert_eq!(read(StreamStart::Next), Vec::<String>::new());
        assert_eq!(read(StreamStart::Timestamp(2_000)), ["b", "c"]);
        assert_eq!(read(StreamStart::Timestamp(9_000)), Vec::<String>::new());
        let from_b = queue.read_stream(1, 1).expect("read");
        assert_eq!(from_b.len(), 1);
        assert_eq!(from_b[0].offset, Some(1));
        assert_eq!(queue.available_count(), 3, "reading settled nothing");
    }

    #[tokio::test]
    async fn a_transactions_markers_are_no_messages_to_a_reader() {
        use crate::transaction::marker::{MarkerKind, control_batch};
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = Queue::open(dir.path(), QueueConfig::default(), ManualClock::new(1_000)).expect("open");
        let publish = |text: &str| queue.publish(vec![Record::new(None, Some(text.as_bytes().to_vec()))]);
        publish("a").await.expect("stored");
        queue
            .message_log()
            .append(control_batch(7, 0, MarkerKind::of(true), 0, 1_000))
            .await
            .expect("marker");
        publish("b").await.expect("stored");
        let read = queue.read_stream(0, 10).expect("read");
        let offsets: Vec<Option<i64>> = read.iter().map(|record| record.offset).collect();
        assert_eq!(read.iter().map(body).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(offsets, [Some(0), Some(2)], "the marker's offset is skipped");
    }

    #[tokio::test]
    async fn a_committed_reader_stops_at_the_last_stable_offset_and_skips_aborted_transactions() {
        use conveyor_log::batch::{self, attributes};
        use conveyor_log::record::BatchBuilder;

        use crate::transaction::marker::{MarkerKind, control_batch};
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = Queue::open(dir.path(), QueueConfig::default(), ManualClock::new(1_000)).expect("open");
        let log = queue.message_log();
        let transactional = |producer_id: i64, texts: &[&str]| {
            let mut builder = BatchBuilder::new(1_000).producer(producer_id, 0, 0);
            for text in texts {
                builder.push(Record::new(None, Some(text.as_bytes().to_vec())));
            }
            let mut bytes = builder.build().to_vec();
            let flagged = (i16::from_be_bytes([bytes[21], bytes[22]]) | attributes::TRANSACTIONAL).to_be_bytes();
            bytes[21..23].copy_from_slice(&flagged);
            let crc = batch::compute_crc(&bytes);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            bytes::Bytes::from(bytes)
        };
        log.append(transactional(7, &["aborted-1", "aborted-2"])).await.expect("0..2"); // 0, 1
        log.append(transactional(8, &["committed"])).await.expect("2"); // 2
        log.append(control_batch(7, 0, MarkerKind::of(false), 0, 1_000)).await.expect("3"); // abort
        log.append(control_batch(8, 0, MarkerKind::of(true), 0, 1_000)).await.expect("4"); // commit
        log.append(transactional(9, &["open"])).await.expect("5"); // 5, undecided
        let aborted = AbortedTransaction {
            producer_id: 7,
            first_offset: 0,
            last_offset: 3,
            last_stable_offset: 2,
        };
        let committed = Committed {
            last_stable_offset: 5,
            aborted: vec![aborted],
        };
        let read = queue.read_stream_committed(0, 10, &committed).expect("read");
        assert_eq!(read.iter().map(body).collect::<Vec<_>>(), ["committed"]);
        assert!(
            queue.read_stream_committed(3, 10, &committed).expect("read").is_empty(),
            "nothing at or past the last stable offset"
        );
        let everything = queue.read_stream(0, 10).expect("read");
        assert_eq!(everything.len(), 4, "an uncommitted reader sees every data record");
    }
}
