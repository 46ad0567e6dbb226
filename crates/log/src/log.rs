//! The public handle of one partition log: open (with recovery), append,
//! read, look up by time, watch the high watermark, close. Appends go to the
//! log's single writer thread (`writer.rs`); reads go straight to the segment
//! files through an atomically swapped view of the segment list.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::batch;
use crate::clock::{Clock, system_clock};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::index::{SegmentIndex, sync_dir};
use crate::segment::{self, Segment};
use crate::writer::{Command, Writer};

/// Present in a log directory only between a clean close and the next open:
/// it says the active segment's index files can be trusted.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";

/// What an acknowledged append learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record of the first batch.
    pub base_offset: u64,
    /// Offset of the last record of the last batch.
    pub last_offset: u64,
    /// The log's start offset when the append was acknowledged.
    pub log_start_offset: u64,
    /// The broker time stamped on the batches when the log keeps
    /// LogAppendTime (see `LogConfig::log_append_time`).
    pub log_append_time_ms: Option<i64>,
}

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

/// The file holding the start offset set by `truncate_prefix`.
pub(crate) const START_OFFSET_FILE: &str = "log-start-offset";

/// State shared by every handle of one log and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub view: ArcSwap<LogView>,
    /// Offset after the last committed record.
    pub high_watermark: watch::Sender<u64>,
    /// Offset after the last record written to the file, fsynced or not: the
    /// high watermark, or ahead of it between a write and its fsync under
    /// `always`.
    pub written: watch::Sender<u64>,
    pub writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A handle to one open partition log. Cheap to clone; every clone talks to
