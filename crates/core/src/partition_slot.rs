//! One partition of a topic as the topic holds it: its [`Partition`]
//! (the log and producer state), opened on first use after a clean
//! restart, and until then the figures the last clean shutdown stored
//! ([`PartitionSummary`]). Opens no file itself (its opener does) and
//! knows not where the summaries are kept.

use conveyor_log::Log;
use tracing::error;

use crate::error::Result;
use crate::open_once::OpenOnce;
use crate::producer::Partition;
use crate::topic_config::{TopicConfig, TopicDefaults};

/// Opens a partition's log with its topic's config as it is then and
/// rebuilds its producer state (blocking); called at most once at a time,
/// and again only after it failed.
pub type PartitionOpener = Box<dyn Fn(&TopicConfig) -> Result<Partition> + Send + Sync>;

/// What an unopened partition answers (Metadata needs none of it; the
/// admin API, `/metrics` and DescribeLogDirs do): its log's figures when
/// the broker last shut down cleanly. Exact: nothing changes a partition
/// without opening it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionSummary {
    pub start_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
    /// Segments, the active one included: a log of one segment owes no
    /// retention and no compaction (both act on sealed segments only).
    pub segment_count: usize,
}

impl PartitionSummary {
    /// An open log's figures now.
    pub fn of_log(log: &Log) -> PartitionSummary {
        PartitionSummary {
            start_offset: log.start_offset(),
            high_watermark: log.high_watermark(),
            size_bytes: log.size_bytes(),
            segment_count: log.segment_count(),
        }
    }

    /// Whether a partition with these figures needs its log open for a
    /// timer under `config` before anyone uses it: retention and the
    /// cleaner act on sealed segments only, and appends (which open the
    /// log) are what seal one.
    pub fn needs_timers(&self, config: &TopicConfig, defaults: &TopicDefaults) -> bool {
        let log = config.log_config(defaults);
        let retains = log.retention_ms.is_some() || log.retention_bytes.is_some();
        self.segment_count > 1 && (retains || config.cleanup_policy().compact)
    }
}

/// How a topic gets one of its partitions at start: open, or to be opened
/// on first use.
pub enum Opening {
    Open(Partition),
    Later(PartitionOpener, PartitionSummary),
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opening::Open(partition) => formatter.debug_tuple("Open").field(partition).finish(),
            Opening::Later(_, stored) => formatter.debug_tuple("Later").field(stored).finish(),
        }
    }
}

#[derive(Debug)]
pub struct PartitionSlot {
    partition: OpenOnce<Partition, PartitionOpener>,
    stored: PartitionSummary,
}

impl PartitionSlot {
    /// A partition already open.
    pub fn open(partition: Partition) -> PartitionSlot {
        PartitionSlot {
            partition: OpenOnce::open(partition),
            stored: PartitionSummary::default(),
        }
    }

    /// A partition `opener` opens on first use, answering `stored` until then.
    pub fn unopened(opener: PartitionOpener, stored: PartitionSummary) -> PartitionSlot {
        PartitionSlot {
            partition: OpenOnce::later(Some(opener)),
            stored,
        }
    }

    /// The partition, opened now with `config` (and made ready by
    /// `finish`) if this is its first use since the start: blocking then
    /// (it reads the log's files; on an async worker inside
    /// `block_in_place`, which hands the worker's other tasks to another
    /// thread first). `None` once closed, or when opening failed (logged;
    /// the next use tries again).
    pub fn get(&self, config: impl FnOnce() -> TopicConfig, finish: impl FnOnce(Partition) -> Partition) -> Option<&Partition> {
        let opened = self.partition.get(|opener| {
            let config = config();
            crate::queue::blocking_in_place(|| opener(&config)).map(finish)
        });
        match opened {
            Ok(opened) => opened.map(|(partition, _)| partition),
            Err(failure) => {
                error!(%failure, "opening a partition log failed");
                None
            }
        }
    }

    /// The partition if it is open; never opens it.
    pub fn opened(&self) -> Option<&Partition> {
        self.partition.opened()
    }

    /// Its figures: the open log's, or the stored ones. Never opens it.
    pub fn summary(&self) -> PartitionSummary {
        self.opened()
            .map_or(self.stored, |partition| PartitionSummary::of_log(&partition.log))
    }

    /// Its high watermark, without opening it.
    pub fn high_watermark(&self) -> u64 {
        self.opened()
            .map_or(self.stored.high_watermark, |partition| partition.log.high_watermark())
    }

    /// Stops it from opening from now on (an open in progress finishes
    /// first) and returns its log if it is open, for the caller to close.
    pub fn seal(&self) -> Option<Log> {
        self.partition.seal().map(|partition| partition.log.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn two_first_uses_open_a_partition_once_and_a_sealed_one_never_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opens = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&opens);
        let log_dir = dir.path().join("0");
        let stored = PartitionSummary {
            start_offset: 0,
            high_watermark: 7,
            size_bytes: 700,
            segment_count: 1,
        };
        let slot = PartitionSlot::unopened(
            Box::new(move |_config: &TopicConfig| {
                counted.fetch_add(1, Ordering::SeqCst);
                Partition::new(Log::open(log_dir.clone(), conveyor_log::LogConfig::default())?)
            }),
            stored,
        );
        assert_eq!(slot.summary(), stored, "answers the stored figures");
        assert_eq!(slot.high_watermark(), 7);
        assert!(slot.opened().is_none());
        std::thread::scope(|scope| {
            let first = scope.spawn(|| {
                slot.get(TopicConfig::default, |partition| partition)
                    .map(|p| p.log.dir().to_owned())
            });
            let second = scope.spawn(|| {
                slot.get(TopicConfig::default, |partition| partition)
                    .map(|p| p.log.dir().to_owned())
            });
            assert!(first.join().expect("first").is_some());
            assert!(second.join().expect("second").is_some());
        });
        assert_eq!(opens.load(Ordering::SeqCst), 1, "opened once");
        assert_eq!(slot.summary().high_watermark, 0, "the open log's figures now");
        slot.seal().expect("open").close().expect("close");

        let never = PartitionSlot::unopened(Box::new(|_config: &TopicConfig| unreachable!("sealed")), stored);
        assert!(never.seal().is_none());
        assert!(
            never.get(TopicConfig::default, |partition| partition).is_none(),
            "a sealed slot stays shut"
        );
    }
}
