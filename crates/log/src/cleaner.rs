//! Log compaction (Kafka's `LogCleaner`), run by a background thread, never
//! by the writer: reads the sealed segments a [`compaction_plan`] picks,
//! learns how each transaction in them ended (`transaction_outcomes.rs`),
//! maps each key to its latest offset over the dirty range, writes each
//! segment again as `<base>.cleaned` without the superseded records, expired
//! tombstones, aborted transactions' records and markers whose transaction's
//! data is gone, fsyncs and checks it, then hands the cleaned files to the
//! writer, which swaps them in by rename (`segment_swap.rs`). Offsets never
//! change: batches keep their base offsets and gaps appear, as in Kafka.
//! Knows segments, batches and keys; nothing of topics or config names.
//!
//! Kafka's transaction rules: an aborted transaction's records never enter
//! the offset map and go when their segment is cleaned; a committed one's
//! are compacted like any others; nothing at or past the first transaction
//! with no marker in the cleaned segments is touched (Kafka cleans no
//! further than the last stable offset); a marker stays until a cleaning
//! meets none of its transaction's batches and its segment is older than
//! `delete.retention.ms`; each producer's last batch keeps its header.
//! Compressed batches are cleaned record by record too, and rewritten with
//! their own codec; one that cannot be decompressed within the log's bound
//! (`codec::DECOMPRESSED_BYTES_MAX`) is kept whole and maps no key.
//!
//! [`compaction_plan`]: crate::compaction_plan

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::batch_filter::{self, Filtered, filter_batch};
use crate::codec::DECOMPRESSED_BYTES_MAX;
use crate::compaction_config::CompactionConfig;
use crate::compaction_plan::{self, CompactionPlan, SegmentSummary};
use crate::error::{LogError, Result};
use crate::offset_map::OffsetMap;
use crate::record::{self, BatchRecords, RecordError};
use crate::segment::{self, Scan, Segment};
use crate::shared::Shared;
use crate::storage::{Storage, StorageFile};
use crate::throttle::Throttle;
use crate::transaction_index::OpenTxn;
use crate::transaction_outcomes::{ControlType, MarkerRetention, Outcome, TransactionOutcomes};

/// Where the last cleaning ended: the first offset not yet compacted.
pub(crate) const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
/// Extension of a segment being cleaned; recovery removes leftovers.
pub(crate) const CLEANED_EXTENSION: &str = "cleaned";
/// Segments are read in blocks of this size.
const READ_BLOCK_BYTES: usize = 1024 * 1024;
/// Index density of cleaned segments (the index is a cache: any density
/// serves, this one is Kafka's default `index.interval.bytes`).
const INDEX_INTERVAL_BYTES: u32 = 4096;
/// Cleaned bytes are written in pieces of at least this size.
const WRITE_BLOCK_BYTES: usize = 1024 * 1024;

/// Broker-wide cleaner settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerSettings {
    /// Memory of the offset map of one cleaning (`log.cleaner.dedupe.buffer.size`).
    pub dedupe_buffer_bytes: usize,
    /// I/O budget (`log.cleaner.io.max.bytes.per.second`); `None`: unlimited.
    pub io_bytes_per_second_max: Option<u64>,
}

impl Default for CleanerSettings {
    fn default() -> CleanerSettings {
        CleanerSettings {
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            io_bytes_per_second_max: None,
        }
    }
}

/// What one cleaning did.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanStats {
    pub plan: CompactionPlan,
    /// The first offset the next cleaning treats as dirty.
    pub cleaned_to_offset: u64,
    pub segments_rewritten: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
}

/// One cleaned segment file, synced and checked, ready to be renamed over
/// the segment it replaces.
#[derive(Debug)]
pub(crate) struct CleanedSegment {
    pub base_offset: u64,
    /// The replaced segment's size: a segment that changed since (it cannot,
    /// sealed) or went (retention) is not replaced.
    pub old_bytes: u64,
    pub path: PathBuf,
    pub file: Box<dyn StorageFile>,
    pub scan: Scan,
}

/// A cleaning ready for the writer to swap in.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub cleaned: Vec<CleanedSegment>,
    pub stats: CleanStats,
}

