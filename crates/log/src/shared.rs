//! What every handle of one log shares with its writer: the directory, its
//! storage and the open-file cache, the segment list readers see, the
//! watermarks and the health. The writer (`writer.rs`) changes it; handles
//! (`log.rs`) read it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::file_cache::FileCache;
use crate::health::LogHealth;
use crate::segment::Segment;
use crate::storage::Storage;

/// Present in a log directory only between a clean close and the next open:
/// it says the active segment's index files can be trusted.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";

/// The file holding the start offset set by `truncate_prefix`.
pub(crate) const START_OFFSET_FILE: &str = "log-start-offset";

/// The segments readers see. Replaced whole by the writer on roll and retention.
#[derive(Debug)]
pub(crate) struct LogView {
    pub segments: Vec<Arc<Segment>>,
    /// A start offset moved inside the first segment by `truncate_prefix`
    /// (Kafka's DeleteRecords); 0 when only whole segments were removed.
    pub start_floor: u64,
}

impl LogView {
    pub fn start_offset(&self) -> u64 {
        self.segments
            .first()
            .map(|segment| segment.base_offset)
            .unwrap_or(0)
            .max(self.start_floor)
    }
}

/// State shared by every handle of one log and its writer.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub storage: Arc<dyn Storage>,
    /// The I/O pool's open-file cache, which every segment file goes through.
    pub files: Arc<FileCache>,
    pub view: ArcSwap<LogView>,
    /// Offset after the last committed record.
    pub high_watermark: watch::Sender<u64>,
    /// Offset after the last record written to the file, fsynced or not: the
    /// high watermark, or ahead of it between a write and its fsync under
    /// `always`. It never moves back, even when a failed fsync cuts what it
    /// counted: the writer then never gives those offsets out again.
    pub written: watch::Sender<u64>,
    pub health: Mutex<LogHealth>,
    /// Held by a cleaning (`Log::clean`) from its first read to its swap;
    /// `Log::delete` takes it before removing the directory, so no cleaned
    /// file is being written into a directory being removed.
    pub cleaning: Mutex<()>,
    /// Set by `Log::delete`: a cleaning in progress stops at its next segment.
    pub deleting: std::sync::atomic::AtomicBool,
    /// Groups of appends fsynced together under `always` (one `fdatasync`
    /// each): how many fsyncs this log's appends waited for.
    pub group_syncs_total: AtomicU64,
}
