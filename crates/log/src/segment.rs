//! One segment: a `.log` file of concatenated batches starting at a base
//! offset, its sparse indexes, and the committed bounds readers may see.
//! Shared between the writer (which appends and moves the bounds) and readers
//! (which read committed bytes with positional reads and never take a lock the
//! writer holds for more than an index push).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use tracing::warn;

use crate::batch::{self, BatchHeader, FramingError, HEADER_BYTES};
use crate::error::{LogError, Result};
use crate::file_cache::{FileCache, FileSlot, OpenFile};
use crate::index::{OffsetEntry, SegmentIndex, TimeEntry};
use crate::storage::{Storage, StorageFile};
use crate::transaction_index::{AbortedTxn, OpenTxn, TransactionTracker};
use crate::transaction_outcomes::ControlType;

/// Segment file names are the base offset, zero-padded to 20 digits.
pub fn file_stem(base_offset: u64) -> String {
    format!("{base_offset:020}")
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    /// The segment file, through the pool's open-file cache.
    file: Arc<FileSlot>,
    /// Bytes readers may read; moved by the writer after a write (and its
    /// fsync, under `always`). Release/Acquire pairs with the readers.
    committed_bytes: AtomicU64,
    /// Offset after the last committed batch.
    next_offset: AtomicU64,
    /// Largest batch max-timestamp committed; `i64::MIN` when empty.
    max_timestamp_ms: AtomicI64,
    /// Bytes written to the file (in the page cache), at least
    /// `committed_bytes`: ahead of it only between a write and its fsync
    /// under `always`. Only [`Segment::read_written`] reads that far.
    written_bytes: AtomicU64,
    /// Offset after the last written batch.
    written_next_offset: AtomicU64,
    index: RwLock<SegmentIndex>,
    /// Set once a damaged offset-index entry has been reported, so a damaged
    /// index warns once rather than on every read.
    index_damage_reported: AtomicBool,
}

impl Segment {
    pub fn log_path(dir: &Path, base_offset: u64) -> PathBuf {
        dir.join(format!("{}.log", file_stem(base_offset)))
    }

    /// Its offset, time and transaction index files.
    pub fn index_paths(&self) -> [PathBuf; 3] {
        crate::index::index_paths(&self.path)
    }

    /// Creates an empty segment file (failing if one exists).
    pub fn create(storage: &Arc<dyn Storage>, files: &Arc<FileCache>, dir: &Path, base_offset: u64) -> Result<Segment> {
        let path = Segment::log_path(dir, base_offset);
        let file = storage.create_new(&path).map_err(|error| LogError::io(&path, error))?;
        Ok(Segment::from_parts(
            base_offset,
            FileSlot::new(files, Arc::clone(storage), path, Some(file)),
            0,
            base_offset,
            i64::MIN,
            SegmentIndex::default(),
        ))
    }

    /// Opens an existing segment file without looking at its contents.
    pub fn open_file(storage: &dyn Storage, path: &Path) -> Result<Box<dyn StorageFile>> {
        storage.open(path).map_err(|error| LogError::io(path, error))
    }

    /// A segment of the file in `file` (whose path it takes).
    pub fn from_parts(
        base_offset: u64,
        file: Arc<FileSlot>,
        committed_bytes: u64,
        next_offset: u64,
        max_timestamp_ms: i64,
        index: SegmentIndex,
    ) -> Segment {
        Segment {
            base_offset,
            path: file.path().to_owned(),
            file,
            committed_bytes: AtomicU64::new(committed_bytes),
            next_offset: AtomicU64::new(next_offset),
            max_timestamp_ms: AtomicI64::new(max_timestamp_ms),
            written_bytes: AtomicU64::new(committed_bytes),
            written_next_offset: AtomicU64::new(next_offset),
            index: RwLock::new(index),
            index_damage_reported: AtomicBool::new(false),
        }
    }

    /// The segment's file, opened again if the cache closed it.
    pub fn file(&self) -> std::io::Result<OpenFile> {
        self.file.get()
    }

