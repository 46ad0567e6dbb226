//! The single writer of one log: the state that owns the active segment,
//! assigns offsets, writes, fsyncs per the durability policy, rolls segments,
//! applies retention and publishes the high watermark. It owns no thread:
//! the I/O pool (`io_pool.rs`) runs it, one pool thread at a time, whenever
//! commands wait in its inbox (`log_cell.rs`) or a timer falls due.
//!
//! Group commit: a turn takes every append already queued, gathers them
//! (small batches copied into one buffer, large ones referenced in place), does
//! one vectored write ([`Writer::write_group`]) and (under `always`) one
//! `fdatasync` ([`Writer::sync_group`]), then acknowledges them all; the
//! pool writes the groups of several logs before it fsyncs them. Readers
//! never wait for the writer: they see bytes only once [`Segment::commit`]
//! publishes them.
//!
//! A failed write or fsync poisons the log: the page cache may or may not hold
//! the data, so nothing more is acknowledged until the log is reopened
//! (`Log::reopen`) and recovered from what is really on disk. Before that the
//! writer cuts the failed group's bytes from the file and syncs the cut, so an
//! append whose caller was told it failed never comes back after a restart.
//! A write that fails because the file system is full (ENOSPC, EDQUOT) is
//! not a failure of the disk: once its bytes are cut, the group's appends fail
//! with `LogError::StorageFull` and the log stays healthy.

use std::io::IoSlice;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::appending::AppendInfo;
use crate::batch::{self, BatchHeader};
use crate::clock::Clock;
use crate::config::{Durability, LogConfig};
use crate::error::{LogError, Result};
use crate::health::LogHealth;
use crate::recovery;
use crate::retention::{self, SegmentStats};
use crate::segment::{self, IndexBuilder, IndexMark, Segment};
use crate::segment_files::{create_segment, remove_if_present};
use crate::shared::{CLEAN_SHUTDOWN_FILE, LogView, START_OFFSET_FILE, Shared};
use crate::storage::{Storage, StorageFile, is_out_of_space};
use crate::transaction_index::TransactionTracker;

/// Requests to the writer thread.
#[derive(Debug)]
pub(crate) enum Command {
    Append {
        batches: Bytes,
        headers: Vec<BatchHeader>,
        reply: oneshot::Sender<Result<AppendInfo>>,
    },
    Roll {
        reply: mpsc::SyncSender<Result<()>>,
    },
    Retention {
        reply: mpsc::SyncSender<Result<usize>>,
    },
    TruncatePrefix {
        offset: u64,
        reply: mpsc::SyncSender<Result<u64>>,
    },
    SetConfig {
        config: LogConfig,
        reply: mpsc::SyncSender<()>,
    },
    Sync {
        reply: mpsc::SyncSender<Result<()>>,
    },
    Reopen {
        reply: mpsc::SyncSender<Result<()>>,
    },
    Close {
        reply: mpsc::SyncSender<Result<()>>,
    },
    /// Swap cleaned segments in (`segment_swap.rs`).
    SwapCleaned {
        cleaned: Vec<crate::cleaner::CleanedSegment>,
        reply: mpsc::SyncSender<Result<usize>>,
    },
    /// A timer fell due: the turn's periodic work (`Writer::tick`) does it.
    Tick,
}

/// Appends written into `buffer` but not yet acknowledged.
#[derive(Debug)]
struct Pending {
    reply: oneshot::Sender<Result<AppendInfo>>,
    info: AppendInfo,
}

/// Where the group being gathered started: what a failed write rolls back to.
#[derive(Debug, Clone)]
struct GroupStart {
    next_offset: u64,
    index: IndexMark,
}

/// Why the log refuses appends, and whether the bytes that failed are gone.
#[derive(Debug, Clone)]
struct Poison {
    reason: String,
    tail_removed: bool,
}

/// Positions are u32 in the offset index, so a segment stays below 2 GiB.
const SEGMENT_BYTES_CEILING: u64 = i32::MAX as u64;
/// Flush a group once this much is buffered, even if more appends are queued.
const GROUP_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Batches at least this large are written from the appender's own bytes
/// (one iovec for the patched base offset, one for the rest) instead of being
/// copied into the group buffer. Under `never` the writer thread is the
/// bottleneck, and that copy was 7% of all CPU samples for 100 KiB appends
/// (`perf`, `append/never/1KiB/b100/c16`); below a few KiB an iovec pair costs
/// about what the copy saves, and many small batches would need many `pwritev` calls (IOV_MAX is 1024).
const SHARED_BATCH_BYTES_MIN: usize = 8 * 1024;

