//! The public handle of one partition log: open (with recovery), append,
//! read, look up by time, watch the high watermark, close. Appends and
//! control commands go to the log's single writer (`writer.rs`), which a
//! thread of the I/O pool (`io_pool.rs`) runs while the log has work; reads
//! go straight to the segment files (through the open-file cache) by an
//! atomically swapped view of the segment list.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use crate::appending::Appending;
use crate::batch;
use crate::clock::{Clock, system_clock};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::health::LogHealth;
use crate::io_pool::{IoPool, PoolHandle};
use crate::log_cell::LogCell;
use crate::reactor_guard;
use crate::recovery;
use crate::shared::{LogView, Shared};
use crate::storage::{Storage, file_system};
use crate::transaction_index::AbortedTxn;
use crate::writer::{Command, Writer};

/// How far a read goes: durable records only, or written ones too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Up to the high watermark (under `always`, fsynced).
    Durable,
    /// Up to [`Log::written`]: also records not yet fsynced.
    Written,
}

/// The result of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Whole batches, the first containing the requested offset (or, after a
    /// gap, the first batch after it). Empty when nothing is there yet.
    pub bytes: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

/// A handle to one open partition log. Cheap to clone; every clone talks to
/// the same writer. Dropping the last clone closes the log (and waits for
/// its writer), as [`Log::close`] does.
#[derive(Debug, Clone)]
pub struct Log {
    inner: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    cell: Arc<LogCell>,
    pool: Arc<PoolHandle>,
}

impl Handle {
    /// Hands `command` to the writer; `false` when the log is closed (the
    /// command is dropped, and with it its reply sender).
    fn send(&self, command: Command) -> bool {
        match self.cell.push(command) {
            Ok(true) => {
                self.pool.schedule(Arc::clone(&self.cell));
                true
            }
            Ok(false) => true,
            Err(()) => false,
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Wait for the writer so that a reopen right after the drop never races
        // the old writer's final flush.
        let (reply, receiver) = mpsc::sync_channel(1);
        if self.send(Command::Close { reply }) {
            reactor_guard::check("closing a dropped log");
            let _ = receiver.recv();
        }
    }
}

impl Log {
    /// Opens the log in `dir`, creating it if needed and recovering it if the
    /// last run did not close it: the active segment's tail is validated and
    /// truncated at the first torn or corrupt batch, and missing or damaged
    /// indexes are rebuilt.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<Log> {
        Log::open_with_clock(dir, config, system_clock())
    }