/// Reads the checkpoint (0 when there is none or it is unreadable: the
/// whole log is then dirty, which costs a cleaning, never a record).
pub(crate) fn read_checkpoint(storage: &dyn Storage, dir: &Path) -> u64 {
    storage
        .read(&dir.join(CHECKPOINT_FILE))
        .ok()
        .and_then(|bytes| String::from_utf8_lossy(&bytes).trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn write_checkpoint(storage: &dyn Storage, dir: &Path, offset: u64) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    storage
        .write_atomically(&path, offset.to_string().as_bytes())
        .map_err(|error| LogError::io(&path, error))
}

/// Plans and prepares a cleaning of the log `shared` describes, if one is
/// due. Blocking and throttled; meant for a background thread.
pub(crate) fn prepare(
    shared: &Shared,
    config: &CompactionConfig,
    settings: &CleanerSettings,
    throttle: &mut Throttle,
    now_ms: i64,
) -> Result<Option<Prepared>> {
    let view = shared.view.load_full();
    let segments = &view.segments;
    let summaries: Vec<SegmentSummary> = segments
        .iter()
        .map(|segment| SegmentSummary {
            base_offset: segment.base_offset,
            bytes: segment.committed_bytes(),
            first_timestamp_ms: segment
                .index_snapshot()
                .times
                .first()
                .map_or(segment.max_timestamp_ms(), |entry| entry.timestamp_ms),
            max_timestamp_ms: segment.max_timestamp_ms(),
        })
        .collect();
    let checkpoint = read_checkpoint(shared.storage.as_ref(), &shared.dir);
    let Some(plan) = compaction_plan::plan(&summaries, checkpoint, config, now_ms) else {
        return Ok(None);
    };
    let cleanable = &segments[..plan.segments];
    let outcomes = transaction_outcomes(cleanable, throttle)?;
    // Kafka's cleaner stops at the last stable offset: nothing of an
    // undecided transaction, nor anything after it, is compacted.
    let bound = outcomes
        .first_undecided_offset()
        .map_or(plan.end_offset, |first| first.min(plan.end_offset));
    let (map, map_end) = build_offset_map(cleanable, &plan, bound, &outcomes, settings, throttle)?;
    let mut stats = CleanStats {
        plan,
        cleaned_to_offset: map_end,
        segments_rewritten: 0,
        bytes_before: 0,
        bytes_after: 0,
        records_removed: 0,
    };
    let mut cleaned = Vec::new();
    let mut markers = MarkerRetention::default();
    let transactions = Transactions {
        outcomes: &outcomes,
        bound,
    };
    // The transactions open at the start of the segment being cleaned: its
    // transaction index is rebuilt from them and its cleaned batches.
    let mut open_at_start = Vec::new();
    for segment in cleanable {
        if shared.deleting.load(std::sync::atomic::Ordering::Acquire) {
            for done in cleaned {
                let CleanedSegment { path, .. } = done;
                let _ = shared.storage.remove_file(&path);
            }
            return Err(LogError::Closed(shared.dir.clone()));
        }
        let tombstones_expire =
            segment.max_timestamp_ms() != i64::MIN && now_ms.saturating_sub(segment.max_timestamp_ms()) > config.delete_retention_ms;
        let expiry = Expiry {
            tombstones_expire,
            markers: &mut markers,
        };
        match clean_segment(shared, segment, &map, &transactions, &open_at_start, expiry, throttle, &mut stats)? {
            Some(done) => {
                open_at_start = done.scan.index.transactions.open_at_end.clone();
                cleaned.push(done);
            }
            None => open_at_start = segment.open_at_end(),
        }
    }
    Ok(Some(Prepared { cleaned, stats }))
}

/// What the cleaning knows of transactions: their outcomes, and the offset
/// from which nothing is touched.
struct Transactions<'a> {
    outcomes: &'a TransactionOutcomes,
    bound: u64,
}

/// What may expire in one segment: its tombstones (and markers) once it is
/// older than `delete.retention.ms`; markers also once their data is gone.
struct Expiry<'a> {
    tombstones_expire: bool,
    markers: &'a mut MarkerRetention,
}

/// The type of the control batch `bytes` (its one record's key).
fn control_type(segment: &Segment, bytes: &[u8]) -> Result<ControlType> {
    let views = record::record_views(bytes).map_err(|error| damaged(segment, &error))?;
    Ok(ControlType::of_key(views.first().and_then(|view| view.key)))
}

/// How every transaction in `segments` ended, read from their batches.
fn transaction_outcomes(segments: &[Arc<Segment>], throttle: &mut Throttle) -> Result<TransactionOutcomes> {
    let mut outcomes = TransactionOutcomes::default();
    for segment in segments {
        for_each_batch(segment, throttle, |header, bytes| {
            let control = if header.is_control() {
                control_type(segment, bytes)?
            } else {
                ControlType::Other
            };
            outcomes.observe(header, control);
            Ok(())
        })?;
    }
    Ok(outcomes)
}

