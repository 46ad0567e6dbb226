//! Reading a stream (`x-queue-type: stream`): a reader at an offset on the
//! queue's message log, as a Kafka consumer reads a partition. Reading
//! settles nothing — the share cursor is not involved — so every reader
//! sees every message the log still retains, and retention (by bytes, by
//! age) is the log's. Knows offsets and timestamps; nothing of how a front
//! door spells a starting point (AMQP's `x-stream-offset`).

use conveyor_log::LogError;
use conveyor_log::record::Record;

use super::{Queue, QueueError};
use crate::record_batches::decode_data_batches;

/// Bytes one read takes from the log (at least one batch, however large).
const READ_BYTES_MAX: usize = 1 << 20;
/// Bytes of the active segment's tail searched for its last batch.
const TAIL_BYTES_MAX: u64 = 1 << 20;

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
        let log = self.message_log();
        let mut from = offset;
        // Twice at most: once more from the log's new start after retention.
        for _ in 0..2 {
            if from >= log.written() || max_records == 0 {
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
            let records = decode_data_batches(&read.bytes).map_err(|reason| QueueError::Journal {
                path: self.dir().join("messages"),
                reason,
            })?;
            return Ok(records
                .into_iter()
                .filter(|record| record.offset.and_then(|at| u64::try_from(at).ok()).is_some_and(|at| at >= from))
                .take(max_records)
                .collect());
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
}