    pub fn open_with_clock(dir: impl Into<PathBuf>, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log> {
        Log::open_on(file_system(), dir, config, clock)
    }

    /// [`Log::open`] on a storage backend other than the real file system
    /// (a simulated disk, in tests).
    pub fn open_on(storage: Arc<dyn Storage>, dir: impl Into<PathBuf>, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log> {
        Log::open_on_pool(&IoPool::default_pool(), storage, dir, config, clock)
    }

    /// [`Log::open_on`] served by `pool` rather than the process's default
    /// I/O pool.
    pub fn open_on_pool(
        pool: &IoPool,
        storage: Arc<dyn Storage>,
        dir: impl Into<PathBuf>,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Log> {
        let dir = dir.into();
        storage.create_dir_all(&dir).map_err(|error| LogError::io(&dir, error))?;
        let start_floor = recovery::read_start_floor(storage.as_ref(), &dir)?;
        let files = Arc::clone(pool.files());
        let segments = recovery::recover(&storage, &files, &dir, &config, start_floor)?;
        if segments.iter().all(|segment| segment.committed_bytes() == 0)
            && let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty())
        {
            // A log that holds nothing may be one whose directory a crash
            // created without syncing its parent: the name could still be
            // lost, so it is synced before anything is appended. A log that
            // holds something was appended to after that sync.
            storage.sync_dir(parent).map_err(|error| LogError::io(parent, error))?;
        }
        let next_offset = segments.last().map(|segment| segment.next_offset()).unwrap_or(0);
        let (high_watermark, _) = watch::channel(next_offset);
        let (written, _) = watch::channel(next_offset);
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            storage,
            files,
            // Until the writer takes over: a tail lost under a relaxed
            // durability policy can leave the log shorter than its persisted
            // start, and then the writer continues at that start.
            view: ArcSwap::from_pointee(LogView {
                segments: segments.clone(),
                start_floor: start_floor.min(next_offset),
            }),
            high_watermark,
            written,
            health: Mutex::new(LogHealth::Healthy),
            cleaning: Mutex::new(()),
            deleting: std::sync::atomic::AtomicBool::new(false),
            group_syncs_total: std::sync::atomic::AtomicU64::new(0),
        });
        let writer = Writer::new(Arc::clone(&shared), config, clock, segments, start_floor)?;
        // A writer that owes work from the start (retention of old segments)
        // gets a turn, which sets its timer.
        let owes_work = writer.next_deadline().is_some();
        let cell = LogCell::new(writer);
        let pool = pool.handle();
        if owes_work && cell.push_tick() == Ok(true) {
            pool.schedule(Arc::clone(&cell));
        }
        Ok(Log {
            inner: Arc::new(Handle { shared, cell, pool }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Whether the log accepts appends ([`LogHealth::Poisoned`] after a
    /// failed write or fsync, until [`Log::reopen`]).
    pub fn health(&self) -> LogHealth {
        self.inner.shared.health.lock().clone()
    }

    /// Validates `batches` (one or more concatenated RecordBatch v2 batches:
    /// framing and CRC-32C) in the caller's thread, then hands them to the
    /// writer, which assigns offsets. The returned future resolves when the
    /// append is acknowledged under the log's durability policy.
    pub fn append(&self, batches: Bytes) -> Appending {
        let headers = match batch::check_batches(&batches) {
            Ok(headers) => headers,
            Err(error) => return Appending::Ready(Some(Err(error))),
        };
        let (reply, receiver) = oneshot::channel();
        if !self.inner.send(Command::Append { batches, headers, reply }) {
            return Appending::Ready(Some(Err(LogError::Closed(self.inner.shared.dir.clone()))));
        }
        Appending::Waiting {
            receiver,
            dir: self.inner.shared.dir.clone(),
        }
    }

    /// Whole batches from the one containing `offset`, at most `max_bytes`
    /// unless the first batch alone is bigger and `min_one` is set (Kafka's
    /// KIP-74 rule). Reads never wait for or block the writer.
    pub fn read(&self, offset: u64, max_bytes: usize, min_one: bool) -> Result<ReadOutcome> {
        self.read_up_to(offset, max_bytes, min_one, Visibility::Durable)
    }

    /// [`Log::read`] that also serves records written but not yet durable
    /// (up to [`Log::written`] rather than the high watermark): for readers
    /// that may hand a message out before it is on disk, as RabbitMQ does.
    /// Whoever acknowledges such a record must cope with it being lost in a
    /// crash (the outcome's `high_watermark` is then the written end).
    pub fn read_written(&self, offset: u64, max_bytes: usize, min_one: bool) -> Result<ReadOutcome> {
        self.read_up_to(offset, max_bytes, min_one, Visibility::Written)
    }

    fn read_up_to(&self, offset: u64, max_bytes: usize, min_one: bool, visibility: Visibility) -> Result<ReadOutcome> {
        match self.read_view(offset, max_bytes, min_one, visibility) {
            // The segment was removed (retention, a prefix truncation) after
            // this read took its view: the offset is below the start now.
            Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let start = self.start_offset();
                if offset < start {
                    Err(LogError::OffsetOutOfRange {
                        offset,
                        start,
                        end: self.high_watermark(),
                    })
                } else {
                    self.read_view(offset, max_bytes, min_one, visibility)
                }
            }
            other => other,
        }
    }

    fn read_view(&self, offset: u64, max_bytes: usize, min_one: bool, visibility: Visibility) -> Result<ReadOutcome> {
        let high_watermark = match visibility {
            Visibility::Durable => self.high_watermark(),
            Visibility::Written => self.written(),
        };
        let view = self.view();
        let log_start_offset = view.start_offset();
        if offset < log_start_offset || offset > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: log_start_offset,
                end: high_watermark,
            });
        }
        let mut outcome = ReadOutcome {
            bytes: Bytes::new(),
            high_watermark,
            log_start_offset,
        };
        if offset == high_watermark {
            return Ok(outcome);
        }
        let first = view
            .segments
            .partition_point(|segment| segment.base_offset <= offset)
            .saturating_sub(1);
        // Only a segment that holds nothing at or after `offset` (the sound
        // prefix of a damaged sealed segment, or a segment followed by a gap
        // in the offsets after a failed fsync) sends the read on to the next
        // one. A segment that holds the offset answers alone, even with
        // nothing when its first batch exceeds `max_bytes` without `min_one`:
        // moving on would serve a later batch that does not contain `offset`.
        for segment in &view.segments[first..] {
            let next_offset = match visibility {
                Visibility::Durable => segment.next_offset(),
                Visibility::Written => segment.written_next_offset(),
            };
            if next_offset <= offset {
                continue;
            }
            let from = offset.max(segment.base_offset);
            let read = match visibility {
                Visibility::Durable => segment.read(from, max_bytes, min_one)?,
                Visibility::Written => segment.read_written(from, max_bytes, min_one)?,
            };
            if let Some(bytes) = read {
                outcome.bytes = bytes;
                break;
            }
        }
        Ok(outcome)
    }

    /// The transactions with no marker yet at the end of the log as its
    /// recovery left it (each producer's first offset), from the active
    /// segment's transaction index: what the last stable offset needs after
    /// a restart, however far back a transaction began. Appends since the
    /// open are not reflected: call it before the first.
    pub fn open_transactions_at_open(&self) -> Vec<crate::transaction_index::OpenTxn> {
        let view = self.inner.shared.view.load();
        view.segments.last().map(|segment| segment.open_at_end()).unwrap_or_default()
    }

    /// The aborted transactions with records in `from..to`, from the
    /// transaction indexes of the segments from the one holding `from` on
    /// (Kafka's `UnifiedLog.collectAbortedTransactions`): what a
    /// `read_committed` fetch of `from..to` returns, so clients drop those
    /// records. A transaction is indexed in the segment of its ABORT marker,
    /// so one that began before `from` is found too. In marker order.
    pub fn aborted_transactions(&self, from: u64, to: u64) -> Vec<AbortedTxn> {
        let view = self.inner.shared.view.load();
        let first = view
            .segments
            .partition_point(|segment| segment.base_offset <= from)
            .saturating_sub(1);
        let mut aborted = Vec::new();
        // A marker may lie past `to`, so later segments are searched until
        // an entry shows that none later can matter (Kafka does the same).
        for segment in &view.segments[first..] {
            if segment.collect_aborted(from, to, &mut aborted) {
                break;
            }
        }
        aborted
    }

    /// The offset and timestamp of the first record with a timestamp at or
    /// after `timestamp_ms` (Kafka's ListOffsets by time), or `None` when
    /// every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(u64, i64)>> {
        let view = self.view();
        let start = view.start_offset();
        for segment in view.segments.iter() {
            if let Some((offset, timestamp)) = segment.offset_for_timestamp(timestamp_ms)? {
                // Offsets below a `truncate_prefix` start are gone.
                return Ok(Some((offset.max(start), timestamp)));
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (the
    /// first such record when several share it), Kafka's ListOffsets
    /// MAX_TIMESTAMP; `None` for a log that holds no record. A compressed
    /// batch answers with its base offset, as [`Log::offset_for_timestamp`] does.
    pub fn max_timestamp_record(&self) -> Result<Option<(u64, i64)>> {
        if self.high_watermark() <= self.start_offset() {
            return Ok(None);
        }
        let view = self.view();
        let max_timestamp_ms = view.segments.iter().map(|segment| segment.max_timestamp_ms()).max();
        match max_timestamp_ms {
            // A segment that has held no record keeps `i64::MIN`.
            Some(max_timestamp_ms) if max_timestamp_ms > i64::MIN => self.offset_for_timestamp(max_timestamp_ms),
            _ => Ok(None),
        }
    }

    /// How many groups of appends were fsynced together under `always`
    /// since the log was opened: appends that arrive while a group is
    /// written share its fsync (group commit).
    pub fn group_syncs_total(&self) -> u64 {
        self.inner.shared.group_syncs_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Offset after the last committed record: what consumers can read up to.
    pub fn high_watermark(&self) -> u64 {
        *self.inner.shared.high_watermark.borrow()
    }

    /// A receiver that changes whenever the high watermark moves; long-polling
    /// consumers park on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.shared.high_watermark.subscribe()
    }

    /// Offset after the last record written, durable or not (at least the
    /// high watermark); what [`Log::read_written`] reads up to.
    pub fn written(&self) -> u64 {
        *self.inner.shared.written.borrow()
    }

    /// A receiver that changes whenever [`Log::written`] moves.
    pub fn subscribe_written(&self) -> watch::Receiver<u64> {
        self.inner.shared.written.subscribe()
    }

    /// The segments as of now (a snapshot; not to be held across an await).
    fn view(&self) -> arc_swap::Guard<Arc<LogView>> {
        self.inner.shared.view.load()
    }

    pub fn start_offset(&self) -> u64 {
        self.view().start_offset()
    }

    /// Committed bytes across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.view().segments.iter().map(|segment| segment.committed_bytes()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.view().segments.len()
    }

    /// Headers of the batches in about the last `max_bytes` of the active
    /// segment, oldest first (producer state is rebuilt from them on start).
    pub fn tail_batch_headers(&self, max_bytes: u64) -> Result<Vec<crate::batch::BatchHeader>> {
        let view = self.view();
        match view.segments.last() {
            Some(segment) => segment.tail_headers(max_bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Compacts the log if a cleaning is due (`compaction_plan.rs`): keeps
    /// the latest record per key in the sealed segments, swaps the cleaned
    /// segments in and moves the cleaner's checkpoint. Blocking, throttled
    /// by `throttle`; run it on a background thread, never the reactor.
    /// `None` when nothing was due.
    pub fn clean(
        &self,
        config: &crate::CompactionConfig,
        settings: &crate::CleanerSettings,
        throttle: &mut crate::throttle::Throttle,
        now_ms: i64,
    ) -> Result<Option<crate::CleanStats>> {
        reactor_guard::check("cleaning a log");
        let shared = &self.inner.shared;
        let _cleaning = shared.cleaning.lock();
        if shared.deleting.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LogError::Closed(shared.dir.clone()));
        }
        let Some(prepared) = crate::cleaner::prepare(shared, config, settings, throttle, now_ms)? else {
            return Ok(None);
        };
        let stats = prepared.stats;
        if !prepared.cleaned.is_empty() {
            let (reply, receiver) = mpsc::sync_channel(1);
            if !self.inner.send(Command::SwapCleaned {
                cleaned: prepared.cleaned,
                reply,
            }) {
                return Err(LogError::Closed(shared.dir.clone()));
            }
            receiver.recv().map_err(|_| LogError::Closed(shared.dir.clone()))??;
        }
        crate::cleaner::write_checkpoint(shared.storage.as_ref(), &shared.dir, stats.cleaned_to_offset)?;
        Ok(Some(stats))
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.view().segments.iter().map(|segment| segment.base_offset).collect()
    }

    /// Sends a control command and blocks for its reply. Control commands are
    /// rare (roll, retention, config, close); async callers run them in
    /// `spawn_blocking` like any other file operation.
    fn request<T>(&self, make: impl FnOnce(mpsc::SyncSender<T>) -> Command) -> Result<T> {
        reactor_guard::check("a blocking log command");
        let (reply, receiver) = mpsc::sync_channel(1);
        let closed = || LogError::Closed(self.inner.shared.dir.clone());
        if !self.inner.send(make(reply)) {
            return Err(closed());
        }
        receiver.recv().map_err(|_| closed())
    }

    /// Seals the active segment and starts a new one (if the active one holds anything).
    pub fn roll(&self) -> Result<()> {
        self.request(|reply| Command::Roll { reply })?
    }

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords):
    /// reads below it fail from now on, the new start survives restarts, and
    /// segments wholly below it are deleted. `offset` may not pass the high
    /// watermark. Returns the new start offset. One that fails (an I/O error
    /// writing the start) may still have persisted it: after a restart the
    /// start may be `offset`.
    pub fn truncate_prefix(&self, offset: u64) -> Result<u64> {
        self.request(|reply| Command::TruncatePrefix { offset, reply })?
    }

    /// Applies retention now, with the log's clock; returns how many segments were deleted.
    pub fn enforce_retention(&self) -> Result<usize> {
        self.request(|reply| Command::Retention { reply })?
    }

    /// Replaces the log's settings (retention, segment size, durability).
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        self.request(|reply| Command::SetConfig { config, reply })
    }

    /// Writes and fsyncs everything appended so far, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        self.request(|reply| Command::Sync { reply })?
    }

    /// Flushes, fsyncs, writes the active segment's indexes and stops the
    /// writer. Appends after this fail with [`LogError::Closed`]. Blocking.
    pub fn close(&self) -> Result<()> {
        let result = self.request(|reply| Command::Close { reply });
        match result {
            Ok(inner) => inner,
            // Already closed by another handle.
            Err(LogError::Closed(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Recovers a poisoned log from what is on disk without closing it:
    /// the bytes of the appends that failed are cut (if the failure could not
    /// cut them), the segments are opened again as on start, and appends are
    /// accepted again. Offsets that readers may have seen before the failure
    /// are never given to another record: the log continues after them.
    /// Does nothing to a healthy log. Blocking.
    pub fn reopen(&self) -> Result<()> {
        self.request(|reply| Command::Reopen { reply })?
    }

    /// Closes the log and removes its directory with every segment.
    pub fn delete(self) -> Result<()> {
        let shared = &self.inner.shared;
        shared.deleting.store(true, std::sync::atomic::Ordering::Release);
        self.close()?;
        // Waits for a cleaning in progress, which stops at its next segment.
        let _cleaning = shared.cleaning.lock();
        shared
            .storage
            .remove_dir_all(&shared.dir)
            .map_err(|error| LogError::io(&shared.dir, error))?;
        if let Some(parent) = shared.dir.parent() {
            let _ = shared.storage.sync_dir(parent);
        }
        Ok(())
    }
}