/// Maps each key to its latest offset in `[first_dirty_offset, bound)`,
/// stopping where the map fills up; returns the map and where it stopped.
/// Markers, aborted records and batches that cannot be decompressed do not
/// enter it.
fn build_offset_map(
    segments: &[Arc<Segment>],
    plan: &CompactionPlan,
    bound: u64,
    outcomes: &TransactionOutcomes,
    settings: &CleanerSettings,
    throttle: &mut Throttle,
) -> Result<(OffsetMap, u64)> {
    let mut map = OffsetMap::new(settings.dedupe_buffer_bytes);
    let mut map_end = bound;
    for (index, segment) in segments.iter().enumerate() {
        let segment_end = segments.get(index + 1).map_or(plan.end_offset, |next| next.base_offset);
        if segment_end <= plan.first_dirty_offset || segment.base_offset >= bound {
            continue;
        }
        let mut full = false;
        for_each_batch(segment, throttle, |header, bytes| {
            let skipped = header.is_control() || outcomes.outcome(header) != Outcome::Committed;
            if full || header.last_offset() < plan.first_dirty_offset as i64 || header.base_offset >= bound as i64 || skipped {
                return Ok(());
            }
            let opened = match BatchRecords::open(bytes, DECOMPRESSED_BYTES_MAX) {
                Err(error) if is_undecompressable(&error) => return Ok(()),
                opened => opened.map_err(|error| damaged(segment, &error))?,
            };
            for view in opened.views().map_err(|error| damaged(segment, &error))? {
                let offset = (header.base_offset + view.offset_delta) as u64;
                if offset < plan.first_dirty_offset {
                    continue;
                }
                if let Some(key) = view.key
                    && !map.insert(key, offset)
                {
                    // The next cleaning starts at this batch.
                    map_end = header.base_offset as u64;
                    full = true;
                    return Ok(());
                }
            }
            Ok(())
        })?;
        if full {
            break;
        }
    }
    Ok((map, map_end.max(plan.first_dirty_offset)))
}

/// A compressed batch the codecs refuse (hostile or unknown): the cleaner
/// leaves it as it is rather than stopping.
fn is_undecompressable(error: &RecordError) -> bool {
    matches!(
        error,
        RecordError::DecompressedTooLarge { .. } | RecordError::CorruptCompression { .. } | RecordError::UnknownCodec(_)
    )
}

fn damaged(segment: &Segment, error: &RecordError) -> LogError {
    LogError::io(
        &segment.path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("cleaner: {error}")),
    )
}