/// the same writer thread. Dropping the last clone closes the log (and waits
/// for its writer), as [`Log::close`] does.
#[derive(Debug, Clone)]
pub struct Log {
    inner: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Wait for the writer so that a reopen right after the drop never races
        // the old writer's final flush.
        let (reply, receiver) = mpsc::sync_channel(1);
        if self.commands.send(Command::Close { reply }).is_ok() {
            let _ = receiver.recv();
        }
        if let Some(thread) = self.shared.writer_thread.lock().take() {
            let _ = thread.join();
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
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|error| LogError::io(&dir, error))?;
        let start_floor = read_start_floor(&dir)?;
        let segments = recover(&dir, &config, start_floor)?;
        let next_offset = segments.last().map(|segment| segment.next_offset()).unwrap_or(0);
        // A tail lost under a relaxed durability policy can leave the log
        // shorter than its persisted start; the start never passes the end.
        let start_floor = start_floor.min(next_offset);
        let (high_watermark, _) = watch::channel(next_offset);
        let (written, _) = watch::channel(next_offset);
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            view: ArcSwap::from_pointee(LogView {
                segments: segments.clone(),
                start_floor,
            }),
            high_watermark,
            written,
            writer_thread: Mutex::new(None),
        });
        let (commands, receiver) = mpsc::channel();
        let writer = Writer::new(Arc::clone(&shared), config, clock, segments, start_floor)?;
        let name = format!(
            "log-writer-{}",
            dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
        );
        let thread = std::thread::Builder::new()
            .name(name)
            .stack_size(256 * 1024)
            .spawn(move || writer.run(receiver))
            .map_err(|error| LogError::io(&dir, error))?;
        *shared.writer_thread.lock() = Some(thread);
        Ok(Log {
            inner: Arc::new(Handle { shared, commands }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
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
        if self.inner.commands.send(Command::Append { batches, headers, reply }).is_err() {
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
        let high_watermark = match visibility {
            Visibility::Durable => self.high_watermark(),
            Visibility::Written => self.written(),
        };
        let view = self.inner.shared.view.load();
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
        // prefix of a damaged sealed segment) sends the read on to the next
        // one. A segment that holds the offset answers alone, even with nothing
        // when its first batch exceeds `max_bytes` without `min_one`: moving
        // on would serve a later batch that does not contain `offset`.
        for segment in &view.segments[first..] {
            let next_offset = match visibility {
                Visibility::Durable => segment.next_offset(),
                Visibility::Written => segment.written_next_offset(),
            };
            if next_offset <= offset {
                continue;
            }
            let from = offset.max(segment.base_offset);
            outcome.bytes = match visibility {
                Visibility::Durable => segment.read(from, max_bytes, min_one)?,
                Visibility::Written => segment.read_written(from, max_bytes, min_one)?,
            };
            break;
        }
        Ok(outcome)
    }

    /// The offset and timestamp of the first record with a timestamp at or
    /// after `timestamp_ms` (Kafka's ListOffsets by time), or `None` when
    /// every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(u64, i64)>> {
        let view = self.inner.shared.view.load();
        let start = view.start_offset();
        for segment in view.segments.iter() {
            if let Some((offset, timestamp)) = segment.offset_for_timestamp(timestamp_ms)? {
                // Offsets below a `truncate_prefix` start are gone.
                return Ok(Some((offset.max(start), timestamp)));
            }
        }
        Ok(None)
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

    pub fn start_offset(&self) -> u64 {
        self.inner.shared.view.load().start_offset()
    }

    /// Committed bytes across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner
            .shared
            .view
            .load()
            .segments
            .iter()
            .map(|segment| segment.committed_bytes())
            .sum()
    }

    pub fn segment_count(&self) -> usize {
        self.inner.shared.view.load().segments.len()
    }

    /// Headers of the batches in about the last `max_bytes` of the active
    /// segment, oldest first (producer state is rebuilt from them on start).
    pub fn tail_batch_headers(&self, max_bytes: u64) -> Result<Vec<crate::batch::BatchHeader>> {
        let view = self.inner.shared.view.load();
        match view.segments.last() {
            Some(segment) => segment.tail_headers(max_bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.inner
            .shared
            .view
            .load()
            .segments
            .iter()
            .map(|segment| segment.base_offset)
            .collect()
    }

    /// Sends a control command and blocks for its reply. Control commands are
    /// rare (roll, retention, config, close); async callers run them in
    /// `spawn_blocking` like any other file operation.
    fn request<T>(&self, make: impl FnOnce(mpsc::SyncSender<T>) -> Command) -> Result<T> {
        let (reply, receiver) = mpsc::sync_channel(1);
        let closed = || LogError::Closed(self.inner.shared.dir.clone());
        self.inner.commands.send(make(reply)).map_err(|_| closed())?;
        receiver.recv().map_err(|_| closed())
    }

    /// Seals the active segment and starts a new one (if the active one holds anything).
    pub fn roll(&self) -> Result<()> {
        self.request(|reply| Command::Roll { reply })?
    }

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords):
    /// reads below it fail from now on, the new start survives restarts, and
    /// segments wholly below it are deleted. `offset` may not pass the high
    /// watermark. Returns the new start offset.
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
        if let Some(thread) = self.inner.shared.writer_thread.lock().take() {
            let _ = thread.join();
        }
        match result {
            Ok(inner) => inner,
            // Already closed by another handle.
            Err(LogError::Closed(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Closes the log and removes its directory with every segment.
    pub fn delete(self) -> Result<()> {
        self.close()?;
        fs::remove_dir_all(&self.inner.shared.dir).map_err(|error| LogError::io(&self.inner.shared.dir, error))?;
        if let Some(parent) = self.inner.shared.dir.parent() {
            let _ = sync_dir(parent);
        }
        Ok(())
    }
}

/// A pending append: a future, or [`Appending::wait`] from blocking code.
#[derive(Debug)]
pub enum Appending {
    Ready(Option<Result<AppendInfo>>),
    Waiting {
        receiver: oneshot::Receiver<Result<AppendInfo>>,
        dir: PathBuf,
    },
}

impl Appending {
    /// Blocks until the append is acknowledged. Must not be called from an
    /// async context (use `.await` there).
    pub fn wait(self) -> Result<AppendInfo> {
        match self {
            Appending::Ready(result) => result.unwrap_or_else(|| Err(LogError::Closed(PathBuf::new()))),
            Appending::Waiting { receiver, dir } => receiver.blocking_recv().unwrap_or(Err(LogError::Closed(dir))),
        }
    }
}

impl Future for Appending {
    type Output = Result<AppendInfo>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Appending::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| Err(LogError::Closed(PathBuf::new())))),
            Appending::Waiting { receiver, dir } => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(LogError::Closed(dir.clone()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The start offset `truncate_prefix` persisted, or 0.
fn read_start_floor(dir: &Path) -> Result<u64> {
    let path = dir.join(START_OFFSET_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            LogError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an offset: {:?}", text.trim())),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(LogError::io(&path, error)),
    }
}

/// Opens every segment in `dir`: sealed segments trust their index files if
/// they pass checks (else rebuild them by scanning); the last segment is
/// always scanned and truncated after its last sound batch.
fn recover(dir: &Path, config: &LogConfig, start_floor: u64) -> Result<Vec<Arc<Segment>>> {
    let mut base_offsets = Vec::new();
    let entries = fs::read_dir(dir).map_err(|error| LogError::io(dir, error))?;
    for entry in entries {
        let entry = entry.map_err(|error| LogError::io(dir, error))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            // A crash in the middle of an atomic index write; the index is rebuilt.
            let _ = fs::remove_file(&path);
            continue;
        }
        if let Some(stem) = name.strip_suffix(".log") {
            match stem.parse::<u64>() {
                Ok(base) if stem.len() == 20 => base_offsets.push(base),
                _ => warn!(path = %path.display(), "ignoring a file that is not a segment"),
            }
        }
    }
    base_offsets.sort_unstable();
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    let mut segments = Vec::with_capacity(base_offsets.len().max(1));
    for (position, &base_offset) in base_offsets.iter().enumerate() {
        let next_base = base_offsets.get(position + 1).copied();
        let path = Segment::log_path(dir, base_offset);
        let file = Segment::open_file(&path)?;
        let segment = match next_base {
            Some(next_base) => open_sealed(file, path, base_offset, next_base, config)?,
            None => open_active(file, path, base_offset, config, clean)?,
        };
        segments.push(Arc::new(segment));
    }
    if segments.is_empty() {
        segments.push(Arc::new(Segment::create(dir, start_floor)?));
    }
    if clean {
        // From here on the active segment changes again; a crash must not find the marker.
        fs::remove_file(&marker).map_err(|error| LogError::io(&marker, error))?;
    }
    sync_dir(dir).map_err(|error| LogError::io(dir, error))?;
    Ok(segments)
}

fn open_sealed(file: fs::File, path: PathBuf, base_offset: u64, next_base: u64, config: &LogConfig) -> Result<Segment> {
    let file_bytes = file.metadata().map_err(|error| LogError::io(&path, error))?.len();
    let (offset_path, time_path) = (path.with_extension("index"), path.with_extension("timeindex"));
    let span = next_base.saturating_sub(base_offset);
    if let Some(index) = SegmentIndex::read_files(&offset_path, &time_path, file_bytes, span) {
        let max_timestamp_ms = index.times.last().map(|entry| entry.timestamp_ms).unwrap_or(i64::MIN);
        return Ok(Segment::from_parts(
            base_offset,
            path,
            file,
            file_bytes,
            next_base,
            max_timestamp_ms,
            index,
        ));
    }
    warn!(segment = %path.display(), "index missing or damaged; rebuilding it by scanning the segment");
    let scan = segment::scan(&file, &path, base_offset, config.index_interval_bytes)?;
    if let Some((position, reason)) = &scan.stopped {
        // Sealed segments were fsynced before the next one was created, so this is
        // media damage, not a torn write. Serve only the sound prefix; readers skip
        // to the next segment past the gap.
        warn!(segment = %path.display(), position, offset = scan.next_offset, %reason, "sealed segment is damaged; serving only its sound prefix");
    }
    let segment = Segment::from_parts(
        base_offset,
        path.clone(),
        file,
        scan.valid_bytes,
        scan.next_offset,
        scan.max_timestamp_ms,
        scan.index,
    );
    if let Err(error) = segment.write_index_files() {
        warn!(segment = %path.display(), %error, "could not write the rebuilt index; it will be rebuilt again next time");
    }
    Ok(segment)
}

/// The active segment is scanned and its tail validated. After a clean
/// shutdown the scan starts at the last index entry; otherwise at the start,
/// since any part of an unsynced tail may be torn.
fn open_active(file: fs::File, path: PathBuf, base_offset: u64, config: &LogConfig, clean: bool) -> Result<Segment> {
    let file_bytes = file.metadata().map_err(|error| LogError::io(&path, error))?.len();
    let trusted = clean
        .then(|| {
            SegmentIndex::read_files(
                &path.with_extension("index"),
                &path.with_extension("timeindex"),
                file_bytes,
                u64::from(u32::MAX),
            )
        })
        .flatten();
    let was_trusted = trusted.is_some();
    let mut scan = segment::scan_from(&file, &path, base_offset, config.index_interval_bytes, trusted)?;
    if was_trusted && (scan.stopped.is_some() || index_reaches_past(&scan.index, scan.next_offset - base_offset)) {
        // The segment lost batches after the clean shutdown (media damage, or
        // a file cut by hand), so the trusted index still describes them: its
        // time entries and max timestamp would point time lookups past the
        // batches appended in their place. Rebuild it from the sound bytes.
        warn!(segment = %path.display(), "the active segment changed after its clean shutdown; rebuilding its index by a full scan");
        scan = segment::scan(&file, &path, base_offset, config.index_interval_bytes)?;
    }
    if let Some((position, reason)) = &scan.stopped {
        warn!(
            segment = %path.display(),
            position,
            offset = scan.next_offset,
            discarded_bytes = file_bytes - scan.valid_bytes,
            %reason,
            "truncating the active segment at the first torn or corrupt batch"
        );
        file.set_len(scan.valid_bytes).map_err(|error| LogError::io(&path, error))?;
        file.sync_all().map_err(|error| LogError::io(&path, error))?;
    } else if file_bytes > 0 {
        info!(segment = %path.display(), next_offset = scan.next_offset, "recovered the active segment");
    }
    Ok(Segment::from_parts(
        base_offset,
        path,
        file,
        scan.valid_bytes,
        scan.next_offset,
        scan.max_timestamp_ms,
        scan.index,
    ))
}

/// Whether `index` has an entry for a relative offset at or past `offset_span`,
/// that is, for a batch the segment no longer holds.
fn index_reaches_past(index: &SegmentIndex, offset_span: u64) -> bool {
    let offsets = index.offsets.iter().map(|entry| entry.relative_offset);
    let times = index.times.iter().map(|entry| entry.relative_offset);
    offsets
        .chain(times)
        .any(|relative_offset| u64::from(relative_offset) >= offset_span)
}