    /// Its path now names its cleaned replacement: readers still holding
    /// this segment read the old file while it is open, and are sent to the
    /// new view once it is closed.
    pub fn retire(&self) {
        self.file.retire();
    }

    /// Keeps the file open while it holds data not yet fsynced (see
    /// `file_cache.rs`), or lets the cache close it again.
    pub fn set_unsynced(&self, unsynced: bool) {
        self.file.set_pinned(unsynced);
    }

    /// The file for a read. A segment removed since the reader took its
    /// view (retention, a prefix truncation) fails with `NotFound`, which
    /// `Log::read` answers as an offset below the start.
    fn read_file(&self) -> Result<OpenFile> {
        self.file.get().map_err(|error| LogError::io(&self.path, error))
    }

    pub fn committed_bytes(&self) -> u64 {
        self.committed_bytes.load(Ordering::Acquire)
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms.load(Ordering::Acquire)
    }

    /// Publishes newly written bytes to readers. Only the writer calls this.
    pub fn commit(&self, committed_bytes: u64, next_offset: u64, max_timestamp_ms: i64) {
        self.max_timestamp_ms.fetch_max(max_timestamp_ms, Ordering::AcqRel);
        self.next_offset.store(next_offset, Ordering::Release);
        self.committed_bytes.store(committed_bytes, Ordering::Release);
        self.publish_written(committed_bytes, next_offset);
    }

    /// Publishes bytes written but not yet fsynced to [`Segment::read_written`]
    /// only. Only the writer calls this.
    pub fn publish_written(&self, written_bytes: u64, next_offset: u64) {
        self.written_next_offset.fetch_max(next_offset, Ordering::AcqRel);
        self.written_bytes.fetch_max(written_bytes, Ordering::AcqRel);
    }

    /// Offset after the last written batch (committed or not).
    pub fn written_next_offset(&self) -> u64 {
        self.written_next_offset.load(Ordering::Acquire)
    }

    pub fn push_index(&self, offset: Option<OffsetEntry>, time: Option<TimeEntry>) {
        if offset.is_none() && time.is_none() {
            return;
        }
        let mut index = self.index.write();
        index.offsets.extend(offset);
        index.times.extend(time);
    }

    pub fn index_snapshot(&self) -> SegmentIndex {
        self.index.read().clone()
    }

    /// Indexes an aborted transaction whose ABORT marker the writer just
    /// added to this segment.
    pub fn push_aborted(&self, aborted: AbortedTxn) {
        self.index.write().transactions.aborted.push(aborted);
    }

    /// Records the transactions open at the segment's end, before its index
    /// files are written (sealing, or closing the log).
    pub fn set_open_at_end(&self, open: Vec<OpenTxn>) {
        self.index.write().transactions.open_at_end = open;
    }

    /// The transactions open at the segment's end (once sealed).
    pub fn open_at_end(&self) -> Vec<OpenTxn> {
        self.index.read().transactions.open_at_end.clone()
    }

    /// Appends to `into` the aborted transactions indexed here with records
    /// in `from..to`; true when no later segment can hold more.
    pub fn collect_aborted(&self, from: u64, to: u64, into: &mut Vec<AbortedTxn>) -> bool {
        self.index.read().transactions.collect(from, to, into)
    }

    pub fn write_index_files(&self, storage: &dyn Storage) -> std::io::Result<()> {
        self.index.read().write_files(storage, &self.path)
    }

    /// Forgets index entries added after `mark`: those of a group whose
    /// write failed. Only the writer calls this, before anything of the
    /// group was committed.
    pub fn truncate_index(&self, mark: &IndexMark) {
        let mut index = self.index.write();
        index.offsets.truncate(mark.offsets);
        index.times.truncate(mark.times);
        index.transactions.aborted.truncate(mark.aborted);
    }