/// Writes `segment` again without superseded records, aborted records and
/// (when `expiry` allows) expired tombstones and markers; `None` when
/// nothing would change.
#[allow(clippy::too_many_arguments)]
fn clean_segment(
    shared: &Shared,
    segment: &Segment,
    map: &OffsetMap,
    transactions: &Transactions<'_>,
    open_at_start: &[OpenTxn],
    expiry: Expiry<'_>,
    throttle: &mut Throttle,
    stats: &mut CleanStats,
) -> Result<Option<CleanedSegment>> {
    let storage = shared.storage.as_ref();
    let path = segment.path.with_extension(CLEANED_EXTENSION);
    let mut out: Vec<u8> = Vec::new();
    let mut written: u64 = 0;
    let mut changed = false;
    let mut removed: u64 = 0;
    // The last batch dropped whole, in case every batch goes.
    let mut last_dropped: Option<Vec<u8>> = None;
    let file = storage.create_or_truncate(&path).map_err(|error| LogError::io(&path, error))?;
    let io = |error| LogError::io(&path, error);
    let Expiry {
        tombstones_expire,
        markers,
    } = expiry;
    for_each_batch(segment, throttle, |header, bytes| {
        let last_of_producer = transactions.outcomes.is_last_of_producer(header);
        let filtered = if header.base_offset >= transactions.bound as i64 {
            Filtered::Unchanged
        } else if header.is_control() {
            let control = control_type(segment, bytes)?;
            let data_gone = markers.marker_removable(header.producer_id, control);
            // A producer's last marker keeps its epoch, which fences zombies.
            if data_gone && tombstones_expire && !last_of_producer {
                removed += 1;
                Filtered::Dropped
            } else {
                Filtered::Unchanged
            }
        } else {
            let outcome = transactions.outcomes.outcome(header);
            if header.is_transactional() {
                markers.data(header.producer_id, outcome);
            }
            match outcome {
                Outcome::Undecided => Filtered::Unchanged,
                Outcome::Aborted if header.records_count == 0 && last_of_producer => Filtered::Unchanged,
                Outcome::Aborted => {
                    removed += header.records_count.max(0) as u64;
                    if last_of_producer {
                        Filtered::Rewritten(batch_filter::emptied(bytes).map_err(|error| damaged(segment, &error))?)
                    } else {
                        Filtered::Dropped
                    }
                }
                Outcome::Committed => {
                    let mut dropped = 0;
                    let filtered = match filter_batch(bytes, last_of_producer, |view, offset| {
                        let Some(key) = view.key else {
                            return true;
                        };
                        let superseded = map.latest(key).is_some_and(|latest| offset < latest);
                        let expired_tombstone = tombstones_expire && view.value.is_none();
                        let keep = !superseded && !expired_tombstone;
                        if !keep {
                            dropped += 1;
                        }
                        keep
                    }) {
                        Err(error) if is_undecompressable(&error) => Filtered::Unchanged,
                        filtered => filtered.map_err(|error| damaged(segment, &error))?,
                    };
                    removed += dropped;
                    filtered
                }
            }
        };
        match filtered {
            Filtered::Unchanged => out.extend_from_slice(bytes),
            Filtered::Rewritten(batch) => {
                changed = true;
                out.extend_from_slice(&batch);
            }
            Filtered::Dropped => {
                changed = true;
                last_dropped = Some(bytes.to_vec());
            }
        }
        if out.len() >= WRITE_BLOCK_BYTES {
            file.write_all_at(&out, written).map_err(io)?;
            written += out.len() as u64;
            out.clear();
        }
        Ok(())
    })?;
    if !changed {
        drop(file);
        let _ = storage.remove_file(&path);
        return Ok(None);
    }
    if written == 0
        && out.is_empty()
        && let Some(last) = last_dropped
    {
        // A segment is never cleaned to nothing: its last batch stays as a
        // header without records (see `batch_filter::emptied`), or whole if
        // it is a marker (readers take an empty control batch for damage).
        let is_control = BatchHeader::parse(&last).is_some_and(|header| header.is_control());
        out = if is_control {
            last
        } else {
            batch_filter::emptied(&last).map_err(|error| damaged(segment, &error))?
        };
    }
    if written + out.len() as u64 == segment.committed_bytes() {
        // Batches only shrink or go: the same length is the same segment
        // (a lone marker kept whole, as it was).
        drop(file);
        let _ = storage.remove_file(&path);
        return Ok(None);
    }
    file.write_all_at(&out, written).map_err(io)?;
    written += out.len() as u64;
    file.set_len(written).map_err(io)?;
    file.sync_data().map_err(io)?;
    throttle.account(written);
    // Checked as recovery would check it, before anything depends on it.
    // This also rebuilds its transaction index: an ABORT marker kept
    // after its transaction's records went indexes nothing, and one removed
    // leaves no entry that would hide the producer's later records.
    let scan = segment::scan_sealed(file.as_ref(), &path, segment.base_offset, INDEX_INTERVAL_BYTES, open_at_start)?;
    if let Some((position, reason)) = &scan.stopped {
        let _ = storage.remove_file(&path);
        return Err(LogError::InvalidBatch {
            position: *position as usize,
            reason: reason.clone(),
        });
    }
    stats.segments_rewritten += 1;
    stats.bytes_before += segment.committed_bytes();
    stats.bytes_after += written;
    stats.records_removed += removed;
    Ok(Some(CleanedSegment {
        base_offset: segment.base_offset,
        old_bytes: segment.committed_bytes(),
        path,
        file,
        scan,
    }))
}

/// Calls `visit` with each whole batch of the sealed `segment`, in order,
/// reading it in blocks and counting the reads against the throttle.
fn for_each_batch(segment: &Segment, throttle: &mut Throttle, mut visit: impl FnMut(&BatchHeader, &[u8]) -> Result<()>) -> Result<()> {
    let limit = segment.committed_bytes();
    let file = segment.file().map_err(|error| LogError::io(&segment.path, error))?;
    let mut position = 0u64;
    // Bounded: every pass moves `position` on by at least one batch.
    while position + HEADER_BYTES as u64 <= limit {
        let length = (limit - position).min(READ_BLOCK_BYTES as u64) as usize;
        let mut block = file
            .read_exact_vec(position, length)
            .map_err(|error| LogError::io(&segment.path, error))?;
        let whole = batch::whole_batches_len(&block);
        if whole == 0 {
            // One batch larger than a block: read it whole.
            let header = BatchHeader::parse(&block).ok_or_else(|| truncated(segment, position))?;
            let total = header.total_bytes() as u64;
            if total < HEADER_BYTES as u64 || position + total > limit {
                return Err(truncated(segment, position));
            }
            block = file
                .read_exact_vec(position, total as usize)
                .map_err(|error| LogError::io(&segment.path, error))?;
        }
        throttle.account(block.len() as u64);
        let mut consumed = 0usize;
        for (header, bytes) in batch::whole_batches(&block) {
            visit(&header, bytes)?;
            consumed += bytes.len();
        }
        if consumed == 0 {
            return Err(truncated(segment, position));
        }
        position += consumed as u64;
    }
    Ok(())
}

fn truncated(segment: &Segment, position: u64) -> LogError {
    LogError::io(
        &segment.path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("cleaner: no whole batch at position {position}"),
        ),
    )
}