/// One part of the group being written, in file order.
#[derive(Debug)]
enum Piece {
    /// `buffer[start..end]`: copied small batches, or a large batch's patched base offset.
    Buffered { start: usize, end: usize },
    /// A large batch after its base offset, still in the appender's memory.
    Shared(Bytes),
}

/// The room a segment that holds nothing (or little) keeps reserved when
/// `reserve_bytes` asks for more: room for about 500 small journal events
/// (a settle is one batch of roughly 120 bytes), so consumers can still
/// settle that many deliveries on a full file system before the reserve
/// has grown. 10,000 idle queues hold 640 MiB this way instead of 10 GiB.
pub const RESERVE_FIRST_BYTES: u64 = 64 * 1024;

/// The room to keep reserved past `active_bytes`: as much as the segment
/// holds, clamped between [`RESERVE_FIRST_BYTES`] (or `reserve_bytes_max`
/// if smaller) and `reserve_bytes_max`.
fn reserve_step_bytes(reserve_bytes_max: u64, active_bytes: u64) -> u64 {
    active_bytes.clamp(RESERVE_FIRST_BYTES.min(reserve_bytes_max), reserve_bytes_max)
}

#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
    config: LogConfig,
    clock: Arc<dyn Clock>,
    segments: Vec<Arc<Segment>>,
    /// Bytes written to the active segment file (committed or not).
    active_bytes: u64,
    /// Bytes of the active segment known to be on disk: up to here a
    /// `fdatasync` succeeded. After a failed fsync the bytes past it may be
    /// in the page cache only, marked clean (Linux does that after a
    /// writeback error), so no later fsync would write them: `reopen`
    /// writes them again.
    synced_bytes: u64,
    /// The active segment has room reserved up to here (`reserve_bytes`).
    reserved_end: u64,
    /// Offset the next appended record gets.
    next_offset: u64,
    /// Max timestamp of batches in `buffer`.
    buffered_max_timestamp_ms: i64,
    index: IndexBuilder,
    active_created_ms: i64,
    /// Bytes copied for the group; `pieces` says how they interleave with
    /// shared batches.
    buffer: Vec<u8>,
    pieces: Vec<Piece>,
    /// Bytes in the group (buffered and shared).
    group_bytes: usize,
    group_start: Option<GroupStart>,
    pending: Vec<Pending>,
    /// The group is written and waits for its `fdatasync` (under `always`).
    awaiting_sync: bool,
    /// The offset after the last record readers could ever see, written or
    /// committed: offsets below it are never given to another record, even
    /// when a failed fsync cut the records they named.
    written_high: u64,
    /// Written but not fsynced (only under `interval` and `never`).
    dirty: bool,
    /// Whether anything changed the log's files since it was opened (a
    /// group written, a roll, a cut, a prefix truncated, segments removed):
    /// an unchanged log closes without an fsync (see [`Writer::close`]).
    changed: bool,
    last_sync: Instant,
    last_retention_check: Instant,
    poison: Option<Poison>,
    /// The start offset set by `truncate_prefix` (see `LogView::start_floor`).
    start_floor: u64,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        config: LogConfig,
        clock: Arc<dyn Clock>,
        segments: Vec<Arc<Segment>>,
        start_floor: u64,
    ) -> Result<Writer> {
        let active = segments.last().ok_or_else(|| LogError::Closed(shared.dir.clone()))?;
        let next_offset = active.next_offset();
        let mut writer = Writer {
            active_bytes: 0,
            synced_bytes: 0,
            reserved_end: 0,
            next_offset,
            buffered_max_timestamp_ms: i64::MIN,
            index: IndexBuilder::new(config.index_interval_bytes),
            active_created_ms: 0,
            shared,
            config,
            clock,
            segments: Vec::new(),
            buffer: Vec::new(),
            pieces: Vec::new(),
            group_bytes: 0,
            group_start: None,
            pending: Vec::new(),
            awaiting_sync: false,
            written_high: next_offset,
            dirty: false,
            changed: false,
            last_sync: Instant::now(),
            last_retention_check: Instant::now(),
            poison: None,
            start_floor,
        };
        writer.resume(segments, start_floor)?;
        writer.continue_after(start_floor)?;
        writer.publish_view();
        writer.shared.high_watermark.send_replace(writer.next_offset);
        writer.shared.written.send_replace(writer.next_offset);
        Ok(writer)
    }

    /// Starts a new segment at `floor` when the log ends before it: offsets
    /// below it were handed out before (records a failed fsync cut, or a
    /// tail lost under a relaxed policy below a persisted start offset) and
    /// are never given to another record — one below a persisted start
    /// would even be hidden by the next restart.
    fn continue_after(&mut self, floor: u64) -> Result<()> {
        if self.next_offset < floor {
            self.roll_to(floor)?;
        }
        Ok(())
    }

    /// Takes over recovered segments: the last one is continued.
    fn resume(&mut self, segments: Vec<Arc<Segment>>, start_floor: u64) -> Result<()> {
        let active = segments.last().ok_or_else(|| LogError::Closed(self.shared.dir.clone()))?;
        // An empty segment starts a fresh index (its first batch gets an entry,
        // as a rebuild scan would give it); a recovered one continues its own.
        self.index = if active.committed_bytes() == 0 {
            // Recovery gave it the transactions open at the end of the one before.
            IndexBuilder::new(self.config.index_interval_bytes).with_open_transactions(&active.open_at_end())
        } else {
            IndexBuilder::resume(self.config.index_interval_bytes, active.index_snapshot(), active.max_timestamp_ms())
        };
        self.active_bytes = active.committed_bytes();
        // Recovery synced the active segment (or the clean close did).
        self.synced_bytes = self.active_bytes;
        self.reserved_end = 0;
        self.next_offset = active.next_offset();
        self.written_high = self.written_high.max(self.next_offset);
        self.active_created_ms = self.clock.now_ms();
        self.buffered_max_timestamp_ms = i64::MIN;
        self.dirty = false;
        self.start_floor = start_floor;
        self.segments = segments;
        self.renew_reserve();
        Ok(())
    }

    /// Keeps room reserved past the end of the active segment, renewed once
    /// less than half of it is left; on a full file system the renewal fails
    /// and appends use up what is left. The room grows with the segment
    /// (see [`reserve_step_bytes`]): as many bytes as it holds, at least
    /// [`RESERVE_FIRST_BYTES`], at most `reserve_bytes` — a journal that was
    /// never written (most queues' cursors) holds 64 KiB, not 1 MiB.
    fn renew_reserve(&mut self) {
        let reserve = reserve_step_bytes(self.config.reserve_bytes, self.active_bytes);
        if reserve == 0 || self.reserved_end >= self.active_bytes + reserve / 2 {
            return;
        }
        let Some(active) = self.segments.last() else {
            return;
        };
        match active.file().and_then(|file| file.allocate(self.active_bytes, reserve)) {
            Ok(()) => self.reserved_end = self.active_bytes + reserve,
            Err(cause) => {
                tracing::debug!(log = %self.shared.dir.display(), %cause, "could not renew the reserved room");
            }
        }
    }

    fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.shared.storage)
    }

    fn active(&self) -> &Arc<Segment> {
        // `segments` is never empty: retention keeps the active segment.
        &self.segments[self.segments.len() - 1]
    }

    /// Whether the group gathered so far is as large as a group gets: the
    /// turn writes it before taking more commands.
    pub fn group_full(&self) -> bool {
        self.group_bytes >= GROUP_BYTES_MAX
    }

    /// When the writer next owes work nobody asks for: the `interval`
    /// policy's fsync of written data, and retention of sealed segments.
    /// `None` when it owes none (an idle log then costs no timer either).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = None;
        if let Durability::Interval(interval) = self.config.durability
            && self.dirty
            && self.poison.is_none()
        {
            next = Some(self.last_sync + interval);
        }
        let retains = self.config.retention_ms.is_some() || self.config.retention_bytes.is_some();
        if retains && self.segments.len() > 1 {
            let at = self.last_retention_check + Duration::from_millis(self.config.retention_check_interval_ms);
            next = Some(next.map_or(at, |next: Instant| next.min(at)));
        }
        next
    }

    /// Handles one command; returns true when the writer has stopped.
    pub fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Append { batches, headers, reply } => self.on_append(&batches, &headers, reply),
            Command::Roll { reply } => {
                self.flush();
                let result = self.roll_if_nonempty();
                let _ = reply.send(result);
            }
            Command::Retention { reply } => {
                self.flush();
                let _ = reply.send(self.enforce_retention());
            }
            Command::TruncatePrefix { offset, reply } => {
                self.flush();
                let _ = reply.send(self.truncate_prefix(offset));
            }
            Command::SetConfig { config, reply } => {
                self.config = config;
                let _ = reply.send(());
            }
            Command::Sync { reply } => {
                self.flush();
                let result = self.check_poison().and_then(|()| self.sync());
                let _ = reply.send(result);
            }
            Command::Reopen { reply } => {
                self.flush();
                let _ = reply.send(self.reopen());
            }
            Command::Close { reply } => {
                let _ = reply.send(self.close());
                return true;
            }
            Command::SwapCleaned { cleaned, reply } => {
                self.flush();
                let _ = reply.send(self.swap_cleaned(cleaned));
            }
            Command::Tick => {}
        }
        false
    }

    fn check_poison(&self) -> Result<()> {
        match &self.poison {
            Some(poison) => Err(LogError::Poisoned {
                dir: self.shared.dir.clone(),
                reason: poison.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, what: &str, cause: &std::io::Error, tail_removed: bool) {
        let reason = format!("{what} failed: {cause}");
        error!(log = %self.shared.dir.display(), %reason, tail_removed, "poisoning the log: no further appends are acknowledged until it is reopened");
        self.set_poison(Some(Poison { reason, tail_removed }));
    }

    fn set_poison(&mut self, poison: Option<Poison>) {
        *self.shared.health.lock() = match &poison {
            None => LogHealth::Healthy,
            Some(poison) => LogHealth::Poisoned {
                reason: poison.reason.clone(),
                failed_tail_removed: poison.tail_removed,
            },
        };
        self.poison = poison;
    }

    fn on_append(&mut self, batches: &Bytes, headers: &[BatchHeader], reply: oneshot::Sender<Result<AppendInfo>>) {
        if let Err(error) = self.check_poison() {
            let _ = reply.send(Err(error));
            return;
        }
        let incoming = batches.len() as u64;
        let written = self.active_bytes + self.group_bytes as u64;
        let segment_limit = self.config.segment_bytes.clamp(1, SEGMENT_BYTES_CEILING);
        let span = self.next_offset - self.active().base_offset;
        let full = written + incoming > segment_limit || span > u64::from(u32::MAX / 2);
        let old = self.clock.now_ms().saturating_sub(self.active_created_ms) >= self.config.segment_ms;
        if written > 0 && (full || old) {
            self.flush();
            if let Err(error) = self.roll_if_nonempty() {
                let _ = reply.send(Err(error));
                return;
            }
        }
        if self.group_start.is_none() {
            self.group_start = Some(GroupStart {
                next_offset: self.next_offset,
                index: self.index.mark(),
            });
        }
        let base_offset = self.next_offset;
        let segment_base = self.active().base_offset;
        let append_time = self.config.log_append_time.then(|| self.clock.now_ms());
        let mut at = 0;
        for header in headers {
            let mut header = *header;
            header.base_offset = self.next_offset as i64;
            let total = header.total_bytes();
            let start = self.buffer.len();
            if let Some(now_ms) = append_time {
                // Rewritten in place in the group buffer: a copy either way.
                self.buffer.extend_from_slice(&batches[at..at + total]);
                batch::set_base_offset(&mut self.buffer[start..], header.base_offset);
                batch::set_log_append_time(&mut self.buffer[start..], &mut header, now_ms);
                self.push_buffered(start);
            } else if total >= SHARED_BATCH_BYTES_MIN {
                self.buffer.extend_from_slice(&header.base_offset.to_be_bytes());
                self.push_buffered(start);
                self.pieces.push(Piece::Shared(batches.slice(at + 8..at + total)));
            } else {
                self.buffer.extend_from_slice(&batches[at..at + total]);
                batch::set_base_offset(&mut self.buffer[start..], header.base_offset);
                self.push_buffered(start);
            }
            let position = self.active_bytes + self.group_bytes as u64;
            let (offset_entry, time_entry) = self.index.add(segment_base, position, &header);
            self.active().push_index(offset_entry, time_entry);
            if TransactionTracker::concerns(&header)
                && let Some(aborted) = self
                    .index
                    .add_transaction(&header, segment::control_type(&header, &batches[at..at + total]))
            {
                self.active().push_aborted(aborted);
            }
            self.buffered_max_timestamp_ms = self.buffered_max_timestamp_ms.max(header.max_timestamp);
            self.next_offset += header.offset_count();
            self.group_bytes += total;
            at += total;
        }
        self.pending.push(Pending {
            reply,
            info: AppendInfo {
                base_offset,
                last_offset: self.next_offset - 1,
                log_start_offset: 0,
                log_append_time_ms: append_time,
            },
        });
    }

    /// Records that `buffer[start..]` follows the previous piece, extending
    /// the last piece when it is buffered too.
    fn push_buffered(&mut self, start: usize) {
        let end = self.buffer.len();
        match self.pieces.last_mut() {
            Some(Piece::Buffered { end: last_end, .. }) if *last_end == start => *last_end = end,
            _ => self.pieces.push(Piece::Buffered { start, end }),
        }
    }

    /// Writes the group, syncs it under `always`, publishes it to readers
    /// and acknowledges it.
    fn flush(&mut self) {
        self.write_group();
        self.sync_group();
    }

    /// Writes the group gathered so far. Under `always` it then waits for
    /// [`Writer::sync_group`] (readers of written records see it meanwhile);
    /// under the other policies it is acknowledged at once.
    pub fn write_group(&mut self) {
        if self.group_bytes == 0 || self.awaiting_sync {
            return;
        }
        let active = Arc::clone(self.active());
        let file = match active.file() {
            Ok(file) => file,
            // Nothing was written: the appends fail, the log stays as it was.
            Err(cause) => return self.refuse_group(&cause),
        };
        // From the first byte written until an fsync covers it, the file
        // stays open (see `file_cache.rs`).
        active.set_unsynced(true);
        self.changed = true;
        let mut slices: Vec<IoSlice<'_>> = self
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Buffered { start, end } => IoSlice::new(&self.buffer[*start..*end]),
                Piece::Shared(bytes) => IoSlice::new(bytes),
            })
            .collect();
        let written = file.write_all_vectored_at(&mut slices, self.active_bytes);
        drop(slices);
        if let Err(cause) = written {
            return self.fail_group("write", cause, false);
        }
        if self.config.durability == Durability::Always {
            // Readable by `read_written` while the fsync waits and runs (the
            // page cache has the bytes); acknowledged and committed only after.
            active.publish_written(self.active_bytes + self.group_bytes as u64, self.next_offset);
            self.publish_written();
            self.awaiting_sync = true;
            return;
        }
        self.complete_group();
    }

    /// Fsyncs a group [`Writer::write_group`] wrote under `always`, then
    /// publishes and acknowledges it.
    pub fn sync_group(&mut self) {
        if !self.awaiting_sync {
            return;
        }
        self.awaiting_sync = false;
        let active = Arc::clone(self.active());
        let synced = active.file().and_then(|file| sync_data(&*file));
        self.last_sync = Instant::now();
        if let Err(cause) = synced {
            return self.fail_group("fdatasync", cause, true);
        }
        self.shared.group_syncs_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.complete_group();
    }

    /// Appends that never reached the file (it could not be opened) fail;
    /// the log is unchanged and stays healthy.
    fn refuse_group(&mut self, cause: &std::io::Error) {
        warn!(log = %self.shared.dir.display(), %cause, appends = self.pending.len(), "could not open the active segment; appends refused");
        if let Some(start) = self.group_start.take() {
            self.next_offset = start.next_offset;
            self.active().truncate_index(&start.index);
            self.index.rollback(start.index);
        }
        self.buffered_max_timestamp_ms = i64::MIN;
        self.clear_group();
        for pending in std::mem::take(&mut self.pending) {
            let error = std::io::Error::new(cause.kind(), cause.to_string());
            let _ = pending.reply.send(Err(LogError::io(&self.shared.dir, error)));
        }
    }

    /// Publishes the group written (and under `always` synced) to readers
    /// and acknowledges its appends.
    fn complete_group(&mut self) {
        let active = Arc::clone(self.active());
        self.active_bytes += self.group_bytes as u64;
        self.clear_group();
        if self.config.durability == Durability::Always {
            self.synced_bytes = self.active_bytes;
            active.set_unsynced(false);
        } else {
            self.dirty = true;
        }
        active.commit(self.active_bytes, self.next_offset, self.buffered_max_timestamp_ms);
        self.buffered_max_timestamp_ms = i64::MIN;
        self.publish_written();
        self.renew_reserve();
        self.shared.high_watermark.send_replace(self.next_offset);
        let log_start_offset = self.start_offset();
        for mut pending in self.pending.drain(..) {
            pending.info.log_start_offset = log_start_offset;
            let _ = pending.reply.send(Ok(pending.info));
        }
    }

    /// Moves the written watermark up to the next offset (never back).
    fn publish_written(&mut self) {
        self.written_high = self.written_high.max(self.next_offset);
        self.shared.written.send_if_modified(|written| {
            let moved = *written < self.next_offset;
            *written = (*written).max(self.next_offset);
            moved
        });
    }

    /// The group could not be stored: its bytes are cut from the file (and
    /// the cut synced), its appends fail, and the writer forgets it. When the
    /// file system was full and the cut worked, that is all; otherwise the
    /// log is poisoned. A group readers may have seen (`published`: written,
    /// then its fsync failed) always poisons, so that its offsets are never
    /// reused in place (`reopen` continues after them).
    fn fail_group(&mut self, what: &str, cause: std::io::Error, published: bool) {
        let active = Arc::clone(self.active());
        let cut = self.cut_tail(&active);
        if published {
            active.withdraw_written();
        }
        if let Some(start) = self.group_start.take() {
            self.next_offset = start.next_offset;
            active.truncate_index(&start.index);
            self.index.rollback(start.index);
        }
        self.buffered_max_timestamp_ms = i64::MIN;
        self.clear_group();
        let full = match cut {
            Ok(()) if is_out_of_space(&cause) && !published => {
                warn!(log = %self.shared.dir.display(), %cause, appends = self.pending.len(), "the file system is full: appends refused, the log stays healthy");
                true
            }
            Ok(()) => {
                self.poison(what, &cause, true);
                false
            }
            Err(cut_error) => {
                error!(log = %self.shared.dir.display(), %cut_error, "could not cut the bytes of a failed write from the segment");
                self.poison(what, &cause, false);
                false
            }
        };
        for pending in std::mem::take(&mut self.pending) {
            let error = if full {
                LogError::StorageFull {
                    dir: self.shared.dir.clone(),
                }
            } else {
                self.poisoned_error()
            };
            let _ = pending.reply.send(Err(error));
        }
    }

    fn poisoned_error(&self) -> LogError {
        match self.check_poison() {
            Err(error) => error,
            Ok(()) => LogError::Closed(self.shared.dir.clone()),
        }
    }

    /// Cuts the active segment back to its acknowledged bytes and syncs the
    /// cut, so nothing of a failed group survives a restart.
    fn cut_tail(&mut self, active: &Segment) -> std::io::Result<()> {
        let file = active.file()?;
        file.set_len(self.active_bytes)?;
        sync_data(&*file)?;
        self.synced_bytes = self.synced_bytes.min(self.active_bytes);
        if self.synced_bytes == self.active_bytes {
            active.set_unsynced(false);
        }
        Ok(())
    }

    /// Writes the active segment's bytes past the last successful fsync
    /// again, from the page cache, and syncs them: after a failed fsync they
    /// may be readable but never written (see `synced_bytes`).
    fn rewrite_unsynced(&mut self, active: &Segment) -> std::io::Result<()> {
        let file = active.file()?;
        if self.synced_bytes < self.active_bytes {
            let length = usize::try_from(self.active_bytes - self.synced_bytes).map_err(std::io::Error::other)?;
            let bytes = file.read_exact_vec(self.synced_bytes, length)?;
            file.write_all_at(&bytes, self.synced_bytes)?;
        }
        // A cut whose fsync failed may not be on disk either.
        file.set_len(self.active_bytes)?;
        sync_data(&*file)?;
        self.synced_bytes = self.active_bytes;
        active.set_unsynced(false);
        Ok(())
    }

    fn clear_group(&mut self) {
        self.group_start = None;
        self.buffer.clear();
        // Releases the appenders' batches.
        self.pieces.clear();
        self.group_bytes = 0;
    }

    fn sync(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let active = Arc::clone(self.active());
        match active.file().and_then(|file| sync_data(&*file)) {
            Ok(()) => {
                self.synced_bytes = self.active_bytes;
                self.dirty = false;
                active.set_unsynced(false);
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(cause) => {
                // What it failed to sync was acknowledged (under `interval`
                // or `never`): nothing to cut, and no reason to believe it.
                self.poison("fdatasync", &cause, true);
                self.check_poison()
            }
        }
    }

    /// Periodic work: the `interval` policy's fsync and retention.
    pub fn tick(&mut self) {
        if let Durability::Interval(interval) = self.config.durability
            && self.dirty
            && self.last_sync.elapsed() >= interval
            && self.poison.is_none()
        {
            let _ = self.sync();
        }
        if self.last_retention_check.elapsed() >= Duration::from_millis(self.config.retention_check_interval_ms)
            && let Err(error) = self.enforce_retention()
        {
            error!(log = %self.shared.dir.display(), %error, "retention failed");
        }
    }

    /// Seals the active segment (fsync, final time-index entry, index files)
    /// and starts a new one at the next offset.
    fn roll_if_nonempty(&mut self) -> Result<()> {
        self.check_poison()?;
        if self.active_bytes == 0 {
            return Ok(());
        }
        self.roll_to(self.next_offset)
    }

    /// Starts a new active segment at `base` (at least the next offset). A
    /// non-empty active segment is sealed first; an empty one, which would
    /// otherwise name offsets it holds nothing of, is replaced. The new file
    /// is created before anything is sealed, so a full file system changes
    /// nothing and leaves the log healthy.
    fn roll_to(&mut self, base: u64) -> Result<()> {
        self.changed = true;
        let active = Arc::clone(self.active());
        let storage = self.storage();
        let dir = self.shared.dir.clone();
        if self.active_bytes > 0
            && let Err(cause) = active.file().and_then(|file| sync_data(&*file))
        {
            self.poison("fdatasync before roll", &cause, true);
            return self.check_poison();
        }
        let created = create_segment(&storage, &self.shared.files, &dir, base);
        let segment = match created {
            Ok(segment) => segment,
            Err(LogError::Io { source, .. }) if is_out_of_space(&source) => {
                warn!(log = %dir.display(), %source, "the file system is full: could not start a new segment");
                return Err(LogError::StorageFull { dir });
            }
            Err(LogError::Io { source, .. }) => {
                self.poison("creating a segment", &source, true);
                return self.check_poison();
            }
            Err(other) => return Err(other),
        };
        if self.active_bytes > 0 {
            active.push_index(None, self.index.seal());
            active.set_open_at_end(self.index.open_transactions());
            if let Err(cause) = active.write_index_files(storage.as_ref()) {
                // The index is a cache; recovery rebuilds a missing one. Remove
                // whatever an earlier clean close left, so it is not trusted.
                error!(segment = %active.path.display(), %cause, "could not write the sealed segment's index; it will be rebuilt on open");
                for path in active.index_paths() {
                    let _ = storage.remove_file(&path);
                }
            }
        }
        // Sealed and synced: the cache may close it like any other.
        active.set_unsynced(false);
        let replaced = (self.active_bytes == 0).then(|| self.segments.pop()).flatten();
        self.segments.push(Arc::new(segment));
        self.active_bytes = 0;
        self.synced_bytes = 0;
        self.reserved_end = 0;
        self.next_offset = base;
        self.dirty = false;
        self.index = self.index.next_segment();
        self.active_created_ms = self.clock.now_ms();
        self.publish_view();
        self.renew_reserve();
        if let Some(replaced) = replaced
            && let Err(error) = self.remove_segment_files(std::slice::from_ref(&replaced))
        {
            // An empty segment left behind holds nothing and is read past.
            warn!(segment = %replaced.path.display(), %error, "could not remove an empty segment");
        }
        Ok(())
    }

    /// Recovers a poisoned log from its files (see `Log::reopen`).
    fn reopen(&mut self) -> Result<()> {
        let Some(poison) = self.poison.clone() else {
            return Ok(());
        };
        self.changed = true;
        let active = Arc::clone(self.active());
        if !poison.tail_removed {
            self.cut_tail(&active).map_err(|error| LogError::io(&active.path, error))?;
            self.set_poison(Some(Poison {
                tail_removed: true,
                ..poison
            }));
        }
        self.rewrite_unsynced(&active).map_err(|error| LogError::io(&active.path, error))?;
        let storage = self.storage();
        let dir = self.shared.dir.clone();
        let start_floor = recovery::read_start_floor(storage.as_ref(), &dir)?;
        let segments = recovery::recover(&storage, &self.shared.files, &dir, &self.config, start_floor)?;
        self.resume(segments, start_floor)?;
        // Readers may have seen records below `written_high` before the
        // failed fsync cut them; the next record must not take one of them.
        self.continue_after(self.written_high.max(start_floor))?;
        self.publish_view();
        self.set_poison(None);
        let next_offset = self.next_offset;
        self.shared.high_watermark.send_if_modified(|high_watermark| {
            let moved = *high_watermark != next_offset;
            *high_watermark = next_offset;
            moved
        });
        self.publish_written();
        info!(log = %dir.display(), next_offset, "reopened the log after it was poisoned");
        Ok(())
    }

    fn publish_view(&self) {
        self.shared.view.store(Arc::new(LogView {
            segments: self.segments.clone(),
            start_floor: self.start_floor,
        }));
    }

    fn start_offset(&self) -> u64 {
        self.segments[0].base_offset.max(self.start_floor)
    }

    /// Persists a new start offset, then deletes the sealed segments wholly
    /// below it. The checkpoint is written first: a crash in between leaves
    /// segments that the next open hides behind the persisted start.
    fn truncate_prefix(&mut self, offset: u64) -> Result<u64> {
        self.check_poison()?;
        if offset > self.next_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.start_offset(),
                end: self.next_offset,
            });
        }
        if offset <= self.start_offset() {
            return Ok(self.start_offset());
        }
        let path = self.shared.dir.join(START_OFFSET_FILE);
        self.changed = true;
        self.shared
            .storage
            .write_atomically(&path, offset.to_string().as_bytes())
            .map_err(|error| LogError::io(&path, error))?;
        self.start_floor = offset;
        // Segment i is wholly below `offset` when the next one starts at or before it.
        let below = self.segments.windows(2).take_while(|pair| pair[1].base_offset <= offset).count();
        let removed: Vec<Arc<Segment>> = self.segments.drain(..below).collect();
        self.publish_view();
        self.remove_segment_files(&removed)?;
        info!(log = %self.shared.dir.display(), log_start_offset = offset, segments = removed.len(), "log start offset moved");
        Ok(offset)
    }

    fn remove_segment_files(&mut self, removed: &[Arc<Segment>]) -> Result<()> {
        if !removed.is_empty() {
            self.changed = true;
        }
        let storage = self.shared.storage.as_ref();
        for segment in removed {
            for path in std::iter::once(segment.path.clone()).chain(segment.index_paths()) {
                remove_if_present(storage, &path)?;
            }
        }
        if !removed.is_empty() {
            storage
                .sync_dir(&self.shared.dir)
                .map_err(|error| LogError::io(&self.shared.dir, error))?;
        }
        Ok(())
    }

    fn swap_cleaned(&mut self, cleaned: Vec<crate::cleaner::CleanedSegment>) -> Result<usize> {
        self.check_poison()?;
        self.changed = true;
        let swapped = crate::segment_swap::swap_in(&self.shared, &mut self.segments, cleaned)?;
        self.publish_view();
        Ok(swapped)
    }

    fn enforce_retention(&mut self) -> Result<usize> {
        self.last_retention_check = Instant::now();
        let stats: Vec<SegmentStats> = self
            .segments
            .iter()
            .map(|segment| SegmentStats {
                bytes: segment.committed_bytes(),
                max_timestamp_ms: segment.max_timestamp_ms(),
            })
            .collect();
        let count = retention::segments_to_delete(&stats, &self.config, self.clock.now_ms());
        if count == 0 {
            return Ok(0);
        }
        let removed: Vec<Arc<Segment>> = self.segments.drain(..count).collect();
        // Readers holding the old view keep their open file handles; unlinking
        // only removes the names.
        self.publish_view();
        self.remove_segment_files(&removed)?;
        info!(
            log = %self.shared.dir.display(),
            segments = count,
            log_start_offset = self.start_offset(),
            "retention deleted segments"
        );
        Ok(count)
    }

    /// Flushes and fsyncs everything, writes the active segment's indexes and
    /// leaves the clean-shutdown marker that lets the next open trust them.
    /// The index files and the marker only save the next open a scan: when
    /// they cannot be written (a full file system) the close still succeeds,
    /// without the marker.
    ///
    /// Two shortcuts keep the shutdown of thousands of logs short. A log
    /// nothing changed since it was opened is not fsynced: its open made it
    /// durable as it is (recovery synced the active segment, or found it
    /// closed cleanly). And an active segment of at most
    /// [`SCANNED_ON_OPEN_BYTES_MAX`] gets neither index files nor the
    /// marker: the next open scans it (as after a crash, which is always
    /// correct), cheaper than the fsyncs those three files take.
    fn close(&mut self) -> Result<()> {
        self.flush();
        self.check_poison()?;
        let active = Arc::clone(self.active());
        if self.changed {
            active
                .file()
                .and_then(|file| sync_data(&*file))
                .map_err(|error| LogError::io(&active.path, error))?;
        }
        self.dirty = false;
        active.set_unsynced(false);
        if self.active_bytes <= SCANNED_ON_OPEN_BYTES_MAX {
            return Ok(());
        }
        active.push_index(None, self.index.seal());
        active.set_open_at_end(self.index.open_transactions());
        let storage = self.storage();
        let marker = self.shared.dir.join(CLEAN_SHUTDOWN_FILE);
        let saved = active
            .write_index_files(storage.as_ref())
            .and_then(|()| storage.write_atomically(&marker, b""));
        if let Err(cause) = saved {
            warn!(log = %self.shared.dir.display(), %cause, "could not write the active segment's index on close; the next open scans the segment instead");
        }
        Ok(())
    }
}

/// The largest active segment a log leaves to be scanned on the next open
/// rather than writing its index files and clean-shutdown marker on close
/// (see [`Writer::close`]).
const SCANNED_ON_OPEN_BYTES_MAX: u64 = 1024 * 1024;

/// `fdatasync`, timed into the process's fsync histogram.
fn sync_data(file: &dyn StorageFile) -> std::io::Result<()> {
    let started = Instant::now();
    let result = file.sync_data();
    crate::histogram::fsync_duration().observe(started.elapsed());
    result
}