    /// Moves the written bounds back to the committed ones, after the bytes
    /// past them were cut from the file. Only the writer calls this.
    pub fn withdraw_written(&self) {
        self.written_next_offset.store(self.next_offset(), Ordering::Release);
        self.written_bytes.store(self.committed_bytes(), Ordering::Release);
    }

    fn relative(&self, offset: u64) -> u32 {
        u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX)
    }

    /// Reads the header of the batch at `position`, if a whole header is committed there.
    fn header_at(&self, position: u64, limit: u64) -> Result<Option<BatchHeader>> {
        if position + HEADER_BYTES as u64 > limit {
            return Ok(None);
        }
        let mut bytes = [0u8; HEADER_BYTES];
        self.read_file()?
            .read_exact_at(&mut bytes, position)
            .map_err(|error| LogError::io(&self.path, error))?;
        Ok(BatchHeader::parse(&bytes))
    }

    /// Reads the header of the batch at `position` and checks its framing
    /// against the committed bytes. Committed batches were checked on append
    /// or recovery, so a header that fails is damage (or a position that is not
    /// a batch start); nothing at or past it is served, and its length is never
    /// used to size a read.
    fn sound_header_at(&self, position: u64, limit: u64) -> Result<Option<BatchHeader>> {
        let Some(header) = self.header_at(position, limit)? else {
            return Ok(None);
        };
        Ok(header.check_framing((limit - position) as usize).is_ok().then_some(header))
    }

    /// Headers of the committed batches in roughly the last `max_bytes` of
    /// the segment, in order: the walk starts at the first indexed batch at
    /// or after that point (the start of the segment if none).
    pub fn tail_headers(&self, max_bytes: u64) -> Result<Vec<BatchHeader>> {
        let limit = self.committed_bytes();
        let from = limit.saturating_sub(max_bytes);
        let mut position = if from == 0 {
            0
        } else {
            let index = self.index.read();
            let at = index.offsets.partition_point(|entry| u64::from(entry.position) < from);
            index.offsets.get(at).map_or(0, |entry| u64::from(entry.position))
        };
        let mut headers = Vec::new();
        while let Some(header) = self.sound_header_at(position, limit)? {
            position += header.total_bytes() as u64;
            headers.push(header);
        }
        Ok(headers)
    }

    /// Position and header of the committed batch containing `offset`.
    ///
    /// Walks batch headers from the offset index's floor entry. The headers
    /// are read in blocks of [`FIND_BLOCK_BYTES`] rather than one `pread` per
    /// header: the index has an entry every `index_interval_bytes` (4 KiB by
    /// default), so with 100-byte batches a lookup walked up to ~25 headers,
    /// and those syscalls cost as much as a tenth of a 1 MiB sequential read.
    pub fn find(&self, offset: u64) -> Result<Option<(u64, BatchHeader)>> {
        self.find_below(offset, self.committed_bytes())
    }

    /// [`Segment::find`] among the first `limit` bytes (committed or written).
    fn find_below(&self, offset: u64, limit: u64) -> Result<Option<(u64, BatchHeader)>> {
        let entry = self.index.read().position_floor(self.relative(offset));
        let mut position = u64::from(entry.position);
        if position != 0 {
            // The index is a cache read back from disk, checked there only for
            // order and bounds. An entry that does not lead to the batch it
            // names is not followed: the walk starts at the segment's start.
            let named = self.base_offset + u64::from(entry.relative_offset);
            if position >= limit {
                // The writer indexes a batch before committing it; the batch
                // holding `offset` is at or after this one, so not committed yet.
                return Ok(None);
            }
            let leads_to_named = self
                .sound_header_at(position, limit)?
                .is_some_and(|header| header.base_offset >= 0 && header.base_offset as u64 == named);
            if !leads_to_named {
                if !self.index_damage_reported.swap(true, Ordering::Relaxed) {
                    warn!(segment = %self.path.display(), offset = named, position, "offset index entry does not point at its batch; scanning the segment instead");
                }
                position = 0;
            }
        }
        let mut block = Vec::new();
        let mut block_start = position;
        loop {
            if position + HEADER_BYTES as u64 > limit {
                return Ok(None);
            }
            if position + HEADER_BYTES as u64 > block_start + block.len() as u64 {
                // Committed bytes only: the writer may be writing past `limit`.
                let length = (limit - position).min(FIND_BLOCK_BYTES as u64) as usize;
                block = self
                    .read_file()?
                    .read_exact_vec(position, length)
                    .map_err(|error| LogError::io(&self.path, error))?;
                block_start = position;
            }
            let Some(header) = BatchHeader::parse(&block[(position - block_start) as usize..]) else {
                return Ok(None);
            };
            // Committed batches were checked on append or recovery, so a header
            // that fails framing is damage: nothing at or past it is served, and
            // its length never sizes a read.
            if header.check_framing((limit - position) as usize).is_err() {
                return Ok(None);
            }
            if header.last_offset() as u64 >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
    }

    /// Whole committed batches starting with the one containing `offset`
    /// (or the first after it), up to `max_bytes`; the first batch is
    /// returned whole even when larger if `min_one` is set. `None` when the
    /// segment holds no batch at or after `offset` (a damaged segment's
    /// sound prefix, or a segment followed by a gap in the offsets).
    pub fn read(&self, offset: u64, max_bytes: usize, min_one: bool) -> Result<Option<Bytes>> {
        self.read_below(offset, max_bytes, min_one, self.committed_bytes())
    }

    /// [`Segment::read`] of written batches, fsynced or not.
    pub fn read_written(&self, offset: u64, max_bytes: usize, min_one: bool) -> Result<Option<Bytes>> {
        self.read_below(offset, max_bytes, min_one, self.written_bytes.load(Ordering::Acquire))
    }

    fn read_below(&self, offset: u64, max_bytes: usize, min_one: bool, limit: u64) -> Result<Option<Bytes>> {
        let Some((position, first)) = self.find_below(offset, limit)? else {
            return Ok(None);
        };
        let available = (limit - position) as usize;
        let first_bytes = first.total_bytes();
        let wanted = if first_bytes > max_bytes {
            if !min_one {
                return Ok(Some(Bytes::new()));
            }
            first_bytes
        } else {
            max_bytes.min(available)
        };
        let mut buffer = self
            .read_file()?
            .read_exact_vec(position, wanted)
            .map_err(|error| LogError::io(&self.path, error))?;
        let whole = self.whole_batches_len(&buffer, position);
        buffer.truncate(whole);
        Ok(Some(Bytes::from(buffer)))
    }

    /// Length of the whole batches at the start of `bytes`, committed bytes
    /// read at `position` starting with a batch.
    ///
    /// Walking batch by batch is a chain of dependent loads (each length
    /// gives the next header's address): for 100-byte batches, ~6,000 steps
    /// per MiB took as long as copying the MiB from the page cache (`perf
    /// annotate` of the read benchmark). The offset index already knows batch
    /// starts every `index_interval_bytes`, so the walk starts at the last
    /// indexed batch inside `bytes` and takes a few dozen steps. Should that
    /// entry not point at a batch header (a damaged index file that passed
    /// the open-time checks), the walk starts over from the beginning.
    fn whole_batches_len(&self, bytes: &[u8], position: u64) -> usize {
        let end = position + bytes.len() as u64;
        let indexed = {
            let index = self.index.read();
            // Entries are in position order; the writer adds them before the
            // bytes are committed, hence the bound on `end`.
            let after = index.offsets.partition_point(|entry| u64::from(entry.position) < end);
            index.offsets[..after].last().copied()
        };
        let start = match indexed {
            Some(entry) if u64::from(entry.position) > position => (u64::from(entry.position) - position) as usize,
            _ => return batch::whole_batches_len(bytes),
        };
        // Follow the entry only if it leads to the batch it names (the same
        // rule as `find`): a damaged entry must not decide where batches end.
        let named = self.base_offset + indexed.map_or(0, |entry| u64::from(entry.relative_offset));
        let leads_to_named = bytes
            .get(start..start + HEADER_BYTES)
            .filter(|header| batch::plausible_header(header))
            .and_then(BatchHeader::parse)
            .is_some_and(|header| header.base_offset >= 0 && header.base_offset as u64 == named);
        if !leads_to_named {
            return batch::whole_batches_len(bytes);
        }
        batch::whole_batches_len_from(bytes, start)
    }

    /// Offset and timestamp of the first record whose timestamp is at least
    /// `timestamp_ms`, found through the time index and batch headers; for an
    /// uncompressed batch the records are decoded to find the exact record.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(u64, i64)>> {
        if self.max_timestamp_ms() < timestamp_ms {
            return Ok(None);
        }
        let start = self.index.read().scan_start_for_timestamp(timestamp_ms);
        let Some((mut position, _)) = self.find(self.base_offset + u64::from(start))? else {
            return Ok(None);
        };
        let limit = self.committed_bytes();
        while let Some(header) = self.sound_header_at(position, limit)? {
            if header.max_timestamp >= timestamp_ms {
                if header.compression() == 0 {
                    let mut bytes = vec![0u8; header.total_bytes()];
                    self.read_file()?
                        .read_exact_at(&mut bytes, position)
                        .map_err(|error| LogError::io(&self.path, error))?;
                    if let Ok(records) = crate::record::decode_records(&bytes) {
                        let hit = records.iter().find_map(|record| match (record.offset, record.timestamp_ms) {
                            (Some(offset), Some(timestamp)) if timestamp >= timestamp_ms => Some((offset as u64, timestamp)),
                            _ => None,
                        });
                        if hit.is_some() {
                            return Ok(hit);
                        }
                    }
                }
                return Ok(Some((header.base_offset as u64, header.max_timestamp)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }
}

/// How many bytes [`Segment::find`] reads at a time while walking headers.
const FIND_BLOCK_BYTES: usize = 8 * 1024;

/// What a scan of a segment file found.
#[derive(Debug)]
pub struct Scan {
    /// Bytes of valid, contiguous batches from the start of the file.
    pub valid_bytes: u64,
    pub next_offset: u64,
    pub max_timestamp_ms: i64,
    pub index: SegmentIndex,
    /// Where and why the scan stopped before the end of the file.
    pub stopped: Option<(u64, FramingError)>,
}

/// Whether a scan accepts a batch whose base offset is past the previous
/// batch's end. Sealed segments may have been compacted (the cleaner drops
/// whole batches, as Kafka's does); the active segment never has gaps, and
/// there a base offset past the end (it is outside the CRC) is damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gaps {
    Allowed,
    Refused,
}

/// Scans a sealed segment file from the start, checking each batch's
/// framing, CRC and that offsets only grow (compaction may have left gaps),
/// and rebuilding the sparse indexes on the way. Stops at the first batch
/// that fails; everything before it is sound.
///
/// `open_at_start`: the transactions open at the end of the segment before
/// (an ABORT marker here indexes a transaction from its first offset).
pub fn scan_sealed(
    file: &dyn StorageFile,
    path: &Path,
    base_offset: u64,
    index_interval_bytes: u32,
    open_at_start: &[OpenTxn],
) -> Result<Scan> {
    scan_from(
        file,
        path,
        base_offset,
        index_interval_bytes,
        Start::Scan(open_at_start),
        Gaps::Allowed,
    )
}

/// Where a scan starts from.
#[derive(Debug)]
pub enum Start<'a> {
    /// From the start of the file; the transactions open at the end of the
    /// segment before are given.
    Scan(&'a [OpenTxn]),
    /// From the last offset entry of an index written when the file was
    /// last sealed or closed: it holds the whole segment's transaction index.
    Trusted(SegmentIndex),
}

/// Scans a segment file (from its start, or, given a trusted index after a
/// clean shutdown, from its last offset entry), checking framing, CRC and
/// offsets per `gaps`, and rebuilding the sparse indexes on the way.
pub fn scan_from(
    file: &dyn StorageFile,
    path: &Path,
    base_offset: u64,
    index_interval_bytes: u32,
    start: Start<'_>,
    gaps: Gaps,
) -> Result<Scan> {
    let file_bytes = file.len().map_err(|error| LogError::io(path, error))?;
    let trusted = matches!(start, Start::Trusted(_));
    let (mut builder, mut position, mut next_offset, mut max_timestamp_ms) = match start {
        Start::Trusted(index) => {
            let last = index.offsets.last().copied().unwrap_or(OffsetEntry {
                relative_offset: 0,
                position: 0,
            });
            let max_timestamp_ms = index.times.last().map(|entry| entry.timestamp_ms).unwrap_or(i64::MIN);
            (
                IndexBuilder::resume(index_interval_bytes, index, max_timestamp_ms),
                u64::from(last.position),
                base_offset + u64::from(last.relative_offset),
                max_timestamp_ms,
            )
        }
        Start::Scan(open) => (
            IndexBuilder::new(index_interval_bytes).with_open_transactions(open),
            0,
            base_offset,
            i64::MIN,
        ),
    };
    let mut buffer = Vec::new();
    let mut stopped = None;
    while position < file_bytes {
        let available = (file_bytes - position) as usize;
        let mut head = [0u8; HEADER_BYTES];
        if available < HEADER_BYTES {
            stopped = Some((
                position,
                FramingError::Truncated {
                    needed: HEADER_BYTES,
                    available,
                },
            ));
            break;
        }
        file.read_exact_at(&mut head, position).map_err(|error| LogError::io(path, error))?;
        let header = BatchHeader::parse(&head).ok_or(FramingError::Truncated {
            needed: HEADER_BYTES,
            available,
        });
        let checked = header.and_then(|header| header.check_framing(available).map(|()| header));
        let header = match checked {
            Ok(header) => header,
            Err(reason) => {
                stopped = Some((position, reason));
                break;
            }
        };
        buffer.resize(header.total_bytes(), 0);
        file.read_exact_at(&mut buffer, position)
            .map_err(|error| LogError::io(path, error))?;
        if let Err(reason) = batch::verify_crc(&buffer, &header) {
            stopped = Some((position, reason));
            break;
        }
        let continues = match gaps {
            Gaps::Allowed => header.base_offset >= 0 && header.base_offset as u64 >= next_offset,
            Gaps::Refused => header.base_offset >= 0 && header.base_offset as u64 == next_offset,
        };
        if !continues {
            stopped = Some((position, FramingError::OffsetDelta(-1)));
            break;
        }
        builder.add(base_offset, position, &header);
        if !trusted && TransactionTracker::concerns(&header) {
            builder.add_transaction(&header, control_type(&header, &buffer));
        }
        max_timestamp_ms = max_timestamp_ms.max(header.max_timestamp);
        next_offset = header.last_offset() as u64 + 1;
        position += header.total_bytes() as u64;
    }
    let mut index = builder.finish();
    // A trusted index may name markers past a damaged tail cut here.
    index.transactions.aborted.retain(|aborted| aborted.last_offset < next_offset);
    index.transactions.open_at_end.retain(|open| open.first_offset < next_offset);
    Ok(Scan {
        valid_bytes: position,
        next_offset,
        max_timestamp_ms,
        index,
        stopped,
    })
}

/// The type of the control batch `bytes` (its one record's key); `Other`
/// for any other batch or an unreadable key.
pub fn control_type(header: &BatchHeader, bytes: &[u8]) -> ControlType {
    if !header.is_control() {
        return ControlType::Other;
    }
    let views = crate::record::record_views(bytes);
    ControlType::of_key(views.ok().as_ref().and_then(|views| views.first()).and_then(|view| view.key))
}

/// An [`IndexBuilder`]'s position: how many entries it had and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexMark {
    pub offsets: usize,
    pub times: usize,
    pub aborted: usize,
    transactions: TransactionTracker,
    bytes_since_offset_entry: u64,
    bytes_since_time_entry: u64,
    max_timestamp_ms: i64,
    pending_time: Option<TimeEntry>,
}

/// Decides which batches get index entries, shared by the writer and the
/// recovery scan so both build identical indexes.
#[derive(Debug, Clone)]
pub struct IndexBuilder {
    interval_bytes: u64,
    bytes_since_offset_entry: u64,
    bytes_since_time_entry: u64,
    max_timestamp_ms: i64,
    /// A time entry not yet recorded because the interval has not passed.
    pending_time: Option<TimeEntry>,
    index: SegmentIndex,
    /// The log's open transactions, carried from segment to segment.
    transactions: TransactionTracker,
}

impl IndexBuilder {
    pub fn new(interval_bytes: u32) -> IndexBuilder {
        IndexBuilder {
            interval_bytes: u64::from(interval_bytes.max(1)),
            bytes_since_offset_entry: u64::MAX,
            bytes_since_time_entry: u64::MAX,
            max_timestamp_ms: i64::MIN,
            pending_time: None,
            index: SegmentIndex::default(),
            transactions: TransactionTracker::default(),
        }
    }

    /// The same builder, starting from the transactions open at the end of
    /// the segment before.
    pub fn with_open_transactions(mut self, open: &[OpenTxn]) -> IndexBuilder {
        self.transactions = TransactionTracker::starting_with(open);
        self
    }

    /// A fresh builder for the next segment, carrying the open transactions.
    pub fn next_segment(&self) -> IndexBuilder {
        IndexBuilder {
            transactions: self.transactions.clone(),
            ..IndexBuilder::new(self.interval_bytes as u32)
        }
    }

    /// Accounts for a transactional batch (see [`TransactionTracker::concerns`]);
    /// returns the aborted transaction an ABORT marker indexed.
    pub fn add_transaction(&mut self, header: &BatchHeader, control: ControlType) -> Option<AbortedTxn> {
        let aborted = self.transactions.observe(header, control)?;
        self.index.transactions.aborted.push(aborted);
        Some(aborted)
    }

    /// The transactions open now.
    pub fn open_transactions(&self) -> Vec<OpenTxn> {
        self.transactions.open()
    }

    /// Resumes after a recovered index (the writer continues a segment),
    /// whose open transactions are those open at its end.
    pub fn resume(interval_bytes: u32, index: SegmentIndex, max_timestamp_ms: i64) -> IndexBuilder {
        let mut builder = IndexBuilder::new(interval_bytes).with_open_transactions(&index.transactions.open_at_end);
        builder.bytes_since_offset_entry = 0;
        builder.bytes_since_time_entry = 0;
        builder.max_timestamp_ms = max_timestamp_ms;
        builder.index = index;
        builder
    }

    /// Accounts for a batch at `position`; returns the entries it produced.
    pub fn add(&mut self, segment_base: u64, position: u64, header: &BatchHeader) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        let relative_offset = (header.base_offset as u64 - segment_base) as u32;
        let mut offset_entry = None;
        if self.bytes_since_offset_entry >= self.interval_bytes {
            let entry = OffsetEntry {
                relative_offset,
                position: position as u32,
            };
            self.index.offsets.push(entry);
            offset_entry = Some(entry);
            self.bytes_since_offset_entry = 0;
        }
        self.bytes_since_offset_entry = self.bytes_since_offset_entry.saturating_add(header.total_bytes() as u64);
        let mut time_entry = None;
        if header.max_timestamp > self.max_timestamp_ms {
            self.max_timestamp_ms = header.max_timestamp;
            let entry = TimeEntry {
                timestamp_ms: header.max_timestamp,
                relative_offset,
            };
            if self.bytes_since_time_entry >= self.interval_bytes {
                self.index.times.push(entry);
                time_entry = Some(entry);
                self.bytes_since_time_entry = 0;
                self.pending_time = None;
            } else {
                self.pending_time = Some(entry);
            }
        }
        self.bytes_since_time_entry = self.bytes_since_time_entry.saturating_add(header.total_bytes() as u64);
        (offset_entry, time_entry)
    }

    /// Records the pending max-timestamp entry, so the time index's last
    /// entry is the segment's max timestamp. Called when sealing.
    /// Also records the transactions open at the end.
    pub fn seal(&mut self) -> Option<TimeEntry> {
        self.index.transactions.open_at_end = self.transactions.open();
        let entry = self.pending_time.take()?;
        self.index.times.push(entry);
        Some(entry)
    }

    /// Where the builder is now, to [`IndexBuilder::rollback`] to when the
    /// batches added after this are not written after all.
    pub fn mark(&self) -> IndexMark {
        IndexMark {
            offsets: self.index.offsets.len(),
            times: self.index.times.len(),
            aborted: self.index.transactions.aborted.len(),
            transactions: self.transactions.clone(),
            bytes_since_offset_entry: self.bytes_since_offset_entry,
            bytes_since_time_entry: self.bytes_since_time_entry,
            max_timestamp_ms: self.max_timestamp_ms,
            pending_time: self.pending_time,
        }
    }

    /// Forgets every batch added since `mark`, as if they were never added.
    pub fn rollback(&mut self, mark: IndexMark) {
        self.index.offsets.truncate(mark.offsets);
        self.index.times.truncate(mark.times);
        self.index.transactions.aborted.truncate(mark.aborted);
        self.transactions = mark.transactions;
        self.bytes_since_offset_entry = mark.bytes_since_offset_entry;
        self.bytes_since_time_entry = mark.bytes_since_time_entry;
        self.max_timestamp_ms = mark.max_timestamp_ms;
        self.pending_time = mark.pending_time;
    }

    pub fn finish(mut self) -> SegmentIndex {
        self.seal();
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, Record};

    /// One batch of one record at offset `base_offset`.
    fn batch(base_offset: u64) -> Bytes {
        let mut builder = BatchBuilder::new(0);
        builder.push(Record::new(None, Some(format!("record {base_offset}").into_bytes())));
        let mut bytes = builder.build().to_vec();
        batch::set_base_offset(&mut bytes, base_offset as i64);
        Bytes::from(bytes)
    }

    #[test]
    fn written_batches_are_read_only_by_read_written_until_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = crate::storage::file_system();
        let segment = Segment::create(&storage, &FileCache::new(4), dir.path(), 0).expect("create");
        let (first, second) = (batch(0), batch(1));
        segment.file().expect("open").write_all_at(&first, 0).expect("write");
        segment.commit(first.len() as u64, 1, 0);
        // The second batch is in the file (the page cache) but not fsynced:
        // written, not committed, as between the writer's write and fsync.
        let end = (first.len() + second.len()) as u64;
        segment
            .file()
            .expect("open")
            .write_all_at(&second, first.len() as u64)
            .expect("write");
        segment.publish_written(end, 2);
        assert_eq!(segment.next_offset(), 1);
        assert_eq!(segment.written_next_offset(), 2);
        assert_eq!(
            segment.read(0, 1 << 20, true).expect("read"),
            Some(first.clone()),
            "read stops at the committed end"
        );
        assert_eq!(segment.read(1, 1 << 20, true).expect("read"), None);
        let written = segment.read_written(0, 1 << 20, true).expect("read written").expect("a batch");
        assert_eq!(written.len() as u64, end, "read_written serves the written batch too");
        assert_eq!(segment.read_written(1, 1 << 20, true).expect("read written"), Some(second.clone()));
        // Committing (after the fsync) makes it readable to everyone; the
        // written end never moves back.
        segment.commit(end, 2, 0);
        assert_eq!(segment.read(1, 1 << 20, true).expect("read"), Some(second));
        segment.publish_written(first.len() as u64, 1);
        assert_eq!(segment.written_next_offset(), 2);
    }
}
