//! Which offsets of a topic partition a share group may hand out (KIP-932's
//! `share.isolation.level`): never a transaction marker (Kafka archives
//! them); under `read_committed`, nothing at or past the partition's last
//! stable offset and no record of an aborted transaction, as
//! `Broker::read_stream` reads a stream. Reads batch headers only; knows
//! no cursor, no members and no wire format.

use std::ops::RangeInclusive;

use conveyor_log::LogError;
use conveyor_log::batch::{BatchHeader, whole_batches};

use crate::producer::Partition;

/// Bytes one read of the partition takes (at least one batch, however large).
const READ_BYTES_MAX: usize = 256 * 1024;
/// Reads one classification makes at most; the next acquisition goes on.
const READS_MAX: usize = 8;

/// KIP-932's `share.isolation.level`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Every data record up to the high watermark, also those of open and
    /// aborted transactions (Kafka's default).
    #[default]
    ReadUncommitted,
    /// Up to the last stable offset, without aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// Kafka's spelling of the level.
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }

    /// The level Kafka spells `name`, if any.
    pub fn parse(name: &str) -> Option<IsolationLevel> {
        match name {
            "read_uncommitted" => Some(IsolationLevel::ReadUncommitted),
            "read_committed" => Some(IsolationLevel::ReadCommitted),
            _ => None,
        }
    }
}

/// What one classification found: offsets below `below` are known; the
/// `skipped` ones among them must never be handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified {
    pub below: u64,
    pub skipped: Vec<RangeInclusive<u64>>,
}

/// How far a share-partition has looked into its log, under which level.
/// Not durable: after a restart the look starts again at the
/// share-partition's start offset (skipping twice is harmless).
#[derive(Debug, Default)]
pub struct RecordFilter {
    isolation: IsolationLevel,
    classified_below: u64,
}

impl RecordFilter {
    /// Looks at the batches of `partition` from `from` (the share-partition's
    /// start offset) on, up to `window_end` at most and to the end
    /// `isolation` allows, and says which of them to skip. A change of
    /// level looks again from `from`. Blocking (reads the log).
    pub fn classify(
        &mut self,
        partition: &Partition,
        isolation: IsolationLevel,
        from: u64,
        window_end: u64,
    ) -> Result<Classified, LogError> {
        if isolation != self.isolation {
            self.isolation = isolation;
            self.classified_below = 0;
        }
        let committed = (isolation == IsolationLevel::ReadCommitted).then(|| partition.committed_view(self.classified_below.max(from)));
        let end = committed
            .as_ref()
            .map_or_else(|| partition.log.high_watermark(), |committed| committed.last_stable_offset);
        let skip = |header: &BatchHeader| header.is_control() || committed.as_ref().is_some_and(|committed| committed.aborts(header));
        let limit = end.min(window_end);
        let mut at = self.classified_below.max(from);
        let mut skipped = Vec::new();
        for _ in 0..READS_MAX {
            if at >= limit {
                break;
            }
            let read = match partition.log.read(at, READ_BYTES_MAX, true) {
                Ok(read) => read,
                // Retention removed the start meanwhile: nothing below the new start is handed out anyway.
                Err(LogError::OffsetOutOfRange { start, .. }) if start > at => {
                    at = start;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let before = at;
            for (header, _) in whole_batches(&read.bytes) {
                if at >= limit {
                    break;
                }
                let (Ok(base), Ok(last)) = (u64::try_from(header.base_offset), u64::try_from(header.last_offset())) else {
                    continue;
                };
                if last < at {
                    continue;
                }
                // The high watermark and the last stable offset are batch
                // boundaries: a batch reaching past `end` is not decided yet.
                if last >= end {
                    break;
                }
                if skip(&header) {
                    skipped.push(base.max(at)..=last);
                }
                at = last + 1;
            }
            if at == before {
                break;
            }
        }
        self.classified_below = at;
        Ok(Classified { below: at, skipped })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use conveyor_log::clock::{Clock, ManualClock};
    use conveyor_log::record::{BatchBuilder, Record};
    use conveyor_log::{Log, LogConfig};

    use super::*;
    use crate::transaction::marker::MarkerKind;

    pub(crate) fn partition(dir: &std::path::Path) -> Partition {
        let clock = ManualClock::new(0);
        let log = Log::open_with_clock(dir.join("partition"), LogConfig::default(), clock as Arc<dyn Clock>).expect("open log");
        Partition::new(log).expect("partition")
    }

    /// A batch of `count` records of `producer_id`, transactional or not.
    pub(crate) fn batch(producer_id: i64, sequence: i32, count: usize, transactional: bool) -> Bytes {
        let mut builder = BatchBuilder::new(1_000).producer(producer_id, 0, sequence);
        for index in 0..count {
            builder.push(Record::new(None, Some(format!("r{index}").into_bytes())));
        }
        let mut bytes = builder.build().to_vec();
        if transactional {
            let flagged = (i16::from_be_bytes([bytes[21], bytes[22]]) | conveyor_log::batch::attributes::TRANSACTIONAL).to_be_bytes();
            bytes[21..23].copy_from_slice(&flagged);
            let crc = conveyor_log::batch::compute_crc(&bytes);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        Bytes::from(bytes)
    }

    /// Plain records at 0..2, an aborted transaction at 2..5 (its marker at
    /// 5), a committed one at 6 (marker at 7) and an open one at 8..10.
    pub(crate) async fn append_transactions(partition: &Partition) {
        partition.append(batch(1, 0, 2, false)).await.expect("plain at 0..2");
        partition.append(batch(7, 0, 3, true)).await.expect("aborted at 2..5");
        partition.append_marker(7, 0, MarkerKind::Abort, 1).await.expect("abort at 5");
        partition.append(batch(8, 0, 1, true)).await.expect("committed at 6");
        partition.append_marker(8, 0, MarkerKind::Commit, 1).await.expect("commit at 7");
        partition.append(batch(9, 0, 2, true)).await.expect("open at 8..10");
    }

    /// What `filter` makes of the whole of `partition` from offset 0.
    fn classify_all(filter: &mut RecordFilter, partition: &Partition, isolation: IsolationLevel) -> Classified {
        filter.classify(partition, isolation, 0, u64::MAX).expect("classify")
    }

    #[tokio::test]
    async fn markers_are_skipped_always_aborted_records_and_open_transactions_only_when_read_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = partition(dir.path());
        append_transactions(&partition).await;
        let uncommitted = classify_all(&mut RecordFilter::default(), &partition, IsolationLevel::ReadUncommitted);
        assert_eq!(
            uncommitted,
            Classified {
                below: 10,
                skipped: vec![5..=5, 7..=7]
            },
            "only the markers"
        );
        let mut filter = RecordFilter::default();
        let committed = classify_all(&mut filter, &partition, IsolationLevel::ReadCommitted);
        assert_eq!(
            committed,
            Classified {
                below: 8,
                skipped: vec![2..=4, 5..=5, 7..=7]
            },
            "up to the open transaction"
        );
        partition.append_marker(9, 0, MarkerKind::Commit, 1).await.expect("commit at 10");
        let later = classify_all(&mut filter, &partition, IsolationLevel::ReadCommitted);
        assert_eq!(
            later,
            Classified {
                below: 11,
                skipped: vec![10..=10]
            },
            "goes on where it stopped"
        );
        let windowed = RecordFilter::default()
            .classify(&partition, IsolationLevel::ReadCommitted, 0, 3)
            .expect("classify");
        assert_eq!(windowed.below, 5, "whole batches, stopping once past the window");
    }
}
